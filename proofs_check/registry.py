r"""Claims, their checks, and the evidence checks return.

A :class:`Claim` is a theorem: an id (``C1``, ``L4``, ...), a LaTeX statement, its
conditions, a source (what it rests on: a quoted sentence of the paper's abstract, a named
prior result, or "derived here"; never a section number of a text the project has not seen)
and a list of checks. Each check is a function ``check(ctx) -> Evidence | list[Evidence]``
registered with :meth:`Claim.check` and tagged with the *leg* it exercises (``"theory"`` =
SymPy derivation, ``"numerics"`` = NumPy/SciPy/cvxpy computation). Every claim is checked by
both legs.

Evidence is built from named :class:`Criterion` objects (a value, a comparison, a limit and
what the value measures). Its verdict and its key figure are *computed* from the criteria,
never set by hand: a check that wants a further condition adds a criterion.

>>> ev = compare("x vs y", [1.0, 2.0], [1.0, 2.0 + 1e-13], 1e-10)
>>> ev.passed, ev.key_figure()
(True, 'rel_rms=4.47e-14 (tol 1.00e-10)')
>>> ev = Evidence("strict gap", "search", [above("gap", 0.3, 1e-6, "risk gap between the two optima")])
>>> ev.passed
True
>>> Evidence("strict gap", "search", [above("gap", 0.0, 1e-6, "risk gap")]).passed
False
"""

from __future__ import annotations

import math
import operator
import time
import traceback
import zlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from numerics.measures import max_abs, rel_rms

if TYPE_CHECKING:
    from theory.result import ProofResult

__all__ = [
    "LEGS",
    "KINDS",
    "VERDICTS",
    "Criterion",
    "Evidence",
    "Check",
    "Claim",
    "ClaimResult",
    "Context",
    "RunCache",
    "shared_work",
    "shared_work_for",
    "Figure",
    "compare",
    "at_most",
    "at_least",
    "above",
    "below",
    "holds",
    "equals",
    "symbolic",
    "jsonable",
    "all_claims",
]

LEGS = ("theory", "numerics")
# A claim's verdict, recorded in its file: holds as stated; holds with an added condition; holds
# only in a restricted setting; false (a counterexample). All but the first name the condition
# (or the counterexample) in words in ``Claim.verdict_condition``.
VERDICTS = ("as-stated", "with-condition", "restricted", "false")
KINDS = ("symbolic", "numeric", "certificate", "search", "monte-carlo", "error")

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}


# ============================================================================ criteria
@dataclass(frozen=True)
class Criterion:
    """One named test: ``value <op> limit``, with what ``value`` measures.

    ``op`` is one of ``<=``, ``<``, ``>=``, ``>``, ``==``. A non-finite numeric value
    never passes (NaN would otherwise slip through ``>=`` comparisons written as ``not <``).

    >>> Criterion("rel_rms", 3e-16, "<=", 1e-10, "relative RMS error").passed
    True
    >>> Criterion("rel_rms", float("nan"), "<=", 1e-10, "relative RMS error").passed
    False
    >>> Criterion("outcome", "unique", "==", "unique", "certificate outcome").passed
    True
    """

    name: str
    value: Any
    op: str
    limit: Any
    measures: str = ""

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"op: must be one of {sorted(_OPS)}, got {self.op!r}")

    @property
    def passed(self) -> bool:
        v = self.value
        if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
            return False
        return bool(_OPS[self.op](v, self.limit))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "value": jsonable(self.value),
            "op": self.op,
            "limit": jsonable(self.limit),
            "measures": self.measures,
            "passed": self.passed,
        }

    def text(self) -> str:
        """``name=value (tol limit)`` for bounds, ``name=value`` for equalities."""
        if self.op == "==":
            return f"{self.name}={_fmt(self.value)}" + (
                "" if self.value is True else f" (want {_fmt(self.limit)})"
            )
        return f"{self.name}={_fmt(self.value)} (tol {_fmt(self.limit)})"


def at_most(name: str, value: float, limit: float, measures: str = "") -> Criterion:
    """``value <= limit`` (an error or a distance bounded by a tolerance)."""
    return Criterion(name, _num(value), "<=", limit, measures)


def below(name: str, value: float, limit: float, measures: str = "") -> Criterion:
    """``value < limit`` (strict)."""
    return Criterion(name, _num(value), "<", limit, measures)


def at_least(name: str, value: float, limit: float, measures: str = "") -> Criterion:
    """``value >= limit`` (e.g. a cosine, or a gap that must not be negative)."""
    return Criterion(name, _num(value), ">=", limit, measures)


def above(name: str, value: float, limit: float, measures: str = "") -> Criterion:
    """``value > limit`` (a strict gap: a genuine difference must exceed rounding)."""
    return Criterion(name, _num(value), ">", limit, measures)


def holds(name: str, value: bool, measures: str = "") -> Criterion:
    """A boolean that must be true (a certificate flag, a SymPy identity)."""
    return Criterion(name, bool(value), "==", True, measures)


def equals(name: str, value: object, expected: object, measures: str = "") -> Criterion:
    """``value == expected`` (an outcome label, a count)."""
    return Criterion(name, value, "==", expected, measures)


def _num(x):
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    return float(x)


# ============================================================================ evidence
@dataclass
class Evidence:
    """What one check found: named criteria (the verdict) and further figures (context).

    ``passed`` is true iff there is at least one criterion, all of them pass and the check
    did not crash. The key figure is the first criterion (a check lists its main criterion
    first). ``figures`` carries the numbers a reader needs beside the criteria (sizes,
    seeds, intermediate values); every criterion's value and limit are also copied into
    the JSON figures (``name`` and, for the first one, ``tolerance``).
    """

    check: str
    kind: str = "numeric"
    criteria: list[Criterion] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    counterexample: dict[str, Any] | None = None
    leg: str = ""
    seconds: float = 0.0
    error: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind: must be one of {KINDS}, got {self.kind!r}")

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and not self.error and all(c.passed for c in self.criteria)

    def key(self) -> Criterion | None:
        """The criterion the key figure shows: the first failing one, else the first."""
        failing = [c for c in self.criteria if not c.passed]
        return failing[0] if failing else (self.criteria[0] if self.criteria else None)

    def key_figure(self) -> str:
        """A short human-readable summary of the key criterion."""
        if self.error:
            return self.error.splitlines()[0][:80]
        k = self.key()
        if k is None:
            return "no criteria"
        if self.kind == "symbolic" and k.name == "verified":
            return "identity verified" if k.passed else "identity FAILED"
        return k.text()

    def all_figures(self) -> dict[str, Any]:
        """``figures`` with every criterion's value (and the first one's limit as ``tolerance``)."""
        out = {c.name: c.value for c in self.criteria}
        if self.criteria and "tolerance" not in self.figures and self.criteria[0].op != "==":
            out["tolerance"] = self.criteria[0].limit
        out.update(self.figures)
        return out

    def to_json(self) -> dict:
        k = self.key()
        return {
            "check": self.check,
            "leg": self.leg,
            "kind": self.kind,
            "passed": self.passed,
            "criteria": [c.to_json() for c in self.criteria],
            "key_figure": None
            if k is None
            else {
                "name": k.name,
                "value": jsonable(k.value),
                "limit": jsonable(k.limit),
                "op": k.op,
            },
            "figures": jsonable(self.all_figures()),
            "detail": self.detail or self.error,
            "counterexample": jsonable(self.counterexample),
            "seconds": round(self.seconds, 4),
        }


def _fmt(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.2e}"
    return str(x)


def jsonable(x: Any) -> Any:
    """Convert numpy scalars/arrays and nested containers to JSON-serialisable values.

    >>> jsonable({"a": np.arange(2), "b": np.float64("inf"), "c": (np.True_, 1)})
    {'a': [0, 1], 'b': 'inf', 'c': [True, 1]}
    """
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


def compare(
    check: str,
    value: ArrayLike,
    reference: ArrayLike,
    tolerance: float,
    *,
    metric: str = "rel_rms",
    kind: str = "numeric",
    detail: str = "",
    criteria: tuple[Criterion, ...] = (),
    **figures: Any,
) -> Evidence:
    """Evidence that ``value`` matches an independently computed ``reference``.

    ``metric="rel_rms"``: ``||value - reference||_2 / max(||reference||_2, tiny)`` (relative
    RMS over all entries, :func:`numerics.measures.rel_rms`); ``metric="abs"``:
    ``max |value - reference|`` (for quantities that can be 0). Extra ``criteria`` are
    appended after the comparison; keyword arguments become figures.

    >>> compare("n", [1.0, 0.0], [1.0, 1e-13], 1e-12, metric="abs").passed
    True
    >>> compare("n", [1.0, 2.0], [1.0], 1.0).key_figure()
    'shapes=((2,), (1,)) (want equal)'
    """
    a = np.asarray(value, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return Evidence(
            check,
            kind,
            [equals("shapes", (a.shape, b.shape), "equal", "array shapes")],
            figures,
            detail=f"shape mismatch; {detail}",
        )
    if metric == "rel_rms":
        err, what = rel_rms(a, b), "relative RMS error against the reference"
    elif metric == "abs":
        err, what = max_abs(a, b), "largest absolute error against the reference"
    else:
        raise ValueError(f"metric: unknown {metric!r}")
    return Evidence(
        check, kind, [at_most(metric, err, tolerance, what), *criteria], figures, detail=detail
    )


def symbolic(check: str, res: ProofResult, *criteria: Criterion, **figures: Any) -> Evidence:
    """Evidence of a SymPy derivation from a :class:`theory.ProofResult`: the criterion
    ``verified`` (every part's residual reduced to 0), then any extra ``criteria``.

    The figure ``dimensions`` says what was proved: ``"symbolic"`` when the proof holds for
    symbolic sizes (the general-dimension proofs of :mod:`theory.general`), otherwise the list
    of instances (the result's ``cases``) the identity was proved on.
    """
    figs = {**res.figures(), **figures}
    if "dimensions" not in figs:
        figs["dimensions"] = res.data.get("dimensions") or list(res.cases) or "instances"
    return Evidence(
        check,
        "symbolic",
        [holds("verified", res.verified, res.statement), *criteria],
        figs,
        detail=res.latex,
    )


# ============================================================================ context
class RunCache:
    """Work shared by several checks of one run (trained models, expensive optima).

    Explicit and per run: a :class:`Context` hands it to every check, keys are scoped by
    claim id (work several claims share is declared with :func:`shared_work`), and nothing
    survives the run (no module-level state). ``values``: entries computed elsewhere (a run on
    a pool hands each claim the shared work it declared).

    >>> cache = RunCache()
    >>> cache.get(("G5", "x"), lambda: 41 + 1), cache.get(("G5", "x"), lambda: 0)
    (42, 42)
    >>> RunCache({"k": 1}).get("k", lambda: 2)
    1
    """

    def __init__(self, values: dict[Any, Any] | None = None) -> None:
        self._store: dict[Any, Any] = dict(values or {})

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if key not in self._store:
            self._store[key] = compute()
        return self._store[key]

    def peek(self, key: Hashable) -> Any:
        """The stored value or ``None`` (no computation)."""
        return self._store.get(key)


#: Declared work that several claims share (see :func:`shared_work`): key -> (compute, claim ids).
_SHARED_WORK: dict[Hashable, tuple[Callable[[], Any], frozenset[str]]] = {}


def shared_work(
    key: Hashable, compute: Callable[[], Any], claim_ids: Iterable[str]
) -> Callable[[], Any]:
    """Declare a run-cache entry that the checks of several claims use: their checks call
    ``ctx.cache.get(key, compute)``, and ``claim_ids`` are those claims. ``compute`` must be a
    module-level function (picklable). Run in one process, the first check that asks computes
    it; run on a pool (:func:`proofs_check.api.run`), it is computed once, as a piece of its own
    started before the claims, and each of those claims finds it in its run cache. Declared at
    import time of the module that owns the work; returns ``compute``."""
    _SHARED_WORK[key] = (compute, frozenset(claim_ids))
    return compute


def shared_work_for(
    claim_ids: Iterable[str],
) -> dict[Hashable, tuple[Callable[[], Any], frozenset]]:
    """The declared shared work (:func:`shared_work`) that at least one of ``claim_ids`` uses:
    key -> (compute, the ids among ``claim_ids`` that use it)."""
    ids = frozenset(claim_ids)
    return {k: (fn, users & ids) for k, (fn, users) in _SHARED_WORK.items() if users & ids}


class Context:
    """What a check gets: the seed, the profile, a progress reporter, the run cache and the pool
    that runs independent pieces of work (:meth:`map`).

    ``rng(name)`` returns a generator seeded from ``(seed, crc32(claim/name))`` so each
    check's randomness is fixed by the global seed and independent of run order.

    >>> a = Context(seed=3, claim_id="X").rng("n").normal()
    >>> a == Context(seed=3, claim_id="X").rng("n").normal() != Context(seed=4, claim_id="X").rng("n").normal()
    True
    """

    def __init__(
        self,
        seed: int = 0,
        profile: str = "quick",
        progress: Callable[[str], None] | None = None,
        claim_id: str = "",
        cache: RunCache | None = None,
        pool: Any = None,
    ) -> None:
        self.seed = int(seed)
        self.pool = pool
        self.profile = profile
        self.claim_id = claim_id
        self.cache = cache if cache is not None else RunCache()
        self._progress = progress

    @property
    def full(self) -> bool:
        return self.profile == "full"

    def rng(self, name: str = "") -> np.random.Generator:
        tag = zlib.crc32(f"{self.claim_id}/{name}".encode())
        return np.random.default_rng([self.seed, tag])

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per run for this claim and ``name``; later calls reuse it."""
        return self.cache.get((self.claim_id, name), compute)

    def progress(self, msg: str) -> None:
        if self._progress is not None:
            self._progress(msg)

    def map(
        self,
        fn: Callable[..., Any],
        arglist: Iterable[tuple],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list:
        """``[fn(*a) for a in arglist]`` for independent pieces of a check (training runs, say):
        on the run's pool (a :class:`proofs_check.sweep.Pool`: a local Dask cluster or
        ``--scheduler``) if it has one, else in this process. ``fn`` and the arguments must be
        picklable (module-level functions). Every piece runs with one BLAS thread in either
        case, so its result does not depend on where it ran. ``progress(done, total)`` after
        each piece."""
        from .sweep.engine import Pool

        return (self.pool or Pool(workers=0)).map(fn, arglist, progress=progress)


# ============================================================================ claims
@dataclass
class Check:
    name: str
    leg: str
    func: Callable[[Context], Evidence | list[Evidence]]


@dataclass
class Figure:
    """A figure of a claim: ``make(claim_json, out, data_dir) -> caption | None`` saves
    ``out/figures/<name>.pdf|png`` from the claim's report entry (``None`` for a suite
    figure) or from the data files in ``data_dir``; it returns ``None`` and saves nothing
    when its data is not available.

    ``title`` and the caption are Markdown with inline LaTeX math (``$(A+tB)^{-1}r$``), like
    every claim text; the appendix places the figure in its claim's section, at its natural
    size, and adds the sentence naming the CSV file of its plotted data."""

    name: str
    title: str
    make: Callable[..., str | None]
    claim_id: str = ""


@dataclass
class Claim:
    """A theorem with its checks and figures.

    ``statement`` is LaTeX; ``conditions`` lists the assumptions under which it is checked;
    ``source`` says what it rests on; ``status_note`` records, in the project's words, where
    the claim as first posed was wrong or needed a condition. ``area`` groups claims in
    reports; ``formulas`` (optional) returns the SymPy expressions the appendix renders.
    ``origin`` is filled in by discovery (module or entry point). ``verdict`` (one of
    :data:`VERDICTS`) says how the claim as first posed holds, and ``verdict_condition`` states
    in words the added condition, the restriction or the counterexample (required unless the
    verdict is ``"as-stated"``). ``cost`` and ``cost_full`` are scheduling hints only: the
    rough CPU seconds of the claim in the quick and the full profile (1 if unknown; the full
    one defaults to ``cost``); a pool starts the costliest claims first, so the run does not
    end waiting for one long claim. No result depends on them.
    """

    id: str
    title: str
    statement: str
    source: str
    status_note: str = ""
    conditions: tuple[str, ...] = ()
    area: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    formulas: Callable[[], dict] | None = None
    checks: list[Check] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    origin: str = ""
    verdict: str = "as-stated"
    verdict_condition: str = ""
    cost: float = 1.0
    cost_full: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(
                f"verdict: must be one of {VERDICTS}, got {self.verdict!r} (claim {self.id})"
            )
        if self.verdict != "as-stated" and not self.verdict_condition.strip():
            raise ValueError(
                f"verdict_condition: claim {self.id} has verdict {self.verdict!r} but states no condition"
            )

    def check(self, name: str, *, leg: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``func(ctx) -> Evidence | list[Evidence]`` as a check."""
        if leg not in LEGS:
            raise ValueError(f"leg: must be one of {LEGS}, got {leg!r}")

        def deco(func):
            self.checks.append(Check(name, leg, func))
            return func

        return deco

    def figure(self, name: str, title: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``make(claim_json, out, data_dir) -> caption | None``."""

        def deco(func):
            self.figures.append(Figure(name, title, func, self.id))
            return func

        return deco

    def legs(self) -> set[str]:
        return {c.leg for c in self.checks}

    def run(self, ctx: Context) -> ClaimResult:
        t0 = time.perf_counter()
        evidence: list[Evidence] = []
        for chk in self.checks:
            ctx.progress(f"{self.id}: {chk.name}")
            evidence.extend(_run_check(chk, ctx))
        return ClaimResult(self, evidence, time.perf_counter() - t0)


def _run_check(chk: Check, ctx: Context) -> list[Evidence]:
    t1 = time.perf_counter()
    try:
        out = chk.func(ctx)
        items = out if isinstance(out, list) else [out]
    except (MemoryError, OSError, ModuleNotFoundError):
        # the environment failed (out of memory, I/O, a dependency not installed), not the
        # claim: no verdict (exit 3, not 1)
        raise
    except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check, the traceback its evidence
        items = [
            Evidence(
                chk.name,
                "error",
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}",
            )
        ]
    dt = time.perf_counter() - t1
    for ev in items:
        ev.leg = ev.leg or chk.leg
        ev.seconds = ev.seconds or dt / max(len(items), 1)
        ev.check = ev.check or chk.name
    return items


@dataclass
class ClaimResult:
    claim: Claim
    evidence: list[Evidence]
    seconds: float

    @property
    def passed(self) -> bool:
        return bool(self.evidence) and all(e.passed for e in self.evidence)

    @property
    def dimensions(self) -> str:
        """``"symbolic"`` if a passing theory check proved the whole claim for symbolic sizes (figure
        ``dimensions``), ``"partial"`` if it proved a part of it (figure ``scope``), else
        ``"instances"`` (its identities were proved on explicit sizes)."""
        scopes = [
            e.figures.get("scope", "whole")
            for e in self.evidence
            if e.leg == "theory" and e.passed and e.figures.get("dimensions") == "symbolic"
        ]
        return "symbolic" if "whole" in scopes else "partial" if scopes else "instances"

    def to_json(self) -> dict:
        c = self.claim
        return {
            "id": c.id,
            "title": c.title,
            "statement": c.statement,
            "conditions": list(c.conditions),
            "source": c.source,
            "status_note": c.status_note,
            "verdict": c.verdict,
            "verdict_condition": c.verdict_condition,
            "area": c.area,
            "origin": c.origin,
            "settings": jsonable(c.settings),
            "status": "pass" if self.passed else "FAIL",
            "dimensions": self.dimensions,
            "legs": sorted(c.legs()),
            "seconds": round(self.seconds, 3),
            "evidence": [e.to_json() for e in self.evidence],
        }


def all_claims() -> dict[str, Claim]:
    """Every claim: the built-in ones and those of installed packages (entry-point group
    ``gla_verify.claims``), in report order. See :mod:`proofs_check.claims`."""
    from .claims import discover

    return discover()
