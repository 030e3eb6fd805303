"""``python -m proofs_check.experiments [NAME ...] [--out DIR] [--quick] [--list]``: regenerate the data files.

Exit status: 0 done, 2 usage error (unknown name), 3 environment (e.g. benchmarks outside a checkout).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import EXPERIMENTS, run_local

__all__ = ["main"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m proofs_check.experiments", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"experiments (default: all of {', '.join(EXPERIMENTS)})",
    )
    ap.add_argument(
        "--out", default="docs/data", metavar="DIR", help="output directory (default docs/data)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="the quick grids (smoke test; not the published data)"
    )
    ap.add_argument("--list", action="store_true", help="list the experiments and their files")
    args = ap.parse_args(argv)
    if args.list:
        for e in EXPERIMENTS.values():
            print(f"{e.name:<16} {', '.join(e.files):<55} {e.about}")
        return 0
    unknown = [n for n in args.names if n not in EXPERIMENTS]
    if unknown:
        print(
            f"experiments: error: unknown experiment(s) {', '.join(unknown)}; known: {', '.join(EXPERIMENTS)}",
            file=sys.stderr,
        )
        return 2
    t0 = time.perf_counter()

    def progress(msg):
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    try:
        for name in args.names or list(EXPERIMENTS):
            for path in run_local(
                EXPERIMENTS[name], Path(args.out), full=not args.quick, progress=progress
            ):
                print(f"wrote {path}")
    except FileNotFoundError as exc:
        print(f"experiments: error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
