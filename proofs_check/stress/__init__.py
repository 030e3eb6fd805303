r"""``gla-verify stress``: a hypothesis-driven counterexample search for every claim.

:mod:`.core` is the framework (chunked seeded searches, distinct counting, shrinking,
regressions); one module per family of claims registers a :class:`StressProperty` per claim:
:mod:`.construction` (C1-C3, and G5's nesting proxy), :mod:`.landscape` (L1-L7, L1f),
:mod:`.gla_landscape` (G1-G4), :mod:`.trained` (G6's short-training proxy).
:mod:`.summary` formats the results, :mod:`.merge` joins searches done in parts, :mod:`.command`
is ``gla-verify stress``. This package composes :mod:`numerics` (and the claims'
tolerances); the maths the searches use lives in :mod:`numerics` (``landscape_search``,
``moments``, ``closed_forms``).
"""

from __future__ import annotations

from ..registry import all_claims as _all_claims
from .core import (
    CHUNK,
    DEFAULT_REGRESSION_DIR,
    MAX_EXAMPLES,
    StressProperty,
    chunk_plan,
    chunk_ranges,
    digest,
    load_properties,
    load_regression,
    merge_chunks,
    register,
    replay_regression,
    run_chunk,
    run_stress,
    save_regression,
)
from .merge import merge_documents, merge_summaries
from .summary import format_summary, format_table

__all__ = [
    "CHUNK",
    "DEFAULT_REGRESSION_DIR",
    "MAX_EXAMPLES",
    "PROPERTIES",
    "StressProperty",
    "chunk_plan",
    "chunk_ranges",
    "digest",
    "format_summary",
    "format_table",
    "load_properties",
    "load_regression",
    "merge_chunks",
    "merge_documents",
    "merge_summaries",
    "ordered_ids",
    "register",
    "replay_regression",
    "run_chunk",
    "run_stress",
    "save_regression",
]


def __getattr__(name: str):
    # ``PROPERTIES`` is filled by importing the property modules, which import numerics and
    # scipy (seconds): done on first use, so ``gla-verify --help`` stays fast.
    if name == "PROPERTIES":
        return load_properties()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ordered_ids() -> list[str]:
    """Claim ids with a property, in the suite's claim order (discovers the claims: called
    when a search starts, not at import, so claim-discovery errors surface where the CLI
    reports them)."""
    order = list(_all_claims())
    return sorted(load_properties(), key=lambda c: order.index(c) if c in order else len(order))
