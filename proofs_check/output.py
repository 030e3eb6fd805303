r"""Writing output without ever losing data: checked targets, atomic files, a safely
swapped output directory.

Errors carry their exit status (:class:`UsageError` -> 2, :class:`EnvironmentFailure` -> 3)
so the CLI can report them without a traceback.

**Files** (:func:`write_text_atomic`): written to a temporary sibling
``.<name>.gla-verify-tmp.<pid>.<random>`` and renamed over the target, so the target holds
the complete old or the complete new text at every instant. A symlink at the target is
followed (the link survives, its target is replaced). Temporaries of killed runs (their
pid no longer alive) are removed by the next write to the same path.

**Directories** (:func:`replace_dir`): a directory belongs to gla-verify only when it
carries the marker file :data:`MARKER`. An existing non-empty directory without it, a
regular file or a symlink at the target is refused (:class:`UsageError`). The new content
is built in ``.<name>.gla-verify-new.<pid>`` next to the target, then swapped in:

1. ``build``   -- write the new content into the temporary directory (marker first);
2. ``journal`` -- write ``.<name>.gla-verify-journal`` (names of the new and old dirs);
3. ``stash``   -- rename the target to ``.<name>.gla-verify-old.<pid>``;
4. ``install`` -- rename the temporary directory to the target;
5. ``commit``  -- delete the journal, then the stashed old content.

A crash anywhere leaves either the target intact (before 3, after 4), or the journal plus
complete old and new directories (between 3 and 4); the next run -- or the failing run's own
exception handler -- then completes the swap (the new content is complete once the journal
exists) and deletes only directories carrying the marker. The whole sequence runs under an
exclusive ``flock`` on the parent directory (no lock file is left behind), so concurrent
writers serialise; stale
temporaries (with the marker, or empty) are removed under that lock. Files and directories
get the permissions the umask gives (``mkstemp``/``mkdtemp`` would give 0600/0700).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "MARKER",
    "EnvironmentFailure",
    "ToolError",
    "UsageError",
    "check_dir_target",
    "check_file_target",
    "recover_dir",
    "replace_dir",
    "umask",
    "write_text_atomic",
]

#: The marker file that makes a directory gla-verify's own (it may then be replaced).
MARKER = ".gla-verify-appendix"
_MARKER_TEXT = (
    "This directory is written by `gla-verify appendix`. The next run replaces it as a\n"
    "whole; files you add here are deleted then. Remove this file to protect the directory.\n"
)


class ToolError(Exception):
    """An error reported to the user as one line, with an exit status."""

    exit_code = 3


class UsageError(ToolError, ValueError):
    """A bad argument or input: exit status 2."""

    exit_code = 2


class EnvironmentFailure(ToolError, OSError):
    """The environment prevents the work (cannot write, disk full): exit status 3."""

    exit_code = 3


def umask() -> int:
    """The process umask (read without changing it for more than an instant)."""
    old = os.umask(0o022)
    os.umask(old)
    return old


def _chmod_umask(path, base: int) -> None:
    os.chmod(path, base & ~umask())


# Test hook: called with the name of each step of the directory swap (fault injection).
_HOOK: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if _HOOK is not None:
        _HOOK(name)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _env(what: str, path, exc: OSError) -> EnvironmentFailure:
    reason = exc.strerror or str(exc)
    return EnvironmentFailure(f"{what}: cannot write {str(path)!r}: {reason}")


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not os.path.lexists(p):
        if p.parent == p:
            break
        p = p.parent
    return p


def _probe_writable(directory: Path, what: str, target) -> None:
    """Create and delete a file in ``directory``: the only test that also holds for root,
    read-only mounts and pseudo file systems."""
    probe = directory / f".gla-verify-probe.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _env(what, target, exc) from None


def _check_parent(path: Path, what: str) -> None:
    anc = _existing_ancestor(path.parent)
    if not anc.is_dir():
        raise UsageError(
            f"{what}: {str(path)!r} cannot be created: {str(anc)!r} is not a directory"
        )
    _probe_writable(anc, what, path)


def check_file_target(path: str | os.PathLike[str], what: str = "--json") -> Path:
    """Check, before any work, that a file can be written at ``path``. Returns the path to
    write (a symlink is followed). Raises :class:`UsageError` (empty path, a directory) or
    :class:`EnvironmentFailure` (not writable)."""
    if path is None or str(path).strip() == "":
        raise UsageError(f"{what}: empty path; give a file name such as report.json")
    s = str(path)
    if s.endswith(os.sep) or (os.altsep and s.endswith(os.altsep)):
        raise UsageError(
            f"{what}: {s!r} names a directory; give a file name such as {s}report.json"
        )
    p = Path(os.path.realpath(s)) if os.path.islink(s) else Path(s)
    if p.is_dir():
        raise UsageError(
            f"{what}: {s!r} is a directory; give a file name such as {os.path.join(s, 'report.json')}"
        )
    if os.path.lexists(p) and not p.is_file():
        raise UsageError(f"{what}: {s!r} exists and is not a regular file")
    _check_parent(p, what)
    return p


def _is_ours(d: Path) -> bool:
    return (d / MARKER).is_file()


def check_dir_target(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Check, before any work, that ``path`` may be (re)written as gla-verify's directory:
    absent, empty, or carrying :data:`MARKER`. Symlinks and files are refused."""
    if path is None or str(path).strip() == "":
        raise UsageError(f"{what}: empty path; give a directory such as docs/appendix")
    p = Path(str(path).rstrip(os.sep) or os.sep)
    if os.path.islink(p):
        raise UsageError(
            f"{what}: {str(path)!r} is a symlink; gla-verify does not replace links. "
            f"Give the real directory ({os.path.realpath(p)!r}) or a new path"
        )
    if os.path.lexists(p) and not p.is_dir():
        raise UsageError(
            f"{what}: {str(path)!r} is a file, not a directory; refusing to replace it. "
            f"Give a new or empty directory"
        )
    if p.is_dir():
        try:
            entries = os.listdir(p)
        except OSError as exc:
            raise _env(what, p, exc) from None
        if entries and MARKER not in entries:
            raise UsageError(
                f"{what}: {str(path)!r} is a non-empty directory that gla-verify did not write "
                f"(no {MARKER} marker); refusing to replace it, since that would delete its "
                f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}. Give a new or empty "
                f"directory, or, to let gla-verify replace everything in it, create the marker: "
                f"touch {os.path.join(str(path), MARKER)}"
            )
    if p.resolve().parent == p.resolve():
        raise UsageError(f"{what}: {str(path)!r} is a file-system root")
    _check_parent(p, what)
    return p


# ---------------------------------------------------------------------------- files


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_files(path: Path) -> None:
    prefix = f".{path.name}.gla-verify-tmp."
    with contextlib.suppress(OSError):
        for entry in os.listdir(path.parent):
            if not entry.startswith(prefix):
                continue
            pid = entry[len(prefix) :].split(".", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(path.parent / entry)


def write_text_atomic(path: str | os.PathLike[str], text: str, what: str = "output") -> Path:
    """Write ``text`` to ``path`` atomically with umask permissions (see the module doc).
    OS errors become :class:`EnvironmentFailure`."""
    p = Path(path)
    if os.path.islink(p):
        p = Path(os.path.realpath(p))
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale_files(p)
        tmp = p.parent / f".{p.name}.gla-verify-tmp.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask applies
    except OSError as exc:
        raise _env(what, p, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _env(what, p, exc) from None
        raise
    _fsync_dir(p.parent)
    return p


# ------------------------------------------------------------------------ directories


def _prefix(out: Path) -> str:
    return f".{out.name}.gla-verify"


def _names(out: Path) -> dict[str, Path]:
    base = _prefix(out)
    return {
        "journal": out.parent / f"{base}-journal",
        "new": out.parent / f"{base}-new.{os.getpid()}.{secrets.token_hex(3)}",
        "old": out.parent / f"{base}-old.{os.getpid()}.{secrets.token_hex(3)}",
    }


def _rmtree_ours(d: Path) -> bool:
    """Delete ``d`` if it is ours (carries the marker) or empty; True if deleted."""
    if os.path.islink(d) or not d.is_dir():
        return False
    if _is_ours(d) or not any(d.iterdir()):
        shutil.rmtree(d)
        return True
    return False


def recover_dir(
    out: str | os.PathLike[str], progress: Callable[[str], None] | None = None
) -> list[str]:
    """Finish or undo an interrupted swap of ``out`` and remove stale temporaries.
    Call with the lock held (:func:`replace_dir` does). Returns what was done."""
    out = Path(out)
    names = _names(out)
    done: list[str] = []
    journal = names["journal"]
    if journal.exists():
        try:
            j = json.loads(journal.read_text(encoding="utf-8"))
            new, old = out.parent / j["new"], out.parent / j["old"]
        except (OSError, ValueError, KeyError, TypeError):
            new = old = None
        if new is not None:
            if not os.path.lexists(out):
                if new.is_dir():  # the journal exists only once the new content is complete
                    os.replace(new, out)
                    done.append(
                        f"completed an interrupted swap: installed {new.name} as {out.name}"
                    )
                elif old.is_dir():
                    os.replace(old, out)
                    done.append(
                        f"rolled back an interrupted swap: restored {out.name} from {old.name}"
                    )
            elif new.is_dir() and _rmtree_ours(new):
                done.append(f"discarded the unswapped new content {new.name}")
            if old.is_dir() and _rmtree_ours(old):
                done.append(f"removed the previous content {old.name}")
            _fsync_dir(out.parent)
        journal.unlink()
    prefix = _prefix(out)
    for entry in sorted(os.listdir(out.parent)):
        if entry.startswith((prefix + "-new.", prefix + "-old.")) and _rmtree_ours(
            out.parent / entry
        ):
            done.append(f"removed the stale temporary {entry}")
    if progress is not None:
        for msg in done:
            progress(f"{out}: {msg}")
    return done


@contextlib.contextmanager
def _locked(fd: int, out: Path, progress) -> Iterator[None]:
    """Hold an exclusive flock on ``fd`` (closed on exit, which releases the lock)."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress is not None:
                progress(f"waiting for another gla-verify process writing {out}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def replace_dir(
    out: str | os.PathLike[str],
    *,
    what: str = "--out",
    progress: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Context manager: yields an empty temporary directory (already carrying the marker);
    when the block exits normally its content replaces ``out`` (see the module doc). On an
    exception inside the block nothing is changed; an exception during the swap is undone."""
    out = Path(out)
    check_dir_target(out, what)
    names = _names(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(out.parent, os.O_RDONLY)  # flock on the parent directory: no lock file
    except OSError as exc:
        raise _env(what, out, exc) from None
    with _locked(lock_fd, out, progress):
        try:
            recover_dir(out, progress)
        except OSError as exc:
            raise _env(what, out, exc) from None
        check_dir_target(out, what)  # again, under the lock: another writer may have been first
        new, old = names["new"], names["old"]
        try:
            new.mkdir()
            _chmod_umask(new, 0o777)
            write_text_atomic(new / MARKER, _MARKER_TEXT)
        except OSError as exc:
            raise _env(what, out, exc) from None
        try:
            _step("build")
            yield new
            _step("built")
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(new)
            raise
        try:
            _fsync_dir(new)
            write_text_atomic(
                names["journal"], json.dumps({"new": new.name, "old": old.name}) + "\n"
            )
            _step("journal")
            had_old = os.path.lexists(out)
            if had_old:
                os.replace(out, old)
            _step("stash")
            os.replace(new, out)
            _fsync_dir(out.parent)
            _step("install")
            names["journal"].unlink()
            _step("commit")
            if had_old:
                shutil.rmtree(old)
            _step("done")
        except BaseException as exc:
            # Complete (or undo) what this run started, so the path is consistent now.
            with contextlib.suppress(Exception):
                recover_dir(out, progress)
            if isinstance(exc, OSError) and not isinstance(exc, ToolError):
                raise _env(what, out, exc) from None
            raise


def permissions(path) -> int:
    """The permission bits of ``path`` (for tests and diagnostics)."""
    return stat.S_IMODE(os.stat(path).st_mode)
