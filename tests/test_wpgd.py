"""numerics/wpgd.py against brute-force loops written independently here."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from shared import TOL, gate_values

from numerics import wpgd
from numerics._validate import gates_to_log
from numerics.measures import rel_rms as _rel
from proofs_check.instances import prompt


def _prompt(seed, N, n, d):
    rng = np.random.default_rng(seed)
    return (*prompt(rng, N, n, d), rng)


# ----------------------------------------------------------------------------- weights
@settings(max_examples=60, deadline=None)
@given(st.lists(gate_values, min_size=1, max_size=12))
# Regression (found by hypothesis): a product ~1e-267 has |log ω| ~ 614, so exp of a log-space
# sum carries ~614 ulps of relative error; the original 12-ulp tolerance was wrong, not the code.
@example([0.0, 0.5, 3.0020551534389084e-267])
# Regression (found by the HYPOTHESIS_PROFILE=stress run): products in the subnormal range
# (~5e-314) carry an absolute error of 1 subnormal ulp, which no relative tolerance covers.
@example([0.0, 0.5, 0.5, 2.2250738585e-313])
def test_weights_from_log_gates_equal_explicit_products(gates):
    g = np.array(gates)
    om = wpgd.weights_from_log_gates(gates_to_log(g))
    n = len(g) - 1
    brute = np.array([math.prod(gates[i + 1 :]) for i in range(n)])
    assert om.shape == (n,)
    # Entrywise: the product loses <= n ulps, and exp(sum of logs) has relative error
    # ~ eps * |log ω| (the absolute error of the sum); allow 4x that.
    eps = np.finfo(float).eps
    with np.errstate(divide="ignore"):
        logb = np.where(brute > 0, np.abs(np.log(np.where(brute > 0, brute, 1.0))), 0.0)
    tol = 4 * eps * (n + 1 + logb) * brute + 4 * (n + 1) * np.finfo(float).smallest_subnormal
    assert np.all(np.abs(om - brute) <= tol), (om, brute)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_key_weights_are_per_feature_scalar_weights(n, d, seed):
    rng = np.random.default_rng(seed)
    lg = -rng.exponential(1.0, (3, n + 1, d))
    lg[rng.random(lg.shape) < 0.1] = -np.inf
    Om = wpgd.weights_from_log_gates(lg, gate="key")
    assert Om.shape == (3, n, d)
    for a in range(d):
        np.testing.assert_allclose(
            Om[..., a], wpgd.weights_from_log_gates(lg[..., a]), rtol=1e-14, atol=0
        )


def test_weights_query_gate_multiplies_every_weight_and_gate_zero_gives_no_nan():
    lg = np.log(np.array([0.5, 0.25, 0.8]))
    np.testing.assert_allclose(wpgd.weights_from_log_gates(lg), [0.25 * 0.8, 0.8], rtol=1e-15)
    lg0 = np.array([0.0, -np.inf, 0.0, 0.0])
    np.testing.assert_array_equal(wpgd.weights_from_log_gates(lg0), [0.0, 1.0, 1.0])


def test_weights_long_prompt_no_cancellation():
    # 10^5 tokens of g = 1 - 1e-9: the exact weight of the first token is exp(-1e-4 * (1 - 1/T))
    T = 100_001
    lg = np.full(T, np.log1p(-1e-9))
    om = wpgd.weights_from_log_gates(lg)
    assert abs(om[0] / math.exp((T - 1) * math.log1p(-1e-9)) - 1) < 1e-10


# ----------------------------------------------------------------------------- predictors
def _brute_one_step(X, y, x, P, omega):
    N, n, _ = X.shape
    out = np.zeros(N)
    for b in range(N):
        u = sum(omega[b, i] * y[b, i] * X[b, i] for i in range(n))
        out[b] = x[b] @ P @ u
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 10), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_wpgd_predict_matches_loop(n, d, seed):
    X, y, x, rng = _prompt(seed, 4, n, d)
    P = rng.standard_normal((d, d))
    om = rng.standard_normal((4, n))
    assert _rel(wpgd.wpgd_predict(X, y, x, P, om), _brute_one_step(X, y, x, P, om)) < TOL
    # shared weights (n,) broadcast over prompts
    assert (
        _rel(
            wpgd.wpgd_predict(X, y, x, P, om[0]),
            _brute_one_step(X, y, x, P, np.tile(om[0], (4, 1))),
        )
        < TOL
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 10), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_featurewise_matches_loop_and_reduces_to_scalar(n, d, seed):
    X, y, x, rng = _prompt(seed, 3, n, d)
    P = rng.standard_normal((d, d))
    Om = rng.random((3, n, d))
    brute = np.array(
        [x[b] @ P @ sum(y[b, i] * Om[b, i] * X[b, i] for i in range(n)) for b in range(3)]
    )
    assert _rel(wpgd.wpgd_predict_featurewise(X, y, x, P, Om), brute) < TOL
    om = rng.random(n)
    assert (
        _rel(
            wpgd.wpgd_predict_featurewise(X, y, x, P, np.repeat(om[:, None], d, 1)),
            wpgd.wpgd_predict(X, y, x, P, om),
        )
        < TOL
    )


def _brute_causal(X, y, x, P_list, gates_list):
    """Causal WPGD from its definition with explicit python products (token n+1 = query, label 0)."""
    N, n, d = X.shape
    out = np.zeros(N)
    for b in range(N):
        Xt = list(X[b]) + [x[b]]
        Yt = list(y[b]) + [0.0]
        w = [np.zeros(d) for _ in range(n + 1)]
        for P, g in zip(P_list, gates_list):
            r = [Yt[j] - Xt[j] @ w[j] for j in range(n + 1)]
            w = [
                w[i] + P @ sum(math.prod(g[b, j + 1 : i + 1]) * Xt[j] * r[j] for j in range(i + 1))
                for i in range(n + 1)
            ]
        out[b] = x[b] @ w[n]
    return out


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_causal_wpgd_matches_definition(n, d, L, seed):
    X, y, x, rng = _prompt(seed, 3, n, d)
    Ps = [rng.standard_normal((d, d)) / n for _ in range(L)]
    gs = [rng.random((3, n + 1)) for _ in range(L)]
    for g in gs:
        g[rng.random(g.shape) < 0.15] = 0.0
        g[rng.random(g.shape) < 0.15] = 1.0
    val = wpgd.causal_wpgd(X, y, x, Ps, [gates_to_log(g) for g in gs])
    assert _rel(val, _brute_causal(X, y, x, Ps, gs)) < TOL


def test_causal_wpgd_L1_is_one_wpgd_step_and_multistep_L1_too():
    X, y, x, rng = _prompt(1, 8, 7, 3)
    P = rng.standard_normal((3, 3))
    lg = -rng.exponential(0.5, (8, 8))
    om = wpgd.weights_from_log_gates(lg)
    one = wpgd.wpgd_predict(X, y, x, P, om)
    assert _rel(wpgd.causal_wpgd(X, y, x, [P], [lg]), one) < TOL
    assert _rel(wpgd.wpgd_multistep(X, y, x, [P], [om]), one) < TOL


def test_causal_iterates_and_query_self_term():
    X, y, x, rng = _prompt(2, 5, 4, 2)
    Ps = [rng.standard_normal((2, 2)) / 4 for _ in range(2)]
    lgs = [np.zeros((5, 5))] * 2  # linear attention
    yhat, W = wpgd.causal_wpgd(X, y, x, Ps, lgs, return_iterates=True)
    assert W.shape == (5, 3, 5, 2) and np.all(W[:, 0] == 0)
    # with g = 1 the example iterates at layer 1 see the prefix; the query sees everything
    w_q1 = np.einsum("de,bje,bj->bd", Ps[0], X, y)
    np.testing.assert_allclose(W[:, 1, 4], w_q1, rtol=1e-12)
    # layer 2 of the query: examples' residuals plus the self-term -P x x^T w
    r = y - np.einsum("bjd,bjd->bj", X, W[:, 1, :4])
    u = np.einsum("bjd,bj->bd", X, r) - x * np.einsum("bd,bd->b", x, w_q1)[:, None]
    np.testing.assert_allclose(W[:, 2, 4], w_q1 + u @ Ps[1].T, rtol=1e-12)
    np.testing.assert_allclose(yhat, np.einsum("bd,bd->b", x, W[:, 2, 4]), rtol=1e-12)


def test_wpgd_multistep_matches_gd_loop():
    X, y, x, rng = _prompt(3, 4, 6, 3)
    Ps = [rng.standard_normal((3, 3)) / 6 for _ in range(3)]
    oms = [rng.random(6) for _ in range(3)]
    ref = []
    for b in range(4):
        w = np.zeros(3)
        for P, om in zip(Ps, oms):
            w = w + P @ sum(om[j] * X[b, j] * (y[b, j] - X[b, j] @ w) for j in range(6))
        ref.append(x[b] @ w)
    assert _rel(wpgd.wpgd_multistep(X, y, x, Ps, oms), ref) < TOL


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_value_error_naming_argument():
    X, y, x, _ = _prompt(0, 2, 3, 2)
    P = np.eye(2)
    cases = [
        (lambda: wpgd.wpgd_predict(X, y[:, :2], x, P, np.ones(3)), "y"),
        (lambda: wpgd.wpgd_predict(X, y, x[:, :1], P, np.ones(3)), "x"),
        (lambda: wpgd.wpgd_predict(X, y, x, np.eye(3), np.ones(3)), "P"),
        (lambda: wpgd.wpgd_predict(X, y, x, P, np.ones(4)), "omega"),
        (lambda: wpgd.wpgd_predict(X * np.nan, y, x, P, np.ones(3)), "X"),
        (lambda: wpgd.wpgd_predict_featurewise(X, y, x, P, np.ones((3, 3))), "Omega"),
        (lambda: wpgd.weights_from_log_gates(np.array([0.0, 0.1])), "log_g"),
        (lambda: wpgd.weights_from_log_gates(np.array([0.0, np.nan])), "log_g"),
        (lambda: wpgd.weights_from_log_gates(np.zeros(3), gate="value"), "gate"),
        (lambda: wpgd.weights_from_log_gates(np.zeros(3), gate="key"), "log_g"),
        (lambda: wpgd.causal_wpgd(X, y, x, [P], [np.zeros(4)] * 2), "log_g_list"),
        (lambda: wpgd.causal_wpgd(X, y, x, [P], [np.zeros(5)]), "log_g_list[0]"),
        (lambda: wpgd.causal_wpgd(X, y, x, [P], [np.full(4, 0.5)]), "log_g_list[0]"),
        (lambda: wpgd.causal_wpgd(X, y, x, [], []), "P_list"),
        (lambda: wpgd.wpgd_multistep(X, y, x, [P, P], [np.ones(3)]), "omega_list"),
        (lambda: wpgd.wpgd_multistep(X, y, x, [P], [np.ones(2)]), "omega_list[0]"),
    ]
    for f, name in cases:
        with pytest.raises(ValueError) as exc:
            f()
        assert str(exc.value).startswith(name), (name, str(exc.value))
