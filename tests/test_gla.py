"""Tests of the GLA engines in the ``numerics.gla`` package.

Every engine is compared with an *independent* computation: the others (loop,
chunkwise, dense parallel, last-token read-out), a naive O(T^2) double loop over
explicit products of gates, hand-computed tiny cases and closed forms (linear
attention).  Tolerance: relative RMS <= 1e-10 (docs/conventions.md); the measured
differences are ~1e-14, the margin covers rounding accumulated over 1e4 tokens.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import numerics.gla.backward as backward_mod
import numerics.gla.chunked as chunked_mod
import numerics.gla.parallel as parallel_mod
from numerics import measures
from numerics.gla import (
    KEY_FAST_SPAN,
    ChunkTuning,
    decay_matrix,
    default_chunk_size,
    gla_chunked,
    gla_chunked_vjp,
    gla_final,
    gla_parallel,
    gla_recurrent,
    gla_recurrent_backward,
)

TOL = 1e-10


def rel_rms(a, b) -> float:
    """:func:`numerics.measures.rel_rms` of two arrays that must have the same shape."""
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    return measures.rel_rms(a, b)


def make_log_gates(rng, shape, regime: str):
    """Log-gates in a given regime: 'mixed' mixes every hard case below."""
    if regime == "uniform50":  # gates from 1 down to e^-50
        lg = -50.0 * rng.random(shape)
    elif regime == "near1":  # gates within 1e-8 of 1
        lg = -1e-8 * rng.random(shape)
    elif regime == "near0":  # gates e^-30 .. e^-50 (near 0)
        lg = -30.0 - 20.0 * rng.random(shape)
    elif regime == "zero":  # linear attention
        lg = np.zeros(shape)
    elif regime == "mixed":
        lg = -rng.exponential(2.0, shape)
        u = rng.random(shape)
        lg[u < 0.25] = 0.0
        lg[(u >= 0.25) & (u < 0.35)] = -np.inf
        lg[(u >= 0.35) & (u < 0.45)] = -50.0
        lg[(u >= 0.45) & (u < 0.55)] = -1e-12
    else:
        raise AssertionError(regime)
    return lg


def make_inputs(seed, B, T, Dk, Dv, gate, regime="mixed", init=False):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, T, Dk))
    k = rng.standard_normal((B, T, Dk))
    v = rng.standard_normal((B, T, Dv))
    lg = make_log_gates(rng, (B, T) if gate == "scalar" else (B, T, Dk), regime)
    S0 = rng.standard_normal((B, Dv, Dk)) if init else None
    return q, k, v, lg, S0


def naive_gla(q, k, v, log_g, gate, scale=1.0, S0=None):
    """o_t = scale Σ_{s<=t} v_s (k_s ⊙ Π_{r=s+1}^{t} γ_r)·q_t (+ decayed S0 term), with
    the gate products taken explicitly by np.prod: no recurrence, no cumulative sums."""
    B, T, Dk = q.shape
    Dv = v.shape[2]
    g = np.exp(log_g)
    if gate == "scalar":
        g = np.repeat(g[:, :, None], Dk, axis=2)
    o = np.zeros((B, T, Dv))
    for b in range(B):
        for t in range(T):
            for s in range(t + 1):
                dec = np.prod(g[b, s + 1 : t + 1], axis=0)  # (Dk,), ones if empty
                o[b, t] += v[b, s] * np.dot(k[b, s] * dec, q[b, t])
            if S0 is not None:
                dec0 = np.prod(g[b, : t + 1], axis=0)
                o[b, t] += S0[b] @ (dec0 * q[b, t])
    return scale * o


def knobs(tile_bytes=None, serial_mnk=None) -> ChunkTuning:
    """A tuning with a shrunk tile budget / the loop scan forced, to cover every code path."""
    d = ChunkTuning()
    return ChunkTuning(
        tile_bytes=d.tile_bytes if tile_bytes is None else tile_bytes,
        blas_serial_mnk=d.blas_serial_mnk if serial_mnk is None else serial_mnk,
    )


# ---------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------

ENGINES_FULL = {
    "recurrent": lambda *a, **kw: gla_recurrent(*a, **kw),
    "chunked": lambda *a, **kw: gla_chunked(*a, **kw),
    "chunked_c1": lambda *a, **kw: gla_chunked(*a, chunk_size=1, **kw),
    "parallel": lambda *a, **kw: gla_parallel(*a, **kw),
}


@pytest.mark.parametrize("engine", sorted(ENGINES_FULL))
def test_hand_scalar(engine):
    # q=[1,2], k=[3,4], v=[5,6], g=[1/2,1/4], scale 2:
    # S1 = 5*3 = 15, o1 = 2*15*1 = 30; S2 = 15/4 + 6*4 = 27.75, o2 = 2*27.75*2 = 111.
    q = np.array([[[1.0], [2.0]]])
    k = np.array([[[3.0], [4.0]]])
    v = np.array([[[5.0], [6.0]]])
    lg = np.log(np.array([[0.5, 0.25]]))
    o = ENGINES_FULL[engine](q, k, v, lg, gate="scalar", scale=2.0)
    np.testing.assert_allclose(o[0, :, 0], [30.0, 111.0], rtol=1e-14)
    assert gla_final(q, k, v, lg, scale=2.0)[0, 0] == pytest.approx(111.0, rel=1e-14)


@pytest.mark.parametrize("engine", sorted(ENGINES_FULL))
def test_hand_key_with_initial_state(engine):
    # Dk=2, Dv=1, S0 = [[1, 1]], γ1 = (1/2, 1/2), γ2 = (1/2, 1/10), k1=(1,2), k2=(3,4),
    # v=(1,2), q1=(1,0), q2=(1,1):
    # S1 = [1/2, 1/2] + [1, 2] = [1.5, 2.5];   o1 = 1.5
    # S2 = [0.75, 0.25] + 2*[3, 4] = [6.75, 8.25];   o2 = 15.0
    q = np.array([[[1.0, 0.0], [1.0, 1.0]]])
    k = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    v = np.array([[[1.0], [2.0]]])
    lg = np.log(np.array([[[0.5, 0.5], [0.5, 0.1]]]))
    S0 = np.array([[[1.0, 1.0]]])
    o = ENGINES_FULL[engine](q, k, v, lg, gate="key", initial_state=S0)
    np.testing.assert_allclose(o[0, :, 0], [1.5, 15.0], rtol=1e-14)
    assert gla_final(q, k, v, lg, gate="key", initial_state=S0)[0, 0] == pytest.approx(
        15.0, rel=1e-14
    )
    _, S = gla_chunked(q, k, v, lg, gate="key", initial_state=S0, return_state=True)
    np.testing.assert_allclose(S[0], [[6.75, 8.25]], rtol=1e-14)


def test_gate_zero_resets_state():
    # g_2 = 0 (log -inf): o_2 only sees token 2 itself, o_3 = (g_3 S_2 + v_3 k_3^T) q_3.
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, 3, 2)) for _ in range(3))
    lg = np.array([[-0.3, -np.inf, -0.7]])
    S2 = np.outer(v[0, 1], k[0, 1])
    expect = np.stack(
        [
            np.outer(v[0, 0], k[0, 0]) @ q[0, 0],
            S2 @ q[0, 1],
            (np.exp(-0.7) * S2 + np.outer(v[0, 2], k[0, 2])) @ q[0, 2],
        ]
    )
    for f in (gla_recurrent, gla_chunked, gla_parallel):
        np.testing.assert_allclose(f(q, k, v, lg)[0], expect, rtol=1e-13)


# ---------------------------------------------------------------------------
# All engines agree (hypothesis)
# ---------------------------------------------------------------------------

REGIMES = ["mixed", "uniform50", "near1", "near0", "zero"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    T=st.integers(1, 40),
    Dk=st.integers(1, 5),
    Dv=st.integers(1, 5),
    gate=st.sampled_from(["scalar", "key"]),
    regime=st.sampled_from(REGIMES),
    init=st.booleans(),
    chunk=st.one_of(st.none(), st.integers(1, 17)),
    tile_bytes=st.sampled_from([None, 1, 4096]),
    loop_scan=st.booleans(),
    scale=st.sampled_from([1.0, 0.5, -3.0]),
)
def test_engines_agree(seed, B, T, Dk, Dv, gate, regime, init, chunk, tile_bytes, loop_scan, scale):
    q, k, v, lg, S0 = make_inputs(seed, B, T, Dk, Dv, gate, regime, init)
    kw = dict(gate=gate, scale=scale, initial_state=S0)
    o_ref = naive_gla(q, k, v, lg, gate, scale, S0)
    o_rec, S_rec = gla_recurrent(q, k, v, lg, return_state=True, **kw)
    tun = knobs(tile_bytes, 0 if loop_scan else None)
    o_ch, S_ch = gla_chunked(q, k, v, lg, return_state=True, chunk_size=chunk, tuning=tun, **kw)
    o_ch2 = gla_chunked(q, k, v, lg, chunk_size=chunk, tuning=tun, **kw)
    o_par = gla_parallel(q, k, v, lg, **kw)
    o_fin = gla_final(q, k, v, lg, **kw)
    assert np.all(np.isfinite(o_ch)) and np.all(np.isfinite(S_ch))
    assert rel_rms(o_rec, o_ref) <= TOL
    assert rel_rms(o_ch, o_ref) <= TOL
    assert rel_rms(o_ch2, o_ch) <= TOL
    assert rel_rms(o_par, o_ref) <= TOL
    assert rel_rms(o_fin, o_ref[:, -1]) <= TOL
    assert rel_rms(S_ch, S_rec) <= TOL


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    gate=st.sampled_from(["scalar", "key"]),
    chunk=st.integers(5, 40),
    regime=st.sampled_from(["mixed", "near1", "uniform50"]),
)
def test_chunked_larger_dims_both_scan_paths(seed, gate, chunk, regime):
    """Dk=Dv=24, T=300 (chunks not dividing T), matmul scan and loop scan, several tiles."""
    q, k, v, lg, S0 = make_inputs(seed, 2, 300, 24, 24, gate, regime, init=True)
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate=gate, initial_state=S0, return_state=True)
    for kn in ({}, {"serial_mnk": 0}, {"tile_bytes": 20000}):
        o, S = gla_chunked(
            q,
            k,
            v,
            lg,
            gate=gate,
            initial_state=S0,
            return_state=True,
            chunk_size=chunk,
            tuning=knobs(**kn),
        )
        assert rel_rms(o, o_rec) <= TOL, kn
        assert rel_rms(S, S_rec) <= TOL, kn


def test_long_sequence_10k():
    """T = 10_000 with -50, 0, -inf and ordinary log-gates: no overflow, no NaN, agreement."""
    t0 = time.perf_counter()
    for gate in ("scalar", "key"):
        q, k, v, lg, S0 = make_inputs(11, 2, 10_000, 3, 2, gate, "mixed", init=True)
        o_rec, S_rec = gla_recurrent(q, k, v, lg, gate=gate, initial_state=S0, return_state=True)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            o_ch, S_ch = gla_chunked(q, k, v, lg, gate=gate, initial_state=S0, return_state=True)
            o_fin = gla_final(q, k, v, lg, gate=gate, initial_state=S0)
        assert rel_rms(o_ch, o_rec) <= TOL
        assert rel_rms(S_ch, S_rec) <= TOL
        assert rel_rms(o_fin, o_rec[:, -1]) <= TOL
    assert time.perf_counter() - t0 < 30  # documents the cost; a hang would be a regression


def test_long_memory_near_one_gates():
    """Gates 1 - 1e-9 over 20_000 tokens: the decay exp(-2e-5) must be resolved, i.e. the
    engines must not difference huge prefix sums (|c_T| here is only 2e-5, but the
    -50 spikes in the second half make |c_t| ~ 1e4 for a prefix-sum engine)."""
    rng = np.random.default_rng(5)
    B, T, D = 1, 20_000, 2
    q, k, v = (rng.standard_normal((B, T, D)) for _ in range(3))
    lg = np.full((B, T), -1e-9)
    lg[:, T // 2 :: 97] = -50.0
    o_rec = gla_recurrent(q, k, v, lg)
    assert rel_rms(gla_chunked(q, k, v, lg), o_rec) <= TOL
    assert rel_rms(gla_final(q, k, v, lg), o_rec[:, -1]) <= TOL


# ---------------------------------------------------------------------------
# decay_matrix and linear attention
# ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    T=st.integers(1, 12),
    regime=st.sampled_from(REGIMES),
    key=st.booleans(),
)
def test_decay_matrix_is_product_of_gates(seed, B, T, regime, key):
    rng = np.random.default_rng(seed)
    shape = (B, T, 3) if key else (B, T)
    lg = make_log_gates(rng, shape, regime)
    g = np.exp(lg)
    D = decay_matrix(lg)
    assert D.shape == (B, T, T) + shape[2:]
    ref = np.zeros_like(D)
    for b in range(B):
        for i in range(T):
            for j in range(i + 1):
                ref[b, i, j] = np.prod(g[b, j + 1 : i + 1], axis=0)
    # entries span many orders of magnitude: compare entrywise in relative terms
    np.testing.assert_allclose(D, ref, rtol=1e-12, atol=0)


def test_decay_matrix_weights_match_omega_convention():
    """Row n+1 of D gives the WPGD weights omega_i = Π_{j=i+1}^{n+1} g_j (conventions.md)."""
    g = np.array([0.9, 0.5, 0.8, 0.7])  # tokens 1..n+1, n = 3
    D = decay_matrix(np.log(g)[None])
    omega = np.array([0.5 * 0.8 * 0.7, 0.8 * 0.7, 0.7])
    np.testing.assert_allclose(D[0, -1, :3], omega, rtol=1e-15)
    assert D[0, -1, 3] == 1.0 and np.all(np.triu(D[0], 1) == 0)


@pytest.mark.parametrize("gate", ["scalar", "key"])
def test_linear_attention_is_causal_qk_v(gate):
    rng = np.random.default_rng(7)
    B, T, Dk, Dv = 3, 23, 4, 5
    q, k, v = (
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dv)),
    )
    lg = np.zeros((B, T) if gate == "scalar" else (B, T, Dk))
    ref = (np.einsum("bid,bjd->bij", q, k) * np.tril(np.ones((T, T)))) @ v
    for o in (
        gla_recurrent(q, k, v, lg, gate=gate),
        gla_chunked(q, k, v, lg, gate=gate, chunk_size=6),
        gla_parallel(q, k, v, lg, gate=gate),
    ):
        assert rel_rms(o, ref) <= TOL
    assert rel_rms(gla_final(q, k, v, lg, gate=gate), ref[:, -1]) <= TOL


def test_default_chunk_size_and_edge_shapes():
    assert default_chunk_size(128, 17, 17) == 16 and default_chunk_size(5, 64, 64) == 5
    assert default_chunk_size(100, 64, 64, "key") == 32  # was 8 before the factorised key path
    q, k, v, lg, S0 = make_inputs(2, 2, 0, 3, 2, "scalar", init=True)
    o, S = gla_chunked(q, k, v, lg, initial_state=S0, return_state=True)
    assert o.shape == (2, 0, 2) and np.array_equal(S, S0)
    with pytest.raises(ValueError, match="^q"):
        gla_final(q, k, v, lg)


def test_deterministic_same_input_same_output():
    q, k, v, lg, S0 = make_inputs(9, 3, 77, 4, 3, "key", init=True)
    a = gla_chunked(q, k, v, lg, gate="key", initial_state=S0)
    b = gla_chunked(q, k, v, lg, gate="key", initial_state=S0)
    assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def _engines():
    return {
        "recurrent": gla_recurrent,
        "chunked": gla_chunked,
        "final": gla_final,
        "parallel": gla_parallel,
    }


@pytest.mark.parametrize("engine", ["recurrent", "chunked", "final", "parallel"])
@pytest.mark.parametrize("gate", ["scalar", "key"])
def test_bad_input_names_argument(engine, gate):
    f = _engines()[engine]
    q, k, v, lg, S0 = make_inputs(1, 2, 6, 3, 2, gate, init=True)

    def bad(arg, **over):
        kw = dict(q=q, k=k, v=v, log_g=lg, gate=gate, initial_state=S0)
        kw.update(over)
        args = [kw.pop(n) for n in ("q", "k", "v", "log_g")]
        with pytest.raises(ValueError, match=f"^{arg}"):
            f(*args, **kw)

    bad("k", k=k[:, :, :2])
    bad("v", v=v[:, :5])
    bad("q", q=q[0])
    bad("log_g", log_g=lg[:, :5])
    bad("initial_state", initial_state=S0[:, :, :2])
    bad("log_g", log_g=np.abs(lg) + 0.1)
    for name, arr in (("q", q), ("k", k), ("v", v), ("log_g", lg), ("initial_state", S0)):
        x = arr.copy()
        x.flat[3] = np.nan
        bad(name, **{name: x})
    bad("gate", gate="value")
    bad("scale", scale=np.nan)


@pytest.mark.parametrize("cs", [0, -2, 2.5, True, "8"])
def test_bad_chunk_size(cs):
    q, k, v, lg, _ = make_inputs(1, 1, 5, 2, 2, "scalar")
    with pytest.raises(ValueError, match="^chunk_size"):
        gla_chunked(q, k, v, lg, chunk_size=cs)


def test_decay_matrix_bad_input():
    with pytest.raises(ValueError, match="^log_g"):
        decay_matrix(np.array([[0.1, -1.0]]))
    with pytest.raises(ValueError, match="^log_g"):
        decay_matrix(np.array([[np.nan, -1.0]]))
    with pytest.raises(ValueError, match="^log_g"):
        decay_matrix(np.array([-1.0, -2.0]))


# ---------------------------------------------------------------------------
# Key gating: factorised fast path and exact dense fallback
# ---------------------------------------------------------------------------

SPAN = KEY_FAST_SPAN
FIXED_C = ChunkTuning(halve_share=1.0)  # no re-chunking of strongly gated tiles


@contextlib.contextmanager
def count_dense_chunks(C):
    """Count the chunks (of C tokens) sent to the exact dense key path, by counting the
    tokens passed to ``_key_seq_dense`` (monkeypatches the module)."""
    calls = {"tokens": 0}
    orig = chunked_mod._key_seq_dense

    def counting(Q, K, V, lg, *args):
        calls["tokens"] += Q.shape[0] * Q.shape[1]
        return orig(Q, K, V, lg, *args)

    chunked_mod._key_seq_dense = counting
    try:
        yield calls
    finally:
        chunked_mod._key_seq_dense = orig
        calls["chunks"] = calls["tokens"] / C


def chunk_span_log_gates(rng, B, T, Dk, C, spans):
    """Key log-gates (B, T, Dk) whose per-chunk sums are prescribed.

    Each chunk ``m`` (tokens ``m*C .. m*C+C-1``) of each sequence draws a span ``s`` from
    ``spans``; one random feature gets the total log-gate ``-s``, the others ``-s·u``
    with ``u`` uniform in [0.5, 1], each split over the chunk's tokens by random
    Dirichlet weights; ``s = inf`` puts a ``-inf`` gate (gate 0) at a random token of
    that feature.  So ``min_d a_last,d = -s`` sits exactly where the test wants it
    relative to the fast-path bound ``KEY_FAST_SPAN``.
    """
    lg = np.zeros((B, T, Dk))
    for m0 in range(0, T, C):
        n = min(C, T - m0)
        for b in range(B):
            sp = float(rng.choice(spans))
            dmax = rng.integers(Dk)
            u = rng.uniform(0.5, 1.0, Dk)
            u[dmax] = 1.0
            w = rng.dirichlet(np.ones(n), size=Dk).T  # (n, Dk), columns sum to 1
            if np.isinf(sp):
                part = -w * rng.uniform(0.0, 5.0, Dk)
                part[rng.integers(n), dmax] = -np.inf
            else:
                part = -w * (sp * u)
            lg[b, m0 : m0 + n] = np.minimum(part, 0.0)
    return lg


def test_key_fast_path_taken_and_exact():
    """Ordinary gates (chunk sums >= -SPAN): no chunk goes to the dense path, and the
    result matches the loop and the naive product formula."""
    rng = np.random.default_rng(21)
    B, T, Dk, Dv = 2, 70, 5, 3
    q, k, v = (
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dv)),
    )
    lg = chunk_span_log_gates(rng, B, T, Dk, 16, [0.0, 1.0, 50.0, 0.999 * SPAN])
    S0 = rng.standard_normal((B, Dv, Dk))
    with count_dense_chunks(16) as calls:
        o, S = gla_chunked(
            q, k, v, lg, gate="key", initial_state=S0, return_state=True, chunk_size=16
        )
    assert calls["chunks"] == 0
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate="key", initial_state=S0, return_state=True)
    assert rel_rms(o, naive_gla(q, k, v, lg, "key", 1.0, S0)) <= TOL
    assert rel_rms(o, o_rec) <= TOL and rel_rms(S, S_rec) <= TOL


def test_key_fallback_taken_for_large_spans_and_gate_zero():
    """Chunks with a log-gate sum below -SPAN (or a gate 0) go to the dense path, the
    others stay on the fast path, within one tile (here a single tile of 3 x 8 chunks);
    a tile with more than half slow chunks goes to the dense path as a whole.  Agreement
    with the loop and the naive products either way."""
    rng = np.random.default_rng(22)
    B, T, Dk, Dv, C = 3, 64, 4, 3, 8
    q, k, v = (
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dv)),
    )
    for spans, mostly_slow in (
        ([0.5, 0.5, 0.5, 1.001 * SPAN, np.inf], False),
        ([0.5, 1.001 * SPAN, np.inf, np.inf], True),
    ):
        lg = chunk_span_log_gates(rng, B, T, Dk, C, spans)
        a_last = lg.reshape(B, T // C, C, Dk).sum(axis=2)
        n_slow = int(np.sum(a_last.min(axis=-1) < -SPAN))
        assert 0 < n_slow < B * T // C and (n_slow > B * T // C / 2) == mostly_slow
        with (
            count_dense_chunks(C) as calls,
            np.errstate(over="raise", invalid="raise", divide="raise"),
        ):
            o = gla_chunked(q, k, v, lg, gate="key", chunk_size=C, tuning=FIXED_C)
        assert calls["chunks"] == (B * T // C if mostly_slow else n_slow)
        assert rel_rms(o, gla_recurrent(q, k, v, lg, gate="key")) <= TOL
        assert rel_rms(o, naive_gla(q, k, v, lg, "key")) <= TOL


def test_key_fast_path_tiny_queries_are_normalised():
    """q ~ 1e-200 with chunk sums near -SPAN: q ⊙ exp(a) would underflow (1e-200·e^-299
    is below the float64 range) without the power-of-two normalisation of q; the result
    must still match the loop to 1e-10 relative (and so must q ~ 1e+200)."""
    rng = np.random.default_rng(23)
    B, T, Dk, Dv, C = 2, 48, 3, 2, 16
    k, v = rng.standard_normal((B, T, Dk)), rng.standard_normal((B, T, Dv))
    lg = chunk_span_log_gates(rng, B, T, Dk, C, [0.997 * SPAN])
    for qs in (1e-200, 1e200):
        q = qs * rng.standard_normal((B, T, Dk))
        with count_dense_chunks(C) as calls:
            o = gla_chunked(q, k, v, lg, gate="key", chunk_size=C)
        assert calls["chunks"] == 0 or qs > 1  # tiny q: all fast
        o_rec = gla_recurrent(q, k, v, lg, gate="key")
        assert np.all(np.isfinite(o))
        assert rel_rms(o / qs, o_rec / qs) <= TOL, qs  # (scaled: norms of 1e200 overflow)


def test_key_fast_path_overflow_is_detected():
    """k ~ 1e200 with chunk sums near -SPAN: k ⊙ exp(-a) overflows in the fast path; the
    overflow must be detected (chunks recomputed exactly), not raised, not returned."""
    rng = np.random.default_rng(24)
    B, T, Dk, Dv, C = 2, 40, 3, 2, 8
    q, v = rng.standard_normal((B, T, Dk)), rng.standard_normal((B, T, Dv))
    k = 1e200 * rng.standard_normal((B, T, Dk))
    lg = chunk_span_log_gates(rng, B, T, Dk, C, [0.99 * SPAN])
    with count_dense_chunks(C) as calls, np.errstate(over="raise", invalid="raise", divide="raise"):
        o, S = gla_chunked(q, k, v, lg, gate="key", chunk_size=C, return_state=True)
    assert calls["chunks"] > 0
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate="key", return_state=True)
    assert rel_rms(o / 1e200, o_rec / 1e200) <= TOL and rel_rms(S / 1e200, S_rec / 1e200) <= TOL


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    T=st.integers(1, 60),
    Dk=st.integers(1, 6),
    Dv=st.integers(1, 5),
    chunk=st.integers(1, 20),
    spans=st.lists(
        st.sampled_from([0.0, 1e-9, 1.0, 30.0, 0.99 * SPAN, 1.01 * SPAN, 2000.0, np.inf]),
        min_size=1,
        max_size=4,
    ),
    qexp=st.sampled_from([0, -150, 120]),
    kexp=st.sampled_from([0, 150]),
    init=st.booleans(),
    tile_bytes=st.sampled_from([None, 1, 3000]),
    scale=st.sampled_from([1.0, -0.25]),
)
def test_key_paths_agree_with_loop(
    seed, B, T, Dk, Dv, chunk, spans, qexp, kexp, init, tile_bytes, scale
):
    """Key gates with chunk sums on both sides of the fast-path bound (and gate 0), in
    mixed tiles, several tiles per sequence and per batch, extreme q/k scales: chunked
    (fast + fallback) == recurrent and == the dense parallel form, to 1e-10 relative."""
    rng = np.random.default_rng(seed)
    q = 10.0**qexp * rng.standard_normal((B, T, Dk))
    k = 10.0**kexp * rng.standard_normal((B, T, Dk))
    v = rng.standard_normal((B, T, Dv))
    lg = chunk_span_log_gates(rng, B, T, Dk, chunk, spans)
    S0 = 10.0**kexp * rng.standard_normal((B, Dv, Dk)) if init else None
    kw = dict(gate="key", scale=scale, initial_state=S0)
    o_rec, S_rec = gla_recurrent(q, k, v, lg, return_state=True, **kw)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        o, S = gla_chunked(
            q, k, v, lg, return_state=True, chunk_size=chunk, tuning=knobs(tile_bytes), **kw
        )
    assert np.all(np.isfinite(o)) and np.all(np.isfinite(S))
    os_, ss_ = 10.0 ** -(qexp + kexp), 10.0**-kexp  # rescaled: norms of ~1e270 overflow
    assert rel_rms(o * os_, o_rec * os_) <= TOL
    assert rel_rms(S * ss_, S_rec * ss_) <= TOL
    assert rel_rms(gla_parallel(q, k, v, lg, **kw) * os_, o_rec * os_) <= TOL


def test_key_long_memory_fast_path_20k():
    """Key gates 1 - 1e-9 with -50 spikes (chunk sums ~ -50, fast path) over 20 000
    tokens, against the loop; and the same with every 5th chunk holding a gate 0."""
    rng = np.random.default_rng(25)
    B, T, Dk, Dv = 1, 20_000, 3, 2
    q, k, v = (
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dk)),
        rng.standard_normal((B, T, Dv)),
    )
    lg = np.full((B, T, Dk), -1e-9)
    lg[:, T // 2 :: 97, 1] = -50.0
    for variant in ("fast", "with zeros"):
        if variant == "with zeros":
            lg[:, 3::80, 0] = -np.inf  # every 5th chunk of C = 16
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            o = gla_chunked(q, k, v, lg, gate="key")
        assert rel_rms(o, gla_recurrent(q, k, v, lg, gate="key")) <= TOL, variant


def test_key_chunked_repeat_calls_identical():
    """Buffers are reused across tiles within a call, never across calls: two calls on
    several tiles and batch blocks (with a remainder chunk) give bit-identical results."""
    q, k, v, lg, S0 = make_inputs(26, 5, 101, 4, 3, "key", "uniform50", init=True)
    lg = lg / 200.0  # mostly fast chunks
    tun = knobs(tile_bytes=5000)
    a, Sa = gla_chunked(
        q, k, v, lg, gate="key", initial_state=S0, return_state=True, chunk_size=6, tuning=tun
    )
    b, Sb = gla_chunked(
        q, k, v, lg, gate="key", initial_state=S0, return_state=True, chunk_size=6, tuning=tun
    )
    assert np.array_equal(a, b) and np.array_equal(Sa, Sb)
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate="key", initial_state=S0, return_state=True)
    assert rel_rms(a, o_rec) <= TOL and rel_rms(Sa, S_rec) <= TOL


# ---------------------------------------------------------------------------
# Reverse pass: gla_chunked_vjp vs the reference reverse scan and finite differences
# ---------------------------------------------------------------------------


def _vjp_inputs(seed, B, T, Dk, Dv, gate, regime):
    q, k, v, lg, _ = make_inputs(seed, B, T, Dk, Dv, "key" if gate == "key" else "scalar", regime)
    dO = np.random.default_rng(seed + 1).standard_normal((B, T, Dv))
    return q, k, v, (None if gate == "none" else lg), dO


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    B=st.integers(1, 3),
    T=st.integers(1, 45),
    Dk=st.integers(1, 5),
    Dv=st.integers(1, 5),
    gate=st.sampled_from(["scalar", "key", "none"]),
    regime=st.sampled_from(REGIMES),
    chunk=st.one_of(st.none(), st.integers(1, 17)),
)
def test_vjp_matches_reference_reverse_scan(seed, B, T, Dk, Dv, gate, regime, chunk):
    """Outputs vs the loop and every gradient vs the reference reverse scan (which stores
    every state S_t), all gate regimes including gate 0 and log-gates of -50 (the exact
    dense key chunks): relative RMS <= 1e-10 per gradient, relative to that gradient."""
    q, k, v, lg, dO = _vjp_inputs(seed, B, T, Dk, Dv, gate, regime)
    eg = "key" if gate == "key" else "scalar"
    o, vjp = gla_chunked_vjp(q, k, v, lg, gate=eg, chunk_size=chunk)
    lg0 = np.zeros((B, T)) if lg is None else lg
    assert rel_rms(o, gla_recurrent(q, k, v, lg0, gate=eg)) <= TOL
    ours = vjp(dO)
    ref = gla_recurrent_backward(q, k, v, lg, dO, gate=eg)
    for name, a, b in zip(("dq", "dk", "dv", "dlog_g"), ours, ref):
        if b is None:
            assert a is None
            continue
        # dlog_g on the factorised key path: within-chunk telescoping (see the module
        # docstring), exact to rounding relative to the pairs it sums.
        assert rel_rms(a, b) <= TOL or np.linalg.norm(a - b) <= TOL * np.linalg.norm(b) + 1e-300, (
            name
        )


def test_vjp_strong_gating_and_long_sequence():
    """T = 3000 with gates from 1 to e^-50 and exact zeros, several chunk sizes: the
    gradients of the chunked reverse pass agree with the reference scan to 1e-10."""
    for gate in ("scalar", "key"):
        q, k, v, lg, dO = _vjp_inputs(31, 2, 3000, 4, 3, gate, "mixed")
        ref = gla_recurrent_backward(q, k, v, lg, dO, gate=gate)
        for C in (None, 7, 64):
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                _, vjp = gla_chunked_vjp(q, k, v, lg, gate=gate, chunk_size=C)
            with np.errstate(invalid="raise", divide="raise"):
                ours = vjp(dO)
            for a, b in zip(ours, ref):
                assert rel_rms(a, b) <= TOL, (gate, C)


@pytest.mark.parametrize("gate", ["scalar", "key"])
def test_vjp_gate_gradient_exact_for_near_zero_gates(gate):
    """Gates ~1e-13 (log -30) followed by gates ~1: the gradient wrt such a gate is tiny
    (every pair it separates carries its factor) and must still be accurate relative to
    its own size where the pairs are summed directly (scalar gates, dense key chunks):
    compared with the reference entry by entry at those gates, and overall."""
    rng = np.random.default_rng(5)
    B, T, Dk, Dv = 2, 40, 3, 2
    q, k, v, dO = (rng.standard_normal((B, T, d)) for d in (Dk, Dk, Dv, Dv))
    shape = (B, T) if gate == "scalar" else (B, T, Dk)
    lg = -1e-3 * rng.random(shape)
    lg[:, ::5] = -30.0 if gate == "scalar" else -400.0  # key: dense chunks (sum < -300)
    _, vjp = gla_chunked_vjp(q, k, v, lg, gate=gate, chunk_size=10)
    dlg = vjp(dO)[3]
    ref = gla_recurrent_backward(q, k, v, lg, dO, gate=gate)[3]
    assert np.max(np.abs(ref[:, 5::5])) < 1e-10 * np.max(np.abs(ref))  # tiny entries
    np.testing.assert_allclose(dlg[:, ::5], ref[:, ::5], rtol=1e-9, atol=1e-300)
    assert rel_rms(dlg, ref) <= TOL


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    gate=st.sampled_from(["scalar", "key"]),
    T=st.integers(1, 12),
    chunk=st.integers(1, 5),
)
def test_vjp_matches_finite_differences(seed, gate, T, chunk):
    """Independent of both scans: central differences of Σ <dO, gla_recurrent(...)>."""
    rng = np.random.default_rng(seed)
    B, Dk, Dv = 2, 3, 2
    q, k, v, dO = (rng.standard_normal((B, T, d)) for d in (Dk, Dk, Dv, Dv))
    lg = -0.2 - rng.random((B, T) if gate == "scalar" else (B, T, Dk))
    grads = gla_chunked_vjp(q, k, v, lg, gate=gate, chunk_size=chunk)[1](dO)
    args = [q, k, v, lg]
    h = 1e-6
    for a, g in zip(args, grads):
        fd = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + h
            fp = np.sum(dO * gla_recurrent(*args, gate=gate))
            a[idx] = old - h
            fm = np.sum(dO * gla_recurrent(*args, gate=gate))
            a[idx] = old
            fd[idx] = (fp - fm) / (2 * h)
        assert np.linalg.norm(g - fd) <= 1e-6 * max(np.linalg.norm(fd), 1.0)


@pytest.mark.parametrize("gate", ["scalar", "key", "none"])
@pytest.mark.parametrize("T", [64, 61])
def test_vjp_out_views_and_blocks(gate, T, monkeypatch):
    """``vjp(dO, out=...)`` into column blocks of one larger array (as the training passes
    do) gives the same bits as fresh arrays, with several blocks of prompts (each block's
    gradients go straight into its rows when T is a multiple of the chunk, else through a
    padded copy), and agrees with the reference scan."""
    monkeypatch.setattr(backward_mod, "_batch_block", lambda *args: 2)  # blocks of 2, 2, 1
    B, Dk, Dv = 5, 4, 3
    q, k, v, lg, dO = _vjp_inputs(7, B, T, Dk, Dv, gate, "mixed")
    eg = "key" if gate == "key" else "scalar"
    _, vjp = gla_chunked_vjp(q, k, v, lg, gate=eg, chunk_size=16)
    fresh = vjp(dO)
    width = 2 * Dk + Dv + (0 if lg is None else lg[0, 0].size)
    buf = np.full((B, T, width + 1), np.nan)
    views = [buf[..., :Dk], buf[..., Dk : 2 * Dk], buf[..., 2 * Dk : 2 * Dk + Dv], None]
    if gate == "scalar":
        views[3] = buf[..., 2 * Dk + Dv]
    elif gate == "key":
        views[3] = buf[..., 2 * Dk + Dv : 3 * Dk + Dv]
    got = vjp(dO, out=views)
    assert np.isnan(buf[..., -1]).all()  # nothing written beyond the views
    ref = gla_recurrent_backward(q, k, v, lg, dO, gate=eg)
    for a, b, r in zip(got, fresh, ref):
        if r is None:
            assert a is None and b is None
            continue
        assert np.array_equal(a, b)
        assert rel_rms(b, r) <= TOL


def test_vjp_can_fail():
    """The comparison with the reference scan detects a planted error (a gate gradient off
    by one token): guards against a vacuous check."""
    q, k, v, lg, dO = _vjp_inputs(3, 2, 30, 3, 2, "key", "mixed")
    dlg = gla_chunked_vjp(q, k, v, lg, gate="key", chunk_size=8)[1](dO)[3]
    ref = gla_recurrent_backward(q, k, v, lg, dO, gate="key")[3]
    assert rel_rms(dlg, ref) <= TOL
    assert rel_rms(np.roll(dlg, 1, axis=1), ref) > 1e-2


# ---------------------------------------------------------------------------
# Overflow is reported, not returned
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["recurrent", "chunked", "final", "parallel"])
@pytest.mark.parametrize("gate", ["scalar", "key"])
def test_overflow_raises_naming_inputs(engine, gate):
    q, k, v, lg, _ = make_inputs(4, 2, 9, 3, 2, gate, "near1")
    with (
        pytest.raises(ValueError, match=r"^q, k, v: .*overflows float64"),
        np.errstate(all="ignore"),
    ):
        _engines()[engine](1e150 * q, 1e150 * k, 1e150 * v, lg, gate=gate)
    with pytest.raises(ValueError, match="overflows float64"), np.errstate(all="ignore"):
        gla_chunked_vjp(1e150 * q, 1e150 * k, 1e150 * v, lg, gate=gate)


def test_tuning_is_validated():
    q, k, v, lg, _ = make_inputs(1, 1, 5, 2, 2, "scalar")
    with pytest.raises(TypeError, match="^tuning"):
        gla_chunked(q, k, v, lg, tuning={"tile_bytes": 1})
    with pytest.raises(ValueError, match="^tuning"):
        ChunkTuning(tile_bytes=-1)


# ---------------------------------------------------------------------------
# Issue 13 (speed): the paths added for it, each checked against the loop
# ---------------------------------------------------------------------------


def test_key_strong_gates_are_cut_into_short_chunks():
    """Log-gates uniform in [-50, 0] at C = 16: almost every chunk's sum is below -SPAN,
    so the tile is re-cut into shorter chunks (8: a few sums still below -SPAN; 4: none,
    sums >= -200) until at most a quarter of its chunks need the exact dense path; with
    the chunk length fixed the whole tiles go to the dense path.  Both agree with the
    loop."""
    q, k, v, lg, S0 = make_inputs(31, 3, 96, 5, 4, "key", "uniform50", init=True)
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate="key", initial_state=S0, return_state=True)
    for tun, most in ((ChunkTuning(), 0.25), (FIXED_C, 1.0)):
        with count_dense_chunks(16) as calls:
            o, S = gla_chunked(
                q,
                k,
                v,
                lg,
                gate="key",
                initial_state=S0,
                return_state=True,
                chunk_size=16,
                tuning=tun,
            )
        share = calls["chunks"] / (3 * 96 // 16)  # of the tokens on the dense path
        assert share <= most and (share == 1.0) == (most == 1.0)
        assert rel_rms(o, o_rec) <= TOL and rel_rms(S, S_rec) <= TOL


def test_key_shifted_segments_stay_on_the_fast_path(monkeypatch):
    """Key chunks whose log-gate sums lie between -SPAN and -2·SPAN run the factorised
    tile with a shifted reference (each factor within e^±SPAN), never the dense path,
    even with |k|·|v| ~ 1e100; with the reference left at the segment start (a planted
    bug) the factors reach e^(2·SPAN) and those products overflow into the exact path.
    With |k| ~ 1e-200 the tile goes to the per-chunk paths (keys kept near 1).  Every
    result matches the loop to 1e-10 relative, with an initial and a final state."""
    rng = np.random.default_rng(41)
    B, T, Dk, Dv, C = 2, 96, 4, 3, 8
    q, k, v = (rng.standard_normal((B, T, d)) for d in (Dk, Dk, Dv))
    lg = chunk_span_log_gates(rng, B, T, Dk, C, [1.2 * SPAN, 1.6 * SPAN, 1.95 * SPAN])
    S0 = rng.standard_normal((B, Dv, Dk))
    tun = ChunkTuning(halve_share=1.0)

    def run(kk, vv):
        with count_dense_chunks(C) as calls:
            o, S = gla_chunked(
                q,
                kk,
                vv,
                lg,
                gate="key",
                initial_state=S0,
                return_state=True,
                chunk_size=C,
                tuning=tun,
            )
        o_rec, S_rec = gla_recurrent(q, kk, vv, lg, gate="key", initial_state=S0, return_state=True)
        sc = max(np.abs(o_rec).max(), 1e-300)
        assert rel_rms(o / sc, o_rec / sc) <= TOL and rel_rms(S / sc, S_rec / sc) <= TOL
        return calls["chunks"]

    assert run(k, v) == 0
    assert run(1e25 * k, 1e75 * v) == 0
    assert run(1e-200 * k, v) > 0  # tiny keys: per-chunk paths
    orig = chunked_mod._segment_offsets
    monkeypatch.setattr(chunked_mod, "_segment_offsets", lambda a, st: _no_shift(orig, a, st))
    assert run(1e25 * k, 1e75 * v) > 0


def _no_shift(orig, a, starts):
    """:func:`_segment_offsets` with every reference at its segment start (planted bug)."""
    span = chunked_mod.KEY_FAST_SPAN
    try:
        chunked_mod.KEY_FAST_SPAN = 1e300  # ref = min(0, sum + 1e300) = 0 everywhere
        return orig(a, starts)
    finally:
        chunked_mod.KEY_FAST_SPAN = span


@pytest.mark.parametrize("gate", ["scalar", "key"])
def test_fast_tile_with_many_segments(gate):
    """One tile of 25 chunks whose sums (~-4 each) start a new factorisation segment every
    few chunks (segments span at most SEGMENT_SPAN): segment offsets and the decay between
    segments agree with the loop (initial and final state included), on the fast path
    only."""
    rng = np.random.default_rng(42)
    B, T, Dk, Dv, C = 3, 200, 5, 4, 8
    q, k, v = (rng.standard_normal((B, T, d)) for d in (Dk, Dk, Dv))
    shape = (B, T) if gate == "scalar" else (B, T, Dk)
    lg = -1.0 * rng.random(shape)  # chunk sums ~ -4
    S0 = rng.standard_normal((B, Dv, Dk))
    tun = knobs(tile_bytes=1 << 24)
    G = T // C
    sums = (lg.reshape(B, G, C, -1).sum(axis=2)).min(axis=(0, 2))
    starts = chunked_mod._segments(
        lg.reshape(B, G, C, -1).sum(axis=2), -(2 if gate == "key" else 1) * SPAN
    )
    assert starts is not None and 3 < len(starts) < G and sums.max() > -SPAN
    with count_dense_chunks(C) as calls:
        o, S = gla_chunked(
            q, k, v, lg, gate=gate, initial_state=S0, return_state=True, chunk_size=C, tuning=tun
        )
    assert calls["chunks"] == 0
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate=gate, initial_state=S0, return_state=True)
    assert rel_rms(o, o_rec) <= TOL and rel_rms(S, S_rec) <= TOL


@pytest.mark.parametrize("B, T, D, split", [(2, 3000, 17, False), (1, 1500, 64, True)])
def test_key_strong_gates_long_sequence_on_the_fast_path(B, T, D, split):
    """The bench's worst case in small: log-gates uniform in [-50, 0] (every
    default-length chunk far below -SPAN): the tiles are cut into short chunks on the
    factorised path (no dense chunk) and agree with the loop to 1e-10 relative.  At
    D = 64 the chunk states of the short chunks outgrow the tile budget, so the tiles are
    first split in time (seen as fast-tile calls on fewer tokens than planned)."""
    q, k, v, lg, S0 = make_inputs(43, B, T, D, D, "key", "uniform50", init=True)
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate="key", initial_state=S0, return_state=True)
    orig = chunked_mod._tile_fast
    tokens = []  # tokens per call of the fast tile

    def recording(Q, *a):
        tokens.append(Q.shape[1] * Q.shape[2])
        return orig(Q, *a)

    chunked_mod._tile_fast = recording
    C = default_chunk_size(T, D, D, "key")
    try:
        with count_dense_chunks(C) as dense:
            o, S = gla_chunked(q, k, v, lg, gate="key", initial_state=S0, return_state=True)
    finally:
        chunked_mod._tile_fast = orig
    spans = chunked_mod._tile_plan(B, T, D, D, C, "key", ChunkTuning().tile_bytes)[1]
    assert dense["chunks"] == 0
    assert bool(set(tokens) - {g * c for _, g, c in spans}) == split
    assert rel_rms(o, o_rec) <= TOL and rel_rms(S, S_rec) <= TOL


@pytest.mark.parametrize("strong", [-70.0, -37.5, -37.5 * (1 + 1e-12)])
def test_key_chunk_length_hint(strong):
    """The chunk length that worked is where the next tile starts (``_tile_fast_halving``):
    2 prompts x 8 tiles of 8 chunks of 16, every key log-gate ``strong`` in the first four
    tiles, -0.1 in the last four.  At -70 chunks of 16 sum to -1120 (too long), of 8 to
    -560 (fit, with a shifted reference): the first tile of each prompt tries 16 and is
    cut to 8, the next strong tiles start at 8; the first weak tile runs at 8, sees that
    pairs of chunks would fit and hands 16 to the next.  The boundary of the criterion:
    at -37.5 a chunk of 16 sums to exactly -2·SPAN and runs as it is (no cut, no
    futile try), just below it every strong tile runs at 8 after a single futile try.
    Every case agrees with the loop."""
    B, T, D, C = 2, 1024, 6, 16
    rng = np.random.default_rng(45)
    q, k, v = (rng.standard_normal((B, T, D)) for _ in range(3))
    lg = np.full((B, T, D), -0.1)
    lg[:, : T // 2] = strong
    S0 = rng.standard_normal((B, D, D))
    per_tok = 8 * (C + 6 * D + 2 * D + 2 * D * D // C)  # _tile_plan, key gates
    tun = ChunkTuning(tile_bytes=8 * C * per_tok)  # 8 chunks x 1 prompt per tile
    assert chunked_mod._tile_plan(B, T, D, D, C, "key", tun.tile_bytes)[:2] == (
        1,
        [(t0, 8, C) for t0 in range(0, T, 8 * C)],
    )
    orig = chunked_mod._tile_fast
    seen = []  # (chunk length, outcome) per fast-tile call

    def recording(Q, *a):
        ok, st = orig(Q, *a)
        seen.append((Q.shape[2], ok if ok == "span" else bool(ok)))
        return ok, st

    chunked_mod._tile_fast = recording
    try:
        o, S = gla_chunked(
            q, k, v, lg, gate="key", initial_state=S0, return_state=True, chunk_size=C, tuning=tun
        )
    finally:
        chunked_mod._tile_fast = orig
    if strong == -37.5:
        per_prompt = [(16, True)] * 8
    else:
        short = [(8, True)] * 3 + [(8, True)]  # strong tiles 1-3, first weak tile
        per_prompt = [(16, "span"), (8, True)] + short + [(16, True)] * 3
    assert seen == per_prompt * B
    o_rec, S_rec = gla_recurrent(q, k, v, lg, gate="key", initial_state=S0, return_state=True)
    assert rel_rms(o, o_rec) <= TOL and rel_rms(S, S_rec) <= TOL


@pytest.mark.parametrize("name", ["q", "k", "v", "log_g"])
def test_final_key_checks_every_block_it_skips(name):
    """gla_final with key gates checks k, v, log_g block by block as it reads them and
    stops early once every earlier weight is exactly 0: a NaN (or a positive log-gate)
    early in a strongly gated sequence, in the part it never computes with, is still
    refused with the ValueError naming the argument."""
    q, k, v, lg, _ = make_inputs(44, 2, 5000, 30, 2, "key", "near0")  # > 1 block per prompt
    args = {"q": q, "k": k, "v": v, "log_g": lg}
    assert np.isfinite(gla_final(q, k, v, lg, gate="key")).all()
    for bad in (np.nan, 0.5):
        if bad == 0.5 and name != "log_g":
            continue
        x = args[name].copy()
        x[1, 3, 0] = bad
        kw = {**args, name: x}
        with pytest.raises(ValueError, match=f"^{name}"):
            gla_final(kw["q"], kw["k"], kw["v"], kw["log_g"], gate="key")


@pytest.mark.parametrize("regime", ["mixed", "uniform50", "near0"])
def test_scalar_fast_path_and_exact_fallback(monkeypatch, regime):
    """Scalar gates: tiles whose chunk sums stay above -SPAN run the factorised fast tile,
    the others (and tiles whose factorised values overflow: |v| ~ 1e200 with chunk sums
    near -SPAN) the exact tile; counted, and both agree with the loop."""
    calls = {"exact": 0}
    orig = chunked_mod._tile_scalar_exact

    def counting(*a):
        calls["exact"] += 1
        return orig(*a)

    monkeypatch.setattr(chunked_mod, "_tile_scalar_exact", counting)
    q, k, v, lg, S0 = make_inputs(32, 2, 80, 4, 3, "scalar", regime, init=True)
    o = gla_chunked(q, k, v, lg, initial_state=S0, chunk_size=8, tuning=knobs(tile_bytes=1))
    assert rel_rms(o, gla_recurrent(q, k, v, lg, initial_state=S0)) <= TOL
    sums = np.maximum(lg, -800.0).reshape(2, 10, 8).sum(axis=2)
    assert calls["exact"] == int(np.sum(sums < -SPAN))  # one chunk per tile here
    calls["exact"] = 0
    lg_near = np.full((2, 80), -0.99 * SPAN / 8)  # chunk sums -0.99 SPAN: fast, exp(-a) ~ e^297
    big_v = 1e200 * v
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        o = gla_chunked(q, k, big_v, lg_near, chunk_size=8)
    assert calls["exact"] > 0  # V ⊙ exp(-a) overflowed: recomputed exactly
    o_rec = gla_recurrent(q, k, big_v, lg_near)
    assert rel_rms(o / 1e200, o_rec / 1e200) <= TOL


@pytest.mark.parametrize("gate", ["scalar", "key"])
@pytest.mark.parametrize("name", ["q", "k", "v", "log_g"])
def test_bad_value_in_a_later_tile_is_refused(gate, name):
    """Values are checked tile by tile: a NaN in the last tile of many (and, for key
    log-gates, a positive log-gate there) raises the ValueError naming the argument."""
    q, k, v, lg, S0 = make_inputs(33, 3, 200, 4, 3, gate, "near1", init=True)
    args = {"q": q, "k": k, "v": v, "log_g": lg}
    for bad in (np.nan, np.inf, 0.5):
        if bad == 0.5 and name != "log_g":
            continue
        x = args[name].copy()
        x[-1, -1] = bad
        kw = dict(args, **{name: x})
        with pytest.raises(ValueError, match=f"^{name}"):
            gla_chunked(
                kw["q"],
                kw["k"],
                kw["v"],
                kw["log_g"],
                gate=gate,
                initial_state=S0,
                chunk_size=5,
                tuning=knobs(tile_bytes=1),
            )


@pytest.mark.parametrize("regime", ["mixed", "uniform50", "near1"])
@pytest.mark.parametrize("block_bytes", [8 * 3 * 7, 8 * 3 * 50 * 2 + 8])
def test_final_key_blocks_match_loop(monkeypatch, regime, block_bytes):
    """gla_final with key gates in blocks: runs of 4 tokens of one prompt (the carry of
    the suffix sums across blocks, -inf gates), and blocks of 2 whole prompts (plus a
    remainder prompt) in sub-blocks of 4 tokens (50 = 13·4 - 2: a padded first
    sub-block); with an initial state, against the loop's last output."""
    monkeypatch.setattr(parallel_mod, "_FINAL_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(parallel_mod, "_FINAL_SUB", 4)
    q, k, v, lg, S0 = make_inputs(34, 5, 50, 3, 2, "key", regime, init=True)
    o_rec = gla_recurrent(q, k, v, lg, gate="key", initial_state=S0, scale=-2.0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        o_fin = gla_final(q, k, v, lg, gate="key", initial_state=S0, scale=-2.0)
    assert rel_rms(o_fin, o_rec[:, -1]) <= TOL


@pytest.mark.parametrize("T", [1, 2, 7, 64, 65, 130, 2048])
def test_running_sum_tokens_matches_cumsum(T):
    """The running sums over tokens equal ``np.cumsum`` along the token axis to rounding, in
    all four variants (inclusive or exclusive, forward or from the end), on each of their
    three ways: token slices below ``CUMSUM_MAX_SLICE`` (cumsum), small ones (blocks of
    tokens from ``BLOCKED_SUM_MIN_T`` tokens on, else a token loop) and long ones (token
    loop), for T around and between block boundaries and a trailing feature axis or none."""
    from numerics.gla._common import _running_sum_tokens

    rng = np.random.default_rng(T)
    for shape in ((3, T, 4), (5, T), (4, T, 32), (3, T, 1000)):
        x = rng.standard_normal(shape)
        incl = np.cumsum(x, axis=1)
        rev = np.cumsum(x[:, ::-1], axis=1)[:, ::-1]
        excl, rev_excl = incl - x, rev - x
        scale = np.abs(x).sum(axis=1, keepdims=True)
        for reverse, exclusive, ref in (
            (False, False, incl),
            (False, True, excl),
            (True, False, rev),
            (True, True, rev_excl),
        ):
            got = _running_sum_tokens(x, reverse=reverse, exclusive=exclusive)
            assert got.shape == x.shape and got.flags.c_contiguous
            assert np.all(np.abs(got - ref) <= 1e-13 * scale), (reverse, exclusive)
