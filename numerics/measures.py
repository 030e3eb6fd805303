r"""Comparison measures shared by engines, claims, stress searches and tests.

One definition each, with its zero handling stated:

* :func:`rel_rms` — ``‖a − b‖₂ / ‖b‖₂`` over all entries (``b = 0``: ``‖a − b‖₂ / tiny``, so
  any difference from an all-zero reference is huge, and ``a = b = 0`` gives 0);
* :func:`max_abs` — ``max |a − b|`` (0 for empty arrays), for quantities that can be 0;
* :func:`cosine` — ``⟨a, b⟩ / (‖a‖ ‖b‖)`` of the flattened arrays, signed or absolute
  (``absolute=True``: ``|cos|``, for directions defined up to sign), 0 if either is 0.

>>> rel_rms([1.0, 2.0], [1.0, 2.0])
0.0
>>> round(cosine([1.0, 0.0], [-1.0, 0.0]), 12), cosine([1.0, 0.0], [-1.0, 0.0], absolute=True)
(-1.0, 1.0)
>>> cosine([0.0, 0.0], [1.0, 0.0])
0.0
>>> max_abs([1.0, 3.0], [1.5, 3.0])
0.5
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["rel_rms", "max_abs", "cosine"]

_TINY = 1e-300


def rel_rms(a: ArrayLike, b: ArrayLike) -> float:
    """Relative RMS error ``‖a − b‖₂ / max(‖b‖₂, 1e-300)`` over all entries (``b`` the reference).

    >>> rel_rms([3.0, 5.0], [3.0, 4.0])    # |(0, 1)| / |(3, 4)|
    0.2
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), _TINY))


def max_abs(a: ArrayLike, b: ArrayLike) -> float:
    """Largest absolute difference ``max |a − b|`` (0 for empty arrays).

    >>> max_abs([1.0, 2.0], [1.5, 1.0]), max_abs([], [])
    (1.0, 0.0)
    """
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(np.max(d)) if d.size else 0.0


def cosine(a: ArrayLike, b: ArrayLike, *, absolute: bool = False) -> float:
    """Cosine of the angle between the flattened ``a`` and ``b`` (0 if either is 0);
    ``absolute=True`` returns ``|cos|``.

    >>> cosine([1.0, 0.0], [-2.0, 0.0]), cosine([1.0, 0.0], [-2.0, 0.0], absolute=True)
    (-1.0, 1.0)
    >>> cosine([0.0, 0.0], [1.0, 2.0])      # a zero vector has no direction
    0.0
    """
    a = np.ravel(np.asarray(a, dtype=np.float64))
    b = np.ravel(np.asarray(b, dtype=np.float64))
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    if den == 0:
        return 0.0
    c = float(a @ b / den)
    return abs(c) if absolute else c
