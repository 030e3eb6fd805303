"""``python -m proofs_check.experiments [NAME ...] [--out DIR] [--quick] [--list] [--workers N | --scheduler ADDRESS]``:
regenerate the data files.

The points of every selected experiment run through the sweep engine's :class:`Pool`
(:func:`proofs_check.sweep.adapt.run_experiments`): a local Dask cluster with one
single-threaded worker per core by default, ``--workers 0`` in this process, ``--scheduler
tcp://host:8786`` on an existing cluster. Files are written once every point is done (the
benchmarks, which time themselves, then run on an idle machine).

Exit status: 0 done, 2 usage error (unknown name, bad option), 3 environment (e.g. benchmarks
outside a checkout, a cluster that cannot be reached).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import EXPERIMENTS

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
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
    where = ap.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local Dask cluster of N workers (default: one per core; 0 = in this process)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the points on an existing Dask cluster, e.g. tcp://host:8786",
    )
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
    from ..sweep.adapt import run_experiments
    from ..sweep.engine import ClusterError, Pool

    try:
        pool = Pool(workers=args.workers, scheduler=args.scheduler)
    except ValueError as exc:
        print(f"experiments: error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    progress(f"running on {pool.backend}")
    try:
        with pool:
            paths = run_experiments(
                [EXPERIMENTS[n] for n in args.names or list(EXPERIMENTS)],
                Path(args.out),
                pool,
                full=not args.quick,
                progress=progress,
            )
    except (FileNotFoundError, ClusterError) as exc:
        print(f"experiments: error: {exc}", file=sys.stderr)
        return 3
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
