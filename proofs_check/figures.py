"""Suite figures: figures that belong to no single claim (benchmarks).

Claim figures live in their claim's file (``@CLAIM.figure``); this module only holds the
figures of the suite itself. Each takes ``(None, out, data_dir)`` like a claim figure.
"""

from __future__ import annotations

import json

import numpy as np

from .plotting import pyplot, save_figure
from .registry import Figure

__all__ = ["SUITE_FIGURES"]


def _bench(claim, out, data_dir):
    gla_path, land_path = data_dir / "bench_gla.json", data_dir / "bench_landscape.json"
    if not gla_path.exists():
        return None
    data = json.loads(gla_path.read_text())
    rows = data["results"]
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.4))
    labels = [f"{r['workload']}\n{r['gate']}" for r in rows]
    x = np.arange(len(rows))
    ax[0].bar(x, [r["chunked_over_recurrent"] for r in rows], color="tab:blue")
    ax[0].axhline(1.0, color="k", lw=0.8, ls="--", label="loop (= 1)")
    ax[0].set_xticks(x, labels, fontsize=8)
    ax[0].set_ylabel("time(chunked) / time(loop)")
    ax[0].legend(fontsize=8)
    ax[1].bar(x, [r["chunked_over_floor"] for r in rows], color="tab:green")
    target = data.get("meta", {}).get("floor_ratio_max", 10.0)
    ax[1].axhline(target, color="tab:red", lw=0.8, ls="--", label=f"target {target:g}x")
    ax[1].set_xticks(x, labels, fontsize=8)
    ax[1].set_ylabel("time(chunked) / time(memory copy)")
    ax[1].legend(fontsize=8)
    save_figure(fig, out, "bench")
    shapes = "; ".join(
        sorted(
            {f"{r['workload']}: B={r['B']}, T={r['T']}, Dk={r['Dk']}, Dv={r['Dv']}" for r in rows}
        )
    )
    cap = (
        f"Speed of gla_chunked relative to the reference loop (left) and to a same-run copy of the bytes it "
        f"reads and writes (right), median of repeated runs, float64; 'key50' is key gating with log-gates "
        f"uniform in [-50, 0], the worst case where every chunk takes the exact dense path. Shapes: {shapes}."
    )
    if land_path.exists():
        land = json.loads(land_path.read_text())["by_threads"].get("1", {})
        parts = [
            f"{k}: solve {v['solve_cold_s'] * 1e3:.2f} ms cold / {v['solve_warm_s'] * 1e3:.2f} ms warm vs "
            f"multistart L-BFGS {v['brute_s'] * 1e3:.1f} ms (ratio {v['ratio_cold']:.0f}x cold, "
            f"{v['ratio_warm']:.0f}x warm)"
            for k, v in land.items()
            if k.startswith("n64")
        ]
        if parts:
            cap += (
                " Certified WPGD solver at n = 64, d = 16 (one BLAS thread): "
                + "; ".join(parts)
                + "."
            )
    return cap


SUITE_FIGURES = [Figure("bench", "Benchmark ratios of the GLA engines and the WPGD solver", _bench)]
