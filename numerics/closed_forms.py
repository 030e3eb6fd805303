r"""Closed-form WPGD optima of special multitask models (claims L6, L7), written out
directly from their formulas (no optimiser), to be compared with the certified solver
:func:`numerics.landscape.solve_wpgd`.

* one task (``R = 11ᵀ``): ``ω* ∝ 1`` and, for the representative ``ω = 1``,
  ``P* = ((n+1)Σ + (tr Σ + σ²) I)^{-1}`` (:func:`single_task_preconditioner`);
* ``K`` independent unit-variance tasks in segments of lengths ``m_k`` with query
  correlations ``ρ_k`` and ``Σ = I_d``: ``ω*`` is constant on each segment,
  ``ω*_k ∝ ρ_k/(m_k + 1 + d + σ²)`` (:func:`independent_task_weights`); the ``+1`` is the
  Gaussian fourth-moment term ``diag(R_ii)`` of ``A``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["independent_task_weights", "single_task_preconditioner"]


def single_task_preconditioner(n: int, Sigma: ArrayLike, sigma: float) -> np.ndarray:
    """``P*(1) = ((n+1)Σ + (tr Σ + σ²) I)^{-1}`` of the single-task model with ``n`` examples."""
    S = np.asarray(Sigma, dtype=np.float64)
    d = S.shape[0]
    return np.linalg.inv((n + 1) * S + (np.trace(S) + sigma**2) * np.eye(d))


def independent_task_weights(m: ArrayLike, rho: ArrayLike, d: int, sigma: float) -> np.ndarray:
    """Per-example weights ``ρ_{k(i)}/(m_{k(i)} + 1 + d + σ²)`` (``n = Σ m_k`` entries, not normalised)."""
    m = np.asarray(m, dtype=np.int64)
    rho = np.asarray(rho, dtype=np.float64)
    return np.repeat(rho / (m + 1 + d + sigma**2), m)
