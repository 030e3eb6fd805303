"""Benchmark of the general-dimension proofs: ``python -m bench.proofs [--json PATH] [--repeats N]``.

For each claim with a matrix-engine proof (:mod:`theory.general`) it times, in one process,
the median of ``--repeats`` runs of the general proof and of the small-instance reference
proof of the same identity (the coordinate Wick engine or the instance-by-instance SymPy
check), and prints the ratio ``general / instance``. The reference sizes are those of the
default theory legs, e.g. ``check_L1(2, 2)`` and ``check_L1(2, 3)``. A ratio below 1 means the
proof for every ``n`` and ``d`` costs less than one of the instances it replaces. Caches of
the coordinate derivation are cleared before every run so both sides start cold.

The rule cross-check (:func:`theory.matrix_crosscheck.cross_check_rules`) is timed as well;
it runs once per suite run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from theory import construction as con, general as g, population_loss as pl, stationarity as st
from theory.matrix_crosscheck import cross_check_rules

REFERENCES = {
    "L1": ("check_L1(2, 2)", lambda: pl.check_L1(2, 2)),
    "L1 (2, 3)": ("check_L1(2, 3)", lambda: pl.check_L1(2, 3)),
    "L1f": ("check_featurewise(2, 2)", lambda: pl.check_featurewise(2, 2)),
    "L2": ("check_L2(d=2, K=3)", lambda: st.check_L2()),
    "L3": ("check_L3(2, 2, 3)", lambda: st.check_L3()),
    "L6": ("check_L6(n = 1..3)", lambda: st.check_L6(n_values=(1, 2, 3))),
    "L7": ("check_L7()", lambda: st.check_L7()),
    "C1": ("prove_c1() (8 instances)", lambda: con.prove_c1()),
    "C2": ("prove_c2() (6 instances)", lambda: con.prove_c2()),
}


def _median(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        pl.derive_risk.cache_clear()
        g._state_formula.cache_clear()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.proofs", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per timing (median), >= 1")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats: must be >= 1")
    rows = []
    for key, (label, ref) in REFERENCES.items():
        claim = key.split()[0]
        t_gen = _median(g.PROOFS[claim], args.repeats)
        t_ref = _median(ref, args.repeats)
        rows.append(
            {
                "claim": claim,
                "reference": label,
                "general_s": t_gen,
                "instance_s": t_ref,
                "ratio": t_gen / t_ref,
            }
        )
        print(
            f"{claim:4s} general {t_gen:7.3f} s   {label:28s} {t_ref:7.3f} s   ratio {t_gen / t_ref:6.3f}",
            flush=True,
        )
    t_cc = _median(lambda: cross_check_rules(d=2), args.repeats)
    print(f"rule cross-check (d = 2): {t_cc:.2f} s")
    if args.json:
        from proofs_check.report import atomic_write_text

        doc = {"rows": rows, "cross_check_s": t_cc, "repeats": args.repeats}
        atomic_write_text(args.json, json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
