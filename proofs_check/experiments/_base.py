"""The shape of an experiment: a grid of points, one pure function per point, one writer.

A sweep engine (local loop, or Dask with ``gla-verify sweep``) only needs this: evaluate
``run_point(point)`` for every ``point`` of ``points(full)`` in any order, on any worker, and
hand the results, in grid order, to ``write(results, out_dir)``. Seeds are part of the points,
so the same grid gives the same data however it is scheduled.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..report import atomic_write_text

__all__ = ["Experiment", "run_local", "write_csv"]


@dataclass(frozen=True)
class Experiment:
    """``name``; the data ``files`` it writes (names inside the output directory); ``points(full)``
    the grid (JSON-able dicts); ``run_point(point)`` a pure function of one point; ``write(results,
    out_dir)`` writes the files atomically; ``about`` one line for ``--list``."""

    name: str
    files: tuple[str, ...]
    points: Callable[[bool], list[dict]]
    run_point: Callable[[dict], Any]
    write: Callable[[list, Path], None]
    about: str = ""


def run_local(
    exp: Experiment,
    out_dir: Path,
    *,
    full: bool = True,
    progress: Callable[[str], object] = print,
) -> list[Path]:
    """Evaluate every point in this process (in grid order) and write the files."""
    pts = exp.points(full)
    results = []
    for i, p in enumerate(pts):
        progress(f"{exp.name}: point {i + 1}/{len(pts)} {p}")
        results.append(exp.run_point(p))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exp.write(results, out_dir)
    return [out_dir / f for f in exp.files]


def write_csv(
    path: str | os.PathLike[str],
    rows: list[dict],
    columns: list[str],
    *,
    digits: int,
    comments: dict | None = None,
) -> None:
    r"""Write ``rows`` atomically as CSV: ``# key = value`` comment lines, a header of ``columns``,
    floats with ``digits`` significant digits.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_csv(p, [{"a": 1, "b": 1 / 3}], ["a", "b"], digits=3, comments={"seed": 0})
    >>> p.read_text()
    '# seed = 0\na,b\n1,0.333\n'
    """
    buf = io.StringIO()
    for k, v in (comments or {}).items():
        buf.write(f"# {k} = {v}\n")
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.{digits}g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())
