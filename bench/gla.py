"""Benchmark of the GLA engines: ``python -m bench.gla [--quick] [--json PATH] [--repeats N]``.

Workloads (float64, ``Dk = Dv = D``):

* ``icl``:  B=4096 prompts, T=128 tokens, D=17 (an in-context-learning batch);
* ``long``: B=8, T=16384, D=64 (a long sequence).

For each workload and gate (``scalar``, ``key``) it times, in one process and on the
same arrays, the median of ``--repeats`` runs (floor and chunked runs alternate, and
``chunked / floor`` is the median of the per-repeat ratios) of:

* ``floor``: the memory-traffic floor, ``np.copyto`` of arrays the size of
  ``q, k, v, log_g`` into preallocated buffers plus filling an array the size of ``o``
  (every engine must at least read its inputs and write its output);
* ``gla_chunked`` (default chunk size), ``gla_recurrent`` (the loop) and ``gla_final``.

It prints a table with the ratios ``chunked / recurrent`` and ``chunked / floor`` and
the relative RMS difference chunked vs recurrent.  Acceptance (scalar gates, both
workloads): chunked faster than the loop and within 10x of the floor; the exit code is
1 if a full (non ``--quick``) run misses it.  ``--quick`` uses small shapes (smoke test).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from numerics.gla import default_chunk_size, gla_chunked, gla_final, gla_recurrent

WORKLOADS = {"icl": (4096, 128, 17), "long": (8, 16384, 64)}
QUICK = {"icl": (256, 128, 17), "long": (2, 2048, 32)}
FLOOR_RATIO_MAX = 10.0


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def bench_one(name: str, B: int, T: int, D: int, gate: str, repeats: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, T, D))
    k = rng.standard_normal((B, T, D)) / np.sqrt(D)
    v = rng.standard_normal((B, T, D))
    gshape = (B, T) if gate == "scalar" else (B, T, D)
    # Gates in (e^-1/2, 1]: realistic retention, long memory, nontrivial decay.
    log_g = -0.5 * rng.random(gshape)
    ins = (q, k, v, log_g)
    bufs = [np.empty_like(x) for x in ins]
    o_buf = np.empty((B, T, D))

    def floor():
        for b, x in zip(bufs, ins):
            np.copyto(b, x)
        o_buf.fill(1.0)

    floor()  # touch the buffers once so page faults are not timed
    res = {"workload": name, "B": B, "T": T, "Dk": D, "Dv": D, "gate": gate,
           "chunk_size": default_chunk_size(T, D, D, gate), "repeats": repeats}
    o_c = gla_chunked(*ins, gate=gate)
    # Floor and chunked runs alternate and the ratio is taken per repeat (then the
    # median): on a shared machine the load drifts, and pairing cancels most of it.
    fl, ch = [], []
    for _ in range(repeats):
        fl.append(_median_time(floor, 1))
        ch.append(_median_time(lambda: gla_chunked(*ins, gate=gate), 1))
    res["floor_s"] = float(np.median(fl))
    res["chunked_s"] = float(np.median(ch))
    res["chunked_over_floor"] = float(np.median(np.array(ch) / np.array(fl)))
    o_r = gla_recurrent(*ins, gate=gate)
    # The loop is slow and its time is stable: fewer repeats keep the bench short.
    res["recurrent_s"] = _median_time(lambda: gla_recurrent(*ins, gate=gate), max(1, min(repeats, 2)))
    res["final_s"] = _median_time(lambda: gla_final(*ins, gate=gate), repeats)
    res["rel_rms_chunked_vs_recurrent"] = float(np.linalg.norm(o_c - o_r) / np.linalg.norm(o_r))
    o_f = gla_final(*ins, gate=gate)
    res["rel_rms_final_vs_recurrent"] = float(np.linalg.norm(o_f - o_r[:, -1]) / np.linalg.norm(o_r[:, -1]))
    res["chunked_over_recurrent"] = res["chunked_s"] / res["recurrent_s"]
    res["accepted"] = bool(res["chunked_over_recurrent"] < 1.0 and res["chunked_over_floor"] <= FLOOR_RATIO_MAX)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gla", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes (smoke test)")
    ap.add_argument("--json", metavar="PATH", help="save the figures as JSON")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per engine (median)")
    ap.add_argument("--gates", default="scalar,key", help="comma-separated gates to run")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    gates = [g.strip() for g in args.gates.split(",") if g.strip()]
    for g in gates:
        if g not in ("scalar", "key"):
            ap.error(f"--gates: unknown gate {g!r}")
    shapes = QUICK if args.quick else WORKLOADS
    rows = []
    hdr = (f"{'workload':8} {'gate':6} {'B':>5} {'T':>6} {'D':>3} {'C':>3} {'floor':>8} {'chunked':>8} "
           f"{'recur':>8} {'final':>8} {'ch/rec':>7} {'ch/floor':>8} {'relrms':>8}  ok")
    print(hdr)
    print("-" * len(hdr))
    for name, (B, T, D) in shapes.items():
        for gate in gates:
            r = bench_one(name, B, T, D, gate, args.repeats)
            rows.append(r)
            ok = "-" if args.quick else ("yes" if r["accepted"] else "NO")
            print(f"{name:8} {gate:6} {B:5d} {T:6d} {D:3d} {r['chunk_size']:3d} {r['floor_s']:8.4f} "
                  f"{r['chunked_s']:8.4f} {r['recurrent_s']:8.4f} {r['final_s']:8.4f} "
                  f"{r['chunked_over_recurrent']:7.3f} {r['chunked_over_floor']:8.2f} "
                  f"{r['rel_rms_chunked_vs_recurrent']:8.1e}  {ok}",
                  flush=True)
    scalar_ok = all(r["accepted"] for r in rows if r["gate"] == "scalar")
    verdict = ("not evaluated (--quick shapes fit in cache, the floor is not a memory floor)"
               if args.quick else ("PASS" if scalar_ok else "FAIL"))
    print(f"\ntimes in seconds (median of {args.repeats}); acceptance (scalar: faster than the loop, "
          f"<= {FLOOR_RATIO_MAX:g}x floor): {verdict}")
    if args.json:
        meta = {"python": platform.python_version(), "numpy": np.__version__,
                "machine": platform.machine(), "cpus": os.cpu_count(),
                "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                "quick": args.quick, "floor_ratio_max": FLOOR_RATIO_MAX, "scalar_accepted": scalar_ok}
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"meta": meta, "results": rows}, fh, indent=2)
        os.replace(tmp, args.json)
    return 0 if (scalar_ok or args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
