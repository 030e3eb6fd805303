r"""``gla-verify stress``: a hypothesis-driven counterexample search for every claim.

:mod:`.core` is the framework (chunked seeded searches, distinct counting, shrinking,
regressions); one module per family of claims registers a :class:`StressProperty` per claim:
:mod:`.construction` (C1-C3, and G5's nesting proxy), :mod:`.landscape` (L1-L7, L1f),
:mod:`.gla_landscape` (G1-G4), :mod:`.trained` (G6's short-training proxy).
:mod:`.summary` formats the results. This package composes :mod:`numerics` (and the claims'
tolerances); the maths the searches use lives in :mod:`numerics` (``landscape_search``,
``moments``, ``closed_forms``).
"""
from __future__ import annotations

from importlib import import_module

from .core import (
    CHUNK,
    DEFAULT_REGRESSION_DIR,
    MAX_EXAMPLES,
    PROPERTIES,
    StressProperty,
    chunk_plan,
    digest,
    load_regression,
    merge_chunks,
    register,
    replay_regression,
    run_chunk,
    run_stress,
    save_regression,
)

__all__ = [
    "CHUNK",
    "DEFAULT_REGRESSION_DIR",
    "MAX_EXAMPLES",
    "PROPERTIES",
    "StressProperty",
    "chunk_plan",
    "digest",
    "format_summary",
    "format_table",
    "load_regression",
    "merge_chunks",
    "register",
    "replay_regression",
    "run_chunk",
    "run_stress",
    "save_regression",
]

_MODULES = ["construction", "landscape", "gla_landscape", "trained"]
for _m in _MODULES:
    try:
        import_module(f"{__name__}.{_m}")
    except ModuleNotFoundError as _exc:   # a family not written yet
        if _exc.name != f"{__name__}.{_m}":
            raise

# claim order as registered in the suite
from ..registry import all_claims as _all_claims

_order = list(_all_claims())
PROPERTIES_ORDERED = sorted(PROPERTIES, key=lambda c: _order.index(c) if c in _order else len(_order))

from .summary import format_summary, format_table
