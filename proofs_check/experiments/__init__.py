"""Experiments: the studies whose data files are kept in ``docs/data`` and drawn in the appendix.

``numerics`` holds the engines; the studies that drive them live here, each an
:class:`~proofs_check.experiments._base.Experiment` (a grid of points, one pure function per
point, a writer). ``python -m proofs_check.experiments`` regenerates every data file::

    python -m proofs_check.experiments                    # all, into docs/data
    python -m proofs_check.experiments depth --out /tmp/d # one experiment, elsewhere
    python -m proofs_check.experiments --list

>>> sorted(EXPERIMENTS)
['bench_depth', 'bench_gla', 'bench_landscape', 'bench_train', 'depth', 'g6', 'phase_diagram']
"""

from __future__ import annotations

from . import bench, depth, phase_diagram, trained
from ._base import Experiment, run_local

__all__ = ["EXPERIMENTS", "Experiment", "run_local"]

#: Every experiment, by name, in the order ``python -m proofs_check.experiments`` runs them.
EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        phase_diagram.EXPERIMENT,
        depth.EXPERIMENT,
        trained.EXPERIMENT,
        bench.GLA,
        bench.LANDSCAPE,
        bench.TRAIN,
        bench.DEPTH,
    )
}
