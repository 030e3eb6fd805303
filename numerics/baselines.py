r"""Reference predictors for the multitask model and their risks: null, Bayes-optimal, ridge, OLS.

All four are linear in the example labels given the features, ``ŷ = aᵀ y`` with
``a = a(X, x)`` ``(n,)``, so their risk *conditional on the features* is exact:

.. math::
    \mathbb E[(y - a^\top y_{1:n})^2 \mid X, x]
      = \sigma^2 + R_{qq}\, x^\top x - 2 a^\top c + a^\top K a,

with ``K_ij = R_ij x_iᵀx_j + σ² δ_ij`` (covariance of the labels) and ``c_j = R_qj xᵀx_j``
(covariance of the query's noiseless label with them), ``q`` the query index. (This uses
``E[β_i β_jᵀ] = R_ij I``; for ``Σ ≠ I`` the features carry the anisotropy.) The risk is the
mean of this over features only (Monte Carlo over ``X, x``, a much smaller variance than over
labels too); estimates come with their standard error.

Predictors (``X: (n, d)`` rows ``x_iᵀ``):

* ``null``: ``ŷ = 0``; risk ``σ² + R_qq tr Σ`` exactly (:func:`numerics.risk.null_risk`);
* ``bayes``: the posterior mean ``E[y | X, y_{1:n}, x]`` under the model's Gaussian task prior,
  ``a = K⁻¹ c``: the smallest risk of *any* predictor, a floor for every architecture;
* ``ridge``: single-task ridge ``ŷ = xᵀ(XᵀX + λI)⁻¹Xᵀy`` with ``λ = σ²/R_qq`` (the Bayes
  predictor if every example shared the query's task); ignores the task structure;
* ``ols``: ``λ = 0``, defined (finite expected risk for Gaussian features) only for
  ``n >= d + 2``; ``None`` otherwise.

>>> import numpy as np
>>> from numerics.data import MultitaskModel
>>> m = MultitaskModel.single_task(20, np.eye(2), 0.5)
>>> r = baseline_risks(m, num_prompts=4000, rng=np.random.default_rng(0))
>>> r["bayes"][0] < r["ols"][0] < r["null"][0]
True
>>> abs(r["bayes"][0] - r["ridge"][0]) < 1e-12  # one task: ridge with λ = σ² is Bayes
True
"""

from __future__ import annotations

import numpy as np

from .data import MultitaskModel
from .risk import null_risk

__all__ = ["BASELINES", "baseline_risks", "bayes_weights", "conditional_risk", "ridge_weights"]

BASELINES = ("null", "bayes", "ridge", "ols")


def _label_cov(
    model: MultitaskModel, X: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``K: (N, n, n)``, ``c: (N, n)``, ``xx = xᵀx: (N,)`` for features ``X (N, n, d)``, ``x (N, d)``."""
    R = np.asarray(model.R)
    n = model.n
    G = np.einsum("Nid,Njd->Nij", X, X)
    K = R[:n, :n] * G
    K[:, np.arange(n), np.arange(n)] += model.sigma**2
    c = R[:n, n] * np.einsum("Nid,Nd->Ni", X, x)
    return K, c, np.einsum("Nd,Nd->N", x, x)


def conditional_risk(
    model: MultitaskModel, a: np.ndarray, K: np.ndarray, c: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """``σ² + R_qq xᵀx − 2aᵀc + aᵀKa`` per prompt (see the module docstring), ``(N,)``."""
    return (
        model.sigma**2
        + model.R_query * xx
        - 2 * np.einsum("Ni,Ni->N", a, c)
        + np.einsum("Ni,Nij,Nj->N", a, K, a)
    )


def bayes_weights(K: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a = K⁻¹ c`` (posterior-mean weights on the labels), ``(N, n)``, from ``K: (N, n, n)``
    and ``c: (N, n)``.

    >>> bayes_weights(np.array([[[2.0, 0.0], [0.0, 4.0]]]), np.array([[1.0, 1.0]])).tolist()
    [[0.5, 0.25]]
    """
    return np.linalg.solve(K, c[..., None])[..., 0]


def ridge_weights(X: np.ndarray, x: np.ndarray, lam: float) -> np.ndarray:
    """``a = X (XᵀX + λI)⁻¹ x``, ``(N, n)``, from ``X: (N, n, d)`` and ``x: (N, d)``; ``λ = 0``
    is OLS (needs ``XᵀX`` invertible).

    >>> X = np.array([[[1.0], [1.0]]])             # N = 1 prompt, n = 2 examples, d = 1
    >>> ridge_weights(X, np.array([[1.0]]), 0.0).tolist()   # OLS: the mean of the labels
    [[0.5, 0.5]]
    """
    d = X.shape[-1]
    H = np.einsum("Nid,Nie->Nde", X, X) + lam * np.eye(d)
    w = np.linalg.solve(H, x[..., None])[..., 0]
    return np.einsum("Nid,Nd->Ni", X, w)


def baseline_risks(
    model: MultitaskModel, *, num_prompts: int, rng: np.random.Generator, batch_size: int = 2000
) -> dict:
    """``{name: (risk, stderr) or None}`` for :data:`BASELINES` (``null`` exact, stderr 0;
    ``ols`` None when ``n < d + 2``). Features are drawn with ``model.sample`` in batches of
    ``batch_size`` from ``rng`` (labels unused), so the same ``rng`` gives the same figures."""
    if not isinstance(model, MultitaskModel):
        raise ValueError(f"model: expected a MultitaskModel, got {type(model).__name__}")
    N = int(num_prompts)
    if N < 2 or num_prompts != N:
        raise ValueError(f"num_prompts: must be an integer >= 2, got {num_prompts!r}")
    lam = model.sigma**2 / model.R_query if model.R_query > 0 else 0.0
    want_ols = model.n >= model.d + 2
    parts: dict[str, list] = {"bayes": [], "ridge": [], "ols": []}
    done = 0
    while done < N:
        B = min(int(batch_size), N - done)
        p = model.sample(B, rng)
        K, c, xx = _label_cov(model, p.X, p.x)
        parts["bayes"].append(conditional_risk(model, bayes_weights(K, c), K, c, xx))
        parts["ridge"].append(conditional_risk(model, ridge_weights(p.X, p.x, lam), K, c, xx))
        if want_ols:
            parts["ols"].append(conditional_risk(model, ridge_weights(p.X, p.x, 0.0), K, c, xx))
        done += B
    out: dict = {"null": (null_risk(model), 0.0)}
    for k, v in parts.items():
        if not v:
            out[k] = None
            continue
        e = np.concatenate(v)
        out[k] = (float(e.mean()), float(e.std(ddof=1) / np.sqrt(e.size)))
    return out
