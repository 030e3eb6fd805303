"""The chunkwise-parallel GLA engine :func:`gla_chunked` (scalar and key gates)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._common import _LOG_FLOOR, GATES, _check_inputs, _check_output, _check_scale

__all__ = ["ChunkTuning", "KEY_FAST_SPAN", "default_chunk_size", "gla_chunked"]


@dataclass(frozen=True)
class ChunkTuning:
    """Performance knobs of :func:`gla_chunked`; they never change the result beyond rounding.

    tile_bytes : budget (bytes) for the largest per-tile temporary.  Tiles this size stay
        in the L2/L3 cache, so only the inputs and the output travel to and from memory.
    blas_serial_mnk : largest ``M·N·K`` of a matmul issued as one call.  OpenBLAS (the BLAS
        numpy ships with) runs a gemm multi-threaded above ``4 · 65536``; on a shared, busy
        machine that path was measured 10-100x slower than the serial one.  The scalar
        state scan switches from one matmul to a loop over chunks above this size.

    Tests pass small values (``ChunkTuning(tile_bytes=1, blas_serial_mnk=0)``) to drive
    every code path on small inputs.

    >>> ChunkTuning().tile_bytes == 1 << 21
    True
    """

    tile_bytes: int = 1 << 21
    blas_serial_mnk: int = 4 * 65536

    def __post_init__(self):
        for name in ("tile_bytes", "blas_serial_mnk"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"tuning: {name} must be a non-negative integer, got {v!r}")


DEFAULT_TUNING = ChunkTuning()


def _check_chunk_size(chunk_size):
    if chunk_size is None:
        return None
    if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size, (int, np.integer)):
        raise ValueError(f"chunk_size: must be a positive integer or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: must be >= 1, got {chunk_size}")
    return int(chunk_size)


def default_chunk_size(T: int, Dk: int, Dv: int, gate: str = "scalar") -> int:
    """Chunk length used by :func:`gla_chunked` when ``chunk_size=None``.

    The intra-chunk work per token is ``O(C (Dk + Dv))`` (both gate types: key gates
    use the factorised fast path, plus ``O(Dk)`` exponentials per token), the
    inter-chunk work ``O(Dk Dv)`` per token plus one state of ``Dv·Dk`` per chunk; ``C``
    near ``min(Dk, Dv)`` balances the two.  Tuned on the benchmark workloads of
    ``bench/gla.py`` (see ``docs/engines.md``); the same for both gate types (key gates:
    C = 16/32/64 were within the timing noise of each other, C = 8 ~1.5x slower on ICL).
    ``gate`` is kept for the interface (and in case the two ever diverge again).
    """
    if gate not in GATES:
        raise ValueError(f"gate: must be one of {GATES}, got {gate!r}")
    c = 16 if min(Dk, Dv) <= 24 else 32
    return max(1, min(c, T))


@lru_cache(maxsize=64)
def _scan_masks(G: int, rows: int):
    """(rows, G) masks for the in-tile state scan: ``sel[n, m] = 1`` if ``n - 1 > m``
    (else 0) and ``neg[n, m] = -inf`` if ``m >= n`` (else 0).  Cached per shape (read-only)."""
    n = np.arange(rows)[:, None]
    m = np.arange(G)[None, :]
    return _readonly((n - 1 > m).astype(float)), _readonly(np.where(m >= n, -np.inf, 0.0))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False  # shared by all calls through a cache
    return a


def _tile_scalar(Q, K, V, lg, s, need_state, serial_mnk, ws, out):
    """One tile of the scalar chunked engine.

    Q, K: (b, G, C, Dk); V: (b, G, C, Dv); lg: (b, G, C) clamped log-gates;
    s: (b, Dk, Dv) *transposed* state S^T before the tile, or None (zero); ws: buffers
    (:func:`_ws_buf`) shared by the tiles of one call; out: (b, G, C, Dv) array (a view of
    the engine's output) that receives the unscaled tile output.  Returns the transposed
    state after the tile (None if not needed; it lives in ``ws``).  States are kept
    transposed because ``Q @ S^T`` then multiplies contiguous operands (measured
    ~1.5-2x faster than through a transposed view).
    """
    b, G, C, Dk = Q.shape
    Dv = V.shape[-1]
    a = np.cumsum(lg, axis=-1, out=_ws_buf(ws, "s_a", (b, G, C)))  # chunk-local, monotone
    alast = a[..., -1]  # (b, G): log of the chunk's gate product
    # exp(a_i - a_j) for j <= i: a non-positive difference (sum of log-gates over
    # (j, i]); above the diagonal the -inf mask gives exactly 0.  (A factorised form
    # Q e^a (K e^-a)^T, as for key gates, was measured no faster here: 0.92x on the ICL
    # workload, 1.02x on the long one.)
    E = np.subtract(a[..., :, None], a[..., None, :], out=_ws_buf(ws, "s_E", (b, G, C, C)))
    E += _causal_neg(C)
    np.exp(E, out=E)
    A = np.matmul(Q, K.swapaxes(-1, -2), out=_ws_buf(ws, "s_A", (b, G, C, C)))
    A *= E
    O = np.matmul(A, V, out=out)
    if G == 1 and s is None and not need_state:
        return None
    w = np.subtract(alast[..., None], a, out=_ws_buf(ws, "s_w", (b, G, C)))
    np.exp(w, out=w)  # decay token -> chunk end, <= 1
    Kw = np.multiply(K, w[..., None], out=_ws_buf(ws, "s_Kw", (b, G, C, Dk)))
    U = np.matmul(Kw.swapaxes(-1, -2), V, out=_ws_buf(ws, "s_U", (b, G, Dk, Dv)))  # U^T
    rows = G + 1 if need_state else G
    Sp = _scalar_state_scan(U, alast, s, rows, serial_mnk, ws)
    s_new = None
    if need_state:
        # Its own buffer: Sp is rewritten by the next tile before that tile reads s.
        s_new = _ws_buf(ws, "s_state", (b, Dk, Dv))
        np.copyto(s_new, Sp[:, G])
    lo = 1 if s is None else 0  # chunk 0 sees a zero state
    if lo < G:
        inter = _ws_buf(ws, "s_inter", (b, G, C, Dv))[:, lo:]
        np.matmul(Q[:, lo:], Sp[:, lo:G], out=inter)
        inter *= np.exp(a[:, lo:])[..., None]  # decay chunk start -> token, <= 1
        O[:, lo:] += inter
    return s_new


def _scalar_state_scan(U, alast, s, rows, serial_mnk, ws):
    """Transposed states before each chunk of the tile (row ``G``: after the tile)."""
    b, G, Dk, Dv = U.shape
    if rows * G * Dv * Dk <= serial_mnk:
        # Small states (the ICL regime): all chunk states of the tile in one matmul.
        # Sp[n] = Σ_{m<n} exp(L[n, m]) U[m] + exp(P[n]) s for n = 0..G (row G is the
        # state after the tile), L[n, m] = Σ_{m<l<n} alast_l, P[n] = Σ_{l<n} alast_l;
        # both are accumulated directly (cumsum down columns), not as differences of
        # prefix sums: no cancellation.
        sel, neg = _scan_masks(G, rows)
        prev = np.empty((b, rows))  # prev[n] = alast_{n-1}
        prev[:, 0] = 0.0
        prev[:, 1:] = alast[:, : rows - 1]
        L = prev[:, :, None] * sel  # L[n, m] = alast_{n-1} if n-1 > m
        np.cumsum(L, axis=1, out=L)
        L += neg
        np.exp(L, out=L)
        Sp = np.matmul(L, U.reshape(b, G, Dv * Dk), out=_ws_buf(ws, "s_Sp", (b, rows, Dv * Dk)))
        if s is not None:
            P = np.zeros((b, rows))
            np.cumsum(alast[:, : rows - 1], axis=1, out=P[:, 1:])
            Sp += np.exp(P)[:, :, None] * s.reshape(b, 1, Dv * Dk)
        return Sp.reshape(b, rows, Dk, Dv)
    # Large states: a loop over the tile's chunks (each step is O(b·Dv·Dk) work,
    # so the Python overhead is negligible).
    gl = np.exp(alast)
    Sp = _ws_buf(ws, "s_Sp", (b, rows, Dk, Dv))
    if s is None:
        Sp[:, 0] = 0.0
    else:
        Sp[:, 0] = s
    for n in range(1, rows):
        np.multiply(Sp[:, n - 1], gl[:, n - 1, None, None], out=Sp[:, n])
        Sp[:, n] += U[:, n - 1]
    return Sp


# Chunks whose log-gate sum (per key feature) stays above -KEY_FAST_SPAN use the
# factorised within-chunk product (reference = chunk start): q_i ⊙ exp(a_i) with
# exp(a_i) >= e^-300 ~ 5e-131 and k_j ⊙ exp(-a_j) <= e^300 ~ 2e130.  If a chunk's
# max |q| is outside [2^-100, 2^100], q is first scaled per chunk by a power of two to
# max |q| in [1/2, 1) (exact; undone on the output), so q_i ⊙ exp(a_i) loses no
# relative precision to subnormals whatever the scale of q: only entries ~1e-148 below
# the chunk's largest one can underflow, and their contribution to the output is below
# the rounding of the others (relative to the output's norm).  k_j ⊙ exp(-a_j) stays far
# below overflow unless |k| > ~1e170; scores that do overflow are detected (not finite)
# and recomputed exactly.  Chunks beyond the span take the exact dense path.  A smaller
# span would only send more chunks to the dense path; the rounding of the exponents,
# ~C·eps·300 ~ 1e-12 relative, is the same in both paths.
KEY_FAST_SPAN = 300.0


@lru_cache(maxsize=64)
def _tril01(C: int) -> np.ndarray:
    """(C, C) float mask: 1 on and below the diagonal, 0 above.  Cached per ``C`` (read-only)."""
    return _readonly(np.tril(np.ones((C, C))))


@lru_cache(maxsize=64)
def _causal_neg(C: int) -> np.ndarray:
    """(C, C) additive mask: 0 on and below the diagonal, -inf above.  Cached (read-only)."""
    return _readonly(np.where(np.tril(np.ones((C, C))) > 0, 0.0, -np.inf))


def _key_seq_dense(Q, K, V, lg, s, need_state, sub, ws=None):
    """Exact key-gated GLA of short sequences by dense sub-chunks (the old engine).

    Q, K, lg: (n, L, Dk) (lg clamped log-gates); V: (n, L, Dv); s: (n, Dk, Dv)
    transposed initial state S^T or None (zero); ws: optional buffer dict
    (:func:`_ws_buf`; only for calls whose shapes repeat).  Returns the unscaled output
    (n, L, Dv) and, if ``need_state``, the transposed state after the L tokens (else
    None); with ``ws`` both live in buffers overwritten by the next call.

    The L tokens are cut into sub-chunks of ``sub`` tokens (zero-padded at the end if
    ``sub`` does not divide L: padded tokens have q = k = v = 0 and gate 1, so they
    change neither the outputs before them nor the state).  Within a sub-chunk the dense
    (sub, sub, Dk) decay ``exp(a_i - a_j)`` (``j <= i``); across sub-chunks a (Dk, Dv)
    state decayed by ``exp(a_last) <= 1`` and read through ``q_i ⊙ exp(a_i)``; the
    cumulative sums ``a`` are sub-chunk-local (``np.cumsum``: monotone, so every exponent
    is ``<= 0`` exactly).  No overflow for any gate, gate 0 included; ``sub·Dk``
    exponentials per token.
    """

    def buf(name, shape):
        return np.empty(shape) if ws is None else _ws_buf(ws, "dense_" + name, shape)

    n, L, Dk = Q.shape
    Dv = V.shape[-1]
    sub = max(1, min(sub, L))
    G2 = -(-L // sub)
    Lp = G2 * sub
    if Lp != L:
        pad = ((0, 0), (0, Lp - L), (0, 0))
        Q, K, V, lg = (np.pad(x, pad) for x in (Q, K, V, lg))
    q, k, lg = (x.reshape(n, G2, sub, Dk) for x in (Q, K, lg))
    v = V.reshape(n, G2, sub, Dv)
    a = np.cumsum(lg, axis=2, out=buf("a", (n, G2, sub, Dk)))  # sub-chunk-local
    E = np.subtract(
        a[:, :, :, None, :], a[:, :, None, :, :], out=buf("E", (n, G2, sub, sub, Dk))
    )  # <= 0 on/below the diagonal
    E += _causal_neg(sub)[:, :, None]
    np.exp(E, out=E)
    E *= q[:, :, :, None, :]
    A = np.einsum("mgijd,mgjd->mgij", E, k, out=buf("A", (n, G2, sub, sub)))
    O = np.matmul(A, v, out=buf("O", (n, G2, sub, Dv)))
    s_new = None
    if G2 > 1 or s is not None or need_state:
        alast = a[:, :, -1, :]  # (n, G2, Dk)
        w = np.subtract(alast[:, :, None, :], a, out=buf("w", (n, G2, sub, Dk)))  # <= 0
        np.exp(w, out=w)
        w *= k
        U = np.matmul(w.swapaxes(-1, -2), v, out=buf("U", (n, G2, Dk, Dv)))  # U^T
        gl = np.exp(alast)
        Sp = buf("Sp", (n, G2, Dk, Dv))  # Sp[:, g]: S^T before sub-chunk g
        Sp[:, 0] = 0.0 if s is None else s
        for g in range(1, G2):
            np.multiply(Sp[:, g - 1], gl[:, g - 1, :, None], out=Sp[:, g])
            Sp[:, g] += U[:, g - 1]
        if need_state:
            # May be the buffer s came in: s was already copied into Sp[:, 0].
            s_new = np.multiply(Sp[:, -1], gl[:, -1, :, None], out=buf("s", (n, Dk, Dv)))
            s_new += U[:, -1]
        lo = 1 if s is None else 0  # sub-chunk 0 sees a zero state
        if lo < G2:
            qd = np.exp(a[:, lo:], out=w[:, lo:])  # sub-chunk start -> token, <= 1
            qd *= q[:, lo:]
            O[:, lo:] += np.matmul(qd, Sp[:, lo:], out=buf("inter", (n, G2, sub, Dv))[:, lo:])
    return O.reshape(n, Lp, Dv)[:, :L], s_new


def _ws_buf(ws, name, shape):
    """A reusable float64 buffer ``ws[(name, shape)]`` (allocated on first use).

    The key-gated tiles write every large temporary into such buffers: allocating fresh
    tile-sized arrays for each of the hundreds of tiles cost ~70% of the engine's time
    (fresh pages are zero-filled by the kernel on first touch, measured 0.45 s vs 0.13 s
    per pass of the long benchmark workload).
    """
    key = (name, shape)
    buf = ws.get(key)
    if buf is None:
        buf = ws[key] = np.empty(shape)
    return buf


def _tile_key(Q, K, V, lg, s, mask, need_state, ws=None):
    """One tile of the key-gated chunked engine (decay on the Dk axis).

    Q, K: (b, G, C, Dk); V: (b, G, C, Dv); lg: (b, G, C, Dk) log-gates (gate of key
    feature d of each token; clamped to ``>= _LOG_FLOOR`` here); s: (b, Dk, Dv)
    *transposed* state S^T before the tile, or None (zero); mask: (C, C), 0 on/below
    the diagonal, -inf above (used by the dense path only); ws: a dict of
    reusable buffers (:func:`_ws_buf`), shared by the tiles of one call.  Returns the
    unscaled tile output (b, G, C, Dv) and the transposed state after the tile (None if
    not needed); both live in ``ws`` and are overwritten by the next tile (the caller
    consumes the output and passes the state on before that).

    With chunk-local cumulative log-gates ``a_i = Σ_{r<=i} lg_r`` (reset at each chunk
    start, ``<= 0``):

    * within a chunk, ``A_ij = Σ_d q_id k_jd exp(a_id - a_jd)`` for ``j <= i``, 0 above.
      Fast path, chunks with ``min_d a_last,d >= -KEY_FAST_SPAN``: ``A = tril(Q̃ K̃^T)``,
      ``Q̃ = Q ⊙ exp(a)`` (factors ``<= 1``), ``K̃ = K ⊙ exp(-a)`` (factors
      ``<= e^KEY_FAST_SPAN``): the reference index of the factorisation is the chunk
      start, and the score block is one matmul.  Other chunks (log-gate sum below
      ``-KEY_FAST_SPAN``, e.g. a gate 0, where ``exp(-a)`` would overflow), and any chunk
      whose factorised scores are not finite, get their within-chunk output from the
      exact sub-chunked form :func:`_key_seq_dense` (sub-chunks of 4 tokens, 8 if
      ``min(Dk, Dv) > 24``: the old engine's tuned chunk sizes).  A tile with more than
      half of its chunks slow goes through :func:`_key_seq_dense` as a whole.
    * the chunk's contribution to the state is ``U^T = (K ⊙ exp(a_last - a))^T V``
      (``= (K̃ ⊙ exp(a_last))^T V`` in the fast chunks); the state decays column-wise by
      ``exp(a_last) <= 1`` per chunk (a loop over the tile's chunks) and reaches token
      ``i`` as ``Q̃_i S^T``.

    In the fast chunks ``a`` is formed as ``L @ lg`` with ``L`` the (C, C) lower
    triangle of ones (a batched matmul is ~6x faster than ``np.cumsum`` along a middle
    axis); each ``a_i`` is still a plain sum of the log-gates, with rounding error
    ``<= C·eps·|a_i| <= C·eps·KEY_FAST_SPAN`` in the exponent.  The slow chunks use
    ``np.cumsum`` (monotone: the dense differences ``a_i - a_j``, ``j <= i``, are ``<= 0``
    exactly).
    """
    if ws is None:
        ws = {}
    b, G, C, Dk = Q.shape
    Dv = V.shape[-1]
    tril = _tril01(C)
    lg = np.maximum(lg, _LOG_FLOOR, out=_ws_buf(ws, "lg", (b, G, C, Dk)))  # see _LOG_FLOOR
    a = np.matmul(tril, lg, out=_ws_buf(ws, "a", (b, G, C, Dk)))  # chunk-local, <= 0
    alast = a[:, :, -1, :]  # (b, G, Dk): log of the chunk's gate product
    slow = alast.min(axis=-1) < -KEY_FAST_SPAN  # (b, G)
    sub = 4 if min(Dk, Dv) <= 24 else 8  # sub-chunk of the exact dense path
    if slow.mean() > 0.5:
        # Mostly slow chunks (e.g. log-gates ~ -50): the fast path would be computed in
        # vain; run the whole tile through the exact dense form (as fast as the old
        # engine, ~3x the fast path; the fast path plus per-chunk fallback is cheaper
        # below about half slow chunks).
        O, s_new = _key_seq_dense(
            Q.reshape(b, G * C, Dk),
            K.reshape(b, G * C, Dk),
            V.reshape(b, G * C, Dv),
            lg.reshape(b, G * C, Dk),
            s,
            need_state,
            sub,
            ws,
        )
        return O.reshape(b, G, C, Dv), s_new
    gl = np.exp(alast)  # (b, G, Dk), <= 1: the chunk's decay
    # Normalisation of q per chunk by a power of two (exact, see KEY_FAST_SPAN), only
    # if some chunk's max |q| is outside [2^-100, 2^100] (never for ordinary data); the
    # within-chunk and the state terms are both linear in q, O is rescaled at the end.
    qabs = np.abs(Q, out=_ws_buf(ws, "qabs", (b, G, C, Dk)))
    ex = np.frexp(qabs.reshape(b, G, C * Dk).max(axis=-1))[1]  # max |q| in [2^(ex-1), 2^ex)
    rescale = None
    if ex.min() < -100 or ex.max() > 100:
        rescale = np.ldexp(1.0, ex)[:, :, None, None]
        Qn = np.divide(Q, rescale, out=qabs)
    else:
        Qn = Q
    Qt = np.exp(a, out=_ws_buf(ws, "Qt", (b, G, C, Dk)))
    # K̃ and K ⊙ exp(a_last - a) are stored transposed, (b, G, Dk, C): the matmuls
    # Q̃ K̃^T and (...)^T V then read contiguous operands (measured 2.5x faster than
    # through a transposed view).  In slow chunks exp(a) may be 0 (k/0 = inf) and
    # inf·0 = NaN: harmless, every quantity of a slow chunk built from K̃ is recomputed.
    KtT = _ws_buf(ws, "KtT", (b, G, Dk, C))
    KwT = _ws_buf(ws, "KwT", (b, G, Dk, C))
    A = _ws_buf(ws, "A", (b, G, C, C))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        np.divide(K, Qt, out=KtT.swapaxes(-1, -2))  # k_j ⊙ exp(-a_j)
        np.multiply(KtT, gl[:, :, :, None], out=KwT)  # k_j ⊙ exp(a_last - a_j), <= |k_j|
        Qt *= Qn  # q_i ⊙ exp(a_i): chunk start -> token
        np.matmul(Qt, KtT, out=A)  # (b, G, C, C)
        A *= tril
    if not slow.all():
        # Scores that overflowed (possible only for |q|·|k| beyond ~1e170) are
        # recomputed exactly as well.
        slow |= ~np.isfinite(A).all(axis=(-1, -2))
    bi = gi = None
    if slow.any():
        bi, gi = np.nonzero(slow)
        A[bi, gi] = 0.0  # (their output is recomputed below)
        lg_s, K_s = lg[bi, gi], K[bi, gi]
        a_s = np.cumsum(lg_s, axis=1)  # (n, C, Dk), monotone
        w = a_s[:, -1:, :] - a_s  # a_last - a_j, <= 0
        np.exp(w, out=w)
        w *= K_s
        KwT[bi, gi] = w.swapaxes(-1, -2)
    O = np.matmul(A, V, out=_ws_buf(ws, "O", (b, G, C, Dv)))
    if bi is not None:
        O[bi, gi] = _key_seq_dense(Qn[bi, gi], K_s, V[bi, gi], lg_s, None, False, sub)[0]
    if G == 1 and s is None and not need_state:
        if rescale is not None:
            O *= rescale
        return O, None
    U = np.matmul(KwT, V, out=_ws_buf(ws, "U", (b, G, Dk, Dv)))  # U^T per chunk
    Sp = _ws_buf(ws, "Sp", (b, G, Dk, Dv))  # Sp[:, n]: S^T before chunk n
    if s is None:
        Sp[:, 0] = 0.0
    else:
        Sp[:, 0] = s
    for n in range(1, G):
        np.multiply(Sp[:, n - 1], gl[:, n - 1, :, None], out=Sp[:, n])
        Sp[:, n] += U[:, n - 1]
    s_new = None
    if need_state:
        # May be the buffer s came in: s was already copied into Sp[:, 0].
        s_new = _ws_buf(ws, "s", (b, Dk, Dv))
        np.multiply(Sp[:, G - 1], gl[:, G - 1, :, None], out=s_new)
        s_new += U[:, G - 1]
    lo = 1 if s is None else 0  # chunk 0 sees a zero state
    if lo < G:
        inter = _ws_buf(ws, "inter", (b, G, C, Dv))[:, lo:]
        np.matmul(Qt[:, lo:], Sp[:, lo:], out=inter)
        O[:, lo:] += inter
    if rescale is not None:
        O *= rescale
    return O, s_new


def gla_chunked(
    q,
    k,
    v,
    log_g,
    *,
    gate: str = "scalar",
    scale: float = 1.0,
    initial_state=None,
    return_state: bool = False,
    chunk_size=None,
    tuning: ChunkTuning | None = None,
):
    """Chunkwise-parallel GLA, same semantics and validation as :func:`gla_recurrent`.

    The sequence is cut into chunks of ``C = chunk_size`` tokens (the last chunk may be
    shorter; ``C`` need not divide ``T``).  Within a chunk the output is the masked
    attention ``((Q K^T) ⊙ D) V`` (scalar) or its key-wise analogue; across chunks a
    ``(B, Dv, Dk)`` state carries the past, decayed per chunk.  Work is done in tiles
    (a block of the batch × a run of chunks) small enough to stay in cache.

    Stability: only *differences* ``a_i - a_j`` (``j <= i``) of chunk-local cumulative
    log-gates, chunk-local ``a_i`` and chunk totals ``a_last - a_j`` are exponentiated;
    all are sums of log-gates, hence ``<= 0``, so every factor is in ``[0, 1]``.
    No overflow for any ``T`` or gate; underflow only where the true product is
    already below the float64 range.  ``-inf`` log-gates (gate exactly 0) are allowed.
    Key gates, in addition, use ``exp(-a_j) <= e^300`` (reference index = chunk start)
    in chunks whose log-gate sum is ``>= -300`` per key feature; other chunks, or chunks
    whose scores overflow, fall back to the exact ``exp(a_i - a_j)`` form (see
    ``docs/engines.md``).

    Parameters
    ----------
    q, k : (B, T, Dk).   v : (B, T, Dv).
    log_g : ``(B, T)`` for ``gate="scalar"``, ``(B, T, Dk)`` for ``gate="key"``
        (decay acting on the key axis, columns of ``S``); entries ``<= 0``.
    scale : read-out scale, ``o_t = scale · S_t q_t`` (current token included).
    initial_state : optional ``(B, Dv, Dk)`` state ``S_0``.
    return_state : also return the final state ``S_T: (B, Dv, Dk)``.
    chunk_size : positive int, or None for :func:`default_chunk_size`.
    tuning : :class:`ChunkTuning` (tile size, BLAS call size), None for the defaults.

    Returns
    -------
    o : (B, T, Dv), and ``S_T`` if ``return_state``.  A result beyond the float64 range
    raises ``ValueError`` naming the inputs (never inf/NaN).

    Example: two tokens, scalar gates ``1/2, 1/4``, scale 2 (``o_2 = 2 (S_1/4 + v_2 k_2) q_2``)

    >>> import numpy as np
    >>> q, k, v = np.array([[[1.0], [2.0]]]), np.array([[[3.0], [4.0]]]), np.array([[[5.0], [6.0]]])
    >>> gla_chunked(q, k, v, np.log([[0.5, 0.25]]), scale=2.0)[0, :, 0]
    array([ 30., 111.])
    """
    q, k, v, log_g, S0 = _check_inputs(q, k, v, log_g, gate, initial_state)
    scale = _check_scale(scale)
    chunk_size = _check_chunk_size(chunk_size)
    if tuning is None:
        tuning = DEFAULT_TUNING
    elif not isinstance(tuning, ChunkTuning):
        raise TypeError(f"tuning: expected a ChunkTuning or None, got {type(tuning).__name__}")
    B, T, Dk = q.shape
    Dv = v.shape[2]
    if T == 0 or B == 0:
        S = np.zeros((B, Dv, Dk)) if S0 is None else S0.copy()
        return (np.empty((B, T, Dv)), S) if return_state else np.empty((B, T, Dv))
    C = min(chunk_size or default_chunk_size(T, Dk, Dv, gate), T)
    o, S = _run_tiles(q, k, v, log_g, gate, scale, S0, return_state, C, tuning)
    _check_output(o, q, k, v, S0)
    if return_state:
        _check_output(S, q, k, v, S0, what="final state")
        return o, S
    return o


def _tile_plan(B, T, Dk, Dv, C, gate, tile_bytes):
    """Batch block ``bb`` and time spans ``[(t0, chunks, chunk length)]`` of the tiles.

    Per token the temporaries hold C decay/score floats, a few copies of the token's
    q/k/v rows (key gates: also its cumulative log-gates and the factors q ⊙ exp(a),
    k ⊙ exp(a_last - a), k ⊙ exp(-a)) and a share Dk·Dv/C of a chunk state; aim for
    ``tile_bytes`` in total.  (The dense fallback of the key path bounds its own
    (C, C, Dk) temporaries separately.)  As many chunks as fit (for short sequences the
    whole sequence, so the state never leaves the tile), then a block of the batch;
    runs of G full chunks, then one tile for the remainder chunk.
    """
    if gate == "scalar":
        per_tok = 8 * (C + 2 * Dk + 2 * Dv + Dk * Dv // C)
    else:
        per_tok = 8 * (C + 6 * Dk + 2 * Dv + Dk * Dv // C)
    tok = max(C, tile_bytes // per_tok)
    nfull = T // C
    G = max(1, min(nfull, tok // C)) if nfull else 1
    bb = max(1, min(B, tok // (G * C)))
    spans = [(t0, min(G, (nfull * C - t0) // C), C) for t0 in range(0, nfull * C, G * C)]
    if T % C:
        spans.append((nfull * C, 1, T % C))
    return bb, spans


def _run_tiles(q, k, v, log_g, gate, scale, S0, return_state, C, tuning):
    """Drive the tiles over batch blocks and time spans; returns (o, S_T or None)."""
    B, T, Dk = q.shape
    Dv = v.shape[2]
    o = np.empty((B, T, Dv))
    bb, spans = _tile_plan(B, T, Dk, Dv, C, gate, tuning.tile_bytes)
    # Key-gated tiles clamp their own slice into a reused buffer (no full-size copy).
    lgc = np.maximum(log_g, _LOG_FLOOR) if gate == "scalar" else log_g
    ws = {}  # tiles reuse one set of buffers per call (_ws_buf)
    if gate == "scalar":

        def tile(Q, K, V, lg, s, c, need_state, out):
            return _tile_scalar(Q, K, V, lg, s, need_state, tuning.blas_serial_mnk, ws, out)
    else:

        def tile(Q, K, V, lg, s, c, need_state, out):
            O, s_new = _tile_key(Q, K, V, lg, s, _causal_neg(c), need_state, ws)
            np.copyto(out, O)
            return s_new

    S_out = np.empty((B, Dv, Dk)) if return_state else None
    for b0 in range(0, B, bb):
        b1 = min(B, b0 + bb)
        nb = b1 - b0
        s = None if S0 is None else S0[b0:b1].swapaxes(1, 2)  # tiles use S^T
        for i, (t0, g, c) in enumerate(spans):
            t1 = t0 + g * c
            sh = (nb, g, c)
            lg = lgc[b0:b1, t0:t1]
            lg = lg.reshape(sh) if gate == "scalar" else lg.reshape(sh + (Dk,))
            out = o[b0:b1, t0:t1].reshape(sh + (Dv,))  # a view: tiles write in place
            s = tile(
                q[b0:b1, t0:t1].reshape(sh + (Dk,)),
                k[b0:b1, t0:t1].reshape(sh + (Dk,)),
                v[b0:b1, t0:t1].reshape(sh + (Dv,)),
                lg,
                s,
                c,
                return_state or i + 1 < len(spans),
                out,
            )
        if return_state:
            S_out[b0:b1] = 0.0 if s is None else s.swapaxes(1, 2)
    if scale != 1.0:
        o *= scale
    return o, S_out
