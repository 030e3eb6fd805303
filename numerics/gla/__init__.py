r"""Gated linear attention (GLA) forward passes.

One semantics everywhere (the GLA layer of ``docs/theory.md``), batch-first arrays, float64:

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

Engines (all float64, all with this semantics; see ``docs/engines.md``):

* :func:`gla_recurrent` the reference loop over time;
* :func:`gla_chunked` chunkwise-parallel, tiled, the fast engine for full outputs;
* :func:`gla_final` only ``o_T`` (the in-context prediction), ``O(B·T·(Dk+Dv))``;
* :func:`gla_parallel` dense ``((Q K^T) ⊙ D) V`` with :func:`decay_matrix` (small ``T``);
* :func:`gla_chunked_vjp` chunked outputs plus their reverse pass (gradients), checked
  against the reference reverse scan :func:`gla_recurrent_backward`.

Modules: :mod:`.reference` (the loop and its reverse scan), :mod:`.backward` (chunked
reverse pass), :mod:`.chunked` (the tiled engine; its performance
knobs are a :class:`ChunkTuning` passed as ``tuning=``), :mod:`.parallel` (dense form,
last-token read-out, decay matrix).  Every engine validates its arguments (``ValueError``
naming the argument) and reports a result beyond the float64 range as a ``ValueError``
naming the inputs instead of returning inf/NaN.

>>> import numpy as np
>>> q = k = v = np.ones((1, 3, 1))
>>> lg = np.log(np.full((1, 3), 0.5))            # every gate 1/2
>>> gla_recurrent(q, k, v, lg)[0, :, 0]          # 1, 1/2 + 1, 3/4 + 1
array([1.  , 1.5 , 1.75])
>>> float(gla_final(q, k, v, lg)[0, 0])
1.75
"""

from ._common import GATES
from .backward import default_vjp_chunk_size, gla_chunked_vjp
from .chunked import KEY_FAST_SPAN, ChunkTuning, default_chunk_size, gla_chunked
from .parallel import decay_matrix, gla_final, gla_parallel, suffix_log_decay
from .reference import gla_recurrent, gla_recurrent_backward

__all__ = [
    "GATES",
    "ChunkTuning",
    "KEY_FAST_SPAN",
    "decay_matrix",
    "default_chunk_size",
    "default_vjp_chunk_size",
    "gla_chunked",
    "gla_chunked_vjp",
    "gla_final",
    "gla_parallel",
    "gla_recurrent",
    "gla_recurrent_backward",
    "suffix_log_decay",
]
