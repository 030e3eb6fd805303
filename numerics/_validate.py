"""Argument validation shared by the numerical engines.

Every public engine validates its inputs with these helpers so that bad input
fails early with a ``ValueError`` that names the offending argument.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MATRIX_RTOL",
    "PD_RTOL_PER_DIM",
    "ArgumentTypeError",
    "as_float_array",
    "check_log_gates",
    "as_log_gates",
    "gates_to_log",
    "check_symmetric_psd",
    "check_prompt",
    "matrix_scale",
    "check_instance",
    "check_rng",
    "check_int",
    "check_real",
    "check_finite_output",
]

# Symmetry / PSD tolerance for user-supplied matrices, relative to their own scale
# ``max|M|`` (never to an absolute 1): 1e-10 is ~1e6 ulps of float64, loose enough for
# matrices assembled in floating point, tight enough to reject genuinely non-symmetric or
# indefinite input. The same matrix multiplied by any power of ten passes or fails alike.
MATRIX_RTOL = 1e-10
# Positive definiteness: the smallest eigenvalue must exceed the rounding error of the
# symmetric eigensolver, ~n·eps·max|M| (backward stable); PD_RTOL_PER_DIM·n·max|M| is 100x
# that. A Σ with condition number 1e12 (λ_min = 1e-12 max|Σ|) is positive definite for
# n up to ~4e5; only a λ_min indistinguishable from rounding is refused.
PD_RTOL_PER_DIM = 100 * float(np.finfo(np.float64).eps)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type. A ``TypeError``, and also a ``ValueError`` so that code
    written against the earlier convention (every bad argument a ``ValueError``) still works."""


def _finite_sum(a) -> bool:
    """Whether the sum of ``a`` is finite (overflow of a finite sum is not an error: the
    callers then look at the elements)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(a)))


def _reject_complex(x, name: str) -> None:
    if np.iscomplexobj(x) or isinstance(x, complex):
        raise ArgumentTypeError(
            f"{name}: complex input is not supported (got dtype "
            f"{np.asarray(x).dtype}); pass the real part explicitly if that is meant"
        )


def matrix_scale(M: np.ndarray) -> float:
    """``max|M|``: the scale against which symmetry and definiteness are judged."""
    return float(np.max(np.abs(M))) if M.size else 0.0


def as_float_array(x, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Convert ``x`` to a float64 array, checking dimensionality and finiteness.

    Complex input is a ``TypeError`` (never silently truncated to its real part); so are
    strings and other non-numeric objects.

    >>> as_float_array([1, 2], "x", ndim=1)
    array([1., 2.])
    >>> as_float_array([1.0, float("nan")], "x")
    Traceback (most recent call last):
    ...
    ValueError: x: contains NaN or infinite values
    """
    a = _to_float_array(x, name, ndim)
    # One pairwise sum is finite for almost every finite array and is several times cheaper
    # than np.isfinite over the array (no boolean temporary); only if it is not, look closer.
    if not (_finite_sum(a) or np.all(np.isfinite(a))):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return a


def _to_float_array(x, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as a float64 array with ``ndim`` dimensions (an int or a tuple of allowed ones);
    complex numbers, strings and other non-numbers are a ``TypeError`` naming ``name``."""
    _reject_complex(x, name)
    if isinstance(x, (str, bytes)):
        raise ArgumentTypeError(f"{name}: expected numbers, got {type(x).__name__} {x!r}")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{name}: cannot convert to a float array ({exc})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            raise ValueError(
                f"{name}: expected {' or '.join(map(str, allowed))} dimensions, got shape {a.shape}"
            )
    return a


def check_log_gates(log_g: np.ndarray, name: str = "log_g") -> None:
    """Log-gates must be <= 0 (gates in [0, 1]); -inf (gate exactly 0) is allowed."""
    top = np.max(log_g) if log_g.size else 0.0  # NaN propagates through max: one pass
    if np.isnan(top):
        raise ValueError(f"{name}: contains NaN")
    if top > 0:
        raise ValueError(f"{name}: log-gates must be <= 0 (gates in [0, 1]); max is {top:.3g}")


def as_log_gates(log_g, name: str = "log_g", ndim=None) -> np.ndarray:
    """``log_g`` as a float64 array of log-gates (``<= 0``, ``-inf`` allowed: a closed gate).

    >>> as_log_gates([0.0, -float("inf")]).tolist()
    [0.0, -inf]
    """
    a = _to_float_array(log_g, name, ndim)
    check_log_gates(a, name)
    return a


def gates_to_log(g, name: str = "g") -> np.ndarray:
    """Gates in [0, 1] -> log-gates (0 -> -inf), with validation."""
    a = _to_float_array(g, name)
    if np.any(np.isnan(a)):
        raise ValueError(f"{name}: contains NaN")
    if np.any((a < 0) | (a > 1)):
        raise ValueError(
            f"{name}: gates must lie in [0, 1]; got range [{a.min():.3g}, {a.max():.3g}]"
        )
    with np.errstate(divide="ignore"):
        return np.log(a)


def check_symmetric_psd(
    M: np.ndarray, name: str, *, definite: bool = False, rtol: float = MATRIX_RTOL
) -> np.ndarray:
    """Check ``M`` is square, symmetric and PSD (PD if ``definite``), relative to its scale.

    With ``s = max|M|``: symmetric means ``max|M − Mᵀ| <= rtol·s``; PSD means
    ``λ_min >= −rtol·s``; PD means ``λ_min > PD_RTOL_PER_DIM·n·s`` (above eigensolver
    rounding). The tests are invariant under ``M → cM`` for any ``c > 0``, so a tiny
    indefinite matrix is refused and a well-scaled ill-conditioned one accepted.
    Returns the exactly symmetrised matrix ``(M + M.T) / 2``.

    >>> float(check_symmetric_psd(np.diag([1.0, 1e-12]), "Sigma", definite=True)[1, 1])
    1e-12
    """
    M = as_float_array(M, name, ndim=2)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name}: must be square, got shape {M.shape}")
    scale = matrix_scale(M)
    asym = 2.0 * float(np.max(np.abs(M / 2 - M.T / 2))) if M.size else 0.0  # halves: no overflow
    if asym > rtol * scale:
        raise ValueError(
            f"{name}: not symmetric (max |M - M^T| = {asym:.3g}, scale max|M| = {scale:.3g})"
        )
    Ms = M / 2 + M.T / 2  # = (M + Mᵀ)/2 without overflow near the float64 maximum
    lam_min = float(np.linalg.eigvalsh(Ms)[0]) if M.size else 0.0
    if definite and not lam_min > PD_RTOL_PER_DIM * M.shape[0] * scale:
        raise ValueError(
            f"{name}: must be positive definite (smallest eigenvalue {lam_min:.3g}, "
            f"scale max|M| = {scale:.3g})"
        )
    if lam_min < -rtol * scale:
        raise ValueError(
            f"{name}: not positive semidefinite (smallest eigenvalue {lam_min:.3g}, "
            f"scale max|M| = {scale:.3g})"
        )
    return Ms


def check_prompt(X, y, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a batch of prompts: ``X (N, n, d)``, ``y (N, n)``, ``x (N, d)``; float64 copies."""
    X = as_float_array(X, "X", ndim=3)
    N, n, d = X.shape
    y = as_float_array(y, "y", ndim=2)
    if y.shape != (N, n):
        raise ValueError(f"y: expected shape {(N, n)} to match X {X.shape}, got {y.shape}")
    x = as_float_array(x, "x", ndim=2)
    if x.shape != (N, d):
        raise ValueError(f"x: expected shape {(N, d)} to match X {X.shape}, got {x.shape}")
    return X, y, x


def check_instance(x, cls, name: str):
    """``x`` if it is a ``cls`` instance, else ``TypeError`` naming the argument."""
    if not isinstance(x, cls):
        want = " or ".join(c.__name__ for c in cls) if isinstance(cls, tuple) else cls.__name__
        raise ArgumentTypeError(f"{name}: expected a {want}, got {type(x).__name__}")
    return x


def check_rng(rng, name: str = "rng", optional: bool = False):
    """A ``numpy.random.Generator`` (or ``None`` if ``optional``), else ``TypeError``."""
    if rng is None and optional:
        return rng
    if not isinstance(rng, np.random.Generator):
        raise ArgumentTypeError(
            f"{name}: expected a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def check_int(v, name: str, *, min_value: int | None = None, max_value: int | None = None) -> int:
    """An integer (``bool`` excluded) within bounds: ``TypeError`` / ``ValueError`` naming it."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ArgumentTypeError(f"{name}: expected an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if (min_value is not None and v < min_value) or (max_value is not None and v > max_value):
        lo = "-inf" if min_value is None else min_value
        hi = "inf" if max_value is None else max_value
        raise ValueError(f"{name}: must be in [{lo}, {hi}], got {v}")
    return v


def check_real(v, name: str, *, min_value: float | None = None, positive: bool = False) -> float:
    """A finite real number (``>= min_value``, ``> 0`` if ``positive``): ``TypeError`` /
    ``ValueError`` naming it. Complex numbers are a ``TypeError``."""
    if isinstance(v, (bool, np.bool_, complex, np.complexfloating, str, bytes)) or v is None:
        raise ArgumentTypeError(f"{name}: expected a real number, got {type(v).__name__} {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"{name}: expected a real number, got {type(v).__name__} {v!r}"
        ) from None
    if not np.isfinite(f):
        raise ValueError(f"{name}: must be finite, got {v!r}")
    if positive and not f > 0:
        raise ValueError(f"{name}: must be > 0, got {v!r}")
    if min_value is not None and f < min_value:
        raise ValueError(f"{name}: must be >= {min_value}, got {v!r}")
    return f


def check_finite_output(value, what: str, args: str):
    """``value`` if all of it is finite; else ``ValueError`` saying which inputs to rescale
    (a result beyond float64 is never returned silently as inf/NaN)."""
    if not np.all(np.isfinite(value)):
        raise ValueError(
            f"{args}: {what} overflows float64 (inf/NaN) for this input; rescale {args}"
        )
    return value
