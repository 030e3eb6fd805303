"""Test configuration.

Hypothesis profiles (``HYPOTHESIS_PROFILE`` selects one; default ``ci`` under CI, else ``dev``):

* ``ci``: examples derandomised, so a clean clone passes or fails deterministically;
* ``dev``: every run explores new examples (and replays past failures from ``.hypothesis/``);
* ``stress``: a nightly-style run: every hypothesis test draws ``STRESS_FACTOR`` (100) times
  its usual number of examples (the tests' own ``@settings(max_examples=...)`` included),
  derandomised like ``ci``; e.g. ``HYPOTHESIS_PROFILE=stress python -m pytest tests/test_wpgd.py``.

Counterexamples found either way are kept as ``@example`` regression cases in the test that
found them; those of ``gla-verify stress`` are replayed from ``tests/regressions/``.
"""

import os

from hypothesis import settings

#: Example-count multiplier of the ``stress`` profile.
STRESS_FACTOR = 100

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.register_profile(
    "stress",
    derandomize=True,
    database=None,
    print_blob=True,
    max_examples=STRESS_FACTOR * settings.default.max_examples,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def pytest_collection_modifyitems(config, items):
    """Under the ``stress`` profile, multiply the explicit ``max_examples`` of every hypothesis test."""
    if PROFILE != "stress":
        return
    for item in items:
        fn = getattr(item, "obj", None)
        inner = getattr(fn, "_hypothesis_internal_use_settings", None)
        if inner is None or getattr(fn, "_stress_scaled", False):
            continue
        # the test's own count (or the default 100), times the factor
        fn._hypothesis_internal_use_settings = settings(
            inner, max_examples=STRESS_FACTOR * inner.max_examples
        )
        fn._stress_scaled = True
