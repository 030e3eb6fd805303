r"""The phase diagram behind claims G1/G2: where scalar GLA reaches WPGD and where it beats LA.

Sweep ``ρ_k = ρ̄ + s·(k − (K+1)/2)/K`` (``k = 1..K``; ``s < 0``: decreasing toward the query,
``s > 0``: increasing) and ``K``; ``Σ = I_d``, ``Γ = I``, ``m_k = m_per``. Each grid point
``(K, s)`` gives one row: ``L*_WPGD`` (solve_wpgd), ``L*_GLA`` with distinct delimiters
(certified cone), with shared delimiters and with none (gate-parameter search, seeded per
point), ``L_LA`` (``ω = 1``), ``L*_vector`` with ``D_k = 2d`` (= ``L*_WPGD``), ``gla_eq_wpgd``
(relative gap below ``CERTIFIED_VALUE``), ``gla_gt_la`` and the closed form of
:func:`numerics.gla_landscape.independent_closed_form`. Writes ``phase_diagram.csv``.

The figure of G1 draws the two-dimensional map over the spread ``s`` and the mean correlation
``ρ̄`` at one ``K`` (:data:`MAP_K`) from the same closed form (:func:`closed_form_map`; exact,
no sampling), with the predicted boundaries: scalar GLA reaches WPGD iff ``s(ρ̄ − c_K s) >= 0``,
``c_K = (K−1)/(2K)`` (:func:`reach_slope`: the block weights ``ρ_k/(m+1+d+σ²)`` are of one sign
and non-decreasing in magnitude), and gains over linear attention iff ``ρ̄ s > 0`` or
``|ρ̄| < κ_K |s|`` (:func:`gain_slope`). All these sets are cones in the ``(s, ρ̄)`` plane (the
conditions are homogeneous in ``ρ``), so every boundary is a line through the origin.

>>> round(reach_slope(4), 4), round(reopening_spread(4, 0.2), 4)
(0.375, 0.5333)
>>> round(gain_slope(4), 6)
0.125

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

__all__ = [
    "COLUMNS",
    "MAP_K",
    "MAP_RHO_BARS",
    "MAP_SPREADS",
    "SETTINGS",
    "block_rho",
    "certified_slice",
    "closed_form_cell",
    "closed_form_map",
    "gain_slope",
    "phase_row",
    "reach_slope",
    "reopening_spread",
    "write_phase_csv",
    "EXPERIMENT",
]

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
#: The number of tasks of the two-dimensional closed-form map.
MAP_K = 4
#: Cell centres of the map: 40 spreads in ``(-1, 1)`` and 32 mean correlations in
#: ``(-0.4, 0.4)``. No centre lies on a boundary line (``ρ̄ = c_4 s`` would need
#: ``3(2i+1) = 4(2j+1)``), and every ``ρ`` of the map has ``‖ρ‖ < 1`` (a valid joint covariance
#: of the tasks and the query task, ``Γ = I``, query variance 1).
MAP_SPREADS = tuple(-1.0 + (i + 0.5) * 2.0 / 40 for i in range(40))
MAP_RHO_BARS = tuple(-0.4 + (j + 0.5) * 0.8 / 32 for j in range(32))


def block_rho(K: int, spread: float, rho_bar: float) -> np.ndarray:
    """The query correlations ``ρ_k = ρ̄ + s·(k − (K+1)/2)/K``, ``k = 1..K``.

    >>> block_rho(3, 0.6, 0.2).round(3).tolist()
    [0.0, 0.2, 0.4]
    """
    return rho_bar + spread * (np.arange(1, K + 1) - (K + 1) / 2) / K


def closed_form_cell(K: int, spread: float, rho_bar: float) -> dict:
    """The optima at one point of the plane from the closed form (exact; :data:`SETTINGS`):
    ``L_wpgd``, ``L_gla`` (distinct delimiters), ``L_la``, ``reaches`` (``sα ∈ M`` for a sign
    ``s``), the relative gap ``gap = (L*_GLA − L*_WPGD)/L*_WPGD`` and the relative gain
    ``gain = (L_LA − L*_GLA)/L_LA`` (both >= 0 up to rounding)."""
    cf = independent_closed_form(
        np.full(K, SETTINGS["m_k"]),
        block_rho(K, spread, rho_bar),
        SETTINGS["d"],
        SETTINGS["sigma"],
        SETTINGS["query_var"],
    )
    Lw, Lg, La = cf["L_wpgd"], cf["L_gla"], cf["L_la"]
    return {
        "K": K,
        "spread": float(spread),
        "rho_bar": float(rho_bar),
        "L_wpgd": Lw,
        "L_gla": Lg,
        "L_la": La,
        "reaches": bool(cf["reaches"]),
        "gap": (Lg - Lw) / Lw,
        "gain": (La - Lg) / La,
    }


def closed_form_map(K: int = MAP_K) -> list[dict]:
    """:func:`closed_form_cell` at every cell centre of the map (spread-major), with the
    predicted membership ``predicted_reaches = s(ρ̄ − c_K s) >= 0`` (:func:`reach_slope`)."""
    c = reach_slope(K)
    return [
        closed_form_cell(K, s, r) | {"predicted_reaches": bool(s * (r - c * s) >= 0)}
        for s in MAP_SPREADS
        for r in MAP_RHO_BARS
    ]


def reach_slope(K: int) -> float:
    """``c_K = (K−1)/(2K)``: with equal segments the optimal block weights are proportional to
    ``ρ``, which is monotone with the sign of ``s``; it stays of one sign until its smallest
    entry in magnitude, ``ρ_1 = ρ̄ − c_K s``, crosses zero. So scalar GLA reaches WPGD iff
    ``s(ρ̄ − c_K s) >= 0``: the boundary is the lines ``ρ̄ = c_K s`` and ``s = 0``."""
    return (K - 1) / (2 * K)


def reopening_spread(K: int, rho_bar: float) -> float:
    """The spread ``s = ρ̄/c_K = 2Kρ̄/(K−1)`` at which the gap to WPGD reopens along the line of
    fixed ``ρ̄ > 0`` (``ρ_1`` turns negative)."""
    return rho_bar / reach_slope(K)


def gain_slope(K: int, *, rel_tol: float = tol.BRACKET_REL) -> float:
    """``κ_K``: on the ray ``s = −1, ρ̄ = κ`` (relevance decreasing toward the query) scalar
    GLA gains nothing over linear attention for ``κ >= κ_K`` (all ``ρ_k >= 0`` from
    ``κ = c_K`` on, and the isotonic projection pools ``α`` to a constant) and strictly
    gains below it (the negative tail of ``ρ`` is worth more, weighted alone, than the pooled
    mean). Found by bisection of the closed-form gain on ``(0, c_K)`` to ``rel_tol``; the
    gain is zero (``<= CERTIFIED_VALUE``) at ``κ = c_K`` and positive at ``κ = 0``
    (antisymmetric ``ρ``). The gain grows linearly past the boundary, so the threshold
    ``CERTIFIED_VALUE`` places it within ~1e-8 (relative) of the exact root (``κ_4 = 1/8``:
    there the pooled mean and the negative tail ``(0, 0, 0, 1/4)`` have equal weighted norm)."""

    def gains(kappa: float) -> bool:
        return closed_form_cell(K, -1.0, kappa)["gain"] > tol.CERTIFIED_VALUE

    lo, hi = 0.0, reach_slope(K)
    if not gains(lo) or gains(hi):
        raise ValueError(f"K: no gain boundary bracketed in (0, c_K) for K={K}")
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gains(mid) else (lo, mid)
    return 0.5 * (lo + hi)


def certified_slice(K: int, rho_bar: float, spreads: Any) -> list[dict]:
    """The certified numerical optima along the line of fixed ``ρ̄`` (the independent check of
    the closed-form map): ``solve_wpgd``, ``solve_gla`` with distinct delimiters (the cone QP,
    not the closed form) and ``L(1)``; relative gap and gain as :func:`closed_form_cell`."""
    out = []
    for s in spreads:
        model = MultitaskModel.k_task(
            np.full(K, SETTINGS["m_k"]),
            np.eye(K),
            block_rho(K, s, rho_bar),
            np.eye(SETTINGS["d"]),
            SETTINGS["sigma"],
            SETTINGS["query_var"],
        )
        Lw = solve_wpgd(model).risk
        Lg = solve_gla(model, delimiters="distinct", certify=False).risk
        La = profile_risk(model, np.ones(model.n))
        out.append(
            {
                "spread": float(s),
                "rho_bar": float(rho_bar),
                "gap": (Lg - Lw) / Lw,
                "gain": (La - Lg) / La,
            }
        )
    return out


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
    rho = block_rho(K, spread, rho_bar)
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
