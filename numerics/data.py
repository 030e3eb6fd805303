r"""The multitask Gaussian data model (``docs/theory.md``), and random instances.

Model (all arrays float64, batch-first as in ``docs/conventions.md``):

* features ``x_i, x ~ N(0, Σ)`` i.i.d., ``Σ ≻ 0`` of size ``d``;
* task vectors ``β_1..β_n, β_{n+1} = β`` jointly Gaussian, zero mean,
  ``E[β_i β_jᵀ] = R_ij I_d`` with ``R ⪰ 0`` of size ``n+1`` (index ``n`` in 0-based code
  is the query's task);
* labels ``y_i = x_iᵀ β_i + ξ_i``, query label ``y = xᵀ β + ξ``, ``ξ ~ N(0, σ²)`` i.i.d.
  (the query label is noisy too, so the Bayes floor of any predictor is ``σ²``).

Derived quantities (names as in the conventions): ``r = R[:n, n]``,
``A = R[:n, :n] + diag(R_ii)``, ``B = diag(R_ii tr Σ + σ²)``, ``λ = eig(Σ)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

import numpy as np
from numpy.typing import ArrayLike

from ._blas import tokens_matmul
from ._validate import (
    MATRIX_RTOL,
    ArgumentTypeError,
    as_float_array,
    check_prompt,
    check_symmetric_psd,
    matrix_scale,
)

__all__ = ["MultitaskModel", "Prompts", "check_model", "random_correlation", "random_covariance"]

# Above this size the PSD test of R uses a shifted Cholesky factorisation instead of a
# full eigenvalue computation: eigvalsh of a 4097×4097 matrix costs seconds to tens of
# seconds on 2 shared cores, a Cholesky ~0.5 s. Both test the same thing (λ_min(R) >=
# −MATRIX_RTOL·scale); the backward error of Cholesky (~n·eps·‖R‖ ≈ 1e-12·scale at
# n = 4096) is below that tolerance.
_EIG_PSD_MAX = 512


def _check_psd_fast(M: np.ndarray, name: str) -> np.ndarray:
    """Symmetric-PSD check of ``M`` with the tolerance of ``check_symmetric_psd``.

    Small matrices go straight to :func:`check_symmetric_psd`. Large ones are accepted if
    ``M + MATRIX_RTOL·scale·I`` has a Cholesky factor; otherwise the eigenvalue-based check
    runs to produce the standard message.
    """
    M = as_float_array(M, name, ndim=2)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name}: must be square, got shape {M.shape}")
    if M.shape[0] <= _EIG_PSD_MAX:
        return check_symmetric_psd(M, name)
    scale = matrix_scale(M)
    asym = 2.0 * float(np.max(np.abs(M / 2 - M.T / 2)))  # halves: no overflow
    if asym > MATRIX_RTOL * scale:
        raise ValueError(f"{name}: not symmetric (max |M - M^T| = {asym:.3g})")
    Ms = M / 2 + M.T / 2  # = (M + Mᵀ)/2 without overflow near the float64 maximum
    if scale == 0.0:
        return Ms
    try:
        np.linalg.cholesky(Ms + MATRIX_RTOL * scale * np.eye(M.shape[0]))
    except np.linalg.LinAlgError:
        check_symmetric_psd(Ms, name)  # raises with the smallest eigenvalue in the message
        raise ValueError(f"{name}: not positive semidefinite (shifted Cholesky failed)") from None
    return Ms


@dataclass(frozen=True)
class Prompts:
    """A batch of ``N`` sampled prompts.

    ``X: (N, n, d)`` example features, ``y: (N, n)`` example labels, ``x: (N, d)`` query
    features, ``y_query: (N,)`` noisy query labels.
    """

    X: np.ndarray
    y: np.ndarray
    x: np.ndarray
    y_query: np.ndarray

    def __post_init__(self):
        X, y, x = check_prompt(self.X, self.y, self.x)
        yq = as_float_array(self.y_query, "y_query", ndim=1)
        if yq.shape != (X.shape[0],):
            raise ValueError(
                f"y_query: expected shape {(X.shape[0],)} to match X {X.shape}, got {yq.shape}"
            )
        for name, v in (("X", X), ("y", y), ("x", x), ("y_query", yq)):
            object.__setattr__(self, name, v)

    @property
    def N(self) -> int:
        return self.X.shape[0]

    @classmethod
    def _drawn(cls, X: np.ndarray, y: np.ndarray, x: np.ndarray, y_query: np.ndarray) -> Prompts:
        """Prompts of arrays :meth:`MultitaskModel.sample` has just drawn (float64, finite,
        consistent shapes by construction), without checking them again: the check cost a
        fifth of the sampling time of a training step."""
        obj = object.__new__(cls)
        for name, v in (("X", X), ("y", y), ("x", x), ("y_query", y_query)):
            object.__setattr__(obj, name, v)
        return obj


@dataclass(frozen=True, eq=False)
class MultitaskModel:
    r"""The multitask model with task correlation ``R`` ((n+1)×(n+1), PSD), feature
    covariance ``Sigma`` (d×d, PD) and label-noise std ``sigma >= 0``.

    Validation (ValueError naming the argument): ``R`` square of size >= 2, finite,
    symmetric and PSD up to ``MATRIX_RTOL`` (1e-10) relative to ``max|R|`` (scale-free);
    ``Sigma`` finite, symmetric, PD relative to ``max|Σ|`` (condition numbers up to ~1e13
    accepted); complex arrays are a ``TypeError``; ``sigma`` finite and >= 0.
    Stored arrays are the exactly symmetrised inputs, read-only.

    ``segments`` is an optional ``(n,)`` integer array giving the task segment of each
    example (set by :meth:`k_task`), else ``None``.
    """

    R: np.ndarray
    Sigma: np.ndarray
    sigma: float = 0.0
    segments: np.ndarray | None = field(default=None)

    def __post_init__(self):
        R = _check_psd_fast(self.R, "R")
        if R.shape[0] < 2:
            raise ValueError(f"R: needs size >= 2 (n >= 1 examples plus the query), got {R.shape}")
        Sigma = check_symmetric_psd(self.Sigma, "Sigma", definite=True)
        if isinstance(self.sigma, (complex, np.complexfloating)) or np.iscomplexobj(self.sigma):
            raise ArgumentTypeError(f"sigma: complex input is not supported, got {self.sigma!r}")
        try:
            sigma = float(self.sigma)
        except (TypeError, ValueError):
            raise ArgumentTypeError(f"sigma: must be a real number, got {self.sigma!r}") from None
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"sigma: must be finite and >= 0, got {self.sigma!r}")
        # The model's moments must be float64 numbers: E y² = R_qq tr Σ + σ² and every
        # B_ii = R_ii tr Σ + σ². Beyond that no result can be represented: refuse up front.
        with np.errstate(over="ignore"):
            if not np.isfinite(sigma * sigma):
                raise ValueError(
                    f"sigma: sigma² = {sigma:.3g}² overflows float64; rescale the labels"
                )
            tr = float(np.trace(Sigma))
            if not np.isfinite(tr):
                raise ValueError("Sigma: its trace overflows float64; rescale the features")
            if not np.all(np.isfinite(np.diag(R) * tr + sigma * sigma)):
                raise ValueError("R: R_ii tr(Sigma) + sigma² overflows float64; rescale R or Sigma")
        segments = self.segments
        if segments is not None:
            segments = np.asarray(segments)
            if segments.shape != (R.shape[0] - 1,) or not np.issubdtype(segments.dtype, np.integer):
                raise ValueError(
                    f"segments: expected an integer array of shape {(R.shape[0] - 1,)}"
                )
            segments = segments.copy()
            segments.setflags(write=False)
        R.setflags(write=False)
        Sigma.setflags(write=False)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "Sigma", Sigma)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "segments", segments)

    # ----------------------------------------------------------------- derived
    @property
    def n(self) -> int:
        """Number of in-context examples (``R`` has size ``n + 1``)."""
        return self.R.shape[0] - 1

    @property
    def d(self) -> int:
        return self.Sigma.shape[0]

    @property
    def r(self) -> np.ndarray:
        """``r = R[:n, n]``: correlation of each example's task with the query's task."""
        return self.R[:-1, -1]

    @property
    def R_query(self) -> float:
        """``R[n, n]``: the query task's variance per coordinate."""
        return float(self.R[-1, -1])

    @cached_property
    def A(self) -> np.ndarray:
        """``A = R[:n, :n] + diag(R_ii)`` (n×n, PSD): the ``Σ²``-coefficient structure of
        ``E[h hᵀ]`` (off-diagonal ``R_ij``, diagonal ``2 R_ii`` from Isserlis)."""
        A = self.R[:-1, :-1].copy()
        A[np.diag_indices_from(A)] *= 2.0
        A.setflags(write=False)
        return A

    @cached_property
    def B_diag(self) -> np.ndarray:
        """Diagonal of ``B``: ``R_ii tr Σ + σ²`` (n,)."""
        b = np.diag(self.R)[:-1] * np.trace(self.Sigma) + self.sigma**2
        b.setflags(write=False)
        return b

    @property
    def B(self) -> np.ndarray:
        """``B = diag(R_ii tr Σ + σ²)`` as a dense n×n matrix (use ``B_diag`` in fast code)."""
        return np.diag(self.B_diag)

    @cached_property
    def eigvals(self) -> np.ndarray:
        """Eigenvalues ``λ`` of ``Σ``, ascending (d,)."""
        lam = np.linalg.eigvalsh(self.Sigma)
        lam.setflags(write=False)
        return lam

    @cached_property
    def _beta_factor(self) -> np.ndarray:
        # R = F Fᵀ from the eigen-decomposition: unlike Cholesky it accepts singular R
        # (e.g. the single-task R = 11ᵀ); tiny negative rounding eigenvalues are clipped.
        w, V = np.linalg.eigh(self.R)
        return V * np.sqrt(np.clip(w, 0.0, None))

    @cached_property
    def _sigma_chol(self) -> np.ndarray:
        return np.linalg.cholesky(self.Sigma)

    # ----------------------------------------------------------------- sampling
    def sample(self, num_prompts: int, rng: np.random.Generator) -> Prompts:
        """Draw ``num_prompts`` i.i.d. prompts.

        ``β = (F ⊗ I) ζ`` with ``R = F Fᵀ`` (eigen-factor, tolerates singular ``R``) and
        ``ζ`` standard normal; ``x_i = L u_i`` with ``Σ = L Lᵀ`` (Cholesky). Same ``rng``
        state, same prompts.
        """
        N = int(num_prompts)
        if N < 1 or N != num_prompts:
            raise ValueError(f"num_prompts: must be a positive integer, got {num_prompts!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng: must be a numpy.random.Generator (np.random.default_rng(seed))")
        n, d = self.n, self.d
        zeta = rng.standard_normal((N, n + 1, d))
        # a stacked matmul, not einsum("ij,Njd->Nid"): ~15x faster at training batch sizes
        # (the einsum loop took half of the sampling time of a training step)
        beta = self._beta_factor @ zeta  # (N, n+1, d)
        L = self._sigma_chol
        # one 2-D product in serial row blocks, not a stacked matmul (one small product per
        # prompt): the same bits, 0.45x the time at N = 8192, n = 9, d = 3
        X = tokens_matmul(rng.standard_normal((N, n, d)), L.T)
        x = rng.standard_normal((N, d)) @ L.T
        noise = self.sigma * rng.standard_normal((N, n + 1))
        y = np.einsum("Nid,Nid->Ni", X, beta[:, :n]) + noise[:, :n]
        y_query = np.einsum("Nd,Nd->N", x, beta[:, n]) + noise[:, n]
        return Prompts._drawn(X, y, x, y_query)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def single_task(cls, n: int, Sigma: ArrayLike, sigma: float = 0.0) -> MultitaskModel:
        """All ``n + 1`` tokens share one task: ``R = 11ᵀ`` (size ``n + 1``)."""
        n = _check_pos_int(n, "n")
        # the constructor validates and converts Sigma (__post_init__), so any array-like will do
        return cls(
            np.ones((n + 1, n + 1)),
            cast(np.ndarray, Sigma),
            sigma,
            segments=np.zeros(n, dtype=np.int64),
        )

    @classmethod
    def k_task(
        cls,
        m: Sequence[int] | ArrayLike,
        Gamma: ArrayLike,
        rho: ArrayLike,
        Sigma: ArrayLike,
        sigma: float = 0.0,
        query_var: float = 1.0,
    ) -> MultitaskModel:
        """``K``-task prompts: segment ``k`` holds ``m[k]`` consecutive examples of task
        ``β^{(k)}``; ``E[β^{(k)} β^{(l)ᵀ}] = Γ_kl I``, ``E[β^{(k)} βᵀ] = ρ_k I``,
        ``E[β βᵀ] = query_var · I``.

        ``R_ij = Γ_{k(i) k(j)}``, ``R_{i,n+1} = ρ_{k(i)}``, ``R_{n+1,n+1} = query_var``.
        ``R`` is PSD iff ``M = [[Γ, ρ], [ρᵀ, query_var]]`` is (``R = E M Eᵀ`` with ``E`` the
        segment-membership matrix, which has full column rank since every ``m_k >= 1``).
        """
        m = np.asarray(m)
        if m.ndim != 1 or m.size < 1 or not np.issubdtype(m.dtype, np.integer) or np.any(m < 1):
            raise ValueError(
                f"m: must be a 1-D array of positive integers (segment lengths), got {m!r}"
            )
        K = m.size
        Gamma = check_symmetric_psd(cast(np.ndarray, Gamma), "Gamma")  # it converts array-likes
        if Gamma.shape != (K, K):
            raise ValueError(f"Gamma: expected shape {(K, K)} to match m, got {Gamma.shape}")
        rho = as_float_array(rho, "rho", ndim=1)
        if rho.shape != (K,):
            raise ValueError(f"rho: expected shape {(K,)} to match m, got {rho.shape}")
        try:
            q = float(query_var)
        except (TypeError, ValueError):
            raise ValueError(f"query_var: must be a real number, got {query_var!r}") from None
        if not np.isfinite(q) or q < 0:
            raise ValueError(f"query_var: must be finite and >= 0, got {query_var!r}")
        M = np.zeros((K + 1, K + 1))
        M[:K, :K], M[:K, K], M[K, :K], M[K, K] = Gamma, rho, rho, q
        try:
            check_symmetric_psd(M, "rho")
        except ValueError as exc:
            raise ValueError(
                f"rho: [[Gamma, rho], [rho^T, query_var]] is not PSD ({exc}); "
                f"reduce |rho| or increase query_var"
            ) from None
        seg = np.repeat(np.arange(K), m)
        idx = np.append(seg, K)
        R = M[np.ix_(idx, idx)]
        return cls(R, cast(np.ndarray, Sigma), sigma, segments=seg)  # validated by the constructor


def _check_pos_int(v, name: str) -> int:
    try:
        iv = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a positive integer, got {v!r}") from None
    if iv < 1 or iv != v:
        raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    return iv


# --------------------------------------------------------------------- random instances
def random_correlation(
    n: int, rng: np.random.Generator, *, rank: int | None = None, common: float = 0.0
) -> np.ndarray:
    """A random ``n×n`` correlation matrix (PSD, unit diagonal).

    ``C = G Gᵀ`` with ``G`` an ``n×rank`` standard normal matrix (``rank`` defaults to
    ``n``; smaller ranks give singular ``R``), plus ``common · rank · 11ᵀ`` (a shared task
    factor: ``common`` ≈ the fraction of variance shared by all tasks), rescaled to unit
    diagonal ``D^{-1/2} C D^{-1/2}``.

    >>> R = random_correlation(4, np.random.default_rng(0), common=0.5)
    >>> bool(np.allclose(np.diag(R), 1.0)), bool(np.linalg.eigvalsh(R)[0] >= -1e-12)
    (True, True)
    """
    n = _check_pos_int(n, "n")
    k = n if rank is None else _check_pos_int(rank, "rank")
    if not np.isfinite(common) or common < 0:
        raise ValueError(f"common: must be finite and >= 0, got {common!r}")
    G = rng.standard_normal((n, k))
    C = G @ G.T + common * k * np.ones((n, n))
    s = 1.0 / np.sqrt(np.diag(C))
    C = C * s[:, None] * s[None, :]
    C = (C + C.T) / 2
    np.fill_diagonal(C, 1.0)
    return C


def random_covariance(
    d: int, rng: np.random.Generator, *, cond: float = 10.0, diagonal: bool = False
) -> np.ndarray:
    """A random ``d×d`` covariance with condition number exactly ``cond`` (up to rounding)
    and trace ``d``.

    Eigenvalues: ``1`` and ``1/cond`` plus ``d − 2`` log-uniform draws in between, rescaled
    to trace ``d``; eigenvectors Haar-random (QR of a Gaussian with the sign fix), or the
    coordinate axes if ``diagonal``.

    >>> S = random_covariance(3, np.random.default_rng(0), cond=100.0)
    >>> w = np.linalg.eigvalsh(S)
    >>> round(float(w[-1] / w[0]), 6)
    100.0
    """
    d = _check_pos_int(d, "d")
    cond = float(cond)
    if not np.isfinite(cond) or cond < 1:
        raise ValueError(f"cond: must be finite and >= 1, got {cond!r}")
    if d == 1:
        lam = np.ones(1)
    else:
        inner = rng.uniform(-np.log(cond), 0.0, size=d - 2)
        lam = np.exp(np.concatenate([[0.0, -np.log(cond)], inner]))
        lam = rng.permutation(lam)
    lam *= d / lam.sum()
    if diagonal:
        return np.diag(lam)
    Q, Rq = np.linalg.qr(rng.standard_normal((d, d)))
    Q = Q * np.sign(np.diag(Rq))
    S = (Q * lam) @ Q.T
    return (S + S.T) / 2


def check_model(model: object) -> MultitaskModel:
    """``model`` itself if it is a :class:`MultitaskModel`, else ``ValueError`` naming the argument.

    >>> check_model("R")
    Traceback (most recent call last):
    ...
    ValueError: model: expected a MultitaskModel, got str
    """
    if not isinstance(model, MultitaskModel):
        raise ValueError(f"model: expected a MultitaskModel, got {type(model).__name__}")
    return model
