"""Dense and last-token GLA: :func:`decay_matrix`, :func:`gla_parallel`, :func:`gla_final`."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from .._validate import _finite_sum, as_log_gates
from ._common import (
    _LOG_FLOOR,
    _check_inputs,
    _check_output,
    _check_scale,
    _check_tile,
    _exp_nonpos,
    _running_sum_tokens,
)

__all__ = ["decay_matrix", "gla_parallel", "gla_final", "suffix_log_decay"]


def suffix_log_decay(log_g: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Log of the decay from each token to the last: ``R_s = Σ_{r=s+1}^{T} log_g_r``.

    ``log_g: (B, T)`` or ``(B, T, Dk)`` (tokens on axis 1, ``<= 0``).  Returns ``(R, c_T)``:
    ``R`` shaped like ``log_g`` with ``R_T = 0`` (``exp(R_s) = Π_{r>s} g_r``, the weight of
    token ``s`` in the last token's read-out) and ``c_T = Σ_{r<=T} log_g_r`` (shape
    ``log_g.shape[:1] + log_g.shape[2:]``, the decay of an initial state).
    Accumulated from the end (a reverse running sum, not a difference of prefix sums):
    sums of non-positive terms, ``-inf`` propagates, no NaN, no cancellation.

    >>> R, cT = suffix_log_decay(np.log([[0.5, 0.25, 0.5]]))
    >>> np.exp(R), np.exp(cT)
    (array([[0.125, 0.5  , 1.   ]]), array([0.0625]))
    """
    lg = np.asarray(log_g, dtype=np.float64)
    R = _running_sum_tokens(lg, reverse=True, exclusive=True)
    return R, R[:, 0] + lg[:, 0]


def gla_final(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = "scalar",
    scale: float = 1.0,
    initial_state: ArrayLike | None = None,
) -> np.ndarray:
    """The last output ``o_T`` only, shape ``(B, Dv)``, in ``O(B·T·(Dk+Dv))``.

    ``o_T = scale · Σ_{s<=T} v_s (k_s ⊙ exp(c_T - c_s))^T q_T
    (+ scale · (S_0 ⊙ exp(c_T)) q_T`` with an initial state; for scalar gates
    ``exp(c_T)`` multiplies all of ``S_0``, for key gates it scales its columns).
    Equals ``gla_recurrent(...)[:, -1]`` with the same arguments (the query token ``T``
    attends to itself with weight 1).  This is the in-context prediction read-out.
    The exponents ``c_T - c_s`` are suffix sums of log-gates (``<= 0``, no overflow).

    >>> import numpy as np
    >>> q = k = v = np.ones((1, 3, 2))
    >>> lg = np.log(np.full((1, 3, 2), 0.5))          # key gates 1/2 on both features
    >>> gla_final(q, k, v, lg, gate="key")[0]          # 2 · (1/4 + 1/2 + 1) per value
    array([3.5, 3.5])
    """
    key = gate == "key"
    # Key gates: the values of k, v, log_g are checked block by block as _final_key reads
    # them (one read of each from memory, not two: measured ~0.45 of bench.gla's floor on
    # the ICL workload); q is checked here in full.
    qa, ka, va, lga, S0 = _check_inputs(q, k, v, log_g, gate, initial_state, scan_values=not key)

    def refuse() -> None:
        # A value check failed: the full checks raise the usual ValueError (they return
        # only if the failed check was a false alarm, a finite sum overflow).
        _check_inputs(q, k, v, log_g, gate, initial_state)

    if key and not _finite_sum(qa):
        refuse()
    sc = _check_scale(scale)
    T = qa.shape[1]
    if T == 0:
        raise ValueError("q: needs at least one token (T >= 1) for a final output")
    qT = qa[:, -1]  # (B, Dk)
    if gate == "scalar":
        R, cT = suffix_log_decay(lga)
        # einsum, not matmul: these are long matrix-vector products that OpenBLAS would
        # run multi-threaded (slow on a busy machine); einsum streams them in one pass.
        score = np.einsum("btd,bd->bt", ka, qT) * np.exp(R)  # (B, T)
        out = np.einsum("bt,btv->bv", score, va)  # (B, Dv)
    else:
        out, cT = _final_key(ka, va, lga, qT, refuse)
    if S0 is not None:
        if gate == "scalar":
            out += np.exp(cT)[:, None] * np.matmul(S0, qT[:, :, None])[:, :, 0]
        else:
            out += np.matmul(S0, (np.exp(cT) * qT)[:, :, None])[:, :, 0]
    return _check_output(sc * out, qa, ka, va, S0)


# Key-gated read-out blocks: (prompts x tokens x Dk) floats per block, so that the block's
# suffix sums, their exponentials and both contractions run in cache (1 MB); suffix sums
# within sub-blocks of _FINAL_SUB tokens as one matmul (np.cumsum along the token axis of
# (prompts, tokens, Dk) runs strided inner loops: measured ~5x slower).  Measured on the
# bench.gla workloads: ~0.4x the full chunked pass, against ~1x for the same steps over
# whole arrays.
_FINAL_BLOCK_BYTES = 1 << 20
# 16 tokens: the triangle's flops (2·_FINAL_SUB per log-gate) against the number of
# matmul calls; measured against 32 on the bench.gla rows: 0.90 (ICL key), 0.92 (ICL
# key50), 0.98 (long key); 8 was 0.89 / 0.92 / 1.02, 64 1.17-1.23.
_FINAL_SUB = 16
# exp(x) rounds to exactly 0.0 in float64 for x < -745.14 (half the smallest subnormal).
_EXP_ZERO = -746.0


@lru_cache(maxsize=8)
def _strict_triu01(m: int) -> np.ndarray:
    """(m, m) float mask, 1 strictly above the diagonal (``U[s, r] = 1`` for ``r > s``)."""
    U = np.triu(np.ones((m, m)), 1)
    U.flags.writeable = False  # shared through the cache
    return U


def _final_key(k, v, lg, qT, refuse):
    """Key gates: ``(Σ_s v_s (k_s ⊙ exp(R_s))ᵀ q_T, c_T)`` with ``R_s = Σ_{r>s} lg_r``.

    Blocks of prompts (whole sequences if they fit :data:`_FINAL_BLOCK_BYTES`, else one
    prompt and a run of tokens), visited from the sequence end.  Inside a block ``R_s`` is
    the sum of three groups of log-gates: those after ``s`` in its sub-block of
    :data:`_FINAL_SUB` tokens (one matmul with a strict upper triangle of ones), those in
    later sub-blocks of the block, and those after the block (the carry).  Every exponent
    is thus a sum of log-gates (``<= 0``), never a difference: no cancellation.  Log-gates
    are clamped to ``_LOG_FLOOR`` (``0·-inf`` would be NaN in the matmul; the clamp changes
    no factor, see there).  Returns ``c_T`` likewise clamped (its exponential is exact);
    once the log-decay from a block's start to ``T`` is below :data:`_EXP_ZERO` for every
    key feature, earlier tokens are skipped (their weights are exactly 0.0) and ``c_T`` is
    that log-decay (``exp(c_T) = 0`` either way).  Each block's ``k, v, lg`` pass the value
    checks before use, the skipped ones too (else ``refuse()``, which raises the usual
    error).
    """
    B, T, Dk = k.shape
    out = np.zeros((B, v.shape[2]))
    cT = np.empty((B, Dk))
    m = min(_FINAL_SUB, T)
    per_seq = 8 * T * Dk
    if per_seq <= _FINAL_BLOCK_BYTES:
        bb, tb = _FINAL_BLOCK_BYTES // per_seq, T
    else:
        bb, tb = 1, max(m, _FINAL_BLOCK_BYTES // (8 * Dk) // m * m)
    U = _strict_triu01(m)
    # The block's temporaries live in two buffers reused by every block (instead of
    # fresh arrays per block: measured 0.87x the time on bench.gla's ICL key row, 0.94x
    # long key, same results bit for bit).
    nsmax = -(-min(tb, T) // m)
    xbuf = np.empty((min(bb, B), nsmax * m, Dk))
    Rbuf = np.empty_like(xbuf)
    for b0 in range(0, B, bb):
        b1 = min(B, b0 + bb)
        nb = b1 - b0
        carry = np.zeros((nb, Dk))  # Σ of the log-gates after the block
        for t1 in range(T, 0, -tb):
            t0 = max(0, t1 - tb)
            if not _check_tile(None, k[b0:b1, t0:t1], v[b0:b1, t0:t1], lg[b0:b1, t0:t1]):
                refuse()
            ns = -(-(t1 - t0) // m)
            pad = ns * m - (t1 - t0)  # zero log-gates (gate 1) before the block's start
            x = xbuf[:nb, : ns * m]
            x[:, :pad] = 0.0
            np.maximum(lg[b0:b1, t0:t1], _LOG_FLOOR, out=x[:, pad:])
            xs = x.reshape(nb, ns, m, Dk)
            R = np.matmul(U, xs, out=Rbuf[:nb, : ns * m].reshape(nb, ns, m, Dk))  # after s
            tot = R[:, :, 0] + xs[:, :, 0]  # (nb, ns, Dk): each sub-block's sum
            after = np.empty_like(tot)  # carry + the sums of the later sub-blocks
            after[:, ns - 1] = carry
            for j in range(ns - 2, -1, -1):
                np.add(after[:, j + 1], tot[:, j + 1], out=after[:, j])
            R += after[:, :, None, :]
            carry = after[:, 0] + tot[:, 0]
            E = R.reshape(nb, ns * m, Dk)[:, pad:]
            _exp_nonpos(E, out=E)
            E *= qT[b0:b1, None, :]
            score = np.einsum("btd,btd->bt", E, k[b0:b1, t0:t1])
            out[b0:b1] += np.einsum("bt,btv->bv", score, v[b0:b1, t0:t1])
            if carry.max() < _EXP_ZERO:
                # Every earlier token's decay (and exp(c_T)) is exactly 0.0 in float64:
                # the remaining blocks would add exact zeros.  Long, gated sequences
                # stop after their effective memory (and never exponentiate the far
                # past, whose exp(x) for x in (-745, -708) (subnormal results) was
                # measured ~50x slower than for ordinary x).  Their values are still
                # checked.
                if not _check_tile(None, k[b0:b1, :t0], v[b0:b1, :t0], lg[b0:b1, :t0]):
                    refuse()
                break
        cT[b0:b1] = carry
    return out, cT


def decay_matrix(log_g: ArrayLike) -> np.ndarray:
    """The "gating is weighting" matrix ``D`` of per-token gates.

    ``log_g: (B, T)`` (scalar gates) -> ``D: (B, T, T)`` with
    ``D[b, i, j] = exp(c_i - c_j) = Π_{r=j+1}^{i} g_r`` for ``j <= i`` (1 on the
    diagonal) and 0 for ``j > i``.  ``log_g: (B, T, Dk)`` (key gates) -> ``(B, T, T, Dk)``,
    the same product entrywise per key feature.

    Each entry's exponent is accumulated directly as ``Σ_{r=j+1}^{i} log_g_r`` (a cumsum
    down each column), not as a difference of prefix sums: no cancellation for long
    sequences, and ``-inf`` (gate 0) gives exactly 0 without NaN.
    """
    lg = as_log_gates(log_g, "log_g", ndim=(2, 3))
    T = lg.shape[1]
    i, j = np.tril_indices(T, -1)
    M = np.zeros(lg.shape[:1] + (T, T) + lg.shape[2:])
    M[:, i, j] = lg[:, i]  # M[i, j] = log_g_i for i > j
    L = np.cumsum(M, axis=1)  # L[i, j] = Σ_{j < r <= i} log_g_r (i >= j)
    D = np.exp(L)
    iu, ju = np.triu_indices(T, 1)
    D[:, iu, ju] = 0.0
    return D


def gla_parallel(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = "scalar",
    scale: float = 1.0,
    initial_state: ArrayLike | None = None,
) -> np.ndarray:
    """Dense parallel GLA: ``o = scale · ((Q K^T) ⊙ D) V`` with ``D = decay_matrix(log_g)``.

    Same semantics as :func:`gla_recurrent` (current token included). ``gate="key"`` is
    supported through the dense ``(B, T, T, Dk)`` decay:
    ``o_i = scale · Σ_{j<=i} (Σ_d q_{id} k_{jd} D_{ijd}) v_j``.  With ``initial_state``
    the term ``scale · (S_0 ⊙ exp(c_i)) q_i`` is added (``exp(c_i)`` = decay from the
    start, a prefix product of gates).  Memory ``O(B T^2)`` (``O(B T^2 Dk)`` for key
    gates): a reference for small ``T``, not an engine for long sequences.
    """
    qa, ka, va, lga, S0 = _check_inputs(q, k, v, log_g, gate, initial_state)
    sc = _check_scale(scale)
    D = decay_matrix(lga)
    if gate == "scalar":
        A = np.matmul(qa, ka.transpose(0, 2, 1)) * D
    else:
        A = np.einsum("bid,bjd,bijd->bij", qa, ka, D)
    o = np.matmul(A, va)
    if S0 is not None:
        c = np.cumsum(lga, axis=1)  # prefix sums: -inf propagates, exp gives 0
        if gate == "scalar":
            o += np.exp(c)[:, :, None] * np.einsum("bvd,btd->btv", S0, qa)
        else:
            o += np.einsum("bvd,btd->btv", S0, np.exp(c) * qa)
    return _check_output(sc * o, qa, ka, va, S0)
