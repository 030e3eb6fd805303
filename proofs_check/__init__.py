"""The claim registry and the ``gla-verify`` command.

Composes :mod:`theory` (SymPy derivations) and :mod:`numerics` (NumPy engines);
those two packages never import each other.
"""
from ._version import __version__
from .registry import Claim, Context, Evidence, all_claims, compare, register

__all__ = ["Claim", "Context", "Evidence", "__version__", "all_claims", "compare", "register"]
