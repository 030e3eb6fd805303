"""Formulas for the appendix, rendered with ``sympy.latex`` from the claims' theory modules.

Nothing here is retyped: a claim that has derived formulas points to a function returning
SymPy expressions (``Claim(formulas=theory.<module>.formulas)``); each is turned into LaTeX by
``sympy.latex``. A function shared by several claims is shown once, under the area and ids
of the claims that point to it.
"""

from __future__ import annotations

import sympy as sp

from .registry import Claim

__all__ = ["collect"]


def collect(claims: list[Claim]) -> list[tuple[str, str]]:
    """(heading: name, LaTeX) of every derived formula of ``claims``, in claim order.

    >>> from proofs_check.registry import all_claims
    >>> rows = collect([all_claims()["L1"]])
    >>> rows[0][0]
    'landscape (L1): L1'
    """
    groups: dict = {}
    for c in claims:
        if c.formulas is not None:
            groups.setdefault(c.formulas, []).append(c)
    out = []
    for get, owners in groups.items():
        heading = f"{owners[0].area} ({', '.join(c.id for c in owners)})"
        for name, expr in get().items():
            out.append((f"{heading}: {name}", sp.latex(expr)))
    return out
