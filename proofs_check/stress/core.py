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
same merged result as one process. Instances are identified by a digest of the built
instance (arrays by their bytes): duplicates within a chunk are skipped before evaluation,
duplicates across chunks are dropped at the merge, and if the union falls short of ``N``,
top-up chunks (ids in a block of their own per range, :data:`TOPUP_BASE`) are run until it does.
"Examples" always means *distinct instances evaluated*.

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
import time
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
    "SHRINK_SECONDS",
    "StressProperty",
    "chunk_plan",
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


class _Counterexample(Exception):
    pass


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
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed as hseed, settings, target

    seen: dict[str, dict] = {}
    order: list[str] = []
    draws = [0]
    state = {"failing": None, "shrink_evals": 0, "t_fail": None}
    cache: dict[str, dict] = {}

    phases = [Phase.generate, Phase.target] + ([Phase.shrink] if shrink else [])

    cseed = _chunk_seed(seed, prop.claim_id, chunk)

    @hseed(cseed)
    @settings(
        max_examples=int(size) * MAX_DRAWS_FACTOR,
        database=None,
        deadline=None,
        derandomize=False,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )
    @given(prop.strategy())
    def test(p):
        p = _chunk_params(p, cseed)
        if state["failing"] is None:
            # the draws of the plain search, replayed identically until the first failure
            if len(order) >= size:
                return
            draws[0] += 1
            inst, key = _build(prop, p)
            if key in seen:
                return
            rec = (
                _build_error_record(inst)
                if isinstance(inst, Exception)
                else _evaluate(prop, inst, key)
            )
            rec["params"] = p
            rec["key"] = key
            seen[key] = rec
            order.append(key)
            target(_target_value(rec), label="log10 margin")
            if shrink and prop.is_bad(rec):
                state["failing"] = (p, key, rec)
                state["t_fail"] = time.perf_counter()
                raise _Counterexample(key)
            return
        # shrink phase: every candidate is evaluated (cached by instance)
        if time.perf_counter() - state["t_fail"] > shrink_seconds:
            return
        inst, key = _build(prop, p)
        if key not in cache:
            state["shrink_evals"] += 1
            cache[key] = (
                _build_error_record(inst)
                if isinstance(inst, Exception)
                else _evaluate(prop, inst, key)
            )
        rec = cache[key]
        if prop.is_bad(rec):
            if _smaller(p, key, state["failing"]):
                state["failing"] = (p, key, {**rec, "params": p, "key": key})
            raise _Counterexample(key)

    try:
        with _hypothesis_home(), _one_blas_thread():
            test()
    except _Counterexample:
        pass
    except Exception as exc:  # hypothesis' own errors (e.g. Unsatisfiable)
        if not shrink:
            raise RuntimeError(
                f"{prop.claim_id} chunk {chunk}: hypothesis failed: {type(exc).__name__}: {exc}"
            ) from exc
    if shrink:
        return state["failing"], state["shrink_evals"]
    return [seen[k] for k in order], draws[0]


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


# ----------------------------------------------------------------------------- chunks
def run_chunk(task: tuple) -> dict:
    """Evaluate one chunk: ``task = (claim_id, seed, chunk, size)`` (plain data, so it can be
    shipped to a worker process or a Dask cluster). Returns ``{"claim", "seed", "chunk",
    "size", "draws", "records", "seconds"}``; each record has ``key``, ``params``,
    ``outcome``, ``figures``, ``tags``, ``seconds``."""
    props = load_properties()  # registers every property in a fresh worker
    claim_id, seed, chunk, size = task
    t0, c0 = time.perf_counter(), time.process_time()
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


def merge_chunks(results: Iterable[dict]) -> tuple[list[dict], dict]:
    """Union of chunk results in chunk order, duplicates (same instance digest) dropped.
    Returns ``(records, stats)`` with stats ``chunks``, ``draws``, ``duplicates_dropped``,
    ``cpu_seconds`` (CPU time of the chunks, summed over workers)."""
    res = sorted(results, key=lambda r: r["chunk"])
    seen, out, dup, draws, cpu = set(), [], 0, 0, 0.0
    for r in res:
        draws += r["draws"]
        cpu += r.get("cpu_seconds", r["seconds"])
        for rec in r["records"]:
            if rec["key"] in seen:
                dup += 1
                continue
            seen.add(rec["key"])
            rec = dict(rec)
            rec["chunk"] = r["chunk"]
            out.append(rec)
    return out, {"chunks": len(res), "draws": draws, "duplicates_dropped": dup, "cpu_seconds": cpu}


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
    path = (
        folder
        / f"{prop.claim_id}_{str(rec['key'])[-12:] if rec['key'].startswith('build') else rec['key'][:12]}.json"
    )
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
    return [fn(t) for t in tasks]


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

    ``map_chunks(run_chunk, tasks) -> results`` evaluates the chunk tasks (default: in this
    process, in order; any parallel map gives the same merged result). ``first_chunk``
    selects a seed range: chunks ``first_chunk, first_chunk + 1, ...`` (so disjoint ranges
    are disjoint, mergeable searches). Counterexamples are saved to ``save_dir`` (None: not
    saved). Returns the summary (JSON-able): ``claim``, ``statement``, ``proxy``,
    ``tolerances``, ``requested``, ``distinct`` (instances evaluated), ``draws``,
    ``duplicates_dropped``, ``counts`` per outcome, ``failures``, ``bad_outcomes``,
    ``counterexamples`` (first :data:`MAX_SAVED`), ``smallest`` (the shrunk counterexample),
    ``coverage`` (tag -> count), ``worst`` (largest margins), ``saved``, ``save_errors``,
    ``seconds``, ``cpu_seconds``, ``chunks``, ``instance_keys`` (digest prefixes, in order).
    """
    if claim_id not in load_properties():
        raise KeyError(
            f"no stress property for claim {claim_id!r}; available: {', '.join(PROPERTIES)}"
        )
    if isinstance(examples, bool) or int(examples) != examples or not 1 <= examples <= MAX_EXAMPLES:
        raise ValueError(f"examples: must be an integer in [1, {MAX_EXAMPLES}], got {examples!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    prop = PROPERTIES[claim_id]
    mapper = map_chunks or _default_map
    t0 = time.perf_counter()
    tasks = chunk_plan(claim_id, examples, seed, first_chunk)
    results = []
    done = [0]

    def note(rs):
        for r in rs:
            done[0] += len(r["records"])
        if progress is not None:
            progress(f"{claim_id}: {done[0]} instances, {time.perf_counter() - t0:.1f}s")

    # in slices, so long searches show progress even with the in-process map
    step = max(1, min(len(tasks), 8))
    for i in range(0, len(tasks), step):
        rs = list(mapper(run_chunk, tasks[i : i + step]))
        results += rs
        note(rs)
    records, stats = merge_chunks(results)
    # top-up chunks live outside every range's regular ids, so split searches never share them
    next_chunk = TOPUP_BASE + int(first_chunk) * TOPUP_PER_RANGE
    rounds = 0
    while (
        len(records) < examples and rounds < MAX_TOPUP_ROUNDS
    ):  # top up duplicates dropped across chunks
        rounds += 1
        # each hypothesis run tends to start from the same simplest example, so a top-up chunk
        # asks for a few more than missing; the union is cut to ``examples`` (deterministically)
        extra = chunk_plan(claim_id, 2 * (examples - len(records)) + 4, seed, next_chunk)
        next_chunk = extra[-1][2] + 1
        rs = list(mapper(run_chunk, extra))
        results += rs
        note(rs)
        records, stats = merge_chunks(results)
    records = records[:examples]

    counts: dict[str, int] = {}
    coverage: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        for t in r.get("tags", []):
            coverage[t] = coverage.get(t, 0) + 1
    bad = [r for r in records if r["outcome"] in prop.bad]
    worst = sorted(
        (r for r in records if r["figures"].get("margin") is not None),
        key=lambda r: (
            -float(r["figures"]["margin"])
            if math.isfinite(float(r["figures"]["margin"]))
            else -math.inf
        ),
    )[:3]
    summary: dict[str, Any] = {
        "claim": claim_id,
        "statement": prop.statement,
        "proxy": prop.proxy,
        "tolerances": dict(prop.tolerances),
        "seed": int(seed),
        "first_chunk": int(first_chunk),
        "requested": int(examples),
        "distinct": len(records),
        "draws": stats["draws"],
        "duplicates_dropped": stats["duplicates_dropped"],
        "chunks": stats["chunks"],
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
            for r in worst
        ],
        "counterexamples": [_cex(r) for r in bad[:MAX_SAVED]],
        "smallest": None,
        "saved": [],
        "save_errors": [],
        # 1-based position of the first counterexample among the distinct instances (planted-bug tests)
        "first_failure_at": next(
            (i + 1 for i, r in enumerate(records) if r["outcome"] in prop.bad), None
        ),
        # the instances' digests (16 hex digits): split searches are merged and checked for overlap with these
        "instance_keys": [str(r["key"])[:16] for r in records],
    }
    if bad and shrink:
        first = bad[0]
        if progress is not None:
            progress(f"{claim_id}: shrinking the first counterexample (chunk {first['chunk']})")
        size = (
            next(
                t[3]
                for t in tasks + chunk_plan(claim_id, examples, seed, 0)
                if t[2] == first["chunk"]
            )
            if any(t[2] == first["chunk"] for t in tasks)
            else CHUNK
        )
        found, evals = _search(
            prop, int(seed), int(first["chunk"]), size, shrink=True, shrink_seconds=shrink_seconds
        )
        smallest = found[2] if found is not None else first
        summary["smallest"] = {
            **_cex(smallest),
            "shrink_evaluations": evals,
            "shrunk": found is not None,
        }
    elif bad:
        summary["smallest"] = {**_cex(bad[0]), "shrink_evaluations": 0, "shrunk": False}
    if save_dir is not None and bad:
        todo = ([(summary["smallest"]["_rec"], True)] if summary["smallest"] else []) + [
            (r, False) for r in bad[:MAX_SAVED]
        ]
        done_keys: set = set()
        for r, is_shrunk in todo:
            if r["key"] in done_keys:  # the shrunk example may be one of those found
                continue
            done_keys.add(r["key"])
            try:
                summary["saved"].append(str(save_regression(save_dir, prop, r, shrunk=is_shrunk)))
            except Exception as exc:  # noqa: BLE001  (keep the results whatever happens to the folder)
                summary["save_errors"].append(f"{type(exc).__name__}: {exc}")
    if summary["smallest"] is not None:
        summary["smallest"].pop("_rec", None)
    for c in summary["counterexamples"]:
        c.pop("_rec", None)
    summary["seconds"] = time.perf_counter() - t0
    summary["cpu_seconds"] = stats["cpu_seconds"]
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
