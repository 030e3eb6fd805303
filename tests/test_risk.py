"""Closed-form WPGD risks vs Monte Carlo (4 standard errors), optimal P vs numerical
minimisation, feature-wise ⇒ scalar reduction, gradients vs finite differences, validation."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

from numerics.data import MultitaskModel, random_correlation, random_covariance
from numerics.risk import (
    abc,
    featurewise_predictor,
    monte_carlo_risk,
    null_risk,
    optimal_P,
    optimal_P_featurewise,
    phi,
    profile_risk,
    profile_risk_featurewise,
    profile_risk_featurewise_grad,
    profile_risk_grad,
    profile_risks,
    wpgd_predictor,
    wpgd_risk,
    wpgd_risk_featurewise,
)
from proofs_check.tolerances import MC_Z as Z  # Monte Carlo: within Z standard errors


def _model(seed, n=6, d=3, sigma=0.5, cond=10.0, common=0.3):
    rng = np.random.default_rng(seed)
    return MultitaskModel(
        random_correlation(n + 1, rng, common=common), random_covariance(d, rng, cond=cond), sigma
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_wpgd_risk_matches_monte_carlo(seed):
    m = _model(seed)
    rng = np.random.default_rng(100 + seed)
    omega = rng.uniform(0.2, 1.0, m.n)
    # A preconditioner near the optimum (plus a perturbation) keeps the variance small.
    P = optimal_P(m, omega) + 0.1 * rng.standard_normal((m.d, m.d)) / m.n
    closed = wpgd_risk(m, P, omega)
    mean, se = monte_carlo_risk(m, wpgd_predictor(P, omega), 60000, np.random.default_rng(seed))
    assert abs(mean - closed) <= Z * se, (mean, closed, se)
    assert se < 0.02 * closed  # the test has power: the error bar is a small fraction of the risk


@pytest.mark.parametrize("seed", [0, 1])
def test_featurewise_risk_matches_monte_carlo(seed):
    m = _model(seed, sigma=0.3, cond=30.0)
    rng = np.random.default_rng(200 + seed)
    Omega = rng.uniform(0.1, 1.0, (m.n, m.d))
    P = optimal_P_featurewise(m, Omega) + 0.1 * rng.standard_normal((m.d, m.d)) / m.n
    closed = wpgd_risk_featurewise(m, P, Omega)
    mean, se = monte_carlo_risk(
        m, featurewise_predictor(P, Omega), 60000, np.random.default_rng(7 + seed)
    )
    assert abs(mean - closed) <= Z * se, (mean, closed, se)
    assert se < 0.02 * closed


def test_monte_carlo_is_deterministic_and_batch_invariant_in_law():
    m = _model(3)
    pred = wpgd_predictor(np.eye(m.d) * 0.1, np.ones(m.n))
    a = monte_carlo_risk(m, pred, 1000, np.random.default_rng(5), batch_size=300)
    b = monte_carlo_risk(m, pred, 1000, np.random.default_rng(5), batch_size=300)
    assert a == b


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 8),
    d=st.integers(1, 5),
    sigma=st.floats(0, 2),
    logcond=st.floats(0, 3),
)
def test_featurewise_reduces_to_scalar(seed, n, d, sigma, logcond):
    rng = np.random.default_rng(seed)
    m = MultitaskModel(
        random_correlation(n + 1, rng), random_covariance(d, rng, cond=10**logcond), sigma
    )
    omega = rng.standard_normal(n)
    P = rng.standard_normal((d, d))
    Om = np.outer(omega, np.ones(d))
    L = wpgd_risk(m, P, omega)
    assert abs(wpgd_risk_featurewise(m, P, Om) - L) <= 1e-10 * max(abs(L), 1.0)
    if np.any(omega != 0):
        np.testing.assert_allclose(
            optimal_P_featurewise(m, Om),
            optimal_P(m, omega),
            rtol=1e-8,
            atol=1e-10 * np.abs(optimal_P(m, omega)).max(),
        )
        Lp = profile_risk(m, omega)
        assert abs(profile_risk_featurewise(m, Om) - Lp) <= 1e-10 * null_risk(m)
        lam = m.eigvals
        t = phi(m, omega)
        assert 1 / lam[-1] * (1 - 1e-12) <= t <= 1 / lam[0] * (1 + 1e-12)


def _quadratic_argmin(f, k, h=1.0):
    """Minimiser of a quadratic f on R^k from function values only (polarisation):
    g_i = (f(h e_i) − f(−h e_i))/2h, H_ij = (f(h e_i + h e_j) − f(h e_i) − f(h e_j) + f(0))/h².
    Exact for quadratics up to rounding; independent of any formula for the argmin."""
    E = h * np.eye(k)
    f0 = f(np.zeros(k))
    fe = np.array([f(E[i]) for i in range(k)])
    g = np.array([(fe[i] - f(-E[i])) / (2 * h) for i in range(k)])
    H = np.array(
        [[(f(E[i] + E[j]) - fe[i] - fe[j] + f0) / h**2 for j in range(k)] for i in range(k)]
    )
    return np.linalg.solve((H + H.T) / 2, -g)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_P_matches_numerical_minimisation(seed):
    m = _model(seed, d=3, cond=50.0)
    omega = np.random.default_rng(seed).uniform(-1, 1, m.n)
    d = m.d

    def f(p):
        return wpgd_risk(m, p.reshape(d, d), omega)

    Pnum = _quadratic_argmin(f, d * d).reshape(d, d)
    Pstar = optimal_P(m, omega)
    # polarisation loses ~cond(H)·eps relative; cond ≤ ~1e4 here, so 1e-8 has a wide margin
    np.testing.assert_allclose(Pnum, Pstar, atol=1e-8 * np.abs(Pstar).max())
    # and a local descent from P* finds nothing lower
    res = minimize(f, Pstar.ravel(), method="BFGS")
    assert f(Pstar.ravel()) <= res.fun + 1e-12 * null_risk(m)
    assert abs(profile_risk(m, omega) - f(Pstar.ravel())) <= 1e-10 * null_risk(m)


def test_optimal_P_featurewise_matches_numerical_minimisation():
    m = _model(4, d=3, cond=50.0)
    Omega = np.random.default_rng(4).uniform(0, 1, (m.n, m.d))
    d = m.d

    def f(p):
        return wpgd_risk_featurewise(m, p.reshape(d, d), Omega)

    Pnum = _quadratic_argmin(f, d * d).reshape(d, d)
    Pstar = optimal_P_featurewise(m, Omega)
    np.testing.assert_allclose(Pnum, Pstar, atol=1e-8 * np.abs(Pstar).max())
    assert abs(profile_risk_featurewise(m, Omega) - f(Pstar.ravel())) <= 1e-10 * null_risk(m)


def _fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("seed", [0, 1])
def test_profile_gradients_match_finite_differences(seed):
    m = _model(seed, cond=20.0)
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal(m.n)
    _, g = profile_risk_grad(m, omega)
    gfd = _fd_grad(lambda w: profile_risk(m, w), omega)
    # central differences: truncation ~eps² ≈ 1e-12, rounding ~1e-16/1e-6 relative
    np.testing.assert_allclose(g, gfd, atol=1e-6 * np.abs(g).max())
    Omega = rng.standard_normal((m.n, m.d))
    _, G = profile_risk_featurewise_grad(m, Omega)
    Gfd = _fd_grad(lambda O: profile_risk_featurewise(m, O), Omega)
    np.testing.assert_allclose(G, Gfd, atol=1e-6 * np.abs(G).max())


def test_abc_and_profile_scale_invariance():
    m = _model(5)
    omega = np.random.default_rng(5).standard_normal(m.n)
    a, b, c = abc(m, omega)
    assert (
        np.isclose(a, m.r @ omega)
        and np.isclose(b, omega @ m.A @ omega)
        and np.isclose(c, omega @ m.B @ omega)
    )
    assert abs(profile_risk(m, -3.7 * omega) - profile_risk(m, omega)) <= 1e-12 * null_risk(m)


def test_profile_risks_equals_row_by_row():
    # the vectorised scoring agrees with profile_risk up to summation-order rounding, at any
    # scale of the rows (1e-150 and 1e150: the exact power-of-two normalisation), zero rows
    # give the null risk; bad shapes and non-finite rows are refused
    m = _model(7)
    rng = np.random.default_rng(7)
    W = rng.standard_normal((50, m.n)) * np.logspace(-150, 150, 50)[:, None]
    W[3] = 0.0
    ref = np.array([profile_risk(m, w) if np.any(w) else null_risk(m) for w in W])
    assert np.max(np.abs(profile_risks(m, W) - ref)) <= 1e-14 * null_risk(m)
    with pytest.raises(ValueError, match="^omegas"):
        profile_risks(m, np.ones((2, m.n + 1)))
    with pytest.raises(ValueError, match="^omegas"):
        profile_risks(m, np.full((2, m.n), np.inf))


def test_risk_validation():
    m = _model(0)
    n, d = m.n, m.d
    with pytest.raises(ValueError, match="^omega"):
        wpgd_risk(m, np.eye(d), np.ones(n + 1))
    with pytest.raises(ValueError, match="^omega"):
        profile_risk(m, np.full(n, np.nan))
    with pytest.raises(ValueError, match="^P"):
        wpgd_risk(m, np.eye(d + 1), np.ones(n))
    with pytest.raises(ValueError, match="^Omega"):
        wpgd_risk_featurewise(m, np.eye(d), np.ones((n, d + 1)))
    with pytest.raises(ValueError, match="^model"):
        wpgd_risk("m", np.eye(d), np.ones(n))
    with pytest.raises(ValueError, match="^num_prompts"):
        monte_carlo_risk(m, wpgd_predictor(np.eye(d), np.ones(n)), 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^batch_size"):
        monte_carlo_risk(
            m, wpgd_predictor(np.eye(d), np.ones(n)), 10, np.random.default_rng(0), batch_size=0
        )
    with pytest.raises(ValueError, match="^predict"):
        monte_carlo_risk(m, lambda p: np.zeros(3), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^omega"):
        phi(m, np.zeros(n))
