r"""Closed-form population risks of one-step WPGD under the multitask model, and Monte Carlo.

Predictor (conventions): ``ŷ = xᵀ P h`` with ``h = Σ_i ω_i y_i x_i`` (scalar weights,
``omega: (n,)``) or ``h = Σ_i y_i (Ω_i ⊙ x_i) = Σ_i y_i D_i x_i``, ``D_i = diag(Ω_i)``
(feature-wise weights, ``Omega: (n, d)``; the weight of example ``i`` on feature ``k`` is
``Ω_ik``, in the coordinate basis of ``x``). The query does not attend to itself (its
label slot is 0). Risk ``L = E(y − ŷ)²`` with the noisy query label, no factor 1/2.

Derivation (Gaussian moments, ``x ⟂ (β, h)``, Isserlis ``E[x xᵀ M x xᵀ] = Σ(M+Mᵀ)Σ + tr(ΣM) Σ``):

* ``E y² = R_{n+1,n+1} tr Σ + σ²``;
* ``E[y ŷ] = E[βᵀ Σ P h]``, ``E[h | β] = Σ_i D_i Σ β_i`` ⇒ ``E[y ŷ] = tr(P diag(m) Σ²)`` with
  ``m = Ωᵀ r`` (scalar weights: ``m = a 1``, ``a = rᵀω``);
* ``E[y_i y_j x_i x_jᵀ] = R_ij Σ²`` for ``i ≠ j``; ``E[y_i² x_i x_iᵀ] = 2R_ii Σ² + (R_ii tr Σ + σ²) Σ``;
  hence ``H := E[h hᵀ] = (Ωᵀ A Ω) ⊙ Σ² + (Ωᵀ B Ω) ⊙ Σ`` (scalar: ``bΣ² + cΣ``);
* ``E ŷ² = tr(Pᵀ Σ P H)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_float_array
from .data import MultitaskModel, Prompts, check_model as _check_model
from .wpgd import wpgd_predict, wpgd_predict_featurewise

__all__ = [
    "abc",
    "phi",
    "gain_from_abc",
    "gain",
    "wpgd_risk",
    "wpgd_risk_featurewise",
    "optimal_P",
    "optimal_P_featurewise",
    "profile_risk",
    "profile_risks",
    "profile_risk_grad",
    "profile_risk_featurewise",
    "profile_risk_featurewise_grad",
    "null_risk",
    "monte_carlo_risk",
    "wpgd_predictor",
    "featurewise_predictor",
]


def _check_omega(model: MultitaskModel, omega) -> np.ndarray:
    omega = as_float_array(omega, "omega", ndim=1)
    if omega.shape != (model.n,):
        raise ValueError(f"omega: expected shape {(model.n,)}, got {omega.shape}")
    return omega


def _check_Omega(model: MultitaskModel, Omega) -> np.ndarray:
    Omega = as_float_array(Omega, "Omega", ndim=2)
    if Omega.shape != (model.n, model.d):
        raise ValueError(f"Omega: expected shape {(model.n, model.d)}, got {Omega.shape}")
    return Omega


def _check_P(model: MultitaskModel, P) -> np.ndarray:
    P = as_float_array(P, "P", ndim=2)
    if P.shape != (model.d, model.d):
        raise ValueError(f"P: expected shape {(model.d, model.d)}, got {P.shape}")
    return P


def _pow2(x: float) -> float:
    """The power of two ``2^e`` with ``x/2^e ∈ [0.5, 1)``: dividing by it is exact."""
    return math.ldexp(1.0, math.frexp(x)[1])


def _unit(omega: np.ndarray) -> tuple[np.ndarray, float]:
    """``(ω / s, s)`` with ``s`` the power of two near ``max|ω|`` (``(ω, 1)`` for ω = 0):
    scale-invariant quantities are computed from ``ω/s``, so neither ``ω = 1e-160·w`` nor
    ``1e160·w`` under- or overflows; for ordinary ``ω`` the results are bit-identical."""
    m = float(np.max(np.abs(omega))) if omega.size else 0.0
    if m > 0:
        s = _pow2(m)
        return omega / s, s
    return omega, 1.0


def _finite(value, what: str, args: str):
    """``value`` if every entry is a float64 number, else ``ValueError`` naming the arguments."""
    if not np.all(np.isfinite(value)):
        raise ValueError(
            f"{args}: {what} is not a float64 number for this input (overflow); rescale {args}"
        )
    return value


def _spectral_sum(lam: np.ndarray, b: float, c: float) -> float:
    """``Σ_k λ_k²/(bλ_k + c)`` computed as ``ℓ Σ λ̂²/(bλ̂ + c/ℓ)`` with ``λ̂ = λ/ℓ``, ``ℓ`` the
    power of two near ``λ_max`` (no overflow of ``λ²`` for ``Σ = 1e200·I``; exact scaling)."""
    lmax = _pow2(float(np.max(np.abs(lam))))
    lh = lam / lmax
    return lmax * float(np.sum(lh * lh / (b * lh + c / lmax)))


def null_risk(model: MultitaskModel) -> float:
    """Risk of ``ŷ = 0``: ``E y² = σ² + R_{n+1,n+1} tr Σ``.

    >>> m = MultitaskModel.k_task([2, 2], np.eye(2), [0.3, 0.6], np.eye(2), 0.5)
    >>> null_risk(m)
    2.25
    """
    model = _check_model(model)
    return float(
        _finite(model.sigma**2 + model.R_query * float(np.trace(model.Sigma)), "E y²", "model")
    )


def abc(model: MultitaskModel, omega: ArrayLike) -> tuple[float, float, float]:
    """``(a, b, c) = (rᵀω, ωᵀAω, ωᵀBω)``.

    >>> m = MultitaskModel.k_task([2, 2], np.eye(2), [0.3, 0.6], np.eye(2), 0.5)
    >>> tuple(round(v, 4) for v in abc(m, np.ones(4)))
    (1.8, 12.0, 9.0)
    """
    model = _check_model(model)
    omega = _check_omega(model, omega)
    return (
        float(model.r @ omega),
        float(omega @ model.A @ omega),
        float(omega @ (model.B_diag * omega)),
    )


def phi(model: MultitaskModel, omega: ArrayLike) -> float:
    r"""``φ(ω) = Σ_k λ_k²/(bλ_k+c)² / Σ_k λ_k³/(bλ_k+c)²``: a weighted mean of ``1/λ_k``
    (weights ``λ_k³/(bλ_k+c)²``), so ``φ ∈ [1/λ_max, 1/λ_min]``. Requires ``(b, c) ≠ 0``.

    >>> m = MultitaskModel.k_task([2], np.eye(1), [0.5], np.diag([1.0, 4.0]), 0.5)
    >>> t = phi(m, np.ones(2))
    >>> bool(1 / 4 <= t <= 1)
    True
    """
    model = _check_model(model)
    w, _ = _unit(_check_omega(model, omega))  # φ is invariant under ω -> sω
    _, b, c = abc(model, w)
    lam = model.eigvals
    lmax = _pow2(float(lam[-1]))
    lh = lam / lmax  # φ(λ) = φ(λ̂)/λ_max with c -> c/λ_max: no overflow of λ³
    den = (b * lh + c / lmax) ** 2
    if not np.all(den > 0):
        raise ValueError("omega: b = ωᵀAω and c = ωᵀBω vanish; φ is undefined")
    return float(_finite(np.sum(lh**2 / den) / np.sum(lh**3 / den) / lmax, "φ", "model, omega"))


def wpgd_risk(model: MultitaskModel, P: ArrayLike, omega: ArrayLike) -> float:
    r"""Closed-form risk of one-step WPGD with scalar weights (claim L1):

    ``L(P, ω) = σ² + R_{n+1,n+1} tr Σ − 2a tr(PΣ²) + tr(Pᵀ Σ P (bΣ² + cΣ))``.

    The risk depends on ``(P, ω)`` only through the products ``P ω_i``; it is evaluated at
    ``(sP, ω/s)``, ``s`` the power of two near ``max|ω|``, so ``|ω| ~ 1e±150`` with ``P``
    compensating neither overflows ``PᵀΣP`` nor loses it in the subnormal range (bit-identical
    results for ordinary scales: scaling by a power of two is exact).

    >>> m = MultitaskModel.k_task([2, 2], np.eye(2), [0.3, 0.6], np.eye(2), 0.5)
    >>> w = np.ones(4)
    >>> bool(np.isclose(wpgd_risk(m, optimal_P(m, w), w), profile_risk(m, w)))
    True
    >>> P = optimal_P(m, w)  # PᵀΣP would overflow below without the rescaling
    >>> wpgd_risk(m, 2.0**600 * P, 2.0**-600 * w) == wpgd_risk(m, P, w)
    True
    """
    model = _check_model(model)
    P = _check_P(model, P)
    omega, s = _unit(_check_omega(model, omega))
    with np.errstate(over="ignore", invalid="ignore"):
        P = P * s
    a, b, c = abc(model, omega)
    S = model.Sigma
    with np.errstate(over="ignore", invalid="ignore"):
        S2 = S @ S
        H = b * S2 + c * S
        L = null_risk(model) - 2 * a * np.trace(P @ S2) + np.trace(P.T @ S @ P @ H)
    return float(_finite(L, "the risk", "model, P, omega"))


def _H_featurewise(model: MultitaskModel, Omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    S = model.Sigma
    H = (Omega.T @ model.A @ Omega) * (S @ S) + (Omega.T @ (model.B_diag[:, None] * Omega)) * S
    return H, Omega.T @ model.r


def wpgd_risk_featurewise(model: MultitaskModel, P: ArrayLike, Omega: ArrayLike) -> float:
    r"""Closed-form risk of one-step WPGD with feature-wise weights ``Omega: (n, d)``:

    ``L(P, Ω) = σ² + R_{n+1,n+1} tr Σ − 2 tr(P diag(m) Σ²) + tr(Pᵀ Σ P H)``, with
    ``m = Ωᵀ r`` (d,) and ``H = (Ωᵀ A Ω) ⊙ Σ² + (Ωᵀ B Ω) ⊙ Σ`` (⊙ entrywise). For
    ``Ω = ω 1ᵀ`` this is :func:`wpgd_risk` (``m = a1``, ``H = bΣ² + cΣ``), evaluated the same
    way at ``(sP, Ω/s)``.
    """
    model = _check_model(model)
    P = _check_P(model, P)
    Omega, s = _unit(_check_Omega(model, Omega))
    with np.errstate(over="ignore", invalid="ignore"):
        P = P * s
    S = model.Sigma
    with np.errstate(over="ignore", invalid="ignore"):
        H, m = _H_featurewise(model, Omega)
        L = null_risk(model) - 2 * np.trace(P @ (m[:, None] * (S @ S))) + np.trace(P.T @ S @ P @ H)
    return float(_finite(L, "the risk", "model, P, Omega"))


def optimal_P(model: MultitaskModel, omega: ArrayLike) -> np.ndarray:
    r"""Minimiser over ``P`` of :func:`wpgd_risk` (claim L2): ``P*(ω) = a (bΣ + cI)^{-1}``.

    From ``∂L/∂P = −2aΣ² + 2ΣP(bΣ² + cΣ) = 0``. Requires ``bΣ + cI ≻ 0`` (true unless
    ``b = c = 0``, where the risk does not depend on ``P``; then ``P = 0`` is returned).

    >>> m = MultitaskModel.k_task([2, 2], np.eye(2), [0.3, 0.6], np.eye(2), 0.5)
    >>> np.round(optimal_P(m, np.ones(4)), 4)
    array([[0.0857, 0.    ],
           [0.    , 0.0857]])
    """
    model = _check_model(model)
    a, b, c = abc(model, omega)
    if b == 0 and c == 0:
        return np.zeros((model.d, model.d))
    M = b * model.Sigma + c * np.eye(model.d)
    with np.errstate(over="ignore", invalid="ignore"):
        P = a * np.linalg.solve(M, np.eye(model.d))
    return _finite(P, "P*", "model, omega")


def optimal_P_featurewise(model: MultitaskModel, Omega: ArrayLike) -> np.ndarray:
    r"""Minimiser over ``P`` of :func:`wpgd_risk_featurewise`: ``P*(Ω) = Σ diag(m) H^{-1}``.

    From ``∂L/∂P = −2Σ² diag(m) + 2ΣPH = 0`` (``H`` symmetric). Requires ``H ≻ 0``.
    For ``Ω = ω1ᵀ``: ``Σ a (bΣ² + cΣ)^{-1} = a(bΣ + cI)^{-1}``, the scalar ``P*``.
    """
    model = _check_model(model)
    Omega = _check_Omega(model, Omega)
    H, m = _H_featurewise(model, Omega)
    try:
        Hinv = np.linalg.inv(np.linalg.cholesky(H))
    except np.linalg.LinAlgError:
        raise ValueError("Omega: H = E[h hᵀ] is singular; P* is not unique") from None
    with np.errstate(over="ignore", invalid="ignore"):
        P = model.Sigma @ (m[:, None] * (Hinv.T @ Hinv))
    return _finite(P, "P*", "model, Omega")


def gain_from_abc(a: float, b: float, c: float, lam: ArrayLike) -> float:
    r"""The gain ``F = a² Σ_k λ_k²/(bλ_k + c)`` from the moments ``(a, b, c)`` and the
    eigenvalues ``λ`` of ``Σ`` (0 if ``b = c = 0``, i.e. ``ω = 0``): the risk reduction
    ``L0 − min_P L(P, ω)`` below the null risk. Computed directly, not as a difference of
    risks, so it keeps its relative accuracy when ``F << L0``.

    >>> gain_from_abc(1.0, 1.0, 1.0, np.array([1.0, 3.0]))
    2.75
    >>> gain_from_abc(0.0, 0.0, 0.0, np.array([1.0]))
    0.0
    """
    if b == 0 and c == 0:
        return 0.0
    return float(a * a * _spectral_sum(np.asarray(lam, dtype=np.float64), b, c))


def gain(model: MultitaskModel, omega: ArrayLike) -> float:
    """``F(ω) = L0 − min_P L(P, ω)``, invariant under ``ω → sω`` and computed from
    ``ω/2^e`` (``2^e`` near ``max|ω|``), so ``1e-160·ω`` gives the same finite value
    (see :func:`gain_from_abc`)."""
    model = _check_model(model)
    w, _ = _unit(_check_omega(model, omega))
    return gain_from_abc(*abc(model, w), model.eigvals)


def profile_risk(model: MultitaskModel, omega: ArrayLike) -> float:
    r"""``min_P L(P, ω) = σ² + R_{n+1,n+1} tr Σ − a² Σ_k λ_k²/(bλ_k + c)`` (claim L2).

    Invariant under ``ω → sω`` (``s ≠ 0``), and computed invariantly: from ``ω/max|ω|`` and
    with ``λ`` scaled by ``λ_max``, so ``1e-160·ω`` and ``Σ = 1e200·I`` give finite results.
    For ``ω`` with ``b = c = 0`` it is the null risk.

    >>> m = MultitaskModel.k_task([2, 2], np.eye(2), [0.3, 0.6], np.eye(2), 0.5)
    >>> w = np.array([1.0, 1.0, 2.0, 2.0])
    >>> bool(np.isclose(profile_risk(m, -3 * w), profile_risk(m, w)))   # scale-free (L3)
    True
    """
    model = _check_model(model)
    return _profile_risk(model, _check_omega(model, omega))


def profile_risks(model: MultitaskModel, omegas: ArrayLike) -> np.ndarray:
    r""":func:`profile_risk` of every row of ``omegas: (k, n)``, as one vectorised computation
    (``(k,)``; rows of zeros give the null risk). Equal to the row-by-row values up to the
    rounding of the summation order (a few ulps of ``L0``): for scoring many candidate weights
    at once, e.g. the random starts of a baseline search.

    >>> m = MultitaskModel.k_task([2, 2], np.eye(2), [0.3, 0.6], np.eye(2), 0.5)
    >>> W = np.array([[1.0, 1.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    >>> bool(np.allclose(profile_risks(m, W), [profile_risk(m, W[0]), null_risk(m)], rtol=1e-14))
    True
    """
    model = _check_model(model)
    W = as_float_array(omegas, "omegas", ndim=2)
    if W.shape[1] != model.n:
        raise ValueError(f"omegas: expected shape (k, {model.n}), got {W.shape}")
    # each row divided by the power of two near its max |ω| (exact; see _unit)
    m = np.max(np.abs(W), axis=1) if W.size else np.zeros(W.shape[0])
    s = np.ldexp(1.0, np.frexp(np.where(m > 0, m, 1.0))[1])
    W = W / s[:, None]
    a = W @ model.r
    b = np.einsum("ki,ki->k", W @ model.A, W)
    c = np.einsum("ki,ki->k", W * model.B_diag, W)
    lam = np.asarray(model.eigvals, dtype=np.float64)
    lmax = _pow2(float(np.max(np.abs(lam))))
    lh = lam / lmax
    zero = (b == 0) & (c == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        S = lmax * np.sum(lh * lh / (b[:, None] * lh + (c / lmax)[:, None]), axis=1)
        F = np.where(zero, 0.0, a * a * S)
    return _finite(null_risk(model) - F, "the profile risk", "model, omegas")


def _profile_risk(model: MultitaskModel, omega: np.ndarray) -> float:
    """:func:`profile_risk` without the argument checks, for inner loops that build ``omega``
    themselves (``model`` a :class:`MultitaskModel`, ``omega`` a float64 ``(n,)`` array): the
    same arithmetic, so the same bits. The checks cost more than the arithmetic here, and a
    baseline search calls it ~20,000 times per run (:func:`numerics.gla_landscape.brute_force_cone`)."""
    w, _ = _unit(omega)
    a, b, c = float(model.r @ w), float(w @ model.A @ w), float(w @ (model.B_diag * w))
    F = gain_from_abc(a, b, c, model.eigvals)
    return float(_finite(null_risk(model) - F, "the profile risk", "model, omega"))


def profile_risk_grad(model: MultitaskModel, omega: ArrayLike) -> tuple[float, np.ndarray]:
    r""":func:`profile_risk` and its gradient in ``ω``:

    ``∇L = −2a S r + 2a² (T₃ Aω + T₂ Bω)`` with ``S = Σλ²/(bλ+c)``, ``T_p = Σλ^p/(bλ+c)²``.
    Setting it to 0 gives ``r ∝ (A + tB)ω`` with ``t = T₂/T₃ = φ(ω)`` (claim L4).
    """
    model = _check_model(model)
    omega, scale = _unit(_check_omega(model, omega))  # L(sω) = L(ω), ∇L(sω) = ∇L(ω)/s
    Aw = model.A @ omega
    Bw = model.B_diag * omega
    a, b, c = float(model.r @ omega), float(omega @ Aw), float(omega @ Bw)
    lam = model.eigvals
    den = b * lam + c
    S = np.sum(lam**2 / den)
    T2 = np.sum(lam**2 / den**2)
    T3 = np.sum(lam**3 / den**2)
    L = null_risk(model) - a * a * S
    g = -2 * a * S * model.r + 2 * a * a * (T3 * Aw + T2 * Bw)
    return float(_finite(L, "the profile risk", "model, omega")), _finite(
        g / scale, "the gradient", "model, omega"
    )


def profile_risk_featurewise(model: MultitaskModel, Omega: ArrayLike) -> float:
    r"""``min_P L(P, Ω) = σ² + R_{n+1,n+1} tr Σ − mᵀ (H^{-1} ⊙ Σ³) m``.

    For diagonal ``Σ = diag(λ)`` the columns decouple:
    ``= … − Σ_k λ_k² (rᵀΩ_{:k})² / (λ_k Ω_{:k}ᵀAΩ_{:k} + Ω_{:k}ᵀBΩ_{:k})``, maximised column by
    column at ``Ω_{:k} ∝ (λ_k A + B)^{-1} r`` (generalised Rayleigh quotient), giving
    ``L*_fw = σ² + R_{n+1,n+1} tr Σ − Σ_k λ_k² rᵀ(λ_k A + B)^{-1} r``.
    """
    return profile_risk_featurewise_grad(model, Omega, grad=False)[0]


def profile_risk_featurewise_grad(
    model: MultitaskModel, Omega: ArrayLike, *, grad: bool = True
) -> tuple[float, np.ndarray | None]:
    r"""Feature-wise profile risk and its gradient in ``Ω`` (n, d).

    With ``G = H^{-1}``, ``v = (G ⊙ Σ³) m``, ``W = G (D Σ³ D) G``, ``D = diag(m)``:
    ``∇_Ω L = −[2 r vᵀ − 2 AΩ(Σ² ⊙ W) − 2 BΩ(Σ ⊙ W)]``.
    """
    model = _check_model(model)
    Omega, scale = _unit(_check_Omega(model, Omega))  # invariant under Ω -> sΩ; gradient /s
    S = model.Sigma
    S2 = S @ S
    S3 = S2 @ S
    AO = model.A @ Omega
    BO = model.B_diag[:, None] * Omega
    H = (Omega.T @ AO) * S2 + (Omega.T @ BO) * S
    m = Omega.T @ model.r
    try:
        Lc = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(
            "Omega: H = E[h hᵀ] is singular; the profile risk is not defined"
        ) from None
    Li = np.linalg.inv(Lc)
    G = Li.T @ Li
    v = (G * S3) @ m
    L = float(_finite(null_risk(model) - float(m @ v), "the profile risk", "model, Omega"))
    if not grad:
        return L, None
    Q = m[:, None] * S3 * m[None, :]
    W = G @ Q @ G
    g = -(2 * np.outer(model.r, v) - 2 * AO @ (S2 * W) - 2 * BO @ (S * W))
    return L, _finite(g / scale, "the gradient", "model, Omega")


# --------------------------------------------------------------------- predictors and MC
def wpgd_predictor(P: ArrayLike, omega: ArrayLike) -> Callable[[Prompts], np.ndarray]:
    """``predict(prompts) -> ŷ (N,)`` for one-step WPGD, ``ŷ = xᵀ P Xᵀ(ω ⊙ y)``
    (:func:`numerics.wpgd.wpgd_predict` with ``P`` and ``ω`` fixed)."""
    P = as_float_array(P, "P", ndim=2)
    omega = as_float_array(omega, "omega", ndim=1)
    return lambda p: wpgd_predict(p.X, p.y, p.x, P, omega)


def featurewise_predictor(P: ArrayLike, Omega: ArrayLike) -> Callable[[Prompts], np.ndarray]:
    """``predict(prompts) -> ŷ (N,)`` for ``ŷ = xᵀ P Σ_i y_i (Ω_i ⊙ x_i)``
    (:func:`numerics.wpgd.wpgd_predict_featurewise` with ``P`` and ``Ω`` fixed)."""
    P = as_float_array(P, "P", ndim=2)
    Omega = as_float_array(Omega, "Omega", ndim=2)
    return lambda p: wpgd_predict_featurewise(p.X, p.y, p.x, P, Omega)


def monte_carlo_risk(
    model: MultitaskModel,
    predict: Callable[[Prompts], np.ndarray],
    num_prompts: int,
    rng: np.random.Generator,
    *,
    batch_size: int = 4096,
) -> tuple[float, float]:
    """Monte Carlo estimate of ``E(y − ŷ)²``: ``(mean, standard_error)`` over
    ``num_prompts`` i.i.d. prompts drawn in batches of ``batch_size`` (the result depends
    on ``batch_size`` only through the order of draws from ``rng``).
    Standard error = sample std (ddof=1) / sqrt(N).
    """
    model = _check_model(model)
    N = int(num_prompts)
    if N < 2 or N != num_prompts:
        raise ValueError(f"num_prompts: must be an integer >= 2, got {num_prompts!r}")
    bs = int(batch_size)
    if bs < 1 or bs != batch_size:
        raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
    # Streaming sums with a shift (the first batch's mean) keep the variance accurate.
    total = 0.0
    total_sq = 0.0
    shift: float | None = None
    done = 0
    while done < N:
        k = min(bs, N - done)
        p = model.sample(k, rng)
        yhat = np.asarray(predict(p), dtype=np.float64)
        if yhat.shape != (k,):
            raise ValueError(f"predict: must return shape {(k,)}, got {yhat.shape}")
        e = (p.y_query - yhat) ** 2
        if shift is None:
            shift = float(e.mean())
        total += float(np.sum(e - shift))
        total_sq += float(np.sum((e - shift) ** 2))
        done += k
    assert shift is not None  # N >= 2 was checked, so at least one batch ran
    mean_c = total / N
    var = (total_sq - N * mean_c**2) / (N - 1)
    return shift + mean_c, float(np.sqrt(max(var, 0.0) / N))
