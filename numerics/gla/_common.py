"""Shared conventions of the GLA engines: argument checks, the overflow report, log-gate floor."""

from __future__ import annotations

import numpy as np

from .._validate import _finite_sum, as_float_array, as_log_gates

__all__ = ["GATES"]

GATES = ("scalar", "key")

# Log-gates are clamped to >= _LOG_FLOOR inside the chunked engine.  exp(x) is
# exactly 0.0 in float64 for x < -745.2, and every log-gate is <= 0, so any
# partial sum that contains a clamped entry is <= -800 and exponentiates to
# exactly 0 both before and after clamping: the clamp changes no decay factor.
# It removes -inf from the cumulative sums, where -inf - (-inf) = NaN would
# otherwise appear in the differences c_i - c_j.
_LOG_FLOOR = -800.0


def _check_inputs(q, k, v, log_g, gate, initial_state=None):
    """Validate and convert the common GLA arguments; returns float64 arrays."""
    if gate not in GATES:
        raise ValueError(f"gate: must be one of {GATES}, got {gate!r}")
    q = as_float_array(q, "q", ndim=3)
    k = as_float_array(k, "k", ndim=3)
    v = as_float_array(v, "v", ndim=3)
    if k.shape != q.shape:
        raise ValueError(f"k: shape {k.shape} does not match q {q.shape}")
    if v.shape[:2] != q.shape[:2]:
        raise ValueError(f"v: leading (B, T) {v.shape[:2]} does not match q {q.shape[:2]}")
    B, T, Dk = q.shape
    Dv = v.shape[2]
    expected = (B, T) if gate == "scalar" else (B, T, Dk)
    log_g = as_log_gates(log_g, "log_g")
    if log_g.shape != expected:
        raise ValueError(f"log_g: gate={gate!r} needs shape {expected}, got {log_g.shape}")
    if initial_state is not None:
        initial_state = as_float_array(initial_state, "initial_state", ndim=3)
        if initial_state.shape != (B, Dv, Dk):
            raise ValueError(
                f"initial_state: expected shape {(B, Dv, Dk)}, got {initial_state.shape}"
            )
    return q, k, v, log_g, initial_state


def _check_scale(scale) -> float:
    s = float(scale)
    if not np.isfinite(s):
        raise ValueError(f"scale: must be finite, got {scale!r}")
    return s


def _check_output(out, q, k, v, initial_state=None, what: str = "output"):
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
