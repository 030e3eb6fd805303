"""Shared conventions of the GLA engines: argument checks, the overflow report, log-gate floor."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._heap import keep_heap
from .._validate import (
    ArgumentTypeError,
    _finite_sum,
    _reject_complex,
    as_float_array,
    as_log_gates,
)

__all__ = ["GATES"]

GATES = ("scalar", "key")

# Log-gates are clamped to >= _LOG_FLOOR inside the chunked engine.  exp(x) is
# exactly 0.0 in float64 for x < -745.2, and every log-gate is <= 0, so any
# partial sum that contains a clamped entry is <= -800 and exponentiates to
# exactly 0 both before and after clamping: the clamp changes no decay factor.
# It removes -inf from the cumulative sums, where -inf - (-inf) = NaN would
# otherwise appear in the differences c_i - c_j.
_LOG_FLOOR = -800.0


# NumPy's exp takes a slow path for x <= -708.4 (results subnormal or 0): measured 17-120
# ns per element against ~1.6 for ordinary x (7 for x = -inf).  exp(x) is exactly 0.0
# below -745.14 (half the smallest subnormal).
_EXP_FAST_MIN = -700.0
_EXP_ZERO_BELOW = -745.2


def _exp_nonpos(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.exp(x)`` (bit for bit, ``out`` may be ``x``) for arrays whose entries can be far
    below -708: those are set to 0.0 (exact below :data:`_EXP_ZERO_BELOW`) and the few in
    ``[-745.2, -700)`` computed one by one, instead of the slow path of ``np.exp`` for
    every such entry.  One extra reduction when no entry is below -700.

    >>> _exp_nonpos(np.array([0.0, -1.0, -720.0, -800.0, -np.inf])).tolist()[:2]
    [1.0, 0.36787944117144233]
    >>> bool(np.array_equal(_exp_nonpos(np.array([-720.0, -800.0])), np.exp([-720.0, -800.0])))
    True
    """
    if out is None:
        out = np.empty_like(x)
    if not (x.size and np.min(x) < _EXP_FAST_MIN):  # (NaN: plain exp, NaN propagates)
        return np.exp(x, out=out)
    low = x < _EXP_FAST_MIN
    band = low & (x >= _EXP_ZERO_BELOW)
    vals = x[band]  # (a copy: out may be x)
    np.maximum(x, _EXP_FAST_MIN, out=out)
    np.exp(out, out=out)
    out[low] = 0.0
    if vals.size:
        out[band] = np.exp(vals)
    return out


#: Blocks of tokens in :func:`_running_sum_tokens` pay off when a token's slice is small:
#: measured (CPU time) 5.3 -> 1.4 ms at (16, 2048, 16) and 51 -> 31 ms at (8, 16384, 64),
#: but 3.6 -> 5.8 ms at (512, 129, 21) and 39 -> 83 ms at (4096, 128, 17), where a token
#: loop's vector adds are long.
BLOCKED_SUM_MAX_SLICE = 2048
BLOCKED_SUM_MIN_T = 64
#: Below this many entries per token ``np.cumsum`` along the token axis (one strided inner
#: loop per entry) is cheaper than a loop over tokens.
CUMSUM_MAX_SLICE = 64


def _running_sum_tokens(
    x: np.ndarray, reverse: bool = False, exclusive: bool = False
) -> np.ndarray:
    """Running sums of ``x: (B, T)`` or ``(B, T, ...)`` along the token axis 1:
    ``out_t = Σ_{s<=t} x_s`` (``exclusive``: ``s < t``; ``reverse``: from the end, ``s >= t``
    or ``s > t``).  A new contiguous array.

    Three ways, by the size of a token's slice (``B`` times the trailing axes):
    ``np.cumsum`` along axis 1 for ``(B, T)`` arrays and slices below
    :data:`CUMSUM_MAX_SLICE` (along a middle axis it runs one strided inner loop per entry:
    measured ~10x slower than a token loop at B = 4096, T = 128, Dk = 17); one vector add
    per token for long slices; and for slices of at most :data:`BLOCKED_SUM_MAX_SLICE`
    entries with ``T >= BLOCKED_SUM_MIN_T``, where the token loop's ~2.5 µs per call
    dominates, blocks of ``b ≈ √T`` tokens: a running sum within every block at once
    (``b`` vector adds over all blocks), the blocks' totals carried forward (``T / b``
    adds) and added back, about four passes over ``x`` in ``~2√T`` calls.  The first two
    add one token at a time; the blocks add in another order: for terms of one sign
    (log-gates) the relative error stays ``<= T·eps`` in every case.

    >>> x = np.arange(1.0, 6.0)[None, :, None]
    >>> _running_sum_tokens(x)[0, :, 0].tolist(), _running_sum_tokens(x, True, True)[0, :, 0].tolist()
    ([1.0, 3.0, 6.0, 10.0, 15.0], [14.0, 12.0, 9.0, 5.0, 0.0])
    """
    B, T = x.shape[:2]
    rest = x.shape[2:]
    xs = x[:, ::-1] if reverse else x  # the sums run forward over xs
    slice_size = x.size // max(T, 1)
    if x.ndim == 2 or slice_size < CUMSUM_MAX_SLICE or T < 2:
        out = np.empty(x.shape)
        c = out[:, ::-1] if reverse else out
        if exclusive:
            c[:, 0] = 0.0
            np.cumsum(xs[:, :-1], axis=1, out=c[:, 1:])
        else:
            np.cumsum(xs, axis=1, out=c)
        return out
    if T < BLOCKED_SUM_MIN_T or slice_size > BLOCKED_SUM_MAX_SLICE:
        out = np.empty(x.shape)
        c = out[:, ::-1] if reverse else out
        if exclusive:
            c[:, 0] = 0.0
            for t in range(1, T):
                np.add(c[:, t - 1], xs[:, t - 1], out=c[:, t])
        else:
            c[:, 0] = xs[:, 0]
            for t in range(1, T):
                np.add(c[:, t - 1], xs[:, t], out=c[:, t])
        return out
    b = max(1, int(np.sqrt(T)))
    nb = -(-T // b)
    buf = np.zeros((B, nb * b) + rest)
    if exclusive:
        buf[:, 1:T] = xs[:, : T - 1]
    else:
        buf[:, :T] = xs
    X = buf.reshape((B, nb, b) + rest)
    for j in range(1, b):  # within each block
        X[:, :, j] += X[:, :, j - 1]
    carry = X[:, :, b - 1].copy()  # block totals -> running totals of the earlier blocks
    for i in range(1, nb):
        carry[:, i] += carry[:, i - 1]
    X[:, 1:] += carry[:, :-1, None]
    sums = buf[:, :T]
    return np.ascontiguousarray(sums[:, ::-1] if reverse else sums)


def _as_array(x: ArrayLike, name: str, ndim: int) -> np.ndarray:
    """:func:`as_float_array` without its finiteness scan (the caller scans the values)."""
    _reject_complex(x, name)
    if isinstance(x, (str, bytes)):
        raise ArgumentTypeError(f"{name}: expected numbers, got {type(x).__name__} {x!r}")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{name}: cannot convert to a float array ({exc})") from None
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def _check_inputs(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    log_g: ArrayLike,
    gate: str,
    initial_state: ArrayLike | None = None,
    *,
    scan_values: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert the common GLA arguments; returns float64 arrays.

    With ``scan_values=False`` the values of ``q, k, v`` (and of key-gate ``log_g``, which
    has their size) are not scanned here: the caller promises to pass every tile of them
    through :func:`_check_tile` before computing with it (:func:`gla_chunked` does, so
    that each input is read from memory once, not twice).  Everything else (types, shapes,
    scalar log-gates, the initial state) is checked here in either case.  Every engine
    entry point comes here first, which also keeps freed memory in the heap from then on
    (:func:`numerics._heap.keep_heap`: the engines' temporaries reuse pages).
    """
    keep_heap()
    if gate not in GATES:
        raise ValueError(f"gate: must be one of {GATES}, got {gate!r}")
    if scan_values:
        qa = as_float_array(q, "q", ndim=3)
        ka = as_float_array(k, "k", ndim=3)
        va = as_float_array(v, "v", ndim=3)
    else:
        qa, ka, va = _as_array(q, "q", 3), _as_array(k, "k", 3), _as_array(v, "v", 3)
    if ka.shape != qa.shape:
        raise ValueError(f"k: shape {ka.shape} does not match q {qa.shape}")
    if va.shape[:2] != qa.shape[:2]:
        raise ValueError(f"v: leading (B, T) {va.shape[:2]} does not match q {qa.shape[:2]}")
    B, T, Dk = qa.shape
    Dv = va.shape[2]
    expected = (B, T) if gate == "scalar" else (B, T, Dk)
    if scan_values or gate == "scalar":
        lga = as_log_gates(log_g, "log_g")
    else:
        lga = _as_array(log_g, "log_g", len(expected))
    if lga.shape != expected:
        raise ValueError(f"log_g: gate={gate!r} needs shape {expected}, got {lga.shape}")
    S0 = None
    if initial_state is not None:
        S0 = as_float_array(initial_state, "initial_state", ndim=3)
        if S0.shape != (B, Dv, Dk):
            raise ValueError(f"initial_state: expected shape {(B, Dv, Dk)}, got {S0.shape}")
    return qa, ka, va, lga, S0


def _check_tile(q: np.ndarray | None, k: np.ndarray, v: np.ndarray, lg: np.ndarray | None) -> bool:
    """Whether a tile of the inputs passes the value checks skipped by
    ``_check_inputs(..., scan_values=False)``: ``q`` (None: checked by the caller), ``k``,
    ``v`` finite, ``lg`` (key log-gates, or None when already checked) without NaN and
    ``<= 0``.  One reduction per array on
    data the tile is about to use (so it is read into cache once).  ``False`` is not yet
    an error: the caller then runs the full checks, which raise the usual message."""
    if not ((q is None or _finite_sum(q)) and _finite_sum(k) and _finite_sum(v)):
        return False
    if lg is not None and lg.size:
        top = np.max(lg)  # NaN propagates through max
        if not top <= 0.0:
            return False
    return True


def _check_scale(scale: float) -> float:
    s = float(scale)
    if not np.isfinite(s):
        raise ValueError(f"scale: must be finite, got {scale!r}")
    return s


def _check_output(
    out: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    initial_state: np.ndarray | None = None,
    what: str = "output",
) -> np.ndarray:
    """Raise ``ValueError`` if the engine's result is not finite (float64 overflow).

    Inputs are finite (validated), so a non-finite result means that products of the
    inputs exceed the float64 range (~1.8e308): the engines report it instead of
    returning inf/NaN.  The message names the arguments and their largest magnitudes.
    """
    # One pairwise sum is finite for almost every finite array (several times cheaper than
    # np.isfinite over the array); only if it is not, look element by element.
    if _finite_sum(out) or np.all(np.isfinite(out)):
        return out
    mags = [("q", q), ("k", k), ("v", v)] + (
        [] if initial_state is None else [("initial_state", initial_state)]
    )
    sizes = ", ".join(
        f"max |{n}| = {float(np.max(np.abs(a))) if a.size else 0.0:.3g}" for n, a in mags
    )
    names = ", ".join(n for n, _ in mags)
    raise ValueError(f"{names}: the GLA {what} overflows float64 ({sizes}); rescale the inputs")
