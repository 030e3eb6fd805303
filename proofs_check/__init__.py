"""The claims, the runner, the reports and the ``gla-verify`` command.

Composes :mod:`theory` (SymPy derivations) and :mod:`numerics` (NumPy engines); those two
packages never import each other. For notebooks, :func:`run` returns a :class:`Report`
(see :mod:`proofs_check.api`).
"""

from ._version import __version__
from .api import Report, claims, draw, run
from .registry import Claim, Context, Criterion, Evidence, all_claims, compare

__all__ = [
    "Claim",
    "Context",
    "Criterion",
    "Evidence",
    "Report",
    "__version__",
    "all_claims",
    "claims",
    "compare",
    "draw",
    "run",
]
