r"""Random instances the claims check on: prompts, log-gates, preconditioners, multitask models.

Every generator takes an explicit ``numpy.random.Generator`` (from :meth:`Context.rng
<proofs_check.registry.Context.rng>`), so a check's instances are fixed by the run's seed.

>>> rng = np.random.default_rng(0)
>>> X, y, x = prompt(rng, 2, 5, 3)
>>> X.shape, y.shape, x.shape
((2, 5, 3), (2, 5), (2, 3))
>>> lg = log_gates(rng, (4, 6))
>>> bool(np.all(lg <= 0))
True
>>> m, spec = random_model(rng, 6, 3, cond=100.0)
>>> (m.n, m.d, spec["cond"])
(6, 3, 100.0)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from numerics.data import MultitaskModel, random_correlation, random_covariance
from numerics.gla_landscape import block_reduce, monotone_projection

__all__ = [
    "construction_sizes",
    "prompt",
    "log_gates",
    "preconditioner",
    "random_model",
    "unit",
    "segmented_instance",
    "cone_distance",
    "block_weights",
]


# ----------------------------------------------------------------------------- prompts and gates
def construction_sizes(full: bool) -> list[tuple[int, int, int]]:
    """(N prompts, n examples, d) for the profile; full adds a long prompt for the chunked engine."""
    return [(64, 16, 4), (8, 200, 3)] if not full else [(256, 32, 8), (8, 500, 4), (4, 1, 1)]


def prompt(
    rng: np.random.Generator, N: int, n: int, d: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard normal ``X (N, n, d)``, ``y (N, n)``, query ``x (N, d)``."""
    return rng.standard_normal((N, n, d)), rng.standard_normal((N, n)), rng.standard_normal((N, d))


def log_gates(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Log-gates mixing the regimes that stress an implementation: gates near 1
    (log g ~ -1e-8), moderate, near 0 (log g ~ -30) and exactly 0 (-inf, 2%)."""
    kind = rng.integers(0, 4, size=shape)
    lg = np.where(
        kind == 0,
        -1e-8 * rng.random(shape),
        np.where(
            kind == 1,
            -rng.exponential(0.05, shape),
            np.where(kind == 2, -rng.exponential(1.0, shape), -30.0 * rng.random(shape)),
        ),
    )
    lg[rng.random(shape) < 0.02] = -np.inf
    return lg


def preconditioner(rng: np.random.Generator, d: int, n: int) -> np.ndarray:
    """A well-scaled non-symmetric preconditioner (~ step size 1/n) so multi-step iterates stay O(1)."""
    return (0.5 * np.eye(d) + 0.2 * rng.standard_normal((d, d)) / np.sqrt(d)) / max(n, 1)


# ----------------------------------------------------------------------------- multitask models
def random_model(
    rng: np.random.Generator,
    n: int,
    d: int,
    *,
    cond: float = 10.0,
    sigma: float = 0.3,
    common: float = 0.5,
    rank: int | None = None,
    diagonal: bool = False,
) -> tuple[MultitaskModel, dict]:
    """A random multitask model and its spec (for the evidence figures)."""
    R = random_correlation(n + 1, rng, rank=rank, common=common)
    S = random_covariance(d, rng, cond=cond, diagonal=diagonal)
    spec = {
        "n": n,
        "d": d,
        "cond": cond,
        "sigma": sigma,
        "common": common,
        "rank_R": rank or n + 1,
        "Sigma": "diagonal" if diagonal else "rotated",
    }
    return MultitaskModel(R, S, sigma), spec


def unit(v: np.ndarray) -> np.ndarray:
    """``v / ‖v‖`` with the sign that makes its largest-magnitude entry positive."""
    v = np.asarray(v, float)
    v = v / np.linalg.norm(v)
    i = int(np.argmax(np.abs(v)))
    return v * np.sign(v[i])


def segmented_instance(rng: np.random.Generator, kind: str) -> MultitaskModel:
    """A segmented model. ``kind``: ``"general"`` (correlated tasks Γ, anisotropic Σ),
    ``"increasing"`` / ``"decreasing"`` (Γ = I, equal m, ρ monotone: ω* ∝ ρ monotone)."""
    K = int(rng.integers(2, 5))
    d = int(rng.integers(2, 5))
    sigma = float(rng.uniform(0.1, 1.0))
    Sigma = random_covariance(d, rng, cond=float(rng.uniform(1.5, 30.0)))
    if kind == "general":
        m = rng.integers(1, 5, K)
        Gamma = random_correlation(K, rng, common=float(rng.uniform(0, 1)))
        z = rng.standard_normal(K)
        z *= rng.uniform(0.3, 0.95) / np.linalg.norm(z)
        rho = np.linalg.cholesky(Gamma + 1e-12 * np.eye(K)) @ z
    else:
        m = np.full(K, int(rng.integers(1, 5)))
        Gamma = np.eye(K)
        rho = np.sort(rng.uniform(0.05, 0.9 / np.sqrt(K), K))
        if kind == "decreasing":
            rho = rho[::-1].copy()
        if rng.random() < 0.5:
            rho = -rho
    return MultitaskModel.k_task(m, Gamma, rho, Sigma, sigma)


def cone_distance(w: np.ndarray, m: ArrayLike) -> float:
    """Relative distance of block weights ``w`` from ``M ∪ −M`` in the ``m``-weighted norm
    (``= ‖ω − Π(ω)‖/‖ω‖`` for ``ω = Ew``), via the PAVA projection."""
    nrm = np.sqrt(np.sum(m * w * w))
    return float(
        min(np.sqrt(np.sum(m * (s * w - monotone_projection(s * w, m)) ** 2)) for s in (1, -1))
        / nrm
    )


def block_weights(model: MultitaskModel, omega: np.ndarray) -> tuple[np.ndarray, float]:
    """Block averages ``w`` of ``omega`` and the relative deviation of ``omega`` from ``E w``."""
    blk = block_reduce(model)
    w = blk.E.T @ omega / blk.m
    return w, float(np.linalg.norm(blk.E @ w - omega) / np.linalg.norm(omega))
