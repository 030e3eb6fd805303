"""Benchmark of training: ``python -m bench.train [--quick] [--json PATH] [--repeats N] [--torch auto|off]``.

What a training step costs relative to a forward pass, for the residual GLA model of
:mod:`numerics.train` (float64, hand-written gradients):

* shapes (``--shapes``): ``icl`` N=256 prompts, T=41 tokens, D=Dk=11 (an in-context-learning
  batch, ``n = 40`` examples of ``d = 10`` features plus the query); ``long`` N=512, T=129,
  D=Dk=21 (longer prompts, wider tokens); ``seq`` N=16, T=2048, D=Dk=16 (long sequences,
  many chunks per prompt);
* ``L`` = 1..4 layers; gates ``scalar``, ``key`` (on the key axis) and ``none``;
* per configuration, in one process and on the same arrays, ``--repeats`` rounds each
  timing (CPU time, see ``_timed``) one call of ``predict`` (the prediction alone: full-sequence engine for the
  first ``L-1`` layers, the query-only read-out for the last), ``loss_and_grad`` (loss
  and every parameter gradient) and, as the common reference of the row, the one-layer
  ``loss_and_grad`` at the same shape and gate.  Ratios are taken per round (the load of
  the shared machine drifts; pairing cancels most of it) and reported as medians:

  - ``grad/predict`` = loss_and_grad / predict (target <= 3 for every L <= 4);
  - ``step/step1`` = loss_and_grad of ``L`` layers / loss_and_grad of one layer
    (target <= 3 for L = 2);

* if ``torch`` can be imported (it is not a dependency; ``--torch off`` skips it), the same
  model written the usual way in PyTorch (parallel masked form
  ``((Q Kᵀ) ⊙ D) V`` with ``D = exp(c_i - c_j)`` below the diagonal, autograd backward),
  float64, same parameters and data, one thread (as ours), prompts in blocks with
  accumulated gradients where the dense decays would exceed 256 MB: ``torch/ours`` = its
  loss+backward CPU time over ours (target >= 3) and the relative difference of the
  flattened gradients (must be <= 1e-10);
* ``predict/step1`` = predict of ``L`` layers / loss_and_grad of one layer: what our
  prediction alone costs against the one-layer step.  The one-layer step is a closed form
  over tokens (``O(N T D)``: only the query's output matters), while a deeper model needs
  every token's output of its lower layers;
* for ``L = 2``, the floor of the two-layer step, measured on random arrays of the row's
  shape in the same rounds: ``gemm_floor/step1`` = the two token products every method
  must do, the first layer's queries and keys (``N T × D × 2 Dk``) and their weight
  gradient, over the one-layer step; ``floor/step1`` adds the cheapest attention core we
  know for the values the read-out reads (``m = 3`` columns for scalar gates, 2 without,
  ``D`` for key gates): the smallest of the dense form's six batched products
  (``Q Kᵀ``, ``A V``, ``Aᵀ dO``, ``dO Vᵀ``, ``dA K``, ``dAᵀ Q``, no masking; prompts of at
  most 256 tokens), the state form's passes (running state ``Σ_s k_s ⊗ v_s`` and its
  reverse, token-major with the prompts innermost) and the chunked engine's forward and
  reverse pass (:func:`numerics.gla.backward.gla_chunked_vjp_unchecked`), with no other
  work.  Where
  ``floor/step1 > 3`` the ``step/step1 <= 3`` target is out of reach of these methods in
  NumPy on the machine measured.

Results go to ``--json`` (``docs/data/bench_train.json`` in the repository).  Exit code 1
if a target is missed in a full (non ``--quick``) run, else 0.  Absolute times vary with
the machine load; the ratios are what is compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from bench import choices, layer_counts, write_results
from numerics import train as tr

SHAPES = {"icl": (256, 41, 11, 11), "long": (512, 129, 21, 21), "seq": (16, 2048, 16, 16)}
QUICK = {"icl": (32, 17, 5, 4), "long": (16, 65, 8, 8), "seq": (2, 300, 6, 6)}
GATES = ("scalar", "key", "none")
LAYERS = (1, 2, 3, 4)
GRAD_OVER_PREDICT_MAX = 3.0  # loss_and_grad / predict, every L <= 4
STEP2_OVER_STEP1_MAX = 3.0  # two-layer step / one-layer step
TORCH_SPEEDUP_MIN = 3.0  # torch loss+backward / ours
GRAD_AGREEMENT_MAX = 1e-10  # relative difference of the gradients vs torch
# The torch model materialises the dense (N, T, T) decay ((N, T, T, Dk) for key gates) and
# autograd keeps several such arrays: the prompts are split into blocks whose dense decay
# stays below this size (gradient accumulation, as one would do in PyTorch), and a
# configuration where a single prompt exceeds it is skipped there.
TORCH_MAX_DENSE_BYTES = 1 << 28


def make_problem(shape, L: int, gate: str, seed: int = 0):
    """A random model with moderate, token-dependent gates and random prompts."""
    N, T, D, Dk = shape
    rng = np.random.default_rng([seed, L])
    spec = tr.GLASpec(
        D=D, Dk=Dk, num_layers=L, gate=gate, init_scale=0.5, init_gate=0.9, gate_weight_scale=0.5
    )
    params = tr.init_params(spec, seed)
    Z = rng.standard_normal((N, T, D))
    Z[:, -1, spec.label_index] = 0.0
    y = rng.standard_normal(N)
    return spec, params, Z, y


def _timed(fn) -> float:
    """CPU time of this process for one call of ``fn`` (``time.process_time``): on the shared
    2-core machine (load averages of 5-17 measured while other jobs ran) wall times include
    the waits for a core, CPU time does not.  Every matmul here is issued single-threaded
    (the engines keep them below OpenBLAS's threading size), so CPU time is the work done."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


# --------------------------------------------------------------------------- torch


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_loss_fn(torch, spec, Z, y, N_total=None):
    """``params (list of dicts of tensors) -> loss`` written the usual way: per layer the
    parallel masked form with the decay ``exp(c_i - c_j)`` from cumulative log-gates.
    ``N_total``: the batch size the mean is taken over (``Z`` may be one block of it)."""
    Zt = torch.as_tensor(Z)
    yt = torch.as_tensor(y)
    N_total = Z.shape[0] if N_total is None else N_total
    T = Z.shape[1]
    tril = torch.ones(T, T, dtype=torch.bool).tril()
    lab = spec.label_index

    def loss(layers):
        X = Zt
        for p in layers:
            q, k, v = X @ p["W_q"].T, X @ p["W_k"].T, X @ p["W_v"].T
            if spec.gate == "none":
                A = (q @ k.transpose(1, 2)).masked_fill(~tril, 0.0)
            elif spec.gate == "scalar":
                c = torch.cumsum(torch.nn.functional.logsigmoid(X @ p["w_g"] + p["b_g"]), 1)
                diff = (c[:, :, None] - c[:, None, :]).masked_fill(~tril, -float("inf"))
                A = (q @ k.transpose(1, 2)) * torch.exp(diff)
            else:
                c = torch.cumsum(torch.nn.functional.logsigmoid(X @ p["W_g"].T + p["b_g"]), 1)
                diff = (c[:, :, None, :] - c[:, None, :, :]).masked_fill(
                    ~tril[:, :, None], -float("inf")
                )
                A = torch.einsum("nid,njd,nijd->nij", q, k, torch.exp(diff))
            X = X + A @ v
        r = X[:, -1, lab] - yt
        return torch.sum(r * r) / N_total

    return loss


def torch_params(torch, params):
    return [
        {k: torch.tensor(v, requires_grad=True) for k, v in p.items()} for p in params["layers"]
    ]


def torch_step(torch, loss_fns, tparams):
    """One loss + backward; ``loss_fns`` are the prompt blocks (gradient accumulation), each
    returning its share ``(1/N) Σ_block r²`` of the loss."""
    for p in tparams:
        for t in p.values():
            t.grad = None
    total = 0.0
    for loss_fn in loss_fns:
        loss = loss_fn(tparams)
        loss.backward()
        total += float(loss.detach())
    return total


def flat_grads(layers) -> np.ndarray:
    return np.concatenate(
        [np.asarray(g, dtype=float).ravel() for p in layers for _, g in sorted(p.items())]
    )


# --------------------------------------------------------------------------- floor


def floor_work(shape, gate: str, seed: int = 0) -> dict:
    """Callables timing the floor of a two-layer step (module docstring): ``gemms`` (the first
    layer's query/key projection and its weight gradient), ``dense`` (the dense form's six
    batched products, None for prompts longer than 256 tokens), ``state`` (the state
    form's passes) and ``chunked`` (the chunked engine's forward and reverse pass), on
    random arrays of ``shape`` with ``m`` value columns."""
    from numerics._blas import tokens_matmul, tokens_wgrad
    from numerics.gla.backward import gla_chunked_vjp_unchecked

    N, T, D, Dk = shape
    m = {"scalar": 3, "none": 2}.get(gate, D)
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, T, D))
    W = rng.standard_normal((2 * Dk, D))
    dP = rng.standard_normal((N, T, 2 * Dk))
    Q, K = rng.standard_normal((N, T, Dk)), rng.standard_normal((N, T, Dk))
    V, C = rng.standard_normal((N, T, m)), rng.standard_normal((N, T, m))
    out = {"gemms": lambda: (tokens_matmul(Z, W.T), tokens_wgrad(dP, Z)), "dense": None}
    if T <= 256:
        A = np.tril(np.matmul(Q, K.transpose(0, 2, 1)))
        out["dense"] = lambda: (
            np.matmul(Q, K.transpose(0, 2, 1)),
            np.matmul(A, V),
            np.matmul(A.transpose(0, 2, 1), C),
            np.matmul(C, V.transpose(0, 2, 1)),
            np.matmul(A, K),
            np.matmul(A.transpose(0, 2, 1), Q),
        )
    Qs, Ks = (np.ascontiguousarray(x.transpose(1, 2, 0)) for x in (Q, K))  # (T, Dk, N)
    Vs, Cs = (np.ascontiguousarray(x.transpose(1, 2, 0)) for x in (V, C))  # (T, m, N)
    S, R = np.empty((T, Dk, m, N)), np.empty((T, Dk, m, N))

    def state():
        np.multiply(Ks[:, :, None, :], Vs[:, None, :, :], out=S)  # k_s ⊗ v_s
        for t in range(1, T):
            np.add(S[t - 1], S[t], out=S[t])
        o = np.einsum("tdn,tdjn->tjn", Qs, S)
        np.multiply(Qs[:, :, None, :], Cs[:, None, :, :], out=R)  # q_t ⊗ dO_t
        for t in range(T - 2, -1, -1):
            np.add(R[t + 1], R[t], out=R[t])
        dv = np.einsum("tdjn,tdn->tjn", R, Ks)
        dq = np.einsum("tdjn,tjn->tdn", S, Cs)
        dk = np.einsum("tdjn,tjn->tdn", R, Vs)
        return o, dv, dq, dk

    out["state"] = state
    lg = None
    if gate != "none":
        lg = -0.1 * rng.random((N, T) if gate == "scalar" else (N, T, Dk))

    def chunked():
        o, vjp = gla_chunked_vjp_unchecked(Q, K, V, lg, gate="key" if gate == "key" else "scalar")
        return o, vjp(C)

    out["chunked"] = chunked
    return out


# --------------------------------------------------------------------------- bench


def bench_row(shape_name, shape, gate, L, repeats, torch=None) -> dict:
    spec, params, Z, y = make_problem(shape, L, gate)
    spec1, params1, _, _ = make_problem(shape, 1, gate)
    funcs = {
        "predict": lambda: tr.predict(params, spec, Z),
        "grad": lambda: tr.loss_and_grad(params, Z, y, spec),
        "step1": lambda: tr.loss_and_grad(params1, Z, y, spec1),
    }
    tfn = None
    N, T, D, Dk = shape
    per_prompt = 8 * T * T * (Dk if gate == "key" else 1)  # bytes of one dense decay
    if torch is not None and per_prompt > TORCH_MAX_DENSE_BYTES:
        torch = None
    if torch is not None:
        nb = min(N, TORCH_MAX_DENSE_BYTES // per_prompt)
        loss_fn = [
            torch_loss_fn(torch, spec, Z[b : b + nb], y[b : b + nb], N) for b in range(0, N, nb)
        ]
        tparams = torch_params(torch, params)
        tfn = lambda: torch_step(torch, loss_fn, tparams)  # noqa: E731
        funcs["torch"] = tfn
    if L == 2:
        for name, f in floor_work(shape, gate).items():
            if f is not None:
                funcs["floor_" + name] = f
    for f in funcs.values():  # warm-up (caches, allocator, lazy imports)
        f()
    times = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            times[name].append(_timed(f))
    t = {name: np.array(v) for name, v in times.items()}
    row = {
        "shape": shape_name,
        "N": N,
        "T": T,
        "D": D,
        "Dk": Dk,
        "gate": gate,
        "L": L,
        "repeats": repeats,
        "predict_s": float(np.median(t["predict"])),
        "grad_s": float(np.median(t["grad"])),
        "step1_s": float(np.median(t["step1"])),
        "grad_over_predict": float(np.median(t["grad"] / t["predict"])),
        "step_over_step1": float(np.median(t["grad"] / t["step1"])),
        # what the prediction alone costs against the one-layer step: a lower bound of
        # step/step1 for any method that computes the prediction
        "predict_over_step1": float(np.median(t["predict"] / t["step1"])),
    }
    if L == 2:
        att = np.minimum(t["floor_state"], t["floor_chunked"])
        if "floor_dense" in t:
            att = np.minimum(att, t["floor_dense"])
        row["gemm_floor_over_step1"] = float(np.median(t["floor_gemms"] / t["step1"]))
        row["floor_over_step1"] = float(np.median((t["floor_gemms"] + att) / t["step1"]))
    if tfn is not None:
        row["torch_s"] = float(np.median(t["torch"]))
        row["torch_over_ours"] = float(np.median(t["torch"] / t["grad"]))
        loss, g = tr.loss_and_grad(params, Z, y, spec)
        tl = torch_step(torch, loss_fn, tparams)
        ours = flat_grads(g["layers"])
        theirs = flat_grads([{k: v.grad.numpy() for k, v in p.items()} for p in tparams])
        # scaled first: deep random models reach gradients beyond 1e154, whose squares overflow
        scale = float(np.max(np.abs(theirs))) or 1.0
        row["torch_grad_rel_diff"] = float(
            np.linalg.norm((ours - theirs) / scale) / np.linalg.norm(theirs / scale)
        )
        row["torch_loss_rel_diff"] = abs(loss - tl) / abs(tl)
    return row


def accepted(row) -> dict:
    ok = {"grad_over_predict": row["grad_over_predict"] <= GRAD_OVER_PREDICT_MAX}
    if row["L"] == 2:
        ok["step2_over_step1"] = row["step_over_step1"] <= STEP2_OVER_STEP1_MAX
    if "torch_over_ours" in row:
        ok["torch"] = row["torch_over_ours"] >= TORCH_SPEEDUP_MIN
        ok["torch_grad"] = row["torch_grad_rel_diff"] <= GRAD_AGREEMENT_MAX
    return ok


def _write_json(args, torch, rows, all_ok) -> None:
    """The figures so far into ``args.json``, written whole (temporary file, then renamed)."""
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "repeats": args.repeats,
        "targets": {
            "grad_over_predict_max": GRAD_OVER_PREDICT_MAX,
            "step2_over_step1_max": STEP2_OVER_STEP1_MAX,
            "torch_speedup_min": TORCH_SPEEDUP_MIN,
            "grad_agreement_max": GRAD_AGREEMENT_MAX,
        },
        "accepted": all_ok,
    }
    write_results(args.json, meta, rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes (smoke test)")
    ap.add_argument("--json", metavar="PATH", help="save the figures as JSON")
    ap.add_argument(
        "--repeats", type=int, default=9, help="timed rounds per configuration (median)"
    )
    ap.add_argument(
        "--shapes", default=",".join(SHAPES), help=f"comma-separated, from {', '.join(SHAPES)}"
    )
    ap.add_argument(
        "--gates", default=",".join(GATES), help=f"comma-separated, from {', '.join(GATES)}"
    )
    ap.add_argument(
        "--layers", default=",".join(map(str, LAYERS)), help="comma-separated layer counts"
    )
    ap.add_argument(
        "--torch",
        choices=("auto", "off"),
        default="auto",
        help="compare with PyTorch autograd when torch is importable (default)",
    )
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    table = QUICK if args.quick else SHAPES
    shapes = choices(ap, args.shapes, "--shapes", table)
    gates = choices(ap, args.gates, "--gates", GATES)
    layers = layer_counts(ap, args.layers)
    torch = _torch() if args.torch == "auto" else None
    if torch is not None:
        torch.set_default_dtype(torch.float64)
        # One thread, like ours: CPU time then counts the work done, not the spinning of
        # idle worker threads waiting for a core on the shared machine.
        torch.set_num_threads(1)
    rows = []
    hdr = (
        f"{'shape':5} {'gate':6} {'L':>1} {'N':>4} {'T':>5} {'D':>3} {'predict':>9} {'grad':>9} "
        f"{'grad/pred':>9} {'step/step1':>10} {'floor/s1':>8}"
        + (f" {'torch/ours':>10} {'grad diff':>9}" if torch else "")
        + "  ok"
    )
    print(hdr)
    print("-" * len(hdr))
    for sname in shapes:
        for gate in gates:
            for L in layers:
                r = bench_row(sname, table[sname], gate, L, args.repeats, torch)
                r["accepted"] = accepted(r)
                rows.append(r)
                ok = "-" if args.quick else ("yes" if all(r["accepted"].values()) else "NO")
                extra = ""
                if torch:
                    extra = (
                        f" {r['torch_over_ours']:10.2f} {r['torch_grad_rel_diff']:9.1e}"
                        if "torch_over_ours" in r
                        else f" {'(memory)':>10} {'-':>9}"
                    )
                print(
                    f"{sname:5} {gate:6} {L:1d} {r['N']:4d} {r['T']:5d} {r['D']:3d} {r['predict_s']:9.5f} "
                    f"{r['grad_s']:9.5f} {r['grad_over_predict']:9.2f} {r['step_over_step1']:10.2f} "
                    f"{r['floor_over_step1'] if 'floor_over_step1' in r else float('nan'):8.2f}{extra}  {ok}",
                    flush=True,
                )
                if args.json:  # after every row: a long run stopped early keeps its rows
                    _write_json(args, torch, rows, all(all(x["accepted"].values()) for x in rows))
    all_ok = all(all(r["accepted"].values()) for r in rows)
    print(
        f"\nCPU times in seconds (median of {args.repeats} rounds); ratios are medians of per-round ratios."
    )
    print(
        f"targets: grad/predict <= {GRAD_OVER_PREDICT_MAX:g}, two-layer step <= "
        f"{STEP2_OVER_STEP1_MAX:g}x one-layer step"
        + (
            f", torch/ours >= {TORCH_SPEEDUP_MIN:g} with gradients within {GRAD_AGREEMENT_MAX:g}"
            if torch
            else " (torch not importable: comparison skipped)"
        )
        + (": not evaluated (--quick)" if args.quick else (": PASS" if all_ok else ": FAIL"))
    )
    if args.json:
        _write_json(args, torch, rows, all_ok)
    return 0 if (all_ok or args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
