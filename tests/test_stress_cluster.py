"""A stress search split over workers and a Dask cluster gives the search of one process.

The cluster is the one of tests/test_sweep.py: ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (its ``subprocess_cluster`` fixture), reached with ``--scheduler``.
"""

from __future__ import annotations

import json

from test_sweep import subprocess_cluster  # noqa: F401  (the fixture)

from proofs_check.cli import main
from proofs_check.stress import core

#: Two cheap properties: L7 draws duplicates (top-up chunks), C3 none.
IDS = ["L7", "C3"]
#: Three chunks per claim (the last one short), so the two workers share them unevenly.
N = 2 * core.CHUNK + 10


def _search(tmp_path, name, *where, examples=N, first_chunk=0) -> dict:
    argv = ["stress", *IDS, "--examples", str(examples), "--seed", "11", "-q", "--no-save"]
    argv += ["--first-chunk", str(first_chunk), "--json", str(tmp_path / name), *where]
    assert main(argv) == 0
    return json.loads((tmp_path / name).read_text())


def _verdicts(doc) -> dict:
    """Per claim: the instances (digests, in order) and their outcomes and tags."""
    return {s["claim"]: (s["instances"], s["counts"], s["coverage"]) for s in doc["summaries"]}


def test_same_seed_same_instances_and_verdicts_on_any_number_of_workers(
    tmp_path,
    subprocess_cluster,  # noqa: F811
):
    serial = _search(tmp_path, "serial.json")
    remote = _search(tmp_path, "remote.json", "--scheduler", subprocess_cluster)
    local = _search(tmp_path, "local.json", "--workers", "1")
    assert _verdicts(remote) == _verdicts(serial) == _verdicts(local)
    for s in serial["summaries"]:
        assert s["distinct"] == N and s["failures"] == 0, s["claim"]
    # no worker's false alarm about the `random` module reaches the summaries
    assert not any(
        core.RANDOM_MODULE_WARNING in w for s in remote["summaries"] for w in s["warnings"]
    )

    # one search split in two seed ranges: chunks 0-1 on the cluster, chunk 2 in this process
    _search(tmp_path, "a.json", "--scheduler", subprocess_cluster, examples=2 * core.CHUNK)
    _search(tmp_path, "b.json", examples=N - 2 * core.CHUNK, first_chunk=2)
    parts = [str(tmp_path / "b.json"), str(tmp_path / "a.json")]
    assert main(["stress", "--merge", *parts, "--json", str(tmp_path / "m.json"), "-q"]) == 0
    merged = {s["claim"]: s for s in json.loads((tmp_path / "m.json").read_text())["summaries"]}
    whole = {s["claim"]: s for s in serial["summaries"]}
    # C3 needs no top-up chunks: the merge is the whole search, instance for instance
    assert whole["C3"]["chunk_ranges"] == [[11, 0, 3]]
    assert merged["C3"]["instances"] == whole["C3"]["instances"]
    # L7 draws duplicates, so the top-up chunks of one range and of two differ; the regular
    # chunks do not, and the merge counts every instance once with its one verdict
    a, b = (_summary(tmp_path / f, "L7") for f in ("a.json", "b.json"))
    keys = lambda s: s["instances"]["key"]  # noqa: E731
    assert keys(a)[: core.CHUNK] == keys(whole["L7"])[: core.CHUNK]  # chunk 0, same draws
    assert merged["L7"]["distinct"] == len(set(keys(a)) | set(keys(b)))
    assert sum(merged["L7"]["counts"].values()) == merged["L7"]["distinct"]
    assert merged["L7"]["failures"] == 0 and merged["L7"]["requested"] == N


def _summary(path, claim) -> dict:
    doc = json.loads(path.read_text())
    return next(s for s in doc["summaries"] if s["claim"] == claim)
