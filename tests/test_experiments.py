"""The experiments package: grids of pure points, writers, and the one regeneration command."""

import numpy as np
import pytest

from numerics.data import MultitaskModel
from proofs_check.experiments import EXPERIMENTS, depth as ed, phase_diagram as pd
from proofs_check.experiments.__main__ import main


def test_depth_rows_and_csv(tmp_path):
    model = MultitaskModel.single_task(4, np.eye(2), sigma=0.5)
    rows = ed.depth_rows("tiny", model, L_max=2, num_train=300, num_test=1000, seed=0, maxiter=10)
    assert len(rows) == 4
    path = tmp_path / "depth.csv"
    ed.write_depth_csv(path, rows)
    header = path.read_text().splitlines()[0].split(",")
    assert header == ed.COLUMNS


def test_phase_rows_are_pure_and_written_with_settings(tmp_path):
    a = [pd.phase_row(2, s) for s in (-0.5, 0.5)]
    b = [pd.phase_row(2, s) for s in (0.5, -0.5)][::-1]
    assert a == b  # same point, same row, in any order
    assert a[0]["L_gla_distinct"] == pytest.approx(
        a[0]["L_la"], rel=1e-12
    )  # decreasing rho: GLA = LA
    assert a[1]["gla_eq_wpgd"] and a[1]["gla_gt_la"]
    path = tmp_path / "pd.csv"
    pd.write_phase_csv(path, a)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# Sigma")
    assert next(ln for ln in lines if not ln.startswith("#")).split(",") == pd.COLUMNS


def test_every_experiment_names_its_files_and_has_points():
    for e in EXPERIMENTS.values():
        assert e.files and e.about
        assert e.points(False), e.name


def test_command_usage_errors(capsys):
    assert main(["--list"]) == 0
    assert "depth.csv" in capsys.readouterr().out
    assert main(["nope"]) == 2


def test_benchmarks_need_a_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench_gla", "--out", str(tmp_path), "--workers", "0"]) == 3
    assert "checkout" in capsys.readouterr().err
