"""The claim registry and the ``gla-verify`` command.

Composes :mod:`theory` (SymPy derivations) and :mod:`numerics` (NumPy engines);
those two packages never import each other.
"""
from .registry import Claim, Context, Evidence, all_claims, compare, register

__all__ = ["Claim", "Context", "Evidence", "all_claims", "compare", "register"]
