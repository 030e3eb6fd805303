"""Tests of the SymPy landscape derivations (theory/population_loss.py, theory/stationarity.py).

Independent references: hand-known Gaussian moments, a brute-force perfect-matching
enumerator, Monte Carlo sampling of the model with numpy (4 standard errors), complex-step
derivatives, and deliberately wrong formulas that must be rejected.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from theory import population_loss as pl, stationarity as stn

# --------------------------------------------------------------------------- Wick engine


def test_wick_known_moments():
    s2 = sp.Symbol("s2", positive=True)
    x, y = sp.symbols("x y", real=True)
    vx, vy, cxy = sp.symbols("vx vy cxy", real=True)
    assert sp.expand(pl.wick_expectation(x**4, [x], [[s2]]) - 3 * s2**2) == 0
    assert sp.expand(pl.wick_expectation(x**6, [x], [[s2]]) - 15 * s2**3) == 0
    assert pl.wick_expectation(x**5, [x], [[s2]]) == 0
    cov = [[vx, cxy], [cxy, vy]]
    assert sp.expand(pl.wick_expectation(x**2 * y**2, [x, y], cov) - (vx * vy + 2 * cxy**2)) == 0
    # coefficients that are not random pass through linearly
    a = sp.Symbol("a")
    assert sp.expand(pl.wick_expectation(a * x * y + 3, [x, y], cov) - (a * cxy + 3)) == 0
    # independence: zero covariance factorises
    assert sp.expand(pl.wick_expectation(x**2 * y**2, [x, y], [[vx, 0], [0, vy]]) - vx * vy) == 0


def _brute_force_moment(occurrences, cov):
    """Sum over all perfect matchings of the list of variable indices (no grouping)."""
    if not occurrences:
        return sp.Integer(1)
    if len(occurrences) % 2:
        return sp.Integer(0)
    first, rest = occurrences[0], occurrences[1:]
    total = sp.Integer(0)
    for j in range(len(rest)):
        total += cov[first, rest[j]] * _brute_force_moment(rest[:j] + rest[j + 1 :], cov)
    return sp.expand(total)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=3, max_size=3).filter(lambda e: sum(e) <= 6))
def test_wick_matches_brute_force_matchings(exps):
    v = sp.symbols("v1:4", real=True)
    cov = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"C{min(i, j)}{max(i, j)}"))
    mono = sp.Mul(*[vi**e for vi, e in zip(v, exps)])
    occ = [i for i, e in enumerate(exps) for _ in range(e)]
    assert sp.expand(pl.wick_expectation(mono, v, cov) - _brute_force_moment(occ, cov)) == 0


def test_wick_number_of_matchings():
    # E[v1 v2 ... v8] with all covariances 1 counts perfect matchings of 8 items: 7!! = 105
    v = sp.symbols("u1:9", real=True)
    assert pl.wick_expectation(sp.Mul(*v), v, sp.ones(8, 8)) == 105


def test_wick_bad_input():
    x, y = sp.symbols("x y", real=True)
    with pytest.raises(ValueError, match="^covariance"):
        pl.wick_expectation(x * y, [x, y], [[1]])
    with pytest.raises(ValueError, match="^covariance"):
        pl.wick_expectation(x * y, [x, y], [[1, 2], [3, 1]])
    with pytest.raises(ValueError, match="^covariance"):
        pl.wick_expectation(x * y, [x, y], [[x, 0], [0, 1]])
    with pytest.raises(ValueError, match="^variables"):
        pl.wick_expectation(x * y, [x, x], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="^variables"):
        pl.wick_expectation(x, [x, 2], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="^expr"):
        pl.wick_expectation(sp.exp(x), [x], [[1]])
    with pytest.raises(ValueError, match="^n"):
        pl.derive_risk(0, 1)
    with pytest.raises(ValueError, match="^d"):
        pl.derive_risk(1, 0)
    S = pl.model_symbols(2, 2)
    with pytest.raises(ValueError, match="^R"):
        pl.risk_formula_L1(S["Sigma"], sp.ones(2, 2), S["sigma"], S["P"], S["omega"])
    with pytest.raises(ValueError, match="^P"):
        pl.risk_formula_L1(S["Sigma"], S["R"], S["sigma"], sp.ones(3, 3), S["omega"])
    with pytest.raises(ValueError, match="^Sigma"):
        pl.risk_formula_L1(sp.Matrix([[1, 2], [0, 1]]), S["R"], S["sigma"], S["P"], S["omega"])
    with pytest.raises(ValueError, match="^sigma"):
        pl.risk_formula_L1(S["Sigma"], S["R"], -1, S["P"], S["omega"])


# --------------------------------------------------------------------------- Monte Carlo


def _random_instance(rng, n, d, featurewise):
    G = rng.normal(size=(n + 1, n + 1))
    R = G @ G.T / (n + 1)
    Q = np.linalg.qr(rng.normal(size=(d, d)))[0]
    Sigma = Q @ np.diag(rng.uniform(0.3, 1.5, size=d)) @ Q.T
    sigma = 0.7
    P = rng.normal(size=(d, d)) / d
    W = rng.uniform(0.2, 1.0, size=(n, d) if featurewise else (n,))
    return R, Sigma, sigma, P, W


def _mc_risk(rng, R, Sigma, sigma, P, W, N):
    """Sample the model directly (independent of the symbolic derivation)."""
    n, d = R.shape[0] - 1, Sigma.shape[0]
    Ls, LR = np.linalg.cholesky(Sigma), np.linalg.cholesky(R)
    X = rng.normal(size=(N, n, d)) @ Ls.T
    x = rng.normal(size=(N, d)) @ Ls.T
    beta = np.einsum("ij,Njc->Nic", LR, rng.normal(size=(N, n + 1, d)))  # E[β_i β_j^T] = R_ij I
    xi = sigma * rng.normal(size=(N, n + 1))
    y = np.einsum("Nic,Nic->Ni", X, beta[:, :n]) + xi[:, :n]
    y_query = np.einsum("Nc,Nc->N", x, beta[:, n]) + xi[:, n]
    weighted = X * (W[None] if W.ndim == 2 else W[None, :, None])  # Ω_i ⊙ x_i or ω_i x_i
    h = np.einsum("Ni,Nic->Nc", y, weighted)
    y_hat = np.einsum("Na,ab,Nb->N", x, P, h)
    loss = (y_query - y_hat) ** 2
    return loss.mean(), loss.std(ddof=1) / math.sqrt(N)


def _substitute(der, R, Sigma, sigma, P, W):
    S = der.symbols
    sub = {S["sigma"]: sigma}
    for M, V in ((S["Sigma"], Sigma), (S["R"], R), (S["P"], P)):
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                sub[M[i, j]] = V[i, j]
    Wsym = S["Omega"] if der.featurewise else S["omega"]
    for idx, s in np.ndenumerate(np.asarray(Wsym).reshape(W.shape)):
        sub[s] = W[idx]
    return float(der.risk.subs(sub))


@pytest.mark.parametrize("featurewise", [False, True])
def test_derived_risk_matches_monte_carlo(featurewise):
    rng = np.random.default_rng(20250 + featurewise)
    n, d, N = 2, 2, 400_000
    inst = _random_instance(rng, n, d, featurewise)
    exact = _substitute(pl.derive_risk(n, d, featurewise=featurewise), *inst)
    mean, se = _mc_risk(rng, *inst, N)
    assert abs(mean - exact) <= 4 * se, (mean, exact, se)
    # the test has power: a 2a -> a error shifts the risk by several standard errors
    R, Sigma, _sigma, P, W = inst
    if not featurewise:
        a = R[:n, n] @ W
        assert abs(a * np.trace(P @ Sigma @ Sigma)) > 8 * se


# --------------------------------------------------------------------------- L1 and feature-wise


@pytest.mark.parametrize(
    "n,d,diag",
    [(1, 1, False), (2, 1, False), (1, 2, False), (2, 2, False), (2, 2, True), (3, 2, True)],
)
def test_L1_verified(n, d, diag):
    out = pl.check_L1(n, d, sigma_diagonal=diag)
    assert out.verified and out.residual_terms == 0 and out.cases[0]["terms"] > 0
    assert "operatorname{tr}" in out.latex


@pytest.mark.slow
@pytest.mark.parametrize("n,d,diag", [(2, 3, False), (3, 3, True)])
def test_L1_verified_larger(n, d, diag):
    assert pl.check_L1(n, d, sigma_diagonal=diag).verified


def test_L1_wrong_formula_detected():
    def wrong(Sigma, R, sigma, P, omega):  # 2a replaced by a
        r, A, B = pl.abc_matrices(R, Sigma, sigma)
        a, b, c = (r.T * omega)[0], (omega.T * A * omega)[0], (omega.T * B * omega)[0]
        n = omega.shape[0]
        return (
            sigma**2
            + R[n, n] * Sigma.trace()
            - a * (P * Sigma**2).trace()
            + (P.T * Sigma * P * (b * Sigma**2 + c * Sigma)).trace()
        )

    def wrong_A(
        Sigma, R, sigma, P, omega
    ):  # A without the diag(R_ii) (i.e. forgetting the 4th moment)
        r, A, B = pl.abc_matrices(R, Sigma, sigma)
        A = A - sp.diag(*[R[i, i] for i in range(A.shape[0])])
        a, b, c = (r.T * omega)[0], (omega.T * A * omega)[0], (omega.T * B * omega)[0]
        return pl.risk_from_moments(Sigma, P, a, b, c, sigma, R[-1, -1])

    for f in (wrong, wrong_A):
        out = pl.check_L1(2, 2, formula=f)
        assert not out.verified and out.residual_terms > 0


@pytest.mark.parametrize("n,d,diag", [(1, 1, False), (2, 2, False), (2, 2, True)])
def test_featurewise_verified(n, d, diag):
    assert pl.check_featurewise(n, d, sigma_diagonal=diag).verified


def test_featurewise_reduces_to_L1():
    assert pl.check_featurewise_reduces_to_L1(2, 2).verified
    assert pl.check_featurewise_reduces_to_L1(3, 2).verified


def test_featurewise_wrong_formula_detected():
    def wrong(
        Sigma, R, sigma, P, Omega
    ):  # the diagonal term D_i Σ D_i replaced by Σ D_i^2 ... with Σ^2
        n, d = Omega.shape
        r, A, B = pl.abc_matrices(R, Sigma, sigma)
        D = [sp.diag(*Omega[i, :]) for i in range(n)]
        H = sum(
            (A[i, j] * D[i] * Sigma**2 * D[j] for i in range(n) for j in range(n)), sp.zeros(d, d)
        )
        H += sum((B[i, i] * D[i] * Sigma**2 * D[i] for i in range(n)), sp.zeros(d, d))
        Mr = sum((r[i] * D[i] for i in range(n)), sp.zeros(d, d))
        return (
            sigma**2
            + R[n, n] * Sigma.trace()
            - 2 * (P * Mr * Sigma**2).trace()
            + (P.T * Sigma * P * H).trace()
        )

    assert not pl.check_featurewise(2, 2, formula=wrong).verified


# --------------------------------------------------------------------------- stationarity checks


def test_L2():
    out = stn.check_L2()
    assert out.verified, out.parts
    assert set(out.parts) >= {"foc_general", "hessian_kron", "profile_diagonal", "exact_quadratic"}


def test_L3():
    out = stn.check_L3()
    assert out.verified, out.parts


def test_L4():
    out = stn.check_L4()
    assert out.verified, out.parts
    assert out.parts["curve_derivative"] and out.parts["cauchy_schwarz"]


@pytest.mark.slow
def test_L4_larger():
    assert stn.check_L4(3, 2, with_curve_derivative=False).verified


def test_isotropic():
    out = stn.check_isotropic()
    assert out.verified, out.parts


def test_L5_conditions():
    out = stn.check_L5_conditions()
    assert out.verified, out.parts


def test_L6():
    out = stn.check_L6()
    assert out.verified, out.parts
    assert "P_star_symbolic_n" in out.parts


def test_L7():
    out = stn.check_L7()
    assert out.verified, out.parts


def test_wrong_stationarity_formulas_detected():
    A = sp.Matrix([[sp.Symbol("A11"), sp.Symbol("A12")], [sp.Symbol("A12"), sp.Symbol("A22")]])
    B = sp.diag(*sp.symbols("B1 B2", positive=True))
    r = sp.Matrix(sp.symbols("r1 r2"))
    w = sp.Matrix(sp.symbols("w1 w2"))
    lam = list(sp.symbols("l1 l2", positive=True))
    a, b, c = (r.T * w)[0], (w.T * A * w)[0], (w.T * B * w)[0]
    prof = stn.profile_risk(a, b, c, lam, 0, 1)
    grad = sp.Matrix([sp.diff(prof, wi) for wi in w])
    f = stn.phi(b, c, lam)
    wrong = (
        2
        * a**2
        * sum(l**3 / (b * l + c) ** 2 for l in lam)
        * ((A + B / f) * w - stn.kappa(a, b, c, lam) * r)
    )
    point = {
        A[0, 0]: 2,
        A[0, 1]: sp.Rational(1, 3),
        A[1, 1]: 3,
        B[0, 0]: 1,
        B[1, 1]: 2,
        r[0]: 1,
        r[1]: -2,
        w[0]: sp.Rational(1, 2),
        w[1]: 1,
        lam[0]: 1,
        lam[1]: 5,
    }
    assert any(sp.simplify((grad - wrong)[i].subs(point)) != 0 for i in range(2))
    assert all(
        sp.simplify((grad - stn.profile_gradient_closed_form(w, A, B, r, lam))[i].subs(point)) == 0
        for i in range(2)
    )
    # L7 without the "+1" (forgetting the 4th-moment diagonal term) is rejected
    d, sig, rho1, rho2 = sp.symbols("d sigma rho1 rho2", positive=True)
    m = (1, 2)
    Amat = sp.Matrix([[2, 0, 0], [0, 2, 1], [0, 1, 2]])
    M = Amat + (d + sig**2) * sp.eye(3)
    sol = M.LUsolve(sp.Matrix([rho1, rho2, rho2]))
    wrong7 = sp.Matrix(
        [rho1 / (m[0] + d + sig**2), rho2 / (m[1] + d + sig**2), rho2 / (m[1] + d + sig**2)]
    )
    right7 = sp.Matrix(
        [
            rho1 / (m[0] + 1 + d + sig**2),
            rho2 / (m[1] + 1 + d + sig**2),
            rho2 / (m[1] + 1 + d + sig**2),
        ]
    )
    assert sp.simplify(sol - right7) == sp.zeros(3, 1)
    assert sp.simplify(sol - wrong7) != sp.zeros(3, 1)


def test_stationarity_bad_input():
    with pytest.raises(ValueError, match="^d"):
        stn.check_L2(d=0)
    with pytest.raises(ValueError, match="^n_values"):
        stn.check_L6(n_values=(0,))
    with pytest.raises(ValueError, match="^segment_lengths"):
        stn.check_L7(segment_lengths=((1, 0),))
    with pytest.raises(ValueError, match="^lambdas"):
        stn.phi(1, 1, [1, -2])
    with pytest.raises(ValueError, match="^lambdas"):
        stn.profile_risk(1, 1, 1, [], 0, 1)


def test_formulas_render():
    for mod in (pl, stn):
        for name, expr in mod.formulas().items():
            assert isinstance(sp.latex(expr), str) and sp.latex(expr), name


# --------------------------------------------------------------------------- numeric stress (hypothesis)

_N, _K = 2, 3
_A = sp.Matrix(_N, _N, lambda i, j: sp.Symbol(f"A{min(i, j)}{max(i, j)}"))
_B = sp.diag(*sp.symbols(f"B0:{_N}", positive=True))
_r = sp.Matrix(sp.symbols(f"r0:{_N}"))
_w = sp.Matrix(sp.symbols(f"w0:{_N}"))
_lam = list(sp.symbols(f"l0:{_K}", positive=True))
_a, _b, _c = (_r.T * _w)[0], (_w.T * _A * _w)[0], (_w.T * _B * _w)[0]
_args = [_A[0, 0], _A[0, 1], _A[1, 1], _B[0, 0], _B[1, 1], *_r, *_w, *_lam]
_prof_f = sp.lambdify(_args, stn.profile_risk(_a, _b, _c, _lam, 0, 0), "numpy")
_grad_f = sp.lambdify(_args, stn.profile_gradient_closed_form(_w, _A, _B, _r, _lam), "numpy")


def _landscape_instance(seed, log_cond):
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(_N + 1, _N + 1))
    R = G @ G.T
    A = R[:_N, :_N] + np.diag(np.diag(R)[:_N])
    lam = 10.0 ** rng.uniform(-log_cond / 2, log_cond / 2, size=_K)
    B = np.diag(np.diag(R)[:_N] * lam.sum() + 0.1)
    return A, B, R[:_N, _N], rng.normal(size=_N), lam


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 8.0))
def test_gradient_closed_form_vs_complex_step(seed, log_cond):
    """Complex-step derivative of the profile (exact to rounding) vs the closed form, with
    eigenvalues spread over up to 8 decades. Relative tolerance 1e-8: the closed form is
    evaluated in float64 with cancellation in (A+φB)ω - κr of size ~cond(Σ)·eps."""
    A, B, r, w, lam = _landscape_instance(seed, log_cond)

    def args(ww):
        return [A[0, 0], A[0, 1], A[1, 1], B[0, 0], B[1, 1], *r, *ww, *lam]

    h = 1e-30
    cs = np.array([np.imag(_prof_f(*args(w + 1j * h * np.eye(_N)[i]))) / h for i in range(_N)])
    closed = np.asarray(_grad_f(*args(w)), dtype=float).ravel()
    scale = np.linalg.norm(cs) + 1e-300
    assert np.linalg.norm(closed - cs) <= 1e-8 * scale + 1e-300, (closed, cs)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(1e-6, 1e6),
    st.floats(1e-6, 1e6),
    st.lists(st.floats(1e-4, 1e4), min_size=1, max_size=6),
)
def test_phi_in_bracket(b, c, lam):
    val = float(stn.phi(sp.Float(b), sp.Float(c), [sp.Float(x) for x in lam]))
    lam = np.asarray(lam)
    # 1e-12 relative slack: float rounding of the two sums
    assert 1 / lam.max() * (1 - 1e-12) <= val <= 1 / lam.min() * (1 + 1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 6.0))
def test_Pstar_minimises_and_profile_value(seed, log_cond):
    """For random ill-conditioned Σ (2×2), L(P*) equals the eigenvalue profile and is below
    L at random perturbations of P*. Tolerance 1e-9 relative (float64 evaluation of a
    quadratic in P with condition number up to 1e6)."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(2, 2)))[0]
    lam = 10.0 ** rng.uniform(-log_cond / 2, log_cond / 2, size=2)
    Sigma = Q @ np.diag(lam) @ Q.T
    a, b, c = rng.normal(), rng.uniform(0.1, 3), rng.uniform(0.1, 3)
    sigma, Rq = 0.5, 1.3

    def L(P):
        return (
            sigma**2
            + Rq * np.trace(Sigma)
            - 2 * a * np.trace(P @ Sigma @ Sigma)
            + np.trace(P.T @ Sigma @ P @ (b * Sigma @ Sigma + c * Sigma))
        )

    P_star = np.array(stn.optimal_P(sp.Matrix(Sigma), a, b, c), dtype=float)
    prof = float(stn.profile_risk(a, b, c, [sp.Float(x) for x in lam], sigma, Rq))
    scale = sigma**2 + Rq * np.trace(Sigma)
    assert abs(L(P_star) - prof) <= 1e-9 * scale
    for _ in range(5):
        E = rng.normal(size=(2, 2)) * 10.0 ** rng.uniform(-3, 1)
        assert L(P_star + E) >= L(P_star) - 1e-9 * scale


# --------------------------------------------------------------------------- feature-wise, diagonal Σ


def test_featurewise_diagonal_completion_of_squares():
    out = pl.check_featurewise_diagonal(2, 2)
    assert out.verified, out.parts


def _scalar_vs_featurewise_gain(lam, seed=1):
    """Closed-form feature-wise optimum minus a brute-force (angle grid) scalar optimum, n = 2."""
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(3, 3))
    R = G @ G.T / 3
    r, A = R[:2, 2], R[:2, :2] + np.diag(np.diag(R)[:2])
    B = np.diag(np.diag(R)[:2] * sum(lam) + 0.25)
    fw = sum(l**2 * r @ np.linalg.solve(l * A + B, r) for l in lam)
    th = np.linspace(0, np.pi, 200_001)  # ω = (cos θ, sin θ): the profile is scale invariant (L3)
    W = np.stack([np.cos(th), np.sin(th)])
    a, b = r @ W, np.einsum("it,ij,jt->t", W, A, W)
    c = np.einsum("it,ij,jt->t", W, B, W)
    scalar = np.max(a**2 * sum(l**2 / (b * l + c) for l in lam))
    return fw - scalar


def test_featurewise_gain_zero_isotropic_strict_anisotropic():
    # grid resolution Δθ = π/2e5 bounds the brute-force error by ~|J''| Δθ^2 < 1e-9
    assert abs(_scalar_vs_featurewise_gain((1.0, 1.0))) < 1e-9
    assert _scalar_vs_featurewise_gain((1.0, 4.0)) > 1e-7  # measured 9.6e-6
    assert _scalar_vs_featurewise_gain((0.1, 10.0)) > 1e-7  # measured 5.3e-7
