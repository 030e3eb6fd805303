"""``gla-verify run`` on a pool: claims side by side on a Dask cluster, their pieces as further
tasks, shared work once; the report equals the in-process one (wall times aside)."""

from __future__ import annotations

import argparse

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
    ("argv", "cores", "pooled"),
    [
        (["run"], 2, False),  # the quick profile: in this process
        (["run", "--full"], 2, True),  # the full profile: a local cluster
        (["run", "--full", "G6"], 2, True),  # the full profile: a local cluster
        (["run", "G6"], 2, False),  # a quick run of chosen claims: in this process
        (["run"], 1, False),  # one core: in this process
        (["run", "--workers", "0"], 2, False),
        (["run", "G6", "--workers", "2"], 1, True),
    ],
)
def test_default_pool_of_run(monkeypatch, argv, cores, pooled):
    from proofs_check.sweep import engine

    monkeypatch.setattr(engine, "default_workers", lambda: cores)
    args = cli._make_parser().parse_args(argv)
    assert isinstance(args, argparse.Namespace)
    assert (cli._run_pool(args) is not None) is pooled
