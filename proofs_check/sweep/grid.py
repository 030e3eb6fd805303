r"""Declarative experiments: a grid of parameters × seeds and one pure function per point.

A :class:`Sweep` names an experiment, its point function and, per profile (``"quick"``,
``"full"``), a list of :class:`Grid` s whose union is the set of points. A point is a flat
dict of JSON scalars (``str``, ``int``, ``float``, ``bool``, ``None``) or tuples of them.

Two numbers are derived from a point's parameters and nothing else:

* its **key** (:func:`point_key`): the first 20 hex digits of the SHA-256 of the canonical
  JSON of ``{"sweep": name, "version": sweep.version, "params": params}``. Results are stored
  under it, so a re-run finds finished points whatever the order of the grid;
* its **seed** (:func:`point_seed`): a 63-bit integer from the SHA-256 of the canonical JSON of
  ``{"sweep": name, "seed": {a: params[a] for a in sweep.seed_from}}`` (all parameters unless
  ``seed_from`` is given). It does not depend on the worker that runs the point, the number of
  workers or the order of completion, so the same grid gives the same rows anywhere.

``seed_from`` lets points share random numbers on purpose: ``risk_vs_n`` derives the seed from
``(n, rep)`` only, so the three architectures at one ``n`` and replicate train on the same
prompts (a paired comparison).

>>> g = Grid({"n": (4, 8), "arch": ("a", "b")}, seeds=2)
>>> len(g.points())
8
>>> g.points()[0]
{'n': 4, 'arch': 'a', 'rep': 0}
>>> s = Sweep("demo", fn=lambda params, seed: {}, grids={"quick": [g], "full": [g]})
>>> point_key(s, {"n": 4, "arch": "a", "rep": 0}) == point_key(s, {"rep": 0, "arch": "a", "n": 4})
True
>>> point_seed(s, {"n": 4, "arch": "a", "rep": 0}) != point_seed(s, {"n": 4, "arch": "a", "rep": 1})
True
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROFILES",
    "Grid",
    "Points",
    "Sweep",
    "canonical_json",
    "check_params",
    "point_key",
    "point_seed",
]

PROFILES = ("quick", "full")

#: Parameters may be these types (and tuples / lists of them, stored as tuples).
_SCALARS = (str, int, float, bool, type(None))


def _norm_value(v: Any, where: str):
    if isinstance(v, (list, tuple)):
        return tuple(_norm_value(x, where) for x in v)
    if hasattr(v, "item") and not isinstance(v, _SCALARS):  # NumPy scalar
        v = v.item()
    if not isinstance(v, _SCALARS):
        raise ValueError(
            f"{where}: parameter values must be str, int, float, bool, None or tuples of "
            f"them, got {type(v).__name__}"
        )
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{where}: parameter values must be finite, got {v!r}")
    return v


def check_params(params: Mapping[str, Any], where: str = "params") -> dict:
    """Validated copy of a point's parameters (string keys, JSON scalars or tuples)."""
    if not isinstance(params, Mapping):
        raise ValueError(f"{where}: expected a dict of parameters, got {type(params).__name__}")
    out = {}
    for k, v in params.items():
        if not isinstance(k, str) or not k:
            raise ValueError(f"{where}: parameter names must be non-empty strings, got {k!r}")
        out[k] = _norm_value(v, f"{where}[{k!r}]")
    return out


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, no whitespace, floats as ``repr`` (round-trips float64 exactly)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Grid:
    """The product of ``axes`` (name -> sequence of values, in order, first axis outermost),
    with ``fixed`` parameters added to every point and, if ``seeds > 0``, a last axis
    ``rep = 0..seeds-1`` (the replicate index; the point seed is derived from it)."""

    axes: Mapping[str, Sequence]
    seeds: int = 0
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 0:
            raise ValueError(f"seeds: must be an integer >= 0, got {self.seeds!r}")
        clash = set(self.axes) & set(self.fixed)
        if clash or (self.seeds and ("rep" in self.axes or "rep" in self.fixed)):
            raise ValueError(f"Grid: parameter names given twice: {sorted(clash) or ['rep']}")
        for name, values in self.axes.items():
            if isinstance(values, (str, bytes)) or len(values) == 0:
                raise ValueError(f"axes[{name!r}]: must be a non-empty sequence of values")

    def points(self) -> list[dict]:
        names = list(self.axes)
        values = [list(self.axes[n]) for n in names]
        if self.seeds:
            names.append("rep")
            values.append(list(range(self.seeds)))
        out = []
        for combo in itertools.product(*values):
            p = dict(zip(names, combo))
            p.update(self.fixed)
            out.append(check_params(p, "grid point"))
        return out


@dataclass(frozen=True)
class Points:
    """An explicit list of points (for grids that are not products, e.g. an experiment's own list)."""

    items: Sequence[Mapping[str, Any]]

    def points(self) -> list[dict]:
        return [check_params(p, "point") for p in self.items]


@dataclass(frozen=True)
class Sweep:
    """A named experiment.

    name : the name on the command line.  description : one line for ``--list``.
    fn : the point function ``fn(params: dict, seed: int) -> dict``; pure (its result depends on
        ``params`` and ``seed`` only), importable by reference (a module-level function, so Dask
        workers can load it) and returning a flat dict of JSON scalars or lists of numbers.
    grids : ``{"quick": [Grid, ...], "full": [Grid, ...]}``; the points are the union, in order
        (a point listed twice runs once).
    seed_from : the parameter names the seed is derived from (default: all).
    summarize : optional ``summarize(rows, profile) -> dict`` over the finished rows (a study's
        verdicts and aggregates); must include a ``"text"`` entry for the terminal.
    version : part of every point key; bump it when ``fn`` changes meaning, so old results are
        not reused.
    export : optional ``export(rows, out_dir) -> [file names]``: derived files (a CSV in the
        format of ``docs/data``, say) written into the output directory when every point is ok.
    """

    name: str
    fn: Callable[[dict, int], dict]
    grids: Mapping[str, Sequence[Grid | Points]]
    description: str = ""
    seed_from: tuple[str, ...] | None = None
    summarize: Callable[[list[dict], str], dict] | None = None
    version: str = "1"
    export: Callable[[list[dict], Any], list[str]] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")
        if not callable(self.fn):
            raise ValueError(f"fn: must be callable, got {type(self.fn).__name__}")
        missing = [p for p in PROFILES if p not in self.grids]
        if missing:
            raise ValueError(
                f"grids: needs an entry for each profile {PROFILES}, missing {missing}"
            )

    def points(self, profile: str = "full") -> list[dict]:
        """The grid points of ``profile`` (duplicates removed, first occurrence kept)."""
        if profile not in PROFILES:
            raise ValueError(f"profile: must be one of {PROFILES}, got {profile!r}")
        seen, out = set(), []
        for g in self.grids[profile]:
            for p in g.points():
                k = canonical_json(p)
                if k not in seen:
                    seen.add(k)
                    out.append(p)
        if self.seed_from is not None:
            for p in out:
                absent = [a for a in self.seed_from if a not in p]
                if absent:
                    raise ValueError(
                        f"sweep {self.name!r}: seed_from names {absent} missing from point {p}"
                    )
        return out


def point_key(sweep: Sweep, params: Mapping[str, Any]) -> str:
    """Content address of a point (see the module docstring)."""
    blob = canonical_json(
        {"sweep": sweep.name, "version": sweep.version, "params": check_params(params)}
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def point_seed(sweep: Sweep, params: Mapping[str, Any]) -> int:
    """The point's seed, a 63-bit non-negative integer (see the module docstring)."""
    params = check_params(params)
    names = sorted(params) if sweep.seed_from is None else list(sweep.seed_from)
    blob = canonical_json({"sweep": sweep.name, "seed": {a: params[a] for a in names}})
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") >> 1
