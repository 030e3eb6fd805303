"""Dense and last-token GLA: :func:`decay_matrix`, :func:`gla_parallel`, :func:`gla_final`."""

from __future__ import annotations

import numpy as np

from .._validate import as_log_gates
from ._common import _check_inputs, _check_output, _check_scale

__all__ = ["decay_matrix", "gla_parallel", "gla_final", "suffix_log_decay"]


def suffix_log_decay(log_g):
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
    log_g = np.asarray(log_g, dtype=np.float64)
    T = log_g.shape[1]
    R = np.empty_like(log_g)
    R[:, T - 1] = 0.0
    if log_g.ndim == 3 and log_g.shape[0] * log_g.shape[2] >= 64:
        # (B, T, Dk): a running sum over time, one vector add per token (np.cumsum along
        # the middle axis runs B·Dk strided inner loops: measured ~10x slower at
        # B = 4096, T = 128, Dk = 17 and ~5x at B = 8, T = 16384, Dk = 64).
        for t in range(T - 2, -1, -1):
            np.add(R[:, t + 1], log_g[:, t + 1], out=R[:, t])
        return R, R[:, 0] + log_g[:, 0]
    rev = np.cumsum(log_g[:, ::-1], axis=1)[:, ::-1]  # rev[s] = Σ_{r>=s} log_g_r
    R[:, :-1] = rev[:, 1:]
    return R, rev[:, 0]


def gla_final(q, k, v, log_g, *, gate: str = "scalar", scale: float = 1.0, initial_state=None):
    """The last output ``o_T`` only, shape ``(B, Dv)``, in ``O(B·T·(Dk+Dv))``.

    ``o_T = scale · Σ_{s<=T} v_s (k_s ⊙ exp(c_T - c_s))^T q_T
    (+ scale · (S_0 ⊙ exp(c_T)) q_T`` with an initial state; for scalar gates
    ``exp(c_T)`` multiplies all of ``S_0``, for key gates it scales its columns).
    Equals ``gla_recurrent(...)[:, -1]`` with the same arguments (the query token ``T``
    attends to itself with weight 1).  This is the in-context prediction read-out.
    The exponents ``c_T - c_s`` are suffix sums of log-gates (``<= 0``, no overflow).
    """
    q, k, v, log_g, S0 = _check_inputs(q, k, v, log_g, gate, initial_state)
    scale = _check_scale(scale)
    T = q.shape[1]
    if T == 0:
        raise ValueError("q: needs at least one token (T >= 1) for a final output")
    qT = q[:, -1]  # (B, Dk)
    R, cT = suffix_log_decay(log_g)
    # einsum, not matmul: these are long matrix-vector products that OpenBLAS would
    # run multi-threaded (slow on a busy machine); einsum streams them in one pass.
    if gate == "scalar":
        score = np.einsum("btd,bd->bt", k, qT) * np.exp(R)  # (B, T)
    else:
        score = np.einsum("btd,btd->bt", k, np.exp(R) * qT[:, None, :])
    out = np.einsum("bt,btv->bv", score, v)  # (B, Dv)
    if S0 is not None:
        if gate == "scalar":
            out += np.exp(cT)[:, None] * np.matmul(S0, qT[:, :, None])[:, :, 0]
        else:
            out += np.matmul(S0, (np.exp(cT) * qT)[:, :, None])[:, :, 0]
    return _check_output(scale * out, q, k, v, S0)


def decay_matrix(log_g):
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


def gla_parallel(q, k, v, log_g, *, gate: str = "scalar", scale: float = 1.0, initial_state=None):
    """Dense parallel GLA: ``o = scale · ((Q K^T) ⊙ D) V`` with ``D = decay_matrix(log_g)``.

    Same semantics as :func:`gla_recurrent` (current token included). ``gate="key"`` is
    supported through the dense ``(B, T, T, Dk)`` decay:
    ``o_i = scale · Σ_{j<=i} (Σ_d q_{id} k_{jd} D_{ijd}) v_j``.  With ``initial_state``
    the term ``scale · (S_0 ⊙ exp(c_i)) q_i`` is added (``exp(c_i)`` = decay from the
    start, a prefix product of gates).  Memory ``O(B T^2)`` (``O(B T^2 Dk)`` for key
    gates): a reference for small ``T``, not an engine for long sequences.
    """
    q, k, v, log_g, S0 = _check_inputs(q, k, v, log_g, gate, initial_state)
    scale = _check_scale(scale)
    D = decay_matrix(log_g)
    if gate == "scalar":
        A = np.matmul(q, k.transpose(0, 2, 1)) * D
    else:
        A = np.einsum("bid,bjd,bijd->bij", q, k, D)
    o = np.matmul(A, v)
    if S0 is not None:
        c = np.cumsum(log_g, axis=1)  # prefix sums: -inf propagates, exp gives 0
        if gate == "scalar":
            o += np.exp(c)[:, :, None] * np.einsum("bvd,btd->btv", S0, q)
        else:
            o += np.einsum("bvd,btd->btv", S0, np.exp(c) * q)
    return _check_output(scale * o, q, k, v, S0)
