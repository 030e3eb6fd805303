r"""Gated linear attention (GLA) forward passes.

One semantics everywhere (THEORY.md section 1), batch-first arrays, float64:

* inputs ``q, k: (B, T, Dk)``, ``v: (B, T, Dv)``;
* state ``S_t`` of shape ``(B, Dv, Dk)``: rows index values, columns index keys;
* recurrence ``S_t = G_t ⊙ S_{t-1} + v_t k_t^T`` with ``S_0 = initial_state``
  (zeros by default);
* output ``o_t = scale · S_t q_t`` of shape ``(B, T, Dv)``: the current token is
  included (token ``t`` attends to itself with weight 1, the empty gate product);
* gates are passed as **log-gates** ``log_g <= 0`` (``-inf`` means a gate of exactly 0):

  - ``gate="scalar"``: ``log_g: (B, T)``, ``G_t = g_t 1 1^T``;
  - ``gate="key"``: ``log_g: (B, T, Dk)``, ``G_t = 1 γ_t^T``: the gate scales the
    *key axis* (columns of ``S``), so key feature ``d`` of every past token decays by
    ``γ_{t,d}`` (the GLA of Yang et al.).

Unrolled, ``o_t = scale · Σ_{s<=t} v_s (k_s ⊙ exp(c_t - c_s))^T q_t`` with the
cumulative log-gate ``c_t = Σ_{r<=t} log_g_r``; for scalar gates this is the
"gating is weighting" matrix ``D_{ts} = exp(c_t - c_s) = Π_{r=s+1}^{t} g_r``.
"""
from __future__ import annotations

import numpy as np

from ._validate import as_float_array, as_log_gates

GATES = ("scalar", "key")


def _check_inputs(q, k, v, log_g, gate, initial_state=None):
    """Validate and convert the common GLA arguments; returns float64 arrays."""
    if gate not in GATES:
        raise ValueError(f"gate: must be one of {GATES}, got {gate!r}")
    q = as_float_array(q, "q", ndim=3)
    k = as_float_array(k, "k", ndim=3)
    v = as_float_array(v, "v", ndim=3)
    if k.shape != q.shape:
        raise ValueError(f"k: shape {k.shape} does not match q {q.shape}")
    if v.shape[:2] != q.shape[:2]:
        raise ValueError(f"v: leading (B, T) {v.shape[:2]} does not match q {q.shape[:2]}")
    B, T, Dk = q.shape
    Dv = v.shape[2]
    expected = (B, T) if gate == "scalar" else (B, T, Dk)
    log_g = as_log_gates(log_g, "log_g")
    if log_g.shape != expected:
        raise ValueError(f"log_g: gate={gate!r} needs shape {expected}, got {log_g.shape}")
    if initial_state is not None:
        initial_state = as_float_array(initial_state, "initial_state", ndim=3)
        if initial_state.shape != (B, Dv, Dk):
            raise ValueError(f"initial_state: expected shape {(B, Dv, Dk)}, got {initial_state.shape}")
    return q, k, v, log_g, initial_state


def _check_scale(scale) -> float:
    s = float(scale)
    if not np.isfinite(s):
        raise ValueError(f"scale: must be finite, got {scale!r}")
    return s


def gla_recurrent(q, k, v, log_g, *, gate: str = "scalar", scale: float = 1.0,
                  initial_state=None, return_state: bool = False):
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
    q, k, v, log_g, S0 = _check_inputs(q, k, v, log_g, gate, initial_state)
    scale = _check_scale(scale)
    B, T, Dk = q.shape
    Dv = v.shape[2]
    S = np.zeros((B, Dv, Dk)) if S0 is None else S0.copy()
    g = np.exp(log_g)
    o = np.empty((B, T, Dv))
    for t in range(T):
        if gate == "scalar":
            S *= g[:, t, None, None]
        else:
            S *= g[:, t, None, :]
        S += v[:, t, :, None] * k[:, t, None, :]
        o[:, t] = np.einsum("bvk,bk->bv", S, q[:, t])
    o *= scale
    return (o, S) if return_state else o
