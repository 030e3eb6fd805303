"""``gla-verify stress``: the search framework, the CLI, and the replay of the repository's
regression cases (tests/regressions/*.json). Planted bugs: tests/test_stress_planted.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from numerics.data import MultitaskModel, random_correlation
from numerics.risk import gain, null_risk, profile_risk
from proofs_check import stress
from proofs_check.cli import main
from proofs_check.stress import core
from proofs_check.stress.instances import build_model, model_from_json, model_to_json
from proofs_check.stress.merge import merge_documents, merge_summaries

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
CHEAP = "L7"  # a property at ~20 ms per instance


def _always_wrong(monkeypatch):
    """Plant a bug every L6 instance exposes (n instead of n + 1 in the closed form)."""
    from numerics import closed_forms

    orig = closed_forms.single_task_preconditioner
    monkeypatch.setattr(
        closed_forms, "single_task_preconditioner", lambda n, S, s: orig(n - 1, S, s)
    )


# ----------------------------------------------------------------------------- registry
def test_every_claim_with_instances_has_a_property():
    assert set(stress.PROPERTIES) == {
        "C1",
        "C2",
        "C3",
        "L1",
        "L1f",
        "L2",
        "L3",
        "L4",
        "L5",
        "L6",
        "L7",
        "G1",
        "G2",
        "G3",
        "G4",
        "G5",
        "G6",
    }
    for cid, p in stress.PROPERTIES.items():
        assert p.statement and p.tolerances and not set(p.bad) & set(p.good), cid
        assert "error" in p.bad, cid
    assert {c for c, p in stress.PROPERTIES.items() if p.proxy} == {"G3", "G5", "G6"}


# ----------------------------------------------------------------------------- search
def test_distinct_instances_deterministic_and_counted():
    a = stress.run_stress(CHEAP, examples=60, seed=3)
    b = stress.run_stress(CHEAP, examples=60, seed=3)
    assert a["distinct"] == 60 and a["requested"] == 60
    assert a["draws"] >= a["distinct"]
    for k in ("counts", "coverage", "distinct", "draws", "duplicates_dropped", "chunks"):
        assert a[k] == b[k], k
    assert [w["params"] for w in a["worst"]] == [w["params"] for w in b["worst"]]
    c = stress.run_stress(CHEAP, examples=60, seed=4)
    assert c["coverage"] != a["coverage"] or c["worst"][0]["params"] != a["worst"][0]["params"]


def test_chunks_split_over_workers_give_the_same_search():
    """A search is a union of independent chunks: any split (order, process) merges to the same records."""
    tasks = core.chunk_plan(CHEAP, 2 * core.CHUNK, 7)
    whole, _ = core.merge_chunks([core.run_chunk(t) for t in tasks])
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as ex:
        parts = list(ex.map(core.run_chunk, tasks[::-1]))
    split, _ = core.merge_chunks(parts)
    assert [r["key"] for r in split] == [r["key"] for r in whole]
    assert [r["outcome"] for r in split] == [r["outcome"] for r in whole]
    assert len({r["key"] for r in whole}) == len(whole)
    # --first-chunk: a second range continues the same chunk sequence
    s2 = stress.run_stress(CHEAP, examples=core.CHUNK, seed=7, first_chunk=1)
    assert s2["distinct"] == core.CHUNK and s2["first_chunk"] == 1


def test_summary_records_its_chunks_and_one_row_per_instance():
    s = stress.run_stress(CHEAP, examples=2 * core.CHUNK, seed=7, first_chunk=3)
    assert s["chunk_ranges"][0] == [7, 3, 5] and s["chunk_size"] == core.CHUNK
    assert all(r[1] >= core.TOPUP_BASE for r in s["chunk_ranges"][1:])  # top-ups, if any
    t = s["instances"]
    assert len(t["key"]) == len(set(t["key"])) == s["distinct"] == len(t["outcome"])
    counts = {o: t["outcome"].count(i) for i, o in enumerate(t["outcome_names"])}
    assert counts == s["counts"]
    cover = {name: sum(m >> j & 1 for m in t["tags"]) for j, name in enumerate(t["tag_names"])}
    assert cover == s["coverage"]


# ----------------------------------------------------------------------------- merging split searches
def _doc(summaries, **settings):
    return {"command": "stress", "settings": settings, "summaries": summaries}


def test_merge_of_disjoint_ranges_is_the_whole_search():
    """Two seed ranges merge to exactly the search over both (C3 draws no duplicates, so the
    whole search needs no top-up chunks and the two are comparable chunk for chunk)."""
    whole = stress.run_stress("C3", examples=2 * core.CHUNK, seed=2)
    assert whole["chunk_ranges"] == [[2, 0, 2]]
    a = stress.run_stress("C3", examples=core.CHUNK, seed=2, first_chunk=1)
    b = stress.run_stress("C3", examples=core.CHUNK, seed=2, first_chunk=0)
    m = merge_documents([("a.json", _doc([a])), ("b.json", _doc([b]))])["summaries"][0]
    for k in ("distinct", "counts", "coverage", "failures", "chunk_ranges", "instances", "draws"):
        assert m[k] == whole[k], k
    assert [p["file"] for p in m["parts"]] == ["b.json", "a.json"]  # ordered by chunk
    assert m["worst"][0]["margin"] == whole["worst"][0]["margin"]


def test_merge_counts_an_instance_drawn_in_two_ranges_once():
    """L7 with one segment does not depend on its seed: disjoint ranges share instances."""
    a = stress.run_stress(CHEAP, examples=core.CHUNK, seed=0, first_chunk=0)
    b = stress.run_stress(CHEAP, examples=core.CHUNK, seed=0, first_chunk=1)
    m = merge_summaries([("a", a), ("b", b)])
    both = set(a["instances"]["key"]) & set(b["instances"]["key"])
    assert m["distinct"] == 2 * core.CHUNK - len(both) == sum(m["counts"].values())
    assert m["duplicates_across_parts"] == len(both)
    assert m["requested"] == 2 * core.CHUNK and m["seed"] == 0
    # merging is associative: a merged summary merges again (with a third, disjoint range)
    c = stress.run_stress(CHEAP, examples=3, seed=5)
    m3 = merge_summaries([("ab", m), ("c", c)])
    assert m3["seed"] is None and len(m3["parts"]) == 3
    assert m3["distinct"] == len(set(m["instances"]["key"]) | set(c["instances"]["key"]))


def test_merge_refuses_overlapping_ranges_by_name():
    a = stress.run_stress(CHEAP, examples=2 * core.CHUNK, seed=1)  # chunks 0-1
    b = stress.run_stress(CHEAP, examples=3, seed=1, first_chunk=1)  # chunk 1
    with pytest.raises(
        ValueError, match=r"^--merge: a.json and b.json overlap: L7, seed 1, chunk 1 in"
    ):
        merge_documents([("a.json", _doc([a])), ("b.json", _doc([b]))])
    with pytest.raises(ValueError, match="overlap"):  # the same file twice
        merge_documents([("a.json", _doc([a])), ("a.json", _doc([a]))])
    # a different seed is a different chunk sequence: no overlap
    c = stress.run_stress(CHEAP, examples=3, seed=2, first_chunk=1)
    assert merge_documents([("a", _doc([a])), ("c", _doc([c]))])["summaries"][0]["distinct"] >= 100
    # parts of a different property (or an older file) are refused too
    with pytest.raises(ValueError, match="differ in tolerances"):
        merge_summaries([("a", a), ("c", {**c, "tolerances": {"TOL": 1.0}})])
    old = {k: v for k, v in c.items() if k != "instances"}
    with pytest.raises(ValueError, match="^--merge: c has no per-instance rows"):
        merge_summaries([("a", a), ("c", old)])


def test_cli_merge(tmp_path, capsys):
    def search(name, *extra):
        argv = ["stress", CHEAP, "C3", "--examples", "3", "--seed", "4", "-q", "--no-save"]
        assert main([*argv, "--json", str(tmp_path / name), *extra]) == 0

    search("a.json")
    search("b.json", "--first-chunk", "7")
    parts = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    capsys.readouterr()
    assert main(["stress", "--merge", *parts, "--json", str(tmp_path / "all.json")]) == 0
    out = capsys.readouterr().out
    assert "merged from 2 parts" in out and "seed 4 chunk 7" in out
    doc = json.loads((tmp_path / "all.json").read_text())
    assert [s["claim"] for s in doc["summaries"]] == [CHEAP, "C3"]
    assert doc["settings"]["merged_from"] == parts
    assert all(s["requested"] == 6 and 3 <= s["distinct"] <= 6 for s in doc["summaries"])
    # usage errors (2), each naming the culprit, before anything is written
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"command": "run"}')
    for argv, msg in [
        (["--merge", parts[0], parts[0]], "overlap"),
        (["--merge", str(tmp_path / "junk.json")], "junk.json is not JSON"),
        (["--merge", str(tmp_path / "none.json")], "cannot read"),
        (["--merge", parts[0], str(tmp_path / "other.json")], "other.json is not a summary"),
        ([CHEAP, "--merge", parts[0]], "not claim ids"),
    ]:
        assert main(["stress", *argv]) == 2, argv
        assert msg in capsys.readouterr().err, argv


def test_draws_do_not_depend_on_what_the_process_imported(tmp_path):
    """hypothesis mixes constants from the source of imported local modules into its draws;
    a search must not: a fresh process that imported a module full of other constants draws
    the same instances as this one."""
    import subprocess
    import sys

    (tmp_path / "consts.py").write_text(
        "A = [" + ", ".join(str(v) for v in [*range(-40, 400, 7), 2**31, 0.25, 1e-3, 7.5]) + "]\n"
    )
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import consts; "
        "from proofs_check.stress import core; "
        "print(json.dumps([r['key'] for r in core.run_chunk(('C3', 5, 0, 30))['records']]))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    here = [r["key"] for r in core.run_chunk(("C3", 5, 0, 30))["records"]]
    assert json.loads(out) == here


# ----------------------------------------------------------------------------- warnings
@pytest.mark.parametrize("cid", sorted(stress.PROPERTIES))
def test_strategies_leave_the_global_random_alone(cid):
    """In a single-threaded process hypothesis' check that strategies do not use ``random``
    is exact: no property's strategy may trigger it (in Dask workers it fires at random,
    because the event loop thread draws from the same generator; it is dropped there)."""
    r = core.run_chunk((cid, 0, 0, 3))
    assert not [w for w in r["warnings"] if core.RANDOM_MODULE_WARNING in w], r["warnings"]


def test_chunk_in_a_worker_thread_ignores_the_random_race_only():
    """A chunk run in a thread while another thread draws from ``random`` (what a Dask worker's
    event loop does) gives the same records and reports no false alarm; other warnings are
    counted, each kind once per message, not printed."""
    import random
    import threading

    from hypothesis.errors import HypothesisDeprecationWarning

    serial = core.run_chunk((CHEAP, 3, 0, 20))
    stop, out = threading.Event(), {}

    def noise():
        while not stop.is_set():
            random.random()

    def work():
        out["r"] = core.run_chunk((CHEAP, 3, 0, 20))

    threads = [threading.Thread(target=noise), threading.Thread(target=work)]
    for t in threads:
        t.start()
    threads[1].join()
    stop.set()
    threads[0].join()
    assert [r["key"] for r in out["r"]["records"]] == [r["key"] for r in serial["records"]]
    assert not any(core.RANDOM_MODULE_WARNING in w for w in out["r"]["warnings"])

    class W:  # what warnings.catch_warnings(record=True) collects
        def __init__(self, cat, msg):
            self.category, self.message = cat, msg

    race = W(HypothesisDeprecationWarning, core.RANDOM_MODULE_WARNING + "; instead ...")
    other = W(RuntimeWarning, "overflow in exp\nmore")
    assert core._warning_counts([race, other, other]) == {
        f"HypothesisDeprecationWarning: {core.RANDOM_MODULE_WARNING}; instead ...": 1,
        "RuntimeWarning: overflow in exp": 2,
    }
    got = {}
    t = threading.Thread(target=lambda: got.update(c=core._warning_counts([race, other])))
    t.start()
    t.join()
    assert got["c"] == {"RuntimeWarning: overflow in exp": 1}


def test_no_hypothesis_folder_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stress.run_stress(CHEAP, examples=5, seed=0)
    assert not (tmp_path / ".hypothesis").exists()
    assert list(tmp_path.iterdir()) == []


def test_counterexample_is_shrunk_saved_and_replayed(tmp_path, monkeypatch):
    _always_wrong(monkeypatch)
    s = stress.run_stress("L6", examples=12, seed=1, save_dir=tmp_path, shrink_seconds=30)
    assert s["failures"] == 12 and s["first_failure_at"] == 1
    sm = s["smallest"]
    assert sm["shrunk"] and sm["outcome"] == "closed-form-mismatch"
    first = s["counterexamples"][0]
    # hypothesis shrinks towards the first listed value of every parameter
    assert core._size_key(sm["params"]) <= core._size_key(first["params"])
    assert sm["params"]["n"] == 1 and sm["params"]["d"] == 1  # the first entries of L6's lists
    files = sorted(tmp_path.glob("L6_*.json"))
    assert len(files) == len(s["saved"]) >= 2
    saved = json.loads(files[0].read_text())
    assert (
        saved["claim"] == "L6" and saved["expected_outcomes"] == ["holds"] and "instance" in saved
    )
    # replayed with the bug still planted: still a counterexample; without it: fixed
    assert core.replay_regression(files[0])["outcome"] == "closed-form-mismatch"
    monkeypatch.undo()
    assert core.replay_regression(files[0])["outcome"] == "holds"


def test_failed_save_keeps_the_results(tmp_path, monkeypatch):
    _always_wrong(monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    s = stress.run_stress("L6", examples=3, seed=0, save_dir=blocker / "sub", shrink=False)
    assert s["failures"] == 3 and s["saved"] == [] and s["save_errors"]
    assert blocker.read_text() == "not a folder"


def test_run_stress_validation():
    with pytest.raises(KeyError):
        stress.run_stress("Z9", examples=1, seed=0)
    for bad in (0, -2, core.MAX_EXAMPLES + 1, 1.5, True):
        with pytest.raises(ValueError, match="^examples"):
            stress.run_stress(CHEAP, examples=bad, seed=0)
    for bad in (-1, 2**63, 0.5):
        with pytest.raises(ValueError, match="^seed"):
            stress.run_stress(CHEAP, examples=1, seed=bad)


# ----------------------------------------------------------------------------- documented violations
def _r_zero_model():
    R = np.eye(5)
    R[:4, :4] = random_correlation(4, np.random.default_rng(0), common=0.5)
    return MultitaskModel(R, np.diag([1.0, 10.0, 100.0]), 0.2)


def _dead_example_model():
    R = np.zeros((5, 5))
    keep = [0, 2, 3, 4]
    R[np.ix_(keep, keep)] = random_correlation(4, np.random.default_rng(1), common=0.5)
    return MultitaskModel(R, np.diag([1.0, 1e3]), 0.0)


@pytest.mark.parametrize("cid", ["L4", "L5"])
def test_condition_violations_are_reported_not_counted(cid):
    prop = stress.PROPERTIES[cid]
    for m in (_r_zero_model(), _dead_example_model()):
        rec = prop.evaluate(m, np.random.default_rng(0))
        assert rec["outcome"] == "condition-violated-reported", rec


def test_condition_violation_undetected_is_a_counterexample(monkeypatch):
    import numerics.landscape as nl

    orig = nl.solve_wpgd

    def claims_unique(model, **kw):
        sol = orig(model, **kw)
        sol.certificate["unique"] = True
        return sol

    monkeypatch.setattr(nl, "solve_wpgd", claims_unique)
    rec = stress.PROPERTIES["L4"].evaluate(_r_zero_model(), np.random.default_rng(0))
    assert rec["outcome"] == "undetected-violation"


# ----------------------------------------------------------------------------- instances
def test_gain_matches_null_minus_profile_risk():
    m = build_model(
        {
            "seed": 1,
            "n": 6,
            "d": 4,
            "R_kind": "full",
            "rank": 2,
            "K": 2,
            "common": 0.5,
            "flip": True,
            "S_kind": "spread",
            "log10_cond": 3.0,
            "r_scale": 1.0,
            "sigma": 0.3,
        }
    )
    om = np.random.default_rng(2).standard_normal(m.n)
    assert gain(m, om) == pytest.approx(null_risk(m) - profile_risk(m, om), rel=1e-12)


def test_build_model_is_deterministic_and_covers_edges():
    p = {
        "seed": 7,
        "n": 6,
        "d": 4,
        "R_kind": "mixture",
        "rank": 2,
        "K": 3,
        "common": 0.5,
        "S_kind": "clustered",
        "log10_cond": 7.0,
        "r_scale": 1e-4,
        "sigma": 0.0,
        "log_var_spread": 3.0,
        "jitter": False,
        "flip": True,
        "dead": True,
    }
    a, b = build_model(p), build_model(p)
    np.testing.assert_array_equal(a.R, b.R)
    assert a.eigvals[-1] / a.eigvals[0] == pytest.approx(1e7, rel=1e-3)
    assert 0 < np.linalg.norm(a.r) < 1e-2
    assert a.B_diag[0] == 0  # the dead example: outside B > 0
    assert np.any(a.R[1:-1, 1:-1] < 0)  # flipped signs: negative task correlations
    with pytest.raises(ValueError, match="^p"):
        build_model({**p, "R_kind": "bogus"})


def test_model_json_round_trip():
    m = _dead_example_model()
    m2 = model_from_json(json.loads(json.dumps(model_to_json(m))))
    np.testing.assert_array_equal(m.R, m2.R)
    with pytest.raises(ValueError, match="^instance"):
        model_from_json({"R": [[1.0]]})


# ----------------------------------------------------------------------------- CLI
def test_cli_runs_writes_json_and_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(["stress", CHEAP, "C3", "--examples", "4", "--seed", "1", "--json", "s.json", "-q"])
        == 0
    )
    doc = json.loads((tmp_path / "s.json").read_text())
    assert [s["claim"] for s in doc["summaries"]] == [CHEAP, "C3"]
    assert all(s["distinct"] == 4 and s["failures"] == 0 for s in doc["summaries"])
    out = capsys.readouterr().out
    assert "distinct" in out and "failures" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "s.json"
    ]  # no regressions folder, no .hypothesis


def test_cli_counterexample_exit_1_default_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _always_wrong(monkeypatch)
    assert main(["stress", "L6", "--examples", "2", "-q"]) == 1
    files = list((tmp_path / core.DEFAULT_REGRESSION_DIR).glob("L6_*.json"))
    assert files
    assert "smallest counterexample" in capsys.readouterr().out


def test_cli_save_failure_still_prints_and_writes_json(tmp_path, capsys, monkeypatch):
    _always_wrong(monkeypatch)

    def refuse(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core, "save_regression", refuse)
    out_json = tmp_path / "s.json"
    rc = main(
        [
            "stress",
            "L6",
            "--examples",
            "2",
            "--json",
            str(out_json),
            "--regressions",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    assert rc == 1
    cap = capsys.readouterr()
    assert "COULD NOT SAVE" in cap.out and "could not be saved" in cap.err
    doc = json.loads(out_json.read_text())
    assert doc["summaries"][0]["failures"] == 2 and doc["summaries"][0]["save_errors"]


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["stress", "--examples", "1"], "ids or --all"),
        (["stress", "L7", "--all"], "ids or --all"),
        (["stress", "NOPE"], "unknown claim id"),
        (["stress", "L7", "--examples", "0"], "--examples"),
        (["stress", "L7", "--examples", str(core.MAX_EXAMPLES + 1)], "--examples"),
        (["stress", "L7", "--seed", "-1"], "--seed"),
        (["stress", "L7", "--seed", str(2**63)], "--seed"),
        (["stress", "L7", "--workers", "-1"], "--workers"),
        (["stress", "L7", "--first-chunk", "-3"], "--first-chunk"),
        (["stress", "L7", "--json", ""], "--json"),
        (["stress", "L7", "--json", "/"], "--json"),
    ],
)
def test_cli_usage_errors_before_any_work(argv, msg, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own type errors (e.g. --seed) exit 2 from the parser
        code = exc.code
    assert code == 2
    assert msg in capsys.readouterr().err


def test_cli_cluster_unreachable_exits_3_before_any_search(tmp_path, capsys, monkeypatch):
    from proofs_check.sweep import engine

    def unreachable(address, timeout=15.0):
        raise engine.ClusterError(f"--scheduler: cannot connect to {address}: refused")

    monkeypatch.setattr(engine, "_remote_client", unreachable)
    monkeypatch.setattr(core, "run_chunk", lambda task: pytest.fail("searched"))
    argv = ["stress", CHEAP, "--scheduler", "tcp://127.0.0.1:9", "--json", str(tmp_path / "s")]
    assert main(argv) == 3
    assert "cannot connect to tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_cli_refuses_regressions_on_a_file(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    assert main(["stress", CHEAP, "--examples", "1", "--regressions", str(f)]) == 2
    assert "--regressions" in capsys.readouterr().err and f.read_text() == "x"


def test_cli_workers(tmp_path):
    assert (
        main(
            [
                "stress",
                CHEAP,
                "--examples",
                "60",
                "--workers",
                "2",
                "--json",
                str(tmp_path / "w.json"),
                "--seed",
                "5",
                "-q",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "stress",
                CHEAP,
                "--examples",
                "60",
                "--json",
                str(tmp_path / "s.json"),
                "--seed",
                "5",
                "-q",
            ]
        )
        == 0
    )
    a = json.loads((tmp_path / "w.json").read_text())["summaries"][0]
    b = json.loads((tmp_path / "s.json").read_text())["summaries"][0]
    assert (
        a["counts"] == b["counts"] and a["coverage"] == b["coverage"] and a["worst"] == b["worst"]
    )


# ----------------------------------------------------------------------------- the repository's regressions
@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.json")), ids=lambda p: p.name)
def test_regressions(path):
    """Every saved counterexample must now show one of its expected outcomes (after a fix of the
    code, or after the claim gained the missing condition and the file was edited)."""
    rec = core.replay_regression(path)
    assert rec["outcome"] in rec["expected_outcomes"], (path.name, rec)


def test_regressions_folder_is_not_empty():
    assert len(list(REGRESSIONS.glob("*.json"))) >= 3, os.listdir(REGRESSIONS)
