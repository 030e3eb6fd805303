r"""Claims side by side on worker processes forked from this one: the default pool of
``gla-verify run`` (:class:`ForkPool`).

Why forked processes and not a local Dask cluster: a forked worker starts with everything the
driver has imported (SymPy, SciPy, every claim module), so it costs no start-up time, where a
Dask worker imports the stack again and on two cores this ate the gain of the second core.

How the work flows. The driver puts one task per claim on the *claim queue*; each worker takes a
claim, runs it and sends back its evidence. A claim's independent pieces
(:meth:`~proofs_check.registry.Context.map`, the G5 and G6 training runs) go on the *piece
queue*; idle workers take pieces before claims, and the worker whose claim waits for its pieces
runs pieces too (its own or another claim's) instead of sleeping, and when no piece is queued
(its last ones run elsewhere) a claim that has not started, so no worker idles while there is
work. Work several claims share (:func:`~proofs_check.registry.shared_work`) runs
first, once, and the claims that use it are queued when it is done
(:func:`proofs_check.api.run` queues the claims costliest first).

Every task runs with one BLAS thread and every check draws its randomness from the seed and its
own name, so the report does not depend on the number of workers (tests/test_run_parallel.py).
Workers ignore SIGINT: a Ctrl-C reaches the driver, which stops the workers and lets the
``KeyboardInterrupt`` through (exit 130); a worker that dies is a :class:`ClusterError`; a
driver killed outright takes its workers with it within :data:`_DRIVER_CHECK` seconds.

>>> with ForkPool(workers=2) as pool:
...     pool.run_tasks([(pow, (2, 3)), (pow, (3, 2))])
[8, 9]
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.reduction import ForkingPickler
from typing import Any

from .engine import ClusterError

__all__ = ["ForkPool", "fork_available"]

#: How long a waiting process blocks on one queue before it looks at the other one (seconds):
#: short against a piece (tens of milliseconds at least), long against a queue poll (~10 us).
_POLL = 0.02

#: The pool and the index of this worker process (set in a forked worker, None in the driver).
_WORKER: tuple[ForkPool, int] | None = None

#: Results that reached this worker's inbox while a nested wait (a claim run while its own
#: claim waited) was reading it, kept for the wait they belong to: task id -> message.
_STASH: dict[str, tuple] = {}


def fork_available() -> bool:
    """Whether this platform can fork worker processes (Linux and most Unixes)."""
    return "fork" in mp.get_all_start_methods()


class _TaskError(Exception):
    """An exception a task raised that could not be sent back as itself (not picklable)."""


class ForkPool:
    """``workers`` (>= 1) processes forked from this one when the pool starts (:meth:`start` or
    the ``with`` block) and stopped by :meth:`close`. Start it after the imports the tasks need
    (the workers then have them for free). ``run_tasks`` runs a list of ``(fn, args)`` on the
    workers; inside a task, :meth:`~proofs_check.registry.Context.map` with :func:`pieces` as
    its pool spreads further pieces over the same workers.

    Raises ``ValueError`` naming ``--workers`` for a bad count and :class:`ClusterError` where
    processes cannot be forked."""

    serial = False

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"--workers: must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self.backend = f"{workers} forked worker processes"
        self._procs: list[Any] = []
        self._ids = itertools.count()

    # ------------------------------------------------------------------ life cycle
    def start(self) -> ForkPool:
        if self._procs:
            return self
        if not fork_available():
            raise ClusterError("cannot fork worker processes on this platform; use --workers 0")
        # Imported here, in the driver, before any fork: a missing package is then one clear
        # error instead of every worker dying at its first line (exit code 1, no reason given).
        import threadpoolctl  # noqa: F401

        ctx = mp.get_context("fork")
        self.claims: Any = ctx.Queue()
        self.pieces: Any = ctx.Queue()
        # inbox 0 is the driver's, inbox i the worker i's: results go to whoever asked
        self.inboxes: list[Any] = [ctx.Queue() for _ in range(self.workers + 1)]
        self._driver = os.getpid()  # the process that forks the workers (they watch it)
        self._procs = [
            ctx.Process(target=_worker_main, args=(self, i), daemon=True, name=f"gla-worker-{i}")
            for i in range(1, self.workers + 1)
        ]
        # SIGINT blocked while forking: a Ctrl-C to the process group (a terminal's) right then
        # waits until a new worker ignores it. The mask is this thread's only: the kernel may
        # hand the signal to another thread (OpenBLAS's), and Python would then raise
        # KeyboardInterrupt here anyway, possibly between a fork and the registration of its
        # process, leaving a worker nobody stops (it kept the caller's pipes open: a hang). So
        # a Ctrl-C meanwhile is only noted, and raised once every worker is started.
        interrupted: list[bool] = []
        main = threading.current_thread() is threading.main_thread()
        handler = (
            signal.signal(signal.SIGINT, lambda *_: interrupted.append(True)) if main else None
        )
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for p in self._procs:
                p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            if main:
                signal.signal(signal.SIGINT, handler)
        if interrupted:
            self.close()
            raise KeyboardInterrupt
        return self

    def close(self) -> None:
        """Stop the workers (those still running a task are terminated)."""
        for p in self._procs:
            if p.is_alive():
                p.terminate()
        for p in self._procs:
            p.join(timeout=5)
        self._procs = []

    def __enter__(self) -> ForkPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        raise TypeError("a ForkPool is not sent to other processes (forked workers inherit it)")

    # ------------------------------------------------------------------ the driver
    def submit(self, fn: Callable[..., Any], args: tuple, *, piece: bool = False) -> int:
        """Queue ``fn(*args)`` on the piece queue (``piece``) or on the claim queue; its
        result comes back to the driver's inbox (:meth:`results`). Returns the task's id."""
        self.start()
        tid = next(self._ids)
        q = self.pieces if piece else self.claims
        q.put((tid, 0, fn, tuple(args)))
        return tid

    def results(
        self, count: int, on_progress: Callable[[str], None] | None = None
    ) -> Iterator[tuple[Any, bool, Any]]:
        """Yield ``(task id, ok, value)`` for ``count`` results as they arrive at the driver
        (``ok`` False: ``value`` is the exception); progress messages of the tasks go to
        ``on_progress``. A worker that died is a :class:`ClusterError`."""
        got = 0
        while got < count:
            try:
                msg = self.inboxes[0].get(timeout=0.5)
            except queue.Empty:
                self._check_alive()
                continue
            if msg[0] == "progress":
                if on_progress is not None:
                    on_progress(msg[1])
                continue
            got += 1
            yield msg[1], msg[2], msg[3]

    def run_tasks(
        self, tasks: Iterable[tuple[Callable[..., Any], tuple]], *, piece: bool = False
    ) -> list:
        """``[fn(*args) for fn, args in tasks]`` on the workers, in order; the first exception
        is raised when it arrives."""
        ids = [self.submit(fn, args, piece=piece) for fn, args in tasks]
        where = {tid: i for i, tid in enumerate(ids)}
        out: list = [None] * len(ids)
        for tid, ok, value in self.results(len(ids)):
            if not ok:
                raise value
            out[where[tid]] = value
        return out

    def _check_alive(self) -> None:
        dead = [p for p in self._procs if not p.is_alive()]
        if dead:
            codes = ", ".join(f"{p.name} exit code {p.exitcode}" for p in dead)
            raise ClusterError(f"a worker process died ({codes}); no verdict")


# ============================================================================ in a worker
def _worker_main(pool: ForkPool, me: int) -> None:
    """A worker's loop: pieces first, then claims; forever (the driver terminates it)."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the driver's to handle
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by start()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    _WORKER = (pool, me)
    threading.Thread(target=_exit_with_driver, args=(pool._driver,), daemon=True).start()
    while True:
        # blocking (briefly) on the piece queue and only peeking at the claim queue: a process
        # blocked in ``Queue.get`` holds the queue's lock, so peeking at the piece queue would
        # mostly fail while another worker waits there for its pieces
        task = _take(pool.pieces, _POLL) or _take(pool.claims)
        if task is not None:
            _execute(pool, task)


#: How often a worker checks that its driver still lives (seconds).
_DRIVER_CHECK = 1.0


def _exit_with_driver(driver: int) -> None:
    """End this worker once the driver is gone (its parent process changes): a driver killed
    outright (SIGKILL, out of memory) cannot stop its workers, and they would otherwise run
    their claims to the end and then wait on the queues for ever. Polling and not
    ``prctl(PR_SET_PDEATHSIG)``: that signal follows the driver's forking *thread*, and it is
    Linux only."""
    while os.getppid() == driver:
        threading.Event().wait(_DRIVER_CHECK)
    os._exit(1)


def _take(q: Any, timeout: float | None = None) -> tuple | None:
    try:
        return q.get(timeout=timeout) if timeout else q.get_nowait()
    except queue.Empty:
        return None


def _execute(pool: ForkPool, task: tuple) -> None:
    """Run one task and send ``("result", id, ok, value)`` to the inbox of whoever queued it."""
    tid, owner, fn, args = task
    try:
        msg = ("result", tid, True, fn(*args))
    except Exception as exc:  # noqa: BLE001 - the asker re-raises it
        msg = ("result", tid, False, exc)
    try:
        # pickled here: ``Queue.put`` pickles in a feeder thread, where an error is only printed
        ForkingPickler.dumps(msg)
    except Exception:  # noqa: BLE001 - the value or the exception does not pickle
        err = _TaskError(f"task {getattr(fn, '__name__', fn)}: {traceback.format_exc(limit=3)}")
        msg = ("result", tid, False, err)
    pool.inboxes[owner].put(msg)


def progress_to_driver(msg: str) -> None:
    """Send a progress message of a task running on a worker to the driver."""
    if _WORKER is None:
        raise RuntimeError("progress_to_driver: not in a worker of a ForkPool")
    _WORKER[0].inboxes[0].put(("progress", msg))


class _Pieces:
    """The pool a task running on a worker hands to
    :meth:`~proofs_check.registry.Context.map`: the pieces go on the piece queue, and this
    worker runs pieces (its own or others'), or when none is queued claims not yet started,
    until its own pieces are all back."""

    serial = False

    def __init__(self) -> None:
        if _WORKER is None:
            raise RuntimeError("pieces: not in a worker of a ForkPool")
        self.pool, self.me = _WORKER
        self.backend = f"the run's {self.pool.workers} worker processes"

    def map(
        self,
        fn: Callable[..., Any],
        arglist: Iterable[tuple],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list:
        pool, me = self.pool, self.me
        arglist = [tuple(a) for a in arglist]
        # ids unique across workers and calls: the worker's index, its pid, a counter
        base = f"{me}-{os.getpid()}-{next(pool._ids)}"
        ids = [f"{base}-{i}" for i in range(len(arglist))]
        for tid, a in zip(ids, arglist):
            pool.pieces.put((tid, me, fn, a))
        where = {tid: i for i, tid in enumerate(ids)}
        out: list = [None] * len(ids)
        done = 0
        while done < len(ids):
            mine = next((t for t in ids if t in _STASH), None)
            msg = _STASH.pop(mine) if mine is not None else _take(pool.inboxes[me])
            if msg is None:
                # nothing back yet: a queued piece (own or another claim's), else a claim not yet
                # started (the costliest start first, so those left are short), rather than idle
                # while this claim's last pieces run on other workers
                task = _take(pool.pieces, _POLL) or _take(pool.claims)
                if task is not None:
                    _execute(pool, task)
                continue
            if msg[1] not in where:  # an outer wait's piece (or a late one of a call that raised)
                _STASH[msg[1]] = msg
                continue
            if not msg[2]:
                raise msg[3]
            out[where[msg[1]]] = msg[3]
            done += 1
            if progress is not None:
                progress(done, len(ids))
        return out


def pieces() -> _Pieces:
    """The pool for :meth:`~proofs_check.registry.Context.map` inside a task on a worker."""
    return _Pieces()
