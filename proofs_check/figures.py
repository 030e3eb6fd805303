"""Suite figures: figures that belong to no single claim.

Claim figures live in their claim's file (``@CLAIM.figure``); this list holds the figures of
the suite itself, each taking ``(None, out, data_dir)`` like a claim figure. It is empty: the
appendix shows theory and its evidence, and software speed is neither (the benchmark data stay
in ``docs/data/bench_*.json``, summarised in the benchmarks' own reports).
"""

from __future__ import annotations

from .registry import Figure

__all__ = ["SUITE_FIGURES"]

SUITE_FIGURES: list[Figure] = []
