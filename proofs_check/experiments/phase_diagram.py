r"""The phase diagram behind claims G1/G2: where scalar GLA reaches WPGD and where it beats LA.

Sweep ``ρ_k = ρ̄ + s·(k − (K+1)/2)/K`` (``k = 1..K``; ``s < 0``: decreasing toward the query,
``s > 0``: increasing) and ``K``; ``Σ = I_d``, ``Γ = I``, ``m_k = m_per``. Each grid point
``(K, s)`` gives one row: ``L*_WPGD`` (solve_wpgd), ``L*_GLA`` with distinct delimiters
(certified cone), with shared delimiters and with none (gate-parameter search, seeded per
point), ``L_LA`` (``ω = 1``), ``L*_vector`` with ``D_k = 2d`` (= ``L*_WPGD``), ``gla_eq_wpgd``
(relative gap below ``CERTIFIED_VALUE``), ``gla_gt_la`` and the closed form of
:func:`numerics.gla_landscape.independent_closed_form`. Writes ``phase_diagram.csv``.

>>> pts = EXPERIMENT.points(True)
>>> len(pts), pts[0]["K"], pts[0]["spread"]
(36, 2, -1.0)
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from numerics.data import MultitaskModel
from numerics.gla_landscape import independent_closed_form, solve_gla
from numerics.landscape import solve_wpgd
from numerics.risk import null_risk, profile_risk

from .. import tolerances as tol
from ._base import Experiment, write_csv

__all__ = ["COLUMNS", "SETTINGS", "phase_row", "write_phase_csv", "EXPERIMENT"]

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
#: The fixed part of the model (written as comment lines at the top of the CSV).
SETTINGS: dict[str, Any] = {
    "Sigma": "I_4",
    "d": 4,
    "sigma": 0.5,
    "m_k": 4,
    "rho_bar": 0.2,
    "Gamma": "I",
    "query_var": 1.0,
    "rho_k": "rho_bar + s*(k-(K+1)/2)/K",
    "seed": 0,
}


def phase_row(K: int, spread: float, seed: int = 0) -> dict:
    """One row of the phase diagram (pure: the searches use a generator seeded by ``(seed, K, spread)``)."""
    d, sigma, m_per, rho_bar, qv = (
        SETTINGS["d"],
        SETTINGS["sigma"],
        SETTINGS["m_k"],
        SETTINGS["rho_bar"],
        1.0,
    )
    rng = np.random.default_rng([seed, K, zlib.crc32(f"{spread:.6f}".encode())])
    m = np.full(K, m_per)
    rho = rho_bar + spread * (np.arange(1, K + 1) - (K + 1) / 2) / K
    model = MultitaskModel.k_task(m, np.eye(K), rho, np.eye(d), sigma, qv)
    L0 = null_risk(model)
    Lw = solve_wpgd(model).risk
    Ld = solve_gla(model, delimiters="distinct", certify=False).risk
    Ls = solve_gla(model, delimiters="shared", rng=rng).risk
    Ln = solve_gla(model, delimiters="none", rng=rng).risk
    Lla = profile_risk(model, np.ones(model.n))
    cf = independent_closed_form(m, rho, d, sigma, qv)
    return {
        "K": K,
        "spread": float(spread),
        "rho": " ".join(f"{v:.4f}" for v in rho),
        "L_wpgd": Lw,
        "L_gla_distinct": Ld,
        "L_gla_shared": Ls,
        "L_gla_none": Ln,
        "L_la": Lla,
        "L_vector2": solve_gla(model, gating="vector").risk,
        "gla_eq_wpgd": bool((Ld - Lw) / L0 < tol.CERTIFIED_VALUE),
        "gla_gt_la": bool((Lla - Ld) / L0 > tol.CERTIFIED_VALUE),
        "closed_form_L_gla": cf["L_gla"],
        "closed_form_reaches": cf["reaches"],
    }


def write_phase_csv(path: str | os.PathLike[str], rows: list[dict]) -> None:
    """CSV: ``#``-comment lines with :data:`SETTINGS`, then a header of :data:`COLUMNS` (atomic)."""
    write_csv(path, rows, COLUMNS, digits=12, comments=SETTINGS)


def _points(full: bool) -> list[dict]:
    return [
        {"K": K, "spread": float(s), "seed": SETTINGS["seed"]}
        for K in (2, 3, 4, 6)
        for s in np.linspace(-1.0, 1.0, 9)
    ]


EXPERIMENT = Experiment(
    "phase_diagram",
    ("phase_diagram.csv",),
    _points,
    lambda p: phase_row(p["K"], p["spread"], p["seed"]),
    lambda rows, out: write_phase_csv(Path(out) / "phase_diagram.csv", rows),
    about="G1/G2: optima of WPGD, GLA (three delimiter kinds), LA, vector GLA over (K, spread)",
)
