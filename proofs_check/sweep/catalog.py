"""The named sweeps of ``gla-verify sweep``.

A name is either one of :data:`CATALOG` (loaded on first use, so ``--list`` and argument checks
stay fast) or ``package.module:ATTRIBUTE`` naming a :class:`~proofs_check.sweep.grid.Sweep` in
your own importable module (Dask workers must be able to import it too). Entries
``"experiment:NAME"`` are the experiments behind ``docs/data`` (:mod:`proofs_check.experiments`)
run point by point through :func:`~proofs_check.sweep.adapt.from_experiment` (those whose
points return plain data; ``g6`` returns trained models and the benchmarks time themselves, so
they run through ``python -m proofs_check.experiments``).
"""

from __future__ import annotations

import importlib

from .grid import Sweep

__all__ = ["CATALOG", "UnknownSweep", "get_sweep", "sweep_names"]

#: name -> "module:attribute" of the Sweep.
CATALOG = {
    "smoke": "proofs_check.sweep.demo:SMOKE",
    "risk_vs_n": "proofs_check.experiments.risk_vs_n:SWEEP",
    "g6_seeds": "proofs_check.experiments.g6_seeds:SWEEP",
    "vector_gap": "proofs_check.experiments.vector_gap:SWEEP",
    "phase_diagram": "experiment:phase_diagram",
    "depth": "experiment:depth",
}


class UnknownSweep(ValueError):
    pass


def sweep_names() -> list[str]:
    return list(CATALOG)


def get_sweep(name: str) -> Sweep:
    """The sweep called ``name`` (UnknownSweep naming the known ones if there is none)."""
    ref = CATALOG.get(name)
    if ref is not None and ref.startswith("experiment:"):
        from ..experiments import EXPERIMENTS
        from .adapt import from_experiment

        return from_experiment(EXPERIMENTS[ref.split(":", 1)[1]])
    if ref is None and ":" not in name:
        raise UnknownSweep(
            f"unknown sweep {name!r}; known: {', '.join(CATALOG)} (or module:ATTRIBUTE)"
        )
    mod_name, _, attr = (ref or name).partition(":")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownSweep(f"cannot load sweep {name!r} from {ref or name}: {exc}") from None
    if not isinstance(obj, Sweep):
        raise UnknownSweep(f"{ref or name} is a {type(obj).__name__}, not a Sweep")
    return obj
