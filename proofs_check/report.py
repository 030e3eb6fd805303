"""Reports: the terminal table and the JSON document, written atomically."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from ._version import __version__
from .output import write_text_atomic
from .registry import ClaimResult
from .schema import SCHEMA_VERSION

__all__ = [
    "package_versions",
    "source_commit",
    "build_report",
    "atomic_write_text",
    "write_json",
    "format_table",
]

_PACKAGES = ("numpy", "scipy", "sympy", "cvxpy", "matplotlib", "hypothesis")


def package_versions() -> dict[str, str]:
    """Python, platform, this tool and its main dependencies, and ``git``: the commit of the
    source that ran when it is a git work tree (``+dirty`` with uncommitted changes to tracked
    files). The tool's own version comes from ``proofs_check._version`` (the source that ran),
    not from installed metadata, which can be stale for an editable install."""
    out = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gla-verify": __version__,
    }
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    commit = source_commit()
    if commit:
        out["git"] = commit
    return out


def source_commit() -> str:
    """The git commit of the source tree this package runs from, ``+dirty`` when tracked files
    differ from it; ``""`` outside a git work tree or without git (never raises)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "") if head else ""


def build_report(results: list[ClaimResult], settings: dict) -> dict:
    n_pass = sum(r.passed for r in results)
    return {
        "schema": SCHEMA_VERSION,
        "tool": "gla-verify",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["gla-verify"] + sys.argv[1:]),
        "settings": settings,
        "versions": package_versions(),
        "summary": {
            "claims": len(results),
            "passed": n_pass,
            "failed": len(results) - n_pass,
            "seconds": round(sum(r.seconds for r in results), 3),
        },
        "claims": [r.to_json() for r in results],
    }


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary sibling renamed over it), with the
    umask's permissions; see :func:`proofs_check.output.write_text_atomic`."""
    write_text_atomic(path, text)


def write_json(path: str | os.PathLike[str], report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2, allow_nan=False) + "\n")


def format_table(results: list[ClaimResult], *, verbose: bool = False) -> str:
    from .notation import plain_text  # titles are Markdown with math; terminals get Unicode

    lines = []
    w = max([len(r.claim.id) for r in results] + [5])
    lines.append(f"{'claim':<{w}}  {'status':<6}  {'checks':>6}  {'time':>7}  {'proved':<9}  title")
    lines.append("-" * (w + 71))
    for r in results:
        n_ok = sum(e.passed for e in r.evidence)
        status = "pass" if r.passed else "FAIL"
        # "proved": symbolic sizes (a general-dimension proof) or explicit instances only
        lines.append(
            f"{r.claim.id:<{w}}  {status:<6}  {n_ok:>2}/{len(r.evidence):<3}  {r.seconds:>6.1f}s  "
            f"{r.dimensions:<9}  {plain_text(r.claim.title)}"
        )
        for e in r.evidence:
            if verbose or not e.passed:
                mark = "ok " if e.passed else "XX "
                lines.append(f"{'':<{w}}    {mark}[{e.leg}/{e.kind}] {e.check}: {e.key_figure()}")
                if not e.passed and e.detail:
                    for dl in e.detail.strip().splitlines()[:8]:
                        lines.append(f"{'':<{w}}        {dl}")
    n_pass = sum(r.passed for r in results)
    lines.append("-" * (w + 71))
    lines.append(f"{n_pass}/{len(results)} claims pass")
    return "\n".join(lines)
