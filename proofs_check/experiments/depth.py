r"""The depth study behind claim G5: risk of 1-4 layer residual GLA (and linear attention).

Models (:func:`settings`): a 3-task setting (``m = (3,3,3)``, independent tasks, query
correlations ``ρ = (0.2, 0.4, 0.8)``, ``Σ = I_3``, ``σ = 0.5``), its single-task analogue
and (full) an anisotropic 3-task setting (``Σ = diag(1.8, 0.9, 0.3)``, full ``P_ℓ``).
Each grid point is one setting (both architectures and every depth share its training and
test prompts: common random numbers make the drops between depths precise). Writes
``depth.csv``.

>>> sorted(settings(False))
['3-task', 'single-task']
>>> [p["setting"] for p in EXPERIMENT.points(True)]
['3-task', 'single-task', '3-task-aniso']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from numerics import depth as nd
from numerics.data import MultitaskModel
from numerics.risk import null_risk

from ._base import Experiment, write_csv

__all__ = ["settings", "budget", "depth_rows", "write_depth_csv", "COLUMNS", "EXPERIMENT"]

COLUMNS = [
    "L",
    "architecture",
    "risk",
    "stderr",
    "train_risk",
    "settings",
    "setting",
    "diff_prev",
    "diff_prev_stderr",
    "null_risk",
    "closed_form_L1",
]


def settings(full: bool = False) -> dict[str, MultitaskModel]:
    """The tested models, by name (see the module docstring)."""
    out = {
        "3-task": MultitaskModel.k_task(
            np.array([3, 3, 3]), np.eye(3), np.array([0.2, 0.4, 0.8]), np.eye(3), sigma=0.5
        ),
        "single-task": MultitaskModel.single_task(9, np.eye(3), sigma=0.5),
    }
    if full:
        out["3-task-aniso"] = MultitaskModel.k_task(
            np.array([3, 3, 3]),
            np.eye(3),
            np.array([0.2, 0.4, 0.8]),
            np.diag([1.8, 0.9, 0.3]),
            sigma=0.5,
        )
    return out


def budget(full: bool) -> dict:
    """Training/test sizes. Quick: ~3 s CPU for 2 settings x 2 architectures x L = 1..4; the
    SAA excess risk of the trained 1-layer model is ~0.3% at N_train = 2000 (measured,
    reported), and maxiter = 80 leaves some multi-layer GLA runs short of convergence: quick
    risks are upper bounds on the SAA optimum, and the nesting/monotonicity of the training
    risk holds regardless. Full: 4x the training prompts, 4x the iterations, 5x the test prompts."""
    return (
        {"L_max": 4, "num_train": 8000, "num_test": 200000, "maxiter": 300}
        if full
        else {"L_max": 4, "num_train": 2000, "num_test": 40000, "maxiter": 80}
    )


def _closed_form_L1(model: MultitaskModel, architecture: str) -> float | str:
    """The certified 1-layer optimum, or "" where it has no closed form (the WPGD optimum is not
    gate-reachable: :func:`numerics.depth.one_layer_optimum` says so with a ValueError)."""
    try:
        return nd.one_layer_optimum(model, architecture)["risk"]
    except ValueError:
        return ""


def depth_rows(
    name: str,
    model: MultitaskModel,
    *,
    L_max: int,
    num_train: int,
    num_test: int,
    seed: int,
    maxiter: int,
    architectures: Sequence[str] = nd.ARCHITECTURES,
) -> list[dict]:
    """Rows ``(setting, architecture, L)`` of one setting. Training uses ``seed``, testing
    ``seed + 1`` (fresh prompts); all architectures and depths share both sets of prompts."""
    sols = []
    for arch in architectures:
        sols.extend(
            nd.optimise_depth(
                model, L_max, num_train=num_train, seed=seed, architecture=arch, maxiter=maxiter
            )
        )
    ev = nd.evaluate_depth(model, sols, num_test=num_test, seed=seed + 1)
    desc = (
        f"{name}: n={model.n} d={model.d} sigma={model.sigma:g} K={nd.segment_starts(model)[1]} "
        f"N_train={num_train} N_test={num_test} seed={seed}"
    )
    rows = []
    for i, s in enumerate(sols):
        first = s.L == 1
        rows.append(
            {
                "setting": name,
                "L": s.L,
                "architecture": s.architecture,
                "risk": float(ev.risk[i]),
                "stderr": float(ev.stderr[i]),
                "train_risk": s.train_risk,
                "diff_prev": "" if first else float(ev.risk[i - 1] - ev.risk[i]),
                "diff_prev_stderr": "" if first else float(ev.diff_stderr[i - 1, i]),
                "null_risk": null_risk(model),
                "closed_form_L1": _closed_form_L1(model, s.architecture) if first else "",
                "settings": desc,
            }
        )
    return rows


def write_depth_csv(path: str | os.PathLike[str], rows: list[dict]) -> None:
    """``depth.csv`` (10 significant digits), written atomically."""
    write_csv(path, rows, COLUMNS, digits=10)


def _points(full: bool) -> list[dict]:
    return (
        [{"setting": name, "full": True, "seed": 0} for name in settings(True)]
        if full
        else [{"setting": name, "full": False, "seed": 0} for name in settings(False)]
    )


def _run_point(p: dict) -> list[dict]:
    return depth_rows(
        p["setting"], settings(True)[p["setting"]], seed=p["seed"], **budget(p["full"])
    )


def _write(results: list[list[dict]], out: Path) -> None:
    write_depth_csv(Path(out) / "depth.csv", [r for rows in results for r in rows])


EXPERIMENT = Experiment(
    "depth",
    ("depth.csv",),
    _points,
    _run_point,
    _write,
    about="G5: risk vs depth L = 1..4, GLA and linear attention (~10 min)",
)
