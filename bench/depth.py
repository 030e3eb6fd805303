"""Benchmark of the depth training step: ``python -m bench.depth [--quick] [--json PATH] [--repeats N]``.

What one evaluation of the objective that :func:`numerics.depth.optimise_depth` hands to
L-BFGS-B costs, relative to the forward pass alone, for the ``L``-layer causal WPGD models
of claim G5:

* settings (``--settings``): ``3-task`` and ``3-task-aniso`` of the G5 study
  (:func:`proofs_check.experiments.depth.settings`, ``n = 9``, ``d = 3``, ``K = 3``) and
  ``3-task-d8``, a paper-scale one built here (``m = (8, 8, 8)``, ``n = 24``, ``d = 8``,
  ``Σ = diag(linspace(1.8, 0.3, 8))``, ``Γ = I``, ``ρ = (0.2, 0.4, 0.8)``, ``σ = 0.5``);
  the preconditioner is the study's default (``precond="auto"``: ``scalar`` for the
  isotropic ``3-task``, ``full`` for the other two); architectures ``gla`` and ``linear``;
  ``L`` = 1..4 layers;
* data: ``N`` prompts (the full profile's ``num_train`` = 8000 of
  :func:`proofs_check.experiments.depth.budget`; 256 with ``--quick``) drawn with seed 0,
  token arrays ``Xt: (T, d, N)`` (``T = n + 1``) from :func:`numerics.depth._tokens`;
  fixed random parameters (:func:`make_params`: ``P_ℓ = (I + 0.1 Z_ℓ)/(n + d + 1)``, or
  ``p_ℓ = (1 + 0.1 z_ℓ)/(n + d + 1)`` for scalar ``P``, and gate logits ``θ_ℓ ~ N(0, 1)``),
  the same first layers at every depth;
* per configuration, in one process and on the same arrays, ``--repeats`` rounds, each
  timing (CPU time, see :func:`_timed`) a block of ``calls`` evaluations (the same
  ``calls`` for every function of the row, chosen at warm-up so that one forward block
  lasts at least ``min_block_s``; times below are per evaluation), each block after a
  lead-in of untimed calls of the same function (:func:`_lead_in`, ``lead_s``), of

  - ``forward``: :func:`numerics.depth._forward` with ``keep=False`` (the reference of the
    row; ``Ps``, ``Ω`` built outside the timing);
  - ``grad``: :func:`numerics.depth._risk_and_grad` (risk and the exact gradient in the
    packed parameters, everything included: unpacking, gates, ``Ω``, forward with caches,
    reverse pass);
  - ``step1``: ``_risk_and_grad`` of the depth-1 model of the same setting and
    architecture;
  - ``floor``: the memory-traffic floor of the gradient: ``3 L`` passes
    ``np.multiply(Xt, B, out=C)`` over preallocated arrays of the row's shape
    ``(T, d, N)`` (each reads two such arrays and writes one). Any implementation of the
    recursion must, per layer, stream over the token arrays at least once forward (read
    ``X`` and the iterates ``W``, write the new iterates; the token mixing ``Ω V`` can be
    fused into that pass as a gated running sum) and twice in reverse (the running sum
    ``Ωᵀ ∂U`` and the update ``Γ_ℓ = Γ_{ℓ+1} − X ⊙ ⟨∂V, X⟩``); one ufunc pass is the cheapest
    such pass NumPy has. The floor leaves out every flop of the token mixing and every
    reduction (``∂P``, ``∂θ``), so it is a lower bound, not an estimate;

  and, last in the round, ``grad`` again with OpenBLAS's default thread count.  All other
  timings run with OpenBLAS limited to one thread (``threadpoolctl``), as the tool runs
  its claims (``proofs_check.api``): CPU time then counts the work done.  With the default
  threads, a BLAS call above OpenBLAS's threading size (the scalar-``P`` gradient's
  ``np.vdot`` was one, until it became an einsum) wakes a worker thread that spins for about 0.1 s afterwards
  (measured on this machine), which CPU time counts; the round therefore ends with
  ``settle_s`` of sleep (not timed) so the spin does not leak into the next round.  The
  process keeps freed memory in its heap (:func:`numerics._heap.keep_heap`, as the command
  line that runs G5 does), so repeated evaluations do not fault their temporaries in anew.

  Ratios are taken per round (the load of the shared machine drifts; pairing cancels most
  of it) and reported as medians:

  - ``grad/forward`` = grad / forward (target ``<= GRAD_OVER_FORWARD_MAX`` = 4 for every
    ``L <= 4``; reverse-mode differentiation gives a function and its gradient for a
    small constant multiple of one evaluation, about 5 in Griewank and Walther's cost model
    (*Evaluating Derivatives*, 2nd ed., 2008: the cheap gradient principle), and 4 is kept
    below that. ``bench.train``'s ``grad/predict <= 3`` is the issue's target for the GLA
    model; here the forward pass is so cheap (layer 0 starts from ``W = 0``: no residual
    pass) that the three streaming passes of a layer's reverse against one or two of its
    forward put ``d = 3`` rows at 2.3-3.3);
  - ``step/step1`` = grad of ``L`` layers / grad of one layer (no target; above ``L``: the
    reverse pass of layer 0 stops before ``∂V`` and ``Γ_0``, so the first layer costs less
    than each further one);
  - ``grad/floor`` = grad / floor (no target: how far the step is from streaming its
    arrays three times per layer);
  - ``threads`` = grad with OpenBLAS's default threads / grad with one thread (CPU time:
    above 1 where a second thread spins or waits instead of working; what a caller of
    :mod:`numerics.depth` outside the tool pays, and it grows with the machine's load);
  - ``forward_ms``, ``grad_ms``, ``step1_ms``, ``floor_ms``, ``grad_default_threads_ms``:
    medians of the absolute CPU times per evaluation (informational).

Results go to ``--json`` (``docs/data/bench_depth.json`` in the repository), rewritten whole
after every row.  ``--quick`` (smoke test) uses ``N = 256``, blocks of at least 1 ms,
no lead-in and no settling sleep; its figures are not judged.  Exit code 1 if a target is missed in a full (non ``--quick``) run, else
0.  Absolute times vary with the machine load; the ratios are what is compared.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from bench import choices, layer_counts, write_results
from numerics import depth as nd
from numerics._heap import keep_heap
from numerics.data import MultitaskModel
from proofs_check.experiments import depth as g5

LAYERS = (1, 2, 3, 4)
ARCHITECTURES = nd.ARCHITECTURES  # ("gla", "linear")
SETTINGS = ("3-task", "3-task-aniso", "3-task-d8")
QUICK_N = 256  # prompts of a --quick run
GRAD_OVER_FORWARD_MAX = 4.0  # grad / forward, every L <= 4 (reverse-mode bound, see above)
# Timing profile: a forward block of at least MIN_BLOCK_S keeps the timer's resolution and
# the scheduler's noise small against the block; LEAD_S of untimed calls before a block takes
# out the slow first calls after a switch of function (see _lead_in); SETTLE_S (> the ~0.1 s
# OpenBLAS spin) ends a round. --quick only checks that the bench runs: short blocks, no
# lead-in, no settling.
MIN_BLOCK_S = 0.02
LEAD_S = 0.02
SETTLE_S = 0.2
QUICK_MIN_BLOCK_S = 0.001
QUICK_LEAD_S = 0.0
QUICK_SETTLE_S = 0.0


def make_model(name: str) -> MultitaskModel:
    """The model of setting ``name`` (module docstring)."""
    if name == "3-task-d8":
        return MultitaskModel.k_task(
            np.array([8, 8, 8]),
            np.eye(3),
            np.array([0.2, 0.4, 0.8]),
            np.diag(np.linspace(1.8, 0.3, 8)),
            sigma=0.5,
        )
    return g5.settings(True)[name]


def make_params(spec: nd._Spec, n: int, seed: int = 0) -> np.ndarray:
    """Packed parameters ``(spec.size,)`` for ``spec``: layer ``ℓ`` draws from
    ``default_rng([seed, ℓ])`` a ``(d, d)`` standard normal ``Z`` and ``K`` logits ``θ_ℓ``, and
    takes ``P_ℓ = (I + 0.1 Z)/(n + d + 1)`` (``precond="full"``) or ``p_ℓ I`` with
    ``p_ℓ = (1 + 0.1 Z_00)/(n + d + 1)`` (``"scalar"``); ``θ_ℓ`` is dropped for ``"linear"``.
    Layer ``ℓ`` does not depend on ``spec.L``: the depth-1 parameters are the first layer of
    every deeper model's."""
    d, K = spec.d, spec.K
    Ps, thetas = [], []
    for layer in range(spec.L):
        rng = np.random.default_rng([seed, layer])
        Z = rng.standard_normal((d, d))
        theta = rng.standard_normal(K)
        E = Z[0, 0] * np.eye(d) if spec.precond == "scalar" else Z
        Ps.append((np.eye(d) + 0.1 * E) / (n + d + 1))
        thetas.append(theta[: spec.n_theta])
    return spec.pack(Ps, np.array(thetas).reshape(spec.L, spec.n_theta))


def _timed(fn, calls: int) -> float:
    """CPU time of this process (``time.process_time``, all its threads) for ``calls`` calls of
    ``fn``: on the shared 2-core machine wall times include the waits for a core, CPU time
    does not (and it counts spinning BLAS threads, which ``threads`` measures)."""
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return time.process_time() - t0


def _lead_in(fn, seconds: float) -> None:
    """Untimed calls of ``fn`` until ``seconds`` of CPU time have passed (none if ``seconds``
    is 0). The first calls of a function after another one has run are slower (measured on
    ``3-task-aniso`` GLA ``L = 1``: 3.3 ms, then 3.0, 2.7, ... to 2.3 ms, no page faults):
    without a lead-in, the same ``_risk_and_grad`` timed twice in a row in each round read
    1.08-1.23x apart (medians of 21 rounds, depending on what ran before), with 20 ms of
    lead-in 1.02-1.03x. In a training run the gradient is called back to back."""
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        fn()


def floor_work(Xt: np.ndarray, L: int, seed: int = 0):
    """The floor of the row (module docstring): a function making ``3 L`` passes
    ``np.multiply(Xt, B, out=C)`` with ``B, C`` arrays of ``Xt``'s shape ``(T, d, N)``."""
    B = np.random.default_rng(seed).standard_normal(Xt.shape)
    C = np.empty_like(Xt)

    def run():
        for _ in range(3 * L):
            np.multiply(Xt, B, out=C)

    return run


def bench_row(name: str, model, prompts, arch: str, L: int, repeats: int, timing: dict) -> dict:
    """One row: setting ``name`` (``model``, training ``prompts``), architecture ``arch``,
    ``L`` layers; ``timing``: ``min_block_s``, ``lead_s`` and ``settle_s`` (module docstring)."""
    owner, K = nd.segment_starts(model)
    precond = nd._resolve_precond(model, "auto")
    Xt, yt = nd._tokens(prompts.X, prompts.y, prompts.x)
    x, y_query = prompts.x, prompts.y_query
    spec = nd._Spec(L, model.d, K, arch, precond, owner)
    spec1 = nd._Spec(1, model.d, K, arch, precond, owner)
    v, v1 = make_params(spec, model.n), make_params(spec1, model.n)
    Ps, theta = spec.unpack(v)
    Oms = [nd.causal_weight_matrix(lg) for lg in spec.log_gates(theta)]
    scalar = precond == "scalar"
    risk = nd._risk_and_grad(v, spec, Xt, yt, x, y_query)[0]
    if not math.isfinite(risk):
        raise RuntimeError(f"{name} {arch} L={L}: risk {risk} at the benchmark parameters")
    funcs = {
        "forward": lambda: nd._forward(Xt, yt, Ps, Oms, keep=False, scalar=scalar),
        "grad": lambda: nd._risk_and_grad(v, spec, Xt, yt, x, y_query),
        "step1": lambda: nd._risk_and_grad(v1, spec1, Xt, yt, x, y_query),
        "floor": floor_work(Xt, L),
    }
    with threadpool_limits(limits=1):
        for f in funcs.values():  # warm-up (caches, allocator, lazy imports)
            f()
        t_fwd = min(_timed(funcs["forward"], 1) for _ in range(3))
    calls = max(1, math.ceil(timing["min_block_s"] / max(t_fwd, 1e-6)))
    times: dict[str, list[float]] = {k: [] for k in (*funcs, "grad_default_threads")}
    for _ in range(repeats):
        with threadpool_limits(limits=1):
            for k, f in funcs.items():
                _lead_in(f, timing["lead_s"])
                times[k].append(_timed(f, calls) / calls)
        _lead_in(funcs["grad"], timing["lead_s"])
        times["grad_default_threads"].append(_timed(funcs["grad"], calls) / calls)
        time.sleep(timing["settle_s"])  # let a spinning BLAS worker go idle (not timed)
    t = {k: np.array(a) for k, a in times.items()}
    T, d, N = Xt.shape
    return {
        "setting": name,
        "architecture": arch,
        "precond": precond,
        "L": L,
        "N": N,
        "T": T,
        "d": d,
        "K": K,
        "n_params": spec.size,
        "risk": float(risk),
        "repeats": repeats,
        "calls": calls,
        "forward_ms": 1e3 * float(np.median(t["forward"])),
        "grad_ms": 1e3 * float(np.median(t["grad"])),
        "step1_ms": 1e3 * float(np.median(t["step1"])),
        "floor_ms": 1e3 * float(np.median(t["floor"])),
        "grad_default_threads_ms": 1e3 * float(np.median(t["grad_default_threads"])),
        "grad_over_forward": float(np.median(t["grad"] / t["forward"])),
        "step_over_step1": float(np.median(t["grad"] / t["step1"])),
        "grad_over_floor": float(np.median(t["grad"] / t["floor"])),
        "threads": float(np.median(t["grad_default_threads"] / t["grad"])),
    }


def accepted(row) -> dict:
    return {"grad_over_forward": row["grad_over_forward"] <= GRAD_OVER_FORWARD_MAX}


def _blas() -> list[dict]:
    """The BLAS libraries loaded (name, version, default thread count)."""
    keys = ("internal_api", "version", "num_threads", "threading_layer")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.depth", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"N = {QUICK_N} prompts (smoke test)")
    ap.add_argument("--json", metavar="PATH", help="save the figures as JSON")
    ap.add_argument(
        "--repeats", type=int, default=15, help="timed rounds per configuration (median)"
    )
    ap.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help=f"comma-separated, from {', '.join(SETTINGS)}",
    )
    ap.add_argument(
        "--layers", default=",".join(map(str, LAYERS)), help="comma-separated layer counts"
    )
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    names = choices(ap, args.settings, "--settings", SETTINGS)
    layers = layer_counts(ap, args.layers)
    N = QUICK_N if args.quick else g5.budget(True)["num_train"]
    timing = (
        {"min_block_s": QUICK_MIN_BLOCK_S, "lead_s": QUICK_LEAD_S, "settle_s": QUICK_SETTLE_S}
        if args.quick
        else {"min_block_s": MIN_BLOCK_S, "lead_s": LEAD_S, "settle_s": SETTLE_S}
    )
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "repeats": args.repeats,
        "timer": "process_time",
        **timing,
        "keep_heap": keep_heap(),  # before any timing: the setting of the G5 runs
        "targets": {"grad_over_forward_max": GRAD_OVER_FORWARD_MAX},
        "loadavg_start": list(os.getloadavg()),
    }
    wall0, cpu0 = time.perf_counter(), time.process_time()
    rows: list[dict] = []
    hdr = (
        f"{'setting':12} {'arch':6} {'L':>1} {'P':6} {'N':>5} {'T':>3} {'d':>2} "
        f"{'forward':>8} {'grad':>8} {'grad/fwd':>8} {'step/step1':>10} {'grad/floor':>10} "
        f"{'threads':>7}  ok"
    )
    print(hdr)
    print("-" * len(hdr))
    for name in names:
        model = make_model(name)
        prompts = model.sample(N, np.random.default_rng(0))
        for arch in ARCHITECTURES:
            for L in layers:
                r = bench_row(name, model, prompts, arch, L, args.repeats, timing)
                r["accepted"] = accepted(r)
                rows.append(r)
                ok = "-" if args.quick else ("yes" if all(r["accepted"].values()) else "NO")
                print(
                    f"{name:12} {arch:6} {L:1d} {r['precond']:6} {r['N']:5d} {r['T']:3d} "
                    f"{r['d']:2d} {r['forward_ms']:8.3f} {r['grad_ms']:8.3f} "
                    f"{r['grad_over_forward']:8.2f} {r['step_over_step1']:10.2f} "
                    f"{r['grad_over_floor']:10.1f} {r['threads']:7.2f}  {ok}",
                    flush=True,
                )
                if args.json:  # after every row: a long run stopped early keeps its rows
                    write_results(args.json, meta, rows)
    all_ok = all(all(r["accepted"].values()) for r in rows)
    meta["accepted"] = all_ok
    meta["loadavg_end"] = list(os.getloadavg())
    meta["elapsed_wall_s"] = time.perf_counter() - wall0
    meta["elapsed_cpu_s"] = time.process_time() - cpu0
    print(
        f"\nCPU times in ms per evaluation (median of {args.repeats} rounds); ratios are medians "
        f"of per-round ratios; all but 'threads' with OpenBLAS on one thread."
    )
    print(
        f"target: grad/forward <= {GRAD_OVER_FORWARD_MAX:g} for every L"
        + (": not evaluated (--quick)" if args.quick else (": PASS" if all_ok else ": FAIL"))
    )
    print(
        f"load average (1, 5, 15 min): start {meta['loadavg_start']}, end {meta['loadavg_end']}; "
        f"{meta['elapsed_wall_s']:.1f} s wall, {meta['elapsed_cpu_s']:.1f} s CPU"
    )
    if args.json:
        write_results(args.json, meta, rows)
    return 0 if (all_ok or args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
