"""Reliability of the numerical inputs and outputs: checks relative to scale, complex input
a TypeError, every public function names a bad argument, and no silent non-finite result
(finite and correct where the quantity is finite, else a ValueError naming the argument).

The GLA engines (numerics/gla.py) and training (numerics/train.py) guard themselves and are
tested with them. See docs/reliability.md.
"""

import itertools
import math
import warnings

import numpy as np
import pytest

from numerics import gla_landscape as gl, landscape as ls, prompts as pr, risk, wpgd
from numerics._validate import check_symmetric_psd
from numerics.data import MultitaskModel, Prompts, random_covariance

R3 = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])


def _model(sigma=0.0, Sigma=None, R=None):
    return MultitaskModel(R3 if R is None else R, np.eye(2) if Sigma is None else Sigma, sigma)


# ------------------------------------------------------------ scale-relative checks


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e-11, 1.0, 1e11, 1e150, 1e300])
def test_checks_are_invariant_under_scaling(scale):
    """On the old main Σ = 1e-11·I was 'not positive definite' while an indefinite R at scale
    1e-11 was accepted (and solve_wpgd returned a negative risk)."""
    # valid at every scale: PD with condition number 1e12, a singular PSD R
    MultitaskModel(np.ones((3, 3)) * scale, np.eye(2))
    MultitaskModel(R3, np.diag([1.0, 1e-12]) * scale)
    MultitaskModel(R3 * scale, np.eye(2) / scale)
    # invalid at every scale
    with pytest.raises(ValueError, match="^R: not positive semidefinite"):
        MultitaskModel(
            np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) * scale, np.eye(2)
        )
    with pytest.raises(ValueError, match="^R: not symmetric"):
        MultitaskModel(
            np.array([[1.0, 0.5, 0.0], [0.4, 1.0, 0.0], [0.0, 0.0, 1.0]]) * scale, np.eye(2)
        )
    with pytest.raises(ValueError, match="^Sigma: must be positive definite"):
        MultitaskModel(R3, np.diag([1.0, 0.0]) * scale)
    with pytest.raises(ValueError, match="^Sigma: must be positive definite"):
        MultitaskModel(R3, np.diag([1.0, -1e-3]) * scale)


@pytest.mark.parametrize("cond", [1e2, 1e6, 1e10, 1e12, 1e13])
def test_ill_conditioned_sigma_is_valid(cond):
    rng = np.random.default_rng(int(np.log10(cond)))
    S = random_covariance(6, rng, cond=cond)
    M = check_symmetric_psd(S, "Sigma", definite=True)
    assert np.linalg.cond(M) == pytest.approx(cond, rel=1e-2)
    sol = ls.solve_wpgd(MultitaskModel(R3, np.diag([1.0, 1.0 / cond]), 0.1))
    assert math.isfinite(sol.risk) and sol.risk >= 0.1**2


def test_indefinite_R_is_invalid_at_any_scale_and_never_gives_negative_risk():
    bad = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    for e in range(-300, 301, 25):
        with pytest.raises(ValueError, match="^R"):
            MultitaskModel(bad * 10.0**e, np.eye(2))


# --------------------------------------------------------------------- complex input


@pytest.mark.parametrize(
    "call",
    [
        lambda: MultitaskModel(R3 + 1e-3j, np.eye(2)),
        lambda: MultitaskModel(R3, np.eye(2) + 0j),
        lambda: MultitaskModel(R3, np.eye(2), 0.1 + 0j),
        lambda: risk.profile_risk(_model(), np.array([1.0, 2.0]) + 1j),
        lambda: risk.wpgd_risk(_model(), np.eye(2) * (1 + 1j), np.ones(2)),
        lambda: wpgd.wpgd_predict(
            np.ones((1, 2, 2)) + 1j, np.ones((1, 2)), np.ones((1, 2)), np.eye(2), np.ones(2)
        ),
        lambda: gl.cone_qp(np.eye(2) + 0j, np.ones(2), 1),
        lambda: MultitaskModel.k_task([2, 2], np.eye(2), np.array([0.1, 0.1]) + 0j, np.eye(2)),
    ],
    ids=["R", "Sigma", "sigma", "omega", "P", "X", "Q", "rho"],
)
def test_complex_input_is_a_type_error(call):
    """On the old main complex input was silently truncated to its real part."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        with pytest.raises(TypeError, match="complex"):
            call()


# -------------------------------------------------------- every argument is named


def _bad_argument_table():
    m = _model(0.1)
    km = MultitaskModel.k_task([2, 2], np.eye(2) * 0.5 + 0.5, [0.3, 0.2], np.eye(2), 0.1)
    spec = pr.StructuredPrompt((2, 2))
    rng = np.random.default_rng(0)
    om = np.ones(2)
    X, y, x = np.ones((1, 2, 2)), np.ones((1, 2)), np.ones((1, 2))
    return [
        ("R", lambda: MultitaskModel("abc", np.eye(2))),
        ("R", lambda: MultitaskModel(np.ones((2, 3)), np.eye(2))),
        ("Sigma", lambda: MultitaskModel(R3, None)),
        ("sigma", lambda: MultitaskModel(R3, np.eye(2), "x")),
        ("sigma", lambda: MultitaskModel(R3, np.eye(2), 1e200)),  # σ² beyond float64
        ("Sigma", lambda: MultitaskModel(R3, np.diag([1.5e308, 1.5e308]))),  # its trace overflows
        ("num_prompts", lambda: m.sample(0, rng)),
        ("rng", lambda: m.sample(2, 0)),
        ("n", lambda: MultitaskModel.single_task(0, np.eye(2))),
        ("m", lambda: MultitaskModel.k_task([2, 0], np.eye(2), [0.1, 0.1], np.eye(2))),
        (
            "query_var",
            lambda: MultitaskModel.k_task([2, 2], np.eye(2), [0.1, 0.1], np.eye(2), query_var="q"),
        ),
        ("X", lambda: Prompts(np.ones((2, 2)), y, x, np.ones(1))),
        ("y_query", lambda: Prompts(X, y, x, np.ones(3))),
        ("model", lambda: risk.null_risk("m")),
        ("omega", lambda: risk.abc(m, np.ones(3))),
        ("omega", lambda: risk.phi(m, np.zeros(2))),
        ("P", lambda: risk.wpgd_risk(m, np.eye(3), om)),
        ("Omega", lambda: risk.wpgd_risk_featurewise(m, np.eye(2), np.ones(2))),
        ("omega", lambda: risk.optimal_P(m, [np.nan, 1.0])),
        ("Omega", lambda: risk.optimal_P_featurewise(m, np.zeros((2, 2)))),
        ("omega", lambda: risk.profile_risk(m, np.ones((2, 2)))),
        ("omega", lambda: risk.profile_risk_grad(m, None)),
        ("Omega", lambda: risk.profile_risk_featurewise(m, np.ones(2))),
        ("num_prompts", lambda: risk.monte_carlo_risk(m, lambda p: np.zeros(p.N), 1, rng)),
        ("P", lambda: risk.wpgd_predictor("P", om)),
        ("model", lambda: ls.solve_wpgd(None)),
        ("grid", lambda: ls.solve_wpgd(m, grid=4)),
        ("grid", lambda: ls.solve_wpgd(m, grid=8.5)),
        ("method", lambda: ls.solve_wpgd(m, method="x")),
        ("rng", lambda: ls.brute_force_wpgd(m, rng=0)),
        ("restarts", lambda: ls.brute_force_wpgd(m, restarts=-1, rng=rng)),
        ("model", lambda: ls.featurewise_diagonal_optimum("m")),
        ("model", lambda: ls.solve_wpgd_featurewise(1)),
        ("t", lambda: ls.omega_curve(m, -1.0)),
        ("t", lambda: ls.omega_curve(m, np.ones(2))),
        ("model", lambda: gl.block_reduce(m)),  # no segments
        ("Q", lambda: gl.cone_qp(np.ones((2, 3)), np.ones(2), 1)),
        ("s", lambda: gl.cone_qp(np.eye(2), np.ones(2), 2)),
        ("Q", lambda: gl.cone_kkt("Q", np.ones(2), 1, np.ones(2))),
        ("Q", lambda: gl.cone_qp_cvxpy(np.ones(3), np.ones(2), 1)),
        ("delimiters", lambda: gl.reachable_case(np.ones(2), True)),
        ("contextual", lambda: gl.reachable_case("none", "yes")),
        ("grid", lambda: gl.solve_cone(km, grid=2)),
        ("spec", lambda: gl.gate_param_search(km, "spec", rng=rng)),
        ("rng", lambda: gl.sigmoid_gate_search(km, spec, rng=None)),
        ("scale", lambda: gl.sigmoid_gate_search(km, spec, rng=rng, scale=-1.0)),
        ("rng", lambda: gl.featurewise_cone(km, rng="r")),
        ("samples", lambda: gl.brute_force_cone(km, rng=rng, samples=0)),
        ("w", lambda: gl.jordan_decomposition(np.ones((2, 2)))),
        ("w", lambda: gl.monotone_projection(np.ones(2), -np.ones(2))),
        ("m", lambda: gl.independent_closed_form([1.5, 2], [0.1, 0.1], 2, 0.1)),
        ("d", lambda: gl.independent_closed_form([1, 2], [0.1, 0.1], 0, 0.1)),
        ("sigma", lambda: gl.independent_closed_form([1, 2], [0.1, 0.1], 2, -0.1)),
        ("gating", lambda: gl.solve_gla(km, gating="x")),
        ("m", lambda: pr.StructuredPrompt(())),
        ("delimiters", lambda: pr.StructuredPrompt((2,), delimiters="x")),
        ("spec", lambda: pr.example_positions("s")),
        ("X", lambda: wpgd.wpgd_predict(np.ones((2, 2)), y, x, np.eye(2), om)),
        ("P", lambda: wpgd.wpgd_predict(X, y, x, np.eye(3), om)),
        ("omega", lambda: wpgd.wpgd_predict(X, y, x, np.eye(2), np.ones(3))),
        ("Omega", lambda: wpgd.wpgd_predict_featurewise(X, y, x, np.eye(2), om)),
        ("gate", lambda: wpgd.weights_from_log_gates(np.zeros(3), gate="x")),
        ("log_g", lambda: wpgd.weights_from_log_gates(np.ones(3))),
        ("P_list", lambda: wpgd.wpgd_multistep(X, y, x, [], [])),
        ("omega_list", lambda: wpgd.wpgd_multistep(X, y, x, [np.eye(2)], [om, om])),
    ]


def test_every_public_function_names_a_bad_argument():
    """Each bad argument: a ValueError or TypeError whose message starts with its name."""
    table = _bad_argument_table()
    for name, call in table:
        with pytest.raises((ValueError, TypeError)) as exc:
            call()
        assert str(exc.value).startswith(name), f"{name}: {type(exc.value).__name__}: {exc.value}"
    assert len(table) >= 60


# ----------------------------------------------------------------- non-finite guards


def test_solve_wpgd_huge_and_tiny_sigma_scale_exactly():
    """On the old main Σ = 1e200·I gave risk -inf. With σ = 0 the problem is homogeneous:
    risk(sΣ) = s·risk(Σ), P(sΣ) = P(Σ)/s, ω unchanged."""
    base = ls.solve_wpgd(_model())
    for s in (1e-300, 1e-200, 1e-20, 1e20, 1e200, 1e300):
        sol = ls.solve_wpgd(_model(Sigma=np.eye(2) * s))
        assert sol.risk == pytest.approx(base.risk * s, rel=1e-12), s
        np.testing.assert_allclose(sol.omega, base.omega, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(sol.P * s, base.P, rtol=1e-10)
        assert sol.certificate["risk_rel_diff"] < 1e-10
    # R scaled likewise: risk(κR) = κ·risk(R)
    for k in (1e-250, 1e250):
        assert ls.solve_wpgd(_model(R=R3 * k)).risk == pytest.approx(base.risk * k, rel=1e-12)


def test_solve_wpgd_tiny_r_is_finite_and_correct():
    """On the old main a tiny r raised ZeroDivisionError."""
    for e in (20, 100, 170, 250, 300):
        R = np.array([[1.0, 10.0**-e], [10.0**-e, 1.0]])
        sol = ls.solve_wpgd(MultitaskModel(R, np.eye(2)))
        # one example: ω = ±1, gain a²Σλ²/(bλ+c) ≈ 0 at this scale, risk = null risk = 2
        assert sol.risk == pytest.approx(2.0, rel=1e-12) and abs(sol.omega[0]) == pytest.approx(1.0)


def test_solve_wpgd_never_leaks_zero_division_or_overflow():
    """An extreme grid: r from 1e-300, σ up to 1e300, Σ from 1e-300 to 1e300. Every case
    gives a finite risk >= σ² (up to rounding) or a ValueError naming an argument."""
    finite = refused = 0
    for r_exp, sigma, s_exp in itertools.product(
        (0, -20, -170, -300),
        (0.0, 1e-300, 1e-5, 1e100, 1e150, 1e160, 1e300),
        (-300, -150, 0, 150, 300),
    ):
        r = 0.5 * 10.0**r_exp
        R = np.array([[1.0, 0.2, r], [0.2, 1.0, r], [r, r, 1.0]])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                model = MultitaskModel(R, np.diag([1.0, 0.3]) * 10.0**s_exp, sigma)
                sol = ls.solve_wpgd(model)
                # independent checks: the closed-form profile risk at the returned ω, and
                # optimality against ω = r and ω = 1
                direct = risk.profile_risk(model, sol.omega)
                others = [risk.profile_risk(model, w) for w in (model.r, np.ones(2))]
        except ValueError as exc:
            assert str(exc).split(":")[0] in ("sigma", "Sigma", "R", "model"), exc
            refused += 1
            continue
        assert (
            math.isfinite(sol.risk)
            and np.all(np.isfinite(sol.P))
            and np.all(np.isfinite(sol.omega))
        )
        assert sol.risk >= sigma**2 * (1 - 1e-12)
        assert sol.risk == pytest.approx(direct, rel=1e-9)
        assert all(sol.risk <= o * (1 + 1e-9) for o in others)
        finite += 1
    assert finite >= 80 and refused >= 40  # both branches exercised
    print(f"solve_wpgd extreme grid: {finite} finite, {refused} refused")


@pytest.mark.parametrize("s", [1e-300, 1e-160, 1e-20, 1.0, 1e20, 1e160, 1e300])
def test_scale_invariant_quantities_are_computed_scale_invariantly(s):
    """On the old main profile_risk(model, 1e-160·ω) was -inf."""
    m = _model(0.1)
    w = np.array([1.0, -0.7])
    assert risk.profile_risk(m, s * w) == pytest.approx(risk.profile_risk(m, w), rel=1e-13)
    assert risk.phi(m, s * w) == pytest.approx(risk.phi(m, w), rel=1e-13)
    L, g = risk.profile_risk_grad(m, w)
    Ls, gs = risk.profile_risk_grad(m, s * w)
    assert Ls == pytest.approx(L, rel=1e-13)
    np.testing.assert_allclose(gs * s, g, rtol=1e-12)
    Om = np.array([[1.0, 0.5], [-0.2, 0.8]])
    assert risk.profile_risk_featurewise(m, s * Om) == pytest.approx(
        risk.profile_risk_featurewise(m, Om), rel=1e-12
    )


def test_profile_risk_with_huge_sigma_matches_the_rescaled_problem():
    w = np.array([1.0, 0.4])
    for s in (1e-200, 1e200):
        assert risk.profile_risk(_model(Sigma=np.eye(2) * s), w) == pytest.approx(
            s * risk.profile_risk(_model(), w), rel=1e-13
        )


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: risk.wpgd_risk(_model(), np.eye(2) * 1e300, np.ones(2)), "model, P, omega"),
        (
            lambda: risk.wpgd_risk_featurewise(_model(), np.eye(2) * 1e300, np.ones((2, 2))),
            "model, P, Omega",
        ),
        (
            lambda: risk.optimal_P(_model(), np.array([1e-300, 0.0]) * 1e-20),
            None,
        ),  # finite: 0 or refused
        (
            lambda: wpgd.wpgd_predict(
                np.ones((1, 2, 2)) * 1e200,
                np.ones((1, 2)),
                np.ones((1, 2)) * 1e200,
                np.eye(2),
                np.ones(2),
            ),
            "X, y, x, P, omega",
        ),
        (
            lambda: wpgd.wpgd_multistep(
                np.ones((1, 2, 2)) * 1e200,
                np.ones((1, 2)),
                np.ones((1, 2)) * 1e200,
                [np.eye(2)],
                [np.ones(2)],
            ),
            "X, y, x, P_list, omega_list",
        ),
    ],
    ids=["wpgd_risk", "wpgd_risk_featurewise", "optimal_P", "wpgd_predict", "wpgd_multistep"],
)
def test_no_silent_non_finite_output(call, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            out = call()
        except ValueError as exc:
            assert name is not None and str(exc).startswith(name), exc
            return
    assert np.all(np.isfinite(out))


def test_symmetrisation_does_not_overflow_near_the_float64_maximum():
    M = np.array([[1.7e308, -1.6e308], [-1.6e308, 1.7e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Ms = check_symmetric_psd(M, "M")
    assert np.array_equal(Ms, M)
