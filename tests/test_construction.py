"""The GLA construction (numerics/stack.py) against the WPGD predictors, and the SymPy proofs."""

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st
from shared import TOL, gate_values

from numerics import stack, wpgd
from numerics._validate import gates_to_log
from numerics.measures import rel_rms as _rel
from proofs_check.instances import prompt as _prompt
from theory import construction as th


def test_prompt_tokens_layout():
    rng = np.random.default_rng(0)
    X, y, x = _prompt(rng, 2, 3, 2)
    Z = stack.prompt_tokens(X, y, x)
    assert Z.shape == (2, 4, 3)
    np.testing.assert_array_equal(Z[:, :3, :2], X)
    np.testing.assert_array_equal(Z[:, :3, 2], y)
    np.testing.assert_array_equal(Z[:, 3, :2], x)
    assert np.all(Z[:, 3, 2] == 0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(1, 4), st.data())
def test_one_scalar_layer_is_one_wpgd_step(n, d, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    N = 3
    X, y, x = _prompt(rng, N, n, d)
    P_q, P_k = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    g = np.array(
        data.draw(st.lists(gate_values, min_size=N * (n + 1), max_size=N * (n + 1)))
    ).reshape(N, n + 1)
    lg = gates_to_log(g)
    # reference: explicit products of the gates (not the log-space helper)
    om = np.array([[np.prod(g[b, i + 1 :]) for i in range(n)] for b in range(N)])
    ref = wpgd.wpgd_predict(X, y, x, P_q.T @ P_k, om)
    layer = stack.construct_wpgd_layer(P_q, P_k, +1)
    for eng in stack.ENGINES:
        val = stack.stack_predict(X, y, x, [layer], [lg], engine=eng, readout="output")
        assert _rel(val, ref) < TOL or np.linalg.norm(val - ref) < 1e-13, eng
    # the residual readout of the sign -1 layer gives the same prediction
    res = stack.stack_predict(
        X, y, x, stack.construct_wpgd_stack([P_q.T @ P_k]), [lg], engine="chunked"
    )
    assert _rel(res, ref) < TOL or np.linalg.norm(res - ref) < 1e-13


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_one_key_layer_is_featurewise_in_key_basis(n, d, seed):
    rng = np.random.default_rng(seed)
    N = 3
    X, y, x = _prompt(rng, N, n, d)
    P_q, P_k = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    g = rng.random((N, n + 1, d + 1))
    g[rng.random(g.shape) < 0.1] = 0.0
    g[rng.random(g.shape) < 0.1] = 1.0
    lg = gates_to_log(g)
    Om = np.array([[np.prod(g[b, i + 1 :, :d], axis=0) for i in range(n)] for b in range(N)])
    ref = np.array(
        [
            x[b] @ P_q.T @ sum(y[b, i] * Om[b, i] * (P_k @ X[b, i]) for i in range(n))
            for b in range(N)
        ]
    )
    for eng in stack.ENGINES:
        val = stack.stack_predict(
            X,
            y,
            x,
            [stack.construct_wpgd_layer(P_q, P_k, +1, gate="key")],
            [lg],
            engine=eng,
            readout="output",
        )
        assert _rel(val, ref) < TOL, eng
    # P_k = I: the feature-wise form as first posed, with P = P_q^T
    val = stack.stack_predict(
        X,
        y,
        x,
        [stack.construct_wpgd_layer(P_q, None, +1, gate="key")],
        [lg],
        engine="recurrent",
        readout="output",
    )
    assert _rel(val, wpgd.wpgd_predict_featurewise(X, y, x, P_q.T, Om)) < TOL


def test_key_layer_theory_form_fails_for_nondiagonal_P_k():
    rng = np.random.default_rng(5)
    X, y, x = _prompt(rng, 20, 6, 3)
    P_q, P_k = np.eye(3), np.eye(3) + np.triu(np.ones((3, 3)), 1)
    lg = np.log(rng.uniform(0.1, 1.0, (20, 7, 4)))
    val = stack.stack_predict(
        X, y, x, [stack.construct_wpgd_layer(P_q, P_k, +1, gate="key")], [lg], readout="output"
    )
    Om = wpgd.weights_from_log_gates(lg[..., :3], gate="key")
    assert _rel(val, wpgd.wpgd_predict_featurewise(X, y, x, P_q.T @ P_k, Om)) > 1e-3


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_residual_stack_is_causal_wpgd(n, d, L, seed):
    rng = np.random.default_rng(seed)
    N = 4
    X, y, x = _prompt(rng, N, n, d)
    Ps = [rng.standard_normal((d, d)) / n for _ in range(L)]
    gs = [rng.random((N, n + 1)) for _ in range(L)]
    for g in gs:
        g[rng.random(g.shape) < 0.1] = 0.0
        g[rng.random(g.shape) < 0.1] = 1.0 - 1e-12
    lgs = [gates_to_log(g) for g in gs]
    ref = wpgd.causal_wpgd(X, y, x, Ps, lgs)
    for eng in stack.ENGINES:
        val = stack.stack_predict(X, y, x, stack.construct_wpgd_stack(Ps), lgs, engine=eng)
        assert _rel(val, ref) < TOL, eng
    # every token's label slot carries its own iterate: y_i^{(L)} = y_i - x_i^T w^{(i)}_L
    _, W = wpgd.causal_wpgd(X, y, x, Ps, lgs, return_iterates=True)
    ZL = stack.gla_stack(
        stack.prompt_tokens(X, y, x), stack.construct_wpgd_stack(Ps), lgs, engine="recurrent"
    )
    Xt = np.concatenate([X, x[:, None]], 1)
    yt = np.concatenate([y, np.zeros((N, 1))], 1)
    np.testing.assert_allclose(ZL[..., :d], Xt, rtol=0, atol=0)
    np.testing.assert_allclose(
        ZL[..., d], yt - np.einsum("btd,btd->bt", Xt, W[:, L]), rtol=1e-9, atol=1e-12
    )


def test_residual_stack_key_gates_is_featurewise_causal_wpgd():
    rng = np.random.default_rng(11)
    N, n, d, L = 5, 7, 3, 3
    X, y, x = _prompt(rng, N, n, d)
    P_qs = [rng.standard_normal((d, d)) / n for _ in range(L)]
    P_ks = [np.diag(rng.uniform(0.5, 1.5, d)) for _ in range(L)]
    lgs = [np.log(rng.uniform(0.0, 1.0, (N, n + 1, d + 1))) for _ in range(L)]
    ref = wpgd.causal_wpgd(
        X, y, x, [a.T @ b for a, b in zip(P_qs, P_ks)], [g[..., :d] for g in lgs], gate="key"
    )
    val = stack.stack_predict(
        X, y, x, stack.construct_wpgd_stack(list(zip(P_qs, P_ks)), gate="key"), lgs
    )
    assert _rel(val, ref) < TOL


def test_L1_equals_ordinary_and_L2_differs():
    rng = np.random.default_rng(3)
    N, n, d = 50, 10, 3
    X, y, x = _prompt(rng, N, n, d)
    Ps = [rng.standard_normal((d, d)) / n for _ in range(2)]
    lgs = [np.log(rng.uniform(0.5, 1.0, (N, n + 1))) for _ in range(2)]
    oms = [wpgd.weights_from_log_gates(g) for g in lgs]
    s1 = stack.stack_predict(X, y, x, stack.construct_wpgd_stack(Ps[:1]), lgs[:1])
    assert _rel(s1, wpgd.wpgd_multistep(X, y, x, Ps[:1], oms[:1])) < TOL
    s2 = stack.stack_predict(X, y, x, stack.construct_wpgd_stack(Ps), lgs)
    # a genuinely different algorithm: the gap is O(1) relative, far above float noise
    assert _rel(s2, wpgd.wpgd_multistep(X, y, x, Ps, oms)) > 1e-3


def test_stack_bad_inputs():
    rng = np.random.default_rng(0)
    X, y, x = _prompt(rng, 2, 3, 2)
    layer = stack.construct_wpgd_layer(np.eye(2))
    lg = np.zeros((2, 4))
    cases = [
        (lambda: stack.GLALayer(np.eye(3), np.eye(2), np.eye(3)), "W_k"),
        (lambda: stack.GLALayer(np.eye(3), np.eye(3), np.eye(3), gate="value"), "gate"),
        (lambda: stack.construct_wpgd_layer(np.eye(2), np.eye(3)), "P_k"),
        (lambda: stack.construct_wpgd_layer(np.eye(2), sign=2), "sign"),
        (lambda: stack.construct_wpgd_stack([np.ones((2, 3))]), "P_list[0]"),
        (lambda: stack.stack_predict(X, y, x, [layer], [lg], engine="fast"), "engine"),
        (lambda: stack.stack_predict(X, y, x, [layer], [lg], readout="query"), "readout"),
        (
            lambda: stack.stack_predict(X, y, x, [layer, layer], [lg, lg], readout="output"),
            "readout",
        ),
        (lambda: stack.stack_predict(X, y, x, [layer], [lg, lg]), "log_g_list"),
        (lambda: stack.stack_predict(X, y, x, [layer], [np.full((2, 4), 0.3)]), "log_g"),
        (lambda: stack.stack_predict(X, y, x, [layer], [np.zeros((2, 3))]), "log_g"),
        (lambda: stack.prompt_tokens(X, y, x[:, :1]), "x"),
        (lambda: stack.gla_stack(np.zeros((2, 4, 4)), [layer], [lg]), "log_g_list[0]"),
    ]
    for f, name in cases:
        with pytest.raises(ValueError) as exc:
            f()
        assert str(exc.value).startswith(name), (name, str(exc.value))


def test_same_seed_same_result():
    def run(seed):
        rng = np.random.default_rng(seed)
        X, y, x = _prompt(rng, 3, 5, 2)
        Ps = [rng.standard_normal((2, 2)) for _ in range(2)]
        lgs = [np.log(rng.uniform(0.1, 1, (3, 6))) for _ in range(2)]
        return stack.stack_predict(X, y, x, stack.construct_wpgd_stack(Ps), lgs)

    np.testing.assert_array_equal(run(7), run(7))


# ----------------------------------------------------------------------------- SymPy proofs
def test_sympy_c1_c2_small_and_can_fail():
    assert th.prove_c1(cases=((2, 1), (2, 2))).verified
    res = th.prove_c2(cases=((2, 2),))
    assert res.verified and res.data["counterexample"]["nonzero"]
    # the check is able to fail: the wrong preconditioner P_k^T P_q leaves a non-zero residual
    xs, ys, xq = th.prompt_symbols(2, 2)
    P_q, P_k = th._mat("a", 2), th._mat("b", 2)
    g = th.scalar_gates(3)
    o = th.gla_symbolic(th.tokens(xs, ys, xq), *th.block_weights(P_q, P_k, 1), g, "scalar")
    omega = [g[1] * g[2], g[2]]
    assert sp.expand(o[2][2, 0] - th.wpgd_one_step_symbolic(xs, ys, xq, P_q.T * P_k, omega)) == 0
    assert sp.expand(o[2][2, 0] - th.wpgd_one_step_symbolic(xs, ys, xq, P_k.T * P_q, omega)) != 0
    # ... and so does dropping the query's gate from the weights
    assert (
        sp.expand(o[2][2, 0] - th.wpgd_one_step_symbolic(xs, ys, xq, P_q.T * P_k, [g[1], 1])) != 0
    )


def test_sympy_c3_and_state_formula():
    res = th.prove_c3(cases=((2, 2, 1), (3, 1, 1)))
    assert (
        res.verified
        and res.parts["L = 1 equals ordinary WPGD"]
        and res.parts["induction step (general n)"]
    )
    assert (
        res.data["counterexample"]["differs"]
        and res.data["counterexample"]["linear_attention_difference_is_self_term"]
    )
    assert th.prove_state_formula_induction().verified
    assert th.prove_state_formula_small(T=3, D=2).verified


def test_theory_does_not_import_numerics():
    code = "import sys, theory.construction; assert not any(m.startswith('numerics') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
