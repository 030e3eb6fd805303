r"""Certified global optimum of one-step WPGD under the multitask model (claims L4, L5).

The profile risk (claim L2) is ``L(ω) = L₀ − F(ω)`` with ``L₀ = σ² + R_{n+1,n+1} tr Σ`` and the
*gain* ``F(ω) = a² Σ_k λ_k²/(bλ_k + c)`` (``a = rᵀω``, ``b = ωᵀAω``, ``c = ωᵀBω``), invariant
under ``ω → sω``. Its gradient vanishes with ``a ≠ 0`` iff ``(A + tB) ω ∝ r`` with
``t = φ(ω) = Σλ²/(bλ+c)² / Σλ³/(bλ+c)²``, a weighted mean of ``1/λ_k``, so
``t ∈ [1/λ_max, 1/λ_min]`` (the *bracket*). When ``r ≠ 0`` the maximiser has ``a ≠ 0``
(``ω = r`` gives ``F > 0``), so every global minimiser is ``ω(t) = (A + tB)^{-1} r`` for a
fixed point ``t = φ(ω(t))`` in the bracket. Consequently
``max_ω F = max_{t ∈ bracket} F(ω(t))``: a 1-D problem.

Spectral evaluation. Examples with ``B_ii = R_ii tr Σ + σ² = 0`` carry ``y_i ≡ 0`` and
(``R ⪰ 0``) ``r_i = 0``, ``A_i· = 0``; they get ``ω_i = 0`` and are dropped. On the rest,
``A' = B^{-1/2} A B^{-1/2} = Σ_j μ_j u_j u_jᵀ`` (``μ_j >= 0``), ``r' = B^{-1/2} r``,
``w_j = (u_jᵀ r')²``; then for ``ω(t) = (A + tB)^{-1} r``

    a(t) = Σ_j w_j/(μ_j + t),  c(t) = Σ_j w_j/(μ_j + t)²,  b(t) = Σ_j w_j μ_j/(μ_j + t)²,

so each ``t`` costs ``O(#nodes + d)``. The nodes/weights ``(μ_j, w_j)`` (the spectral measure
of ``A'`` at ``r'``) come from one symmetric eigendecomposition (``method="eigh"``) or,
for large ``n``, from Lanczos with full reorthogonalisation started at ``r'``
(``method="lanczos"``): the ``k``-step Gauss quadrature, stopped when the rigorous bound
``a(t) − a_k(t) = resᵀ(A'+t)^{-1}res <= ‖res‖²/t`` and ``‖ω − ω_k‖_B <= ‖res‖/t`` (CG residual
``res`` of ``(A'+t)x = r'``) are below ``rtol`` relative at both ends of the bracket.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
from numpy.typing import ArrayLike
from scipy.optimize import minimize, minimize_scalar

from ._validate import check_instance, check_int, check_real, check_rng
from .data import MultitaskModel
from .risk import (
    null_risk,
    optimal_P_featurewise,
    profile_risk,
    profile_risk_featurewise_grad,
    profile_risk_grad,
)

__all__ = [
    "WPGDSolution",
    "FeaturewiseSolution",
    "solve_wpgd",
    "brute_force_wpgd",
    "solve_wpgd_featurewise",
    "featurewise_diagonal_optimum",
    "omega_curve",
]

METHODS = ("auto", "eigh", "lanczos")
# ``auto`` switches to Lanczos above this n: a dense eigh of n = 4096 takes ~10 s on
# 2 cores (n = 300: 0.05-3 s depending on load), Lanczos a few dozen matrix-vector
# products (n = 300: ~0.02 s), and Lanczos is certified by its residual bound.
EIGH_MAX = 256
# Relative tolerance for "two fixed points are the same direction" (1 − cosine) and for a
# local minimum of |φ − t| to count as a tangential fixed point (|φ − t|/t). Both are far
# above the ~1e-14 rounding of the spectral formulas and far below any genuine separation
# seen in practice; the certificate reports the actual figures.
SAME_DIRECTION_TOL = 1e-10
TANGENT_TOL = 1e-9
# A maximiser is certified unique if the runner-up fixed point's gain is below it by more
# than this (relative); the gains are computed to ~1e-14 relative.
UNIQUE_GAP_TOL = 1e-9
# Default number of log-spaced grid points on the bracket (was 1024). The grid only
# *isolates* fixed points (sign changes of g, local minima of |g|) and locates the curve
# maximum of F; the refinement is to ~1e-15 relative whatever the grid. 128 points give a
# log-step of ln(cond Σ)/127 (3.6% at cond 100, 11% at cond 1e6): a pair of fixed points is
# missed only if both fall into one cell, and then the curve-maximum check still catches a
# missed global maximiser. tests/test_landscape.py::test_default_grid_misses_no_fixed_point
# compares the default against a 32x finer grid on stress instances (cond up to 1e6,
# rank-deficient R, σ down to 0); 4500 random instances (n <= 80, cond up to 1e4, k-task
# with eigenvalue clusters up to 1e5 apart) all had exactly one fixed point. Cost: the
# (grid, n) tabulation is the largest single item of a warm solve (1024 points at n = 64:
# ~0.6 ms as the temporaries leave the L2 cache; 128: ~20 µs), and the inverse-cubic start
# (``_cubic_start``) at 128 points is close enough that 94% of random instances need one
# Newton step plus one confirming evaluation (the rest one more).
DEFAULT_GRID = 128
# Root refinement: Newton steps stop when the step is below this relative size (the
# original brentq used xtol = 1e-15·t); after NEWTON_MAX_STEPS the remaining brackets are
# bisected, which terminates in <= 60 halvings from any cell.
ROOT_RTOL = 1e-15
NEWTON_MAX_STEPS = 12
# A Newton step below this (relative) leaves the next iterate at ~C·1e-16 relative
# (quadratic convergence, C = |g''/2g'|·t of order 1), so that iterate is evaluated without
# g' and accepted if its step estimated with the previous g' is below ROOT_RTOL.
NEWTON_FINAL_STEP = 1e-8
# The spectral measure (one eigendecomposition or Lanczos run) depends only on the model,
# whose arrays are read-only; it is cached on the instance under this attribute (the same
# mechanism as the model's own functools.cached_property attributes), keyed by the
# resolved method. Repeated solves of one model then skip the O(n³) factorisation.
_CACHE_ATTR = "_landscape_measure_cache"


@dataclass
class WPGDSolution:
    """Optimal one-step WPGD: ``omega`` (n,), unit 2-norm, sign fixed so ``a = rᵀω > 0``;
    ``P = P*(ω) = a(bΣ + cI)^{-1}``; ``risk = L(P, ω)`` (computed directly from the model);
    ``t`` the fixed point of ``t ↦ φ(ω(t))``; ``certificate`` (see :func:`solve_wpgd`)."""

    omega: np.ndarray
    P: np.ndarray
    risk: float
    t: float
    certificate: dict = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class FeaturewiseSolution:
    """Best found feature-wise WPGD: ``Omega`` (n, d) (Frobenius norm 1), ``P = P*(Ω)``,
    ``risk``; ``scalar_risk`` the certified scalar-weight optimum; ``gain = scalar_risk − risk``
    (>= 0), ``rel_gain = gain / (scalar_risk − σ²)`` (fraction of the scalar optimum's excess
    risk over the noise floor that feature-wise weights remove); ``info`` diagnostics."""

    Omega: np.ndarray
    P: np.ndarray
    risk: float
    scalar_risk: float
    gain: float
    rel_gain: float
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------- spectral measure
class _Measure:
    """Nodes ``mu`` (m,), coefficients ``coef`` (m,) with ``w = coef²``, and the map from
    coordinates ``z`` (m,) back to ``ω`` (n,): ``ω[act] = basis @ z`` (``basis``: (n_act, m),
    ``act``: the active examples), 0 elsewhere (:meth:`embed`). ``set_lam`` stores the
    eigenvalues ``λ`` (d,) of ``Σ`` so that :meth:`evaluate` needs no model. Only arrays
    and plain values: the instance is cached on (and pickles with) the model."""

    def __init__(self, mu, coef, basis, act, n, info):
        self.mu = np.clip(mu, 0.0, None)  # A' ⪰ 0 exactly; clip rounding below 0
        self.coef = coef
        self.w = coef * coef
        self.basis = basis
        self.act = act
        self.n = n
        self.info = info

    def embed(self, z: np.ndarray) -> np.ndarray:
        if self.act.size == self.n:
            return self.basis @ z
        om = np.zeros(self.n)
        om[self.act] = self.basis @ z
        return om

    def set_lam(self, lam: np.ndarray) -> None:
        self.lam = np.asarray(lam, dtype=np.float64)
        self.lam2 = self.lam * self.lam
        self.lam23 = np.column_stack([self.lam2, self.lam2 * self.lam])  # (d, 2): λ², λ³
        # (m, d): M_jk = w_j(μ_j λ_k + 1), so that D_k(t) = b(t)λ_k + c(t) = Σ_j M_jk/(μ_j+t)²
        # is one matrix product; all terms are >= 0, so there is no cancellation.
        self.M = self.w[:, None] * (self.mu[:, None] * self.lam[None, :] + 1.0)
        self.one_mu = np.vstack([np.ones_like(self.mu), self.mu])  # (2, m)

    def abc(self, t):
        """``(a, b, c)`` at an array of ``t`` (G,): three (G,) arrays."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        inv = 1.0 / (self.mu[None, :] + t[:, None])
        inv2 = inv * inv
        return inv @ self.w, inv2 @ (self.w * self.mu), inv2 @ self.w

    def evaluate(self, t: np.ndarray, deriv: bool = False, t_aug: np.ndarray | None = None):
        r"""``g = φ(ω(t)) − t`` and ``F = F(ω(t)) = a²Σ_kλ_k²/D_k`` (``D_k = bλ_k + c``) at ``t``
        (K,) (all > 0); with ``deriv`` also ``g'(t)``. Vectorised over ``t``, cost
        ``O(K·m·d)`` flops in ~16 (~28 with ``deriv``) numpy calls whatever ``K``.

        ``φ = T₂/T₃`` with ``T_p = Σλ^p/D²``. Derivative: ``a' = −c``, ``b' = −2b₃``,
        ``c' = −2c₃`` (``b₃ = Σwμ/(μ+t)³``, ``c₃ = Σw/(μ+t)³``), so ``D' = −2E`` with
        ``E = b₃λ + c₃ = Σ_j M_jk/(μ_j+t)³``, ``T_p' = 4U_p``, ``U_p = Σλ^p E/D³``, and
        ``g' = 4φ(U₂/T₂ − U₃/T₃) − 1``.

        ``t_aug`` (K, 2) = ``[t, 1]`` (optional, for a reused grid): then ``t_i + μ_j`` comes
        from the product ``t_aug @ [1; μ]``, bit-identical (each entry is ``t_i·1 + 1·μ_j``,
        one rounding) and ~3x faster than numpy's broadcast add at (128, 64).
        """
        inv = 1.0 / (self.mu + t[:, None] if t_aug is None else t_aug @ self.one_mu)
        inv2 = inv * inv
        a = inv @ self.w
        v = 1.0 / (inv2 @ self.M)  # 1/D
        v2 = v * v
        T = v2 @ self.lam23
        phi = T[:, 0] / T[:, 1]
        g = phi - t
        F = a * a * (v @ self.lam2)
        if not deriv:
            return g, F
        UT = ((v2 * v) * ((inv2 * inv) @ self.M)) @ self.lam23 / T
        gp = 4.0 * phi * (UT[:, 0] - UT[:, 1]) - 1.0
        return g, F, gp

    def evaluate_point(self, t: float, deriv: bool = False):
        """:meth:`evaluate` at one ``t`` (a float), returning floats ``(g, F)`` or
        ``(g, F, g')``: the same formulas on 1-D arrays with the scalar tail in Python
        floats (~11 / ~17 numpy calls instead of ~16 / ~28: the Newton loop's cost is
        dominated by per-call overhead)."""
        inv = 1.0 / (self.mu + t)
        inv2 = inv * inv
        v = 1.0 / (inv2 @ self.M)
        v2 = v * v
        T2, T3 = (v2 @ self.lam23).tolist()
        a = float(inv @ self.w)
        phi = T2 / T3
        F = a * a * float(v @ self.lam2)
        if not deriv:
            return phi - t, F
        U2, U3 = ((v2 * v) * ((inv2 * inv) @ self.M) @ self.lam23).tolist()
        return phi - t, F, 4.0 * phi * (U2 / T2 - U3 / T3) - 1.0

    def g_F_scalar(self, t: float) -> tuple[float, float]:
        """``(φ(ω(t)) − t, F(ω(t)))`` at one ``t``, as floats."""
        return self.evaluate_point(float(t))

    def z(self, t: float) -> np.ndarray:
        return self.coef / (self.mu + t)


def _measure_eigh(
    Ap: np.ndarray, rp: np.ndarray, s: np.ndarray, act: np.ndarray, n: int
) -> _Measure:
    mu, U = np.linalg.eigh(Ap)  # LAPACK syevd
    coef = U.T @ rp
    return _Measure(mu, coef, s[:, None] * U, act, n, {"method": "eigh", "nodes": int(mu.size)})


def _measure_lanczos(
    Ap: np.ndarray,
    rp: np.ndarray,
    s: np.ndarray,
    act: np.ndarray,
    n: int,
    t_checks,
    rtol: float = 1e-13,
    check_every: int = 8,
) -> _Measure:
    m = rp.size
    beta0 = float(np.linalg.norm(rp))
    cap = min(m, 64)
    Q = np.empty((cap, m))
    alpha: list[float] = []
    beta: list[float] = []
    q = rp / beta0
    anorm = 0.0
    k = 0
    bound = np.inf
    while True:
        if k == Q.shape[0]:
            Q = np.vstack([Q, np.empty((min(m, 2 * Q.shape[0]) - Q.shape[0], m))])
        Q[k] = q
        w = Ap @ q
        al = float(q @ w)
        w -= al * q
        if k > 0:
            w -= beta[-1] * Q[k - 1]
        # Full reorthogonalisation, twice ("twice is enough", Kahan–Parlett): keeps the
        # Gauss quadrature free of ghost eigenvalues so the error bound below is valid.
        for _ in range(2):
            w -= Q[: k + 1].T @ (Q[: k + 1] @ w)
        be = float(np.linalg.norm(w))
        alpha.append(al)
        k += 1
        anorm = max(anorm, abs(al) + be + (beta[-1] if beta else 0.0))
        breakdown = be <= 1e-14 * max(anorm, 1e-300)
        if breakdown or k == m or k % check_every == 0:
            mu, V = sla.eigh_tridiagonal(np.array(alpha), np.array(beta))
            coef = beta0 * V[0]
            if breakdown or k == m:
                bound = 0.0
                done = True
            else:
                done = True
                bound = 0.0
                for t in t_checks:
                    y = V @ (V[0] / (np.clip(mu, 0, None) + t))  # (T_k + tI)^{-1} e_1
                    res = be * beta0 * abs(y[-1])
                    a_k = beta0**2 * y[0]
                    x_norm = beta0 * np.linalg.norm(y)
                    rel = max(res * res / t / a_k, res / t / x_norm)
                    bound = max(bound, rel)
                    done = done and rel <= rtol
            if done:
                info = {
                    "method": "lanczos",
                    "nodes": k,
                    "lanczos_error_bound": float(bound),
                    "lanczos_rtol": rtol,
                    "invariant_subspace": bool(breakdown or k == m),
                }
                return _Measure(mu, coef, s[:, None] * (Q[:k].T @ V), act, n, info)
        beta.append(be)
        q = w / be


def _pow2_outside(x: float, lo: float = 2.0**-60, hi: float = 2.0**60) -> float:
    """1 if ``x`` is 0 or within ``[lo, hi]``, else the power of two nearest to ``x``."""
    if x == 0.0 or lo <= x <= hi or not math.isfinite(x):
        return 1.0
    return 2.0 ** round(math.log2(x))


def _safe_norm(x: np.ndarray) -> float:
    """2-norm without under/overflow of the squares (np.linalg.norm([1e-170]) is 0)."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return m * float(np.linalg.norm(x / m)) if m > 0 and math.isfinite(m) else m


def _spectral(model: MultitaskModel, method: str, t_checks) -> tuple[dict, bool]:
    """The spectral measure of ``A' = B^{-1/2}AB^{-1/2}`` at ``r' = B^{-1/2}r`` on the active
    examples (``B_ii > 0``), cached on ``model`` (see ``_CACHE_ATTR``). Returns ``(entry,
    cached)``; ``entry`` holds ``meas`` (the :class:`_Measure`), ``act`` (active indices),
    ``Bmin`` (``min B_ii`` over them), ``mu_min``, ``r_norm``, ``L0`` (null risk),
    ``sigma_eig`` (``eigh(Σ)``), ``seconds`` (time of the computation) and ``grids`` (grid
    size -> ``(ts, [ts, 1])``, filled by :func:`solve_wpgd`)."""
    # A frozen dataclass forbids attribute assignment but, like functools.cached_property,
    # we may write to the instance dict; the model's arrays are read-only, so the entry
    # stays valid for the life of the instance.
    cache = model.__dict__.setdefault(_CACHE_ATTR, {"r_nonzero": True})
    entry = cache.get(method)
    if entry is not None:
        return entry, True
    ts0 = time.perf_counter()
    n = model.n
    Bd = model.B_diag
    act = np.flatnonzero(Bd > 0)
    resolved = method if method != "auto" else ("eigh" if act.size <= EIGH_MAX else "lanczos")
    if resolved in cache:
        cache[method] = cache[resolved]
        return cache[resolved], True
    s = 1.0 / np.sqrt(Bd[act])
    r = model.r[act]
    A = model.A if act.size == n else model.A[np.ix_(act, act)]
    Ap = A * s[:, None] * s[None, :]
    # ‖r'‖ far from 1 (r tiny or huge relative to A, B) would under/overflow r' = B^{-1/2} r,
    # w = coef² and the Lanczos bounds; the direction ω(t) ∝ (A + tB)^{-1} r and φ do not
    # depend on ‖r‖, and the gain F scales with ‖r‖². So the measure is built for r'/ρ with ρ
    # a power of two (exact; r is divided before the product with B^{-1/2}, which could
    # underflow) and gains are multiplied by ρ² where a risk is formed (``F_scale``).
    rho1 = _pow2_outside(float(np.max(np.abs(r))) if r.size else 0.0)
    rp = s * (r / rho1)
    rho2 = _pow2_outside(_safe_norm(rp))
    rp = rp / rho2
    rho = rho1 * rho2
    if resolved == "eigh":
        meas = _measure_eigh(Ap, rp, s, act, n)
    else:
        meas = _measure_lanczos(Ap, rp, s, act, n, t_checks)
    meas.info["active_examples"] = int(act.size)
    meas.set_lam(model.eigvals)
    entry = {
        "meas": meas,
        "act": act,
        "Bmin": float(Bd[act].min()),
        "grids": {},
        "mu_min": float(meas.mu.min()) if resolved == "eigh" else 0.0,
        "r_norm": _safe_norm(model.r / rho),
        "rho": rho,
        "F_scale": rho * rho,
        "L0": null_risk(model),
        # Σ = V diag(λ_Σ) Vᵀ: P* = V diag(a/(bλ_Σ + c)) Vᵀ without a solve per call
        "sigma_eig": np.linalg.eigh(model.Sigma),
        "seconds": time.perf_counter() - ts0,
    }
    cache[resolved] = cache[method] = entry
    return entry, False


def omega_curve(model: MultitaskModel, t: float | ArrayLike) -> np.ndarray:
    """``ω(t) = (A + tB)^{-1} r`` (unnormalised, dense solve; inactive examples with
    ``B_ii = 0`` get 0). Reference implementation for tests; ``t > 0``.

    >>> from numerics.data import MultitaskModel
    >>> m = MultitaskModel.k_task([2, 1], np.eye(2), [0.2, 0.6], np.eye(2), 0.5)
    >>> omega_curve(m, 1.0).shape
    (3,)
    """
    check_instance(model, MultitaskModel, "model")
    t = check_real(t, "t", positive=True)
    act = np.flatnonzero(model.B_diag > 0)
    M = model.A[np.ix_(act, act)] + t * np.diag(model.B_diag[act])
    om = np.zeros(model.n)
    om[act] = np.linalg.solve(M, model.r[act])
    return om


def _cubic_start(ts: np.ndarray, gv: np.ndarray, i: int) -> float | None:
    """Inverse cubic interpolation of the grid values ``(g, t)`` at the 4 grid points around
    the sign change in cell ``i`` (``t`` as a polynomial in ``g``, evaluated at ``g = 0``):
    error ``O(h⁴)`` in the log-step ``h`` (measured at grid 128, 200 random instances:
    median 4e-9, max 5e-7 relative) against ``O(h²)`` for regula falsi, so one Newton step
    usually suffices. ``None`` if the 4 values are not strictly monotone."""
    j = min(max(i - 1, 0), ts.size - 4)
    if j < 0:
        return None
    x = ts[j : j + 4].tolist()
    y = gv[j : j + 4].tolist()
    if not (y[0] < y[1] < y[2] < y[3] or y[0] > y[1] > y[2] > y[3]):
        return None
    t = 0.0
    for k in range(4):
        p = x[k]
        for m in range(4):
            if m != k:
                p *= y[m] / (y[m] - y[k])
        t += p
    return t


def _newton_roots(ev, lo, hi, glo, ghi, t0=None, ev_point=None):
    r"""All bracketed roots of ``g``: ``lo, hi, glo = g(lo), ghi = g(hi)`` (K,) with
    ``glo·ghi < 0`` elementwise; optional starting points ``t0`` (entries ``None`` or
    outside the bracket are replaced by the regula-falsi point).

    Safeguarded Newton with the analytic ``g'`` (``ev(t, True) -> (g, F, g')``). Every
    iterate updates the bracket by the sign of ``g``; a Newton step leaving the open bracket
    is replaced by bisection. A root is accepted at an *evaluated* iterate ``t`` when
    ``g(t) = 0``, its bracket is ``<= ROOT_RTOL·t`` wide, or its Newton step
    ``|g(t)/g'|`` is ``<= ROOT_RTOL·t`` (the stopping rule of the former brentq, xtol
    ``1e-15·t``); so ``g`` and ``F`` at the returned roots are known without another
    evaluation. After a step below ``NEWTON_FINAL_STEP·t`` (quadratic convergence: the next
    iterate is then at ~``1e-16`` relative) the next evaluation skips ``g'`` and the step
    test uses the previous ``g'`` (which differs by ``O(step)``, so the estimated distance to
    the root is accurate to that factor). Roots still running after ``NEWTON_MAX_STEPS``
    evaluations (rounding noise) continue by pure bisection, which ends when the bracket is
    ``ROOT_RTOL·t`` wide or one ulp.

    The iterates of all running roots are evaluated in one vectorised call per step (or by
    ``ev_point(t, deriv) -> floats`` when a single root is running, if given); the per-root
    bracket logic is on Python floats (K is small; numpy calls on length-K arrays would
    cost more than the evaluation itself). Returns lists ``(t, g(t), F(t))`` and the
    number of evaluation steps.
    """
    lo, hi, glo, ghi = (list(map(float, x)) for x in (lo, hi, glo, ghi))
    K = len(lo)
    t = [
        _start_point(lo[k], hi[k], glo[k], ghi[k], None if t0 is None else t0[k]) for k in range(K)
    ]
    pos_lo = [v > 0 for v in glo]
    gp_prev: list = [None] * K  # g' from the previous iterate when this one skipped it
    out_g, out_F = [0.0] * K, [0.0] * K
    active = list(range(K))
    calls = 0
    while active:
        newton = calls < NEWTON_MAX_STEPS
        deriv = newton and any(gp_prev[k] is None for k in active)
        gs, Fs, gps = _evaluate(ev, ev_point, [t[k] for k in active], deriv)
        calls += 1
        still = []
        for j, k in enumerate(active):
            out_g[k], out_F[k] = gs[j], Fs[j]
            if gs[j] == 0:
                continue
            if (gs[j] > 0) == pos_lo[k]:
                lo[k] = t[k]
            else:
                hi[k] = t[k]
            gpk = None
            if newton:
                gpk = gp_prev[k] if gp_prev[k] is not None else gps[j]
            tn, gp_prev[k] = _next_iterate(t[k], gs[j], lo[k], hi[k], gpk)
            if tn is not None:
                t[k] = tn
                still.append(k)
        active = still
    return t, out_g, out_F, calls


def _start_point(lo: float, hi: float, glo: float, ghi: float, x) -> float:
    """``x`` if strictly inside the bracket, else the regula-falsi point (else the midpoint)."""
    if x is None or not lo < x < hi:
        x = lo - glo * (hi - lo) / (ghi - glo)
        if not lo < x < hi:
            x = 0.5 * (lo + hi)
    return x


def _evaluate(ev, ev_point, ts: list, deriv: bool):
    """``(g, F, g' or None)`` at the running iterates, as Python lists (one vectorised call, or
    ``ev_point`` for a single iterate)."""
    if ev_point is not None and len(ts) == 1:
        res = ev_point(ts[0], deriv)
        return [res[0]], [res[1]], ([res[2]] if deriv else None)
    res = ev(np.array(ts), deriv)
    return res[0].tolist(), res[1].tolist(), (res[2].tolist() if deriv else None)


def _next_iterate(tk: float, gk: float, lo: float, hi: float, gpk):
    """The next iterate of one root after evaluating ``g(tk) = gk`` (bracket already updated):
    ``(None, None)`` when the root is accepted, else ``(t_next, g' to reuse or None)``.
    ``gpk`` is ``g'`` for a Newton step, ``None`` for bisection."""
    tol = ROOT_RTOL * tk
    if hi - lo <= tol:
        return None, None
    tn = 0.5 * (lo + hi)
    keep = None
    if gpk is not None and gpk != 0:
        newton = tk - gk / gpk
        if lo < newton < hi:  # False for NaN
            step = abs(newton - tk)
            if step <= tol:
                return None, None
            tn = newton
            if step <= NEWTON_FINAL_STEP * tk:
                keep = gpk
    if not lo < tn < hi:  # bracket down to one ulp
        return None, None
    return tn, keep


def _search_fixed_points(ev, ts: np.ndarray, ev_point=None, ev_grid=None) -> dict:
    r"""Isolate and refine the fixed points of a 1-D map on the grid ``ts`` (G,) (increasing,
    > 0, G >= 4).

    ``ev(t, deriv=False) -> (g, F)`` or ``(g, F, g')`` for ``t`` (K,), with ``g = φ − t``.
    ``g`` and ``F`` are tabulated on ``ts``. Candidates (list of ``(t, kind, g(t), F(t))``):
    sign changes of ``g`` refined by :func:`_newton_roots` from :func:`_cubic_start`
    (``"crossing"``), grid points with ``g = 0`` (``"grid-exact"``), and interior local
    minima of ``|g|/t`` without a sign change, refined by bounded Brent on the two
    neighbouring cells and accepted if ``|g|/t <= TANGENT_TOL`` (``"tangent"``); the other
    minima give ``near_miss`` (the smallest such ``|g|/t``, ``None`` if none). Also the grid
    maximum of ``F`` (``t_curve``, ``F_curve``, index ``i_curve``) and ``newton_calls``.
    ``ev_point`` (optional): the same map at one float ``t``, returning floats;
    ``ev_grid`` (optional): ``() -> (g, F)`` on ``ts`` (a faster tabulation).
    """
    gvals, Fvals = ev(ts) if ev_grid is None else ev_grid()
    cands = []
    sg = np.sign(gvals)
    prod = sg[:-1] * sg[1:]
    calls = 0
    # cells with a sign change (prod < 0) or a grid zero at an end (prod = 0): usually one
    touch = (prod <= 0).nonzero()[0].tolist()
    if touch:
        glist = gvals.tolist()
        cross = [i for i in touch if glist[i] * glist[i + 1] < 0]
        zeros = sorted({j for i in touch for j in (i, i + 1) if glist[j] == 0})
        if cross:
            t0 = [_cubic_start(ts, gvals, i) for i in cross]
            roots, groots, Froots, calls = _newton_roots(
                ev,
                [ts.item(i) for i in cross],
                [ts.item(i + 1) for i in cross],
                [glist[i] for i in cross],
                [glist[i + 1] for i in cross],
                t0,
                ev_point,
            )
            cands += [(tr, "crossing", gr, Fr) for tr, gr, Fr in zip(roots, groots, Froots)]
        cands += [(ts.item(j), "grid-exact", 0.0, Fvals.item(j)) for j in zeros]
    absg = np.abs(gvals) / ts
    near_miss = None
    # Interior local minima of |g| with the same nonzero sign at the point and both
    # neighbours (prod > 0 on both sides): candidate tangential fixed points. Only those with
    # |g|/t < 1e-2 on the grid are refined (a tangency between grid points of ratio
    # (t_hi/t_lo)^(1/(G-1)) leaves |g|/t of order g''·Δt², far below that); the rest are
    # reported as the near miss.
    # rises[c]: |g| increases over cell c; a local minimum at point i is a rise after a
    # non-rise (rises[i] > rises[i-1]); the same-sign test is done on the few hits.
    rises = absg[1:] > absg[:-1]
    prod_l = None
    for i in ((rises[1:] > rises[:-1]).nonzero()[0] + 1).tolist():
        if prod_l is None:
            prod_l = prod.tolist()
        if not (prod_l[i - 1] > 0 and prod_l[i] > 0):
            continue
        fun = absg.item(i)
        if fun < 1e-2:
            res = minimize_scalar(
                lambda t: abs(float(ev(np.array([t]))[0][0])) / t,
                bounds=(ts[i - 1], ts[i + 1]),
                method="bounded",
                options={"xatol": 1e-14 * ts[i]},
            )
            fun = float(min(res.fun, fun))
            if fun <= TANGENT_TOL:
                gt, Ft = ev(np.array([float(res.x)]))
                cands.append((float(res.x), "tangent", float(gt[0]), float(Ft[0])))
                continue
        near_miss = fun if near_miss is None else min(near_miss, fun)
    i = int(Fvals.argmax())
    return {
        "cands": cands,
        "near_miss": near_miss,
        "t_curve": ts.item(i),
        "i_curve": i,
        "F_curve": Fvals.item(i),
        "newton_calls": calls,
    }


def _log_grid(t_lo: float, t_hi: float, grid: int) -> np.ndarray:
    """``grid`` log-spaced points from ``t_lo`` to ``t_hi`` with exact end points."""
    ts = t_lo * np.exp(np.arange(grid) * (np.log(t_hi / t_lo) / (grid - 1)))
    ts[0], ts[-1] = t_lo, t_hi
    return ts


def _finish(
    model: MultitaskModel,
    omega: np.ndarray,
    Aw: np.ndarray | None = None,
    L0: float | None = None,
    sigma_eig: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Normalise ``ω`` (unit 2-norm, ``a = rᵀω > 0``) and return ``(ω, P*(ω), L(ω))`` computed
    from the model's ``A, B, r, λ`` (the formulas of :func:`numerics.risk.optimal_P` and
    :func:`numerics.risk.profile_risk`, inlined to skip their re-validation of ``ω``).
    ``Aw = A ω`` (for the unnormalised input), ``L0`` (null risk) and ``sigma_eig = (λ, V)``
    (``Σ = V diag(λ) Vᵀ``, then ``P* = V diag(a/(bλ + c)) Vᵀ`` instead of a solve) may be
    passed in if already known."""
    if Aw is None:
        Aw = model.A @ omega
    m = float(np.max(np.abs(omega))) if omega.size else 0.0
    if m == 0.0 or not math.isfinite(m):
        raise ValueError("omega: must be finite and not all zero")
    omega, Aw = omega / m, Aw / m  # ω·ω can neither underflow nor overflow now
    # a, b, c of the normalised ω from those of the input (scale invariance of L)
    s2 = 1.0 / float(omega @ omega)
    a = float(model.r @ omega) * math.sqrt(s2)
    b = float(omega @ Aw) * s2
    c = float((omega * omega) @ model.B_diag) * s2
    omega = omega * math.copysign(math.sqrt(s2), a)
    a = abs(a)
    L0 = null_risk(model) if L0 is None else L0
    if b == 0 and c == 0:
        return omega, np.zeros((model.d, model.d)), L0
    if sigma_eig is None:
        lam = model.eigvals
        risk = L0 - a * a * float((lam * lam) @ (1.0 / (b * lam + c)))
        P = a * np.linalg.inv(b * model.Sigma + c * np.eye(model.d))
    else:
        # the eigenvalues of this decomposition agree with model.eigvals to rounding
        ls, V = sigma_eig
        q = 1.0 / (b * ls + c)
        risk = L0 - a * a * float((ls * ls) @ q)
        P = (V * (a * q)) @ V.T
    return omega, P, risk


# Longer than 80 lines only through its docstring, which documents every certificate key; the
# body is ~50 lines of named steps.
def _solve_core(model: MultitaskModel, grid: int, method: str) -> WPGDSolution:
    """:func:`solve_wpgd` on a model whose scales are representable (see there)."""
    t0 = time.perf_counter()
    grid = _check_solve_args(model, grid, method)
    n, lam = model.n, model.eigvals
    t_lo, t_hi = 1.0 / lam[-1], 1.0 / lam[0]
    cert: dict = {"bracket": [t_lo, t_hi], "n": n, "d": model.d, "grid": grid}
    cache = model.__dict__.get(_CACHE_ATTR)
    cert["r_nonzero"] = cache["r_nonzero"] if cache else bool(np.any(model.r != 0))
    if not cert["r_nonzero"]:
        return _r_zero_solution(model, cert, t0)
    point = t_hi <= t_lo * (1 + 1e-12)
    entry, cached = _spectral(model, method, [t_lo] if point else [t_lo, t_hi])
    meas, L0, Fs = entry["meas"], entry["L0"], entry["F_scale"]
    cert["spectral"] = dict(meas.info, seconds=0.0 if cached else entry["seconds"], cached=cached)
    found = _fixed_point_candidates(entry, t_lo, t_hi, grid, point)
    fps, distinct = _fixed_points_by_direction(found["cands"], meas, L0, Fs)
    F_best = fps[0]["gain"] if fps else -np.inf
    if not point and found["F_curve"] > F_best:
        _refine_curve_max(found, meas.evaluate, grid)
    excess = (found["F_curve"] - F_best) / abs(found["F_curve"]) if found["F_curve"] != 0 else 0.0
    if not fps or excess > 1e-12:
        t_star, kind_star = found["t_curve"], "curve-max"
        g_star, F_star = meas.g_F_scalar(t_star)
    else:
        t_star, kind_star = fps[0]["t"], fps[0]["kind"]
        g_star, F_star = fps[0]["g_rel"] * t_star, fps[0]["gain"]
    gap = (
        (distinct[0]["gain"] - distinct[1]["gain"]) / abs(distinct[0]["gain"])
        if len(distinct) > 1
        else float("inf")
    )
    tf = time.perf_counter()
    omega, P, risk, resid_norm = _omega_at(model, entry, t_star)
    act = entry["act"]
    cert.update(
        {
            "t_star_kind": kind_star,
            "fixed_points": [
                {**{k: v for k, v in f.items() if k != "_z"}, "gain": Fs * f["gain"]} for f in fps
            ],
            "num_fixed_points": len(fps),
            "num_distinct_directions": len(distinct),
            # Examples with B_ii = 0 (y_i = 0 identically) leave omega_i free: not unique then.
            "unique": bool(
                len(distinct) >= 1 and gap > UNIQUE_GAP_TOL and excess <= 1e-12 and act.size == n
            ),
            "unique_on_active": bool(
                len(distinct) >= 1 and gap > UNIQUE_GAP_TOL and excess <= 1e-12
            ),
            "runner_up_rel_gap": float(gap),
            "curve_max": {"t": found["t_curve"], "risk": L0 - Fs * found["F_curve"]},
            "curve_max_rel_excess": float(excess),
            "closest_near_miss": found["near_miss"],
            "min_gen_eig": entry["mu_min"] + t_lo,
            "min_eig_lower_bound": (entry["mu_min"] + t_lo) * entry["Bmin"],
            "inactive_examples": int(n - act.size),
            "risk_spectral": float(L0 - Fs * F_star),
            "risk_rel_diff": float(abs(risk - (L0 - Fs * F_star)) / max(abs(risk), 1e-300)),
            "residual": resid_norm,
            "phi_minus_t_rel": float(abs(g_star) / t_star),
            "newton_calls": found["newton_calls"],
            "finish_seconds": time.perf_counter() - tf,
        }
    )
    return WPGDSolution(omega, P, risk, float(t_star), cert, time.perf_counter() - t0)


def solve_wpgd(
    model: MultitaskModel, *, grid: int = DEFAULT_GRID, method: str = "auto"
) -> WPGDSolution:
    r"""Global minimiser of the one-step WPGD risk over ``(P, ω)``, with a certificate.

    Parameters
    ----------
    model : the multitask model.
    grid : number of log-spaced points of the bracket ``[1/λ_max, 1/λ_min]`` on which
        ``g(t) = φ(ω(t)) − t`` and ``F(ω(t))`` are tabulated (>= 8; default
        ``DEFAULT_GRID`` = 256, see the comment there for why that suffices).
    method : ``"eigh"``, ``"lanczos"`` or ``"auto"`` (eigh for ``n <= 256`` active examples).
        The spectral measure is cached on ``model`` per resolved method, so repeated solves
        of the same model skip the factorisation (``certificate["spectral"]["cached"]``).

    Scale: the problem is solved for ``(R/κ, Σ/s, σ/√(κs))`` with ``s``, ``κ`` powers of four
    near ``λ_max(Σ)`` and ``max(max R_ii, σ²/s)`` whenever those lie outside ``[2^-32, 2^32]`` (the
    risk scales by ``κs``, ``P`` by ``1/s``, ``t`` by ``1/s``, ``ω`` not at all), so e.g.
    ``Σ = 1e200·I`` gives the finite exact answer instead of overflowing in ``λ²``; ``‖r‖``
    tiny or huge relative to ``R`` is handled likewise. A result that is not a float64
    number even so raises ``ValueError`` naming ``model``; no ``ZeroDivisionError`` or
    ``OverflowError`` escapes.

    Procedure: fixed points of ``t ↦ φ(ω(t))`` are the sign changes of ``g`` on the grid,
    refined all at once by safeguarded Newton with the analytic ``g'`` (bisection
    fallback; step tolerance ``1e-15·t``), plus interior local minima of ``|g|`` refined by
    bounded Brent that reach ``|g|/t <= 1e-9`` (tangential fixed points). Independently
    ``F(ω(t))`` is tabulated on the grid: by L4 its maximum over the bracket is the global
    optimum and sits at a fixed point, so a grid value above the best fixed point means a
    missed root; it is then refined by bounded Brent and used. The returned ``ω`` is the
    best of all candidates.

    Certificate keys: ``bracket``, ``fixed_points`` (list of dicts ``t``, ``risk``,
    ``kind``), ``num_fixed_points`` / ``num_distinct_directions``, ``unique`` and
    ``runner_up_rel_gap`` (gain gap to the best other direction, relative to the best
    gain; ``inf`` if there is none), ``curve_max_rel_excess`` (how much the curve maximum
    on the grid exceeds the best fixed point, relative; <= 0 up to rounding expected), ``closest_near_miss`` (the
    smallest ``|g|/t`` at a non-root local minimum: small values warn of a near-bifurcation),
    ``r_nonzero``, ``min_gen_eig`` (min over the bracket of the smallest eigenvalue of
    ``B^{-1/2}(A+tB)B^{-1/2}``, = ``μ_min + 1/λ_max``), ``min_eig_lower_bound``
    (``λ_min(A+tB) >= (μ_min + t) min B_ii``; Lanczos path: ``μ_min`` replaced by its
    lower bound 0, as ``A ⪰ 0``),
    ``risk_spectral`` vs the directly computed risk, ``residual`` ``‖(A + t*B)ω − r‖/‖r‖``
    (``ω`` rescaled), ``rescaled`` (the powers of four ``Sigma``, ``R`` by which the model was
    divided, when it was), the spectral method info (``seconds``: time spent on the measure in
    this call, 0 when ``cached``) and timings (``newton_calls``: vectorised Newton/bisection
    evaluations).

    >>> from numerics.data import MultitaskModel
    >>> m = MultitaskModel.k_task([2, 2], np.eye(2), [0.2, 0.6], np.eye(3), 0.5)
    >>> sol = solve_wpgd(m)
    >>> bool(sol.certificate['unique']), round(sol.risk, 6)
    (True, 2.866)
    """
    grid = _check_solve_args(model, grid, method)
    s_pow, k_pow = _rescaling(model)
    if s_pow == 1.0 and k_pow == 1.0:
        sol = _solve_core(model, grid, method)
    else:
        sol = _solve_rescaled(model, grid, method, s_pow, k_pow)
    if not (
        math.isfinite(sol.risk) and np.all(np.isfinite(sol.P)) and np.all(np.isfinite(sol.omega))
    ):
        raise ValueError(
            f"model: the optimal risk or P is not a float64 number (risk {sol.risk!r}); "
            f"rescale R, Sigma or sigma"
        )
    return sol


def _solve_rescaled(
    model: MultitaskModel, grid: int, method: str, s_pow: float, k_pow: float
) -> WPGDSolution:
    """Solve the model with ``Σ/s``, ``R/κ``, ``σ/√(κs)`` and scale the solution and its
    certificate back (risk by ``κs``; ``P``, ``t`` and the bracket by ``1/s``; ``ω`` unchanged)."""
    scaled = model.__dict__.get(_SCALED_ATTR)
    if scaled is None:
        scaled = MultitaskModel(
            model.R / k_pow,
            model.Sigma / s_pow,
            model.sigma / math.sqrt(k_pow * s_pow),
            segments=model.segments,
        )
        model.__dict__[_SCALED_ATTR] = scaled  # as _CACHE_ATTR: derived from read-only arrays
    sol = _solve_core(scaled, grid, method)
    f = k_pow * s_pow
    c = sol.certificate
    c["rescaled"] = {"Sigma": s_pow, "R": k_pow}
    c["bracket"] = [b / s_pow for b in c["bracket"]]
    for fp in c.get("fixed_points", []):
        fp.update(t=fp["t"] / s_pow, risk=fp["risk"] * f, gain=fp["gain"] * f)
    if "curve_max" in c:
        c["curve_max"] = {"t": c["curve_max"]["t"] / s_pow, "risk": c["curve_max"]["risk"] * f}
    if "risk_spectral" in c:
        c["risk_spectral"] *= f
    with np.errstate(over="ignore"):
        return WPGDSolution(sol.omega, sol.P / s_pow, sol.risk * f, sol.t / s_pow, c, sol.seconds)


# Models whose λ_max(Σ) or max R_ii lie outside [2^-32, 2^32] are solved rescaled (see
# solve_wpgd); the rescaled model is cached on the instance under this attribute.
_SCALED_ATTR = "_landscape_scaled_model"


def _rescaling(model: MultitaskModel) -> tuple[float, float]:
    """``(s, κ)``, powers of four: ``s`` near ``λ_max(Σ)`` and ``κ`` near ``max R_ii`` when
    those are outside ``[2^-32, 2^32]`` (else 1); ``κ`` is raised to ``σ²/s`` when the noise
    would dominate the rescaled model beyond ``2^64`` (then ``σ/√(κs)`` stays representable and
    the parts of ``R`` that underflow are below rounding relative to the risk ``>= σ²``)."""
    s = _pow4_scale(float(model.eigvals[-1]))
    rmax = float(np.max(np.diag(model.R)))
    k = _pow4_scale(rmax) if rmax > 0 else 1.0
    if model.sigma > 0:
        log_noise = 2 * math.log2(model.sigma) - math.log2(s)  # log2(σ²/s), no overflow
        if log_noise > math.log2(k) + 64:
            if log_noise > 1000:  # κ ≈ σ²/s would not be a float64 number
                raise ValueError(
                    f"sigma: sigma²/λ_max(Sigma) ≈ 2^{log_noise:.0f} is beyond float64 (the noise "
                    f"swamps the signal); rescale sigma or Sigma"
                )
            k = 4.0 ** round(log_noise / 2)
    return s, k


def _pow4_scale(x: float) -> float:
    """1 if ``x`` is within ``[2^-32, 2^32]``, else the power of four nearest to ``x``
    (a power of two whose square root is exact, so σ/√(κs) is rescaled without rounding)."""
    if 2.0**-32 <= x <= 2.0**32:
        return 1.0
    return 4.0 ** round(math.log2(x) / 2)


def _check_solve_args(model, grid, method) -> int:
    if not isinstance(model, MultitaskModel):
        raise ValueError(f"model: expected a MultitaskModel, got {type(model).__name__}")
    if method not in METHODS:
        raise ValueError(f"method: must be one of {METHODS}, got {method!r}")
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 8:
        raise ValueError(f"grid: must be an integer >= 8, got {grid!r}")
    return int(grid)


def _r_zero_solution(model, cert: dict, t0: float) -> WPGDSolution:
    """``r = 0``: ``a ≡ 0``, every ω gives the null risk and ``P* = 0``; no direction is preferred."""
    omega = np.zeros(model.n)
    omega[0] = 1.0
    cert.update(
        unique=False,
        fixed_points=[],
        num_fixed_points=0,
        num_distinct_directions=0,
        runner_up_rel_gap=0.0,
        note="r = 0: the risk is the null risk for every omega",
    )
    return WPGDSolution(
        omega,
        np.zeros((model.d, model.d)),
        null_risk(model),
        float("nan"),
        cert,
        time.perf_counter() - t0,
    )


def _fixed_point_candidates(entry: dict, t_lo: float, t_hi: float, grid: int, point: bool) -> dict:
    """Candidate fixed points ``(t, kind, g(t), F(t))`` and the grid maximum of ``F(ω(t))``
    (keys ``cands``, ``near_miss``, ``t_curve``, ``F_curve``, ``newton_calls``, ``ts``, ``i_curve``)."""
    meas = entry["meas"]
    ev = meas.evaluate
    if point:
        gv, Fv = ev(np.array([t_lo]))
        return {
            "cands": [(t_lo, "point-bracket", float(gv[0]), float(Fv[0]))],
            "near_miss": None,
            "t_curve": t_lo,
            "F_curve": float(Fv[0]),
            "newton_calls": 0,
        }
    cached_grid = entry["grids"].get(grid)
    if cached_grid is None:
        ts = _log_grid(t_lo, t_hi, grid)
        cached_grid = entry["grids"][grid] = (ts, np.column_stack([ts, np.ones(grid)]))
    ts, ts_aug = cached_grid
    found = _search_fixed_points(ev, ts, meas.evaluate_point, lambda: ev(ts, False, ts_aug))
    return {**found, "ts": ts}


def _fixed_points_by_direction(
    cands, meas, L0: float, Fs: float = 1.0
) -> tuple[list[dict], list[dict]]:
    """The candidates as dicts sorted by gain, and those of distinct directions (cosine of
    ``z`` in the B-metric above ``1 − SAME_DIRECTION_TOL`` counts as the same direction).
    ``gain`` is the measure's (for r'/ρ); the risk uses the true gain ``Fs·gain`` (``Fs = ρ²``)."""
    fps = [
        {"t": t, "kind": kind, "gain": Ft, "risk": L0 - Fs * Ft, "g_rel": abs(gt) / t}
        for t, kind, gt, Ft in cands
    ]
    if len(fps) > 1:
        Z = meas.coef / (meas.mu + np.array([f["t"] for f in fps])[:, None])
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        for f, zf in zip(fps, Z):
            f["_z"] = zf
    fps.sort(key=lambda f: -f["gain"])
    distinct: list[dict] = []
    for f in fps:
        if all(1 - abs(f["_z"] @ e["_z"]) > SAME_DIRECTION_TOL for e in distinct):
            distinct.append(f)
    return fps, distinct


def _refine_curve_max(found: dict, ev, grid: int) -> None:
    """A grid value of ``F(ω(t))`` above the best fixed point means a missed root: refine it by
    bounded Brent between its grid neighbours (in place)."""
    ts, j = found["ts"], found["i_curve"]
    lo, hi = ts[max(j - 1, 0)], ts[min(j + 1, grid - 1)]
    res = minimize_scalar(
        lambda t: -float(ev(np.array([t]))[1][0]),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-14 * found["t_curve"]},
    )
    if -res.fun > found["F_curve"]:
        found["t_curve"], found["F_curve"] = float(res.x), float(-res.fun)


def _omega_at(model, entry: dict, t_star: float):
    """``(ω, P, risk, residual)`` at ``t*``. The residual ``‖(A + t*B)ω − r‖/‖r‖`` and the risk use
    the model's ``A, B, r, Σ`` directly (not the spectral measure), so they check the spectral
    solution independently."""
    meas, act = entry["meas"], entry["act"]
    omega_raw = meas.embed(meas.coef / (meas.mu + t_star))
    Aw = model.A @ omega_raw
    resid = Aw + (t_star * model.B_diag) * omega_raw - model.r / entry["rho"]
    if act.size < model.n:
        resid = resid[act]
    omega, P, risk = _finish(model, omega_raw, Aw, entry["L0"], entry["sigma_eig"])
    return omega, P, risk, math.sqrt(float(resid @ resid)) / entry["r_norm"]


def brute_force_wpgd(
    model: MultitaskModel, *, restarts: int = 8, rng: np.random.Generator, maxiter: int = 5000
) -> WPGDSolution:
    r"""Independent baseline: multistart L-BFGS on the profile risk ``L(ω)`` (analytic
    gradient, :func:`numerics.risk.profile_risk_grad`), no use of the 1-D reduction.

    Starts: ``ω = r`` (if nonzero) and ``restarts`` standard-normal vectors. The best
    local optimum is returned normalised like :func:`solve_wpgd` (``t = φ(ω)``);
    ``certificate`` holds every start's final risk.
    """
    t0 = time.perf_counter()
    check_instance(model, MultitaskModel, "model")
    check_rng(rng)
    restarts = check_int(restarts, "restarts", min_value=1)
    maxiter = check_int(maxiter, "maxiter", min_value=1)
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts: must be a positive integer, got {restarts!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng: must be a numpy.random.Generator")
    n = model.n
    starts = [model.r / np.linalg.norm(model.r)] if np.any(model.r != 0) else []
    starts += [v / np.linalg.norm(v) for v in rng.standard_normal((int(restarts), n))]
    L0 = null_risk(model)
    results = []
    for w0 in starts:
        # The gain F = L0 − L is maximised; scaling by L0 keeps gtol meaningful across models.
        def fg(w):
            L, g = profile_risk_grad(model, w)
            return (L - L0) / L0, g / L0

        res = minimize(
            fg,
            w0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-13, "maxcor": 30},
        )
        results.append((float(profile_risk(model, res.x)), res.x, int(res.nit)))
    results.sort(key=lambda z: z[0])
    _, wbest, _ = results[0]
    omega, P, risk = _finish(model, wbest)
    from .risk import phi as _phi

    cert = {
        "start_risks": [z[0] for z in results],
        "iterations": [z[2] for z in results],
        "restarts": int(restarts),
    }
    return WPGDSolution(omega, P, risk, _phi(model, omega), cert, time.perf_counter() - t0)


def featurewise_diagonal_optimum(model: MultitaskModel) -> tuple[np.ndarray, float]:
    r"""Closed-form feature-wise optimum when ``Σ = diag(λ)`` is diagonal.

    The profile risk decouples over coordinates ``k``; column ``k`` of ``Ω`` maximises the
    Rayleigh quotient ``λ_k² (rᵀω)²/(ωᵀ(λ_kA + B)ω)``, so ``Ω_{:k} = (λ_kA + B)^{-1} r`` and
    ``L*_fw = σ² + R_{n+1,n+1} tr Σ − Σ_k λ_k² rᵀ(λ_kA + B)^{-1} r``. Returns ``(Omega, risk)``.
    Raises ValueError if ``Sigma`` is not diagonal.
    """
    check_instance(model, MultitaskModel, "model")
    S = model.Sigma
    if np.any(S - np.diag(np.diag(S)) != 0):
        raise ValueError("model: Sigma must be diagonal for the closed-form feature-wise optimum")
    lam = np.diag(S)
    Omega = np.empty((model.n, model.d))
    gain = 0.0
    for k, lk in enumerate(lam):
        col = np.linalg.solve(lk * model.A + model.B, model.r)
        Omega[:, k] = col
        gain += lk * lk * float(model.r @ col)
    return Omega, null_risk(model) - gain


def solve_wpgd_featurewise(
    model: MultitaskModel,
    *,
    restarts: int = 3,
    rng: np.random.Generator | None = None,
    maxiter: int = 5000,
    scalar: WPGDSolution | None = None,
) -> FeaturewiseSolution:
    r"""Best feature-wise weights ``Ω`` (n, d) with ``P = P*(Ω) = Σ diag(Ωᵀr) H^{-1}`` in closed form.

    L-BFGS on the feature-wise profile risk ``L(Ω) = L₀ − mᵀ(H^{-1} ⊙ Σ³)m`` (analytic
    gradient, see :func:`numerics.risk.profile_risk_featurewise_grad`) from: the scalar
    optimum ``ω* 1ᵀ`` (so the result is never worse than scalar weights), the diagonal-Σ
    closed form ``Ω_{:k} ∝ (λ_kA + B)^{-1}r`` with ``λ_k = Σ_kk`` (exact when ``Σ`` is
    diagonal), and ``restarts`` random perturbations of the scalar optimum. A local method:
    the returned risk is an upper bound on the feature-wise optimum (exact for diagonal
    ``Σ``, where ``info["closed_form_risk"]`` is reported).
    """
    if not isinstance(model, MultitaskModel):
        raise ValueError(f"model: expected a MultitaskModel, got {type(model).__name__}")
    restarts = check_int(restarts, "restarts", min_value=0)
    check_rng(rng, optional=True)
    rng = np.random.default_rng(0) if rng is None else rng
    sol = solve_wpgd(model) if scalar is None else scalar
    n, d = model.n, model.d
    L0 = null_risk(model)
    base = np.outer(sol.omega, np.ones(d))
    lamd = np.diag(model.Sigma)
    diag_start = np.column_stack([np.linalg.solve(lk * model.A + model.B, model.r) for lk in lamd])
    diag_start /= np.linalg.norm(diag_start)
    starts = [("scalar", base / np.linalg.norm(base)), ("diagonal-closed-form", diag_start)]
    for j in range(int(restarts)):
        pert = base * (1 + 0.5 * rng.standard_normal((n, d)))
        starts.append((f"random-{j}", pert / np.linalg.norm(pert)))

    def fg(v):
        try:
            L, g = profile_risk_featurewise_grad(model, v.reshape(n, d))
        except ValueError:
            return np.inf, np.zeros(n * d)
        return (L - L0) / L0, g.ravel() / L0

    best = None
    runs = []
    for name, O0 in starts:
        res = minimize(
            fg,
            O0.ravel(),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 30},
        )
        O = res.x.reshape(n, d)
        L = profile_risk_featurewise_grad(model, O, grad=False)[0]
        runs.append({"start": name, "risk": L, "nit": int(res.nit)})
        if best is None or L < best[0]:
            best = (L, O)
    assert best is not None  # starts is never empty
    L, O = best
    O = O / np.linalg.norm(O)
    if np.sum(O.T @ model.r) < 0:
        O = -O
    P = optimal_P_featurewise(model, O)
    risk = float(L)
    gain = max(sol.risk - risk, 0.0)
    excess = sol.risk - model.sigma**2
    info = {"runs": runs, "scalar_t": sol.t}
    if np.all(model.Sigma == np.diag(lamd)):
        _, Lcf = featurewise_diagonal_optimum(model)
        info["closed_form_risk"] = Lcf
        info["closed_form_rel_diff"] = abs(risk - Lcf) / abs(Lcf)
    return FeaturewiseSolution(
        O, P, risk, float(sol.risk), float(gain), float(gain / excess) if excess > 0 else 0.0, info
    )
