r"""Evidence helpers shared by several claims: Monte Carlo against a closed form, bounded errors.

>>> ev = bounded("gain excess", 0.0, 1e-10, n=4)
>>> ev.passed, ev.key_figure()
(True, 'abs_error=0.00e+00 (tol 1.00e-10)')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from numerics.data import MultitaskModel, Prompts
from numerics.risk import monte_carlo_risk

from . import tolerances as tol
from .registry import Criterion, Evidence, at_most, compare

__all__ = ["bounded", "monte_carlo", "mc_prompts"]


def bounded(
    check: str,
    error: float,
    limit: float,
    *criteria: Criterion,
    kind: str = "numeric",
    measures: str = "a non-negative error figure",
    detail: str = "",
    **figures: Any,
) -> Evidence:
    """Evidence that a non-negative error figure is ``<= limit`` (key figure ``abs_error``)."""
    return Evidence(
        check,
        kind,
        [at_most("abs_error", error, limit, measures), *criteria],
        figures,
        detail=detail,
    )


def mc_prompts(full: bool) -> int:
    """Monte Carlo prompts per estimate: 60 000 (quick; 4 s.e. ~ 1% of the risk), 400 000 (full)."""
    return 60_000 if not full else 400_000


def monte_carlo(
    check: str,
    model: MultitaskModel,
    predict: Callable[[Prompts], np.ndarray],
    closed: float,
    N: int,
    rng: np.random.Generator,
    spec: dict,
) -> Evidence:
    """Monte Carlo risk of ``predict`` vs the closed form: pass iff ``|mc − closed| <= MC_Z`` s.e."""
    t0 = time.perf_counter()
    mc, se = monte_carlo_risk(model, predict, N, rng)
    z = (mc - closed) / se
    return compare(
        check,
        mc,
        closed,
        tol.MC_Z * se,
        metric="abs",
        kind="monte-carlo",
        detail=f"z = {z:+.2f} (|z| <= {tol.MC_Z:g}); MC {mc:.6g} +- {se:.2g} vs closed form {closed:.6g}, "
        f"N = {N}",
        z=z,
        standard_error=se,
        N=N,
        monte_carlo=mc,
        closed_form=closed,
        z_max=tol.MC_Z,
        mc_seconds=round(time.perf_counter() - t0, 3),
        **spec,
    )
