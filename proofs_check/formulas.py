"""Formulas for the appendix, rendered with ``sympy.latex`` from the theory modules.

Nothing here is retyped: each entry is a SymPy expression exported by a ``theory``
module's ``formulas()`` and turned into LaTeX by ``sympy.latex``.
"""
from __future__ import annotations

from importlib import import_module

import sympy as sp

#: (theory module, heading) in the order the appendix shows them.
SOURCES = [
    ("theory.construction", "GLA and the construction (C1-C3)"),
    ("theory.population_loss", "Population risk (L1)"),
    ("theory.stationarity", "Optimal preconditioner, profile risk and stationarity (L2-L7)"),
    ("theory.reachability", "Gate-reachable weights (G1-G4)"),
    ("theory.depth", "Depth (G5)"),
]


def collect() -> list[tuple[str, str]]:
    """(name, LaTeX) of every derived formula the appendix shows, module by module."""
    out = []
    for mod_name, heading in SOURCES:
        try:
            mod = import_module(mod_name)
        except ModuleNotFoundError:
            continue
        get = getattr(mod, "formulas", None)
        if get is None:
            continue
        for name, expr in get().items():
            out.append((f"{heading}: {name}", sp.latex(expr)))
    return out
