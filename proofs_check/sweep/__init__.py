"""Experiments as declarative sweeps, run on Dask (local cluster by default).

* :mod:`.grid`: :class:`Sweep`, :class:`Grid`, point keys and seeds derived from parameters;
* :mod:`.engine`: :func:`run_sweep` (serial, local cluster, or ``scheduler=`` address);
* :mod:`.store`: one record per point, the Parquet/CSV table, resume;
* :mod:`.catalog`: the named sweeps of ``gla-verify sweep`` (docs/sweeps.md).
"""

from .catalog import CATALOG, get_sweep, sweep_names
from .engine import ClusterError, Pool, SweepOutcome, execute_point, run_sweep
from .grid import Grid, Sweep, point_key, point_seed
from .store import ResultStore, StoreError, read_table

__all__ = [
    "CATALOG",
    "ClusterError",
    "Grid",
    "Pool",
    "ResultStore",
    "StoreError",
    "Sweep",
    "SweepOutcome",
    "execute_point",
    "get_sweep",
    "point_key",
    "point_seed",
    "read_table",
    "run_sweep",
    "sweep_names",
]
