"""Run an experiment of :mod:`proofs_check.experiments` (an object with ``name``, ``files``,
``points(full)``, ``run_point(point)``, ``write(results, out_dir)``, ``about``) as a sweep.

The experiment's points carry their own seeds, so the engine's derived seed is not used; each
point's result is stored as ``{"value": result}`` (plain JSON) and the experiment's ``write``
runs on the results in grid order as the sweep's export, writing its data files into the
output directory.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .grid import Points, Sweep

if TYPE_CHECKING:
    from ..experiments._base import Experiment
    from .engine import Pool

__all__ = ["experiment_point", "from_experiment", "run_experiments"]


def experiment_point(run_point: Callable[[dict], Any], params: dict, seed: int) -> dict:
    """``{"value": run_point(params)}`` (``seed`` unused: the experiment's points hold theirs)."""
    from .engine import _plain

    return {"value": _plain(run_point(dict(params)))}


def from_experiment(exp: Experiment) -> Sweep:
    def export(rows, out):
        exp.write([r["value"] for r in rows], Path(out))
        return list(exp.files)

    return Sweep(
        exp.name,
        fn=functools.partial(experiment_point, exp.run_point),
        grids={"full": [Points(exp.points(True))], "quick": [Points(exp.points(False))]},
        description=getattr(exp, "about", ""),
        export=export,
        version="experiment-1",
    )


def run_experiments(
    experiments: Sequence[Experiment],
    out_dir: str | os.PathLike,
    pool: Pool,
    *,
    full: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Compute every point of ``experiments`` (a list of experiments) in one pass over ``pool``
    (a :class:`~proofs_check.sweep.engine.Pool`: in-process, local cluster or ``--scheduler``),
    then call each experiment's ``write`` with its results in grid order, in the order given.

    One pass keeps the workers busy across experiments (``depth`` has only 3 points); writing
    after every point is done means the benchmark snapshots, which time themselves in ``write``,
    run on an otherwise idle machine. Results travel as pickles, so points may return any
    objects (``g6`` returns trained models). Returns the paths written; the first error of a
    point is raised (nothing is written then).
    """
    import time

    tasks = [(e, p) for e in experiments for p in e.points(full)]
    t0 = time.perf_counter()

    def report(done, total):
        if progress is not None:
            el = time.perf_counter() - t0
            eta = el / done * (total - done)
            progress(f"{done}/{total} points done, elapsed {el:.0f} s, ETA {eta:.0f} s")

    results = pool.map(_run_point, [(e.run_point, p) for e, p in tasks], progress=report)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for e in experiments:
        mine = [r for (exp, _), r in zip(tasks, results) if exp is e]
        if progress is not None:
            progress(f"{e.name}: writing {', '.join(e.files)}")
        e.write(mine, out_dir)
        written += [out_dir / f for f in e.files]
    return written


def _run_point(run_point, point):
    return run_point(dict(point))
