"""Run an experiment of :mod:`proofs_check.experiments` (an object with ``name``, ``files``,
``points(full)``, ``run_point(point)``, ``write(results, out_dir)``, ``about``) as a sweep.

The experiment's points carry their own seeds, so the engine's derived seed is not used; each
point's result is stored as ``{"value": result}`` (plain JSON) and the experiment's ``write``
runs on the results in grid order as the sweep's export, writing its data files into the
output directory.
"""

from __future__ import annotations

import functools
from pathlib import Path

from .grid import Points, Sweep

__all__ = ["experiment_point", "from_experiment"]


def experiment_point(run_point, params: dict, seed: int) -> dict:
    """``{"value": run_point(params)}`` (``seed`` unused: the experiment's points hold theirs)."""
    from .engine import _plain

    return {"value": _plain(run_point(dict(params)))}


def from_experiment(exp) -> Sweep:
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
