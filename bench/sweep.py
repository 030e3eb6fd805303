"""Benchmark of the sweep engine: ``python -m bench.sweep [--quick] [--repeats N] [--json PATH]``.

1. **Speedup**: an 8-point training sweep (one-layer scalar GLA trained on G6's non-monotone
   setting with anisotropic ``Σ``, ``d = 4``, 8 seeds; ``--steps`` Adam steps each) on a local
   Dask cluster of 1 worker and of 2 workers. Clusters are started before timing (their start-up
   is reported separately); runs alternate 1, 2, 1, 2, ... and the speedup is the median of the
   per-repeat ratios ``t(1 worker) / t(2 workers)``. Target on a 2-core machine: >= 1.7.
   The same points on plain process pools of 1 and 2 processes (``concurrent.futures``, no
   Dask, started and warmed before timing) give the machine's own ceiling for this workload:
   two busy processes on two vCPUs rarely run at twice the speed of one (shared caches and
   memory bandwidth, a hypervisor's scheduling). ``dask_efficiency = speedup / ceiling`` tells
   how much of what the hardware allows the engine delivers.
2. **Per-point overhead** against calling the point function directly (same points, same
   process for the direct calls): ``(t_engine − t_direct) / points`` for

   * ``serial``: ``run_sweep(workers=0)`` on a trivial point function (records, store, table);
   * ``dask``: the same trivial sweep on a 1-worker local cluster (scheduling, transfer);
   * ``dask-training``: the 8 training points on the 1-worker cluster vs the direct calls made
     just before (median over repeats; on a loaded machine this difference is noisy).

   Target: < 50 ms per point.

The machine is shared: the 1- and 2-minute load averages and the CPU count are recorded before
and after, so a speedup measured under load can be judged. Exit status 1 if a full run misses
a target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from proofs_check.experiments.g6_seeds import _FIXED, point as g6_point
from proofs_check.report import atomic_write_text
from proofs_check.sweep.engine import _limit_blas, close_client, local_client, run_sweep
from proofs_check.sweep.grid import Grid, Sweep, point_seed

SPEEDUP_MIN = 1.7
OVERHEAD_MAX = 0.050


def training_point(params, seed):
    """The benchmark's point: :func:`proofs_check.experiments.g6_seeds.point`."""
    return g6_point(params, seed)


def trivial_point(params, seed):
    return {"i": params["i"]}


def _training_sweep(steps: int) -> Sweep:
    fixed = dict(_FIXED) | {
        "steps": steps,
        "batch_size": 128,
        "lr": 0.05,
        "eval_every": 0,
        "eval_size": 256,
        "mc_prompts": 4000,
        "fn_prompts": 256,
    }
    g = Grid({"setting": ("nonmonotone",), "arch": ("scalar",)}, seeds=8, fixed=fixed)
    return Sweep("bench_train", fn=training_point, grids={"quick": [g], "full": [g]})


def _trivial_sweep(n: int) -> Sweep:
    g = Grid({"i": tuple(range(n))})
    return Sweep("bench_trivial", fn=trivial_point, grids={"quick": [g], "full": [g]})


def _timed_run(sweep, client=None, workers=None) -> float:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        out = run_sweep(
            sweep, profile="full", out=d, client=client, workers=workers, progress=False
        )
        t = time.perf_counter() - t0
        assert out.failed == 0, [r["error"] for r in out.rows if r["error"]]
    return t


def _point_call(fn, params, seed):
    return fn(params, seed)


def _executor(n: int):
    """A warmed pool of ``n`` spawned processes with one BLAS thread each (the ceiling
    reference; spawned like Dask's workers, so nothing is inherited from this process)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=n, mp_context=mp.get_context("spawn"), initializer=_limit_blas
    )


def _timed_processes(sweep, ex) -> float:
    pts = sweep.points("full")
    args = [(sweep.fn, dict(p), point_seed(sweep, p)) for p in pts]
    t0 = time.perf_counter()
    list(ex.map(_point_call, *zip(*args)))
    return time.perf_counter() - t0


def _direct(sweep) -> float:
    pts = sweep.points("full")
    t0 = time.perf_counter()
    for p in pts:
        sweep.fn(dict(p), point_seed(sweep, p))
    return time.perf_counter() - t0


def _load():
    la = os.getloadavg()
    return {"load1": round(la[0], 2), "load5": round(la[1], 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="short training points, one repeat (smoke test)"
    )
    ap.add_argument(
        "--repeats", type=int, default=3, help="alternating 1/2-worker repeats (default 3)"
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="Adam steps per training point (default 200; quick 40)",
    )
    ap.add_argument("--json", metavar="PATH", help="write the figures here")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    steps = args.steps or (40 if args.quick else 200)
    repeats = 1 if args.quick else args.repeats
    _limit_blas()  # the direct calls run with one BLAS thread, as the workers do
    res = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "steps": steps,
        "repeats": repeats,
        "load_before": _load(),
    }
    train = _training_sweep(steps)

    t0 = time.perf_counter()
    c1 = local_client(1)
    res["startup_1_worker_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    c2 = local_client(2)
    res["startup_2_workers_s"] = time.perf_counter() - t0
    e1, e2 = _executor(1), _executor(2)
    try:
        _timed_run(train, client=c1[0])  # warm-up: imports on the workers
        _timed_run(train, client=c2[0])
        _timed_processes(train, e1)
        _timed_processes(train, e2)
        t1s, t2s, tds, p1s, p2s = [], [], [], [], []
        for _ in range(repeats):
            # direct calls, 1 worker, 2 workers, 1 and 2 plain processes back to back: each
            # ratio sees the same load
            tds.append(_direct(train))
            t1s.append(_timed_run(train, client=c1[0]))
            t2s.append(_timed_run(train, client=c2[0]))
            p1s.append(_timed_processes(train, e1))
            p2s.append(_timed_processes(train, e2))
            print(
                f"  8 training points: direct {tds[-1]:.2f} s, 1 worker {t1s[-1]:.2f} s, 2 workers {t2s[-1]:.2f} s; "
                f"plain processes 1: {p1s[-1]:.2f} s, 2: {p2s[-1]:.2f} s (load {os.getloadavg()[0]:.2f})",
                file=sys.stderr,
                flush=True,
            )
        ratios = [a / b for a, b in zip(t1s, t2s)]
        ceiling = [a / b for a, b in zip(p1s, p2s)]
        res.update(
            t_1_worker_s=t1s,
            t_2_workers_s=t2s,
            speedup_runs=ratios,
            speedup=statistics.median(ratios),
            t_1_process_s=p1s,
            t_2_processes_s=p2s,
            ceiling_runs=ceiling,
            ceiling=statistics.median(ceiling),
        )
        res["dask_efficiency"] = res["speedup"] / res["ceiling"]

        res["direct_training_s"] = tds
        res["overhead_dask_training_s"] = statistics.median((a - b) / 8 for a, b in zip(t1s, tds))

        triv = _trivial_sweep(200 if not args.quick else 50)
        n = len(triv.points("full"))
        d_triv = statistics.median(_direct(triv) for _ in range(3))
        res["overhead_serial_s"] = (
            statistics.median(_timed_run(triv, workers=0) for _ in range(3)) - d_triv
        ) / n
        res["overhead_dask_s"] = (
            statistics.median(_timed_run(triv, client=c1[0]) for _ in range(3)) - d_triv
        ) / n
    finally:
        close_client(c1)
        close_client(c2)
        e1.shutdown()
        e2.shutdown()
    res["load_after"] = _load()

    print(
        f"sweep engine benchmark ({res['cpus']} CPUs; load before {res['load_before']}, after {res['load_after']})"
    )
    print(
        f"  speedup 2 workers / 1 worker, 8 training points ({steps} steps): {res['speedup']:.2f}x "
        f"(runs {', '.join(f'{r:.2f}' for r in ratios)}; target >= {SPEEDUP_MIN})"
    )
    print(
        f"  ceiling: the same points on plain process pools, 2 / 1 processes: {res['ceiling']:.2f}x "
        f"(runs {', '.join(f'{r:.2f}' for r in ceiling)}); Dask delivers {res['dask_efficiency']:.0%} of it"
    )
    print(
        f"  cluster start-up: 1 worker {res['startup_1_worker_s']:.1f} s, 2 workers {res['startup_2_workers_s']:.1f} s"
    )
    print(
        f"  per-point overhead: serial engine {res['overhead_serial_s'] * 1e3:.2f} ms, "
        f"1-worker Dask {res['overhead_dask_s'] * 1e3:.2f} ms, "
        f"1-worker Dask on training points {res['overhead_dask_training_s'] * 1e3:.1f} ms "
        f"(target < {OVERHEAD_MAX * 1e3:.0f} ms)"
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2) + "\n")
    ok = (
        res["speedup"] >= SPEEDUP_MIN
        and max(res["overhead_serial_s"], res["overhead_dask_s"]) < OVERHEAD_MAX
    )
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
