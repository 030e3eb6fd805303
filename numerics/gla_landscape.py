r"""The GLA landscape: the best one-layer GLA on structured ``K``-task prompts (claims G1–G4).

Setting (docs/gla_landscape.md, numerics/prompts.py). Examples of segment ``k`` follow task
``β^{(k)}``; gates read only the structural channels (delimiter flags, contextual features),
never ``x_i, y_i``, so they induce fixed weights ``ω_i = Π_{j > pos(i)} g_j``; with the
closed-form ``P*(ω) = a(bΣ + cI)^{-1}`` the risk is the WPGD profile risk
``L(ω) = L₀ − F(ω)``, ``F(ω) = a² Σ_k λ_k²/(bλ_k + c)`` (``a = rᵀω``, ``b = ωᵀAω``,
``c = ωᵀBω``, ``L₀ = σ² + R_q tr Σ``), even and 0-homogeneous in ``ω`` (``P → −P`` realises
``−ω``).

Reachable weights (closures; gates 0 and 1 are limits of saturated sigmoids):

* ``"none"``, no context — one gate ``g``: ``ω_i ∝ g^{n−i}`` (1 parameter);
* ``"none"``, contextual — gate ``g_k`` per segment: geometric decay inside segments (K);
* ``"shared"``, no context — example gate ``g``, delimiter gate ``δ`` (2);
* ``"distinct"`` (or ``"shared"`` + contextual: the delimiter carries ``c_k``) — block weights
  ``u ∈ M = {0 ≤ u_1 ≤ … ≤ u_K}`` (``δ_k = u_k/u_{k+1}``), and nothing better is reachable:
  every gate-induced ``ω`` is a nonnegative per-token nondecreasing sequence, and for
  block-symmetric models block-averaging such a sequence stays feasible and never lowers
  the gain (docs).

Certified cone optimum (:func:`solve_cone`). For ``t > 0``, ``s = ±1`` the convex QP
``min uᵀ(Ã + tB̃)u  s.t. r̃ᵀu = s, u ∈ M`` (``Ã = EᵀAE``, ``B̃ = EᵀBE``, ``r̃ = Eᵀr``, ``E`` the
``n×K`` segment indicator) has a unique solution ``u_s(t)``. Since
``∇F(ω) = 2a²T₃[κ r − (A + φ(ω)B)ω]`` (``T_p = Σλ^p/(bλ+c)²``, ``κ = (b + φc)/a``), the KKT
conditions of ``max_{u∈M} F`` at ``u`` are exactly the QP's KKT conditions at ``t = φ(u)``,
``s = sign(a)``: every maximiser lies on the two curves ``{u_s(t)}``, ``t ∈ [1/λ_max, 1/λ_min]``,
and every curve point is feasible, hence ``max_M F = max_{s,t} F(u_s(t))`` — a 1-D problem.
Each QP is solved exactly (finite active-set NNLS on increments ``θ = Du ≥ 0``); the final one
is re-solved with cvxpy and its KKT conditions are checked independently.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq, minimize, minimize_scalar, nnls

from ._validate import as_float_array, check_instance, check_int, check_real, check_rng
from .data import MultitaskModel, check_model
from .landscape import solve_wpgd
from .prompts import (
    DELIMITERS,
    StructuredPrompt,
    example_positions,
    induced_weights,
    token_log_gates,
    token_types,
)
from .risk import (
    _profile_risk,
    gain_from_abc,
    null_risk,
    optimal_P,
    optimal_P_featurewise,
    profile_risk,
    profile_risk_featurewise,
    profile_risk_grad,
    profile_risks,
    wpgd_risk,
)

__all__ = [
    "Blocks",
    "GLASolution",
    "block_reduce",
    "cone_qp",
    "cone_qp_cvxpy",
    "cone_kkt",
    "solve_cone",
    "solve_gla",
    "gate_param_search",
    "sigmoid_gate_search",
    "brute_force_cone",
    "reachable_case",
    "jordan_decomposition",
    "monotone_projection",
    "independent_closed_form",
    "featurewise_cone",
]

GATINGS = ("scalar", "vector")
# Feasibility / KKT tolerances relative to the problem scale. The NNLS active set is exact up
# to rounding (~1e-15 relative for K <= 50); 1e-9 leaves six orders of margin and is far
# below any gap reported as "strict".
KKT_TOL = 1e-9


# ============================================================================ blocks
@dataclass
class Blocks:
    """Block reduction of a segmented model: ``E (n, K)`` indicator, ``A (K, K) = EᵀAE``,
    ``B (K,)`` diagonal of ``EᵀBE``, ``r (K,) = Eᵀr``, ``m (K,)`` segment lengths,
    ``lam`` eigenvalues of Σ (ascending)."""

    E: np.ndarray
    A: np.ndarray
    B: np.ndarray
    r: np.ndarray
    m: np.ndarray
    lam: np.ndarray

    @property
    def K(self) -> int:
        return self.m.size

    def abc(self, u: np.ndarray) -> tuple[float, float, float]:
        u = np.asarray(u, dtype=np.float64)
        return float(self.r @ u), float(u @ self.A @ u), float(u @ (self.B * u))

    def gain(self, u: np.ndarray) -> float:
        """``F(Eu) = a² Σλ²/(bλ + c)`` (0 if ``b = c = 0``)."""
        return gain_from_abc(*self.abc(u), self.lam)

    def phi(self, u: np.ndarray) -> float:
        _, b, c = self.abc(u)
        den = (b * self.lam + c) ** 2
        return float(np.sum(self.lam**2 / den) / np.sum(self.lam**3 / den))


def _check_model(model) -> MultitaskModel:
    model = check_model(model)
    if model.segments is None:
        raise ValueError(
            "model: needs segments (build it with MultitaskModel.k_task or StructuredPrompt.model)"
        )
    return model


def block_reduce(model: MultitaskModel) -> Blocks:
    """Restrict ``ω = E u`` to block-constant weights (requires ``model.segments``, contiguous
    segments ``0..K-1`` in order)."""
    model = _check_model(model)
    seg = np.asarray(model.segments)
    K = int(seg.max()) + 1
    if np.any(np.diff(seg) < 0) or np.any(np.diff(seg) > 1) or seg[0] != 0:
        raise ValueError("model: segments must be contiguous and ordered 0..K-1")
    E = np.zeros((model.n, K))
    E[np.arange(model.n), seg] = 1.0
    Bt = E.T @ model.B_diag
    if np.any(Bt <= 0):
        raise ValueError(
            "model: a segment has R_kk tr Σ + σ² = 0 (labels identically 0); not supported"
        )
    return Blocks(E, E.T @ model.A @ E, Bt, E.T @ model.r, E.sum(0), np.asarray(model.eigvals))


# ============================================================================ cone QP
def _cumsum_matrix(K: int) -> np.ndarray:
    """``C`` with ``u = Cθ``, ``u_k = Σ_{l<=k} θ_l``: ``M = {Cθ : θ >= 0}``."""
    return np.tril(np.ones((K, K)))


def cone_qp(Q: np.ndarray, r: np.ndarray, s: int) -> tuple[np.ndarray | None, float]:
    r"""Exact solution of ``min uᵀQu s.t. rᵀu = s, 0 <= u_1 <= … <= u_K`` (``Q ≻ 0``, ``s = ±1``).

    With ``u = Cθ``, ``θ >= 0`` the increments, the problem is equivalent (rescaling) to the NNLS
    ``min_{θ>=0} ‖Lᵀθ − s L^{-1}g‖²``, ``CᵀQC = LLᵀ``, ``g = Cᵀr``; its minimiser ``θ̂`` satisfies
    ``θ̂ᵀCᵀQCθ̂ = s gᵀθ̂`` and ``u = s Cθ̂ / gᵀθ̂``, value ``1/(s gᵀθ̂)``. Returns ``(u, value)``,
    or ``(None, inf)`` if infeasible (no ``u ∈ M`` with ``s·rᵀu > 0``).
    """
    Q = as_float_array(Q, "Q", ndim=2)
    r = as_float_array(r, "r", ndim=1)
    K = r.size
    if Q.shape != (K, K):
        raise ValueError(f"Q: expected shape {(K, K)}, got {Q.shape}")
    if s not in (1, -1):
        raise ValueError(f"s: must be +1 or -1, got {s!r}")
    C = _cumsum_matrix(K)
    H = C.T @ Q @ C
    try:
        L = np.linalg.cholesky((H + H.T) / 2)
    except np.linalg.LinAlgError:
        raise ValueError("Q: must be positive definite") from None
    g = C.T @ r
    rhs = s * np.linalg.solve(L, g)
    theta, _ = nnls(L.T, rhs, maxiter=50 * K + 100)
    sg = s * float(g @ theta)
    if not sg > 0:
        return None, math.inf
    u = s * (C @ theta) / float(g @ theta)
    return u, float(u @ Q @ u)


def cone_kkt(Q: np.ndarray, r: np.ndarray, s: int, u: np.ndarray) -> dict:
    r"""Independent KKT check of ``u`` for :func:`cone_qp`: stationarity ``2Qu = νr + μ``
    with ``ν = 2uᵀQu/s`` (from complementarity) and ``μ = 2Qu − νr`` required in the dual cone
    ``M* = {μ : Σ_{l>=k} μ_l >= 0 ∀k}``; complementarity ``μᵀu = 0``; feasibility.
    All figures are relative to ``‖2Qu‖`` (or ``‖u‖``)."""
    Q = as_float_array(Q, "Q", ndim=2)
    r = as_float_array(r, "r", ndim=1)
    u = as_float_array(u, "u", ndim=1)
    if Q.shape != (r.size, r.size) or u.shape != r.shape:
        raise ValueError(
            f"Q: expected shape {(r.size, r.size)} with u of shape {r.shape}, got {Q.shape}, {u.shape}"
        )
    if s not in (1, -1):
        raise ValueError(f"s: must be +1 or -1, got {s!r}")
    Q = np.asarray(Q, float)
    r = np.asarray(r, float)
    u = np.asarray(u, float)
    g = 2 * Q @ u
    nu = float(u @ g) / s
    mu = g - nu * r
    scale = max(float(np.linalg.norm(g)), 1e-300)
    suffix = np.cumsum(mu[::-1])[::-1]
    feas = max(0.0, -float(u[0]), -float(np.min(np.diff(u))) if u.size > 1 else 0.0) / max(
        float(np.linalg.norm(u)), 1e-300
    )
    return {
        "dual_cone_violation": float(max(0.0, -suffix.min()) / scale),
        "complementarity": float(abs(mu @ u) / (scale * max(float(np.linalg.norm(u)), 1e-300))),
        "primal_violation": feas,
        "equality_residual": float(abs(r @ u - s)),
        "nu": nu,
        "ok": bool(
            max(0.0, -suffix.min()) / scale <= KKT_TOL
            and feas <= KKT_TOL
            and abs(r @ u - s) <= KKT_TOL * max(1.0, abs(s))
        ),
    }


def cone_qp_cvxpy(Q: np.ndarray, r: np.ndarray, s: int) -> dict:
    """The same QP with cvxpy (Clarabel if available): ``u``, ``value``, ``status``, the primal
    residual, the stationarity residual of the returned duals, and the duality gap
    ``primal − dual`` (dual function evaluated in closed form at the returned multipliers)."""
    Q = as_float_array(Q, "Q", ndim=2)
    r = as_float_array(r, "r", ndim=1)
    if Q.shape != (r.size, r.size):
        raise ValueError(f"Q: expected shape {(r.size, r.size)}, got {Q.shape}")
    if s not in (1, -1):
        raise ValueError(f"s: must be +1 or -1, got {s!r}")
    import cvxpy as cp

    Q = np.asarray(Q, float)
    r = np.asarray(r, float)
    K = r.size
    u = cp.Variable(K)
    Qs = (Q + Q.T) / 2
    cons = [u[0] >= 0, r @ u == s]
    if K > 1:
        cons.append(cp.diff(u) >= 0)
    prob = cp.Problem(cp.Minimize(cp.quad_form(u, cp.psd_wrap(Qs))), cons)
    solver = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else None
    prob.solve(solver=solver)
    if u.value is None:
        return {"status": prob.status, "u": None, "value": math.inf}
    uv = np.asarray(u.value, float)
    lam0 = float(cons[0].dual_value)
    nu = float(cons[1].dual_value)
    lamd = np.asarray(cons[2].dual_value, float).ravel() if K > 1 else np.zeros(0)
    # μ = Dᵀλ for the constraints Du >= 0 (D = [e_1; e_{k+1} − e_k]): cvxpy's Lagrangian is
    # f − λᵀDu + ν(rᵀu − s) with λ >= 0; the sign of ν is fitted by the stationarity check.
    mu = np.zeros(K)
    mu[0] += lam0
    if K > 1:
        mu[1:] += lamd
        mu[:-1] -= lamd
    res_list = []
    for sgn in (1.0, -1.0):
        res_list.append((np.linalg.norm(2 * Qs @ uv - mu - sgn * nu * r), sgn))
    stat, sgn = min(res_list)
    nu_eff = sgn * nu
    w = nu_eff * r + mu
    dual = -0.25 * float(w @ np.linalg.solve(Qs, w)) + nu_eff * s
    primal = float(uv @ Qs @ uv)
    viol = max(0.0, -uv[0], -float(np.min(np.diff(uv))) if K > 1 else 0.0, abs(float(r @ uv) - s))
    return {
        "status": prob.status,
        "solver": solver or "default",
        "u": uv,
        "value": primal,
        "primal_residual": float(viol),
        "stationarity_residual": float(stat / max(float(np.linalg.norm(2 * Qs @ uv)), 1e-300)),
        "duality_gap": float(primal - dual),
        "dual_value": dual,
        "dual_cone_ok": bool(lam0 >= -1e-8 and (K == 1 or np.min(lamd) >= -1e-8)),
    }


# ============================================================================ solutions
@dataclass
class GLASolution:
    """Best one-layer GLA for a structured prompt.

    ``omega (n,)``: induced weights, unit 2-norm, orientation of the reachable set (nonneg.
    for scalar gating; the sign of ``P`` carries ``±``); ``u (K,)`` block weights when they are
    block-constant, else None; ``P = P*(ω)`` (closed form, can be negative definite — that is
    the ``P → −P`` realisation of ``−ω``); ``risk = L(P, ω)`` from the model;
    ``gates``: one gate value in [0, 1] per token type (``dict``; for ``gating="vector"`` two
    dicts, one per key copy); ``case`` names the reachable set; ``certificate`` the figures.
    """

    omega: np.ndarray
    u: np.ndarray | None
    P: np.ndarray
    risk: float
    case: str
    gates: dict
    certificate: dict = field(default_factory=dict)
    seconds: float = 0.0


def reachable_case(delimiters: str, contextual: bool) -> str:
    """Name of the reachable closure: ``"geometric"`` (a), ``"segment-geometric"`` (b),
    ``"two-gate"`` (c) or ``"monotone-cone"`` (d)."""
    if not isinstance(delimiters, str) or delimiters not in DELIMITERS:
        raise ValueError(f"delimiters: must be one of {DELIMITERS}, got {delimiters!r}")
    if not isinstance(contextual, (bool, np.bool_)):
        raise ValueError(f"contextual: must be a bool, got {contextual!r}")
    if delimiters == "distinct" or (delimiters == "shared" and contextual):
        return "monotone-cone"
    if delimiters == "shared":
        return "two-gate"
    return "segment-geometric" if contextual else "geometric"


def _finish(model, omega):
    omega = np.asarray(omega, float)
    omega = omega / np.linalg.norm(omega)
    P = optimal_P(model, omega)
    return omega, P, float(wpgd_risk(model, P, omega))


def _cone_curve(blk: Blocks, s: int, t: float) -> np.ndarray | None:
    """``u_s(t)``: the cone QP solution at ``t`` for sign ``s`` (None if the QP is infeasible)."""
    u, _ = cone_qp(blk.A + t * np.diag(blk.B), blk.r, s)
    return u


def _cone_point(blk: Blocks, s: int, t: float) -> np.ndarray:
    """:func:`_cone_curve` on a sign already found feasible on the whole grid."""
    u = _cone_curve(blk, s, t)
    if u is None:
        raise ValueError(f"s: the cone QP for sign {s} became infeasible at t = {t!r}")
    return u


def _cone_candidates(blk: Blocks, s: int, ts, point: bool, L0: float, cert: dict) -> list | None:
    """Candidates ``(t, u, kind)`` on the curve of sign ``s``: the roots of ``φ(u_s(t)) − t``
    (brentq between grid sign changes) and the refined grid maximum of ``F(u_s(t))``;
    records them in ``cert``. None if the sign is feasible only by rounding (``s·rᵀu ~ 1e-17``
    at best, e.g. a block with ``ρ_k = -3e-17``): the QP then finds no ``u ∈ M`` with
    ``s·rᵀu > 0`` and the sign contributes nothing."""
    maybe = [_cone_curve(blk, s, t) for t in ts]
    us = [u for u in maybe if u is not None]
    if len(us) < len(maybe):
        return None
    F = np.array([blk.gain(u) for u in us])
    if point:
        cert["fixed_points"].append({"s": s, "t": float(ts[0]), "risk": L0 - float(F[0])})
        cert["curve_max"][str(s)] = {"t": float(ts[0]), "risk": L0 - float(F[0])}
        return [(float(ts[i]), us[i], "point") for i in range(len(ts))]
    g = np.array([blk.phi(u) - t for u, t in zip(us, ts)])
    cands = []
    for i in np.flatnonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0):
        tr = brentq(
            lambda t: blk.phi(_cone_point(blk, s, t)) - t,
            ts[i],
            ts[i + 1],
            xtol=1e-15 * ts[i],
            rtol=1e-15,
        )
        u = _cone_point(blk, s, tr)
        cands.append((float(tr), u, "fixed-point"))
        cert["fixed_points"].append({"s": s, "t": float(tr), "risk": L0 - blk.gain(u)})
    imax = int(np.argmax(F))
    lo, hi = ts[max(imax - 1, 0)], ts[min(imax + 1, len(ts) - 1)]
    res = minimize_scalar(
        lambda t: -blk.gain(_cone_point(blk, s, t)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-13 * ts[imax]},
    )
    tc = float(res.x) if -res.fun >= F[imax] else float(ts[imax])
    cands.append((tc, _cone_point(blk, s, tc), "curve-max"))
    cert["curve_max"][str(s)] = {"t": tc, "risk": L0 - blk.gain(cands[-1][1])}
    return cands


def _certify_fixed_point(
    blk: Blocks, s_best: int, t_best: float, u_best, cert: dict, certify: bool
) -> None:
    """The optimum must be a fixed point: re-solving the QP at ``t' = φ(u*)`` must return ``u*``
    (on a ray of M the curve is constant over a t-interval, so ``t_best`` itself need not equal
    ``φ(u*)``); then the KKT conditions there, and (``certify``) the value by cvxpy."""
    t_fp = blk.phi(u_best)
    u_fp = _cone_point(blk, s_best, t_fp)
    cert.update(
        t_star=t_fp,
        t_curve=t_best,
        s_star=s_best,
        fixed_point_rel=float(np.linalg.norm(u_fp - u_best) / np.linalg.norm(u_best)),
    )
    Q = blk.A + t_fp * np.diag(blk.B)
    cert["kkt"] = cone_kkt(Q, blk.r, s_best, u_fp)
    if certify:
        cv = cone_qp_cvxpy(Q, blk.r, s_best)
        v_nnls = float(u_fp @ Q @ u_fp)
        cv["rel_value_diff"] = (
            float(abs(cv["value"] - v_nnls) / v_nnls) if cv["u"] is not None else math.inf
        )
        cv["u"] = None if cv["u"] is None else cv["u"].tolist()
        cert["cvxpy"] = cv


def solve_cone(model: MultitaskModel, *, grid: int = 129, certify: bool = True) -> GLASolution:
    """Certified ``min_{u ∈ M ∪ −M} L(Eu)`` (cone case (d)); see the module docstring.

    ``grid`` log-spaced points of the bracket ``[1/λ_max, 1/λ_min]`` per sign (a single point
    when ``Σ ∝ I``); sign changes of ``φ(u_s(t)) − t`` are refined by ``brentq`` and the curve
    maximum of ``F(u_s(t))`` by bounded Brent. ``certify`` re-solves the final QP with cvxpy.

    Certificate keys: ``bracket``; ``signs_feasible``; ``fixed_points`` (``s``, ``t``, ``risk``);
    ``curve_max`` per sign; ``t_star = φ(u*)`` and ``fixed_point_rel`` = ``‖u_s(φ(u*)) − u*‖/‖u*‖``
    (must be ~0: the curve maximum is a KKT point, i.e. a fixed point); ``kkt`` (:func:`cone_kkt`
    at ``t*``); ``cvxpy``
    (:func:`cone_qp_cvxpy`) with ``rel_value_diff`` vs the NNLS value; ``grad_cone`` =
    ``max_k ∇F(Eu*)ᵀ E 1_{k..K} · ‖Eu*‖/F`` (≤ ~0 at a maximiser of the 0-homogeneous gain over M).
    """
    model = _check_model(model)
    grid = check_int(grid, "grid", min_value=8)
    t0 = time.perf_counter()
    blk = block_reduce(model)
    t_lo, t_hi = 1.0 / blk.lam[-1], 1.0 / blk.lam[0]
    point = t_hi <= t_lo * (1 + 1e-12)
    ts = np.array([t_lo]) if point else np.geomspace(t_lo, t_hi, int(grid))
    suffix = np.cumsum(blk.r[::-1])[::-1]
    cert: dict = {
        "bracket": [t_lo, t_hi],
        "K": blk.K,
        "grid": len(ts),
        "fixed_points": [],
        "curve_max": {},
    }
    L0 = null_risk(model)
    allc: list[tuple[float, int, float, np.ndarray, str]] = []  # (F, s, t, u, kind)
    cert["signs_feasible"] = []
    for s in (1, -1):
        if not np.max(s * suffix) > 0:
            continue
        cands = _cone_candidates(blk, s, ts, point, L0, cert)
        if cands is None:
            continue
        cert["signs_feasible"].append(s)
        allc.extend((blk.gain(u), s, t, u, kind) for t, u, kind in cands)
    if not allc:
        raise ValueError("model: r = 0 on every segment; every weight gives the null risk")
    # The curve maximum fixes the optimal value; its location in t is only accurate to
    # ~sqrt(eps) (a flat peak), while brentq roots of φ − t are accurate to ~1e-15. Prefer a
    # root whose gain matches the maximum to 1e-12 relative (the same point, located better).
    F_max = max(c[0] for c in allc)
    roots = [c for c in allc if c[4] != "curve-max" and c[0] >= F_max - 1e-12 * abs(F_max)]
    F_best, s_best, t_best, u_best, kind_best = max(roots or allc, key=lambda c: c[0])
    cert["t_star_kind"] = kind_best
    _certify_fixed_point(blk, s_best, t_best, u_best, cert, certify)
    u = u_best / np.max(np.abs(u_best))  # u ∈ M with u_K = 1
    omega_raw = blk.E @ u
    _, grad = profile_risk_grad(model, omega_raw)  # ∇L = −∇F
    gF = -(blk.E.T @ grad)
    rays = np.cumsum(gF[::-1])[::-1]  # ∇Fᵀ(E 1_{k..K}) for the extreme rays of M
    # F is 0-homogeneous, so |∇F| ~ F/‖ω‖ is its natural scale (at an interior optimum ∇F is
    # pure rounding, and dividing by ‖∇F‖ would only measure noise).
    cert["grad_cone"] = float(np.max(rays) * np.linalg.norm(omega_raw) / max(F_best, 1e-300))
    omega, P, risk = _finish(model, omega_raw)
    cert["risk_block_formula"] = L0 - F_best
    gates = _cone_gates(u)
    return GLASolution(
        omega,
        u / np.linalg.norm(omega_raw),
        P,
        risk,
        "monotone-cone",
        gates,
        cert,
        time.perf_counter() - t0,
    )


def _cone_gates(u) -> dict:
    """Gates realising ``u ∈ M`` (``u_K > 0``) with distinct delimiters: example and query
    gates 1, ``δ_k = u_k/u_{k+1}`` (``k < K``), ``δ_K = u_K / max u = 1`` after normalisation."""
    u = np.asarray(u, float) / float(u[-1])
    K = u.size
    g = {"example": 1.0, "query": 1.0}
    for k in range(K):
        nxt = 1.0 if k == K - 1 else u[k + 1]
        g[f"delimiter[{k}]"] = float(min(1.0, max(0.0, u[k] / nxt))) if nxt > 0 else 0.0
    return g


def _type_log_gates_for(spec: StructuredPrompt, gates: dict) -> dict:
    """Map a gate dict (``example``, ``example[k]``, ``delimiter[k]``, ``query``...) onto the
    token types of ``spec``; missing per-segment entries fall back to the generic name."""
    _, names = token_types(spec)
    out = {}
    for nm in names:
        base = nm.split("[")[0]
        val = gates.get(nm, gates.get(base))
        if val is None:
            raise ValueError(f"gates: no gate for token type {nm!r}")
        with np.errstate(divide="ignore"):
            out[nm] = float(np.log(val))
    return out


# ============================================================================ parametrised cases
def _gate_params(spec: StructuredPrompt) -> list[str]:
    """Free gate types (the query's own type is a common factor of all weights: fixed at 1)."""
    _, names = token_types(spec)
    return [nm for nm in names if nm != "query"]


def _risk_of_weights(model, omega) -> float:
    """Profile risk of ``ω`` rescaled by its max (scale invariance; avoids underflow of the
    a, b, c sums when every weight is tiny); the null risk for ``ω = 0``."""
    mx = np.max(np.abs(omega))
    if not mx > 0:
        return null_risk(model)
    return profile_risk(model, omega / mx)


def _type_counts(spec: StructuredPrompt, params: list[str]) -> np.ndarray:
    """``W (n, p)``: ``W[i, j]`` = number of tokens of gate type ``params[j]`` after example ``i``,
    so that ``ω_i = Π_j g_j^{W_ij}`` (the query's own type has gate 1)."""
    ids, names = token_types(spec)
    pos = example_positions(spec)
    W = np.zeros((pos.size, len(params)))
    for j, nm in enumerate(params):
        ind = (ids == names.index(nm)).astype(float)
        after = np.concatenate(
            [np.cumsum(ind[::-1])[::-1][1:], [0.0]]
        )  # tokens of this type after t
        W[:, j] = after[pos]
    return W


def _weights_from_gates_batch(W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``Ω (N, n)`` with ``Ω[s, i] = Π_j G[s, j]^{W_ij}`` (``0^0 = 1``), computed in log space
    and scaled so each row's maximum is 1 (the profile risk is scale invariant)."""
    G = np.clip(np.atleast_2d(G), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log(G)
        E = np.where(W[None, :, :] > 0, W[None, :, :] * lg[:, None, :], 0.0).sum(-1)  # (N, n)
    mx = np.max(E, axis=1, keepdims=True)
    E = E - np.where(np.isfinite(mx), mx, 0.0)
    return np.exp(E)


def _profile_batch(model: MultitaskModel, Om: np.ndarray) -> np.ndarray:
    """Profile risks ``L(ω)`` of the rows of ``Om (N, n)`` (null risk where ``ω = 0``)."""
    lam = np.asarray(model.eigvals)
    a = Om @ model.r
    b = np.einsum("si,ij,sj->s", Om, model.A, Om)
    c = (Om * Om) @ model.B_diag
    den = b[:, None] * lam[None, :] + c[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(np.all(den > 0, axis=1), a * a * np.sum(lam**2 / den, axis=1), 0.0)
    return null_risk(model) - gain


def gate_param_search(
    model: MultitaskModel, spec: StructuredPrompt, *, rng: np.random.Generator, starts: int = 8
) -> dict:
    """Minimise the profile risk over gate values ``g ∈ [0, 1]^p`` (one per gate type, the
    closure) for the parametrised cases (a)–(c): a dense grid (p = 1: 2001 points clustered
    at 1; p = 2: 101×101; p >= 3: the product grid ``{0, .5, .8, .95, 1}^p`` capped at 3125
    points plus 2000 uniform draws), then L-BFGS-B in the box from the ``starts`` best grid
    points. Non-convex: the result is an upper bound on the reachable infimum (a weaker
    certificate than the cone case). Returns ``{"risk", "gates", "omega", "grid_best", "params"}``."""
    model = _check_model(model)
    check_instance(spec, StructuredPrompt, "spec")
    check_rng(rng)
    starts = check_int(starts, "starts", min_value=1)
    params = _gate_params(spec)
    p = len(params)
    W = _type_counts(spec, params)

    def f(g):
        return float(_profile_batch(model, _weights_from_gates_batch(W, g))[0])

    if p == 1:
        x = np.linspace(0, 1, 2001)
        pts = (1 - (1 - x) ** 3)[:, None]
    elif p == 2:
        x = 1 - (1 - np.linspace(0, 1, 101)) ** 2
        pts = np.array(np.meshgrid(x, x, indexing="ij")).reshape(2, -1).T
    else:
        levels = np.array([0.0, 0.5, 0.8, 0.95, 1.0])
        idx = np.array(np.meshgrid(*[np.arange(5)] * p, indexing="ij")).reshape(p, -1).T
        if len(idx) > 3125:
            idx = idx[rng.choice(len(idx), 3125, replace=False)]
        pts = np.vstack([levels[idx], rng.random((2000, p))])
    vals = _profile_batch(model, _weights_from_gates_batch(W, pts))
    order = np.argsort(vals)
    best = (float(vals[order[0]]), pts[order[0]])
    for i in order[:starts]:
        res = minimize(
            f,
            pts[i],
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * p,
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 500},
        )
        if res.fun < best[0]:
            best = (float(res.fun), np.clip(res.x, 0, 1))
    g = best[1]
    return {
        "risk": best[0],
        "gates": dict(zip(params, map(float, g))),
        "omega": _weights_from_gates_batch(W, g)[0],
        "grid_best": float(vals[order[0]]),
        "params": params,
        "grid_points": len(pts),
    }


def sigmoid_gate_search(
    model: MultitaskModel,
    spec: StructuredPrompt,
    *,
    rng: np.random.Generator,
    restarts: int = 8,
    scale: float = 4.0,
) -> dict:
    """Independent cross-check: gates ``g = sigmoid(θ)`` per token type (a genuine gating
    function of the structural channels), ``θ ∈ R^p`` unconstrained, ``P`` in closed form,
    L-BFGS-B from ``restarts`` starts ``θ ~ N(0, scale²)``. Weights go through
    :func:`numerics.prompts.token_log_gates` / :func:`induced_weights` and the risk through
    :func:`numerics.risk.profile_risk` (not the batch code of :func:`gate_param_search`).
    Open gates only approach the closure, so the result matches the infimum from above."""
    model = _check_model(model)
    check_instance(spec, StructuredPrompt, "spec")
    check_rng(rng)
    restarts = check_int(restarts, "restarts", min_value=1)
    scale = check_real(scale, "scale", positive=True)
    params = _gate_params(spec)
    p = len(params)
    base = dict.fromkeys(token_types(spec)[1], 0.0)

    def f(th):
        d = dict(base)
        d.update(zip(params, -np.logaddexp(0.0, -np.asarray(th))))  # log sigmoid, stable
        return _risk_of_weights(model, induced_weights(spec, token_log_gates(spec, d)))

    best = (math.inf, None)
    for _ in range(int(restarts)):
        res = minimize(
            f,
            scale * rng.standard_normal(p),
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
        )
        if res.fun < best[0]:
            best = (float(res.fun), res.x)
    return {"risk": best[0], "theta": best[1], "params": params}


# ============================================================================ vector gating
def jordan_decomposition(w: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``w = u − v`` with ``u, v ∈ M`` (nonnegative nondecreasing):
    ``u_k = Σ_{l<=k} max(w_l − w_{l−1}, 0)``, ``w_0 = 0``, ``v = u − w``."""
    w = as_float_array(w, "w", ndim=1)
    inc = np.diff(np.concatenate([[0.0], w]))
    u = np.cumsum(np.maximum(inc, 0.0))
    v = np.cumsum(np.maximum(-inc, 0.0))  # = u − w exactly in exact arithmetic, no cancellation
    return u, v


def featurewise_cone(
    model: MultitaskModel, *, rng: np.random.Generator | None = None, restarts: int = 2
) -> dict:
    """Key-wise gating with ``D_k = d``, ``P_k = I``: feature-wise weights ``Ω = E U`` with each
    column ``U_{:a} ∈ M`` (own delimiter gates per key coordinate).

    Diagonal ``Σ = diag(λ)``: the gain decouples, ``Σ_a λ_a (r̃ᵀu)²/uᵀ(Ã + B̃/λ_a)u`` — each column
    is a cone-restricted Rayleigh quotient, solved exactly by :func:`cone_qp` (``kind="exact"``).
    Otherwise L-BFGS-B over the increments ``θ >= 0`` of all columns from the scalar cone
    optimum and the diagonal-formula start (``kind="local"``, an upper bound).
    Returns ``{"risk", "Omega", "U", "kind"}``."""
    model = _check_model(model)
    check_rng(rng, optional=True)
    restarts = check_int(restarts, "restarts", min_value=1)
    blk = block_reduce(model)
    S = np.asarray(model.Sigma)
    d, K = model.d, blk.K
    if np.all(S == np.diag(np.diag(S))):
        U = np.zeros((K, d))
        gain = 0.0
        for a, la in enumerate(np.diag(S)):
            Q = blk.A + np.diag(blk.B) / la
            best_val, best_u = math.inf, None
            for s in (1, -1):
                u, val = cone_qp(Q, blk.r, s)
                if u is not None and val < best_val:
                    best_val, best_u = val, u
            if best_u is None:  # r != 0 was checked above, so one sign is always feasible
                raise ValueError("model: the cone QP is infeasible for both signs")
            U[:, a] = best_u
            gain += la / best_val
        Omega = blk.E @ U
        return {
            "risk": float(profile_risk_featurewise(model, Omega)),
            "risk_formula": null_risk(model) - gain,
            "Omega": Omega,
            "U": U,
            "kind": "exact",
        }
    rng = np.random.default_rng(0) if rng is None else rng
    C = _cumsum_matrix(K)
    sc = solve_cone(model, certify=False)
    assert sc.u is not None  # solve_cone's weights are block-constant by construction
    u0 = sc.u / np.max(sc.u)
    starts = [np.tile(np.linalg.solve(C, u0)[:, None], (1, d))]
    for _ in range(int(restarts)):
        starts.append(np.abs(starts[0] * (1 + 0.5 * rng.standard_normal((K, d)))))
    from .risk import profile_risk_featurewise_grad

    L0 = null_risk(model)

    def fg(th):
        U = C @ th.reshape(K, d)
        try:
            L, g = profile_risk_featurewise_grad(model, blk.E @ U)
        except ValueError:
            return np.inf, np.zeros_like(th)
        return (L - L0) / L0, (C.T @ (blk.E.T @ g)).ravel() / L0

    best = (math.inf, None)
    for th0 in starts:
        res = minimize(
            fg,
            th0.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0, None)] * (K * d),
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 3000},
        )
        U = C @ res.x.reshape(K, d)
        L = profile_risk_featurewise(model, blk.E @ U)
        if L < best[0]:
            best = (L, U)
    return {"risk": float(best[0]), "Omega": blk.E @ best[1], "U": best[1], "kind": "local"}


# ============================================================================ solve_gla
def solve_gla(
    model: MultitaskModel,
    *,
    gating: str = "scalar",
    delimiters: str = "distinct",
    contextual: bool = False,
    key_copies: int = 2,
    grid: int = 129,
    certify: bool = True,
    rng: np.random.Generator | None = None,
) -> GLASolution:
    """Best one-layer GLA (infimum over gates reading structural channels, ``P`` optimal).

    Parameters
    ----------
    model : a segmented :class:`MultitaskModel` (``k_task`` or ``StructuredPrompt.model``).
    gating : ``"scalar"`` (one gate per token) or ``"vector"`` (key-wise gates).
    delimiters, contextual : the prompt structure (see :mod:`numerics.prompts`).
    key_copies : vector gating only. ``2``: keys ``[x; x]`` (``D_k = 2d``), each copy with its
        own gates, queries ``[Pᵀx; −Pᵀx]`` ⇒ weights ``u − v``, ``u, v ∈ M``: reaches ``L*_WPGD``
        (result of :func:`numerics.landscape.solve_wpgd` with the Jordan realisation). ``1``:
        ``D_k = d``, ``P_k = I``: feature-wise weights with columns in ``M`` (:func:`featurewise_cone`).
        Vector gating is implemented for the cone case (distinct delimiters, or shared + contextual).
    grid, certify : passed to :func:`solve_cone`.
    rng : for the multistart searches of cases (a)–(c) (default ``default_rng(0)``).
    """
    t0 = time.perf_counter()
    model = _check_model(model)
    if gating not in GATINGS:
        raise ValueError(f"gating: must be one of {GATINGS}, got {gating!r}")
    case = reachable_case(delimiters, contextual)
    rng = np.random.default_rng(0) if rng is None else rng
    if gating == "vector":
        if case != "monotone-cone":
            raise ValueError(
                f"delimiters: vector gating is implemented for the cone case "
                f"(distinct, or shared + contextual); got {delimiters!r}, contextual={contextual}"
            )
        if key_copies == 2:
            return _solve_key_copies(model, t0)
        if key_copies == 1:
            return _solve_featurewise(model, rng, t0)
        raise ValueError(f"key_copies: must be 1 or 2, got {key_copies!r}")
    if case == "monotone-cone":
        return solve_cone(model, grid=grid, certify=certify)
    return _solve_by_search(model, case, delimiters, contextual, rng, t0)


def _solve_key_copies(model: MultitaskModel, t0: float) -> GLASolution:
    """Vector gating with two key copies: reaches ``L*_WPGD`` by the Jordan realisation of the
    block weights ``w = u − v`` (``u, v`` in the monotone cone)."""
    sol = solve_wpgd(model)
    blk = block_reduce(model)
    w = blk.E.T @ sol.omega / blk.m
    dev = float(np.linalg.norm(blk.E @ w - sol.omega))
    u, v = jordan_decomposition(w)
    s = max(u[-1], v[-1])
    cert = {
        "wpgd": {k: sol.certificate.get(k) for k in ("unique", "runner_up_rel_gap", "residual")},
        "block_constant_deviation": dev,
        "key_copies": 2,
    }
    gates = {"u": _realise_or_zero(u / s), "v": _realise_or_zero(v / s), "scale": float(s)}
    return GLASolution(
        sol.omega,
        w / np.linalg.norm(blk.E @ w),
        sol.P,
        sol.risk,
        "difference-of-cones",
        gates,
        cert,
        time.perf_counter() - t0,
    )


def _solve_featurewise(model: MultitaskModel, rng: np.random.Generator, t0: float) -> GLASolution:
    """Vector gating with one key copy: feature-wise weights with columns in the cone."""
    fw = featurewise_cone(model, rng=rng)
    Om = fw["Omega"] / np.linalg.norm(fw["Omega"])
    # P*(Ω) = Σ diag(Ωᵀr) H^{-1} (closed form, numerics.risk.optimal_P_featurewise)
    return GLASolution(
        Om,
        None,
        optimal_P_featurewise(model, Om),
        fw["risk"],
        "featurewise-cone",
        {"U": fw["U"]},
        {"kind": fw["kind"], "key_copies": 1},
        time.perf_counter() - t0,
    )


def _solve_by_search(
    model: MultitaskModel,
    case: str,
    delimiters: str,
    contextual: bool,
    rng: np.random.Generator,
    t0: float,
) -> GLASolution:
    """Cases (a)–(c), whose reachable set is not a cone: grid plus L-BFGS-B over the gate
    parameters (non-convex, so the risk is an upper bound on the infimum)."""
    m = np.bincount(np.asarray(model.segments))
    spec = StructuredPrompt(tuple(int(v) for v in m), delimiters, bool(contextual))
    res = gate_param_search(model, spec, rng=rng)
    omega, P, risk = _finish(model, res["omega"])
    cert = {
        "kind": "grid+L-BFGS-B (non-convex; upper bound)",
        "grid_points": res["grid_points"],
        "grid_best": res["grid_best"],
        "params": res["params"],
    }
    return GLASolution(omega, None, P, risk, case, res["gates"], cert, time.perf_counter() - t0)


def _realise_or_zero(u) -> dict:
    """Gates for ``u ∈ M`` with ``max u <= 1``: ``δ_k = u_k/u_{k+1}`` (0 if ``u_{k+1} = 0``),
    ``δ_K = u_K`` (query gate 1, example gates 1)."""
    u = np.asarray(u, float)
    K = u.size
    g = {"example": 1.0, "query": 1.0}
    for k in range(K):
        nxt = 1.0 if k == K - 1 else u[k + 1]
        g[f"delimiter[{k}]"] = float(np.clip(u[k] / nxt, 0.0, 1.0)) if nxt > 0 else 0.0
    return g


# ============================================================================ brute force and closed forms
def brute_force_cone(
    model: MultitaskModel, *, rng: np.random.Generator, samples: int = 4000, starts: int = 6
) -> float:
    """Independent baseline for :func:`solve_cone`: random block weights in ``M ∪ −M``
    (increments ``θ`` exponential with random zeros) and L-BFGS-B on ``θ >= 0`` maximising the
    gain of ``ω = E Cθ`` through :func:`numerics.risk.profile_risk` (no QP, no 1-D reduction).
    Returns the best risk found (an upper bound of the cone optimum)."""
    model = _check_model(model)
    check_rng(rng)
    samples = check_int(samples, "samples", min_value=1)
    starts = check_int(starts, "starts", min_value=0)
    blk = block_reduce(model)
    K = blk.K
    C = _cumsum_matrix(K)
    th = rng.exponential(1.0, (samples, K)) * (rng.random((samples, K)) < 0.7)
    th[np.all(th == 0, axis=1), -1] = 1.0

    L0 = null_risk(model)

    def f(t):
        # unchecked: ω = E(Cθ) is built here, finite and of the model's size
        return _profile_risk(model, blk.E @ (C @ t)) if np.any(t > 0) else L0

    vals = profile_risks(model, (th @ C.T) @ blk.E.T)  # row s: ω = E C θ_s
    order = np.argsort(vals)
    best = float(vals[order[0]])
    for i in order[:starts]:
        res = minimize(
            f,
            th[i],
            method="L-BFGS-B",
            bounds=[(0, None)] * K,
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000},
        )
        best = min(best, float(res.fun))
    return best


def monotone_projection(alpha: ArrayLike, w: ArrayLike) -> np.ndarray:
    """Weighted projection of ``alpha`` onto ``M = {0 <= u_1 <= … <= u_K}``: the positive part
    of the weighted isotonic (nondecreasing) regression, by pool-adjacent-violators.

    >>> monotone_projection(np.array([0.3, 0.1, 0.5]), np.ones(3))
    array([0.2, 0.2, 0.5])
    """
    alpha = as_float_array(alpha, "alpha", ndim=1)
    w = as_float_array(w, "w", ndim=1)
    if w.shape != alpha.shape or np.any(w <= 0):
        raise ValueError("w: must be positive with the shape of alpha")
    blocks = []  # [value, weight, count]
    for a, wi in zip(alpha, w):
        blocks.append([a, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out = np.concatenate([[v] * c for v, _, c in blocks])
    return np.maximum(out, 0.0)


def independent_closed_form(
    m: ArrayLike, rho: ArrayLike, d: int, sigma: float, query_var: float = 1.0
) -> dict:
    r"""Closed forms for ``Σ = I_d``, ``Γ = I`` (independent unit-variance tasks).

    With block weights ``u``: ``L(u) = L₀ − d ⟨α, u⟩_w² / ‖u‖_w²``, ``w_k = m_k(m_k + c₀)``,
    ``α_k = ρ_k/(m_k + c₀)``, ``c₀ = 1 + d + σ²``, ``L₀ = σ² + d·query_var``. Hence
    ``L*_WPGD = L₀ − d‖α‖_w²`` (``ω* ∝ α``), ``L_LA = L₀ − d(Σ w_kα_k)²/Σ w_k`` and
    ``L*_GLA = L₀ − d max_s ‖Π_M(sα)‖_w²`` (Moreau: the cone-restricted Rayleigh quotient is the
    squared norm of the projection). ``reaches = sα ∈ M`` for some sign ``s``.

    >>> cf = independent_closed_form([3, 3], [0.1, 0.4], d=2, sigma=0.5)
    >>> bool(cf['reaches']), bool(cf['L_gla'] <= cf['L_la'])
    (True, True)
    """
    m = np.asarray(m)
    if m.ndim != 1 or m.size < 1 or not np.issubdtype(m.dtype, np.integer) or np.any(m < 1):
        raise ValueError(
            f"m: must be a 1-D array of positive integers (segment lengths), got {m!r}"
        )
    rho = as_float_array(rho, "rho", ndim=1)
    if rho.shape != m.shape:
        raise ValueError(f"rho: expected shape {m.shape} to match m, got {rho.shape}")
    d = check_int(d, "d", min_value=1)
    sigma = check_real(sigma, "sigma", min_value=0.0)
    query_var = check_real(query_var, "query_var", min_value=0.0)
    m = np.asarray(m, float)
    rho = np.asarray(rho, float)
    c0 = 1.0 + d + sigma**2
    w = m * (m + c0)
    alpha = rho / (m + c0)
    L0 = sigma**2 + d * query_var
    proj = [monotone_projection(s * alpha, w) for s in (1, -1)]
    pn = [float(np.sum(w * p * p)) for p in proj]
    i = int(np.argmax(pn))
    reaches = any(bool(np.all(s * alpha >= 0) and np.all(np.diff(s * alpha) >= 0)) for s in (1, -1))
    return {
        "alpha": alpha,
        "w": w,
        "L0": L0,
        "L_wpgd": L0 - d * float(np.sum(w * alpha**2)),
        "L_la": L0 - d * float(np.sum(w * alpha)) ** 2 / float(np.sum(w)),
        "L_gla": L0 - d * pn[i],
        "u_gla": proj[i],
        "reaches": reaches,
    }
