r"""The claim registry: theorems, their checks, and the evidence checks return.

A :class:`Claim` is a theorem: an id (``C1``, ``L4``, ...), a LaTeX statement, a
source (what it rests on: a quoted sentence of the paper's abstract, a named prior
result, or "derived here"; never a section number of a text the project has not seen)
and a list of checks. Each check is a function ``check(ctx) -> Evidence`` registered
with :meth:`Claim.check`, tagged with the *leg* it exercises (``"theory"`` = SymPy
derivation, ``"numerics"`` = NumPy/SciPy/cvxpy computation). Every claim must be checked by at least two legs.

Checks compare against an *independent* computation (another implementation, a
closed form, Monte Carlo with an error bar, a brute-force optimum) and report the
figures: the error, the tolerance, and how it was measured.
"""
from __future__ import annotations

import math
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

LEGS = ("theory", "numerics")
KINDS = ("symbolic", "numeric", "certificate", "search", "monte-carlo")


@dataclass
class Evidence:
    """What one check found.

    ``figures`` holds the numbers (errors, tolerances, sizes); ``passed`` is the
    verdict; ``counterexample`` the instance that broke the claim, if any.
    """
    check: str
    passed: bool
    kind: str = "numeric"
    figures: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    counterexample: dict[str, Any] | None = None
    leg: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "check": self.check, "leg": self.leg, "kind": self.kind,
            "passed": bool(self.passed), "figures": jsonable(self.figures),
            "detail": self.detail, "counterexample": jsonable(self.counterexample),
            "seconds": round(self.seconds, 4),
        }

    def key_figure(self) -> str:
        """A short human-readable summary of the most important figure."""
        f = self.figures
        for err_key in ("error", "max_error", "rel_rms", "max_rel_rms", "abs", "abs_error", "gap"):
            if err_key in f:
                tol = f.get("tolerance")
                s = f"{err_key}={_fmt(f[err_key])}"
                return s + (f" (tol {_fmt(tol)})" if tol is not None else "")
        if self.kind == "symbolic":
            return "identity verified" if self.passed else "identity FAILED"
        return self.detail[:60]


def _fmt(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.2e}"
    return str(x)


def jsonable(x):
    """Convert numpy scalars/arrays and nested containers to JSON-serialisable values."""
    if x is None or isinstance(x, (bool, str, int)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return jsonable(float(x))
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return str(x)


def compare(check: str, value, reference, tolerance: float, *, metric: str = "rel_rms",
            kind: str = "numeric", detail: str = "", **extra) -> Evidence:
    """Evidence that ``value`` matches ``reference`` within ``tolerance``.

    ``metric="rel_rms"``: ``||value - reference||_2 / max(||reference||_2, tiny)``
    (relative RMS over all entries). ``metric="abs"``: ``max |value - reference|``
    (for quantities that can be 0).
    """
    a = np.asarray(value, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return Evidence(check, False, kind, {"shape_value": a.shape, "shape_reference": b.shape, **extra},
                        detail=f"shape mismatch; {detail}")
    if metric == "rel_rms":
        err = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
    elif metric == "abs":
        err = float(np.max(np.abs(a - b))) if a.size else 0.0
    else:
        raise ValueError(f"metric: unknown {metric!r}")
    ok = bool(np.isfinite(err) and err <= tolerance)
    return Evidence(check, ok, kind, {metric: err, "tolerance": tolerance, **extra}, detail=detail)


class Context:
    """What a check gets: the seed, the profile and a progress reporter.

    ``rng(name)`` returns a generator seeded from ``(seed, crc32(claim/name))`` so each
    check's randomness is fixed by the global seed and independent of run order.
    """

    def __init__(self, seed: int = 0, profile: str = "quick", progress: Callable[[str], None] | None = None,
                 claim_id: str = ""):
        self.seed = int(seed)
        self.profile = profile
        self.claim_id = claim_id
        self._progress = progress

    @property
    def full(self) -> bool:
        return self.profile == "full"

    def rng(self, name: str = "") -> np.random.Generator:
        tag = zlib.crc32(f"{self.claim_id}/{name}".encode())
        return np.random.default_rng([self.seed, tag])

    def progress(self, msg: str) -> None:
        if self._progress is not None:
            self._progress(msg)


@dataclass
class Check:
    name: str
    leg: str
    func: Callable[[Context], "Evidence | list[Evidence]"]


@dataclass
class Claim:
    """A theorem with its checks. ``statement`` is LaTeX; ``status_note`` records any
    difference from the claim as first posed, or extra condition, the suite found."""
    id: str
    title: str
    statement: str
    source: str
    status_note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, *, leg: str):
        """Decorator registering ``func(ctx) -> Evidence | list[Evidence]`` as a check."""
        if leg not in LEGS:
            raise ValueError(f"leg: must be one of {LEGS}, got {leg!r}")

        def deco(func):
            self.checks.append(Check(name, leg, func))
            return func
        return deco

    def legs(self) -> set[str]:
        return {c.leg for c in self.checks}

    def run(self, ctx: Context) -> "ClaimResult":
        t0 = time.perf_counter()
        evidence: list[Evidence] = []
        for chk in self.checks:
            ctx.progress(f"{self.id}: {chk.name}")
            t1 = time.perf_counter()
            try:
                out = chk.func(ctx)
                items = out if isinstance(out, list) else [out]
            except Exception as exc:  # a crashing check is a failed check, with the traceback as evidence
                items = [Evidence(chk.name, False, "error", {},
                                  detail=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")]
            dt = time.perf_counter() - t1
            for ev in items:
                ev.leg = ev.leg or chk.leg
                ev.seconds = ev.seconds or dt / len(items)
                if not ev.check:
                    ev.check = chk.name
            evidence.extend(items)
        return ClaimResult(self, evidence, time.perf_counter() - t0)


@dataclass
class ClaimResult:
    claim: Claim
    evidence: list[Evidence]
    seconds: float

    @property
    def passed(self) -> bool:
        return bool(self.evidence) and all(e.passed for e in self.evidence)

    def to_json(self) -> dict:
        c = self.claim
        return {
            "id": c.id, "title": c.title, "statement": c.statement, "source": c.source,
            "status_note": c.status_note, "settings": jsonable(c.settings),
            "status": "pass" if self.passed else "FAIL", "legs": sorted(c.legs()),
            "seconds": round(self.seconds, 3),
            "evidence": [e.to_json() for e in self.evidence],
        }


_REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    if claim.id in _REGISTRY:
        raise ValueError(f"claim id {claim.id!r} registered twice")
    _REGISTRY[claim.id] = claim
    return claim


def all_claims() -> dict[str, Claim]:
    """All registered claims, in registration order (importing the claim modules first)."""
    from . import claims  # noqa: F401  (registers on import)
    return dict(_REGISTRY)
