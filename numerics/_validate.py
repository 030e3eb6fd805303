"""Argument validation shared by the numerical engines.

Every public engine validates its inputs with these helpers so that bad input
fails early with a ``ValueError`` that names the offending argument.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MATRIX_RTOL", "as_float_array", "check_log_gates", "as_log_gates", "gates_to_log",
           "check_symmetric_psd", "check_prompt"]

# Symmetry / PSD tolerance for user-supplied matrices, relative to their scale.
# 1e-10 is ~1e6 ulps of float64: loose enough for matrices assembled in floating
# point, tight enough to reject genuinely non-symmetric or indefinite input.
MATRIX_RTOL = 1e-10


def as_float_array(x, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Convert ``x`` to a float64 array, checking dimensionality and finiteness."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert to a float array ({exc})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            raise ValueError(f"{name}: expected {' or '.join(map(str, allowed))} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return a


def check_log_gates(log_g: np.ndarray, name: str = "log_g") -> None:
    """Log-gates must be <= 0 (gates in [0, 1]); -inf (gate exactly 0) is allowed."""
    if np.any(np.isnan(log_g)):
        raise ValueError(f"{name}: contains NaN")
    if np.any(log_g > 0):
        raise ValueError(f"{name}: log-gates must be <= 0 (gates in [0, 1]); max is {np.max(log_g):.3g}")


def as_log_gates(log_g, name: str = "log_g", ndim=None) -> np.ndarray:
    a = np.asarray(log_g, dtype=np.float64)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            raise ValueError(f"{name}: expected {' or '.join(map(str, allowed))} dimensions, got shape {a.shape}")
    check_log_gates(a, name)
    return a


def gates_to_log(g, name: str = "g") -> np.ndarray:
    """Gates in [0, 1] -> log-gates (0 -> -inf), with validation."""
    a = np.asarray(g, dtype=np.float64)
    if np.any(np.isnan(a)):
        raise ValueError(f"{name}: contains NaN")
    if np.any((a < 0) | (a > 1)):
        raise ValueError(f"{name}: gates must lie in [0, 1]; got range [{a.min():.3g}, {a.max():.3g}]")
    with np.errstate(divide="ignore"):
        return np.log(a)


def check_symmetric_psd(M: np.ndarray, name: str, *, definite: bool = False,
                        rtol: float = MATRIX_RTOL) -> np.ndarray:
    """Check ``M`` is square, symmetric and PSD (PD if ``definite``) up to ``rtol``.

    Returns the exactly symmetrised matrix ``(M + M.T) / 2``.
    """
    M = as_float_array(M, name, ndim=2)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name}: must be square, got shape {M.shape}")
    scale = max(1.0, float(np.max(np.abs(M)))) if M.size else 1.0
    asym = float(np.max(np.abs(M - M.T))) if M.size else 0.0
    if asym > rtol * scale:
        raise ValueError(f"{name}: not symmetric (max |M - M^T| = {asym:.3g})")
    Ms = (M + M.T) / 2
    lam_min = float(np.linalg.eigvalsh(Ms)[0]) if M.size else 0.0
    if definite and lam_min <= rtol * scale:
        raise ValueError(f"{name}: must be positive definite (smallest eigenvalue {lam_min:.3g})")
    if lam_min < -rtol * scale:
        raise ValueError(f"{name}: not positive semidefinite (smallest eigenvalue {lam_min:.3g})")
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
