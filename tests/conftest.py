"""Test configuration.

Hypothesis: under CI (``CI`` set) examples are derandomised, so a run is reproducible and
a clean clone passes or fails deterministically; locally every run explores new examples
(and replays past failures from ``.hypothesis/``). Counterexamples found either way are kept
as ``@example`` regression cases in the test that found them.
"""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
