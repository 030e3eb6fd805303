r"""Sweep ``phase_diagram``: when does scalar-gated GLA reach ``L*_WPGD``, and when does it beat
linear attention? One point per ``(K, spread)`` of the phase diagram of ``docs/gla_landscape.md``.

Setting: ``ρ_k = ρ̄ + s·(k − (K+1)/2)/K`` (``k = 1..K``), ``Σ = I_d``, ``Γ = I``, ``m_k = m``;
full grid ``K ∈ {2, 3, 4, 6}`` × ``s ∈ {−1, −0.75, …, 1}`` (36 points), ``d = 4``, ``σ = 0.5``,
``m = 4``, ``ρ̄ = 0.2``; quick: ``K ∈ {2, 3}``, ``s ∈ {−1, 0, 1}``.

Each point computes the row of :data:`COLUMNS` (the columns of ``docs/data/phase_diagram.csv``):
``L*_WPGD`` (:func:`numerics.landscape.solve_wpgd`), scalar GLA with distinct delimiters
(certified cone optimum), with shared delimiters and with none (gate-parameter multistart
searches, upper bounds, seeded by the point's seed), linear attention (``ω = 1``), vector
gating with ``D_k = 2d``, and the independent closed form. The multistart searches draw from
``default_rng(point seed)``, so every row is reproducible on its own, whatever the grid or the
number of workers (the serial driver before the sweep engine shared one generator across rows).

The export writes ``phase_diagram.csv`` in the format of ``docs/data`` (``#`` settings lines,
then the header).
"""

from __future__ import annotations

import csv
import io

import numpy as np

from numerics.data import MultitaskModel
from numerics.gla_landscape import EQUAL_TOL, independent_closed_form, solve_gla
from numerics.landscape import solve_wpgd
from numerics.risk import null_risk, profile_risk

from ..sweep.grid import Grid, Sweep
from ..sweep.store import atomic_write_bytes

__all__ = ["COLUMNS", "SWEEP", "export", "point", "rows_for_csv"]

COLUMNS = [
    "K",
    "spread",
    "rho",
    "L_wpgd",
    "L_gla_distinct",
    "L_gla_shared",
    "L_gla_none",
    "L_la",
    "L_vector2",
    "gla_eq_wpgd",
    "gla_gt_la",
    "closed_form_L_gla",
    "closed_form_reaches",
]

_FIXED = {"d": 4, "sigma": 0.5, "m_per": 4, "rho_bar": 0.2, "query_var": 1.0}
_SPREADS = tuple(float(s) for s in np.linspace(-1.0, 1.0, 9))


def point(params: dict, seed: int) -> dict:
    """One row of the phase diagram (see the module docstring)."""
    K, s, d = int(params["K"]), float(params["spread"]), int(params["d"])
    sigma, q, rho_bar = float(params["sigma"]), float(params["query_var"]), float(params["rho_bar"])
    m = np.full(K, int(params["m_per"]))
    rho = rho_bar + s * (np.arange(1, K + 1) - (K + 1) / 2) / K
    model = MultitaskModel.k_task(m, np.eye(K), rho, np.eye(d), sigma, q)
    rng = np.random.default_rng(seed)
    L0 = null_risk(model)
    Lw = solve_wpgd(model).risk
    Ld = solve_gla(model, delimiters="distinct", certify=False).risk
    Ls = solve_gla(model, delimiters="shared", rng=rng).risk
    Ln = solve_gla(model, delimiters="none", rng=rng).risk
    Lla = profile_risk(model, np.ones(model.n))
    Lv = solve_gla(model, gating="vector").risk
    cf = independent_closed_form(m, rho, d, sigma, q)
    return {
        "rho": " ".join(f"{v:.4f}" for v in rho),
        "L_wpgd": float(Lw),
        "L_gla_distinct": float(Ld),
        "L_gla_shared": float(Ls),
        "L_gla_none": float(Ln),
        "L_la": float(Lla),
        "L_vector2": float(Lv),
        "gla_eq_wpgd": bool((Ld - Lw) / L0 < EQUAL_TOL),
        "gla_gt_la": bool((Lla - Ld) / L0 > EQUAL_TOL),
        "closed_form_L_gla": float(cf["L_gla"]),
        "closed_form_reaches": bool(cf["reaches"]),
    }


def rows_for_csv(rows: list[dict]) -> str:
    """The CSV text of ``docs/data/phase_diagram.csv`` for the sweep's rows (grid order)."""
    r0 = rows[0]
    settings = {
        "Sigma": f"I_{r0['d']}",
        "d": r0["d"],
        "sigma": r0["sigma"],
        "m_k": r0["m_per"],
        "rho_bar": r0["rho_bar"],
        "Gamma": "I",
        "query_var": r0["query_var"],
        "rho_k": "rho_bar + s*(k-(K+1)/2)/K",
        "seed": "per point, derived from (K, spread) by the sweep engine (gla-verify sweep phase_diagram)",
    }
    buf = io.StringIO()
    for k, v in settings.items():
        buf.write(f"# {k} = {v}\n")
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.12g}" if isinstance(r[k], float) else r[k]) for k in COLUMNS})
    return buf.getvalue()


def export(rows: list[dict], out) -> list[str]:
    from pathlib import Path

    atomic_write_bytes(Path(out) / "phase_diagram.csv", rows_for_csv(rows).encode())
    return ["phase_diagram.csv"]


def _summary(rows, profile):
    eq = sum(r["gla_eq_wpgd"] for r in rows)
    gt = sum(r["gla_gt_la"] for r in rows)
    bad_cf = [
        r for r in rows if abs(r["closed_form_L_gla"] - r["L_gla_distinct"]) > 1e-8 * r["L_wpgd"]
    ]
    return {
        "points": len(rows),
        "gla_eq_wpgd": eq,
        "gla_gt_la": gt,
        "closed_form_disagreements": len(bad_cf),
        "text": f"phase_diagram: {len(rows)} settings; scalar GLA = L*_WPGD in {eq}, GLA < LA in {gt}; "
        f"closed form vs certified cone optimum: {len(rows) - len(bad_cf)}/{len(rows)} agree "
        f"(relative 1e-8)",
    }


SWEEP = Sweep(
    "phase_diagram",
    fn=point,
    description="GLA vs WPGD vs linear attention over K and the spread of rho (docs/data/phase_diagram.csv)",
    grids={
        "full": [Grid({"K": (2, 3, 4, 6), "spread": _SPREADS}, fixed=_FIXED)],
        "quick": [Grid({"K": (2, 3), "spread": (-1.0, 0.0, 1.0)}, fixed=_FIXED)],
    },
    seed_from=("K", "spread"),
    summarize=_summary,
    export=export,
)
