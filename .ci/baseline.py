#!/usr/bin/env python3
"""Ratchet for the hygiene checks while the tree still has old findings.

Until the whole tree is fixed and formatted once, CI fails only on *new* problems:

* ``ruff``:   the number of findings of each rule may not grow above the recorded count;
* ``format``: every file recorded as formatted must stay formatted (new files are exempt
  until the one-off formatting of the whole tree);
* ``mypy``:   the number of errors may not grow above the recorded count.

Counts are per rule and per tree, not per file, so that moving code between files does not
trip the ratchet. ``python .ci/baseline.py --update`` re-records the current state (only
when the counts went *down*, or for a reviewed reason). The baseline is ``.ci/baseline.json``.

Usage: python .ci/baseline.py {ruff,format,mypy,all} [--update]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "baseline.json"


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


def ruff_counts() -> tuple[Counter[str], list[dict]]:
    proc = _run(["ruff", "check", "--output-format", "json", "."])
    if proc.returncode not in (0, 1):
        sys.exit(f"ruff check crashed (status {proc.returncode}):\n{proc.stderr}")
    findings = json.loads(proc.stdout or "[]")
    return Counter(f["code"] or "syntax-error" for f in findings), findings


def formatted_files() -> list[str]:
    files = _run(["git", "ls-files", "*.py"]).stdout.split()
    return sorted(
        f
        for f in files
        if (ROOT / f).exists() and _run(["ruff", "format", "--check", "-q", f]).returncode == 0
    )


def mypy_errors() -> list[str]:
    proc = _run(["mypy", "--no-error-summary"])
    if proc.returncode not in (0, 1):
        sys.exit(f"mypy crashed (status {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return [line for line in proc.stdout.splitlines() if re.search(r": error: ", line)]


def check_ruff(base: dict) -> bool:
    counts, findings = ruff_counts()
    allowed = base["ruff"]
    grown = {code: n for code, n in counts.items() if n > allowed.get(code, 0)}
    total, total_base = sum(counts.values()), sum(allowed.values())
    print(f"ruff check: {total} findings (baseline {total_base})")
    if not grown:
        return True
    for code, n in sorted(grown.items()):
        print(f"  {code}: {n} findings, baseline allows {allowed.get(code, 0)}:")
        for f in findings:
            if f["code"] == code:
                loc = f["location"]
                rel = Path(f["filename"]).relative_to(ROOT)
                print(f"    {rel}:{loc['row']}:{loc['column']}: {code} {f['message']}")
    print("New ruff findings: fix them (see `ruff check .`).")
    return False


def check_format(base: dict) -> bool:
    files = [f for f in base["formatted"] if (ROOT / f).exists()]
    proc = _run(["ruff", "format", "--check", *files]) if files else None
    print(f"ruff format --check: {len(files)} files recorded as formatted")
    if proc is None or proc.returncode == 0:
        return True
    print(proc.stdout + proc.stderr)
    print("Files that were formatted are no longer: run `ruff format FILE` on them.")
    return False


def check_mypy(base: dict) -> bool:
    errors = mypy_errors()
    print(f"mypy: {len(errors)} errors (baseline {base['mypy']})")
    if len(errors) <= base["mypy"]:
        return True
    print("\n".join(errors))
    print("New mypy errors: the count grew above the baseline; fix the new ones.")
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("check", choices=["ruff", "format", "mypy", "all"])
    ap.add_argument("--update", action="store_true", help="re-record the baseline")
    args = ap.parse_args()
    if args.update:
        base = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
        if args.check in ("ruff", "all"):
            base["ruff"] = dict(sorted(ruff_counts()[0].items()))
        if args.check in ("format", "all"):
            base["formatted"] = formatted_files()
        if args.check in ("mypy", "all"):
            base["mypy"] = len(mypy_errors())
        BASELINE.write_text(json.dumps(base, indent=2) + "\n")
        print(f"baseline written to {BASELINE.relative_to(ROOT)}")
        return 0
    base = json.loads(BASELINE.read_text())
    checks = {"ruff": check_ruff, "format": check_format, "mypy": check_mypy}
    selected = checks if args.check == "all" else {args.check: checks[args.check]}
    ok = [fn(base) for fn in selected.values()]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
