r"""Chunked GLA forward pass that keeps what its reverse pass needs (:func:`gla_chunked_vjp`).

Semantics as in :mod:`numerics.gla`: ``o_t = Σ_{s<=t} v_s (k_s ⊙ exp(c_t - c_s))ᵀ q_t``
(scale 1, the token attends to itself), ``c_t`` the cumulative log-gates, the key gate on
the key axis.  :func:`gla_chunked_vjp` returns the outputs and a function ``vjp(dO)`` giving
the gradients of ``Σ_t <dO_t, o_t>`` with respect to ``q, k, v`` and the log-gates.  The
reverse pass reuses the forward's chunk states, scores and decays (nothing is recomputed)
and works, like the forward, in log-gate space, chunk by chunk:

* chunks of ``C`` tokens, chunk-local cumulative log-gates ``a_i`` (a running sum,
  monotone), the state ``Sᵀ_m: (Dk, Dv)`` before chunk ``m``, the chunk decay
  ``γ_m = exp(a_last)``;
* forward: ``O = A V + Q̃ Sᵀ_m`` with ``Q̃ = Q ⊙ exp(a)`` and the causal score block ``A``
  (scalar: ``(Q Kᵀ) ⊙ exp(a_i - a_j)``; key: ``Q̃ K̃ᵀ`` with ``K̃ = K ⊙ exp(-a)`` where the
  chunk's log-gate sum is ``>= -KEY_FAST_SPAN``, else the exact ``Σ_d q k exp(a_i - a_j)``),
  ``Sᵀ_{m+1} = γ_m ⊙ Sᵀ_m + K_wᵀ V`` with ``K_w = K ⊙ exp(a_last - a)``;
* reverse: ``dSᵀ_m = Q̃ᵀ_m dO_m + γ_m ⊙ dSᵀ_{m+1}`` (state gradient, one loop over chunks),
  ``dA = tril(dO Vᵀ)``, ``dV = Aᵀ dO + K_w dSᵀ_{m+1}``,
  ``dQ = ∂A/∂Q·dA + exp(a) ⊙ dO S_m``, ``dK = ∂A/∂K·dA + exp(a_last - a) ⊙ V dS_{m+1}``;
* log-gate ``r`` multiplies every pair ``(s, t)`` with ``s < r <= t``, so ``d log g_r`` is
  the sum over the pairs that straddle ``r``: past chunks -> this chunk (a reverse running
  sum of ``q ⊙ dQ_inter``), past chunks -> later chunks (``γ ⊙ Σ_v S ⊙ dS`` per chunk), this
  chunk -> later chunks (a running sum of ``K_w ⊙ dK_w`` over ``s < r``) and pairs within the
  chunk.  Within a chunk the straddling sum is taken directly for scalar gates and for the
  exact (slow) key chunks; on the factorised key path it is
  ``Σ_{t>=r} (q ⊙ dq_<)_t − Σ_{s>=r} (k ⊙ dk_<)_s`` (strictly causal parts, so the diagonal
  does not cancel): pairs inside ``[r, chunk end]`` cancel there, which bounds the error by
  ``~C·eps`` times those pairs — an absolute error far below the gradient's scale, a
  relative one only for a gate near 0 followed by gates near 1 in the same chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from .._validate import _finite_sum
from ._common import _EXP_FAST_MIN, _LOG_FLOOR, _check_inputs, _check_output, _exp_nonpos
from .chunked import KEY_FAST_SPAN, _causal_neg, _check_chunk_size, _readonly, _tril01

__all__ = ["default_vjp_chunk_size", "gla_chunked_vjp", "gla_chunked_vjp_unchecked"]

#: Gradients ``(dq, dk, dv, dlog_g)`` of ``Σ_t <dO_t, o_t>`` (``dlog_g`` None without gates).
Grads = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
#: The reverse pass ``vjp(dO, out=None) -> Grads`` returned by :func:`gla_chunked_vjp`.
VJP = Callable[..., Grads]


def default_vjp_chunk_size(T: int, Dk: int, Dv: int) -> int:
    """Chunk length of :func:`gla_chunked_vjp`: ``C`` near ``min(Dk, Dv)`` balances the
    ``O(C (Dk + Dv))`` within-chunk work against the ``O(Dk Dv)`` state work per token, as
    in the forward engine (measured with ``bench/train.py``)."""
    c = 16 if min(Dk, Dv) <= 24 else 32
    return max(1, min(c, T))


def _chunk_cumsum(x):
    """Inclusive running sum along axis 2 (the chunk's tokens), one vector add per token:
    monotone for non-positive terms (``a_i <= a_j`` exactly for ``i >= j``)."""
    out = np.empty_like(x)
    out[:, :, 0] = x[:, :, 0]
    for i in range(1, x.shape[2]):
        np.add(out[:, :, i - 1], x[:, :, i], out=out[:, :, i])
    return out


@lru_cache(maxsize=64)
def _gate_sums(C: int) -> np.ndarray:
    """(C, 2C + 1) 0/1 matrix ``M`` with ``(M y)_r = Σ_{i>=r} y_i + Σ_{i<r} y_{C+i} + y_{2C}``:
    a reverse running sum of the first ``C`` rows of ``y``, an exclusive running sum of the
    next ``C`` and the last row, in one product (the log-gate gradients' sums over the
    chunk; measured ~3x faster than running sums along the chunk's token axis, whose
    slices are strided).  Cached (read-only)."""
    r = np.arange(C)[:, None]
    i = np.arange(C)[None, :]
    M = np.concatenate([i >= r, i < r, np.ones((C, 1), dtype=bool)], axis=1)
    return _readonly(M.astype(np.float64))


def _straddle(W, key: bool):
    """``out_r = Σ_{t>=r} Σ_{s<r} W_ts`` for ``W: (..., C, C)`` (scalar) or
    ``(..., C, C, Dk)`` (key; ``t`` rows, ``s`` columns): the part of the within-chunk
    pairs that log-gate ``r`` multiplies.  Every term is one pair: no cancellation."""
    if key:
        C = W.shape[-2]
        P = np.empty_like(W)  # P[t, r] = Σ_{s<r} W[t, s]
        P[..., 0, :] = 0.0
        for r in range(1, C):
            np.add(P[..., r - 1, :], W[..., r - 1, :], out=P[..., r, :])
        P *= _tril01(C)[:, :, None]  # keep t >= r
        return P.sum(axis=-3)
    C = W.shape[-1]
    # P[t, r] = Σ_{s<r} W[t, s]: one product with a strict upper triangle of ones (the
    # same sums as a cumsum along s, bit for bit on the bench shapes; 2.5x faster at C = 16)
    P = np.matmul(W, _strict_tril01(C).T)
    P *= _tril01(C)  # keep t >= r
    return np.einsum("...tr->...r", P)


@lru_cache(maxsize=64)
def _strict_tril01(C: int) -> np.ndarray:
    """(C, C) float mask: 1 strictly below the diagonal.  Cached (read-only)."""
    return _readonly(np.tril(np.ones((C, C)), -1))


def _state_scan(S, gam, forward: bool) -> None:
    """The chunk-level scans, in place along axis 0 (chunks).

    ``S: (G, B, Dk, Dv)`` chunk-major (every step then works on contiguous blocks, and one
    loop serves all prompts: measured ~10x faster than a loop per block of prompts over
    ``(b, G, ...)`` slices), ``gam: (G, B, Dg)`` the chunk decays (``Dg = Dk`` for key
    gates, which scale the rows of ``Sᵀ``; 1 for scalar gates).  ``forward``: ``S[0]``
    holds the initial state and ``S[m]`` the contribution ``U_{m-1}`` of chunk ``m-1``;
    afterwards ``S[m] = γ_{m-1} ⊙ S[m-1] + U_{m-1}``, the state before chunk ``m``.
    Otherwise (the state gradients): ``S[G-1]`` holds the final value and ``S[m]`` the
    term ``X_{m+1}`` of chunk ``m+1``; afterwards ``S[m] = γ_{m+1} ⊙ S[m+1] + X_{m+1}``.
    """
    G = S.shape[0]
    g = gam[..., None]  # (G, B, Dg, 1)
    if gam.shape[2] > 1:  # key decays expanded to the states' shape (no Dv-long inner loops)
        g = np.broadcast_to(g, S.shape).copy()
    tmp = np.empty(S.shape[1:])
    Sl, gl = list(S), list(g)
    steps = (
        zip(range(1, G), range(G - 1))
        if forward
        else zip(range(G - 2, -1, -1), range(G - 1, 0, -1))
    )
    for m, p in steps:  # S[m] += γ_p ⊙ S[p], p the previous chunk in the scan's direction
        np.multiply(Sl[p], gl[p], out=tmp)
        np.add(Sl[m], tmp, out=Sl[m])


def _key_dense(Q, K, lg):
    """Exact key-gated scores of whole chunks: ``E_ijd = exp(a_id - a_jd)`` (``j <= i``,
    else 0) and ``A_ij = Σ_d q_id k_jd E_ijd``; ``Q, K, lg: (n, C, Dk)``."""
    a = _chunk_cumsum(lg[:, None])[:, 0]
    E = a[:, :, None, :] - a[:, None, :, :]
    E += _causal_neg(Q.shape[1])[:, :, None]
    _exp_nonpos(E, out=E)
    return np.einsum("nid,njd,nijd->nij", Q, K, E), E


def gla_chunked_vjp(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike | None,
    *,
    gate: str = "scalar",
    chunk_size: int | None = None,
) -> tuple[np.ndarray, VJP]:
    """Forward GLA outputs and their vector-Jacobian product, in chunks.

    Parameters
    ----------
    q, k : (B, T, Dk).   v : (B, T, Dv).
    log_g : ``(B, T)`` (``gate="scalar"``), ``(B, T, Dk)`` (``gate="key"``, on the key axis),
        entries ``<= 0``; or ``None`` for linear attention (no gate, no gate gradient).
    chunk_size : positive int or None (16, 32 if ``min(Dk, Dv) > 24``).

    Returns
    -------
    ``(o, vjp)``: ``o: (B, T, Dv)`` with ``o_t = S_t q_t`` (scale 1, current token included)
    and ``vjp(dO, out=None) -> (dq, dk, dv, dlog_g)``, the gradients of ``Σ_t <dO_t, o_t>``
    (``dlog_g`` shaped like ``log_g``, None without gates; ``out``: four arrays of those
    shapes, or views, to write them into).  Results beyond the float64
    range raise ``ValueError``.

    >>> import numpy as np
    >>> q, k, v = np.ones((1, 2, 1)), np.ones((1, 2, 1)), np.array([[[1.0], [2.0]]])
    >>> o, vjp = gla_chunked_vjp(q, k, v, np.log([[1.0, 0.5]]))
    >>> o[0, :, 0]                                 # o_2 = g_2 v_1 + v_2
    array([1. , 2.5])
    >>> dq, dk, dv, dlg = vjp(np.array([[[0.0], [1.0]]]))
    >>> dv[0, :, 0], dlg[0]                        # d o_2/d v = (g_2, 1); d o_2/d log g_2 = g_2 v_1
    (array([0.5, 1. ]), array([0. , 0.5]))
    """
    gated = log_g is not None
    if log_g is None:
        gate = "scalar"
        log_g = np.zeros(np.shape(q)[:2])
    qa, ka, va, lga, _ = _check_inputs(q, k, v, log_g, gate)
    cs = _check_chunk_size(chunk_size)
    if qa.shape[0] == 0 or qa.shape[1] == 0:
        raise ValueError(f"q: needs at least one prompt and one token, got shape {qa.shape}")
    return _vjp(qa, ka, va, lga, gated, gate, cs, check=True)


def gla_chunked_vjp_unchecked(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    log_g: np.ndarray | None,
    *,
    gate: str = "scalar",
    chunk_size: int | None = None,
) -> tuple[np.ndarray, VJP]:
    """:func:`gla_chunked_vjp` for a caller that guarantees its arguments: float64 arrays of
    consistent shapes with at least one prompt and one token, finite, log-gates ``<= 0``.
    Neither the inputs nor the results are scanned (each scan is a pass over an array as
    large as the result): a result beyond the float64 range comes back as ``inf``/``NaN``
    instead of a ``ValueError``, and the caller checks what it derives from them (the
    training passes check every projection, prediction and gradient).

    >>> q, k, v = np.ones((1, 2, 1)), np.ones((1, 2, 1)), np.array([[[1.0], [2.0]]])
    >>> o, vjp = gla_chunked_vjp_unchecked(q, k, v, np.log([[1.0, 0.5]]))
    >>> o[0, :, 0], vjp(np.array([[[0.0], [1.0]]]))[3][0]
    (array([1. , 2.5]), array([0. , 0.5]))
    """
    gated = log_g is not None
    lga = np.zeros(q.shape[:2]) if log_g is None else log_g
    return _vjp(q, k, v, lga, gated, "scalar" if log_g is None else gate, chunk_size, check=False)


def _vjp(qa, ka, va, lga, gated, gate, cs, check):
    """:func:`gla_chunked_vjp` on validated arrays; ``check``: scan outputs for overflow.

    Three passes over blocks of prompts: each block's chunk-local work (:class:`_Key` or
    :class:`_Scalar`), one state scan over all prompts (:func:`_state_scan`), each block's
    outputs."""
    B, T, Dk = qa.shape
    Dv = va.shape[2]
    C = min(cs or default_vjp_chunk_size(T, Dk, Dv), T)
    G = -(-T // C)
    key = gate == "key"
    nb = _batch_block(B, G * C, C, Dk, Dv, key)
    lgc = np.maximum(lga, _LOG_FLOOR)  # see _LOG_FLOOR
    blocks: list[tuple[slice, _Scalar | _Key]] = []
    S = np.empty((G, B, Dk, Dv))  # states before each chunk, chunk-major (see _state_scan)
    gam = np.empty((G, B, Dk if key else 1))  # chunk decays, chunk-major
    for b0 in range(0, B, nb):
        sl = slice(b0, min(B, b0 + nb))
        # contiguous blocks (a copy when q, k, v are column blocks of a wider array, as in
        # the training passes: measured ~0.92x the forward and reverse time with the copies)
        Q, K, V, lg = (_chunks(np.ascontiguousarray(x[sl]), G, C) for x in (qa, ka, va, lgc))
        run = _Key(Q, K, V, lg) if key else _Scalar(Q, K, V, lg, gated)
        run.state_input(S[1:, sl].transpose(1, 0, 2, 3))
        gam[:, sl] = run.gam.reshape(run.gam.shape[:2] + (-1,)).transpose(1, 0, 2)
        blocks.append((sl, run))
    S[0] = 0.0
    _state_scan(S, gam, forward=True)
    o = np.empty((B, T, Dv))
    for sl, run in blocks:
        n = sl.stop - sl.start
        Sb = S[:, sl].transpose(1, 0, 2, 3)
        if G * C == T:
            run.output(Sb, out=o[sl].reshape(n, G, C, Dv))
        else:
            o[sl] = run.output(Sb).reshape(n, G * C, Dv)[:, :T]
    if check:
        _check_output(o, qa, ka, va)

    def vjp(dO: ArrayLike, out: Sequence[np.ndarray | None] | None = None) -> Grads:
        return _reverse(blocks, (qa, ka, va, lga if gated else None), S, gam, G, C, dO, out, check)

    return o, vjp


def _reverse(blocks, inputs, S, gam, G, C, dO, out, check=True):
    """The reverse pass of :func:`gla_chunked_vjp` over its blocks of prompts: gradients
    written into ``out`` (four arrays/views or None entries; new arrays if ``out`` is
    None) and returned as a tuple; ``inputs = (q, k, v, log_g or None)``; ``S, gam``: the
    forward's chunk-major states and decays; ``check``: scan the gradients for overflow."""
    q, k, v, _ = inputs
    B, T, Dv = v.shape
    dOa = np.asarray(dO, dtype=np.float64)
    if dOa.shape != (B, T, Dv):
        raise ValueError(f"dO: expected shape {(B, T, Dv)}, got {dOa.shape}")
    if out is None:
        out = [np.empty_like(x) if x is not None else None for x in inputs]
    dOc = [_chunks(np.ascontiguousarray(dOa[sl]), G, C) for sl, _ in blocks]
    dS = np.empty_like(S)  # gradients wrt the state after each chunk, chunk-major
    for (sl, run), d in zip(blocks, dOc):
        run.state_grad_input(d, dS[:-1, sl].transpose(1, 0, 2, 3))
    dS[-1] = 0.0
    _state_scan(dS, gam, forward=False)
    # d log g from the pairs past chunks -> later chunks: γ_m ⊙ Σ_v Sᵀ_m ⊙ dSᵀ_m, one
    # contraction over all prompts (contiguous, chunk-major); not needed without gates
    x2 = None
    if inputs[3] is not None:
        if gam.shape[2] > 1:
            x2 = np.einsum("gbdv,gbdv->gbd", S, dS)
        else:
            x2 = np.einsum("gbdv,gbdv->gb", S, dS)[..., None]
        x2 *= gam
    # Each block's gradients are computed in contiguous arrays and then copied into out's
    # rows (writing the last products straight into out's column views measured ~1.05x).
    for (sl, run), d in zip(blocks, dOc):
        grads = run.backward(
            d,
            S[:, sl].transpose(1, 0, 2, 3),
            dS[:, sl].transpose(1, 0, 2, 3),
            None if x2 is None else x2[:, sl].transpose(1, 0, 2),
        )
        for x, g in zip(out, grads):
            if x is not None:
                n = g.shape[0]
                x[sl] = g.reshape((n, G * C) + g.shape[3:])[:, :T]
    for x in out:
        if x is not None and check:
            _check_output(x, q, k, v, what="gradient")
    return tuple(out)


def _batch_block(B, Tp, C, Dk, Dv, key):
    """Prompts per block: the block's largest temporaries (scores ``(Tp, C)`` per prompt, key
    gates ``(Tp, Dk)`` several times) stay near 2 MB, so that the passes over them run in
    cache; the reverse pass of a block reuses that block's saved forward quantities."""
    per_prompt = 8 * Tp * max(C, Dk, Dv) * (3 if key else 1)
    return max(1, min(B, (1 << 21) // per_prompt))


def _chunks(x, G, C):
    """``(n, T, ...) -> (n, G, C, ...)``, zero-padded at the end to ``G·C`` tokens (padded
    tokens have q = k = v = 0 and gate 1: they change nothing before them)."""
    n, T = x.shape[:2]
    if G * C != T:
        y = np.empty((n, G * C) + x.shape[2:])
        y[:, :T] = x
        y[:, T:] = 0.0
        x = y
    return x.reshape((n, G, C) + x.shape[2:])


class _ChunkForm:
    """What the scalar and key chunk forms share: with the chunks' scores ``A``, values
    ``V``, decayed queries ``Qt`` (``Q̃``) and keys ``Kw`` (``K_w``) set by the subclass,
    the products that feed and read the chunk-major state scans."""

    A: np.ndarray
    V: np.ndarray
    Qt: np.ndarray
    Kw: np.ndarray

    def state_input(self, out):
        """``out[:, m] = K_wᵀ V`` of chunk ``m < G - 1``, the chunk's addition to the state."""
        np.matmul(self.Kw[:, :-1].swapaxes(-1, -2), self.V[:, :-1], out=out)

    def output(self, Sb, out=None):
        """Outputs ``A V + Q̃ Sᵀ_m`` given the states ``Sb`` before each chunk."""
        O = np.matmul(self.A, self.V, out=out)
        O += np.matmul(self.Qt, Sb)
        return O

    def state_grad_input(self, dO, out):
        """``out[:, m] = Q̃ᵀ dO`` of chunk ``m + 1``: the read-out's term of ``dSᵀ_{m+1}``."""
        np.matmul(self.Qt[:, 1:].swapaxes(-1, -2), dO[:, 1:], out=out)


class _Scalar(_ChunkForm):
    """Scalar gates (or none): forward in ``__init__``, reverse in :meth:`backward`.

    Scores as in the forward engine's scalar tiles: factorised ``tril(Q̃ K̃ᵀ)`` (``Q̃ = Q e^a``,
    ``K̃ = K e^-a``) when every chunk's log-gate sum is ``>= -KEY_FAST_SPAN`` and every
    chunk's largest ``|q|`` lies in ``[2^-100, 2^100]``, else the exact
    ``(Q Kᵀ) ⊙ exp(a_i - a_j)`` (kept as ``E`` for the reverse pass)."""

    def __init__(self, Q, K, V, lg, gated):
        self.Q, self.K, self.V, self.gated = Q, K, V, gated
        C = Q.shape[2]
        self.E = self.Kt = None
        if gated:
            a = _chunk_cumsum(lg)  # (B, G, C)
            alast = a[..., -1]
            self.ea = _exp_nonpos(a)  # chunk start -> token
            self.w = _exp_nonpos(alast[..., None] - a)  # token -> chunk end
            self.gam = _exp_nonpos(alast)  # the chunk's decay
            self.Qt = Q * self.ea[..., None]
            A = self._fast_scores(a) if _fast_block(Q, alast) else None
            if A is None:
                E = a[..., :, None] - a[..., None, :]  # <= 0 on/below the diagonal
                E += _causal_neg(C)
                _exp_nonpos(E, out=E)
                A = np.matmul(Q, K.swapaxes(-1, -2))
                A *= E
                self.E = E
            Kw = K * self.w[..., None]
        else:
            A = np.matmul(Q, K.swapaxes(-1, -2))
            A *= _tril01(C)
            self.gam = np.ones(Q.shape[:2])
            Kw, self.Qt = K, Q
        self.A, self.Kw = A, Kw

    def _fast_scores(self, a):
        self.einv = np.exp(-a)  # <= e^span
        self.Kt = self.K * self.einv[..., None]
        with np.errstate(over="ignore", invalid="ignore"):
            A = np.matmul(self.Qt, self.Kt.swapaxes(-1, -2))
        A *= _tril01(a.shape[-1])
        if not (_finite_sum(A) or np.all(np.isfinite(A))):
            self.Kt = None
            return None  # |k| beyond ~1e170
        return A

    def backward(self, dO, Sb, dSn, x2):
        """Gradients ``(dQ, dK, dV, dlg)`` in chunks (``(b, G, C, ...)``) given ``dO``, the
        states ``Sb`` before and the state gradients ``dSn`` after each chunk and ``x2:
        (b, G, Dg)`` (None without gates), the log-gate gradient from the pairs past
        chunks -> later chunks (``γ_m ⊙ Σ_v S_m ⊙ dS_m``, see :func:`_reverse`)."""
        Q, K, V, A = self.Q, self.K, self.V, self.A
        n, G, C, _ = Q.shape
        dA = np.matmul(dO, V.swapaxes(-1, -2))
        dA *= _tril01(C)
        dV = np.matmul(A.swapaxes(-1, -2), dO)
        dV += np.matmul(self.Kw, dSn)
        dQin = np.matmul(dO, Sb.swapaxes(-1, -2))  # wrt Q̃ (inter-chunk read-out)
        dKw = np.matmul(V, dSn.swapaxes(-1, -2))  # wrt K_w (state update)
        if not self.gated:
            dQ = np.matmul(dA, K)
            dQ += dQin
            dK = np.matmul(dA.swapaxes(-1, -2), Q)
            dK += dKw
            return dQ, dK, dV, None
        if self.Kt is not None:  # factorised scores
            dQ = np.matmul(dA, self.Kt)
            dQ += dQin
            dQ *= self.ea[..., None]
            dK = np.matmul(dA.swapaxes(-1, -2), self.Qt)
            dK *= self.einv[..., None]
        else:
            dAE = dA * self.E
            dQ = np.matmul(dAE, K)
            dQ += dQin * self.ea[..., None]
            dK = np.matmul(dAE.swapaxes(-1, -2), Q)
        # d log g: the pairs straddling each token (module docstring), summed over the
        # chunk by _gate_sums: past chunks -> this chunk, this chunk -> later chunks, past
        # chunks -> later chunks; then the pairs within the chunk.
        Y = np.empty((n, G, 2 * C + 1))
        np.einsum("bgcd,bgcd->bgc", self.Qt, dQin, out=Y[..., :C])
        np.einsum("bgcd,bgcd->bgc", self.Kw, dKw, out=Y[..., C : 2 * C])
        Y[..., 2 * C] = x2[..., 0]
        dK += dKw * self.w[..., None]
        dlg = np.matmul(Y, _gate_sums(C).T)
        dA *= A
        dlg += _straddle(dA, key=False)  # within the chunk
        return dQ, dK, dV, dlg


def _fast_block(Q, alast) -> bool:
    """Factorised scores are safe: chunk sums ``>= -KEY_FAST_SPAN``, chunk ``max |q|`` in
    ``[2^-100, 2^100]`` (``q e^a`` then loses nothing to underflow, see ``chunked.py``)."""
    if alast.size == 0 or alast.min() < -KEY_FAST_SPAN:
        return False
    qmax = np.maximum(Q.max(axis=(-2, -1)), -Q.min(axis=(-2, -1)))  # no |Q| temporary
    return bool(qmax.max() < 2.0**100 and qmax.min() >= 2.0**-100)


class _Key(_ChunkForm):
    """Key gates (decay on the key axis): factorised chunks plus exact dense chunks."""

    def __init__(self, Q, K, V, lg):
        self.Q, self.K, self.V = Q, K, V
        C = Q.shape[2]
        a = _chunk_cumsum(lg)  # (B, G, C, Dk)
        alast = a[:, :, -1]
        amin = alast.min(axis=-1)  # (B, G) each chunk's smallest log-decay
        # a and alast - a are >= alast (a is a running sum of terms <= 0, rounding is
        # monotone): without a log-decay below _EXP_FAST_MIN, np.exp is _exp_nonpos (bit
        # for bit) without its reductions over the full arrays.
        exp = np.exp if amin.min() >= _EXP_FAST_MIN else _exp_nonpos
        self.gam = exp(alast)
        self.ea = exp(a)
        self.Qt = Q * self.ea
        w = np.subtract(alast[:, :, None, :], a)
        self.w = exp(w, out=w)  # token -> chunk end, <= 1
        self.Kw = K * self.w
        # In slow chunks exp(-a) may overflow (inf, and inf·0 = NaN): harmless, every
        # quantity of a slow chunk built from K̃ is replaced by the exact dense form.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.einv = 1.0 / self.ea  # exp(-a) <= e^span on fast chunks
            self.Kt = K * self.einv
            A = np.matmul(self.Qt, self.Kt.swapaxes(-1, -2))
            A *= _tril01(C)
        slow = amin < -KEY_FAST_SPAN
        if not _finite_sum(A):
            slow |= ~np.isfinite(A).all(axis=(-1, -2))
        self.slow = np.nonzero(slow)
        self.E_slow = None
        if slow.any():
            bi, gi = self.slow
            A[bi, gi], self.E_slow = _key_dense(Q[bi, gi], K[bi, gi], lg[bi, gi])
        self.A = A

    def backward(self, dO, Sb, dSn, x2):
        """As :meth:`_Scalar.backward`; ``x2: (b, G, Dk)``."""
        Q, K, V, A = self.Q, self.K, self.V, self.A
        n, G, C, Dk = Q.shape
        dA = np.matmul(dO, V.swapaxes(-1, -2))
        dV = np.matmul(A.swapaxes(-1, -2), dO)
        dV += np.matmul(self.Kw, dSn)
        dQin = np.matmul(dO, Sb.swapaxes(-1, -2))
        dKw = np.matmul(V, dSn.swapaxes(-1, -2))
        # The terms of d log g, summed in one product with _gate_sums(C): rows [0, C) the
        # pairs this chunk -> this chunk and past chunks -> this chunk (telescoping),
        # [C, 2C) this chunk -> later chunks, row 2C past chunks -> later chunks.
        Y = np.empty((n, G, 2 * C + 1, Dk))
        np.multiply(self.Kw, dKw, out=Y[:, :, C : 2 * C])
        Y[:, :, 2 * C] = x2
        slow = self.E_slow is not None
        if slow:
            bi, gi = self.slow
            dA_slow = dA[bi, gi] * _tril01(C)
            dQin_slow, dKw_slow = dQin[bi, gi], dKw[bi, gi]
        diag = np.diagonal(dA, axis1=-2, axis2=-1)[..., None].copy()  # dA_tt (decay 1)
        dA *= _strict_tril01(C)  # pairs s < t
        with np.errstate(over="ignore", invalid="ignore"):
            dQt = np.matmul(dA, self.Kt)  # wrt Q̃
            dQt += dQin
            tel = np.multiply(self.Qt, dQt, out=Y[:, :, :C])  # telescoping within the chunk
            dKt = np.matmul(dA.swapaxes(-1, -2), self.Qt)  # wrt K̃
            tel -= self.Kt * dKt
            dQ = dQt
            dQ *= self.ea
            dQ += np.multiply(diag, K, out=dQin)
            dK = dKt
            dK *= self.einv
            dK += np.multiply(diag, Q, out=dQin)
            dKw *= self.w
            dK += dKw
        if slow:
            dQ[bi, gi], dK[bi, gi], st = self._dense_backward(dA_slow, dQin_slow, dKw_slow)
            Y[bi, gi, :C] = self.Qt[bi, gi] * dQin_slow
        dlg = np.matmul(_gate_sums(C), Y)
        if slow:
            dlg[bi, gi] += st
        return dQ, dK, dV, dlg

    def _dense_backward(self, dA, dQin, dKw):
        """Exact slow chunks: ``dQ, dK`` and the within-chunk straddling sums."""
        bi, gi = self.slow
        Q, K, E = self.Q[bi, gi], self.K[bi, gi], self.E_slow
        dQ = np.einsum("nij,nijd,njd->nid", dA, E, K) + dQin * self.ea[bi, gi]
        dK = np.einsum("nij,nijd,nid->njd", dA, E, Q) + dKw * self.w[bi, gi]
        W = dA[..., None] * Q[:, :, None, :] * K[:, None, :, :] * E
        return dQ, dK, _straddle(W, key=True)
