"""Smoke test of ``python -m bench.depth`` (its figures are measured, not tested)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import depth as bench_depth
from numerics import depth as nd

RATIOS = ("grad_over_forward", "step_over_step1", "grad_over_floor", "threads")
TIMES = ("forward_ms", "grad_ms", "step1_ms", "floor_ms", "grad_default_threads_ms")


def test_quick_run_writes_every_ratio(tmp_path, capsys):
    """One quick round of every setting, architecture and depth: exit code 0 (``--quick`` is
    never judged), one row per configuration in order, every time and ratio finite and
    positive, every risk finite, the meta data of the run."""
    out = tmp_path / "b.json"
    assert bench_depth.main(["--quick", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = data["results"]
    assert [(r["setting"], r["architecture"], r["L"]) for r in rows] == [
        (s, a, L)
        for s in bench_depth.SETTINGS
        for a in bench_depth.ARCHITECTURES
        for L in bench_depth.LAYERS
    ]
    for r in rows:
        assert r["N"] == bench_depth.QUICK_N and r["repeats"] == 1 and r["calls"] >= 1
        assert np.isfinite(r["risk"]) and r["risk"] > 0, r
        for key in RATIOS + TIMES:
            assert np.isfinite(r[key]) and r[key] > 0, (key, r)
        assert set(r["accepted"]) == {"grad_over_forward"}
    shapes = {r["setting"]: (r["T"], r["d"], r["precond"]) for r in rows}
    assert shapes == {
        "3-task": (10, 3, "scalar"),
        "3-task-aniso": (10, 3, "full"),
        "3-task-d8": (25, 8, "full"),
    }
    meta = data["meta"]
    assert meta["quick"] is True and meta["timer"] == "process_time"
    assert meta["targets"] == {"grad_over_forward_max": bench_depth.GRAD_OVER_FORWARD_MAX}
    assert meta["elapsed_wall_s"] > 0 and len(meta["loadavg_end"]) == 3
    printed = capsys.readouterr().out
    assert "grad/fwd" in printed and "grad/floor" in printed and "not evaluated" in printed


def test_params_share_their_first_layers():
    """``make_params``: the depth-1 parameters are the first layer of the depth-3 ones (so
    ``step/step1`` compares a model with its own first layer), ``P`` a perturbation of
    ``I/(n + d + 1)`` by ``0.1 Z/(n + d + 1)`` (a multiple of ``I`` for scalar ``P``), and the
    gate logits drop out for linear attention."""
    model = bench_depth.make_model("3-task-aniso")
    owner, K = nd.segment_starts(model)
    n, d = model.n, model.d
    for arch in nd.ARCHITECTURES:
        for precond in nd.PRECONDS:
            specs = [nd._Spec(L, d, K, arch, precond, owner) for L in (1, 3)]
            v1, v3 = (bench_depth.make_params(s, n) for s in specs)
            assert v1.shape == (specs[0].size,) and v3.shape == (specs[1].size,)
            np.testing.assert_array_equal(v3[: v1.size], v1)
            Ps, theta = specs[1].unpack(v3)
            assert theta.shape == (3, K if arch == "gla" else 0)
            for P in Ps:
                E = P * (n + d + 1) - np.eye(d)
                assert 0 < np.abs(E).max() < 0.5  # 0.1 |Z| of seeded standard normals
                if precond == "scalar":
                    np.testing.assert_array_equal(E, E[0, 0] * np.eye(d))


def test_bad_arguments_are_usage_errors(capsys):
    """An unknown setting or a layer count below 1 is refused before any timing, with exit
    status 2 and a message naming the option (the list parsing the three benches share)."""
    for argv, flag in (
        (["--settings", "3-task,nope"], "--settings: unknown setting 'nope'"),
        (["--layers", "0"], "--layers: layer counts must be >= 1"),
        (["--layers", "x"], "--layers: expected comma-separated integers"),
    ):
        with pytest.raises(SystemExit) as exc:
            bench_depth.main(["--quick", *argv])
        assert exc.value.code == 2 and flag in capsys.readouterr().err
