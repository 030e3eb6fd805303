"""``gla-verify run`` on a pool: claims side by side on a Dask cluster, their pieces as further
tasks, shared work once; the report equals the in-process one (wall times aside)."""

from __future__ import annotations

import argparse
import contextlib

import pytest

from proofs_check import api, cli, general_proofs, registry
from proofs_check.registry import Claim, Context, Evidence, RunCache, holds


def _strip(x):
    """The report without wall times (they differ between runs; nothing else may)."""
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if "seconds" not in k}
    return [_strip(v) for v in x] if isinstance(x, list) else x


def test_claims_on_a_two_worker_cluster_give_the_in_process_report():
    from proofs_check.sweep import Pool

    ids = ["L3", "C2"]  # both use the shared rule cross-check of the matrix engine
    here = api.run(ids).to_json()
    with Pool(workers=2) as pool:
        there = api.run(ids, pool=pool).to_json()
    assert _strip(there["claims"]) == _strip(here["claims"])
    assert [c["status"] for c in there["claims"]] == ["pass", "pass"]


def test_pieces_of_a_claim_on_a_worker_go_to_the_cluster():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        assert client.submit(_map_on_worker, pure=False).result() == [8, 9, 1024]


def _map_on_worker():
    """A claim's ``ctx.map`` as it runs inside a claim task (module level: pickled by name)."""
    seen = []
    out = Context(pool=api._ClusterPieces()).map(
        pow, [(2, 3), (3, 2), (2, 10)], progress=lambda k, n: seen.append((k, n))
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    return out


def test_shared_work_is_declared_for_the_claims_that_use_it():
    work = registry.shared_work_for(["L3", "G6"])
    fn, users = work[general_proofs.CROSS_CHECK]
    assert fn is general_proofs.rule_cross_check and users == {"L3"}
    assert general_proofs.CROSS_CHECK not in registry.shared_work_for(["G6"])
    assert RunCache({"k": 1}).get("k", lambda: 2) == 1


def test_in_process_run_uses_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    c = Claim("T1", "threads", "1 = 1", "test")
    seen = []

    def record(ctx):
        seen.extend(lib["num_threads"] for lib in threadpool_info())
        return Evidence("n", "numeric", [holds("ok", True)])

    c.check("threads", leg="numerics")(record)
    monkeypatch.setattr(api, "all_claims", lambda: {"T1": c})
    assert api.run(["T1"]).passed
    assert seen and set(seen) == {1}


@pytest.mark.parametrize(
    ("argv", "cores", "kind"),
    [
        (["run"], 2, "fork"),  # one forked worker per core
        (["run", "--full"], 2, "fork"),
        (["run", "--full", "G6"], 2, "fork"),
        (["run", "G6"], 2, "fork"),
        (["run"], 1, None),  # one core: in this process
        (["run", "--workers", "0"], 2, None),
        (["run", "G6", "--workers", "2"], 1, "fork"),
        (["run", "--scheduler", "tcp://127.0.0.1:8786"], 2, "dask"),
    ],
)
def test_default_pool_of_run(monkeypatch, argv, cores, kind):
    from proofs_check.sweep import engine
    from proofs_check.sweep.forked import ForkPool

    monkeypatch.setattr(engine, "default_workers", lambda: cores)
    args = cli._make_parser().parse_args(argv)
    assert isinstance(args, argparse.Namespace)
    pool = cli._run_pool(args)
    got = None if pool is None else "fork" if isinstance(pool, ForkPool) else "dask"
    assert got == kind


# ============================================================================ forked workers
def _pieces_claim(cid: str, fail_at: int | None = None) -> Claim:
    """A claim whose check spreads pieces (``ctx.map``) drawn from its rng; ``fail_at``: the
    piece that raises (a planted failure)."""
    c = Claim(cid, "pieces", "x = x", "test")

    def check(ctx):
        seeds = [int(s) for s in ctx.rng("pieces").integers(0, 2**31, size=6)]
        args = [(s, s == seeds[fail_at] if fail_at is not None else False) for s in seeds]
        seen = []
        vals = ctx.map(_draw, args, progress=lambda k, n: seen.append(k))
        ctx.progress(f"{cid}: {len(vals)} pieces")
        return Evidence("sum", "numeric", [holds("ok", seen == list(range(1, 7)))], {"v": vals})

    c.check("pieces", leg="numerics")(check)
    return c


def _draw(seed: int, fail: bool) -> float:
    """A piece: a number from ``seed`` (module level: the worker finds it by name)."""
    import numpy as np

    if fail:
        raise ArithmeticError("planted failure in a piece")
    return float(np.random.default_rng(seed).normal())


def _die() -> None:
    import os

    os._exit(7)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_forked_workers_give_the_in_process_report(monkeypatch, workers):
    """Claims with pieces and claims with shared work: the same report (wall times aside) on
    any number of forked workers as in this process; progress of the workers reaches the
    driver."""
    from proofs_check.sweep.forked import ForkPool

    every = {**api.all_claims(), "P1": _pieces_claim("P1"), "P2": _pieces_claim("P2")}
    monkeypatch.setattr(api, "all_claims", lambda: every)
    ids = ["L3", "P1", "C2", "P2"]  # L3, C2 use the shared rule cross-check
    here = api.run(ids).to_json()
    said: list[str] = []
    with ForkPool(workers) as pool:
        there = api.run(ids, pool=pool, progress=said.append).to_json()
    assert _strip(there["claims"]) == _strip(here["claims"])
    assert [c["status"] for c in there["claims"]] == ["pass"] * 4
    assert "P1: 6 pieces" in said and any(m.startswith("P2: pass") for m in said)


def test_forked_workers_raise_a_piece_failure_and_survive_a_dead_worker(monkeypatch):
    """A piece that raises fails its check (error evidence, the exception named), the run goes
    on; a worker process that dies stops the run with a ClusterError (no verdict)."""
    from proofs_check.sweep.engine import ClusterError
    from proofs_check.sweep.forked import ForkPool

    every = {"P1": _pieces_claim("P1", fail_at=3), "P2": _pieces_claim("P2")}
    monkeypatch.setattr(api, "all_claims", lambda: every)
    with ForkPool(2) as pool:
        rep = api.run(["P1", "P2"], pool=pool)
        assert not rep["P1"].passed and rep["P2"].passed
        assert "planted failure in a piece" in rep["P1"].evidence[0].error
        assert pool.run_tasks([(pow, (2, 5))]) == [32]
        with pytest.raises(ClusterError, match="died"):
            pool.run_tasks([(_die, ())])


def test_forked_workers_are_refused_a_bad_count():
    from proofs_check.sweep.forked import ForkPool

    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="--workers"):
            ForkPool(bad)


_DRIVER = """
import os, sys, time
from proofs_check.sweep.forked import ForkPool
pool = ForkPool(2).start()
print(" ".join(str(p.pid) for p in pool._procs), flush=True)
pool.run_tasks([(time.sleep, (60,)), (time.sleep, (60,))])  # both workers busy
"""


def test_forked_workers_end_with_a_driver_killed_outright():
    """A driver killed by SIGKILL cannot stop its workers; they notice that their parent is
    gone and exit within about a second, even in the middle of a task (here a 60 s sleep).
    Before the check they slept on and then waited on the queues for ever."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        time.sleep(0.5)  # the tasks have started
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        alive = pids
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in pids if _running(p)]
        assert not alive, f"workers {alive} outlived their driver"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
