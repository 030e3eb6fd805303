r"""WPGD risks from the explicit Gaussian fourth-moment tensor: an implementation of the
population risk that does not go through the closed forms of :mod:`numerics.risk`.

For the one-step predictor with feature-wise weights ``ŷ = Σ_i y_i xᵀ P D_i x_i``
(``D_i = diag(Ω_i)``; scalar weights ``Ω_i = ω_i 1``) under the multitask model
(``E[β_i β_jᵀ] = R_ij I``, ``y_i = x_iᵀβ_i + ξ_i``, the query label ``y = xᵀβ + ξ``):

* ``E y² = R_qq tr Σ + σ²``;
* ``E[y ŷ] = Σ_i R_iq tr(Σ P D_i Σ)`` (``x`` and ``x_i`` independent);
* ``E ŷ² = Σ_ij tr(Pᵀ Σ P C_ij)`` with ``C_ij = E[y_i y_j D_i x_i x_jᵀ D_j]``:
  ``R_ij D_i Σ² D_j`` for ``i ≠ j`` and ``D_i (R_ii T + σ² Σ) D_i`` for ``i = j``, where
  ``T_ab = Σ_c E[x_c x_c x_a x_b]`` is contracted from the fourth-moment tensor
  ``E[x_a x_b x_c x_d] = Σ_ab Σ_cd + Σ_ac Σ_bd + Σ_ad Σ_bc`` (Isserlis), built entry by entry.

No ``A``, ``B``, ``(a, b, c)`` and no ``2Σ² + tr(Σ) Σ`` shortcut is used, so the stress
property of claims L1 / L1f compares two computations that share only the model definition.
Cost ``O(d⁴ + n² d³)``; meant for ``d <= 8``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._validate import check_instance
from .data import MultitaskModel

__all__ = ["fourth_moment", "risk_by_moments", "risk_terms_by_moments", "risk_terms_token_matrices"]


def fourth_moment(Sigma: ArrayLike) -> np.ndarray:
    """``E[x_a x_b x_c x_d]`` for ``x ~ N(0, Sigma)``: the ``(d, d, d, d)`` Isserlis tensor."""
    S = np.asarray(Sigma, dtype=np.float64)
    return (
        np.einsum("ab,cd->abcd", S, S)
        + np.einsum("ac,bd->abcd", S, S)
        + np.einsum("ad,bc->abcd", S, S)
    )


def _risk_terms(Ey2: float, Eyy: float, Eh2: float) -> dict:
    """The dict of :func:`risk_terms_by_moments` from its three terms; ``scale`` bounds the
    rounding of the risk (a difference of terms that may each be much larger than it)."""
    return {
        "E_y2": Ey2,
        "E_y_yhat": Eyy,
        "E_yhat2": Eh2,
        "risk": Ey2 - 2 * Eyy + Eh2,
        "scale": abs(Ey2) + 2 * abs(Eyy) + abs(Eh2),
    }


def risk_terms_by_moments(model: MultitaskModel, P: ArrayLike, Omega: ArrayLike) -> dict:
    """The three terms ``E y²``, ``E[y ŷ]``, ``E ŷ²`` (see the module docstring) and the risk
    ``E y² − 2 E[y ŷ] + E ŷ²``. ``Omega``: ``(n,)`` scalar weights or ``(n, d)`` feature-wise."""
    check_instance(model, MultitaskModel, "model")
    n, d = model.n, model.d
    P = np.asarray(P, dtype=np.float64)
    Om = np.asarray(Omega, dtype=np.float64)
    if Om.shape == (n,):
        Om = np.repeat(Om[:, None], d, axis=1)
    if Om.shape != (n, d) or P.shape != (d, d):
        raise ValueError(
            f"Omega/P: expected shapes {(n,)} or {(n, d)} and {(d, d)}, got {Om.shape}, {P.shape}"
        )
    # ŷ depends on (P, Ω) through the products P D_i only: evaluate at (sP, Ω/s) with
    # s = max|Ω|, so that extreme scales (|Ω| ~ 1e150, P ~ 1e-156) do not pass through
    # subnormal intermediates such as PᵀΣP ~ 1e-312.
    s = float(np.max(np.abs(Om))) if Om.size else 0.0
    if s > 0 and np.isfinite(s):
        Om, P = Om / s, P * s
    R = np.asarray(model.R)
    S = np.asarray(model.Sigma)
    q = n
    T = np.einsum("ccab->ab", fourth_moment(S))
    Ey2 = R[q, q] * np.trace(S) + model.sigma**2
    # E[y ŷ] = Σ_i R_iq tr(Σ P D_i Σ) = Σ_a (Σ_i R_iq Ω_ia) (Σ² P)_aa
    Eyy = float(np.sum((R[:n, q] @ Om) * np.diag(S @ S @ P)))
    # E ŷ² = Σ_ij <G, C_ij> with G = Pᵀ Σ P (the quadratic form of x in ŷ²), summed over the
    # pairs in matrix form: i ≠ j gives Σ² ⊙ Ωᵀ(R_[n] − diag R_ii)Ω, i = j gives
    # T ⊙ Ωᵀ diag(R_ii) Ω + σ² Σ ⊙ ΩᵀΩ.
    G = P.T @ S @ P
    Rn = R[:n, :n]
    Rd = np.diag(Rn)
    off = Om.T @ Rn @ Om - (Om * Rd[:, None]).T @ Om
    diag = T * ((Om * Rd[:, None]).T @ Om) + model.sigma**2 * S * (Om.T @ Om)
    Eh2 = float(np.sum(G * (S @ S) * off) + np.sum(G * diag))
    return _risk_terms(float(Ey2), Eyy, Eh2)


def risk_by_moments(model: MultitaskModel, P: ArrayLike, Omega: ArrayLike) -> float:
    """``E(y − ŷ)²`` from the fourth-moment tensor (:func:`risk_terms_by_moments`)."""
    return risk_terms_by_moments(model, P, Omega)["risk"]


def risk_terms_token_matrices(model: MultitaskModel, M: ArrayLike) -> dict:
    """Like :func:`risk_terms_by_moments` for ``ŷ = Σ_i y_i xᵀ M_i x_i`` with arbitrary token
    matrices ``M: (n, d, d)`` (``M_i = P D_i`` is the WPGD case):
    ``E[y ŷ] = Σ_i R_iq tr(Σ M_i Σ)``, ``E ŷ² = Σ_ij tr(Σ M_i C_ij M_jᵀ)`` with ``C_ij`` as there."""
    check_instance(model, MultitaskModel, "model")
    n, d = model.n, model.d
    M = np.asarray(M, dtype=np.float64)
    if M.shape != (n, d, d):
        raise ValueError(f"M: expected shape {(n, d, d)}, got {M.shape}")
    R = np.asarray(model.R)
    S = np.asarray(model.Sigma)
    T = np.einsum("ccab->ab", fourth_moment(S))
    Ey2 = float(R[n, n] * np.trace(S) + model.sigma**2)
    SM = np.einsum("ab,ibc->iac", S, M)  # Σ M_i
    Eyy = float(np.sum(R[:n, n] * np.einsum("iab,ba->i", SM, S)))
    Rn = R[:n, :n]
    Roff = Rn - np.diag(np.diag(Rn))
    S2 = S @ S
    Eh2 = float(np.einsum("ij,iab,bc,jac->", Roff, SM, S2, M))
    Cii = np.diag(Rn)[:, None, None] * T[None] + model.sigma**2 * S[None]
    Eh2 += float(np.einsum("iab,ibc,iac->", SM, Cii, M))
    return _risk_terms(Ey2, Eyy, Eh2)
