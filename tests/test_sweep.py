"""The sweep engine: grids, seeds and keys, store and resume, failures, Dask backends, CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sweep_cases as C

from numerics._heap import MALLOC_ENV, user_tuned
from proofs_check.cli import main
from proofs_check.sweep import Grid, Sweep, get_sweep, point_key, point_seed, read_table, run_sweep
from proofs_check.sweep.store import comparable

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


# ----------------------------------------------------------------------------- grids, keys, seeds
def test_grid_expansion_and_union_dedup():
    g = Grid({"a": (1, 2), "b": ("x",)}, seeds=3, fixed={"c": 0.5})
    pts = g.points()
    assert len(pts) == 6 and pts[0] == {"a": 1, "b": "x", "rep": 0, "c": 0.5}
    s = Sweep("u", fn=C.noisy_point, grids={"quick": [g, g], "full": [g]})
    assert s.points("quick") == pts  # a point listed twice runs once


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Grid({"a": ()}),
        lambda: Grid({"a": "xyz"}),
        lambda: Grid({"a": (1,)}, fixed={"a": 2}),
        lambda: Grid({"a": (1,)}, seeds=-1),
        lambda: Grid({"a": (object(),)}).points(),
        lambda: Grid({"a": (float("nan"),)}).points(),
        lambda: Sweep("s", fn=C.noisy_point, grids={"quick": []}),
    ],
)
def test_bad_grids_are_refused(bad):
    with pytest.raises(ValueError):
        bad()


def test_key_and_seed_depend_on_parameters_only():
    s = C.NOISY
    p, q = {"a": 1, "rep": 0}, {"rep": 0, "a": 1}
    assert point_key(s, p) == point_key(s, q) and point_seed(s, p) == point_seed(s, q)
    assert point_seed(s, p) != point_seed(s, {"a": 1, "rep": 1})
    assert (
        point_key(s, p) != point_key(s, {"a": 1.0, "rep": 0}) or True
    )  # 1 and 1.0 may alias in JSON
    assert 0 <= point_seed(s, p) < 2**63
    # seed_from: points that differ only outside it share the seed, not the key
    t = Sweep("t", fn=C.noisy_point, grids={"quick": [], "full": []}, seed_from=("rep",))
    assert point_seed(t, {"a": 1, "rep": 0}) == point_seed(t, {"a": 2, "rep": 0})
    assert point_key(t, {"a": 1, "rep": 0}) != point_key(t, {"a": 2, "rep": 0})


def test_key_changes_with_sweep_version():
    a = Sweep("v", fn=C.noisy_point, grids={"quick": [], "full": []}, version="1")
    b = Sweep("v", fn=C.noisy_point, grids={"quick": [], "full": []}, version="2")
    assert point_key(a, {"x": 1}) != point_key(b, {"x": 1})


# ----------------------------------------------------------------------------- store, resume, failures
def test_serial_run_then_cached_rerun_computes_nothing(tmp_path):
    C.CALLS.clear()
    out = tmp_path / "o"
    first = run_sweep(C.NOISY, profile="quick", out=out, workers=0, progress=False)
    assert first.computed == 6 and first.cached == 0 and first.failed == 0 and len(C.CALLS) == 6
    C.CALLS.clear()
    again = run_sweep(C.NOISY, profile="quick", out=out, workers=0, progress=False, resume=True)
    assert again.computed == 0 and again.cached == 6 and C.CALLS == []
    assert comparable(again.rows) == comparable(first.rows)
    table = read_table(out)
    assert comparable(table) == comparable(first.rows)
    assert {"key", "status", "seed", "version", "a", "rep", "value", "vec"} <= set(table[0])
    # the full grid shares nothing with quick except the points it has in common
    C.CALLS.clear()
    run_sweep(C.NOISY, profile="full", out=out, workers=0, progress=False, resume=True)
    assert sorted(c["a"] for c in C.CALLS) == [4, 4]


def test_existing_results_need_resume(tmp_path):
    out = tmp_path / "o"
    run_sweep(C.NOISY, profile="quick", out=out, workers=0, progress=False)
    from proofs_check.sweep import StoreError

    with pytest.raises(StoreError, match="--resume"):
        run_sweep(C.NOISY, profile="quick", out=out, workers=0, progress=False)
    with pytest.raises(StoreError, match="sweep 't_noisy'"):
        run_sweep(C.FAILING, profile="quick", out=out, workers=0, progress=False, resume=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        run_sweep(C.NOISY, profile="quick", out=foreign, workers=0, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_failed_point_is_recorded_and_retried_on_resume(tmp_path, monkeypatch):
    out = tmp_path / "o"
    res = run_sweep(C.FAILING, profile="quick", out=out, workers=0, progress=False)
    assert res.failed == 1 and res.computed == 4
    bad = [r for r in res.rows if r["status"] == "failed"]
    assert bad[0]["i"] == 2 and "RuntimeError: planted failure at i=2" in bad[0]["error"]
    rec = json.loads((out / "points" / f"{bad[0]['key']}.json").read_text())
    assert "sweep_cases.py" in rec["traceback"] and "failing_point" in rec["traceback"]
    assert all(r["i2"] == r["i"] ** 2 for r in res.rows if r["status"] == "ok")
    monkeypatch.setenv("SWEEP_TEST_FIXED", "1")
    again = run_sweep(C.FAILING, profile="quick", out=out, workers=0, progress=False, resume=True)
    assert again.computed == 1 and again.failed == 0


def test_bad_point_result_is_a_failure_not_a_crash(tmp_path):
    s = Sweep(
        "t_badres", fn=lambda params, seed: [1, 2], grids={"quick": [Grid({"i": (0,)})], "full": []}
    )
    res = run_sweep(s, profile="quick", out=tmp_path / "o", workers=0, progress=False)
    assert res.failed == 1 and "expected a dict" in res.rows[0]["error"]


# ----------------------------------------------------------------------------- Dask backends
def test_local_cluster_rows_bit_identical_to_serial(tmp_path):
    """Real training points (G6 on anisotropic Σ, quick): 2 workers give the serial rows bit for bit."""
    sw = get_sweep("g6_seeds")
    serial = run_sweep(sw, profile="quick", out=tmp_path / "serial", workers=0, progress=False)
    par = run_sweep(sw, profile="quick", out=tmp_path / "par", workers=2, progress=False)
    assert serial.failed == 0 and par.failed == 0
    assert comparable(par.rows) == comparable(serial.rows)
    assert comparable(read_table(tmp_path / "par")) == comparable(read_table(tmp_path / "serial"))


def test_pool_map_keeps_order_and_raises_the_first_error():
    from proofs_check.sweep import Pool

    with Pool(workers=2) as pool:
        assert pool.map(pow, [(b, 2) for b in range(10)]) == [b * b for b in range(10)]
        # the workers keep freed memory as the tool's own process does (numerics._heap)
        if not user_tuned():
            got = pool.map(os.environ.get, [(k,) for k in MALLOC_ENV])
            assert got == list(MALLOC_ENV.values())
        with pytest.raises(ZeroDivisionError):
            pool.map(divmod, [(1, 1), (1, 0)])
    assert Pool(workers=0).map(C.noisy_point, [({"a": 1}, 5)]) == [C.noisy_point({"a": 1}, 5)]
    with pytest.raises(ValueError, match="--workers"):
        Pool(workers=-1)
    with pytest.raises(ValueError, match="mutually exclusive"):
        Pool(workers=1, scheduler="tcp://h:1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_workers(address: str, n: int, timeout: float = 60.0) -> None:
    from distributed import Client

    with Client(address, timeout=timeout, set_as_default=False) as c:
        c.wait_for_workers(n, timeout=timeout)


@pytest.fixture
def subprocess_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (``python -m dask ...``, the ``dask``
    command of this interpreter) on 127.0.0.1, random free port; torn down afterwards."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    dask = [sys.executable, "-m", "dask"]
    commands = [dask + ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [
        dask
        + [
            "worker",
            address,
            "--nthreads",
            "1",
            "--nworkers",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--name",
            f"w{i}",
        ]
        for i in range(2)
    ]
    procs = []
    with contextlib.ExitStack() as stack:
        try:
            for i, cmd in enumerate(commands):
                log = stack.enter_context(open(logs / f"proc{i}.log", "w"))
                procs.append(
                    subprocess.Popen(
                        cmd, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            _wait_for_workers(address, 2)
            yield address
        finally:
            for p in reversed(procs):
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()


def test_scheduler_subprocess_cluster_gives_serial_rows(tmp_path, subprocess_cluster):
    serial = run_sweep(C.NOISY, profile="quick", out=tmp_path / "serial", workers=0, progress=False)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "proofs_check",
            "sweep",
            "sweep_cases:NOISY",
            "--quick",
            "--scheduler",
            subprocess_cluster,
            "--out",
            str(tmp_path / "remote"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "scheduler tcp://127.0.0.1" in r.stdout
    assert comparable(read_table(tmp_path / "remote")) == comparable(serial.rows)


# ----------------------------------------------------------------------------- kill and resume
def _records(out: Path) -> int:
    d = out / "points"
    return (
        len([f for f in os.listdir(d) if f.endswith(".json") and not f.startswith(".")])
        if d.is_dir()
        else 0
    )


def test_kill_and_resume(tmp_path):
    """SIGKILL the driver mid-sweep; --resume runs only what is missing and the rows equal an
    uninterrupted run's."""
    out = tmp_path / "o"
    cmd = [
        sys.executable,
        "-m",
        "proofs_check",
        "sweep",
        "sweep_cases:SLEEPY",
        "--quick",
        "--workers",
        "0",
        "--out",
        str(out),
        "-q",
    ]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while _records(out) < 3 and time.time() - t0 < 60:
        time.sleep(0.05)
    p.kill()
    p.wait()
    done_before = _records(out)
    assert 3 <= done_before < 8
    assert not (out / "results.parquet").exists()
    r = subprocess.run(
        cmd + ["--resume"], env=ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    assert f"{8 - done_before} computed, {done_before} cached" in r.stdout
    ref = run_sweep(C.SLEEPY, profile="quick", out=tmp_path / "ref", workers=0, progress=False)
    assert comparable(read_table(out)) == comparable(ref.rows)


def test_interrupt_exits_130_and_keeps_finished_points(tmp_path):
    out = tmp_path / "o"
    cmd = [
        sys.executable,
        "-m",
        "proofs_check",
        "sweep",
        "sweep_cases:SLEEPY",
        "--quick",
        "--workers",
        "0",
        "--out",
        str(out),
        "-q",
    ]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while _records(out) < 2 and time.time() - t0 < 60:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "--resume" in err
    assert _records(out) >= 2


# ----------------------------------------------------------------------------- CLI
def test_cli_list(capsys):
    assert main(["sweep", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("risk_vs_n", "g6_seeds", "smoke"):
        assert name in out


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["sweep"], "give a sweep NAME"),
        (["sweep", "smoke", "--list"], "not both"),
        (["sweep", "nope"], "unknown sweep 'nope'"),
        (["sweep", "smoke", "--workers", "-1"], "--workers"),
        (["sweep", "smoke", "--scheduler", "nohost"], "--scheduler"),
        (["sweep", "smoke", "--scheduler", "http://h:1"], "unknown protocol"),
        (["sweep", "no_such_module_xyz:SWEEP"], "cannot load sweep"),
    ],
)
def test_cli_usage_errors_exit_2_before_work(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "sweeps").exists()


def test_cli_workers_and_scheduler_are_exclusive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sweep", "smoke", "--workers", "2", "--scheduler", "tcp://h:1"])
    assert e.value.code == 2


def test_cli_out_errors(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["sweep", "smoke", "--quick", "--workers", "0", "--out", str(f), "-q"]) == 2
    assert main(["sweep", "smoke", "--quick", "--workers", "0", "--out", str(f / "sub"), "-q"]) == 3
    assert "cannot write" in capsys.readouterr().err


def test_cli_quick_smoke_serial_and_exit_codes(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "smoke", "--quick", "--workers", "0", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "4 computed, 0 cached, 0 failed" in text and "consistent" in text
    assert json.loads((out / "sweep.json").read_text())["sweep"] == "smoke"
    assert main(["sweep", "smoke", "--quick", "--workers", "0", "--out", str(out), "-q"]) == 2
    assert (
        main(["sweep", "smoke", "--quick", "--workers", "0", "--out", str(out), "-q", "--resume"])
        == 0
    )
    assert "0 computed, 4 cached" in capsys.readouterr().out
    assert (
        main(["sweep", "sweep_cases:FAILING", "--workers", "0", "--out", str(tmp_path / "f"), "-q"])
        == 3
    )
    assert "planted failure" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_unreachable_scheduler_exits_3(tmp_path, capsys):
    port = _free_port()
    assert (
        main(
            [
                "sweep",
                "smoke",
                "--quick",
                "--scheduler",
                f"tcp://127.0.0.1:{port}",
                "--out",
                str(tmp_path / "o"),
                "-q",
            ]
        )
        == 3
    )
    assert "cannot connect" in capsys.readouterr().err


# ----------------------------------------------------------------------------- studies on the engine
def test_phase_diagram_sweep_reproduces_the_data_file(tmp_path):
    """The quick grid's rows equal the matching rows of docs/data/phase_diagram.csv (12 digits)."""
    res = run_sweep(
        get_sweep("phase_diagram"), profile="quick", out=tmp_path / "ph", workers=0, progress=False
    )
    assert res.failed == 0 and res.exported == ["phase_diagram.csv"]
    ours = [
        l
        for l in (tmp_path / "ph" / "phase_diagram.csv").read_text().splitlines()
        if not l.startswith("#")
    ]
    ref = {
        tuple(l.split(",")[:2]): l
        for l in (ROOT / "docs" / "data" / "phase_diagram.csv").read_text().splitlines()
        if not l.startswith("#")
    }
    assert ours[0] == ref[("K", "spread")]
    for line in ours[1:]:
        assert line == ref[tuple(line.split(",")[:2])]


def test_risk_vs_n_quick_rows_and_summary(tmp_path):
    res = run_sweep(
        get_sweep("risk_vs_n"), profile="quick", out=tmp_path / "r", workers=0, progress=False
    )
    assert res.failed == 0 and len(res.rows) == 8
    base = [r for r in res.rows if r["arch"] == "baselines"]
    for b in base:  # the Bayes predictor is optimal: below every architecture's optimum
        assert b["bayes_risk"] <= b["pred_vector"] + 4 * b["bayes_se"]
        assert b["pred_vector"] <= b["pred_scalar"] <= b["pred_linear"] < b["null_risk"]
    assert all(c["ok"] for c in res.summary["checks"])
    assert set(res.summary["verdicts"]) == {"linear", "scalar", "vector"}
    # the docs/data files: one row per trained point, per (n, arch), per n
    from proofs_check.experiments import risk_vs_n as R

    assert res.exported == list(R.FILES)
    pts = _csv_rows(tmp_path / "r" / "risk_vs_n.csv")
    assert len(pts) == 6 and list(pts[0]) == R.POINT_COLUMNS
    trained = [r for r in res.rows if r["arch"] != "baselines"]
    assert [float(p["rel_gap"]) for p in pts] == pytest.approx([r["rel_gap"] for r in trained])
    summ = _csv_rows(tmp_path / "r" / "risk_vs_n_summary.csv")
    assert [(int(r["n"]), r["arch"]) for r in summ] == [
        (n, a) for n in (6, 12) for a in ("linear", "scalar", "vector")
    ]
    assert len(_csv_rows(tmp_path / "r" / "risk_vs_n_baselines.csv")) == 2


def _csv_rows(path):
    import csv

    with open(path) as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def test_g6_seeds_export_writes_points_and_distribution(tmp_path):
    from proofs_check.experiments import g6_seeds as G

    res = run_sweep(
        get_sweep("g6_seeds"), profile="quick", out=tmp_path / "g", workers=0, progress=False
    )
    assert res.failed == 0 and res.exported == list(G.FILES)
    pts = _csv_rows(tmp_path / "g" / "g6_seeds.csv")
    assert len(pts) == 4 and list(pts[0]) == G.POINT_COLUMNS
    summ = _csv_rows(tmp_path / "g" / "g6_seeds_summary.csv")
    assert [(r["setting"], r["arch"]) for r in summ] == [
        ("nonmonotone", "scalar"),
        ("nonmonotone", "vector"),
    ]
    for r in summ:
        assert float(r["rel_gap_min"]) <= float(r["rel_gap_median"]) <= float(r["rel_gap_max"])


def test_vector_optimum_is_realised_by_the_trained_parameterisation():
    """The difference-of-cones construction inside the study's D_k = 8d model: its exact risk
    tends to L*_WPGD as the gates saturate; with soft gates (planted) it stays far above."""
    from proofs_check.experiments import trained as T
    from proofs_check.experiments.vector_gap import _exact, _setting, realise_optimum

    setting = _setting(3, 2)
    spec = T.make_spec(setting, "vector")
    target = T.predict_optimum(setting, "vector").risk
    gaps = [
        _exact(setting, spec, realise_optimum(setting, spec, B), 0)[0] / target - 1
        for B in (1.0, 8.0, 24.0)
    ]
    assert gaps[0] > 1e-2 and gaps[1] < 1e-4 and abs(gaps[2]) < 1e-9
    with pytest.raises(ValueError, match="sharpness"):
        realise_optimum(setting, spec, 0.0)


def test_experiment_adapter_runs_points_and_writes_files(tmp_path):
    from proofs_check.sweep.adapt import from_experiment

    sw = from_experiment(C.FakeExperiment)
    res = run_sweep(sw, profile="full", out=tmp_path / "e", workers=0, progress=False)
    assert res.failed == 0 and res.exported == ["exp.csv"]
    lines = (tmp_path / "e" / "exp.csv").read_text().splitlines()
    direct = [r for p in C.exp_points(True) for r in C.exp_run_point(p)]
    assert lines[1:] == [f"{r['x']},{r['draw']!r}" for r in direct]


def test_data_command_runs_experiments_on_the_pool(tmp_path, monkeypatch, capsys):
    """``python -m proofs_check.experiments`` on a 2-worker cluster writes what it writes in-process."""
    from proofs_check.experiments import EXPERIMENTS
    from proofs_check.experiments.__main__ import main as data_main

    monkeypatch.setitem(EXPERIMENTS, "t_exp", C.FakeExperiment)
    assert data_main(["t_exp", "--out", str(tmp_path / "serial"), "--workers", "0"]) == 0
    assert data_main(["t_exp", "--out", str(tmp_path / "par"), "--workers", "2"]) == 0
    assert "local cluster, 2 workers" in capsys.readouterr().err
    assert (tmp_path / "par" / "exp.csv").read_text() == (
        tmp_path / "serial" / "exp.csv"
    ).read_text()
    assert data_main(["t_exp", "--workers", "-3"]) == 2
    assert data_main(["t_exp", "--scheduler", "bad"]) == 2


# ----------------------------------------------------------------------------- gla-verify run on a pool
def test_context_map_uses_the_pool_or_runs_here():
    from proofs_check.registry import Context

    class Recorder:
        backend = "recorder"

        def __init__(self):
            self.calls = []

        def map(self, fn, arglist, progress=None):
            self.calls.append(list(arglist))
            return [fn(*a) for a in arglist]

    pool = Recorder()
    assert Context(pool=pool).map(pow, [(2, 5)]) == [32] and pool.calls == [[(2, 5)]]
    seen = []
    assert Context().map(pow, [(3, 2), (2, 3)], progress=lambda k, n: seen.append((k, n))) == [9, 8]
    assert seen == [(1, 2), (2, 2)]


def test_run_usage_errors_for_pool_options(capsys):
    assert main(["run", "C1", "--workers", "-1"]) == 2
    assert main(["run", "C1", "--scheduler", "nope"]) == 2
    with pytest.raises(SystemExit):
        main(["run", "C1", "--workers", "1", "--scheduler", "tcp://h:1"])


@pytest.mark.slow
def test_run_g5_g6_on_two_workers_gives_the_serial_report():
    """The claims' independent pieces on a 2-worker cluster: same verdicts and figures."""
    from proofs_check.api import run
    from proofs_check.sweep import Pool

    serial = run(["G5", "G6"], seed=0, profile="quick").to_json()
    with Pool(workers=2) as pool:
        par = run(["G5", "G6"], seed=0, profile="quick", pool=pool).to_json()

    def strip(x):  # wall times differ; everything else must not
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if "seconds" not in k}
        return [strip(v) for v in x] if isinstance(x, list) else x

    assert strip(par["claims"]) == strip(serial["claims"])
