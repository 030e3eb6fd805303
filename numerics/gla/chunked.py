"""The chunkwise-parallel GLA engine :func:`gla_chunked` (scalar and key gates)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from .._validate import _finite_sum
from ._common import (
    _LOG_FLOOR,
    GATES,
    _check_inputs,
    _check_output,
    _check_scale,
    _check_tile,
    _exp_nonpos,
)

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
    halve_share : key gates: a tile in which more than this share of the chunks must take
        the exact path (log-gate sum below ``-KEY_FAST_SPAN``) is cut into chunks half as
        long, down to the exact path's sub-chunk (4, or 8 if ``min(Dk, Dv) > 24``): the
        chunk length follows the gate range.  The factorised tiles (both paths are in
        ``docs/engines.md``) halve whenever one chunk is too long for them.  ``1.0`` keeps
        the chunk length fixed on both.

    Tests pass small values (``ChunkTuning(tile_bytes=1, blas_serial_mnk=0)``) to drive
    every code path on small inputs.

    >>> ChunkTuning().tile_bytes == 1 << 23
    True
    """

    tile_bytes: int = 1 << 23
    blas_serial_mnk: int = 4 * 65536
    halve_share: float = 0.25

    def __post_init__(self) -> None:
        for name in ("tile_bytes", "blas_serial_mnk"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"tuning: {name} must be a non-negative integer, got {v!r}")
        h = self.halve_share
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0.0 <= h <= 1.0:
            raise ValueError(f"tuning: halve_share must be a number in [0, 1], got {h!r}")


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
def _scan_masks(G: int, rows: int, prescaled: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows, G) masks for the in-tile state scan: ``sel[n, m] = 1`` if chunk ``m``'s own
    decay enters state ``n`` (``m < n`` if ``prescaled``, else ``m < n - 1``), else 0, and
    ``neg[n, m] = -inf`` if ``m >= n`` (else 0).  Cached per shape (read-only)."""
    n = np.arange(rows)[:, None]
    m = np.arange(G)[None, :]
    sel = (n - 1 + int(prescaled) > m).astype(float)
    return _readonly(sel), _readonly(np.where(m >= n, -np.inf, 0.0))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False  # shared by all calls through a cache
    return a


@lru_cache(maxsize=64)
def _tril01(C: int) -> np.ndarray:
    """(C, C) float mask: 1 on and below the diagonal, 0 above.  Cached per ``C`` (read-only)."""
    return _readonly(np.tril(np.ones((C, C))))


@lru_cache(maxsize=64)
def _causal_neg(C: int) -> np.ndarray:
    """(C, C) additive mask: 0 on and below the diagonal, -inf above.  Cached (read-only)."""
    return _readonly(np.where(np.tril(np.ones((C, C))) > 0, 0.0, -np.inf))


def _ws_buf(ws: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A reusable float64 buffer ``ws[(name, shape)]`` (allocated on first use).

    The tiles write every large temporary into such buffers: allocating fresh tile-sized
    arrays for each of the hundreds of tiles cost ~70% of the engine's time (fresh pages
    are zero-filled by the kernel on first touch, measured 0.45 s vs 0.13 s per pass of
    the long benchmark workload).
    """
    key = (name, shape)
    buf = ws.get(key)
    if buf is None:
        buf = ws[key] = np.empty(shape)
    return buf


def _state_scan(U, alast, s, rows, prescaled, serial_mnk, ws, fix=None):
    """Transposed states before each chunk of a tile (row ``G``: the state after it).

    U: (b, G, Dk, Dv) chunk contributions; alast: (b, G) (scalar) or (b, G, Dk) (key)
    chunk log-decays, ``γ = exp(alast)`` scales ``Sᵀ`` (key gates: its rows, per key
    feature); s: (b, Dk, Dv) initial ``Sᵀ`` or None (zero).  ``Sp[0] = s`` and
    ``Sp[n+1] = γ_n ⊙ (Sp[n] + U_n)`` if ``prescaled`` (``U`` not yet decayed to the chunk
    end), else ``γ_n ⊙ Sp[n] + U_n``; ``fix = (bi, gi, O, W)``: chunks whose ``U`` is 0
    and which add ``W`` (decayed) instead, ``Sp[n+1] = γ_n ⊙ Sp[n] + W_n`` there.

    Scalar gates, short tiles (the ICL regime): all states in one matmul per batch row,
    ``Sp[n] = Σ_{m<n} exp(L[n, m]) U_m + exp(P_n) s`` with ``L[n, m]`` the
    log-decay from chunk ``m`` (its start if ``prescaled``, else its end) to chunk ``n``
    and ``P_n = Σ_{l<n} alast_l``, both accumulated directly (a cumsum down columns), not
    as differences of prefix sums: no cancellation.  Longer tiles, and key gates (whose
    decays differ per key feature: the matmul form would need one per feature, measured
    slower): a loop over chunks.
    """
    b, G, Dk, Dv = U.shape
    a3 = alast[:, :, None] if alast.ndim == 2 else alast  # (b, G, Dg)
    if a3.shape[2] == 1 and fix is None and rows * G * Dk * Dv <= serial_mnk:
        Sp = _ws_buf(ws, "Sp", (b, rows, Dk, Dv))
        Sf = Sp.reshape(b, rows, Dk * Dv)
        np.matmul(_scan_decays(a3, rows, prescaled)[:, 0], U.reshape(b, G, Dk * Dv), out=Sf)
        if s is not None:
            P = np.zeros((b, rows))
            np.cumsum(a3[:, : rows - 1, 0], axis=1, out=P[:, 1:])
            Sp += np.exp(P)[:, :, None, None] * s[:, None]
        return Sp
    # The loop runs over time-major buffers, (rows, b, Dk, Dv): every step then adds and
    # multiplies contiguous blocks (~3x faster than (b, rows, ...) slices).  Key decays
    # are expanded to the states' shape (a broadcast along Dv runs Dk-long inner loops).
    St = _ws_buf(ws, "Sp_t", (rows, b, Dk, Dv))
    Ut = U.transpose(1, 0, 2, 3)
    g = np.exp(a3.transpose(1, 0, 2))[..., None]  # (G, b, Dg, 1)
    if a3.shape[2] > 1:
        ge = _ws_buf(ws, "Sp_g", (G, b, Dk, Dv))
        np.copyto(ge, g)
        g = ge
    if s is None:
        St[0] = 0.0
    else:
        St[0] = s
    for n in range(1, rows):
        x = St[n]
        if prescaled:
            np.add(St[n - 1], Ut[n - 1], out=x)
            x *= g[n - 1]
        else:
            np.multiply(St[n - 1], g[n - 1], out=x)
            x += Ut[n - 1]
        if fix is not None and fix[3] is not None:
            m = fix[1] == n - 1
            if m.any():
                x[fix[0][m]] += fix[3][m]
    return St.transpose(1, 0, 2, 3)


def _scan_decays(a3, rows, prescaled):
    """``exp(L)``: (b, Dg, rows, G) decays of :func:`_state_scan`'s matmul form."""
    b, G, Dg = a3.shape
    sel, neg = _scan_masks(G, rows, prescaled)
    prev = np.zeros((b, Dg, rows))  # prev[n] = alast_{n-1}
    prev[:, :, 1:] = a3[:, : rows - 1].transpose(0, 2, 1)
    L = prev[..., None] * sel
    np.cumsum(L, axis=2, out=L)
    L += neg
    return np.exp(L, out=L)


# ---------------------------------------------------------------------------
# Factorised tiles (both gate types)
# ---------------------------------------------------------------------------


# Chunks are grouped into one factorisation segment only while the segment's log-gate sum
# stays >= -SEGMENT_SPAN: an exponent c of the segment is rounded to about |c|·eps, so
# long spans cost accuracy (measured, relative RMS against the loop on bench.gla's long
# workload: 8e-15 with segments up to 300, 1.8e-15 up to 64, 5.6e-16 up to 16, the old
# per-chunk engine 4e-16), while the run time was the same for 16 and 300.  A chunk alone
# may span more (down to -KEY_FAST_SPAN, key gates -2·KEY_FAST_SPAN), as on the
# per-chunk fast path before.
SEGMENT_SPAN = 16.0


def _segments(tot, lim):
    """Starts of the factorisation segments of a tile, or None if a chunk alone has a
    log-gate sum below ``lim`` (``-2·KEY_FAST_SPAN`` for key gates, ``-KEY_FAST_SPAN``
    for scalar gates).

    tot: (b, G, Dg) log-gate sum of each chunk (per key feature; ``Dg = 1`` for scalar
    gates).  Chunks are grouped greedily, in order, into runs whose total log-gate sum is
    ``>= max(lim, -SEGMENT_SPAN)`` for every prompt and feature (a chunk alone: ``>=
    lim``); the test uses the per-chunk minimum over prompts and features (a
    conservative bound: the sum of minima is at most each sum), so it is a loop over
    ``G`` Python floats.  Returns the sorted chunk
    indices that start a segment (always ``0``).  NaN sums (never produced by valid
    log-gates) count as too long.
    """
    w = tot.min(axis=(0, 2))  # (G,) worst chunk sums (NaN propagates)
    if not w.min() >= lim:
        return None
    group = max(lim, -SEGMENT_SPAN)
    if w.sum() >= group:
        return [0]
    starts, run = [0], 0.0
    for n, x in enumerate(w.tolist()):
        if run + x < group and n > starts[-1]:
            starts.append(n)
            run = 0.0
        run += x
    return starts


def _segment_offsets(a, starts):
    """Turn the chunk-local cumulative log-gates ``a: (b, G, C[, Dk])`` into exponents
    relative to each segment's *reference*, in place; returns ``exp(ref)``: (b, nseg,
    Dg), the decay from a segment's start to its reference, or None if every reference is
    the segment start.

    The reference of a segment with total log-gate ``c_end`` is ``ref = min(0, c_end +
    KEY_FAST_SPAN)`` (per prompt and feature): the segment start when ``c_end >=
    -KEY_FAST_SPAN``, else a point inside, so that every exponent ``c_i - ref`` of a query
    and ``ref - c_j`` of a key lies in ``[-KEY_FAST_SPAN, KEY_FAST_SPAN]`` for segments
    spanning up to ``2·KEY_FAST_SPAN``.  The offsets from the segment start are running
    sums of whole-chunk sums (no differences of prefix sums); rounding ``<= (C + G)·eps·
    2·KEY_FAST_SPAN`` in each exponent.
    """
    G = a.shape[1]
    tot = a[:, :, -1]  # (b, G[, Dk]) chunk sums
    off = np.zeros(tot.shape)  # from the segment start to the chunk start
    steps, last, seg_of = _segment_index(tuple(starts), G)
    if len(starts) == 1:
        np.cumsum(tot[:, :-1], axis=1, out=off[:, 1:])
    else:
        # Running sums restarted at each segment, one position of all segments at a time.
        for idx, prev in steps:
            off[:, idx] = off[:, prev] + tot[:, prev]
    ref = np.add(off[:, last], tot[:, last])  # (b, nseg[, Dk]) segment sums
    ref += KEY_FAST_SPAN
    np.minimum(ref, 0.0, out=ref)
    shifted = bool(ref.min() < 0.0)
    if shifted:
        off -= ref[:, seg_of]
    if shifted or G > len(starts):
        a += off[:, :, None]
    return np.exp(ref) if shifted else None


@lru_cache(maxsize=256)
def _segment_index(starts: tuple[int, ...], G: int):
    """Index arrays of :func:`_segment_offsets` for segments starting at ``starts`` in a
    tile of ``G`` chunks: ``steps`` = [(chunks at position j >= 1 of their segment, the
    chunks before them)], the last chunk of each segment, the segment of each chunk."""
    bounds = list(starts) + [G]
    segs = list(pairwise(bounds))
    longest = max(s1 - s0 for s0, s1 in segs)
    steps = []
    for j in range(1, longest):
        idx = np.array([s0 + j for s0, s1 in segs if s0 + j < s1])
        steps.append((idx, idx - 1))
    last = np.array([s1 - 1 for s0, s1 in segs])
    seg_of = np.repeat(np.arange(len(segs)), [s1 - s0 for s0, s1 in segs])
    return steps, last, seg_of


def _tile_fast(Q, K, V, lg, s, need_state, ws, out):
    """One tile, both gate types, factorised over *segments* of chunks.

    Q, K: (b, G, C, Dk); V: (b, G, C, Dv); lg: (b, G, C) scalar or (b, G, C, Dk) key
    log-gates; s: (b, Dk, Dv) *transposed* state Sᵀ before the tile, or None (zero); out:
    (b, G, C, Dv) view of the engine's output, receives the unscaled tile output.
    Returns ``(ok, state)``: ``ok`` is True on success, ``"span"`` if some chunk's
    log-gate sum is too low for the factorisation (:func:`_segments`; ``state`` is then
    the lowest chunk sum), False if a
    factorised value is not finite or a key chunk's ``|k|`` is far from 1 in a shifted
    segment (``out`` is then unusable; the caller runs the per-chunk paths).  ``state``:
    the transposed state after the tile (a buffer of ``ws``; None if not needed).

    With ``c_i`` the cumulative log-gate from the start of the token's segment (a run of
    chunks: for ordinary gates the whole tile, :func:`_segments`) and ``r`` the segment's
    reference (:func:`_segment_offsets`; 0 unless the segment's log-gate sum is below
    ``-KEY_FAST_SPAN``), ``exp(c_i - c_j) = exp(c_i - r)·exp(r - c_j)`` for every pair
    of tokens of a segment, each factor in ``[e^-SPAN, e^SPAN]``.  Per chunk ``n``:
    ``O_n = tril(Q̃ K̃ᵀ) V + Q̃ S̃_n`` with ``Q̃ = Q ⊙ exp(c - r)``, ``K̃ = K ⊙ exp(r - c)``,
    and the states ``S̃`` (scaled by ``exp(r)``) are prefix sums, ``S̃_{n+1} = S̃_n +
    K̃_nᵀ V_n``: no decay inside a segment (:func:`_prefix_states`); at a segment's end
    the true state is ``exp(c_end - r) ⊙ S̃``, per key feature.  Scalar gates put the
    decays on ``V`` and the output instead (``O = exp(c) ⊙ (tril(Q Kᵀ) (V ⊙ exp(-c)) +
    Q S)``; references 0: no ``q`` normalisation needed).  Rounding: a sum of terms
    scaled by ``exp(-c_j)`` and then by ``exp(c_i)`` errs by ``eps`` times the sum of the
    true terms' magnitudes, as the exact form; in a shifted segment ``|q|`` and ``|k|``
    are kept near 1 (powers of two on ``q``, else the per-chunk paths) so that neither
    factor meets a subnormal.
    """
    b, G, C, Dk = Q.shape
    Dv = V.shape[-1]
    key = lg.ndim == 4
    if key:
        a = _key_cumsum(lg, ws)  # chunk-local; clamped if gate 0 (then too long anyway)
        starts = _segments(a[:, :, -1], -2.0 * KEY_FAST_SPAN)
        if starts is not None:
            # For _tile_fast_halving's chunk-length hint: would chunks twice as long fit?
            # (Before _segment_offsets, which shifts a in place.)
            tot = a[:, : G - G % 2, -1]
            ws[_KEY_UP] = G > 1 and bool(
                (tot[:, 0::2] + tot[:, 1::2]).min() >= -2.0 * KEY_FAST_SPAN
            )
    else:
        a = np.cumsum(lg, axis=-1, out=_ws_buf(ws, "f_a", lg.shape))
        starts = _segments(a[:, :, -1:], -KEY_FAST_SPAN)
    if starts is None:
        return "span", float(np.min(a[:, :, -1]))  # the lowest chunk sum
    eref = _segment_offsets(a, starts)
    if key and eref is not None and _normalise(K, ws, "f_Kn") is not K:
        return False, None  # (shifted keys may be ~e^-SPAN: keep |k| near 1 there)
    e = np.exp(a, out=_ws_buf(ws, "f_e", a.shape))  # in [e^-SPAN, e^SPAN]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        Qt, Kt, Vd, rescale = _fast_operands(Q, K, V, e, key, ws)
        P = np.matmul(Qt, Kt, out=_ws_buf(ws, "f_P", (b, G, C, C)))
        P *= _tril01(C)
        np.matmul(P, Vd, out=out)
        state = None
        if G > 1 or s is not None or need_state:
            # Time-major (G + 1, b, ...) buffer, chunk m's K̃ᵀ V at row m + 1: the running
            # sums turn it into the states in place, adding contiguous blocks.
            X = _ws_buf(ws, "f_X", (G + 1, b, Dk, Dv))
            np.matmul(Kt, Vd, out=X[1:].transpose(1, 0, 2, 3))
            Sp, state = _prefix_states(X, s, starts, e[:, :, -1], eref, need_state)
            lo = 1 if s is None else 0  # chunk 0 sees a zero state
            if lo < G:
                inter = _ws_buf(ws, "f_inter", (b, G, C, Dv))[:, lo:]
                np.matmul(Qt[:, lo:], Sp[:, lo:], out=inter)
                out[:, lo:] += inter
        if not key:
            np.multiply(out, e[..., None], out=out)
        elif rescale is not None:
            np.multiply(out, rescale, out=out)
    ok = _finite_sum(out) and (state is None or _finite_sum(state))
    return ok, state


def _fast_operands(Q, K, V, e, key, ws):
    """``(Q̃, K̃ᵀ, Ṽ, rescale)`` of :func:`_tile_fast` from the factors ``e = exp(c - r)``:
    key gates ``Q̃ = Q ⊙ e`` (``Q`` normalised per chunk, ``rescale`` undoes it on the
    output, see :func:`_normalise_q`), ``K̃ = K / e``, ``Ṽ = V``; scalar gates ``Q̃ = Q``,
    ``K̃ = K``, ``Ṽ = V ⊙ exp(-c)`` (the output is multiplied by ``e`` afterwards).
    ``K̃ᵀ`` is a contiguous (b, G, Dk, C) buffer, or for scalar gates and ``Dk > 24`` a
    transposed view: a matmul with a transposed view as right operand was measured
    ~2.5x slower than the copy costs at ``Dk = 17``, about the same at ``Dk = 64``."""
    b, G, C, Dk = Q.shape
    Kt = _ws_buf(ws, "f_KtT", (b, G, Dk, C))
    if key:
        Qn, rescale = _normalise_q(Q, ws)
        np.divide(K, e, out=Kt.swapaxes(-1, -2))  # k_j ⊙ exp(r - c_j)
        Qt = np.multiply(Qn, e, out=_ws_buf(ws, "f_Qt", Q.shape))  # q_i ⊙ exp(c_i - r)
        return Qt, Kt, V, rescale
    if Dk <= 24:
        np.copyto(Kt.swapaxes(-1, -2), K)
    else:
        Kt = K.swapaxes(-1, -2)
    ei = np.divide(1.0, e, out=_ws_buf(ws, "f_ei", e.shape))
    Vd = np.multiply(V, ei[..., None], out=_ws_buf(ws, "f_Vd", V.shape))  # v_j ⊙ exp(-c_j)
    return Q, Kt, Vd, None


def _tile_fast_halving(Q, K, V, lg, s, need_state, ws, out, sub, tuning):
    """:func:`_tile_fast`, for key gates retried on chunks half as long (a reshape of the
    same tokens, down to ``sub``; not if ``tuning.halve_share == 1``, the fixed chunk
    length) while a chunk's log-gate sum is too low for it: strongly gated sequences run
    the factorised path on short chunks.  Shorter chunks mean more chunk states: when
    those would exceed a quarter of ``tuning.tile_bytes`` the tile is first split in time
    (two halves in turn, the state carried).  Returns ``(ok, state)`` with ``ok`` True
    or False (then the per-chunk paths run for the whole tile).

    The chunk length that succeeded is remembered for the call's next tile
    (``ws[_KEY_CHUNK_HINT]``): a tile whose chunks are longer than it is cut without
    first trying the longer chunks (each futile try costs the tile's cumulative sums;
    measured ~20% of the long ``key50`` row of ``bench.gla``).  After a success at
    length ``c`` the hint is ``2c`` if every pair of neighbouring chunks sums to
    ``>= -2·KEY_FAST_SPAN`` (the gates may have weakened: one level up per tile), else
    ``c``.  The hint only chooses where to start; every tile is still checked by
    :func:`_tile_fast`, so a stale hint costs time, never accuracy."""
    b, G, C, Dk = Q.shape
    can_halve = lg.ndim == 4 and tuning.halve_share < 1.0 and C % 2 == 0 and C // 2 >= sub
    hint = ws.get(_KEY_CHUNK_HINT)
    if not (can_halve and hint is not None and hint < C):
        ok, state = _tile_fast(Q, K, V, lg, s, need_state, ws, out)
        if ok is True and lg.ndim == 4:
            ws[_KEY_CHUNK_HINT] = 2 * C if ws[_KEY_UP] else C
        if ok != "span" or not can_halve:
            return ok is True, (state if ok is True else None)
        if state < -2.0 * KEY_FAST_SPAN * (C // sub):
            # Cut into C / sub pieces, some piece of that chunk still sums below -2·SPAN
            # (pigeonhole): no shorter chunk length can help, the per-chunk paths run.
            return False, None
    if G > 1 and 2 * G * b * Dk * V.shape[-1] * 8 > tuning.tile_bytes // 4:
        h = G // 2
        parts = [(x[:, :h], x[:, h:]) for x in (Q, K, V, lg, out)]
        ok, s1 = _tile_fast_halving(
            *(p[0] for p in parts[:4]), s, True, ws, parts[4][0], sub, tuning
        )
        if not ok:
            return False, None
        carried = _ws_buf(ws, "f_S_half", s1.shape)  # (the next call reuses s1's buffer)
        np.copyto(carried, s1)
        s1 = carried
        return _tile_fast_halving(
            *(p[1] for p in parts[:4]), s1, need_state, ws, parts[4][1], sub, tuning
        )
    Q, K, V, lg, out = (x.reshape(b, 2 * G, C // 2, x.shape[-1]) for x in (Q, K, V, lg, out))
    return _tile_fast_halving(Q, K, V, lg, s, need_state, ws, out, sub, tuning)


# Key of the chunk-length hint in a call's buffer dict (see _tile_fast_halving).
_KEY_CHUNK_HINT = "key_chunk_hint"
_KEY_UP = "key_chunk_up"  # set by _tile_fast: chunks twice as long would fit


def _prefix_states(X, s, starts, elast, eref, need_state):
    """Transposed (reference-scaled) states before each chunk of a tile, ``(b, G, Dk,
    Dv)`` (a view of ``X``), and the true transposed state after the tile (``X[G]``; None
    unless ``need_state``).

    X: (G + 1, b, Dk, Dv) time-major buffer holding chunk ``m``'s contribution ``K̃ᵀ V``
    at row ``m + 1`` (row 0 is overwritten; ``X`` is turned into the states in place);
    s: (b, Dk, Dv) or None; starts: segment starts (:func:`_segments`); elast: (b, G[,
    Dk]) decay of each chunk's last token from its segment's reference; eref: (b, nseg[,
    Dk]) decay from a segment's start to its reference, or None (all 1).  Inside a segment
    the states are prefix sums of the contributions; the true state entering segment
    ``σ`` is multiplied by ``eref_σ`` (and the state leaving a segment by its ``elast``).

    One running sum over the tile's chunks in place, ``X[m] += X[m-1]`` (the state before
    chunk ``m``), scaled at each segment start: ``G - 1`` additions and ``nseg - 1``
    multiplications of contiguous ``(b, Dk, Dv)`` blocks, the segment-entry decays
    ``elast · eref`` formed in one operation.  (Until session 4 each segment took 3-6
    NumPy calls, or a matmul with a strict lower triangle of ones, into a second buffer:
    measured 0.23 of the long ``key50`` row, where every chunk is its own segment.)
    """
    G = X.shape[0] - 1
    nseg = len(starts)
    if nseg > 1:
        idx = np.array(starts[1:]) - 1  # the last chunk of each segment but the last
        ent = elast[:, idx]  # (b, nseg - 1[, Dk]): decay into segment j + 1 ...
        if eref is not None:
            ent *= eref[:, 1:]  # ... times its start -> reference
    if s is None:
        X[0] = 0.0
    elif eref is None:
        np.copyto(X[0], s)
    else:
        np.multiply(s, _row_decay(eref[:, 0]), out=X[0])
    j = 1
    for m in range(1, G):
        np.add(X[m], X[m - 1], out=X[m])
        if j < nseg and starts[j] == m:
            X[m] *= _row_decay(ent[:, j - 1])
            j += 1
    state = None
    if need_state:
        state = np.add(X[G], X[G - 1], out=X[G])
        state *= _row_decay(elast[:, G - 1])
    return X[:G].transpose(1, 0, 2, 3), state


def _row_decay(g):
    """A segment's decay ``g: (b,)`` (scalar) or ``(b, Dk)`` (key) shaped to multiply
    transposed states ``(b, Dk, Dv)`` (key gates scale the rows, one per key feature)."""
    return g[:, None, None] if g.ndim == 1 else g[:, :, None]


# ---------------------------------------------------------------------------
# Scalar gates
# ---------------------------------------------------------------------------


def _tile_scalar_exact(Q, K, V, lg, s, need_state, serial_mnk, ws, out):
    """One tile of the scalar engine in the exact form (any gates, gate 0 included).

    Arguments as :func:`_tile_scalar_fast` (``lg`` clamped to ``>= _LOG_FLOOR``);
    returns the transposed state after the tile (None if not needed).  Only differences
    ``a_i - a_j`` (``j <= i``), ``a_i`` and ``a_last - a_j`` of chunk-local cumulative
    log-gates are exponentiated: every factor is in ``[0, 1]``.
    """
    b, G, C, Dk = Q.shape
    Dv = V.shape[-1]
    a = np.cumsum(lg, axis=-1, out=_ws_buf(ws, "s_a", (b, G, C)))  # chunk-local, monotone
    alast = a[..., -1]  # (b, G): log of the chunk's gate product
    # exp(a_i - a_j) for j <= i: a non-positive difference (sum of log-gates over
    # (j, i]); above the diagonal the -inf mask gives exactly 0.
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
    Ub = _ws_buf(ws, "s_U", (G, b, Dk, Dv)).transpose(1, 0, 2, 3)  # see _state_scan
    U = np.matmul(Kw.swapaxes(-1, -2), V, out=Ub)  # U^T
    rows = G + 1 if need_state else G
    Sp = _state_scan(U, alast, s, rows, False, serial_mnk, ws)
    lo = 1 if s is None else 0  # chunk 0 sees a zero state
    if lo < G:
        inter = _ws_buf(ws, "s_inter", (b, G, C, Dv))[:, lo:]
        np.matmul(Q[:, lo:], Sp[:, lo:G], out=inter)
        inter *= np.exp(a[:, lo:])[..., None]  # decay chunk start -> token, <= 1
        O[:, lo:] += inter
    return Sp[:, G] if need_state else None


# ---------------------------------------------------------------------------
# Key gates
# ---------------------------------------------------------------------------

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
# ~C·eps·300 ~ 1e-12 relative, is the same in both paths.  The scalar engine uses the
# same bound for its factor exp(-a) on V.
KEY_FAST_SPAN = 300.0


def _dense_sub(Dk: int, Dv: int) -> int:
    """Sub-chunk length of the exact key path (the old engine's tuned chunk sizes); also
    the shortest chunk a strongly gated key tile is cut into (``tuning.halve_share``):
    shorter chunks cost more state work per token than they save (measured at
    ``Dk = Dv = 64``: chunks of 4 on the fast path 1.1x the time of the dense path at 8)."""
    return 4 if min(Dk, Dv) <= 24 else 8


def _key_cumsum(lg, ws):
    """Chunk-local cumulative log-gates ``a_i = Σ_{r<=i} lg_r`` along axis 2 of
    ``(b, G, C, Dk)``, as ``L @ lg`` with ``L`` the (C, C) lower triangle of ones (a
    batched matmul: measured ~3x faster than ``np.cumsum`` or a running sum along that
    middle axis).  Each ``a_i`` is a sum of non-positive terms, so ``a_i <= 0`` exactly,
    with rounding ``<= C·eps·|a_i|`` in the exponent.  ``-inf`` log-gates (gate 0) would
    meet the zeros of ``L`` (``0·-inf = NaN``): then ``lg`` is clamped to ``_LOG_FLOOR``
    first (it changes no decay factor, see there)."""
    tril = _tril01(lg.shape[2])
    with np.errstate(invalid="ignore"):
        a = np.matmul(tril, lg, out=_ws_buf(ws, "k_a", lg.shape))
    if not _finite_sum(a[:, :, -1]):
        np.matmul(tril, np.maximum(lg, _LOG_FLOOR, out=_ws_buf(ws, "k_lgc", lg.shape)), out=a)
    return a


def _tile_key(Q, K, V, lg, s, need_state, ws, out, sub, tuning):
    """One tile of the key-gated chunked engine (decay on the Dk axis).

    Q, K: (b, G, C, Dk); V: (b, G, C, Dv); lg: (b, G, C, Dk) log-gates (gate of key
    feature d of each token, ``-inf`` allowed); s: (b, Dk, Dv) *transposed* state S^T
    before the tile, or None (zero); out: (b, G, C, Dv) view of the engine's output,
    receives the unscaled tile output.  Returns the transposed state after the tile
    (a view into a buffer of ``ws``; None if not needed).

    With chunk-local cumulative log-gates ``a_i = Σ_{r<=i} lg_r`` (reset at each chunk
    start, ``<= 0``), a chunk is *slow* if ``min_d a_last,d < -KEY_FAST_SPAN``:

    * more than ``tuning.halve_share`` of the chunks slow: the tile is cut into chunks half as
      long (a reshape of the same tokens), down to the exact path's sub-chunk ``sub`` — strongly gated
      sequences run the fast path on short chunks;
    * still more than half slow: the whole tile goes through the exact sub-chunked
      :func:`_key_seq_dense` (:func:`_key_tile_dense`);
    * otherwise the factorised fast path :func:`_key_fast` (per-chunk exact fallback).
    """
    b, G, C = Q.shape[:3]
    a = _key_cumsum(lg, ws)
    slow = a[:, :, -1].min(axis=-1) < -KEY_FAST_SPAN  # (b, G)
    share = float(slow.mean())
    if share > tuning.halve_share and C % 2 == 0 and C // 2 >= sub:
        h = C // 2
        Q, K, V, lg, out = (x.reshape(b, 2 * G, h, x.shape[-1]) for x in (Q, K, V, lg, out))
        return _tile_key(Q, K, V, lg, s, need_state, ws, out, sub, tuning)
    if share > 0.5:
        # Mostly slow chunks (e.g. log-gates ~ -50 at the shortest chunk): the fast path
        # would be computed in vain.
        return _key_tile_dense(Q, K, V, lg, s, need_state, ws, out, sub)
    return _key_fast(Q, K, V, lg, a, slow, s, need_state, ws, out, sub, tuning.blas_serial_mnk)


def _key_tile_dense(Q, K, V, lg, s, need_state, ws, out, sub):
    """A whole tile through the exact :func:`_key_seq_dense` (sub-chunks of ``sub``)."""
    b, G, C, Dk = Q.shape
    Dv = V.shape[-1]
    lgc = np.maximum(lg, _LOG_FLOOR, out=_ws_buf(ws, "k_lgc", lg.shape))  # see _LOG_FLOOR
    O, s_new = _key_seq_dense(
        Q.reshape(b, G * C, Dk),
        K.reshape(b, G * C, Dk),
        V.reshape(b, G * C, Dv),
        lgc.reshape(b, G * C, Dk),
        s,
        need_state,
        sub,
        ws,
    )
    np.copyto(out, O.reshape(b, G, C, Dv))
    return s_new


class _NonFiniteInput(Exception):
    """A tile found a non-finite input value (the driver then runs the full checks)."""


def _normalise(Q, ws, name="k_Qn"):
    """``Q`` divided per chunk by a power of two so that its max ``|q|`` lies in
    ``[1/2, 1)`` — only if some chunk's max ``|q|`` is outside ``[2^-100, 2^100]`` (never
    for ordinary data; then ``Q`` itself is returned).  See :func:`_normalise_q`."""
    return _normalise_q(Q, ws, name)[0]


def _normalise_q(Q, ws, name="k_Qn"):
    """``(Qn, rescale)``: ``Q`` divided per chunk by a power of two so that its max
    ``|q|`` lies in ``[1/2, 1)``, and the (b, G, 1, 1) factors to undo it on the output —
    only if some chunk's max ``|q|`` is outside ``[2^-100, 2^100]`` (never for ordinary
    data; then ``(Q, None)``).  Exact (powers of two); see ``KEY_FAST_SPAN``."""
    b, G, C, Dk = Q.shape
    flat = Q.reshape(b, G, C * Dk)
    # Screen: the sum of squares of a chunk bounds its max |q| from both sides
    # (max² <= Σ q² <= n·max²), one pass instead of a max and a min; NaN/inf (and
    # squares beyond the float64 range) fail it and take the exact test below.
    with np.errstate(over="ignore", invalid="ignore"):
        ss = np.einsum("bgi,bgi->bg", flat, flat)
    lo, hi = ss.min(), ss.max()
    if lo >= C * Dk * 2.0**-200 and hi <= 2.0**200:
        return Q, None
    qmax = np.maximum(flat.max(axis=-1), -flat.min(axis=-1))  # no |Q| temporary
    if not np.isfinite(qmax).all():  # (q's value check of the tile, see _run_tiles)
        raise _NonFiniteInput
    ex = np.frexp(qmax)[1]  # max |q| in [2^(ex-1), 2^ex)
    if ex.min() >= -100 and ex.max() <= 100:
        return Q, None
    rescale = np.ldexp(1.0, ex)[:, :, None, None]
    return np.divide(Q, rescale, out=_ws_buf(ws, name, Q.shape)), rescale


def _key_fast(Q, K, V, lg, a, slow, s, need_state, ws, out, sub, serial_mnk):
    """The factorised key path of :func:`_tile_key` (``a``: the chunk-local cumulative
    log-gates, ``slow``: (b, G) chunks whose log-gate sum is below ``-KEY_FAST_SPAN``).

    * within a chunk ``A = tril(Q̃ K̃ᵀ)``, ``Q̃ = Q ⊙ exp(a)`` (factors ``<= 1``),
      ``K̃ = K ⊙ exp(-a)`` (factors ``<= e^KEY_FAST_SPAN``): one matmul per chunk;
    * the state: ``Sᵀ_next = γ ⊙ (Sᵀ + K̃ᵀ V)`` with ``γ = exp(a_last)`` per key
      feature (rows of ``Sᵀ``), read by token ``i`` as ``Q̃_i Sᵀ``;
    * slow chunks, and chunks whose factorised scores overflow (``|q|·|k|`` beyond
      ~1e170): within-chunk output from the exact :func:`_key_seq_dense` (sub-chunks of
      ``sub``), state contribution ``(K ⊙ exp(a_last - a))ᵀ V`` (:func:`_key_slow_chunks`).
    """
    b, G, C, Dk = Q.shape
    Dv = V.shape[-1]
    Qn, rescale = _normalise_q(Q, ws)
    Qt = np.exp(a, out=_ws_buf(ws, "k_Qt", Q.shape))
    # K̃ is stored transposed, (b, G, Dk, C): the matmuls Q̃ K̃ᵀ and K̃ᵀ V then read
    # contiguous operands (measured 2.5x faster than through a transposed view).  In
    # slow chunks exp(a) may be 0 (k/0 = inf) and inf·0 = NaN: harmless, every quantity
    # of a slow chunk built from K̃ is replaced below.
    KtT = _ws_buf(ws, "k_KtT", (b, G, Dk, C))
    A = _ws_buf(ws, "k_A", (b, G, C, C))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        np.divide(K, Qt, out=KtT.swapaxes(-1, -2))  # k_j ⊙ exp(-a_j)
        Qt *= Qn  # q_i ⊙ exp(a_i): chunk start -> token
        np.matmul(Qt, KtT, out=A)
        A *= _tril01(C)
        if not _finite_sum(A):
            # Scores that overflowed (possible only for |q|·|k| beyond ~1e170) are
            # recomputed exactly as well.
            slow = slow | ~np.isfinite(A).all(axis=(-1, -2))
        U = None
        if G > 1 or s is not None or need_state:
            # Time-major (G, b, Dk, Dv) memory: the state scan's loop reads it in order.
            Ub = _ws_buf(ws, "k_U", (G, b, Dk, Dv)).transpose(1, 0, 2, 3)
            U = np.matmul(KtT, V, out=Ub)  # K̃ᵀ V
    fix = None
    if slow.any():
        A[slow] = 0.0  # (their output is recomputed below)
        fix = _key_slow_chunks(Qn, K, V, lg, slow, sub, U)
    np.matmul(A, V, out=out)
    if fix is not None:
        out[fix[0], fix[1]] += fix[2]
    state = None
    if U is not None:
        rows = G + 1 if need_state else G
        Sp = _state_scan(U, a[:, :, -1], s, rows, True, serial_mnk, ws, fix)
        lo = 1 if s is None else 0  # chunk 0 sees a zero state
        if lo < G:
            inter = _ws_buf(ws, "k_inter", (b, G, C, Dv))[:, lo:]
            np.matmul(Qt[:, lo:], Sp[:, lo:G], out=inter)
            out[:, lo:] += inter
        if need_state:
            state = Sp[:, G]
    if rescale is not None:
        out *= rescale
    return state


def _key_slow_chunks(Qn, K, V, lg, slow, sub, U):
    """Exact quantities of the slow chunks ``(bi, gi) = nonzero(slow)``: returns
    ``(bi, gi, O, W)`` with their within-chunk outputs ``O: (n, C, Dv)`` (from
    :func:`_key_seq_dense`, sub-chunks of ``sub``) and state contributions
    ``W = (K ⊙ exp(a_last - a))ᵀ V: (n, Dk, Dv)``; sets ``U[bi, gi] = 0`` (if ``U`` is
    given) so that the scan adds ``W`` instead."""
    bi, gi = np.nonzero(slow)
    lg_s = np.maximum(lg[bi, gi], _LOG_FLOOR)  # (n, C, Dk), see _LOG_FLOOR
    K_s, V_s = K[bi, gi], V[bi, gi]
    O = _key_seq_dense(Qn[bi, gi], K_s, V_s, lg_s, None, False, sub)[0]
    W = None
    if U is not None:
        a_s = np.cumsum(lg_s, axis=1)  # monotone
        w = a_s[:, -1:, :] - a_s  # a_last - a_j, <= 0
        np.exp(w, out=w)
        w *= K_s
        W = np.matmul(w.swapaxes(-1, -2), V_s)
        U[bi, gi] = 0.0
    return bi, gi, O, W


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
    _exp_nonpos(E, out=E)  # (strong gates: most exponents far below -708)
    E *= q[:, :, :, None, :]
    A = np.einsum("mgijd,mgjd->mgij", E, k, out=buf("A", (n, G2, sub, sub)))
    O = np.matmul(A, v, out=buf("O", (n, G2, sub, Dv)))
    s_new = None
    if G2 > 1 or s is not None or need_state:
        alast = a[:, :, -1, :]  # (n, G2, Dk)
        w = np.subtract(alast[:, :, None, :], a, out=buf("w", (n, G2, sub, Dk)))  # <= 0
        _exp_nonpos(w, out=w)
        w *= k
        U = np.matmul(w.swapaxes(-1, -2), v, out=buf("U", (n, G2, Dk, Dv)))  # U^T
        gl = _exp_nonpos(alast)
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
            qd = _exp_nonpos(a[:, lo:], out=w[:, lo:])  # sub-chunk start -> token, <= 1
            qd *= q[:, lo:]
            O[:, lo:] += np.matmul(qd, Sp[:, lo:], out=buf("inter", (n, G2, sub, Dv))[:, lo:])
    return O.reshape(n, Lp, Dv)[:, :L], s_new


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


@overload
def gla_chunked(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = ...,
    scale: float = ...,
    initial_state: ArrayLike | None = ...,
    return_state: Literal[False] = ...,
    chunk_size: int | None = ...,
    tuning: ChunkTuning | None = ...,
) -> np.ndarray: ...


@overload
def gla_chunked(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = ...,
    scale: float = ...,
    initial_state: ArrayLike | None = ...,
    return_state: Literal[True],
    chunk_size: int | None = ...,
    tuning: ChunkTuning | None = ...,
) -> tuple[np.ndarray, np.ndarray]: ...


def gla_chunked(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = "scalar",
    scale: float = 1.0,
    initial_state: ArrayLike | None = None,
    return_state: bool = False,
    chunk_size: int | None = None,
    tuning: ChunkTuning | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Chunkwise-parallel GLA, same semantics and validation as :func:`gla_recurrent`.

    The sequence is cut into chunks of ``C = chunk_size`` tokens (the last chunk may be
    shorter; ``C`` need not divide ``T``).  Within a chunk the output is the masked
    attention ``((Q K^T) ⊙ D) V`` (scalar) or its key-wise analogue; across chunks a
    ``(B, Dv, Dk)`` state carries the past, decayed per chunk.  Work is done in tiles
    (a block of the batch × a run of chunks) small enough to stay in cache.

    Stability: every decay factor is an exponential of a sum of log-gates: either
    factorised, ``exp(c_i - r) · exp(r - c_j)`` with ``c`` summed from the start of a
    run of chunks whose log-gate sum is ``>= -300`` (scalar) or ``>= -600`` (key, per
    feature) and a reference ``r`` that keeps each factor within ``e^±300``, where the
    factorised products are finite; or the exact form, chunk-local ``a_i - a_j``
    (``j <= i``, ``<= 0``), ``a_i`` and ``a_last - a_j`` (``docs/engines.md``).  No
    overflow for any ``T`` or gate, gate 0 (``-inf``) included.

    Validation: types, shapes, gates and ``initial_state`` first; the values of ``q, k,
    v`` (and key log-gates) tile by tile as each tile is read, before it is computed with
    (one read of each input, not two).  A bad input raises the ``ValueError`` naming it.

    Parameters
    ----------
    q, k : (B, T, Dk).   v : (B, T, Dv).
    log_g : ``(B, T)`` for ``gate="scalar"``, ``(B, T, Dk)`` for ``gate="key"``
        (decay acting on the key axis, columns of ``S``); entries ``<= 0``.
    scale : read-out scale, ``o_t = scale · S_t q_t`` (current token included).
    initial_state : optional ``(B, Dv, Dk)`` state ``S_0``.
    return_state : also return the final state ``S_T: (B, Dv, Dk)``.
    chunk_size : positive int, or None for :func:`default_chunk_size`.
    tuning : :class:`ChunkTuning` (tile size, BLAS call size, chunk halving), None for
        the defaults.

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
    qa, ka, va, lga, S0 = _check_inputs(q, k, v, log_g, gate, initial_state, scan_values=False)
    sc = _check_scale(scale)
    cs = _check_chunk_size(chunk_size)
    if tuning is None:
        tuning = DEFAULT_TUNING
    elif not isinstance(tuning, ChunkTuning):
        raise TypeError(f"tuning: expected a ChunkTuning or None, got {type(tuning).__name__}")
    B, T, Dk = qa.shape
    Dv = va.shape[2]
    if T == 0 or B == 0:
        S = np.zeros((B, Dv, Dk)) if S0 is None else S0.copy()
        return (np.empty((B, T, Dv)), S) if return_state else np.empty((B, T, Dv))

    def refuse() -> None:
        # A tile failed its value check: the full checks raise the usual ValueError
        # (they return only if the tile's check was a false alarm, a finite sum overflow).
        _check_inputs(q, k, v, log_g, gate, initial_state)

    C = min(cs or default_chunk_size(T, Dk, Dv, gate), T)
    o, S = _run_tiles(qa, ka, va, lga, gate, sc, S0, return_state, C, tuning, refuse)
    if S is not None:
        return o, _check_output(S, qa, ka, va, S0, what="final state")
    return o


def _tile_plan(B, T, Dk, Dv, C, gate, tile_bytes):
    """Batch block ``bb`` and time spans ``[(t0, chunks, chunk length)]`` of the tiles.

    Per token the temporaries hold C scores, a few copies of the token's q/k/v rows (key
    gates: also its cumulative log-gates and the factors q ⊙ exp(a), k ⊙ exp(-a)) and a
    share of the chunk states (2 Dk·Dv/C); aim for ``tile_bytes`` in total.  (The dense
    fallback of the key path bounds its own (C, C, Dk) temporaries separately.)  As many
    chunks as fit (for short sequences the whole sequence, so the state never leaves the
    tile), then a block of the batch; runs of G full chunks, then one tile for the
    remainder chunk.
    """
    if gate == "scalar":
        per_tok = 8 * (C + 2 * Dk + 3 * Dv + 2 * Dk * Dv // C)
    else:
        per_tok = 8 * (C + 6 * Dk + 2 * Dv + 2 * Dk * Dv // C)
    tok = max(C, tile_bytes // per_tok)
    nfull = T // C
    G = max(1, min(nfull, tok // C)) if nfull else 1
    bb = max(1, min(B, tok // (G * C)))
    spans = [(t0, min(G, (nfull * C - t0) // C), C) for t0 in range(0, nfull * C, G * C)]
    if T % C:
        spans.append((nfull * C, 1, T % C))
    return bb, spans


def _run_tiles(q, k, v, log_g, gate, scale, S0, return_state, C, tuning, refuse):
    """Drive the tiles over batch blocks and time spans; returns (o, S_T or None).

    Each tile's inputs pass :func:`_check_tile` (else ``refuse()``), its output is
    scaled and checked for overflow in place while it is in cache."""
    B, T, Dk = q.shape
    Dv = v.shape[2]
    o = np.empty((B, T, Dv))
    bb, spans = _tile_plan(B, T, Dk, Dv, C, gate, tuning.tile_bytes)
    scalar = gate == "scalar"
    # Scalar log-gates are small (B, T) and were checked in full: clamped once here for
    # the exact tiles; key-gated tiles clamp only what their exact path needs.
    lgc = np.maximum(log_g, _LOG_FLOOR) if scalar else log_g
    sub = _dense_sub(Dk, Dv)
    ws: dict = {}  # tiles reuse one set of buffers per call (_ws_buf)
    S_out = np.empty((B, Dv, Dk)) if return_state else None
    for b0 in range(0, B, bb):
        b1 = min(B, b0 + bb)
        nb = b1 - b0
        state = None  # transposed state S^T carried from tile to tile (its own buffer)
        if S0 is not None:
            state = _ws_buf(ws, "state", (nb, Dk, Dv))
            np.copyto(state, S0[b0:b1].swapaxes(1, 2))
        for i, (t0, g, c) in enumerate(spans):
            t1 = t0 + g * c
            sh = (nb, g, c)
            Q = q[b0:b1, t0:t1].reshape(sh + (Dk,))
            K = k[b0:b1, t0:t1].reshape(sh + (Dk,))
            V = v[b0:b1, t0:t1].reshape(sh + (Dv,))
            lg = lgc[b0:b1, t0:t1]
            lg = lg.reshape(sh) if scalar else lg.reshape(sh + (Dk,))
            out = o[b0:b1, t0:t1].reshape(sh + (Dv,))  # a view: tiles write in place
            # Key tiles check q themselves (_normalise_q's per-chunk max |q|).
            if not _check_tile(Q if scalar else None, K, V, None if scalar else lg):
                refuse()
            need_state = return_state or i + 1 < len(spans)
            checked = False
            try:
                checked, s_new = _tile_fast_halving(
                    Q, K, V, lg, state, need_state, ws, out, sub, tuning
                )
                if checked:
                    pass
                elif scalar:
                    mnk = tuning.blas_serial_mnk
                    s_new = _tile_scalar_exact(Q, K, V, lg, state, need_state, mnk, ws, out)
                else:
                    s_new = _tile_key(Q, K, V, lg, state, need_state, ws, out, sub, tuning)
            except _NonFiniteInput:
                refuse()
                raise AssertionError("unreachable: q holds a NaN or inf") from None
            if scale != 1.0:
                out *= scale
                checked = False
            if not checked:
                _check_output(out, q, k, v, S0)
            if need_state:
                if state is None:
                    state = _ws_buf(ws, "state", (nb, Dk, Dv))
                np.copyto(state, s_new)
        if S_out is not None:
            S_out[b0:b1] = 0.0 if state is None else state.swapaxes(1, 2)
    return o, S_out
