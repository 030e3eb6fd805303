r"""Evidence helpers shared by several claims: Monte Carlo against a closed form, bounded errors.

>>> ev = bounded("gain excess", 0.0, 1e-10, n=4)
>>> ev.passed, ev.key_figure()
(True, 'abs_error=0.00e+00 (tol 1.00e-10)')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from numerics import stack
from numerics.data import MultitaskModel, Prompts
from numerics.risk import monte_carlo_risk

from . import tolerances as tol
from .registry import Criterion, Evidence, at_most, compare

__all__ = ["bounded", "monte_carlo", "mc_prompts", "per_engine"]


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


def per_engine(
    head: str,
    tail: str,
    prompt: tuple[ArrayLike, ArrayLike, ArrayLike],
    layers: Sequence[stack.GLALayer],
    log_g_list: Sequence[ArrayLike],
    ref: ArrayLike,
    limit: float,
    *,
    readout: str = "residual",
    **figures: Any,
) -> list[Evidence]:
    """:func:`numerics.stack.stack_predict` on ``prompt = (X, y, x)`` with every engine of
    :data:`numerics.stack.ENGINES`, each compared with ``ref`` (relative RMS ``<= limit``):
    one evidence per engine, named ``"<head> [<engine used>] <tail>"``, with the figure
    ``engine`` after ``figures``.

    >>> X, y, x = np.ones((1, 2, 1)), np.ones((1, 2)), np.ones((1, 1))
    >>> layer = stack.construct_wpgd_layer(np.eye(1), np.eye(1), +1)
    >>> evs = per_engine("one layer", "vs 2", (X, y, x), [layer], [np.zeros((1, 3))], [2.0],
    ...                  1e-12, readout="output")
    >>> [ev.check for ev in evs][:2], all(ev.passed for ev in evs)
    (['one layer [recurrent] vs 2', 'one layer [chunked] vs 2'], True)
    """
    X, y, x = prompt
    out = []
    for eng in stack.ENGINES:
        val = stack.stack_predict(X, y, x, layers, log_g_list, engine=eng, readout=readout)
        used = stack.engine_used(eng)
        out.append(compare(f"{head} [{used}] {tail}", val, ref, limit, **figures, engine=used))
    return out


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
