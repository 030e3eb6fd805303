"""The benchmark snapshots (``bench_gla.json``, ``bench_landscape.json``, ``bench_train.json``,
``bench_depth.json``) as experiments.

The benchmarks live in ``bench/`` of a checkout (they are not installed), so these run
``python -m bench.gla`` / ``python -m bench.landscape`` in a subprocess from the working
directory; outside a checkout they fail with a message saying so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._base import Experiment

__all__ = ["DEPTH", "GLA", "LANDSCAPE", "TRAIN", "run_benchmark"]


def run_benchmark(module: str, json_path: Path) -> None:
    """``python -m <module> --json <json_path>`` from the working directory (a checkout)."""
    if not (Path(module.split(".")[0]) / "__init__.py").is_file():
        raise FileNotFoundError(
            f"{module}: the benchmarks are in bench/ of a checkout; run this from the "
            f"repository root (working directory is {Path.cwd()})"
        )
    subprocess.run([sys.executable, "-m", module, "--json", str(json_path)], check=True)


def _one(module: str, file: str, about: str) -> Experiment:
    return Experiment(
        file.removesuffix(".json"),
        (file,),
        lambda full: [{"module": module}],
        lambda p: p,
        lambda results, out: run_benchmark(module, Path(out) / file),
        about=about,
    )


GLA = _one(
    "bench.gla", "bench_gla.json", "benchmark of the GLA engines (subprocess, needs a checkout)"
)
LANDSCAPE = _one(
    "bench.landscape",
    "bench_landscape.json",
    "benchmark of the certified WPGD solver (subprocess, needs a checkout)",
)
TRAIN = _one(
    "bench.train",
    "bench_train.json",
    "benchmark of training steps vs forward passes (subprocess, needs a checkout)",
)
DEPTH = _one(
    "bench.depth",
    "bench_depth.json",
    "benchmark of G5's depth-fit gradient vs its forward pass (subprocess, needs a checkout)",
)
