"""Reliability of output: nothing the tool did not write is deleted; the appendix
directory holds the complete old or the complete new content at every instant (or the next
run restores it); concurrent writers serialise; stale temporaries are cleaned; files get
the umask's permissions.

Fault injection: ``proofs_check.output._HOOK`` is called at each step of the swap
(``build, built, journal, stash, install, commit, done``); the tests raise an exception
there (in process) or SIGKILL a subprocess there, then rerun. See docs/reliability.md.
"""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from proofs_check import output
from proofs_check.appendix import build_appendix
from proofs_check.cli import main
from proofs_check.output import MARKER, UsageError, replace_dir, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("build", "built", "journal", "stash", "install", "commit", "done")
FILES = [f"f{i}.txt" for i in range(5)] + ["sub/g.txt"]


def _write(d: Path, tag: str) -> None:
    for name in FILES:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(f"{tag}:{name}\n" * 50)


def _state(out: Path) -> str | None:
    """The tag of a complete content at ``out`` (every file from one writer), else fail."""
    if not out.exists():
        return None
    assert (out / MARKER).is_file(), "output lost its marker"
    tags = {(out / n).read_text().split(":", 1)[0] for n in FILES}
    assert len(tags) == 1, f"mixed content {tags}"
    return tags.pop()


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def _small_report():
    from proofs_check.registry import Claim, Context, Evidence, holds
    from proofs_check.report import build_report

    c = Claim("T1", "passes", r"1 = 1", "test")
    c.check("sym", leg="theory")(lambda ctx: Evidence("sym", "symbolic", [holds("verified", True)]))
    return build_report([c.run(Context())], {"seed": 0, "profile": "quick", "ids": ["T1"]})


# ------------------------------------------------------------------- nothing lost


def test_appendix_never_deletes_files_it_did_not_write(tmp_path, capsys):
    """On the old main a thesis.tex and sub/data.csv in --out were deleted, exit 0."""
    rep = tmp_path / "r.json"
    rep.write_text(json.dumps(_small_report()))
    paper = tmp_path / "paper"
    (paper / "sub").mkdir(parents=True)
    (paper / "thesis.tex").write_text("my thesis")
    (paper / "sub" / "data.csv").write_text("1,2")
    assert main(["appendix", "--from", str(rep), "--no-figures", "-q", "--out", str(paper)]) == 2
    err = capsys.readouterr().err
    assert "did not write" in err and f"touch {paper / MARKER}" in err
    assert (paper / "thesis.tex").read_text() == "my thesis" and (
        paper / "sub" / "data.csv"
    ).read_text() == "1,2"
    # the documented override: the marker makes the directory gla-verify's
    (paper / MARKER).write_text("")
    assert main(["appendix", "--from", str(rep), "--no-figures", "-q", "--out", str(paper)]) == 0
    assert (paper / "appendix.md").exists() and not (paper / "thesis.tex").exists()


def test_out_onto_file_or_symlink_is_refused(tmp_path, capsys):
    rep = tmp_path / "r.json"
    rep.write_text(json.dumps(_small_report()))
    f = tmp_path / "notes.tex"
    f.write_text("mine")
    target = tmp_path / "real"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(target)
    for out in (f, link):
        assert main(["appendix", "--from", str(rep), "--no-figures", "-q", "--out", str(out)]) == 2
    assert (
        f.read_text() == "mine"
        and link.is_symlink()
        and (target / "keep.txt").read_text() == "mine"
    )
    assert "symlink" in capsys.readouterr().err


def test_empty_dir_and_own_dir_are_replaced(tmp_path):
    out = tmp_path / "app"
    out.mkdir()
    with replace_dir(out) as tmp:
        _write(tmp, "one")
    assert _state(out) == "one"
    with replace_dir(out) as tmp:
        _write(tmp, "two")
    assert _state(out) == "two" and _siblings(out) == []


# ---------------------------------------------------------------- fault injection


@pytest.mark.parametrize("step", STEPS)
def test_exception_at_each_swap_step_leaves_a_complete_state(tmp_path, monkeypatch, step):
    out = tmp_path / "app"
    with replace_dir(out) as tmp:
        _write(tmp, "old")

    def hook(s):
        if s == step:
            raise RuntimeError(f"injected at {s}")

    monkeypatch.setattr(output, "_HOOK", hook)
    with pytest.raises(RuntimeError, match="injected"), replace_dir(out) as tmp:
        _write(tmp, "new")
    # the failing run's own handler already made the state consistent
    assert _state(out) == ("old" if step in ("build", "built", "journal") else "new")
    assert _siblings(out) == [], _siblings(out)
    monkeypatch.setattr(output, "_HOOK", None)
    with replace_dir(out) as tmp:
        _write(tmp, "rerun")
    assert _state(out) == "rerun" and _siblings(out) == []


_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from proofs_check import output
    out, step, tag, delay = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    files = {files!r}
    def hook(s):
        if s == step:
            os.kill(os.getpid(), signal.SIGKILL)
    output._HOOK = hook
    with output.replace_dir(out) as tmp:
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(f"{{tag}}:{{name}}\\n" * 50)
            time.sleep(delay)
""")


def _run_writer(script: Path, out: Path, step: str, tag: str, delay: float = 0.0):
    return subprocess.Popen(
        [sys.executable, str(script), str(out), step, tag, str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def kill_script(tmp_path):
    p = tmp_path / "writer.py"
    p.write_text(_KILL_SCRIPT.format(root=str(ROOT), files=FILES))
    return p


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_swap_step_then_rerun_restores(tmp_path, kill_script, step):
    """A real SIGKILL between the steps: afterwards the path holds the complete old or new
    content, or (killed between the two renames) the journal lets the next run finish."""
    out = tmp_path / "work" / "app"
    out.parent.mkdir()
    with replace_dir(out) as tmp:
        _write(tmp, "old")
    proc = _run_writer(kill_script, out, step, "new")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = _state(out)
    if state is None:  # killed between stash and install: old and new are both complete
        assert step == "stash" and (out.parent / f".{out.name}.gla-verify-journal").exists()
    else:
        assert state == ("old" if step in ("build", "built", "journal") else "new")
    # the next run (here: just the recovery under the lock) restores a consistent state
    with replace_dir(out) as tmp:
        assert _state(out) in ("old", "new")
        _write(tmp, "rerun")
    assert _state(out) == "rerun" and _siblings(out) == [], _siblings(out)


@pytest.mark.slow
def test_sigkill_at_random_instants(tmp_path, kill_script):
    """60 writers killed at random instants (during the build or the swap): every time the
    path holds one complete content or is restored by the next run; nothing stale remains."""
    out = tmp_path / "work" / "app"
    out.parent.mkdir()
    rng = random.Random(0)
    survived = 0
    for i in range(60):
        proc = _run_writer(kill_script, out, "never", f"w{i}", delay=0.002)
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        st = _state(out)
        if st is None and i == 0:
            pass  # killed before the very first content existed
        with replace_dir(out) as tmp:
            _write(tmp, f"check{i}")
        assert _state(out) == f"check{i}" and _siblings(out) == []
        survived += 1
    assert survived == 60


# -------------------------------------------------------------------- concurrency

_CONCURRENT_SCRIPT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from proofs_check import output
    out, tag, log = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    files = {files!r}
    with output.replace_dir(out) as tmp:
        with open(log, "a") as fh:
            fh.write(f"start {{tag}} {{time.time()}}\\n")
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(f"{{tag}}:{{name}}\\n" * 50)
            time.sleep(0.01)
        with open(log, "a") as fh:
            fh.write(f"end {{tag}} {{time.time()}}\\n")
""")


def _concurrent(tmp_path, writers: int):
    script = tmp_path / "cw.py"
    script.write_text(_CONCURRENT_SCRIPT.format(root=str(ROOT), files=FILES))
    out = tmp_path / "work" / "app"
    out.parent.mkdir()
    log = tmp_path / "log.txt"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), f"w{i}", str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), [e for _, e, rc in results if rc]
    assert _state(out) in {f"w{i}" for i in range(writers)}
    assert _siblings(out) == []
    # serialised: the build phases never overlap
    events = [ln.split() for ln in log.read_text().splitlines()]
    assert len(events) == 2 * writers
    for k in range(0, len(events), 2):
        assert (
            events[k][0] == "start"
            and events[k + 1][0] == "end"
            and events[k][1] == events[k + 1][1]
        )


def test_concurrent_writers_serialise(tmp_path):
    """On the old main two writers at once crashed (FileNotFoundError / ENOTEMPTY)."""
    _concurrent(tmp_path, 4)


@pytest.mark.slow
def test_many_concurrent_writers_serialise(tmp_path):
    _concurrent(tmp_path, 12)


# ------------------------------------------------------------- stale temporaries


def test_stale_temporaries_of_killed_runs_are_removed_but_foreign_ones_kept(tmp_path):
    out = tmp_path / "app"
    with replace_dir(out) as tmp:
        _write(tmp, "old")
    stale_new = tmp_path / ".app.gla-verify-new.99999.abc"
    stale_new.mkdir()
    (stale_new / MARKER).write_text("")
    (stale_new / "f0.txt").write_text("half")
    stale_empty = tmp_path / ".app.gla-verify-old.99998.def"
    stale_empty.mkdir()
    foreign = tmp_path / ".app.gla-verify-new.99997.ghi"  # same pattern, not ours: kept
    foreign.mkdir()
    (foreign / "x").write_text("mine")
    with replace_dir(out) as tmp:
        _write(tmp, "new")
    assert (
        not stale_new.exists()
        and not stale_empty.exists()
        and (foreign / "x").read_text() == "mine"
    )
    # stale temporary files of killed atomic writes (dead pid) are removed too
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale_file = tmp_path / f".r.json.gla-verify-tmp.{dead.pid}.0000"
    stale_file.write_text("half")
    write_text_atomic(tmp_path / "r.json", "{}")
    assert not stale_file.exists() and (tmp_path / "r.json").read_text() == "{}"


def test_journal_without_new_rolls_back_to_old(tmp_path):
    """A journal whose new directory vanished: the stashed old content is put back."""
    out = tmp_path / "app"
    with replace_dir(out) as tmp:
        _write(tmp, "old")
    old = tmp_path / ".app.gla-verify-old.1.x"
    os.replace(out, old)
    (tmp_path / ".app.gla-verify-journal").write_text(
        json.dumps({"new": ".app.gla-verify-new.1.x", "old": old.name})
    )
    output.recover_dir(out)
    assert _state(out) == "old" and _siblings(out) == []


# --------------------------------------------------------------------- permissions


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_get_umask_permissions(tmp_path, mask):
    """On the old main reports were 0600 and the appendix folder 0700 whatever the umask."""
    old = os.umask(mask)
    try:
        rep = tmp_path / "r.json"
        write_text_atomic(rep, "{}")
        out = tmp_path / "app"
        build_appendix(out, _small_report(), progress=lambda m: None, figures=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(rep.stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    for p in out.rglob("*"):
        want = (0o777 if p.is_dir() else 0o666) & ~mask
        assert stat.S_IMODE(p.stat().st_mode) == want, p


def test_symlinked_report_is_written_through(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "r.json"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_target_checks_raise_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="empty path"):
        output.check_dir_target("")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    with pytest.raises(UsageError, match="did not write"):
        output.check_dir_target(tmp_path / "d")
    with pytest.raises(UsageError, match="is a directory"):
        output.check_file_target(tmp_path)


def test_persistent_rename_failure_is_restored_by_the_next_run(tmp_path, monkeypatch):
    """The install rename keeps failing (and so does the handler's own recovery): the path
    is missing for a while, the journal records the swap, and the next run restores it."""
    out = tmp_path / "app"
    with replace_dir(out) as tmp:
        _write(tmp, "old")
    real = os.replace

    def failing(src, dst):
        if Path(dst) == out:
            raise OSError(5, "injected I/O error")
        return real(src, dst)

    monkeypatch.setattr(output.os, "replace", failing)
    with (
        pytest.raises(output.EnvironmentFailure, match="injected I/O error"),
        replace_dir(out) as tmp,
    ):
        _write(tmp, "new")
    assert not out.exists() and (tmp_path / ".app.gla-verify-journal").exists()
    monkeypatch.setattr(output.os, "replace", real)
    with replace_dir(out) as tmp:
        assert _state(out) == "new"  # the journalled swap was completed first
        _write(tmp, "rerun")
    assert _state(out) == "rerun" and _siblings(out) == []
