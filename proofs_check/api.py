r"""The Python entry point for notebooks and scripts: run claims, read the report, draw figures.

>>> import proofs_check as pc
>>> rep = pc.run(["L3"])                    # doctest: +SKIP
>>> rep.passed, rep.table()                 # doctest: +SKIP
>>> rep["L3"].evidence[0].criteria          # doctest: +SKIP
>>> pc.draw("C1", "gating_matrix")          # doctest: +SKIP

:func:`run` is what ``gla-verify run`` does, without the terminal: it returns a
:class:`Report` holding one :class:`~proofs_check.registry.ClaimResult` per claim, with the
JSON document of ``--json`` as :meth:`Report.to_json` and the terminal table as
:meth:`Report.table`. :func:`draw` draws one figure of a claim into a directory and returns
the path of its PNG (and the caption).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import Claim, ClaimResult, Context, RunCache, all_claims

if TYPE_CHECKING:
    from .sweep.engine import Pool

__all__ = ["Report", "run", "claims", "resolve_ids", "draw", "DEFAULT_DATA_DIR"]

#: Where figures read the experiment data (``docs/data`` of the working directory, i.e. of a
#: checkout); written by ``python -m proofs_check.experiments``.
DEFAULT_DATA_DIR = Path("docs") / "data"


@dataclass
class Report:
    """The results of one run: ``results`` in report order and the run's ``settings``.

    ``report["L3"]`` is the :class:`~proofs_check.registry.ClaimResult` of claim L3.
    """

    results: list[ClaimResult]
    settings: dict = field(default_factory=dict)

    def __getitem__(self, claim_id: str) -> ClaimResult:
        for r in self.results:
            if r.claim.id == claim_id:
                return r
        raise KeyError(
            f"claim {claim_id!r} is not in this report; it has {[r.claim.id for r in self.results]}"
        )

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def table(self, *, verbose: bool = False) -> str:
        """The terminal table of ``gla-verify run`` (``verbose``: every check)."""
        from .report import format_table

        return format_table(self.results, verbose=verbose)

    def rows(self) -> list[dict]:
        """One flat row per evidence item (claim, check, leg, kind, passed, key figure), e.g.
        for ``pandas.DataFrame(report.rows())``."""
        return [
            {
                "claim": r.claim.id,
                "check": e.check,
                "leg": e.leg,
                "kind": e.kind,
                "passed": e.passed,
                "key_figure": e.key_figure(),
                "seconds": e.seconds,
            }
            for r in self.results
            for e in r.evidence
        ]

    def to_json(self) -> dict:
        """The JSON document ``gla-verify run --json`` writes."""
        from .report import build_report

        return build_report(self.results, self.settings)


def claims() -> dict[str, Claim]:
    """Every claim (built-in and registered by installed packages), in report order."""
    return all_claims()


def resolve_ids(ids: Sequence[str] | None, claims: dict[str, Claim]) -> list[str]:
    """``ids`` without repeats, in the order given (every id of ``claims`` when empty).

    Raises ``KeyError`` naming every unknown id and the known ones.

    >>> resolve_ids(["b", "a", "b"], {"a": 1, "b": 2})
    ['b', 'a']
    >>> resolve_ids(None, {"a": 1, "b": 2})
    ['a', 'b']
    >>> resolve_ids(["c"], {"a": 1})
    Traceback (most recent call last):
    ...
    KeyError: 'unknown claim id(s): c; known: a'
    """
    if not ids:
        return list(claims)
    unknown = [i for i in ids if i not in claims]
    if unknown:
        raise KeyError(f"unknown claim id(s): {', '.join(unknown)}; known: {', '.join(claims)}")
    return list(dict.fromkeys(ids))


def run(
    ids: Sequence[str] | None = None,
    *,
    seed: int = 0,
    profile: str = "quick",
    progress: Callable[[str], None] | None = None,
    pool: Pool | None = None,
) -> Report:
    """Run the claims ``ids`` (default: all) with one shared run cache; returns a :class:`Report`.

    ``pool``: a started :class:`proofs_check.sweep.Pool` on which checks run their independent
    pieces (:meth:`~proofs_check.registry.Context.map`; the G5 and G6 training runs); None runs
    everything in this process. The verdicts and figures do not depend on it.

    Raises ``KeyError`` naming unknown ids and ``ValueError`` for an unknown profile before
    any check runs.
    """
    if profile not in ("quick", "full"):
        raise ValueError(f"profile: must be 'quick' or 'full', got {profile!r}")
    every = all_claims()
    ids = resolve_ids(ids, every)
    cache = RunCache()
    results = [
        every[cid].run(
            Context(
                seed=seed, profile=profile, progress=progress, claim_id=cid, cache=cache, pool=pool
            )
        )
        for cid in ids
    ]
    return Report(results, {"seed": seed, "profile": profile, "ids": ids})


def draw(
    claim_id: str,
    name: str | None = None,
    *,
    report: Report | dict | None = None,
    out: str | Path | None = None,
    data_dir: str | Path = DEFAULT_DATA_DIR,
) -> tuple[Path, str]:
    """Draw figure ``name`` (default: the claim's first) of claim ``claim_id`` into ``out``
    (default: a new temporary directory); returns ``(png path, caption)``.

    Figures drawn from a run's evidence need ``report`` (a :class:`Report` or its JSON);
    figures drawn from data files read ``data_dir``. Raises ``LookupError`` when the figure's
    data is not available.
    """
    claim = all_claims()[claim_id]
    figs = {f.name: f for f in claim.figures}
    if not figs:
        raise LookupError(f"claim {claim_id} has no figures")
    fig = figs[name] if name is not None else claim.figures[0]
    entry = None
    if report is not None:
        doc = report.to_json() if isinstance(report, Report) else report
        entry = next((c for c in doc["claims"] if c["id"] == claim_id), None)
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="gla-verify-fig-"))
    caption = fig.make(entry, out, Path(data_dir))
    if caption is None:
        raise LookupError(
            f"figure {fig.name} of {claim_id}: its data is not available "
            f"(give report= for run evidence, or data_dir= for data files)"
        )
    return out / "figures" / f"{fig.name}.png", caption
