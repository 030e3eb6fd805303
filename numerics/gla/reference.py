"""The reference GLA engine: an explicit loop over time (:func:`gla_recurrent`)."""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from ._common import _check_inputs, _check_output, _check_scale

__all__ = ["gla_recurrent", "gla_recurrent_backward"]


@overload
def gla_recurrent(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = ...,
    scale: float = ...,
    initial_state: ArrayLike | None = ...,
    return_state: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def gla_recurrent(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = ...,
    scale: float = ...,
    initial_state: ArrayLike | None = ...,
    return_state: Literal[True],
) -> tuple[np.ndarray, np.ndarray]: ...


def gla_recurrent(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    *,
    gate: str = "scalar",
    scale: float = 1.0,
    initial_state: ArrayLike | None = None,
    return_state: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Reference GLA: an explicit loop over time (O(B·T·Dk·Dv), vectorised over batch).

    Parameters
    ----------
    q, k : (B, T, Dk) arrays.   v : (B, T, Dv) array.
    log_g : log-gates, ``(B, T)`` for ``gate="scalar"``, ``(B, T, Dk)`` for ``gate="key"``;
        all entries ``<= 0`` (``-inf`` allowed: gate 0 resets the state).
    scale : multiplies the read-out, ``o_t = scale · S_t q_t``.
    initial_state : optional ``(B, Dv, Dk)`` state ``S_0`` (zeros if omitted).
    return_state : also return the final state ``S_T``.

    Returns
    -------
    o : (B, T, Dv), and ``S_T: (B, Dv, Dk)`` if ``return_state``.
    """
    qa, ka, va, lga, S0 = _check_inputs(q, k, v, log_g, gate, initial_state)
    sc = _check_scale(scale)
    B, T, Dk = qa.shape
    Dv = va.shape[2]
    S = np.zeros((B, Dv, Dk)) if S0 is None else S0.copy()
    g = np.exp(lga)
    o = np.empty((B, T, Dv))
    for t in range(T):
        if gate == "scalar":
            S *= g[:, t, None, None]
        else:
            S *= g[:, t, None, :]
        S += va[:, t, :, None] * ka[:, t, None, :]
        o[:, t] = np.einsum("bvk,bk->bv", S, qa[:, t])
    o *= sc
    _check_output(o, qa, ka, va, S0)
    if return_state:
        return o, _check_output(S, qa, ka, va, S0, what="final state")
    return o


def gla_recurrent_backward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    log_g: np.ndarray | None,
    dO: np.ndarray,
    *,
    gate: str = "scalar",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Reference reverse scan: gradients of ``Σ_t <dO_t, o_t>`` for :func:`gla_recurrent` (scale 1).

    ``q, k: (N, T, Dk)``, ``v: (N, T, Dv)``, ``dO: (N, T, Dv)``; ``log_g: (N, T)`` (scalar),
    ``(N, T, Dk)`` (key, on the key axis) or ``None`` (linear attention).
    Recomputes the states ``S_t`` (forward scan), then runs
    ``dS_t = dO_t q_tᵀ + G_{t+1} ⊙ dS_{t+1}`` backwards and returns
    ``(dq, dk, dv, dlog_g)`` with ``dq_t = S_tᵀ dO_t``, ``dk_t = dS_tᵀ v_t``,
    ``dv_t = dS_t k_t``, ``dlog_g_t = Σ (dS_t ⊙ G_t ⊙ S_{t-1})`` (summed over both state
    axes for scalar gates, over the value axis for key gates; ``None`` when ``log_g`` is None).
    Loops over ``T`` only; vectorised over the batch.  Stores every ``S_t``
    (``O(B·T·Dk·Dv)`` memory): the independent reference for :func:`gla_chunked_vjp`.

    >>> import numpy as np
    >>> q, k, v = np.ones((1, 2, 1)), np.ones((1, 2, 1)), np.array([[[1.0], [2.0]]])
    >>> dq, dk, dv, dlg = gla_recurrent_backward(q, k, v, np.log([[1.0, 0.5]]), np.array([[[0.0], [1.0]]]))
    >>> dv[0, :, 0], dlg[0]
    (array([0.5, 1. ]), array([0. , 0.5]))
    """
    if gate not in ("scalar", "key"):
        raise ValueError(f"gate: must be 'scalar' or 'key', got {gate!r}")
    N, T, Dk = q.shape
    # Time-major copies so that every per-step slice is contiguous (the loops touch only
    # (N, Dv, Dk) blocks; the rest is vectorised over batch and time).
    qt, kt, vt, dOt = (np.ascontiguousarray(a.transpose(1, 0, 2)) for a in (q, k, v, dO))
    if log_g is None:
        gb = None
    else:
        g = np.exp(np.moveaxis(log_g, 1, 0))
        gb = g[:, :, None, None] if gate == "scalar" else g[:, :, None, :]  # (T, N, 1, 1|Dk)
    # S_t = G_t ⊙ S_{t-1} + v_t k_tᵀ, stored for t = 0..T-1.
    S_all = np.multiply(vt[..., None], kt[:, :, None, :])
    for t in range(1, T):
        S_all[t] += S_all[t - 1] * gb[t] if gb is not None else S_all[t - 1]
    # dS_t = dO_t q_tᵀ + G_{t+1} ⊙ dS_{t+1} (total derivative wrt S_t), t = T-1..0.
    dS_all = np.multiply(dOt[..., None], qt[:, :, None, :])
    for t in range(T - 2, -1, -1):
        dS_all[t] += dS_all[t + 1] * gb[t + 1] if gb is not None else dS_all[t + 1]
    dq = np.einsum("tnvk,tnv->ntk", S_all, dOt)
    dk = np.einsum("tnvk,tnv->ntk", dS_all, vt)
    dv = np.einsum("tnvk,tnk->ntv", dS_all, kt)
    dlg = None
    if gb is not None:
        # Σ dS_t ⊙ G_t ⊙ S_{t-1}, with G_t ⊙ S_{t-1} formed directly (not as S_t − v_t k_tᵀ,
        # which cancels when the gate is small and the new outer product dominates).
        dlg = np.zeros((N, T) if gate == "scalar" else (N, T, Dk))
        if T > 1:
            if gate == "scalar":
                dlg[:, 1:] = np.einsum("tnvk,tnvk->nt", dS_all[1:], S_all[:-1]) * g[1:].T
            else:
                dlg[:, 1:] = np.einsum("tnvk,tnvk->ntk", dS_all[1:], S_all[:-1]) * g[1:].transpose(
                    1, 0, 2
                )
    return dq, dk, dv, dlg
