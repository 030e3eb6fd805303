r"""Running a :class:`~proofs_check.sweep.grid.Sweep`: in this process, on a local Dask
cluster (the default) or on an existing Dask cluster (``scheduler="tcp://host:8786"``).

Every point runs through :func:`execute_point`, on whichever process: it limits BLAS to one
thread (threadpoolctl; workers then do not oversubscribe cores, and a point's floating-point
result does not depend on how many BLAS threads its machine would otherwise use), calls the
point function with the seed derived from the parameters, and turns an exception into a
``"failed"`` record with the error, so one bad point never stops the sweep. Records are written
by the driver as each point finishes, so an interrupted sweep loses only the points in flight
and ``resume=True`` picks up the rest.

>>> import tempfile
>>> from proofs_check.sweep.grid import Grid, Sweep
>>> from proofs_check.sweep.demo import square_point
>>> s = Sweep("doc", fn=square_point, grids={"quick": [Grid({"x": (1, 2, 3)})], "full": []})
>>> out = run_sweep(s, profile="quick", out=tempfile.mkdtemp(), workers=0, progress=False)
>>> [r["y"] for r in out.rows], out.computed, out.failed
([1.0, 4.0, 9.0], 3, 0)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .grid import Sweep, point_key, point_seed
from .progress import Progress
from .store import ResultStore, StoreError, flat_row

__all__ = [
    "ClusterError",
    "Pool",
    "SweepOutcome",
    "check_scheduler_address",
    "close_client",
    "default_workers",
    "execute_point",
    "local_client",
    "package_version",
    "run_sweep",
]


class ClusterError(Exception):
    """The Dask cluster could not be started or reached (an environment error, exit 3)."""


def default_workers() -> int:
    """Workers of the default local cluster: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def package_version() -> str:
    try:
        import proofs_check

        v = getattr(proofs_check, "__version__", None)
        if v:
            return str(v)
    except ImportError:  # pragma: no cover
        pass
    from importlib import metadata

    try:
        return metadata.version("gla-verify")
    except metadata.PackageNotFoundError:
        return "unknown"


_BLAS_LIMITED = False


def _limit_blas() -> None:
    """One BLAS/OpenMP thread in this (worker) process, for good: threadpoolctl's global limit,
    set once. In-process (serial) runs use a scoped limit instead (:meth:`Pool.imap_unordered`),
    so the caller's process gets its threads back."""
    global _BLAS_LIMITED
    if not _BLAS_LIMITED:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
        _BLAS_LIMITED = True


def execute_point(
    fn: Callable[[dict, int], dict],
    sweep_name: str,
    key: str,
    params: dict,
    seed: int,
    version: str,
) -> dict:
    """Run one point and return its record (never raises for an error of the point function).
    The caller limits BLAS threads (:class:`Pool` does)."""
    t0 = time.perf_counter()
    try:
        result = fn(dict(params), seed)
        if not isinstance(result, dict):
            raise TypeError(f"point function returned {type(result).__name__}, expected a dict")
        result = _plain(result)
        status, error, tb_text = "ok", None, None
    except Exception as exc:  # noqa: BLE001 - a failed point is data, not a crash
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        result, status, error = None, "failed", f"{type(exc).__name__}: {exc}{where}"
        tb_text = "".join(traceback.format_exception(exc)[-30:])
    rec = {
        "key": key,
        "sweep": sweep_name,
        "status": status,
        "error": error,
        "seed": seed,
        "version": version,
        "seconds": round(time.perf_counter() - t0, 6),
        "params": params,
        "result": result,
    }
    if tb_text is not None:
        rec["traceback"] = tb_text  # in the point's record only, not in the table
    return rec


def _plain(v):
    """NumPy scalars/arrays -> Python floats/ints/lists, so records are plain JSON."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "tolist"):
        return _plain(v.tolist())
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    raise TypeError(f"point result holds a {type(v).__name__}; use numbers, strings, lists")


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: ``rows`` (one per grid point, grid order), ``computed``
    (points run now), ``cached`` (points found in the store), ``failed`` (failed rows),
    ``summary`` (the study's summary or None), ``seconds`` (wall time), ``out``, ``backend``,
    ``exported`` (files written by the sweep's ``export``, in ``out``)."""

    rows: list
    computed: int
    cached: int
    failed: int
    summary: dict | None
    seconds: float
    out: str
    backend: str
    exported: list = field(default_factory=list)


_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")


def check_scheduler_address(address: str) -> str:
    """``tcp://host:port`` (or ``host:port``, read as tcp); ValueError naming ``--scheduler``."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError("--scheduler: expected an address such as tcp://host:8786")
    a = address.strip()
    if "://" not in a:
        a = "tcp://" + a
    scheme, rest = a.split("://", 1)
    if scheme not in _SCHEMES:
        raise ValueError(
            f"--scheduler: unknown protocol {scheme!r} in {address!r}; use one of {_SCHEMES}"
        )
    if scheme != "inproc":
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--scheduler: expected PROTOCOL://HOST:PORT, got {address!r}")
    return a


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT (Ctrl-C) in this process for the duration of the block.

    Why: a ``KeyboardInterrupt`` inside ``LocalCluster(...)`` leaves a half-built cluster whose
    teardown at exit prints Dask tracebacks, and a terminal's Ctrl-C also reaches the worker
    processes (same process group), which print tracebacks of their own. An ignored signal is
    inherited by the processes started meanwhile and Python keeps ignoring it there, so the
    workers never see Ctrl-C: the parent handles it and stops them with :func:`close_client`.
    The cost: a Ctrl-C during the few seconds of start-up is dropped. Only the main thread may
    set handlers, so elsewhere this does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def local_client(workers: int) -> tuple[Any, Any]:
    """A ``distributed.Client`` on a new local cluster of ``workers`` single-threaded worker
    processes (random ports), and the cluster; close both with :func:`close_client`.

    Ctrl-C is ignored while the cluster starts (a few seconds) and never reaches the workers;
    after start-up it interrupts this process, which closes the cluster."""
    with _sigint_ignored():
        return _start_local_cluster(workers)


def _worker_heap_env() -> contextlib.AbstractContextManager[Any]:
    """The environment of the local cluster's workers keeps freed memory as this process does
    (:mod:`numerics._heap`). Dask's own default for its workers,
    ``MALLOC_TRIM_THRESHOLD_=65536``, returns every freed block above 64 KB to the system, so
    each new temporary of a point faults in fresh pages. Left as it is where the user tunes
    the allocator in the environment."""
    import dask

    from numerics._heap import MALLOC_ENV, user_tuned

    if user_tuned():
        return contextlib.nullcontext()
    key = "distributed.nanny.pre-spawn-environ"
    return dask.config.set({key: {**dask.config.get(key, {}), **MALLOC_ENV}})


def _start_local_cluster(workers: int) -> tuple[Any, Any]:
    import logging

    from distributed import Client, LocalCluster

    try:
        # dashboard_address=":0": a random port (the default 8787 clashes between concurrent runs).
        # silence_logs: worker errors reach us through their futures; what the workers log
        # themselves at teardown (heartbeats to a scheduler already gone) is noise.
        with _worker_heap_env():
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.CRITICAL,
                scheduler_port=0,
            )
        client = Client(cluster, set_as_default=False)
    except Exception as exc:  # noqa: BLE001
        raise ClusterError(
            f"cannot start a local Dask cluster with {workers} workers: {exc}"
        ) from None
    return client, cluster


def close_client(pair: tuple[Any, Any]) -> None:
    """Close a ``(client, cluster)`` pair from :func:`local_client` quietly."""
    _close(*pair)


def _remote_client(address: str, timeout: float = 15.0):
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False), None
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, CommClosedError, ...
        raise ClusterError(
            f"--scheduler: cannot connect to {address}: {type(exc).__name__}: {exc}"
        ) from None


def _call(fn, args):
    """Run ``fn(*args)`` on a Dask worker with one BLAS thread."""
    _limit_blas()
    return fn(*args)


class Pool:
    """Where independent pieces of work run: this process (``workers=0``), a new local Dask
    cluster of ``workers`` single-threaded processes (default :func:`default_workers`), an
    existing cluster (``scheduler="tcp://host:8786"``) or a given ``distributed.Client``.

    Arguments are checked at construction (ValueError naming the option); the cluster starts
    on :meth:`start` (or entering the ``with`` block) and stops on :meth:`close`; a given
    client is left open. Every call runs with one BLAS thread.

    >>> with Pool(workers=0) as pool:
    ...     pool.map(pow, [(2, 3), (3, 2)])
    [8, 9]
    """

    def __init__(
        self, *, workers: int | None = None, scheduler: str | None = None, client: Any = None
    ) -> None:
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 0
        ):
            raise ValueError(f"--workers: must be an integer >= 0, got {workers!r}")
        if scheduler is not None and (workers is not None or client is not None):
            raise ValueError("--workers and --scheduler are mutually exclusive")
        self.scheduler = None if scheduler is None else check_scheduler_address(scheduler)
        self.workers = workers
        self.client = client
        self._own: tuple[Any, Any] | None = None
        if client is not None:
            self.backend = "client"
        elif self.scheduler is not None:
            self.backend = f"scheduler {self.scheduler}"
        elif workers == 0:
            self.backend = "serial"
        else:
            n = workers or default_workers()
            self.backend = f"local cluster, {n} worker{'' if n == 1 else 's'}"

    @property
    def serial(self) -> bool:
        return self.backend == "serial"

    def start(self) -> Pool:
        if self.serial or self.client is not None:
            return self
        if self.scheduler is not None:
            self._own = _remote_client(self.scheduler)
        else:
            self._own = local_client(self.workers or default_workers())
        self.client = self._own[0] if self._own is not None else None
        return self

    def close(self) -> None:
        if self._own is not None:
            _close(*self._own)
            self._own, self.client = None, None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def imap_unordered(
        self,
        fn: Callable[..., Any],
        arglist: Iterable[Sequence[Any]],
        *,
        names: Sequence[str] | None = None,
    ) -> Iterator[tuple[int, bool, Any]]:
        """Yield ``(index, ok, value)`` as calls ``fn(*arglist[i])`` finish, in completion order;
        ``ok`` False means ``value`` is the exception. Unfinished calls are cancelled if the
        consumer stops early (or on ^C). ``names``: optional Dask keys, one per call."""
        arglist = [tuple(a) for a in arglist]
        if self.serial:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1):
                for i, a in enumerate(arglist):
                    try:
                        yield i, True, fn(*a)
                    except Exception as exc:  # noqa: BLE001
                        yield i, False, exc
            return
        if self.client is None:
            self.start()
        from distributed import as_completed

        client = self.client
        futures = {}
        for i, a in enumerate(arglist):
            kw = {"key": names[i]} if names is not None else {}
            futures[client.submit(_call, fn, a, pure=False, retries=0, **kw)] = i
        try:
            for f in as_completed(list(futures), loop=client.loop):
                i = futures.pop(f)
                try:
                    yield i, True, f.result()
                except Exception as exc:  # noqa: BLE001 - a worker died, or fn raised
                    yield i, False, exc
        finally:
            if futures:
                client.cancel(list(futures), force=True)

    def map(
        self,
        fn: Callable[..., Any],
        arglist: Iterable[Sequence[Any]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list:
        """``[fn(*a) for a in arglist]`` on the pool, in order. The first exception is raised
        when it arrives (the remaining calls are cancelled). ``progress(done, total)`` after
        each call."""
        arglist = list(arglist)
        out = [None] * len(arglist)
        for n, (i, ok, v) in enumerate(self.imap_unordered(fn, arglist), start=1):
            if not ok:
                raise v
            out[i] = v
            if progress is not None:
                progress(n, len(arglist))
        return out


def run_sweep(
    sweep: Sweep,
    *,
    profile: str = "quick",
    out: str | os.PathLike,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    pool: Pool | None = None,
    progress: bool | Progress = True,
    argv: list[str] | None = None,
) -> SweepOutcome:
    """Run every point of ``sweep``'s ``profile`` grid that the store in ``out`` does not hold.

    Backends: ``pool`` (a :class:`Pool`, left open), else ``client`` (an existing
    ``distributed.Client``, left open), else ``scheduler`` (address of an existing cluster),
    else ``workers == 0`` (this process, no Dask), else a local cluster of ``workers`` (default
    :func:`default_workers`) processes, started after the store is opened and closed at the end.
    ``resume``: use a directory that already holds results of this sweep; points whose record
    says ``"ok"`` are skipped, failed points run again. Raises :class:`StoreError` (unusable
    ``out``), :class:`ClusterError` (cluster not reachable) or ``ValueError`` (bad arguments)
    before any point runs; ``KeyboardInterrupt`` propagates after the finished points are stored.

    Steps: choose the backend, plan (which points the store lacks), open the store, compute
    the pending points (each record stored as it arrives), then tables, summary and export.
    """
    t_start = time.perf_counter()
    pool, own_pool = _choose_pool(pool, workers, scheduler, client)
    plan = _plan(sweep, profile, out, resume)
    # before any cluster starts: an unwritable --out fails fast
    plan.store.open(_manifest(sweep, profile, plan, pool.backend, argv))
    bar = (
        progress
        if isinstance(progress, Progress)
        else Progress(len(plan.keys), enabled=bool(progress), label=sweep.name)
    )
    bar.start(cached=plan.cached)
    records = dict(plan.stored)
    try:
        _compute(pool, sweep, plan, records, bar)
    finally:
        if own_pool:
            pool.close()
    bar.close()
    rows, summary, failed, exported = _finish(sweep, profile, plan, records)
    return SweepOutcome(
        rows=rows,
        computed=len(plan.pending),
        cached=plan.cached,
        failed=failed,
        summary=summary,
        seconds=time.perf_counter() - t_start,
        out=str(out),
        backend=pool.backend if plan.pending else "the store (nothing to compute)",
        exported=exported,
    )


@dataclass
class _Plan:
    """What a run has to do: every point's key (grid order), the stored records, the pending
    ``(key, params)`` pairs, the store and the package version stamped on new records."""

    keys: list[str]
    stored: dict[str, dict]
    pending: list[tuple[str, dict]]
    store: ResultStore
    version: str

    @property
    def cached(self) -> int:
        return len(self.keys) - len(self.pending)


def _choose_pool(pool: Pool | None, workers, scheduler, client) -> tuple[Pool, bool]:
    """The pool to run on, and whether this run owns it (and closes it at the end)."""
    if pool is None:
        return Pool(workers=workers, scheduler=scheduler, client=client), True
    if workers is not None or scheduler is not None or client is not None:
        raise ValueError("run_sweep: give pool, or workers/scheduler/client, not both")
    return pool, False


def _plan(sweep: Sweep, profile: str, out, resume: bool) -> _Plan:
    """Check the store (StoreError before any work) and find the points it lacks; a stored
    record counts only if its status is ``"ok"`` (failed points run again)."""
    points = sweep.points(profile)
    keys = [point_key(sweep, p) for p in points]
    store = ResultStore(out, sweep.name)
    store.check(resume=resume)
    stored = store.load(keys) if resume else {}
    done = {k for k, r in stored.items() if r.get("status") == "ok"}
    pending = [(k, p) for k, p in zip(keys, points) if k not in done]
    return _Plan(keys, stored, pending, store, package_version())


def _manifest(sweep: Sweep, profile: str, plan: _Plan, backend: str, argv) -> dict:
    return {
        "sweep": sweep.name,
        "profile": profile,
        "points": len(plan.keys),
        "sweep_version": sweep.version,
        "version": plan.version,
        "backend": backend,
        "command": argv,
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _compute(pool: Pool, sweep: Sweep, plan: _Plan, records: dict, bar: Progress) -> None:
    """Run the pending points on ``pool``; store each record as it arrives (so an interrupted
    run keeps every finished point) and add it to ``records``."""
    if not plan.pending:
        return
    args = [
        (sweep.fn, sweep.name, k, p, point_seed(sweep, p), plan.version) for k, p in plan.pending
    ]
    names = None if pool.serial else [f"sweep-{sweep.name}-{k}" for k, _ in plan.pending]
    for i, ok, rec in pool.imap_unordered(execute_point, args, names=names):
        if not ok:
            rec = _dask_failure(sweep, plan, i, rec)
        plan.store.write(rec)
        records[rec["key"]] = rec
        bar.update(failed=rec["status"] != "ok")


def _dask_failure(sweep: Sweep, plan: _Plan, i: int, exc: BaseException) -> dict:
    """The record of pending point ``i`` whose task Dask could not run (a worker died, the
    task could not be unpickled): not an error of the point function, but stored the same way."""
    k, p = plan.pending[i]
    return {
        "key": k,
        "sweep": sweep.name,
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc} (raised by Dask, not by the point function)",
        "seed": point_seed(sweep, p),
        "version": plan.version,
        "seconds": None,
        "params": p,
        "result": None,
    }


def _finish(
    sweep: Sweep, profile: str, plan: _Plan, records: dict
) -> tuple[list[dict], dict | None, int, list[str]]:
    """Rows in grid order, the study's summary (over the ok rows), the tables; the export runs
    only when every point is ok. Returns ``(rows, summary, failed, exported)``."""
    rows = [flat_row(records[k]) for k in plan.keys]
    summary = None
    if sweep.summarize is not None:
        ok_rows = [r for r in rows if r["status"] == "ok"]
        summary = sweep.summarize(ok_rows, profile) if ok_rows else None
    plan.store.write_tables(rows, summary)
    failed = sum(r["status"] != "ok" for r in rows)
    exported: list[str] = []
    if sweep.export is not None and not failed:
        try:
            exported = list(sweep.export(rows, plan.store.out))
        except OSError as exc:
            raise StoreError(
                f"cannot write the exported files to {plan.store.out}: {exc}", usage=False
            ) from None
    return rows, summary, failed, exported


def _close(client, cluster) -> None:
    # Closing prints nothing useful; errors during teardown of a cluster we started (a worker
    # already gone after ^C) must not hide the sweep's own outcome.
    import logging

    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for obj in (client, cluster):
        if obj is not None:
            with contextlib.suppress(Exception):
                obj.close()
