r"""The search framework behind ``gla-verify stress``: properties, chunked seeded searches,
distinct counting, shrinking, regressions.

A :class:`StressProperty` states one claim's conclusion as a check on one instance:

* ``strategy()`` -- a hypothesis strategy of *parameters* (a JSON-able dict: sizes, kinds,
  conditioning, a numpy seed ...), drawn so that the claim's assumptions **and their edges**
  are covered (the hard values are listed first, since hypothesis favours "simple" values);
* ``build(params)`` -- the instance, deterministically (numpy ``default_rng(params["seed"])``);
* ``evaluate(instance, rng)`` -- a record ``{"outcome", "figures", "tags"}``: the outcome is
  one of ``good`` (consistent with the claim as documented, including "condition violated and
  reported") or ``bad`` (a counterexample: the conclusion fails beyond the claim's own
  tolerance, a condition is violated but not reported, or a crash on a valid instance);
  ``figures["margin"]`` is the largest error/tolerance ratio (``> 1`` fails), which
  hypothesis' ``target`` maximises.

**Chunks and seeds.** A search of ``N`` examples with seed ``S`` is the union of chunks
``k = 0, 1, ...`` of :data:`CHUNK` *distinct* instances each; chunk ``k`` runs hypothesis with
its own seed ``sha256(S, claim, k)``, which is also mixed into the numpy seed every instance is
built from (so chunks do not repeat hypothesis' simplest examples). Chunks are independent, so any split of the chunk
range over workers (:func:`run_chunk` is a top-level function taking plain data) gives the
same merged result as one process. (For that, the search switches off hypothesis' use of
constants from the source of the modules a process has imported: :func:`_no_source_constants`.) Instances are identified by a digest of the built
instance (arrays by their bytes): duplicates within a chunk are skipped before evaluation,
duplicates across chunks are dropped at the merge, and if the union falls short of ``N``,
top-up chunks (ids in a block of their own per range, :data:`TOPUP_BASE`) are run until it does.
"Examples" always means *distinct instances evaluated*. A summary records the chunk ids it ran
(``chunk_ranges``) and a row per distinct instance (``instances``), so searches of disjoint
ranges, run anywhere, merge into one summary (:mod:`.merge`, ``gla-verify stress --merge``).

**Warnings** raised inside a chunk are counted, not printed (``warnings`` in the summary, one
line per kind in the CLI output), so a long search on many workers does not flood stderr.

**Shrinking.** If a search found counterexamples, the chunk holding the first one is rerun
with the same seed and the test raising on a counterexample, so hypothesis replays the same
draws up to that failure and shrinks it (at most :data:`SHRINK_SECONDS`); the smallest
failing instance is reported (and saved) besides the ones found.

**Regressions.** Each counterexample is saved (atomically) as ``<claim>_<digest>.json`` in a
directory the caller names (CLI default :data:`DEFAULT_REGRESSION_DIR` in the working
directory); :func:`replay_regression` re-evaluates a saved file. Saving never aborts the
search: errors are collected in the summary (``save_errors``).

hypothesis is used with ``database=None`` and its storage directory pointed at a temporary
folder, so a search leaves nothing behind in the working directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CHUNK",
    "DEFAULT_REGRESSION_DIR",
    "FAMILIES",
    "MAX_EXAMPLES",
    "MAX_SAVED",
    "PROPERTIES",
    "RANDOM_MODULE_WARNING",
    "SHRINK_SECONDS",
    "StressProperty",
    "chunk_plan",
    "chunk_ranges",
    "digest",
    "instance_rng",
    "load_properties",
    "load_regression",
    "merge_chunks",
    "register",
    "replay_regression",
    "run_chunk",
    "run_stress",
    "save_regression",
]

#: Distinct instances per chunk (the unit of work a worker gets; also the granularity of
#: progress). 50 keeps hypothesis' per-run overhead (~20 ms) negligible and the target
#: phase useful, and lets a 1000-example search spread over 20 workers.
CHUNK = 50
#: Upper bound of ``examples`` per claim (a 2-core machine evaluates ~20-1000 instances/s).
MAX_EXAMPLES = 1_000_000
#: Draws per chunk at most (as a multiple of its size): hypothesis stops earlier when its
#: search space is exhausted; more draws than this means the strategy is too narrow.
MAX_DRAWS_FACTOR = 4
#: Rounds of top-up chunks when duplicates (e.g. every ``d = 1`` covariance is ``[[1]]``,
#: whatever its seed) leave the union short of the requested number of instances.
MAX_TOPUP_ROUNDS = 8
#: Top-up chunk ids: ``TOPUP_BASE + first_chunk * TOPUP_PER_RANGE + j``, disjoint from the
#: regular ids ``first_chunk, first_chunk + 1, ...`` of any seed range.
TOPUP_BASE = 1 << 40
TOPUP_PER_RANGE = 1 << 16
#: Wall-clock budget of the shrink phase per claim.
SHRINK_SECONDS = 60.0
#: Counterexamples saved per claim and run (besides the shrunk one): the first found.
MAX_SAVED = 10
#: Default regression folder of the CLI, relative to the working directory.
DEFAULT_REGRESSION_DIR = "stress-regressions"


@dataclass(frozen=True)
class StressProperty:
    """One claim's stress property (see the module docstring)."""

    claim_id: str
    statement: str
    strategy: Callable[[], Any]
    build: Callable[[dict], Any]
    evaluate: Callable[[Any, np.random.Generator], dict]
    bad: tuple[str, ...]
    good: tuple[str, ...]
    tolerances: dict[str, float] = field(default_factory=dict)
    proxy: str = ""
    #: ``describe(instance) -> dict``: a short spec (sizes, conditioning) for summaries.
    describe: Callable[[Any], dict] | None = None
    #: ``to_json(instance) -> dict`` / ``from_json(dict) -> instance``: saved regressions carry
    #: the instance itself where this exists (else they are rebuilt from the parameters).
    to_json: Callable[[Any], dict] | None = None
    from_json: Callable[[dict], Any] | None = None

    def is_bad(self, rec: dict) -> bool:
        return rec["outcome"] in self.bad


PROPERTIES: dict[str, StressProperty] = {}
#: The modules that register the properties, one per family of claims.
FAMILIES = ("construction", "landscape", "gla_landscape", "trained")


def load_properties() -> dict[str, StressProperty]:
    """Every registered property (importing the family modules on first use)."""
    from importlib import import_module

    for fam in FAMILIES:
        import_module(f"{__package__}.{fam}")
    return PROPERTIES


def register(prop: StressProperty) -> StressProperty:
    if prop.claim_id in PROPERTIES:
        raise ValueError(f"stress property for {prop.claim_id!r} registered twice")
    if set(prop.bad) & set(prop.good):
        raise ValueError(
            f"{prop.claim_id}: outcomes both good and bad: {set(prop.bad) & set(prop.good)}"
        )
    PROPERTIES[prop.claim_id] = prop
    return prop


# ----------------------------------------------------------------------------- helpers
def _feed(h, obj) -> None:
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"nd{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            h.update(str(k).encode() + b":")
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        h.update(type(obj).__name__.encode())
        _feed(h, {k: v for k, v in vars(obj).items() if not k.startswith("_")})
    else:
        h.update(repr(obj).encode())


def digest(obj: Any) -> str:
    """A stable hex digest of an instance (numpy arrays by dtype, shape and bytes; objects
    by their public attributes): two instances are the same example iff digests agree."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def instance_rng(key: str) -> np.random.Generator:
    """The generator an evaluation gets: seeded from the instance digest, so a record depends
    only on the instance (not on the chunk or the order it was drawn in)."""
    return np.random.default_rng(int(key[:16], 16))


def _chunk_seed(seed: int, claim_id: str, chunk: int) -> int:
    return int.from_bytes(
        hashlib.sha256(f"{int(seed)}:{claim_id}:{int(chunk)}".encode()).digest()[:8], "big"
    )


def _chunk_params(p: dict, cseed: int) -> dict:
    """The drawn parameters with the numpy ``seed`` mixed with the chunk's seed: hypothesis
    starts every run from its simplest example, which would otherwise be the same instance in
    every chunk (and in every seed range of a split search)."""
    if "seed" not in p:
        return p
    mixed = int.from_bytes(hashlib.sha256(f"{cseed}:{int(p['seed'])}".encode()).digest()[:4], "big")
    return {**p, "seed": mixed}


def _jsonable(x):
    from ..registry import jsonable

    return jsonable(x)


def _evaluate(prop: StressProperty, inst, key: str) -> dict:
    t0 = time.perf_counter()
    try:
        rec = dict(prop.evaluate(inst, instance_rng(key)))
    except Exception as exc:  # noqa: BLE001  (a crash on a valid instance is a finding, not a reason to stop)
        rec = {"outcome": "error", "figures": {}, "error": f"{type(exc).__name__}: {exc}"}
    rec.setdefault("figures", {})
    rec.setdefault("tags", [])
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _build(prop: StressProperty, params: dict):
    """``(instance, key)``; a builder crash gives ``(exception, key-of-params)``."""
    try:
        inst = prop.build(params)
    except Exception as exc:  # noqa: BLE001  (recorded as an "error" outcome)
        return exc, "build-error-" + digest(params)
    return inst, digest(inst)


def _target_value(rec: dict) -> float:
    m = rec["figures"].get("margin")
    if m is None:
        return -20.0
    m = float(m)
    if not math.isfinite(m):
        return 20.0 if m > 0 else -20.0
    return max(math.log10(max(m, 1e-20)), -20.0)


@contextlib.contextmanager
def _hypothesis_home():
    """hypothesis' storage directory moved to a temporary folder for the duration of a search
    (it would otherwise create ``.hypothesis/`` in the working directory, e.g. for its cache
    of source constants), then restored and the folder removed."""
    from hypothesis import configuration

    prev = vars(configuration).get("__hypothesis_home_directory")
    with tempfile.TemporaryDirectory(prefix="gla-verify-hypothesis-") as home:
        configuration.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            configuration.set_hypothesis_home_dir(prev)


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS and OpenMP limited to one thread while a search runs. The instances are small
    (``n <= 600``, ``d <= 8``), where a multi-threaded BLAS only adds synchronisation: on the
    shared 2-core machine L4's evaluations took 10x the wall time (12.7 s vs 1.4 s for 30
    instances) with the default thread pools. Workers run in parallel processes instead."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with threadpool_limits(limits=1):
        yield


@contextlib.contextmanager
def _no_source_constants():
    """hypothesis draws, for about one number in twenty, a constant found in the source of the
    "local" modules imported so far (anything outside site-packages and the standard library:
    here the project's own modules, and the ``__main__`` script). Which instances a seed gives
    would then depend on what the process happens to have imported: the CLI, a Dask worker and
    pytest drew different instances from the same seed (seen: 5 of 150 L7 instances differed
    between this process and a cluster). For the search, that pool is emptied (hypothesis'
    fixed built-in constants stay), so a seed gives the same draws in every process; the
    cache of permitted constants is cleared on the way in and out, so other hypothesis users
    of the process are unaffected. (hypothesis offers no setting for this; without the
    internal hook, e.g. in a version before source constants, nothing is changed.)"""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a hypothesis without the module
        yield
        return
    get, cache = (getattr(providers, n, None) for n in ("_get_local_constants", "CONSTANTS_CACHE"))
    if get is None or cache is None:  # pragma: no cover
        yield
        return
    from hypothesis.internal.constants_ast import Constants

    empty = Constants()
    providers._get_local_constants = lambda: empty
    cache.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = get
        cache.cache.clear()


class _Counterexample(Exception):
    pass


class _ChunkSearch:
    """One hypothesis run of chunk ``chunk`` (see :func:`_search`): the test body and its state.

    The plain search (``shrink=False``) evaluates each newly drawn distinct instance until
    ``size`` are done. With ``shrink=True`` the same draws are replayed (same seed) up to the
    first counterexample, which raises, and every candidate hypothesis then tries is
    evaluated (cached by instance) for at most ``shrink_seconds``.
    """

    def __init__(
        self,
        prop: StressProperty,
        seed: int,
        chunk: int,
        size: int,
        *,
        shrink: bool,
        shrink_seconds: float,
    ) -> None:
        self.prop, self.size = prop, int(size)
        self.shrink, self.shrink_seconds = shrink, shrink_seconds
        self.cseed = _chunk_seed(seed, prop.claim_id, chunk)
        self.seen: dict[str, dict] = {}  # the plain search's records, by instance digest
        self.order: list[str] = []
        self.draws = 0
        self.failing: tuple | None = None  # smallest failing (params, key, record) so far
        self.t_fail = 0.0
        self.shrink_evals = 0
        self.cache: dict[str, dict] = {}  # shrink candidates' records

    def settings(self):
        from hypothesis import HealthCheck, Phase, Verbosity, settings

        return settings(
            max_examples=self.size * MAX_DRAWS_FACTOR,
            database=None,
            deadline=None,
            derandomize=False,
            phases=[Phase.generate, Phase.target] + ([Phase.shrink] if self.shrink else []),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            verbosity=Verbosity.quiet,
            report_multiple_bugs=False,
        )

    def example(self, p: dict) -> None:
        """The test body: one drawn parameter set."""
        p = _chunk_params(p, self.cseed)
        if self.failing is None:
            self._draw(p)
        else:
            self._shrink_candidate(p)

    def _record(self, p: dict) -> tuple[str, dict]:
        inst, key = _build(self.prop, p)
        if isinstance(inst, Exception):
            return key, _build_error_record(inst)
        return key, _evaluate(self.prop, inst, key)

    def _draw(self, p: dict) -> None:
        # the draws of the plain search, replayed identically until the first failure
        from hypothesis import target

        if len(self.order) >= self.size:
            return
        self.draws += 1
        inst, key = _build(self.prop, p)
        if key in self.seen:
            return
        rec = (
            _build_error_record(inst)
            if isinstance(inst, Exception)
            else _evaluate(self.prop, inst, key)
        )
        rec["params"], rec["key"] = p, key
        self.seen[key] = rec
        self.order.append(key)
        target(_target_value(rec), label="log10 margin")
        if self.shrink and self.prop.is_bad(rec):
            self.failing, self.t_fail = (p, key, rec), time.perf_counter()
            raise _Counterexample(key)

    def _shrink_candidate(self, p: dict) -> None:
        if time.perf_counter() - self.t_fail > self.shrink_seconds:
            return
        inst, key = _build(self.prop, p)
        if key not in self.cache:
            self.shrink_evals += 1
            self.cache[key] = (
                _build_error_record(inst)
                if isinstance(inst, Exception)
                else _evaluate(self.prop, inst, key)
            )
        rec = self.cache[key]
        if self.prop.is_bad(rec):
            if _smaller(p, key, self.failing):
                self.failing = (p, key, {**rec, "params": p, "key": key})
            raise _Counterexample(key)

    def run(self) -> None:
        from hypothesis import given, seed as hseed

        @hseed(self.cseed)
        @self.settings()
        @given(self.prop.strategy())
        def test(p):
            self.example(p)

        try:
            with _hypothesis_home(), _one_blas_thread(), _no_source_constants():
                test()
        except _Counterexample:
            pass
        except Exception as exc:  # hypothesis' own errors (e.g. Unsatisfiable)
            if not self.shrink:
                raise RuntimeError(
                    f"{self.prop.claim_id} chunk: hypothesis failed: {type(exc).__name__}: {exc}"
                ) from exc


def _search(
    prop: StressProperty,
    seed: int,
    chunk: int,
    size: int,
    *,
    shrink: bool,
    shrink_seconds: float = SHRINK_SECONDS,
):
    """One hypothesis run of chunk ``chunk``. Without ``shrink``: evaluate up to ``size``
    distinct instances; returns (records in draw order, draws). With ``shrink``: the same
    draws, but the first counterexample raises, hypothesis shrinks it; returns the smallest
    failing ``(params, key, record)`` seen (or None) and the number of shrink evaluations."""
    run = _ChunkSearch(prop, seed, chunk, size, shrink=shrink, shrink_seconds=shrink_seconds)
    run.run()
    if shrink:
        return run.failing, run.shrink_evals
    return [run.seen[k] for k in run.order], run.draws


def _build_error_record(exc: Exception) -> dict:
    return {
        "outcome": "error",
        "figures": {},
        "tags": [],
        "seconds": 0.0,
        "error": f"build: {type(exc).__name__}: {exc}",
    }


def _size_key(p) -> tuple:
    """Order of "smaller" counterexamples: hypothesis' own order is on its choice sequence;
    between the failing candidates it reports, prefer the shorter JSON of the parameters."""
    return (len(json.dumps(_jsonable(p), sort_keys=True)), json.dumps(_jsonable(p), sort_keys=True))


def _smaller(p, key, current) -> bool:
    return current is None or _size_key(p) <= _size_key(current[0])


# ----------------------------------------------------------------------------- warnings
#: hypothesis checks that strategies leave Python's global ``random`` alone by comparing its
#: state before and after each draw. In a Dask worker the event loop thread draws from that
#: same generator meanwhile (tornado's jittered periodic callbacks, distributed's retry
#: back-offs), so the check fires at random on draws that never touch ``random`` (none of the
#: strategies here does; tests/test_stress.py asserts it in a single-threaded process). The
#: warning is dropped there, and only there.
RANDOM_MODULE_WARNING = "Do not use the `random` module inside strategies"


def _in_worker_thread() -> bool:
    """True off the main thread (a Dask worker runs tasks in a thread pool, next to its event loop)."""
    return threading.current_thread() is not threading.main_thread()


def _warning_counts(caught: list) -> dict[str, int]:
    """``"Category: first line of the message" -> count`` of the warnings a chunk raised, less
    the known false alarm of :data:`RANDOM_MODULE_WARNING` in a worker thread."""
    counts: dict[str, int] = {}
    worker = _in_worker_thread()
    for w in caught:
        msg = str(w.message)
        if worker and msg.startswith(RANDOM_MODULE_WARNING):
            continue
        k = f"{w.category.__name__}: {msg.splitlines()[0][:200] if msg else ''}"
        counts[k] = counts.get(k, 0) + 1
    return counts


# ----------------------------------------------------------------------------- chunks
def run_chunk(task: tuple) -> dict:
    """Evaluate one chunk: ``task = (claim_id, seed, chunk, size)`` (plain data, so it can be
    shipped to a worker process or a Dask cluster). Returns ``{"claim", "seed", "chunk",
    "size", "draws", "records", "seconds", "cpu_seconds", "warnings"}``; each record has
    ``key``, ``params``, ``outcome``, ``figures``, ``tags``, ``seconds``. Warnings raised
    while the chunk ran are counted (``warnings``: message -> count) instead of printed, so
    a long search reports each kind once (:func:`run_stress`) rather than flooding stderr."""
    props = load_properties()  # registers every property in a fresh worker
    claim_id, seed, chunk, size = task
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records, draws = _search(props[claim_id], int(seed), int(chunk), int(size), shrink=False)
    return {
        "claim": claim_id,
        "seed": int(seed),
        "chunk": int(chunk),
        "size": int(size),
        "draws": int(draws),
        "records": _jsonable(records),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "warnings": _warning_counts(caught),
    }


def chunk_plan(claim_id: str, examples: int, seed: int, first_chunk: int = 0) -> list[tuple]:
    """The chunk tasks of a search of ``examples`` distinct instances (before top-ups)."""
    tasks, k, left = [], int(first_chunk), int(examples)
    while left > 0:
        size = min(CHUNK, left)
        tasks.append((claim_id, int(seed), k, size))
        left -= size
        k += 1
    return tasks


def chunk_ranges(tasks: Iterable[tuple]) -> list[list[int]]:
    """The chunk ids of ``tasks`` as sorted, merged half-open ranges ``[seed, start, stop]``
    (what a summary records, so that :mod:`.merge` can refuse overlapping searches)."""
    out: list[list[int]] = []
    for seed, k in sorted({(int(t[1]), int(t[2])) for t in tasks}):
        if out and out[-1][0] == seed and out[-1][2] == k:
            out[-1][2] = k + 1
        else:
            out.append([seed, k, k + 1])
    return out


def merge_chunks(results: Iterable[dict]) -> tuple[list[dict], dict]:
    """Union of chunk results in chunk order, duplicates (same instance digest) dropped.
    Returns ``(records, stats)`` with stats ``chunks``, ``draws``, ``duplicates_dropped``,
    ``cpu_seconds`` (CPU time of the chunks, summed over workers), ``warnings`` (summed)."""
    res = sorted(results, key=lambda r: r["chunk"])
    seen, out, dup, draws, cpu = set(), [], 0, 0, 0.0
    warned: dict[str, int] = {}
    for r in res:
        draws += r["draws"]
        cpu += r.get("cpu_seconds", r["seconds"])
        for k, v in r.get("warnings", {}).items():
            warned[k] = warned.get(k, 0) + v
        for rec in r["records"]:
            if rec["key"] in seen:
                dup += 1
                continue
            seen.add(rec["key"])
            rec = dict(rec)
            rec["chunk"] = r["chunk"]
            out.append(rec)
    stats = {"chunks": len(res), "draws": draws, "duplicates_dropped": dup, "cpu_seconds": cpu}
    return out, {**stats, "warnings": dict(sorted(warned.items()))}


# ----------------------------------------------------------------------------- regressions
def save_regression(
    folder: str | os.PathLike, prop: StressProperty, rec: dict, *, shrunk: bool = False
) -> Path:
    """Write the counterexample ``rec`` (with its parameters, and the instance where the
    property can serialise it) to ``folder/<claim>_<digest>.json`` atomically; returns the path.
    ``expected_outcomes`` is what the replay test asserts once the finding is resolved
    (the code fixed, or the claim corrected and this list edited to match)."""
    from ..report import atomic_write_text

    folder = Path(folder)
    obj = {
        "claim": prop.claim_id,
        "outcome": rec["outcome"],
        "expected_outcomes": list(prop.good),
        "shrunk": bool(shrunk),
        "key": rec["key"],
        "params": _jsonable(rec.get("params")),
        "figures": _jsonable(rec.get("figures")),
        "error": rec.get("error"),
    }
    if prop.to_json is not None and not str(rec["key"]).startswith("build-error"):
        obj["instance"] = _jsonable(prop.to_json(prop.build(rec["params"])))
    folder.mkdir(parents=True, exist_ok=True)
    key = str(rec["key"])
    path = folder / f"{prop.claim_id}_{key[-12:] if key.startswith('build') else key[:12]}.json"
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
    return path


def load_regression(path: str | os.PathLike) -> dict:
    obj = json.loads(Path(path).read_text())
    load_properties()
    for k in ("claim", "expected_outcomes"):
        if k not in obj:
            raise ValueError(f"{path}: regression file lacks {k!r}")
    if obj["claim"] not in PROPERTIES:
        raise ValueError(f"{path}: no stress property for claim {obj['claim']!r}")
    if obj.get("params") is None and obj.get("instance") is None:
        raise ValueError(f"{path}: regression file has neither 'params' nor 'instance'")
    return obj


def replay_regression(path: str | os.PathLike) -> dict:
    """Re-evaluate a saved counterexample with today's code: returns its new record plus
    ``expected_outcomes`` and ``saved_outcome``. The instance is taken verbatim from the file
    when saved (``instance``), else rebuilt from ``params``."""
    obj = load_regression(path)
    prop = PROPERTIES[obj["claim"]]
    if obj.get("instance") is not None and prop.from_json is not None:
        inst = prop.from_json(obj["instance"])
    else:
        inst = prop.build(obj["params"])
    rec = _evaluate(prop, inst, digest(inst))
    rec["expected_outcomes"] = obj["expected_outcomes"]
    rec["saved_outcome"] = obj["outcome"]
    return rec


# ----------------------------------------------------------------------------- the search
def _default_map(fn, tasks):
    """In this process, in order, one result at a time (so progress can follow)."""
    for t in tasks:
        yield fn(t)


#: Progress lines per claim and round of chunks, at most (about one per 10% of the chunks).
PROGRESS_STEPS = 10


class _Progress:
    """Progress of one claim's search, as chunks finish (in any order)."""

    def __init__(self, claim_id: str, report: Callable[[str], None] | None, t0: float):
        self.claim_id, self.report, self.t0 = claim_id, report, t0
        self.evaluated = 0

    def round(self, label: str, results: Iterable[dict], total: int) -> Iterable[dict]:
        """Pass ``results`` through, reporting after about every tenth of ``total`` chunks."""
        every = max(1, math.ceil(total / PROGRESS_STEPS))
        for n, r in enumerate(results, start=1):
            self.evaluated += len(r["records"])
            if self.report is not None and (n % every == 0 or n == total):
                self.report(
                    f"{self.claim_id}: {label} {n}/{total} chunks, {self.evaluated} instances "
                    f"evaluated, {time.perf_counter() - self.t0:.1f}s"
                )
            yield r


@dataclass
class _Collected:
    """What the chunks of one search gave: the distinct records (chunk order, cut to the
    request), the merge statistics, and every chunk task run (top-ups included)."""

    records: list[dict]
    stats: dict
    tasks: list[tuple]


def _check_search(claim_id: str, examples, seed, first_chunk) -> StressProperty:
    if claim_id not in load_properties():
        raise KeyError(
            f"no stress property for claim {claim_id!r}; available: {', '.join(PROPERTIES)}"
        )
    if isinstance(examples, bool) or int(examples) != examples or not 1 <= examples <= MAX_EXAMPLES:
        raise ValueError(f"examples: must be an integer in [1, {MAX_EXAMPLES}], got {examples!r}")
    # The same range as every other seed of the suite (``gla-verify --seed``), so a search's
    # seed can be written to JSON and read back exactly by any reader (int64).
    from ..cli import SEED_MAX

    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed: must be an integer in [0, 2**63 - 1], got {seed!r}")
    if isinstance(first_chunk, bool) or int(first_chunk) != first_chunk or first_chunk < 0:
        raise ValueError(f"first_chunk: must be an integer >= 0, got {first_chunk!r}")
    return PROPERTIES[claim_id]


def _collect(claim_id, examples, seed, first_chunk, mapper, progress: _Progress) -> _Collected:
    """Run the chunks of the seed range, then top-up chunks until ``examples`` distinct
    instances are in hand (or :data:`MAX_TOPUP_ROUNDS` rounds are spent)."""
    tasks = chunk_plan(claim_id, examples, seed, first_chunk)
    results = list(progress.round("chunks", mapper(run_chunk, tasks), len(tasks)))
    records, stats = merge_chunks(results)
    # top-up chunks live outside every range's regular ids, so split searches never share them
    next_chunk = TOPUP_BASE + int(first_chunk) * TOPUP_PER_RANGE
    for rnd in range(1, MAX_TOPUP_ROUNDS + 1):
        if len(records) >= examples:
            break
        # each hypothesis run tends to start from the same simplest example, so a top-up chunk
        # asks for a few more than missing; the union is cut to ``examples`` (deterministically)
        extra = chunk_plan(claim_id, 2 * (examples - len(records)) + 4, seed, next_chunk)
        next_chunk = extra[-1][2] + 1
        tasks += extra
        results += progress.round(f"top-up {rnd}", mapper(run_chunk, extra), len(extra))
        records, stats = merge_chunks(results)
    return _Collected(records[:examples], stats, tasks)


def _margin_order(r: dict) -> float:
    m = float(r["figures"]["margin"])
    return -m if math.isfinite(m) else -math.inf


def _instances(records: list[dict]) -> dict:
    """The per-instance table of a summary: digest prefix, outcome and tags of every distinct
    instance, in order (outcomes and tags as indices into ``outcome_names``/``tag_names``,
    tags as a bit mask), so that split searches merge exactly (:mod:`.merge`)."""
    outcome_names = sorted({r["outcome"] for r in records})
    tag_names = sorted({t for r in records for t in r.get("tags", [])})
    oi = {o: i for i, o in enumerate(outcome_names)}
    ti = {t: i for i, t in enumerate(tag_names)}
    return {
        "key": [str(r["key"])[:16] for r in records],
        "outcome": [oi[r["outcome"]] for r in records],
        "tags": [sum(1 << ti[t] for t in set(r.get("tags", []))) for r in records],
        "outcome_names": outcome_names,
        "tag_names": tag_names,
    }


def _summarise(prop: StressProperty, got: _Collected, examples: int, seed: int, first_chunk: int):
    """The summary of :func:`run_stress` before shrinking and saving."""
    records = got.records
    counts: dict[str, int] = {}
    coverage: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        for t in r.get("tags", []):
            coverage[t] = coverage.get(t, 0) + 1
    bad = [r for r in records if r["outcome"] in prop.bad]
    worst = sorted(
        (r for r in records if r["figures"].get("margin") is not None), key=_margin_order
    )
    return {
        "claim": prop.claim_id,
        "statement": prop.statement,
        "proxy": prop.proxy,
        "tolerances": dict(prop.tolerances),
        "seed": int(seed),
        "first_chunk": int(first_chunk),
        "chunk_size": CHUNK,
        "chunk_ranges": chunk_ranges(got.tasks),
        "requested": int(examples),
        "distinct": len(records),
        "draws": got.stats["draws"],
        "duplicates_dropped": got.stats["duplicates_dropped"],
        "chunks": got.stats["chunks"],
        "counts": dict(sorted(counts.items())),
        "failures": len(bad),
        "bad_outcomes": list(prop.bad),
        "coverage": dict(sorted(coverage.items())),
        "worst": [
            {
                "margin": r["figures"]["margin"],
                "outcome": r["outcome"],
                "params": r["params"],
                "spec": r["figures"].get("spec"),
            }
            for r in worst[:3]
        ],
        "counterexamples": [_cex(r) for r in bad[:MAX_SAVED]],
        "smallest": None,
        "saved": [],
        "save_errors": [],
        "warnings": got.stats["warnings"],
        # 1-based position of the first counterexample among the distinct instances (planted-bug tests)
        "first_failure_at": next(
            (i + 1 for i, r in enumerate(records) if r["outcome"] in prop.bad), None
        ),
        "instances": _instances(records),
    }


def _smallest(prop, first: dict, seed: int, got: _Collected, shrink_seconds, progress) -> dict:
    """The first counterexample, shrunk: its chunk rerun with the same seed (same draws) and
    hypothesis' shrink phase on."""
    if progress is not None:
        progress(f"{prop.claim_id}: shrinking the first counterexample (chunk {first['chunk']})")
    size = next(t[3] for t in got.tasks if t[2] == first["chunk"])
    found, evals = _search(
        prop, int(seed), int(first["chunk"]), size, shrink=True, shrink_seconds=shrink_seconds
    )
    smallest = found[2] if found is not None else first
    return {**_cex(smallest), "shrink_evaluations": evals, "shrunk": found is not None}


def _save_counterexamples(save_dir, prop, smallest: dict | None, bad: list[dict]):
    """Save the shrunk counterexample and the first :data:`MAX_SAVED` found (each instance
    once); returns ``(paths, errors)``: a failed save is reported, never raised."""
    todo = ([(smallest["_rec"], True)] if smallest else []) + [(r, False) for r in bad[:MAX_SAVED]]
    saved, errors, done = [], [], set()
    for r, is_shrunk in todo:
        if r["key"] in done:  # the shrunk example may be one of those found
            continue
        done.add(r["key"])
        try:
            saved.append(str(save_regression(save_dir, prop, r, shrunk=is_shrunk)))
        except Exception as exc:  # noqa: BLE001  (keep the results whatever happens to the folder)
            errors.append(f"{type(exc).__name__}: {exc}")
    return saved, errors


def run_stress(
    claim_id: str,
    *,
    examples: int,
    seed: int,
    map_chunks: Callable | None = None,
    progress: Callable[[str], None] | None = None,
    save_dir: str | os.PathLike | None = None,
    shrink: bool = True,
    shrink_seconds: float = SHRINK_SECONDS,
    first_chunk: int = 0,
) -> dict:
    r"""Search ``examples`` distinct instances for counterexamples to ``claim_id``'s property.

    ``map_chunks(run_chunk, tasks)`` evaluates the chunk tasks and returns (or yields) their
    results in any order (default: in this process, in order); the merged result is the same
    whatever map is used. ``first_chunk`` selects a seed range: chunks ``first_chunk,
    first_chunk + 1, ...`` (so disjoint ranges are disjoint, mergeable searches:
    :mod:`.merge`). Counterexamples are saved to ``save_dir`` (None: not saved).

    Returns the summary (JSON-able): ``claim``, ``statement``, ``proxy``, ``tolerances``,
    ``seed``, ``first_chunk``, ``chunk_size``, ``chunk_ranges`` (the chunk ids run, as
    ``[seed, start, stop)``, top-ups included), ``requested``, ``distinct`` (instances
    evaluated), ``draws``, ``duplicates_dropped``, ``chunks``, ``counts`` per outcome,
    ``failures``, ``bad_outcomes``, ``coverage`` (tag -> count), ``worst`` (the three largest
    margins), ``counterexamples`` (first :data:`MAX_SAVED`), ``smallest`` (the shrunk
    counterexample), ``saved``, ``save_errors``, ``warnings`` (message -> count, over the
    chunks), ``first_failure_at``, ``instances`` (per distinct instance: digest prefix,
    outcome, tags; see :func:`_instances`), ``seconds`` (wall) and ``cpu_seconds`` (of the
    chunks, summed over workers).

    >>> s = run_stress("L7", examples=3, seed=0)
    >>> s["distinct"], s["failures"], s["chunk_ranges"]
    (3, 0, [[0, 0, 1]])
    """
    prop = _check_search(claim_id, examples, seed, first_chunk)
    t0 = time.perf_counter()
    got = _collect(
        claim_id,
        examples,
        seed,
        first_chunk,
        map_chunks or _default_map,
        _Progress(claim_id, progress, t0),
    )
    summary = _summarise(prop, got, examples, seed, first_chunk)
    bad = [r for r in got.records if r["outcome"] in prop.bad]
    if bad:
        summary["smallest"] = (
            _smallest(prop, bad[0], seed, got, shrink_seconds, progress)
            if shrink
            else {**_cex(bad[0]), "shrink_evaluations": 0, "shrunk": False}
        )
    if save_dir is not None and bad:
        summary["saved"], summary["save_errors"] = _save_counterexamples(
            save_dir, prop, summary["smallest"], bad
        )
    for c in [summary["smallest"], *summary["counterexamples"]]:
        if c is not None:
            c.pop("_rec", None)
    summary["seconds"] = time.perf_counter() - t0
    summary["cpu_seconds"] = got.stats["cpu_seconds"]
    return _jsonable(summary)


def _cex(r: dict) -> dict:
    return {
        "outcome": r["outcome"],
        "params": r.get("params"),
        "figures": r.get("figures"),
        "key": r["key"],
        "error": r.get("error"),
        "_rec": r,
    }
