"""The certified WPGD solver vs an independent multistart baseline, closed forms (Σ = sI,
single task, K independent tasks), the Lanczos path vs dense eigh, feature-wise weights."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from numerics.data import MultitaskModel, random_correlation, random_covariance
from numerics.landscape import (
    brute_force_wpgd,
    featurewise_diagonal_optimum,
    omega_curve,
    solve_wpgd,
    solve_wpgd_featurewise,
)
from numerics.measures import cosine
from numerics.risk import null_risk, optimal_P, profile_risk, wpgd_risk


def _cos(u, v):
    return cosine(u, v, absolute=True)


def _check_solution(m, sol):
    lam = m.eigvals
    c = sol.certificate
    assert 1 / lam[-1] * (1 - 1e-12) <= sol.t <= 1 / lam[0] * (1 + 1e-12)
    assert abs(np.linalg.norm(sol.omega) - 1) < 1e-12 and m.r @ sol.omega > 0
    # ω is on the curve at t*, and t* is a fixed point of φ (both to rounding)
    assert _cos(sol.omega, omega_curve(m, sol.t)) >= 1 - 1e-12
    assert c["phi_minus_t_rel"] <= 1e-9 and c["residual"] <= 1e-9
    # the returned P is P*(ω) and the risk is the closed form at (P, ω)
    assert abs(wpgd_risk(m, sol.P, sol.omega) - sol.risk) <= 1e-10 * null_risk(m)
    assert c["curve_max_rel_excess"] <= 1e-10 and c["risk_rel_diff"] <= 1e-10


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    d=st.integers(1, 6),
    sigma=st.floats(0, 2),
    logcond=st.floats(0, 3),
    common=st.floats(0, 3),
    rank=st.integers(1, 13),
)
def test_solver_never_worse_than_brute_force(seed, n, d, sigma, logcond, common, rank):
    rng = np.random.default_rng(seed)
    m = MultitaskModel(
        random_correlation(n + 1, rng, common=common, rank=rank),
        random_covariance(d, rng, cond=10**logcond),
        sigma,
    )
    if not np.any(m.r != 0) or not np.all(m.B_diag > 0):
        return
    sol = solve_wpgd(m)
    bf = brute_force_wpgd(m, restarts=4, rng=np.random.default_rng(seed))
    _check_solution(m, sol)
    L0 = null_risk(m)
    assert sol.risk <= bf.risk + 1e-12 * L0
    if sol.certificate["unique"] and sol.certificate["runner_up_rel_gap"] > 1e-6:
        assert _cos(sol.omega, bf.omega) >= 1 - 1e-8, (sol.omega, bf.omega)
    assert abs(sol.risk - bf.risk) <= 1e-10 * L0


@pytest.mark.parametrize("seed", range(4))
def test_solver_vs_brute_force_ill_conditioned(seed):
    rng = np.random.default_rng(1000 + seed)
    m = MultitaskModel(
        random_correlation(21, rng, common=0.5), random_covariance(8, rng, cond=1e3), 0.3
    )
    sol = solve_wpgd(m)
    bf = brute_force_wpgd(m, restarts=6, rng=rng)
    _check_solution(m, sol)
    assert sol.risk <= bf.risk + 1e-12 * null_risk(m)
    assert _cos(sol.omega, bf.omega) >= 1 - 1e-8
    assert sol.certificate["unique"]


def test_isotropic_closed_form():
    rng = np.random.default_rng(1)
    n, d, s, sigma = 9, 4, 2.5, 0.4
    m = MultitaskModel(random_correlation(n + 1, rng, common=0.2), s * np.eye(d), sigma)
    sol = solve_wpgd(m)
    ref = np.linalg.solve(s * m.A + m.B, m.r)
    assert sol.certificate["bracket"][0] == pytest.approx(1 / s, rel=1e-14)
    assert _cos(sol.omega, ref) >= 1 - 1e-14
    assert sol.t == pytest.approx(1 / s, rel=1e-12)


@pytest.mark.parametrize("sigma", [0.0, 0.8])
def test_single_task_closed_form(sigma):
    rng = np.random.default_rng(2)
    n, d = 7, 4
    S = random_covariance(d, rng, cond=50)
    m = MultitaskModel.single_task(n, S, sigma)
    sol = solve_wpgd(m)
    np.testing.assert_allclose(sol.omega, np.ones(n) / np.sqrt(n), rtol=1e-12)
    # with ω = 1: P* = ((n+1)Σ + (tr Σ + σ²) I)^{-1}; sol.omega = 1/√n ⇒ sol.P = √n · that
    Pref = np.linalg.inv((n + 1) * S + (np.trace(S) + sigma**2) * np.eye(d))
    np.testing.assert_allclose(sol.P / np.sqrt(n), Pref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(optimal_P(m, np.ones(n)), Pref, rtol=1e-12, atol=1e-15)


def test_k_independent_tasks_closed_form():
    mseg = np.array([3, 5, 2, 4])
    rho = np.array([0.5, -0.3, 0.2, 0.6])
    d, sigma = 5, 0.7
    m = MultitaskModel.k_task(mseg, np.eye(4), rho, np.eye(d), sigma=sigma, query_var=1.0)
    sol = solve_wpgd(m)
    ref = np.repeat(rho / (mseg + 1 + d + sigma**2), mseg)
    assert _cos(sol.omega, ref) >= 1 - 1e-14
    np.testing.assert_allclose(
        sol.omega, ref / np.linalg.norm(ref) * np.sign(m.r @ ref), rtol=1e-10
    )


def test_lanczos_matches_eigh():
    rng = np.random.default_rng(3)
    m = MultitaskModel(
        random_correlation(301, rng, common=0.3), random_covariance(10, rng, cond=300), 0.5
    )
    a = solve_wpgd(m, method="eigh")
    b = solve_wpgd(m, method="lanczos")
    assert b.certificate["spectral"]["method"] == "lanczos"
    assert abs(a.risk - b.risk) <= 1e-12 * null_risk(m)
    assert _cos(a.omega, b.omega) >= 1 - 1e-12
    assert abs(a.t - b.t) <= 1e-9 * a.t
    _check_solution(m, b)


def test_degenerate_cases():
    # r = 0: every ω is optimal; the certificate says so.
    R = np.eye(4)
    m = MultitaskModel(R, np.diag([1.0, 2.0]), 0.1)
    sol = solve_wpgd(m)
    assert not sol.certificate["r_nonzero"] and not sol.certificate["unique"]
    assert sol.risk == pytest.approx(null_risk(m))
    # an example with R_ii = 0 and σ = 0 carries no signal: weight 0, rest unaffected
    R = np.zeros((4, 4))
    R[np.ix_([0, 2, 3], [0, 2, 3])] = [[1.0, 0.3, 0.5], [0.3, 1.0, 0.6], [0.5, 0.6, 1.0]]
    m = MultitaskModel(R, np.diag([1.0, 3.0]), 0.0)
    sol = solve_wpgd(m)
    assert sol.omega[1] == 0 and sol.certificate["inactive_examples"] == 1
    assert not sol.certificate["unique"] and sol.certificate["unique_on_active"]
    m2 = MultitaskModel(R[np.ix_([0, 2, 3], [0, 2, 3])], np.diag([1.0, 3.0]), 0.0)
    sol2 = solve_wpgd(m2)
    np.testing.assert_allclose(sol.omega[[0, 2]], sol2.omega, rtol=1e-12)
    assert sol.risk == pytest.approx(sol2.risk, rel=1e-13)


def test_featurewise_no_gain_when_isotropic():
    rng = np.random.default_rng(4)
    m = MultitaskModel(random_correlation(8, rng, common=0.3), 1.7 * np.eye(3), 0.5)
    fw = solve_wpgd_featurewise(m, restarts=2, rng=np.random.default_rng(0))
    assert fw.gain <= 1e-10 * null_risk(m)
    assert fw.info["closed_form_rel_diff"] <= 1e-10


def test_featurewise_strict_gain_anisotropic_diagonal():
    # Two independent tasks, a short weakly-correlated segment then a long strongly-
    # correlated one, Σ = diag(16, 1, 1, 1)·(4/19): the best weights differ per coordinate
    # ((λ_k A + B)^{-1} r depends on λ_k), so the closed-form feature-wise optimum is
    # strictly below the scalar optimum (measured: ~2% of the excess risk over σ²).
    lam = np.array([16.0, 1.0, 1.0, 1.0]) * 4 / 19
    m = MultitaskModel.k_task([2, 32], np.eye(2), [0.3, 0.9], np.diag(lam), sigma=0.3)
    Om_cf, L_cf = featurewise_diagonal_optimum(m)
    fw = solve_wpgd_featurewise(m, restarts=1, rng=np.random.default_rng(0))
    assert abs(fw.risk - L_cf) <= 1e-9 * null_risk(m)
    assert fw.rel_gain > 0.01  # a strict gain, 10^13 times the rounding level
    assert profile_risk(m, solve_wpgd(m).omega) == pytest.approx(fw.scalar_risk, rel=1e-13)
    # the feature-wise columns are genuinely different directions
    cols = Om_cf / np.linalg.norm(Om_cf, axis=0)
    assert 1 - abs(cols[:, 0] @ cols[:, 1]) > 1e-4


def test_featurewise_never_worse_than_scalar_general_sigma():
    rng = np.random.default_rng(5)
    m = MultitaskModel(
        random_correlation(7, rng, common=0.3), random_covariance(3, rng, cond=30), 0.5
    )
    fw = solve_wpgd_featurewise(m, restarts=1, rng=rng)
    assert fw.risk <= fw.scalar_risk + 1e-12 * null_risk(m)


def test_solver_validation():
    m = MultitaskModel(np.eye(3) + 0.1, np.eye(2), 0.1)
    with pytest.raises(ValueError, match="^method"):
        solve_wpgd(m, method="newton")
    with pytest.raises(ValueError, match="^grid"):
        solve_wpgd(m, grid=3)
    with pytest.raises(ValueError, match="^model"):
        solve_wpgd("model")
    with pytest.raises(ValueError, match="^restarts"):
        brute_force_wpgd(m, restarts=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="^rng"):
        brute_force_wpgd(m, rng=0)
    with pytest.raises(ValueError, match="^t"):
        omega_curve(m, -1.0)
    with pytest.raises(ValueError, match="^model"):
        featurewise_diagonal_optimum(
            MultitaskModel(np.eye(3) + 0.1, np.array([[1.0, 0.5], [0.5, 1.0]]))
        )


@pytest.mark.slow
def test_large_n_general_sigma_under_10_seconds():
    rng = np.random.default_rng(0)
    m = MultitaskModel(
        random_correlation(4097, rng, common=0.3), random_covariance(64, rng, cond=100), 0.5
    )
    sol = solve_wpgd(m)
    assert sol.seconds < 10
    assert sol.certificate["residual"] <= 1e-9 and sol.certificate["risk_rel_diff"] <= 1e-10


# --------------------------------------------------------------------- fast solver internals
from scipy.optimize import brentq  # noqa: E402

from numerics import landscape as _ls  # noqa: E402
from numerics.risk import phi as _phi_direct  # noqa: E402


def _g_dense(m, t):
    """φ(ω(t)) − t from a dense solve (independent of the spectral measure)."""
    return _phi_direct(m, omega_curve(m, t)) - t


def _random_stress_model(seed, n, d, logcond, common, rank, sigma):
    rng = np.random.default_rng(seed)
    return MultitaskModel(
        random_correlation(n + 1, rng, common=common, rank=rank),
        random_covariance(d, rng, cond=10**logcond),
        sigma,
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 20),
    d=st.integers(2, 8),
    logcond=st.floats(0.5, 6),
    common=st.floats(0, 3),
    rank=st.integers(1, 21),
    sigma=st.sampled_from([0.0, 1e-6, 0.3, 2.0]),
)
def test_default_grid_misses_no_fixed_point(seed, n, d, logcond, common, rank, sigma):
    # Justifies DEFAULT_GRID: on stress instances (cond up to 1e6, rank-deficient R, σ
    # down to 0) the default grid finds the same fixed points as a 32x finer grid, and the
    # Newton root is a root of the *dense-solve* g to rounding: brentq on φ(ω(t)) − t
    # computed by np.linalg.solve in a ±1e-6 relative bracket agrees to 1e-11 relative
    # (the dense g has rounding ~1e-16·cond(A+tB), which limits that comparison).
    m = _random_stress_model(seed, n, d, logcond, common, rank, sigma)
    if not np.any(m.r != 0):
        return
    sol = solve_wpgd(m)
    fine = solve_wpgd(m, grid=32 * _ls.DEFAULT_GRID)
    c, cf = sol.certificate, fine.certificate
    assert c["grid"] == _ls.DEFAULT_GRID
    assert c["num_fixed_points"] == cf["num_fixed_points"] >= 1
    for a, b in zip(
        sorted(f["t"] for f in c["fixed_points"]), sorted(f["t"] for f in cf["fixed_points"])
    ):
        assert abs(a - b) <= 1e-12 * b
    assert abs(sol.risk - fine.risk) <= 1e-13 * null_risk(m)
    assert c["phi_minus_t_rel"] <= 1e-13 and c["curve_max_rel_excess"] <= 1e-12
    assert c["newton_calls"] <= 4  # the fast path: 2 evaluations typically, 3 measured at worst
    if c["num_fixed_points"] == 1 and np.all(m.B_diag > 0):
        t = sol.t
        lo, hi = t * (1 - 1e-6), t * (1 + 1e-6)
        if _g_dense(m, lo) * _g_dense(m, hi) < 0:
            t_ref = brentq(lambda s: _g_dense(m, s), lo, hi, xtol=1e-16 * t, rtol=1e-15)
            assert abs(t_ref - t) <= 1e-11 * t


@pytest.mark.parametrize("seed", range(3))
def test_evaluators_against_dense_formulas_and_finite_differences(seed):
    m = _random_stress_model(seed, 15, 5, 2.5, 0.5, 16, 0.4)
    solve_wpgd(m)
    meas = m.__dict__[_ls._CACHE_ATTR]["auto"]["meas"]
    lam = m.eigvals
    ts = np.geomspace(1 / lam[-1], 1 / lam[0], 7)
    g, F, gp = meas.evaluate(ts, True)
    L0 = null_risk(m)
    for i, t in enumerate(ts):
        # vectorised vs point evaluator (same formulas, different array shapes)
        gpt, Fpt, gppt = meas.evaluate_point(float(t), True)
        assert abs(gpt - g[i]) <= 1e-14 * t and abs(Fpt - F[i]) <= 1e-14 * F[i]
        assert abs(gppt - gp[i]) <= 1e-12 * max(1.0, abs(gp[i]))
        # spectral g, F vs a dense solve for ω(t) and the closed-form φ and profile risk
        om = omega_curve(m, t)
        assert abs(g[i] - _g_dense(m, t)) <= 1e-11 * t
        assert abs((L0 - F[i]) - profile_risk(m, om)) <= 1e-12 * L0
        # analytic g' vs a central difference: truncation (h/t)²·|g'''|t² ~ 1e-12,
        # rounding ~1e-16·t/h = 1e-10 relative: 1e-7 leaves a wide margin
        h = 1e-6 * t
        fd = (meas.evaluate_point(t + h)[0] - meas.evaluate_point(t - h)[0]) / (2 * h)
        assert abs(fd - gp[i]) <= 1e-7 * max(1.0, abs(gp[i]))


def _synthetic_ev(g_fun, gp_fun, F_fun):
    def ev(t, deriv=False):
        t = np.asarray(t, dtype=np.float64)
        return (g_fun(t), F_fun(t), gp_fun(t)) if deriv else (g_fun(t), F_fun(t))

    return ev


def test_search_finds_all_crossings_tangency_and_near_miss():
    # g with three crossings (t = 1.2, 2, 3), a double root (tangency) at t = 5 and a
    # non-root local minimum of |g| near t = 7 (|g|/t ≈ 1e-3 > TANGENT_TOL): all three
    # kinds of the search are exercised on a known function.
    def g(t):
        return (
            -(t - 1.2)
            * (t - 2.0)
            * (t - 3.0)
            * ((t - 5.0) ** 2)
            * ((t - 7.0) ** 2 + 7e-3 * 1e-1)
            / 1e3
        )

    def gp(t, e=1e-7):
        return (g(t + e) - g(t - e)) / (2 * e)  # an approximate g' must not matter for the root

    ev = _synthetic_ev(g, gp, lambda t: -((t - 3.0) ** 2))
    ts = np.geomspace(1.0, 9.0, 128)
    found = _ls._search_fixed_points(ev, ts)
    kinds = {}
    for t, kind, gt, _Ft in found["cands"]:
        kinds.setdefault(kind, []).append(t)
        assert abs(gt) <= 1e-9 * t
    cross = sorted(kinds["crossing"])
    assert len(cross) == 3
    np.testing.assert_allclose(cross, [1.2, 2.0, 3.0], rtol=1e-14)
    assert len(kinds.get("tangent", [])) == 1 and abs(kinds["tangent"][0] - 5.0) <= 1e-4
    assert found["near_miss"] is not None and found["near_miss"] > _ls.TANGENT_TOL
    assert found["t_curve"] == pytest.approx(3.0, rel=2e-2)


def test_newton_safeguards_with_a_wrong_derivative():
    # A g' of the wrong sign sends every Newton step out of the bracket: the safeguard
    # bisects, and the roots are still found to ROOT_RTOL (t = 1.5 and 2.5 at once).
    def g(t):
        return (t - 1.5) * (t - 2.5) * np.exp(-t)

    ev = _synthetic_ev(
        g, lambda t: -100.0 * np.sign((t - 1.5) * (t - 2.5) + 1e-300) + 0 * t, lambda t: 0 * t
    )
    lo, hi = np.array([1.0, 2.2]), np.array([2.0, 3.1])
    roots, _groots, _, calls = _ls._newton_roots(ev, lo, hi, g(lo), g(hi))
    np.testing.assert_allclose(roots, [1.5, 2.5], rtol=4e-15)
    assert calls < 200
    # the same with a correct derivative converges in a handful of steps
    ev_ok = _synthetic_ev(
        g, lambda t: ((t - 2.5) + (t - 1.5) - (t - 1.5) * (t - 2.5)) * np.exp(-t), lambda t: 0 * t
    )
    roots2, _, _, calls2 = _ls._newton_roots(ev_ok, lo, hi, g(lo), g(hi))
    np.testing.assert_allclose(roots2, [1.5, 2.5], rtol=4e-15)
    assert calls2 <= 8


def test_spectral_cache_is_per_model_and_method_and_changes_nothing():
    rng = np.random.default_rng(11)
    R, S = random_correlation(31, rng, common=0.4), random_covariance(6, rng, cond=200)
    m = MultitaskModel(R, S, 0.3)
    first = solve_wpgd(m)
    again = solve_wpgd(m)
    assert not first.certificate["spectral"]["cached"] and again.certificate["spectral"]["cached"]
    assert again.certificate["spectral"]["seconds"] == 0.0
    np.testing.assert_array_equal(first.omega, again.omega)
    assert first.risk == again.risk and first.t == again.t
    # a new, equal model starts without a cache and gives the same answer
    fresh = solve_wpgd(MultitaskModel(R, S, 0.3))
    assert not fresh.certificate["spectral"]["cached"]
    np.testing.assert_array_equal(fresh.omega, first.omega)
    # methods are cached separately: the Lanczos answer is its own computation
    lz = solve_wpgd(m, method="lanczos")
    assert (
        lz.certificate["spectral"]["method"] == "lanczos"
        and not lz.certificate["spectral"]["cached"]
    )
    assert abs(lz.risk - first.risk) <= 1e-12 * null_risk(m)
    # "auto" resolved to eigh at this size: it shares the eigh entry
    assert solve_wpgd(m, method="eigh").certificate["spectral"]["cached"]
