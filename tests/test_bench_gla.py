"""Smoke test of ``python -m bench.gla`` (its figures are measured, not tested)."""

from __future__ import annotations

import json

import numpy as np

from bench import gla as bench_gla


def test_quick_run_writes_every_ratio(tmp_path, capsys):
    """One quick repeat of the scalar and key rows: exit code 0 (``--quick`` is never
    judged), every row with its floor, chunked and gemm times and ratios, chunked within
    1e-10 of the loop."""
    out = tmp_path / "b.json"
    assert (
        bench_gla.main(["--quick", "--repeats", "1", "--gates", "scalar,key", "--json", str(out)])
        == 0
    )
    data = json.loads(out.read_text())
    rows = data["results"]
    assert [(r["workload"], r["gate"]) for r in rows] == [
        (w, g) for w in ("icl", "long") for g in ("scalar", "key")
    ]
    for r in rows:
        for key in (
            "floor_s",
            "chunked_s",
            "gemm_s",
            "chunked_over_floor",
            "gemm_over_floor",
            "bound_over_floor",
        ):
            assert np.isfinite(r[key]) and r[key] > 0, (key, r)
        assert r["rel_rms_chunked_vs_recurrent"] <= 1e-10
    printed = capsys.readouterr().out
    assert "gemm/fl" in printed and "bnd/fl" in printed
    assert data["meta"]["peak_gflops"] == rows[0]["peak_gflops"] > 0


def test_gemm_bound_covers_every_full_chunk(monkeypatch):
    """The products of ``gemm_bound`` visit every full chunk of every prompt once (counted
    through the ``Q Kᵀ`` products: one per chunk), the remainder chunk not at all."""
    B, T, D, C = 3, 70, 5, 16
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((B, T, D)) for _ in range(3))
    run = bench_gla.gemm_bound(q, k, v, C, "scalar")
    seen = []
    real = np.matmul

    def counting(a, b, out=None):
        if b.shape[-1] == C and a.shape[-1] == D:  # Q Kᵀ: (.., C, D) @ (.., D, C)
            seen.append(a.shape[0] * a.shape[1])
        return real(a, b, out=out)

    monkeypatch.setattr(bench_gla.np, "matmul", counting)
    run()
    assert sum(seen) == B * (T // C)


def test_bound_counts_the_cheaper_method():
    """``bound_flops``: the state form's ``4 Dk Dv`` per token on long prompts, the causal
    quadratic form's ``(T + 1)(Dk + Dv)`` on short ones; checked on hand counts."""
    # long: 4·64·64 = 16384 < 16385·128 per token
    assert bench_gla.bound_flops(8, 16384, 64, 64) == 8 * 16384 * 16384
    # short: (3 + 1)·(5 + 7) = 48 < 4·5·7 = 140 per token
    assert bench_gla.bound_flops(2, 3, 5, 7) == 2 * 3 * 48
