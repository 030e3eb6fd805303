"""Formulas for the appendix, rendered with ``sympy.latex`` from the theory modules."""
from __future__ import annotations


def collect() -> list[tuple[str, str]]:
    """(name, LaTeX) of every derived formula the appendix shows."""
    return []
