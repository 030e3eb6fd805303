"""Small point functions for documentation, tests and checking a cluster set-up.

``smoke`` is a registered sweep (``gla-verify sweep smoke --quick``): a Monte Carlo estimate of
the null risk ``E y²`` of a fixed multitask model at a few sample sizes, compared with its exact
value. It runs in seconds and exercises the whole path (seeds, workers, store, table).
"""

from __future__ import annotations

import math

import numpy as np

from .grid import Grid, Sweep

__all__ = ["SMOKE", "smoke_point", "square_point"]


def square_point(params: dict, seed: int) -> dict:
    """``{"y": x²}`` (ignores the seed)."""
    return {"y": float(params["x"]) ** 2}


def smoke_point(params: dict, seed: int) -> dict:
    """Monte Carlo of ``E y²`` for a 2-task model (``d``, ``m`` per task) from ``num`` prompts
    drawn with ``default_rng(seed)``; ``z`` = (estimate − exact) / standard error."""
    from numerics.data import MultitaskModel
    from numerics.risk import null_risk

    d, m, num = int(params["d"]), int(params["m"]), int(params["num"])
    model = MultitaskModel.k_task([m, m], np.eye(2), [0.3, 0.7], np.eye(d), 0.5)
    p = model.sample(num, np.random.default_rng(seed))
    e = p.y_query**2
    est, se = float(e.mean()), float(e.std(ddof=1) / math.sqrt(num))
    exact = null_risk(model)
    return {"estimate": est, "stderr": se, "exact": exact, "z": (est - exact) / se}


def _smoke_summary(rows, profile):
    zs = [r["z"] for r in rows]
    worst = max(abs(z) for z in zs)
    return {
        "points": len(rows),
        "max_abs_z": worst,
        "text": f"smoke: {len(rows)} Monte Carlo estimates of the null risk, max |z| = {worst:.2f} "
        f"({'consistent' if worst < 4 else 'INCONSISTENT'} at 4 standard errors)",
    }


SMOKE = Sweep(
    "smoke",
    fn=smoke_point,
    description="seconds-long Monte Carlo check of a cluster set-up (null risk)",
    grids={
        "quick": [Grid({"d": (2, 4), "m": (3,), "num": (2000,)}, seeds=2)],
        "full": [Grid({"d": (2, 4, 8), "m": (3, 6), "num": (20000,)}, seeds=4)],
    },
    summarize=_smoke_summary,
)
