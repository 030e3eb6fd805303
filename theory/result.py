r"""The one result type of every proof in :mod:`theory`.

A proof reduces identities to the zero polynomial. :class:`ProofResult` says what was
proved (``statement``), whether every identity reduced to 0 (``verified``), on which
instances (``cases``: sizes such as ``{"n": 2, "d": 1}``; empty when the proof is symbolic in
the sizes too), which named sub-identities (``parts``) held, how many terms were left
(``residual_terms``, 0 when verified), the time SymPy took, a LaTeX rendering, and any exact
objects a caller may want (``data``: a counterexample, the derived matrix ``P``, ...).

>>> r = ProofResult("x + y - y = x", verified=True, parts={"cancel": True}, residual_terms=0)
>>> r.verified, r.figures()["parts_verified"]
(True, ['cancel'])
>>> ProofResult.combine("both", [r, ProofResult("1 = 2", verified=False)]).verified
False
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProofResult", "Timer"]


@dataclass
class ProofResult:
    statement: str
    verified: bool
    cases: list[dict[str, Any]] = field(default_factory=list)
    parts: dict[str, bool] = field(default_factory=dict)
    residual_terms: int | None = None
    seconds: float = 0.0
    latex: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.verified = bool(self.verified)
        self.parts = {k: bool(v) for k, v in self.parts.items()}

    @classmethod
    def combine(cls, statement: str, results: list[ProofResult], **data: Any) -> ProofResult:
        """One result for several proofs of the same identity (e.g. several sizes): verified
        iff all are; cases, parts and times are collected."""
        cases = [dict(c) for r in results for c in (r.cases or [{"statement": r.statement}])]
        parts = {
            f"{r.statement}: {k}" if len(results) > 1 else k: v
            for r in results
            for k, v in r.parts.items()
        }
        resid = [r.residual_terms for r in results if r.residual_terms is not None]
        return cls(
            statement,
            all(r.verified for r in results),
            cases,
            parts,
            max(resid) if resid else None,
            round(sum(r.seconds for r in results), 3),
            results[0].latex if results else "",
            data,
        )

    def figures(self) -> dict[str, Any]:
        """A JSON-friendly summary for evidence: cases, parts verified/failed, residual terms,
        SymPy time."""
        out: dict[str, Any] = {}
        if self.cases:
            out["cases"] = self.cases
        if self.parts:
            out["parts_verified"] = sorted(k for k, v in self.parts.items() if v)
            failed = sorted(k for k, v in self.parts.items() if not v)
            if failed:
                out["parts_failed"] = failed
        if self.residual_terms is not None:
            out["residual_terms"] = self.residual_terms
        out["sympy_seconds"] = round(float(self.seconds), 3)
        return out


class Timer:
    """Wall time since construction, in seconds (``Timer()()``), for ``ProofResult.seconds``.

    >>> t = Timer(); t() >= 0.0
    True
    """

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def __call__(self) -> float:
        return round(time.perf_counter() - self._t0, 4)
