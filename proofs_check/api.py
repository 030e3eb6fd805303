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
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .registry import Claim, ClaimResult, Context, Evidence, RunCache, all_claims, shared_work_for

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolLimiter

    from .sweep.engine import Pool
    from .sweep.forked import ForkPool

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
    pool: Pool | ForkPool | None = None,
) -> Report:
    """Run the claims ``ids`` (default: all) with one shared run cache; returns a :class:`Report`.

    ``pool``: a :class:`proofs_check.sweep.forked.ForkPool` (worker processes forked from this
    one, the default of ``gla-verify run``) or a :class:`proofs_check.sweep.Pool` (a local Dask
    cluster or ``--scheduler``): the claims run on it side by side, one task per claim, and each
    claim's independent pieces (:meth:`~proofs_check.registry.Context.map`; the G5 and G6
    training runs) go to the same workers as tasks of their own; work several claims share
    (:func:`~proofs_check.registry.shared_work`) is computed once, first. None (or a serial
    pool) runs everything in this process, in report order. Either way every check runs with
    one BLAS thread and draws its randomness from the seed and its own name, so the verdicts
    and figures do not depend on the pool or the number of workers.

    Raises ``KeyError`` naming unknown ids and ``ValueError`` for an unknown profile before
    any check runs.
    """
    if profile not in ("quick", "full"):
        raise ValueError(f"profile: must be 'quick' or 'full', got {profile!r}")
    every = all_claims()
    ids = resolve_ids(ids, every)
    from .sweep.forked import ForkPool

    if pool is None or getattr(pool, "serial", False):
        results = _run_here(every, ids, seed, profile, progress)
    elif isinstance(pool, ForkPool):
        results = _run_forked(every, ids, seed, profile, progress, pool)
    else:
        results = _run_on_cluster(every, ids, seed, profile, progress, pool)
    return Report(results, {"seed": seed, "profile": profile, "ids": ids})


def _one_blas_thread() -> ThreadpoolLimiter:
    """One BLAS/OpenMP thread for the block: the checks' matrices are small, and a second
    thread costs far more than it saves (L-BFGS-B with two OpenBLAS threads takes ~30x the CPU
    time); results are then also the same in this process and on a pool's workers."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _run_here(
    every: dict[str, Claim],
    ids: list[str],
    seed: int,
    profile: str,
    progress: Callable[[str], None] | None,
) -> list[ClaimResult]:
    """The claims in report order in this process, with one run cache."""
    cache = RunCache()
    with _one_blas_thread():
        return [
            every[cid].run(
                Context(seed=seed, profile=profile, progress=progress, claim_id=cid, cache=cache)
            )
            for cid in ids
        ]


def _run_forked(
    every: dict[str, Claim],
    ids: list[str],
    seed: int,
    profile: str,
    progress: Callable[[str], None] | None,
    pool: ForkPool,
) -> list[ClaimResult]:
    """One task per claim on ``pool``'s forked workers (see :func:`run` and
    :mod:`proofs_check.sweep.forked`): shared work first, then the claims in :func:`_start_order`
    (costliest first). A claim that uses shared work waits until that work is done, and so do
    the claims after it in that order, so the order holds wherever the shared work finishes.
    Results in report order."""
    say = progress or (lambda msg: None)
    pool.start()
    shared = shared_work_for(ids)
    shared_task = {pool.submit(_call, (fn, ())): key for key, (fn, _) in shared.items()}
    values: dict = {}
    pending = _start_order(every, ids, profile)
    claim_task = {}

    def release() -> None:
        while pending and _has_all(pending[0], shared, values):
            cid = pending.pop(0)
            mine = {k: v for k, v in values.items() if cid in shared[k][1]}
            claim_task[pool.submit(_forked_claim_task, (cid, seed, profile, mine))] = cid

    release()
    results: dict[str, ClaimResult] = {}
    for tid, ok, value in pool.results(len(shared_task) + len(ids), on_progress=say):
        if not ok:
            raise value
        if tid in shared_task:
            values[shared_task.pop(tid)] = value
            release()
            continue
        cid = claim_task.pop(tid)
        results[cid] = ClaimResult(every[cid], *value)
        status = "pass" if results[cid].passed else "FAIL"
        say(f"{cid}: {status} in {value[1]:.1f}s ({len(results)}/{len(ids)} claims done)")
    return [results[cid] for cid in ids]


def _start_order(every: dict[str, Claim], ids: list[str], profile: str = "quick") -> list[str]:
    """The order claims start on a pool: costliest first in ``profile`` (:attr:`Claim.cost`,
    :attr:`Claim.cost_full`; longest processing time first), ties from the end of the report to
    its start (the report lists the composite claims last).

    >>> from .registry import Claim
    >>> c = {i: Claim(i, "", "", "", cost=k) for i, k in [("A", 1), ("B", 5), ("C", 1)]}
    >>> c["A"].cost_full = 9
    >>> _start_order(c, ["A", "B", "C"]), _start_order(c, ["A", "B", "C"], "full")
    (['B', 'C', 'A'], ['A', 'B', 'C'])
    """
    where = {cid: i for i, cid in enumerate(ids)}

    def cost(cid: str) -> float:
        c = every[cid]
        return c.cost_full if profile == "full" and c.cost_full is not None else c.cost

    return sorted(ids, key=lambda cid: (-cost(cid), -where[cid]))


def _has_all(cid: str, shared: dict, values: dict) -> bool:
    """Whether every piece of shared work claim ``cid`` uses is in ``values``."""
    return all(key in values for key, (_, users) in shared.items() if cid in users)


def _forked_claim_task(
    cid: str, seed: int, profile: str, shared: dict
) -> tuple[list[Evidence], float]:
    """Run claim ``cid`` on a forked worker (a task of :func:`_run_forked`): its own run cache
    holding the ``shared`` work it uses, progress sent to the driver, its pieces on the same
    workers. Returns ``(evidence, seconds)``."""
    from .sweep.forked import pieces, progress_to_driver

    ctx = Context(
        seed=seed,
        profile=profile,
        progress=progress_to_driver,
        claim_id=cid,
        cache=RunCache(shared),
        pool=pieces(),
    )
    res = all_claims()[cid].run(ctx)
    return res.evidence, res.seconds


def _run_on_cluster(
    every: dict[str, Claim],
    ids: list[str],
    seed: int,
    profile: str,
    progress: Callable[[str], None] | None,
    pool: Pool,
) -> list[ClaimResult]:
    """One Dask task per claim on ``pool``'s cluster (see :func:`run`); progress messages of the
    claims come back as Dask events. Results in report order; unfinished tasks are cancelled
    if this stops early (an exception, ^C)."""
    from distributed import as_completed

    if pool.client is None:
        pool.start()
    client = pool.client
    say = progress or (lambda msg: None)
    run_id = uuid.uuid4().hex[:12]
    topic = f"gla-verify-run-{run_id}"
    client.subscribe_topic(topic, lambda event: say(event[1]))
    shared = shared_work_for(ids)
    # shared work first (priority 2), then the claims; the pieces of a claim (priority 1) go
    # before claims not yet started, so a long claim's pieces spread over the workers early
    done_shared = {
        key: client.submit(_call, fn, (), key=f"{topic}-shared-{i}", pure=False, priority=2)
        for i, (key, (fn, _)) in enumerate(shared.items())
    }
    futures = {}
    # the report lists the composite claims (landscape, depth, training) last, and they are
    # the long ones: starting from the end puts them first and the short ones at the end
    for cid in reversed(ids):
        mine = {key: fut for key, fut in done_shared.items() if cid in shared[key][1]}
        fut = client.submit(
            _claim_task, cid, seed, profile, topic, mine, key=f"{topic}-{cid}", pure=False
        )
        futures[fut] = cid
    results: dict[str, ClaimResult] = {}
    try:
        for n, fut in enumerate(as_completed(list(futures), loop=client.loop), start=1):
            cid = futures.pop(fut)
            evidence, seconds = fut.result()
            results[cid] = ClaimResult(every[cid], evidence, seconds)
            status = "pass" if results[cid].passed else "FAIL"
            say(f"{cid}: {status} in {seconds:.1f}s ({n}/{len(ids)} claims done)")
    finally:
        if futures:
            client.cancel(list(futures) + list(done_shared.values()), force=True)
        client.unsubscribe_topic(topic)
    return [results[cid] for cid in ids]


def _worker_blas_thread() -> None:
    """One BLAS thread in this worker process, for good. Not a scoped limit: a claim task that
    waits for its pieces leaves its thread running beside the next task, and a scoped limit
    ending in one thread would give the other thread the default back (BLAS limits are per
    process)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    """``fn(*args)`` with one BLAS thread (a task on a worker)."""
    _worker_blas_thread()
    return fn(*args)


def _claim_task(
    cid: str, seed: int, profile: str, topic: str, shared: dict
) -> tuple[list[Evidence], float]:
    """Run claim ``cid`` on a Dask worker (a task of :func:`_run_on_cluster`): its own run cache
    holding the ``shared`` work it uses, progress sent as events on ``topic``, its pieces as
    further tasks on the same cluster. Returns ``(evidence, seconds)``."""
    from distributed import get_worker

    worker = get_worker()

    def forward(msg: str) -> None:
        worker.log_event(topic, msg)

    ctx = Context(
        seed=seed,
        profile=profile,
        progress=forward,
        claim_id=cid,
        cache=RunCache(shared),
        pool=_ClusterPieces(),
    )
    _worker_blas_thread()
    res = all_claims()[cid].run(ctx)
    return res.evidence, res.seconds


class _ClusterPieces:
    """The pool a claim running on a Dask worker hands to :meth:`Context.map`: the pieces become
    tasks on the same cluster (``distributed.worker_client``; the claim's task leaves its worker
    slot while it waits, so that slot runs pieces too)."""

    backend = "the run's Dask cluster"
    serial = False

    def map(
        self,
        fn: Callable[..., Any],
        arglist: Iterable[tuple],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list:
        from distributed import as_completed, worker_client

        arglist = [tuple(a) for a in arglist]
        out: list = [None] * len(arglist)
        with worker_client() as client:
            futs = [client.submit(_call, fn, a, pure=False, priority=1) for a in arglist]
            index = {f.key: i for i, f in enumerate(futs)}
            try:
                for n, f in enumerate(as_completed(futs, loop=client.loop), start=1):
                    out[index[f.key]] = f.result()
                    if progress is not None:
                        progress(n, len(futs))
            finally:
                client.cancel([f for f in futs if not f.done()], force=True)
        return out


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
