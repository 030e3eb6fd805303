"""The appendix figures (registered with :func:`proofs_check.appendix.figure`)."""
from __future__ import annotations
