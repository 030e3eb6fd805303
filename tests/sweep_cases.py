"""Sweeps used by tests/test_sweep*.py (importable by Dask workers: tests/ is on their path)."""

from __future__ import annotations

import os
import time

import numpy as np

from proofs_check.sweep.grid import Grid, Sweep

CALLS: list = []


def noisy_point(params, seed):
    """A few BLAS-backed operations on random data from the seed (bit-exactness test)."""
    CALLS.append(dict(params))
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((60, 60))
    S = A @ A.T + np.eye(60)
    x = np.linalg.solve(S, rng.standard_normal(60))
    return {
        "value": float(x @ x),
        "vec": x[:3].tolist(),
        "trace": float(np.trace(np.linalg.inv(S))),
    }


def sleepy_point(params, seed):
    time.sleep(float(params["delay"]))
    return {"seed_mod": seed % 1000, "i": params["i"]}


def failing_point(params, seed):
    if params["i"] == 2 and not os.environ.get("SWEEP_TEST_FIXED"):
        raise RuntimeError("planted failure at i=2")
    return {"i2": params["i"] ** 2}


NOISY = Sweep(
    "t_noisy",
    fn=noisy_point,
    grids={
        "quick": [Grid({"a": (1, 2, 3)}, seeds=2)],
        "full": [Grid({"a": (1, 2, 3, 4)}, seeds=2)],
    },
)
SLEEPY = Sweep(
    "t_sleepy",
    fn=sleepy_point,
    grids={
        "quick": [Grid({"i": tuple(range(8)), "delay": (0.4,)})],
        "full": [Grid({"i": tuple(range(8)), "delay": (0.4,)})],
    },
)
FAILING = Sweep(
    "t_failing",
    fn=failing_point,
    grids={"quick": [Grid({"i": (0, 1, 2, 3)})], "full": [Grid({"i": (0, 1, 2, 3)})]},
)


def exp_points(full):
    return [{"x": i, "seed": 7} for i in range(4 if full else 2)]


def exp_run_point(p):
    rng = np.random.default_rng([p["seed"], p["x"]])
    return [{"x": p["x"], "draw": float(rng.standard_normal())}]


def exp_write(results, out):
    (out / "exp.csv").write_text(
        "x,draw\n" + "".join(f"{r['x']},{r['draw']!r}\n" for rows in results for r in rows)
    )


class FakeExperiment:
    """The shape of proofs_check.experiments' Experiment (name, files, points, run_point, write)."""

    name, files, about = "t_exp", ("exp.csv",), "a fake experiment"
    points = staticmethod(exp_points)
    run_point = staticmethod(exp_run_point)
    write = staticmethod(exp_write)
