r"""Study ``g6_seeds``: how reliably does training reach the predicted optimum? Trained vs
predicted block weights and ``P`` over many seeds, with an anisotropic feature covariance.

Claim G6 trains one seed per case with ``Σ = I``. Here ``Σ`` is anisotropic (condition number
:data:`COND`, Haar eigenvectors, trace ``d``; :func:`numerics.data.random_covariance` with
``default_rng(sigma_seed)``), so ``P*`` is a full matrix, not a multiple of ``I``, and the
trained ``P`` has to find its orientation. Full profile: ``d = 4``, the monotone and the
non-monotone 3-task settings of G6 (``m = 6`` per task, distinct delimiters, ``σ = 0.1``),
linear attention, scalar and vector gating, 10 seeds each, G6's ``quick`` training budget.

Each row is one :func:`numerics.trained.run_case` (WPGD-structure restriction): ``rel_gap``
(exact trained risk vs the architecture's predicted optimum), ``cos_omega`` (trained vs
predicted block weights, scale-free), ``cos_P``, ``fn_rel_rms_pred``. The summary gives, per
(setting, architecture), the distribution over seeds (min, quartiles, max, mean ± sd) and the
fraction of seeds within G6's tolerances (gap <= 2%, cosines >= 0.98).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numerics.data import MultitaskModel, random_covariance
from numerics.prompts import StructuredPrompt

from ..sweep.grid import Grid, Sweep
from . import trained as T
from ._base import write_csv

__all__ = [
    "COND",
    "COS_TOL",
    "FILES",
    "POINT_COLUMNS",
    "RISK_TOL",
    "SUMMARY_COLUMNS",
    "SETTINGS",
    "SWEEP",
    "AnisotropicSetting",
    "export",
    "point",
    "summarize",
]

#: G6's tolerances (proofs_check/claims/trained.py).
RISK_TOL = 0.02
COS_TOL = 0.98
#: Condition number of Σ.
COND = 10.0

#: name -> (rho per task); m = m_per for every task.
SETTINGS = {"monotone": (0.15, 0.35, 0.85), "nonmonotone": (0.55, 0.0, 0.8)}


@dataclass(frozen=True)
class AnisotropicSetting(T.Setting):
    """A :class:`numerics.trained.Setting` with a general feature covariance ``Sigma``
    (a ``d × d`` nested tuple, symmetric positive definite) instead of ``I_d``."""

    Sigma: tuple = ()

    def model(self) -> MultitaskModel:
        S = np.asarray(self.Sigma, dtype=np.float64) if self.Sigma else np.eye(self.d)
        if S.shape != (self.d, self.d):
            raise ValueError(f"Sigma: expected shape {(self.d, self.d)}, got {S.shape}")
        return StructuredPrompt(tuple(self.m), "distinct").model(
            self.Gamma_matrix, np.asarray(self.rho, float), S, self.sigma
        )

    def describe(self) -> dict:
        out = super().describe()
        out["Sigma"] = [list(r) for r in self.Sigma] if self.Sigma else f"I_{self.d}"
        return out


def make_setting(params) -> AnisotropicSetting:
    d = int(params["d"])
    S = random_covariance(
        d, np.random.default_rng(int(params["sigma_seed"])), cond=float(params["cond"])
    )
    rho = SETTINGS[params["setting"]]
    m = int(params["m"])
    return AnisotropicSetting(
        params["setting"],
        (m,) * len(rho),
        rho,
        d,
        float(params["sigma"]),
        Sigma=tuple(tuple(float(v) for v in r) for r in S),
    )


def point(params: dict, seed: int) -> dict:
    """Train one (setting, architecture, seed) and compare with the predicted optimum."""
    setting = make_setting(params)
    prof = T.Profile.from_params(params)
    r = T.run_case(setting, params["arch"], profile=prof, seed=seed)
    f = r.figures
    lam = np.linalg.eigvalsh(np.asarray(setting.Sigma))
    keep = (
        "predicted_risk",
        "trained_risk",
        "trained_risk_mc",
        "trained_risk_se",
        "rel_gap",
        "cos_omega",
        "cos_omega_tokens",
        "cos_P",
        "rel_frob_P",
        "rank1_residual",
        "fn_rel_rms_pred",
        "fn_rel_rms_grad",
        "fn_fitted_scale",
        "null_risk",
        "Dk",
        "prediction_source",
    )
    out = {k: f[k] for k in keep}
    out["sigma_eigs"] = [float(v) for v in lam]
    out["u_trained"] = [float(v) for v in f["u_trained"]]
    out["u_predicted"] = [float(v) for v in f["u_predicted"]]
    return out


def _dist(v) -> dict:
    v = np.sort(np.asarray(v, float))
    q = np.quantile(v, [0.25, 0.5, 0.75])
    return {
        "min": float(v[0]),
        "q25": float(q[0]),
        "median": float(q[1]),
        "q75": float(q[2]),
        "max": float(v[-1]),
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan,
        "count": int(v.size),
    }


def summarize(rows: list[dict], profile: str) -> dict:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["arch"]), []).append(r)
    cases = []
    lines = [
        "g6_seeds: distribution over seeds (anisotropic Sigma), per setting / architecture",
        f"{'setting':<12} {'arch':<7} {'seeds':>5} {'gap min':>8} {'median':>8} {'max':>8} "
        f"{'cos_w min':>9} {'median':>7} {'cos_P min':>9} {'median':>7} {'within':>7}",
    ]
    for (s, a), rs in groups.items():
        gap, cw, cp = (_dist([r[k] for r in rs]) for k in ("rel_gap", "cos_omega", "cos_P"))
        ok = sum(
            r["rel_gap"] <= RISK_TOL and r["cos_omega"] >= COS_TOL and r["cos_P"] >= COS_TOL
            for r in rs
        )
        cases.append(
            {
                "setting": s,
                "arch": a,
                "rel_gap": gap,
                "cos_omega": cw,
                "cos_P": cp,
                "within_tol": ok,
                "seeds": len(rs),
                "predicted_risk": rs[0]["predicted_risk"],
            }
        )
        lines.append(
            f"{s:<12} {a:<7} {len(rs):>5} {gap['min']:>+8.2%} {gap['median']:>+8.2%} {gap['max']:>+8.2%} "
            f"{cw['min']:>9.4f} {cw['median']:>7.4f} {cp['min']:>9.4f} {cp['median']:>7.4f} "
            f"{ok:>3}/{len(rs):<3}"
        )
    lines.append(
        f"within = seeds with gap <= {RISK_TOL:.0%}, cos_omega >= {COS_TOL} and cos_P >= {COS_TOL}"
    )
    return {
        "profile": profile,
        "risk_tol": RISK_TOL,
        "cos_tol": COS_TOL,
        "cases": cases,
        "text": "\n".join(lines),
    }


#: The files :func:`export` writes (``docs/data/g6_seeds*.csv`` are the full profile's).
FILES = ("g6_seeds.csv", "g6_seeds_summary.csv")
#: ``g6_seeds.csv``: one row per trained point (``u_*``: block weights, unit norm;
#: ``sigma_eigs``: eigenvalues of ``Σ``; lists as space-separated numbers).
POINT_COLUMNS = [
    "setting",
    "arch",
    "rep",
    "seed",
    "d",
    "m",
    "cond",
    "sigma_seed",
    "Dk",
    "steps",
    "lr",
    "batch_size",
    "predicted_risk",
    "trained_risk",
    "trained_risk_mc",
    "trained_risk_se",
    "rel_gap",
    "cos_omega",
    "cos_omega_tokens",
    "cos_P",
    "rel_frob_P",
    "rank1_residual",
    "fn_rel_rms_pred",
    "fn_rel_rms_grad",
    "null_risk",
    "u_trained",
    "u_predicted",
    "sigma_eigs",
]
_STATS = ("min", "q25", "median", "q75", "max", "mean", "sd")
#: ``g6_seeds_summary.csv``: one row per ``(setting, arch)``: the distribution over seeds of
#: ``rel_gap``, ``cos_omega`` and ``cos_P``, and how many seeds meet G6's tolerances.
SUMMARY_COLUMNS = (
    ["setting", "arch", "seeds", "predicted_risk"]
    + [f"{q}_{s}" for q in ("rel_gap", "cos_omega", "cos_P") for s in _STATS]
    + ["within_tol"]
)


def _space(v):
    return " ".join(repr(float(x)) for x in v) if isinstance(v, (list, tuple)) else v


def export(rows: list[dict], out: str | os.PathLike) -> list[str]:
    """Write :data:`FILES` into ``out`` (atomically, 10 significant digits) from the sweep's
    rows (every point ok); returns their names."""
    out = Path(out)
    comments = {
        "settings": ", ".join(f"{k}: rho = {v}" for k, v in SETTINGS.items()),
        "Sigma": f"random_covariance(d, default_rng(sigma_seed), cond = {COND})",
        "tolerance": f"rel_gap <= {RISK_TOL}, cos_omega and cos_P >= {COS_TOL} (G6)",
        "source": "gla-verify sweep g6_seeds (proofs_check/experiments/g6_seeds.py)",
    }
    pts = [{c: _space(r.get(c)) for c in POINT_COLUMNS} for r in rows]
    write_csv(out / FILES[0], pts, POINT_COLUMNS, digits=10, comments=comments)
    srows = []
    for c in summarize(rows, "export")["cases"]:
        row = {k: c[k] for k in ("setting", "arch", "seeds", "predicted_risk")}
        for q in ("rel_gap", "cos_omega", "cos_P"):
            row.update({f"{q}_{s}": c[q][s] for s in _STATS})
        row["within_tol"] = c["within_tol"]
        srows.append(row)
    write_csv(out / FILES[1], srows, SUMMARY_COLUMNS, digits=10, comments=comments)
    return list(FILES)


def _budget(name: str) -> dict:
    p = T.PROFILES[name]
    return {
        k: getattr(p, k)
        for k in (
            "steps",
            "batch_size",
            "lr",
            "eval_every",
            "eval_size",
            "mc_prompts",
            "fn_prompts",
        )
    }


_FIXED = {"d": 4, "m": 6, "sigma": 0.1, "cond": COND, "sigma_seed": 0}

SWEEP = Sweep(
    "g6_seeds",
    fn=point,
    description="G6 over 10 seeds with anisotropic Sigma (d=4): distribution of risk gap and cosines",
    grids={
        "full": [
            Grid(
                {"setting": tuple(SETTINGS), "arch": ("linear", "scalar", "vector")},
                seeds=10,
                fixed=_FIXED | _budget("quick"),
            )
        ],
        "quick": [
            Grid(
                {"setting": ("nonmonotone",), "arch": ("scalar", "vector")},
                seeds=2,
                fixed=_FIXED | {"d": 3, "m": 3} | _budget("tiny"),
            )
        ],
    },
    summarize=summarize,
    export=export,
)
