r"""Stationarity of the WPGD risk: optimal preconditioner, profile risk, the curve of
optimal weights and its closed forms (theory leg of claims L2-L7).

Everything starts from the L1 formula proved in :mod:`theory.population_loss`,

    ``L(P, ω) = σ^2 + R_{n+1,n+1} tr Σ - 2a tr(PΣ^2) + tr(P^T Σ P (bΣ^2 + cΣ))``,

with ``a = r^T ω``, ``b = ω^T A ω``, ``c = ω^T B ω`` (``r, A, B`` as in
``docs/conventions.md``; ``λ_k`` the eigenvalues of ``Σ ≻ 0``). Derived here:

* L2 ``P*(ω) = a (bΣ + cI)^{-1}`` (needs ``bΣ + cI ≻ 0``, e.g. ``c > 0``), Hessian in ``vec P``
  (row-major) ``2 Σ ⊗ Σ(bΣ + cI) ≻ 0``, profile
  ``L(ω) = σ^2 + R_{n+1,n+1} tr Σ - a^2 F(b, c)``, ``F = Σ_k λ_k^2/(bλ_k + c)``;
* L3 ``L(P/s, sω) = L(P, ω)`` for every ``s ≠ 0`` (also ``s < 0``), profile homogeneous of degree 0;
* L4 ``∇_ω L(ω) = 2a^2 S_3 [(A + φB)ω - κ r]`` with ``S_p = Σ λ^p/(bλ+c)^2``, ``φ = S_2/S_3``,
  ``κ = (b + φc)/a``; ``φ`` is the mean of ``1/λ_k`` under weights ``λ_k^3/(bλ_k+c)^2``;
  along the curve ``ω(t) = (A + tB)^{-1} r`` the reduced objective ``J = a^2 F`` obeys
  ``dJ/dt = 2a^2 S_3 (φ - t) (ω^T B M^{-1} B ω - c^2/a)``, ``M = A + tB``, and the last factor is
  ``≥ 0`` by Cauchy-Schwarz;
* isotropic ``Σ = sI``: ``φ ≡ 1/s`` and ``ω* ∝ (sA + B)^{-1} r``;
* L6 ``R = 11^T``: ``ω* ∝ 1``, ``P*(1) = ((n+1)Σ + (tr Σ + σ^2)I)^{-1}``;
* L7 independent tasks, ``Σ = I_d``: ``ω*_k ∝ ρ_k/(m_k + 1 + d + σ^2)``.

Each ``check_*`` returns a :class:`~theory.result.ProofResult` whose ``parts`` name the
identities proved. An identity between rational functions
is "proved" by reducing the numerator of the difference to the zero polynomial.
Never imports :mod:`numerics`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sympy as sp

from .population_loss import abc_matrices, model_symbols, risk_formula_L1, risk_from_moments
from .result import ProofResult

__all__ = [
    "optimal_P",
    "profile_risk",
    "phi",
    "kappa",
    "profile_gradient_closed_form",
    "check_L2",
    "check_L3",
    "check_L4",
    "check_L5_conditions",
    "check_L6",
    "check_L7",
    "check_isotropic",
    "formulas",
]


# --------------------------------------------------------------------------- helpers


def _zero(expr: sp.Expr) -> bool:
    """Is the rational function ``expr`` identically 0? (numerator expands to 0)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    return sp.expand(sp.numer(sp.together(expr))) == 0


def _mzero(M: sp.Matrix) -> bool:
    return all(_zero(e) for e in sp.Matrix(M))


def _det(M: sp.Matrix) -> sp.Expr:
    """``det M`` by Berkowitz's division-free algorithm: the same polynomial as SymPy's default
    (Bareiss), but Bareiss divides by symbolic pivots and cancels them, which took 25 s for
    the ``6×6`` matrix ``A + tB`` of :func:`check_L6` (``n = 6``) against 0.1 s here.

    >>> t = sp.Symbol("t")
    >>> _det(sp.Matrix([[1 + t, 1], [1, 1 + t]]))
    t**2 + 2*t
    """
    return M.det(method="berkowitz")


def _pos_symbols(prefix: str, k: int) -> list[sp.Symbol]:
    return [sp.Symbol(f"{prefix}_{i + 1}", positive=True) for i in range(k)]


def _sym(prefix: str, n: int, **assumptions: Any) -> sp.Matrix:
    return sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"{prefix}_{i + 1}", real=True, **assumptions))


def _sym_symmetric(prefix: str, n: int) -> sp.Matrix:
    return sp.Matrix(
        n, n, lambda i, j: sp.Symbol(f"{prefix}_{min(i, j) + 1}{max(i, j) + 1}", real=True)
    )


def _check_lambdas(lambdas: Any) -> list:
    lam = list(lambdas)
    if not lam:
        raise ValueError("lambdas: need at least one eigenvalue")
    for v in lam:
        if sp.sympify(v).is_positive is False:
            raise ValueError(f"lambdas: eigenvalues of Sigma must be > 0, got {v}")
    return lam


def optimal_P(Sigma: sp.Matrix, a: sp.Expr, b: sp.Expr, c: sp.Expr) -> sp.Matrix:
    r"""L2: ``P*(ω) = a (bΣ + cI)^{-1}`` (the unique minimiser of ``L(·, ω)`` when ``Σ ≻ 0``
    and ``bΣ + cI ≻ 0``).

    >>> a, b, c = sp.symbols('a b c', positive=True)
    >>> optimal_P(sp.eye(1), a, b, c)
    Matrix([[a/(b + c)]])
    """
    Sigma = sp.Matrix(Sigma)
    if Sigma.shape[0] != Sigma.shape[1]:
        raise ValueError(f"Sigma: must be square, got shape {Sigma.shape}")
    return a * (b * Sigma + c * sp.eye(Sigma.shape[0])).inv()


def profile_risk(
    a: sp.Expr, b: sp.Expr, c: sp.Expr, lambdas: Sequence[sp.Expr], sigma: sp.Expr, R_query: sp.Expr
) -> sp.Expr:
    r"""L2 profile ``min_P L = σ^2 + R_{n+1,n+1} Σλ_k - a^2 Σ_k λ_k^2/(bλ_k + c)``
    (``lambdas``: the eigenvalues of ``Σ``, so ``tr Σ = Σ_k λ_k``).

    >>> a, b, c = sp.symbols('a b c', positive=True)
    >>> profile_risk(a, b, c, [1], 0, 1)
    -a**2/(b + c) + 1
    """
    lam = _check_lambdas(lambdas)
    return sigma**2 + R_query * sum(lam) - a**2 * sum(l**2 / (b * l + c) for l in lam)


def _S(p: int, b: sp.Expr, c: sp.Expr, lam: Any) -> sp.Expr:
    return sum(l**p / (b * l + c) ** 2 for l in lam)


def phi(b: sp.Expr, c: sp.Expr, lambdas: Sequence[sp.Expr]) -> sp.Expr:
    r"""``φ = Σ λ^2/(bλ+c)^2 / Σ λ^3/(bλ+c)^2`` (degree 0 in ``(b, c)``).

    >>> b, c = sp.symbols('b c', positive=True)
    >>> sp.simplify(phi(b, c, [2, 2]))
    1/2
    """
    lam = _check_lambdas(lambdas)
    return _S(2, b, c, lam) / _S(3, b, c, lam)


def kappa(a: sp.Expr, b: sp.Expr, c: sp.Expr, lambdas: Sequence[sp.Expr]) -> sp.Expr:
    r"""``κ = (b + φ c)/a``, the multiplier in ``(A + φB)ω = κ r``."""
    return (b + phi(b, c, lambdas) * c) / a


def profile_gradient_closed_form(
    omega: sp.Matrix, A: sp.Matrix, B: sp.Matrix, r: sp.Matrix, lambdas: Sequence[sp.Expr]
) -> sp.Matrix:
    r"""``2 a^2 S_3 [(A + φB)ω - κ r]``, claimed equal to ``∇_ω`` of the profile risk."""
    lam = _check_lambdas(lambdas)
    omega = sp.Matrix(omega)
    a = (r.T * omega)[0, 0]
    b = (omega.T * A * omega)[0, 0]
    c = (omega.T * B * omega)[0, 0]
    f = phi(b, c, lam)
    return 2 * a**2 * _S(3, b, c, lam) * ((A + f * B) * omega - kappa(a, b, c, lam) * r)


def _abc(omega: sp.Matrix, A: sp.Matrix, B: sp.Matrix, r: sp.Matrix) -> tuple:
    return (r.T * omega)[0, 0], (omega.T * A * omega)[0, 0], (omega.T * B * omega)[0, 0]


def _landscape_symbols(n: int, K: int) -> tuple:
    """Generic symbolic ``A`` (symmetric), ``B`` (positive diagonal), ``r``, ``ω``, ``λ``, ``σ``, ``R_q``."""
    A = _sym_symmetric("A", n)
    B = sp.diag(*_pos_symbols("B", n))
    r = _sym("r", n)
    omega = _sym("omega", n)
    lam = _pos_symbols("lambda", K)
    return A, B, r, omega, lam, sp.Symbol("sigma", positive=True), sp.Symbol("R_q", real=True)


def _grad(expr: sp.Expr, omega: sp.Matrix) -> sp.Matrix:
    return sp.Matrix([sp.diff(expr, w) for w in omega])


def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return value


def _finish(statement: str, t0: float, ok_parts: dict, latex: str, **sizes: Any) -> ProofResult:
    return ProofResult(
        statement,
        all(ok_parts.values()),
        cases=[sizes],
        parts=ok_parts,
        seconds=time.perf_counter() - t0,
        latex=latex,
    )


# --------------------------------------------------------------------------- L2


def check_L2(d: int = 2, K: int = 3) -> ProofResult:
    r"""L2 from the first-order condition, for a general symmetric ``d×d`` ``Σ`` and a
    diagonal ``Σ = diag(λ_1..λ_K)``.

    Parts: ``foc_general`` (solving ``∂L/∂P = 0`` for the ``d^2`` symbolic entries of ``P``
    gives exactly ``a(bΣ+cI)^{-1}``), ``foc_diagonal`` (same for ``diag(λ)``, size ``K``),
    ``hessian_kron`` (Hessian in row-major ``vec P`` equals ``2 Σ ⊗ Σ(bΣ+cI)``),
    ``hessian_pd_diagonal`` (for ``Σ = diag(λ)`` the Hessian is diagonal with entries
    ``2λ_iλ_j(bλ_j+c) > 0`` when ``b, c > 0``), ``exact_quadratic`` (``L(P) - L(P*) =
    ½ δ^T H δ`` with ``δ = vec(P - P*)``, so ``P*`` is the global minimiser),
    ``profile_diagonal`` (``L(P*) = σ^2 + R_q Σλ - a^2 Σλ^2/(bλ+c)``), ``profile_general``
    (``L(P*) = σ^2 + R_q trΣ - a^2 tr(Σ^2(bΣ+cI)^{-1})``), ``profile_eigen_2x2`` (for
    ``d = 2`` that trace equals ``Σ_k λ_k^2/(bλ_k+c)`` written through ``tr Σ``, ``det Σ``).
    """
    _check_int(d, "d")
    _check_int(K, "K")
    t0 = time.perf_counter()
    a = sp.Symbol("a", real=True)
    b, c = sp.symbols("b c", positive=True)
    sigma, Rq = sp.Symbol("sigma", positive=True), sp.Symbol("R_q", real=True)
    parts = {}

    def foc(Sigma: sp.Matrix) -> tuple:
        k = Sigma.shape[0]
        P = sp.Matrix(k, k, lambda i, j: sp.Symbol(f"P_{i + 1}{j + 1}", real=True))
        L = risk_from_moments(Sigma, P, a, b, c, sigma, Rq)
        unknowns = list(P)
        eqs = [sp.diff(L, p) for p in unknowns]
        sol = sp.solve(eqs, unknowns, dict=True)
        ok = len(sol) == 1 and _mzero(P.subs(sol[0]) - optimal_P(Sigma, a, b, c))
        return ok, P, L, unknowns

    Sg = _sym_symmetric("Sigma", d)
    parts["foc_general"], _, L, unknowns = foc(Sg)
    H = sp.hessian(L, unknowns)
    parts["hessian_kron"] = _mzero(H - 2 * sp.kronecker_product(Sg, Sg * (b * Sg + c * sp.eye(d))))
    trS = Sg.trace()
    Pstar = optimal_P(Sg, a, b, c)
    prof_general = sigma**2 + Rq * trS - a**2 * (Sg**2 * (b * Sg + c * sp.eye(d)).inv()).trace()
    parts["profile_general"] = _zero(
        risk_from_moments(Sg, Pstar, a, b, c, sigma, Rq) - prof_general
    )
    if d == 2:
        l1, l2 = sp.symbols("l_1 l_2", positive=True)
        tr_, det_ = Sg.trace(), Sg.det()
        sym_form = (b * det_ * tr_ + c * (tr_**2 - 2 * det_)) / (b**2 * det_ + b * c * tr_ + c**2)
        parts["profile_eigen_2x2"] = _zero(
            (Sg**2 * (b * Sg + c * sp.eye(2)).inv()).trace() - sym_form
        ) and _zero(
            sym_form.subs({Sg[0, 0]: l1, Sg[1, 1]: l2, Sg[0, 1]: 0})
            - (l1**2 / (b * l1 + c) + l2**2 / (b * l2 + c))
        )

    lam = _pos_symbols("lambda", K)
    Sd = sp.diag(*lam)
    parts["foc_diagonal"], Pd, Ld, unk_d = foc(Sd)
    Hd = sp.hessian(Ld, unk_d)
    expected = sp.diag(
        *[2 * lam[i] * lam[j] * (b * lam[j] + c) for i in range(K) for j in range(K)]
    )
    parts["hessian_pd_diagonal"] = _mzero(Hd - expected) and all(
        e.is_positive for e in expected.diagonal()
    )
    Pd_star = optimal_P(Sd, a, b, c)
    delta = sp.Matrix(list(Pd - Pd_star))
    parts["exact_quadratic"] = _zero(
        Ld - Ld.subs(dict(zip(unk_d, list(Pd_star)))) - (delta.T * Hd * delta)[0, 0] / 2
    )
    parts["profile_diagonal"] = _zero(
        risk_from_moments(Sd, Pd_star, a, b, c, sigma, Rq) - profile_risk(a, b, c, lam, sigma, Rq)
    )
    f = formulas()
    return _finish(
        "P* = a(b Sigma + cI)^{-1} and the profile risk",
        t0,
        parts,
        sp.latex(f["P_star"]) + r",\quad " + sp.latex(f["profile"]),
        d=d,
        K=K,
    )


# --------------------------------------------------------------------------- L3


def check_L3(n: int = 2, d: int = 2, K: int = 3) -> ProofResult:
    r"""L3: ``L(P/s, sω) = L(P, ω)`` for symbolic ``s ≠ 0`` (full L1 formula with symbolic
    ``Σ, R, σ, P, ω`` of sizes ``n, d``), and the profile (``K`` eigenvalues, generic ``A, B, r``)
    is homogeneous of degree 0 in ``ω``; also ``P*(sω) = P*(ω)/s`` (consistent scaling)."""
    _check_int(n, "n")
    _check_int(d, "d")
    _check_int(K, "K")
    t0 = time.perf_counter()
    S = model_symbols(n, d)
    s = sp.Symbol("s", real=True, nonzero=True)
    L = risk_formula_L1(S["Sigma"], S["R"], S["sigma"], S["P"], S["omega"])
    Ls = risk_formula_L1(S["Sigma"], S["R"], S["sigma"], S["P"] / s, s * S["omega"])
    parts = {"risk_invariant": sp.expand(Ls - L) == 0}
    A, B, r, omega, lam, sigma, Rq = _landscape_symbols(n, K)
    a, b, c = _abc(omega, A, B, r)
    prof = profile_risk(a, b, c, lam, sigma, Rq)
    parts["profile_degree0"] = _zero(prof.subs({w: s * w for w in omega}, simultaneous=True) - prof)
    Sg = S["Sigma"]
    parts["P_star_scaling"] = _mzero(
        optimal_P(Sg, s * a, s**2 * b, s**2 * c) - optimal_P(Sg, a, b, c) / s
    )
    return _finish(
        "scale invariance L(P/s, s omega) = L(P, omega)",
        t0,
        parts,
        r"L(P/s,\, s\omega) = L(P, \omega),\ s \neq 0",
        n=n,
        d=d,
        K=K,
    )


# --------------------------------------------------------------------------- L4


def check_L4(n: int = 2, K: int = 2, *, with_curve_derivative: bool = True) -> ProofResult:
    r"""L4 for generic symbolic ``A`` (symmetric), ``B = diag(B_i > 0)``, ``r``, ``ω`` of size ``n``
    and ``K`` positive eigenvalues.

    Parts: ``gradient`` (``∇_ω`` of the profile equals
    :func:`profile_gradient_closed_form`), ``phi_weighted_mean`` (``φ - m = Σ w_k(1/λ_k - m)/Σ w_k``
    with ``w_k = λ_k^3/(bλ_k+c)^2 > 0`` for a free symbol ``m``: with ``m = 1/λ_max`` every
    term is ``≥ 0``, with ``m = 1/λ_min`` every term is ``≤ 0``, hence the bracket),
    ``kappa_consistency`` (``ω^T(A+φB)ω = κ a``), ``curve_identity`` (on the curve
    ``ω = (A+tB)^{-1}r``: ``b + t c = a``), ``curve_derivative`` (``dJ/dt = 2a^2 S_3 (φ - t)
    (ω^T B M^{-1} B ω - c^2/a)`` for ``J = a^2 F``, ``M = A + tB``) and
    ``cauchy_schwarz`` (``a (ω^T B M^{-1} B ω) - c^2 = (Mω)^T... ≥ 0`` written as
    ``u^T M u · v^T M v - (u^T M v)^2`` with ``u = ω``, ``v = M^{-1}Bω``).
    """
    _check_int(n, "n")
    _check_int(K, "K")
    t0 = time.perf_counter()
    A, B, r, omega, lam, sigma, Rq = _landscape_symbols(n, K)
    a, b, c = _abc(omega, A, B, r)
    prof = profile_risk(a, b, c, lam, sigma, Rq)
    parts = {
        "gradient": _mzero(_grad(prof, omega) - profile_gradient_closed_form(omega, A, B, r, lam))
    }
    bb, cc, m = (
        sp.Symbol("b", positive=True),
        sp.Symbol("c", positive=True),
        sp.Symbol("m", real=True),
    )
    w = [l**3 / (bb * l + cc) ** 2 for l in lam]
    parts["phi_weighted_mean"] = _zero(
        phi(bb, cc, lam) - m - sum(wk * (1 / l - m) for wk, l in zip(w, lam)) / sum(w)
    )
    f = phi(b, c, lam)
    parts["kappa_consistency"] = _zero(
        (omega.T * (A + f * B) * omega)[0, 0] - kappa(a, b, c, lam) * a
    )

    t = sp.Symbol("t", positive=True)
    M = A + t * B
    om_t = M.adjugate() * r / _det(M)
    at, bt, ct = _abc(om_t, A, B, r)
    parts["curve_identity"] = _zero(bt + t * ct - at)
    # Cauchy-Schwarz in the M-inner product: with u = ω, v = M^{-1}Bω on the curve,
    # u^T M u = a, u^T M v = c, v^T M v = ω^T B M^{-1} B ω.
    v = M.adjugate() * B * om_t / _det(M)
    q_BMB = (om_t.T * B * v)[0, 0]
    parts["cauchy_schwarz"] = (
        _zero((om_t.T * M * om_t)[0, 0] - at)
        and _zero((om_t.T * M * v)[0, 0] - ct)
        and _zero((v.T * M * v)[0, 0] - q_BMB)
    )
    if with_curve_derivative:
        # Chain rule in two exact steps (expanding dJ/dt in one go is ~100x slower):
        # (i) along the curve a' = -c, b' = -2(c - t q), c' = -2q with q = ω^T B M^{-1} B ω
        # (from ω' = -M^{-1} B ω, r^T M^{-1} = ω^T and A = M - tB);
        parts["curve_abc_derivatives"] = (
            _zero(sp.diff(at, t) + ct)
            and _zero(sp.diff(bt, t) + 2 * (ct - t * q_BMB))
            and _zero(sp.diff(ct, t) + 2 * q_BMB)
        )
        # (ii) scalar algebra in free symbols, using b = a - t c on the curve.
        a_, c_, q_ = sp.symbols("a_ c_ q_", positive=True)
        b_ = sp.Symbol("b_", positive=True)
        J = a_**2 * sum(l**2 / (b_ * l + c_) for l in lam)
        dJ = (
            sp.diff(J, a_) * (-c_)
            + sp.diff(J, b_) * (-2 * (c_ - t * q_))
            + sp.diff(J, c_) * (-2 * q_)
        )
        claimed = 2 * a_**2 * _S(3, b_, c_, lam) * (phi(b_, c_, lam) - t) * (q_ - c_**2 / a_)
        parts["curve_derivative"] = _zero((dJ - claimed).subs(b_, a_ - t * c_))
    fm = formulas()
    return _finish(
        "profile gradient, phi as weighted mean (bracket), the curve, dJ/dt",
        t0,
        parts,
        sp.latex(fm["gradient"]) + r",\quad " + sp.latex(fm["phi"]),
        n=n,
        K=K,
    )


# --------------------------------------------------------------------------- isotropic


def check_isotropic(n: int = 2, K: int = 3) -> ProofResult:
    r"""``Σ = sI_K``: ``φ ≡ 1/s`` (so the 1-D map is constant and its fixed point ``t* = 1/s``
    unique), the profile is ``σ^2 + R_q Ks - K s^2 a^2/(sb + c) = ... - K s^2 (r^Tω)^2/(ω^T(sA+B)ω)``
    (a generalised Rayleigh quotient, maximised exactly on ``ω ∝ (sA+B)^{-1} r`` by
    Cauchy-Schwarz when ``sA + B ≻ 0``), the gradient vanishes at ``ω* = (sA+B)^{-1}r``, and
    ``L* = σ^2 + R_q Ks - K s^2 r^T(sA+B)^{-1} r``. Generic symbolic ``A, B, r`` of size ``n``."""
    _check_int(n, "n")
    _check_int(K, "K")
    t0 = time.perf_counter()
    A, B, r, omega, _, sigma, Rq = _landscape_symbols(n, K)
    s = sp.Symbol("s", positive=True)
    lam = [s] * K
    a, b, c = _abc(omega, A, B, r)
    bb, cc = sp.symbols("b c", positive=True)
    parts = {"phi_constant": _zero(phi(bb, cc, lam) - 1 / s)}
    prof = profile_risk(a, b, c, lam, sigma, Rq)
    Mq = s * A + B
    parts["rayleigh_form"] = _zero(
        prof - (sigma**2 + Rq * K * s - K * s**2 * a**2 / (omega.T * Mq * omega)[0, 0])
    )
    om_star = Mq.adjugate() * r / _det(Mq)
    sub = dict(zip(omega, om_star))
    parts["gradient_zero"] = _mzero(_grad(prof, omega).subs(sub))
    Lstar = sigma**2 + Rq * K * s - K * s**2 * (r.T * Mq.adjugate() * r)[0, 0] / _det(Mq)
    parts["optimal_value"] = _zero(prof.subs(sub) - Lstar)
    return _finish(
        "isotropic Sigma = sI: omega* = (sA + B)^{-1} r",
        t0,
        parts,
        sp.latex(formulas()["omega_isotropic"]),
        n=n,
        K=K,
    )


# --------------------------------------------------------------------------- L5


def check_L5_conditions(n: int = 2, d: int = 2, K: int = 2) -> ProofResult:
    r"""Symbolic facts behind the existence/uniqueness conditions of L5.

    Parts: ``counterexample_dead_example`` (``R_11 = 0`` forces row/column 1 of ``R`` to 0
    for ``R ⪰ 0``; with ``σ = 0`` then ``y_1 ≡ 0`` and ``∂L/∂ω_1 ≡ 0`` for every ``P``: ``ω_1`` is
    arbitrary, uniqueness up to scale fails), ``counterexample_r_zero`` (``r = 0`` ⇒ the
    profile is constant in ``ω``: every ``ω`` is optimal, ``P* = 0``), ``A_plus_tB_structure``
    (``A + tB = R_{[n]} + diag(R_ii(1 + t trΣ) + tσ^2)``: PSD plus a positive diagonal,
    so ``≻ 0`` for ``t > 0`` when ``B ≻ 0``), ``F_decreasing`` (``∂F/∂b = -S_3 < 0``,
    ``∂F/∂c = -S_2 < 0``), ``isotropic_unique_fixed_point`` (``φ ≡ 1/s``),
    ``sign_of_dJdt`` (from :func:`check_L4`: ``dJ/dt`` has the sign of ``φ(t) - t``).
    """
    _check_int(n, "n")
    _check_int(d, "d")
    _check_int(K, "K")
    t0 = time.perf_counter()
    parts = {}
    S = model_symbols(n, d)
    R = S["R"]
    dead = {R[0, j]: 0 for j in range(n + 1)}
    dead[S["sigma"]] = 0
    L = risk_formula_L1(S["Sigma"], R.subs(dead), 0, S["P"], S["omega"])
    parts["counterexample_dead_example"] = sp.expand(sp.diff(L, S["omega"][0])) == 0
    A, B, r, omega, lam, sigma, Rq = _landscape_symbols(n, K)
    a, b, c = _abc(omega, A, B, r)
    prof0 = profile_risk(a, b, c, lam, sigma, Rq).subs(dict.fromkeys(r, 0))
    parts["counterexample_r_zero"] = _mzero(_grad(prof0, omega))
    t = sp.Symbol("t", positive=True)
    _, Am, Bm = abc_matrices(R, S["Sigma"], S["sigma"])
    trS = S["Sigma"].trace()
    struct = R[:n, :n] + sp.diag(*[R[i, i] * (1 + t * trS) + t * S["sigma"] ** 2 for i in range(n)])
    parts["A_plus_tB_structure"] = sp.expand(Am + t * Bm - struct) == sp.zeros(n, n)
    bb, cc = sp.symbols("b c", positive=True)
    F = sum(l**2 / (bb * l + cc) for l in lam)
    parts["F_decreasing"] = _zero(sp.diff(F, bb) + _S(3, bb, cc, lam)) and _zero(
        sp.diff(F, cc) + _S(2, bb, cc, lam)
    )
    s = sp.Symbol("s", positive=True)
    parts["isotropic_unique_fixed_point"] = _zero(phi(bb, cc, [s] * K) - 1 / s)
    l4 = check_L4(n, K)
    parts["sign_of_dJdt"] = bool(l4.parts.get("curve_derivative") and l4.parts["cauchy_schwarz"])
    return _finish(
        "conditions of existence and uniqueness (counterexamples, A + tB > 0, sign of dJ/dt)",
        t0,
        parts,
        sp.latex(formulas()["dJdt"]),
        n=n,
        d=d,
        K=K,
    )


# --------------------------------------------------------------------------- L6


def check_L6(n_values: Sequence[int] = (1, 2, 3, 4, 5), K: int = 2) -> ProofResult:
    r"""L6, ``R = 11^T`` (size ``n+1``).

    For each explicit ``n``: ``(A + tB)^{-1} r ∝ 1`` for symbolic ``t`` (so the whole curve is
    the single direction ``1`` and ``ω* ∝ 1`` is the unique minimiser up to scale), the
    profile gradient vanishes at ``ω = 1`` (``Σ = diag(λ_1..λ_K)``), and
    ``P*(1) = ((n+1)Σ + (trΣ+σ^2)I)^{-1}`` for a general symmetric ``2×2`` ``Σ``. For symbolic
    ``n``: Sherman-Morrison ``(11^T + αI)^{-1} 1 = 1/(n+α)`` (entrywise identity using
    ``1^T 1 = n``), ``a = n``, ``b = n^2 + n``, ``c = n(trΣ + σ^2)``, and ``P*`` as above.
    """
    n_values = [_check_int(v, "n_values") for v in n_values]
    _check_int(K, "K")
    t0 = time.perf_counter()
    parts = {}
    t = sp.Symbol("t", positive=True)
    sigma = sp.Symbol("sigma", positive=True)
    lam = _pos_symbols("lambda", K)
    Sd = sp.diag(*lam)
    Sg = _sym_symmetric("Sigma", 2)
    for n in n_values:
        R = sp.ones(n + 1, n + 1)
        r, A, B = abc_matrices(R, Sd, sigma)
        M = A + t * B
        w = M.adjugate() * r / _det(M)
        parts[f"curve_constant_n{n}"] = all(_zero(w[i] - w[0]) for i in range(n))
        omega = _sym("omega", n)
        a, b, c = _abc(omega, A, B, r)
        prof = profile_risk(a, b, c, lam, sigma, R[n, n])
        parts[f"gradient_zero_n{n}"] = _mzero(_grad(prof, omega).subs(dict.fromkeys(omega, 1)))
        rg, Ag, Bg = abc_matrices(R, Sg, sigma)
        one = sp.ones(n, 1)
        ag, bg, cg = _abc(one, Ag, Bg, rg)
        target = ((n + 1) * Sg + (Sg.trace() + sigma**2) * sp.eye(2)).inv()
        parts[f"P_star_n{n}"] = _mzero(optimal_P(Sg, ag, bg, cg) - target)
    N, alpha = sp.Symbol("n", positive=True, integer=True), sp.Symbol("alpha", positive=True)
    # entry i of (11^T + αI) v with v = 1/(n+α) 1 is (1^T v) + α v_i = n/(n+α) + α/(n+α)
    parts["sherman_morrison_symbolic_n"] = _zero(N / (N + alpha) + alpha / (N + alpha) - 1)
    # with ω = 1 and R = 11^T: a = 1^T1 = n, b = 1^T(11^T + I)1 = n^2 + n, c = n(trΣ + σ^2)
    aN, bN, cN = N, N**2 + N, N * (Sg.trace() + sigma**2)
    target_N = ((N + 1) * Sg + (Sg.trace() + sigma**2) * sp.eye(2)).inv()
    parts["P_star_symbolic_n"] = _mzero(optimal_P(Sg, aN, bN, cN) - target_N)
    return _finish(
        "single task: omega* ~ 1 and P*(1)",
        t0,
        parts,
        sp.latex(formulas()["P_star_single_task"]),
        n_values=list(n_values),
        K=K,
    )


# --------------------------------------------------------------------------- L7


def check_L7(segment_lengths: Sequence[Sequence[int]] = ((1, 2), (2, 1, 3))) -> ProofResult:
    r"""L7: ``K`` independent unit-variance tasks (``Γ = I``), ``Σ = I_d`` (``d`` symbolic, so
    ``tr Σ = d`` and every ``λ_k = 1``), query correlations ``ρ_k`` (symbolic), noise ``σ``.

    For each explicit tuple of segment lengths ``m``: ``ω* = (A + B)^{-1} r`` (the isotropic
    optimum with ``s = 1``) has entries ``ρ_k/(m_k + 1 + d + σ^2)`` on segment ``k``, and the
    profile gradient (``J = d·a^2/(b + c)``) vanishes there. For symbolic ``m``: one block
    ``(1 1^T + αI)^{-1} ρ 1 = ρ/(m + α) 1`` with ``α = 1 + d + σ^2`` (Sherman-Morrison; the
    blocks decouple because ``Γ = I`` makes ``A`` block diagonal and ``B = (d + σ^2)I``).
    """
    try:
        segment_lengths = [
            tuple(_check_int(v, "segment_lengths") for v in m) for m in segment_lengths
        ]
    except TypeError:
        raise ValueError(
            "segment_lengths: must be a sequence of tuples of positive integers"
        ) from None
    if not segment_lengths or not all(segment_lengths):
        raise ValueError("segment_lengths: need at least one non-empty tuple of segment lengths")
    t0 = time.perf_counter()
    parts = {}
    d = sp.Symbol("d", positive=True)
    sigma = sp.Symbol("sigma", positive=True)
    for m in segment_lengths:
        Kt = len(m)
        rho = _pos_symbols("rho", Kt)
        n = sum(m)
        seg = [k for k in range(Kt) for _ in range(m[k])]
        R = sp.zeros(n + 1, n + 1)
        for i in range(n):
            for j in range(n):
                R[i, j] = 1 if seg[i] == seg[j] else 0
            R[i, n] = R[n, i] = rho[seg[i]]
        R[n, n] = 1
        r = R[:n, n]
        A = R[:n, :n] + sp.eye(n)
        B = (d + sigma**2) * sp.eye(n)  # B_ii = R_ii tr Σ + σ^2 with R_ii = 1, tr Σ = d
        Mq = A + B
        w = Mq.adjugate() * r / _det(Mq)
        claimed = sp.Matrix([rho[seg[i]] / (m[seg[i]] + 1 + d + sigma**2) for i in range(n)])
        tag = "_".join(map(str, m))
        parts[f"closed_form_m{tag}"] = _mzero(w - claimed)
        omega = _sym("omega", n)
        a, b, c = _abc(omega, A, B, r)
        prof = sigma**2 + d - d * a**2 / (b + c)  # profile with λ_k = 1 (k = 1..d)
        parts[f"gradient_zero_m{tag}"] = _mzero(_grad(prof, omega).subs(dict(zip(omega, claimed))))
    mS, rho_s = sp.Symbol("m", positive=True, integer=True), sp.Symbol("rho", real=True)
    alpha = 1 + d + sigma**2
    v = rho_s / (mS + alpha)
    parts["block_symbolic_m"] = _zero(mS * v + alpha * v - rho_s)
    return _finish(
        "K independent tasks: omega*_k = rho_k/(m_k + 1 + d + sigma^2)",
        t0,
        parts,
        sp.latex(formulas()["omega_K_tasks"]),
        segment_lengths=[list(m) for m in segment_lengths],
    )


# --------------------------------------------------------------------------- formulas


def formulas() -> dict[str, sp.Expr]:
    """The derived formulas as abstract SymPy objects (``MatrixSymbol``/``Sum`` based) for LaTeX."""
    d = sp.Symbol("d", integer=True, positive=True)
    n = sp.Symbol("n", integer=True, positive=True)
    Sigma = sp.MatrixSymbol(r"\Sigma", d, d)
    I = sp.Identity(d)
    A, B = sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("B", n, n)
    r, w = sp.MatrixSymbol("r", n, 1), sp.MatrixSymbol(r"\omega", n, 1)
    a, b, c, t, s, kap, phis = sp.symbols(r"a b c t s \kappa \varphi", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    Rq = sp.Symbol("R_{n+1,n+1}", real=True)
    k = sp.Symbol("k", integer=True, positive=True)
    lam = sp.IndexedBase(r"\lambda")[k]

    def S(p: int) -> sp.Expr:
        return sp.Sum(lam**p / (b * lam + c) ** 2, (k, 1, d))

    F = sp.Sum(lam**2 / (b * lam + c), (k, 1, d))
    Pstar = sp.MatrixSymbol("P^*", d, d)
    w_star = sp.MatrixSymbol(r"\omega^*", n, 1)
    mk, rhok, ws_k = sp.symbols(r"m_k \rho_k \omega^*_k")
    return {
        "P_star": sp.Eq(Pstar, a * (b * Sigma + c * I) ** -1, evaluate=False),
        "profile": sp.Eq(
            sp.Symbol(r"L(\omega)"), sigma**2 + Rq * sp.Trace(Sigma) - a**2 * F, evaluate=False
        ),
        "phi": sp.Eq(phis, S(2) / S(3), evaluate=False),
        "kappa": sp.Eq(kap, (b + phis * c) / a, evaluate=False),
        "gradient": sp.Eq(
            sp.Symbol(r"\nabla_{\omega} L"),
            2 * a**2 * S(3) * sp.Symbol(r"\left[(A + \varphi B)\omega - \kappa r\right]"),
            evaluate=False,
        ),
        "curve": sp.Eq(sp.Symbol(r"\omega(t)"), (A + t * B) ** -1 * r, evaluate=False),
        "dJdt": sp.Eq(
            sp.Symbol(r"\frac{dJ}{dt}"),
            2
            * a**2
            * S(3)
            * (phis - t)
            * sp.Symbol(r"\left(\omega^T B (A + tB)^{-1} B \omega - c^2/a\right)"),
            evaluate=False,
        ),
        "omega_isotropic": sp.Eq(w_star, (s * A + B) ** -1 * r, evaluate=False),
        "P_star_single_task": sp.Eq(
            Pstar, ((n + 1) * Sigma + (sp.Trace(Sigma) + sigma**2) * I) ** -1, evaluate=False
        ),
        "omega_K_tasks": sp.Eq(ws_k, rhok / (mk + 1 + d + sigma**2), evaluate=False),
        "a_b_c": sp.Eq(
            sp.Tuple(a, b, c), sp.Tuple((r.T * w), (w.T * A * w), (w.T * B * w)), evaluate=False
        ),
    }
