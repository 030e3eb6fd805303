"""The appendix figures (registered with :func:`proofs_check.appendix.figure`).

Each figure function computes its data from the numerical engines with fixed, stated
settings (or reads the data files the claims and benchmarks wrote under ``docs/data``),
saves ``figures/<name>.pdf|png`` and returns its caption.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .appendix import figure, save_figure

DATA = Path(__file__).resolve().parent.parent / "docs" / "data"


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@figure("gating_matrix", "Gating is weighting: the decay matrix D and the induced WPGD weights")
def _gating_matrix(report, out):
    from numerics.gla import decay_matrix
    from numerics.wpgd import weights_from_log_gates

    plt = _plt()
    # A 3-segment prompt with delimiter tokens: example gates 1, delimiter gates 0.5 and 0.7.
    m = [5, 5, 5]
    gates = []
    for k, mk in enumerate(m):
        gates += [1.0] * mk
        gates.append([0.5, 0.7, 1.0][k])  # delimiter after segment k (the last is the query's slot)
    gates = np.array(gates[:-1] + [1.0])  # the final token is the query, gate 1
    log_g = np.log(gates)[None, :]
    D = decay_matrix(log_g)[0]
    omega = weights_from_log_gates(log_g)[0]
    fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.6), gridspec_kw={"width_ratios": [1, 1.4]})
    im = ax[0].imshow(D, cmap="viridis", vmin=0, vmax=1)
    ax[0].set_xlabel("source token j")
    ax[0].set_ylabel("target token i")
    ax[0].set_title(r"$D_{ij}=\prod_{k=j+1}^{i} g_k$")
    fig.colorbar(im, ax=ax[0], fraction=0.046)
    ax[1].bar(np.arange(1, len(omega) + 1), omega, color="tab:blue")
    ax[1].set_xlabel("token position i")
    ax[1].set_ylabel(r"weight $\omega_i$ (dimensionless)")
    ax[1].set_title(r"last row: $\omega_i=\prod_{j>i} g_j$")
    save_figure(fig, out, "gating_matrix")
    return ("Decay matrix D of a scalar-gated GLA (left) and the WPGD weights it induces on the query "
            "(right, last row of D without the diagonal entry). Prompt: 3 segments of 5 examples, each "
            "followed by a delimiter token; example gates 1, delimiter gates 0.5 and 0.7, query gate 1.")


@figure("landscape_1d", "The 1-D reduction of the WPGD landscape and its fixed point")
def _landscape_1d(report, out):
    from numerics.data import MultitaskModel
    from numerics.landscape import omega_curve, solve_wpgd
    from numerics.risk import phi, profile_risk

    plt = _plt()
    d = 4
    Sigma = np.diag([4.0, 1.0, 0.5, 0.1])
    model = MultitaskModel.k_task([6, 6, 6], np.eye(3), [0.3, 0.6, 0.5], Sigma, sigma=0.5)
    sol = solve_wpgd(model)
    lo, hi = sol.certificate["bracket"]
    ts = np.geomspace(lo, hi, 200)
    g = np.array([phi(model, omega_curve(model, t)) - t for t in ts])
    risk = np.array([profile_risk(model, omega_curve(model, t)) for t in ts])
    fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.4))
    ax[0].plot(ts, g, color="tab:blue")
    ax[0].axhline(0, color="k", lw=0.6)
    ax[0].axvline(sol.t, color="tab:red", ls="--", label=f"fixed point t* = {sol.t:.3f}")
    ax[0].set_xscale("log")
    ax[0].set_xlabel(r"$t$ (bracket $[1/\lambda_{max}, 1/\lambda_{min}]$)")
    ax[0].set_ylabel(r"$\varphi(\omega(t)) - t$")
    ax[0].legend(fontsize=8)
    ax[1].plot(ts, risk, color="tab:green")
    ax[1].axvline(sol.t, color="tab:red", ls="--")
    ax[1].set_xscale("log")
    ax[1].set_xlabel(r"$t$")
    ax[1].set_ylabel(r"profile risk $L(\omega(t))$")
    save_figure(fig, out, "landscape_1d")
    return (f"The curve of candidate optima omega(t) = (A + tB)^-1 r over the bracket [{lo:.2f}, {hi:.2f}]: "
            f"phi(omega(t)) - t (left) vanishes at the fixed point t* = {sol.t:.4f}, where the profile risk "
            f"(right) is minimal ({sol.risk:.4f}). Setting: K = 3 independent tasks, m = (6, 6, 6), "
            f"rho = (0.3, 0.6, 0.5), Sigma = diag(4, 1, 0.5, 0.1), d = {d}, sigma = 0.5.")


def _three_task_model(n_per: int, rho=(0.2, 0.7, 0.5), d: int = 4, sigma: float = 0.5):
    """K = 3 independent tasks, Sigma = I: optimal weights prop. to rho_k/(m_k+1+d+sigma^2), non-monotone."""
    from numerics.data import MultitaskModel
    return MultitaskModel.k_task([n_per] * 3, np.eye(3), list(rho), np.eye(d), sigma=sigma)


def _architecture_optima(model):
    """(name, omega, P, risk) for linear attention, scalar GLA, vector GLA and optimal WPGD."""
    from numerics.gla_landscape import solve_gla
    from numerics.landscape import solve_wpgd
    from numerics.risk import optimal_P, profile_risk

    ones = np.ones(model.n) / np.sqrt(model.n)
    out = [("linear attention", ones, optimal_P(model, ones), profile_risk(model, ones))]
    s = solve_gla(model, gating="scalar", delimiters="distinct")
    out.append(("scalar GLA", s.omega, s.P, s.risk))
    v = solve_gla(model, gating="vector", delimiters="distinct")
    out.append(("vector GLA", v.omega, v.P, v.risk))
    w = solve_wpgd(model)
    out.append(("optimal WPGD", w.omega, w.P, w.risk))
    return out


_STYLE = {"linear attention": ("tab:gray", "o", "-"), "scalar GLA": ("tab:blue", "s", "-"),
          "vector GLA": ("tab:orange", "^", "--"), "optimal WPGD": ("k", "x", ":")}


@figure("risk_vs_n", "Risk vs number of in-context examples: linear attention, scalar GLA, vector GLA, WPGD")
def _risk_vs_n(report, out):
    from numerics.risk import monte_carlo_risk, wpgd_predictor

    plt = _plt()
    per = np.arange(1, 21)
    curves = {name: [] for name in _STYLE}
    for m in per:
        for name, _, _, risk in _architecture_optima(_three_task_model(int(m))):
            curves[name].append(risk)
    mc_per = [2, 6, 12, 20]
    num_prompts = 20000
    rng = np.random.default_rng(2024)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, (col, mk, ls) in _STYLE.items():
        ax.plot(3 * per, curves[name], color=col, ls=ls, label=f"{name} (theory)")
    for m in mc_per:
        model = _three_task_model(m)
        for j, (name, omega, P, _) in enumerate(_architecture_optima(model)):
            mean, se = monte_carlo_risk(model, wpgd_predictor(P, omega), num_prompts, rng)
            col, mk, _ = _STYLE[name]
            ax.errorbar(3 * m + 0.5 * (j - 1.5), mean, yerr=2 * se, color=col, marker=mk, ls="none", ms=5, capsize=2)
    ax.set_xlabel("number of in-context examples n (3 segments of n/3)")
    ax.set_ylabel(r"risk $E(y-\hat y)^2$ (squared label units)")
    ax.legend(fontsize=8)
    save_figure(fig, out, "risk_vs_n")
    return ("Optimal risk of each architecture vs the number of examples n (lines: certified closed-form "
            f"optima; markers: Monte Carlo with {num_prompts} prompts, error bars 2 standard errors). "
            "Setting: K = 3 independent tasks of equal length n/3, rho = (0.2, 0.7, 0.5) (non-monotone), "
            "Sigma = I, d = 4, sigma = 0.5, distinct delimiters; vector GLA uses key dimension 2d.")


@figure("weights", "Optimal weights by position and what each architecture reaches")
def _weights(report, out):
    plt = _plt()
    model = _three_task_model(10)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    pos = np.arange(1, model.n + 1)
    for name, omega, P, risk in _architecture_optima(model):
        # Sigma = I so P = p I: the effective per-example step is p * omega_i (scale-free comparison).
        p = float(np.trace(P)) / model.d
        col, mk, ls = _STYLE[name]
        ax.plot(pos, p * omega, color=col, marker=mk, ls=ls, ms=4, label=f"{name} (risk {risk:.4f})")
    for b in (10.5, 20.5):
        ax.axvline(b, color="k", lw=0.5, alpha=0.4)
    ax.set_xlabel("example position i (segments of 10, query after position 30)")
    ax.set_ylabel(r"effective step $p\,\omega_i$ ($P = pI$)")
    ax.legend(fontsize=8)
    save_figure(fig, out, "weights")
    return ("Weights times step size (P = pI since Sigma = I) by example position for the optimum of each "
            "architecture. Setting: K = 3 independent tasks, m = (10, 10, 10), rho = (0.2, 0.7, 0.5), d = 4, "
            "sigma = 0.5, distinct delimiters. Optimal WPGD weights are proportional to rho_k/(m_k+1+d+sigma^2) "
            "(non-monotone); scalar gating can only reach nondecreasing block weights; vector gating with "
            "key dimension 2d reaches the WPGD optimum; linear attention is constant.")


@figure("bench", "Benchmark ratios of the GLA engines and the WPGD solver")
def _bench(report, out):
    import json
    gla_path, land_path = DATA / "bench_gla.json", DATA / "bench_landscape.json"
    if not gla_path.exists():
        return None
    rows = json.loads(gla_path.read_text())["results"]
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.4))
    labels = [f"{r['workload']}\n{r['gate']}" for r in rows]
    x = np.arange(len(rows))
    ax[0].bar(x, [r["chunked_over_recurrent"] for r in rows], color="tab:blue")
    ax[0].axhline(1.0, color="k", lw=0.8, ls="--", label="loop (= 1)")
    ax[0].set_xticks(x, labels, fontsize=8)
    ax[0].set_ylabel("time(chunked) / time(loop)")
    ax[0].legend(fontsize=8)
    ax[1].bar(x, [r["chunked_over_floor"] for r in rows], color="tab:green")
    ax[1].axhline(10.0, color="tab:red", lw=0.8, ls="--", label="target 10x")
    ax[1].set_xticks(x, labels, fontsize=8)
    ax[1].set_ylabel("time(chunked) / time(memory copy)")
    ax[1].legend(fontsize=8)
    save_figure(fig, out, "bench")
    shapes = "; ".join(sorted({f"{r['workload']}: B={r['B']}, T={r['T']}, Dk={r['Dk']}, Dv={r['Dv']}" for r in rows}))
    cap = (f"Speed of gla_chunked relative to the reference loop (left) and to a same-run copy of the bytes it "
           f"reads and writes (right), median of repeated runs, float64; 'key50' is key gating with log-gates "
           f"uniform in [-50, 0], the worst case where every chunk takes the exact dense path. Shapes: {shapes}.")
    if land_path.exists():
        land = json.loads(land_path.read_text())["by_threads"].get("1", {})
        parts = [f"{k}: solve {v['solve_cold_s'] * 1e3:.2f} ms cold / {v['solve_warm_s'] * 1e3:.2f} ms warm vs "
                 f"multistart L-BFGS {v['brute_s'] * 1e3:.1f} ms (ratio {v['ratio_cold']:.0f}x cold, "
                 f"{v['ratio_warm']:.0f}x warm)" for k, v in land.items() if k.startswith("n64")]
        if parts:
            cap += " Certified WPGD solver at n = 64, d = 16 (one BLAS thread): " + "; ".join(parts) + "."
    return cap


def _read_csv(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a CSV with '#'-comment settings lines; returns (rows, comment lines)."""
    import csv
    lines = path.read_text().splitlines()
    comments = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))
    return rows, comments


@figure("phase_diagram", "Phase diagram: where scalar GLA reaches WPGD and where it beats linear attention")
def _phase_diagram(report, out):
    path = DATA / "phase_diagram.csv"
    if not path.exists():
        return None
    rows, comments = _read_csv(path)
    plt = _plt()
    Ks = sorted({int(r["K"]) for r in rows})
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for K in Ks:
        rk = sorted((r for r in rows if int(r["K"]) == K), key=lambda r: float(r["spread"]))
        s = np.array([float(r["spread"]) for r in rk])
        Lw, Lg, La = (np.array([float(r[c]) for r in rk]) for c in ("L_wpgd", "L_gla_distinct", "L_la"))
        ax[0].plot(s, (Lg - Lw) / Lw, marker="o", ms=3, label=f"K = {K}")
        ax[1].plot(s, (La - Lg) / La, marker="o", ms=3, label=f"K = {K}")
    ax[0].set_xlabel(r"spread $s$ of $\rho$ ($s<0$: decreasing toward the query)")
    ax[0].set_ylabel(r"$(L^*_{GLA} - L^*_{WPGD}) / L^*_{WPGD}$")
    ax[0].set_title("gap of scalar GLA to optimal WPGD", fontsize=9)
    ax[1].set_xlabel(r"spread $s$ of $\rho$")
    ax[1].set_ylabel(r"$(L_{LA} - L^*_{GLA}) / L_{LA}$")
    ax[1].set_title("gain of scalar GLA over linear attention", fontsize=9)
    for a in ax:
        a.axvline(0, color="k", lw=0.5)
        a.legend(fontsize=8)
    save_figure(fig, out, "phase_diagram")
    return ("Relative risk gaps over the ordering and spread of the query correlations rho_k = rho_bar + "
            "s (k - (K+1)/2)/K and the number of tasks K (distinct delimiters). Left: scalar GLA reaches the WPGD "
            "optimum (gap 0) exactly when the optimal block weights rho_k/(m_k+1+d+sigma^2) are of one sign and "
            "nondecreasing: s >= 0 while every rho_k >= 0; for large s the first rho_k turn negative and the gap "
            "reopens. Right: its gain over linear attention is 0 when relevance decreases toward the query "
            "(s <= 0). Settings: "
            + "; ".join(comments) + ". Data: docs/data/phase_diagram.csv.")


def _g6_evidence(report) -> list[dict]:
    for c in report.get("claims", []):
        if c["id"] == "G6":
            return [e for e in c["evidence"] if "u_trained" in (e.get("figures") or {})]
    return []


@figure("trained_vs_predicted", "Trained vs predicted weights and preconditioners (G6)")
def _trained_vs_predicted(report, out):
    evs = [e for e in _g6_evidence(report) if e["figures"].get("restriction") == "wpgd"]
    if not evs:
        return None
    plt = _plt()
    settings = list(dict.fromkeys(e["figures"]["setting"] for e in evs))
    archs = list(dict.fromkeys(e["figures"]["architecture"] for e in evs))
    fig, ax = plt.subplots(2, len(archs), figsize=(3.3 * len(archs), 5.6), squeeze=False)
    for j, arch in enumerate(archs):
        for i, s in enumerate(settings):
            e = next((e for e in evs if e["figures"]["setting"] == s and e["figures"]["architecture"] == arch), None)
            if e is None:
                continue
            ut, up = np.asarray(e["figures"]["u_trained"]), np.asarray(e["figures"]["u_predicted"])
            x = np.arange(len(ut)) + 0.25 * i
            ax[0, j].plot(x, up, "k_", ms=14, mew=2)
            ax[0, j].plot(x, ut, "o", ms=5, label=f"{s} (cos {e['figures']['cos_omega']:.4f})")
        ax[0, j].set_title(arch, fontsize=9)
        ax[0, j].set_xlabel("segment k")
        ax[0, j].set_ylabel("block weight (unit norm)")
        ax[0, j].legend(fontsize=6)
        e = next((e for e in evs if e["figures"]["architecture"] == arch and "P_trained" in e["figures"]
                  and e["figures"]["setting"] == settings[-1]), None)
        if e is not None:
            Pt, Pp = np.asarray(e["figures"]["P_trained"]), np.asarray(e["figures"]["P_predicted"])
            d = Pt.shape[0]
            both = np.concatenate([Pt, np.full((d, 1), np.nan), Pp], axis=1)
            im = ax[1, j].imshow(both, cmap="coolwarm", vmin=-1, vmax=1)
            ax[1, j].set_title(f"P trained | P predicted ({settings[-1]})", fontsize=8)
            ax[1, j].set_xticks([])
            ax[1, j].set_yticks([])
            fig.colorbar(im, ax=ax[1, j], fraction=0.046)
    fig.tight_layout()
    save_figure(fig, out, "trained_vs_predicted")
    f0 = evs[0]["figures"]
    return ("Top: block weights read from the trained gates (dots) vs the predicted optimum of the architecture "
            "(bars), unit-normalised, per setting. Bottom: trained vs predicted preconditioner P (Frobenius-"
            f"normalised). 1-layer GLAs with the WPGD-construction mask, {f0['steps']} Adam steps, batch "
            f"{f0['batch_size']}, seed {f0['seed']}; settings of claim G6 (Sigma = I, d = {f0['model_d']}, "
            f"sigma = {f0['model_sigma']}, distinct delimiters).")


@figure("training_curves", "Training curves of the G6 models against their predicted optima")
def _training_curves(report, out):
    evs = [e for e in _g6_evidence(report)
           if e["figures"].get("restriction") == "wpgd" and e["figures"].get("curve_eval")]
    if not evs:
        return None
    plt = _plt()
    settings = list(dict.fromkeys(e["figures"]["setting"] for e in evs))
    fig, ax = plt.subplots(1, len(settings), figsize=(3.4 * len(settings), 3.2), squeeze=False)
    colors = {"linear": "tab:gray", "scalar": "tab:blue", "vector": "tab:orange"}
    for j, s in enumerate(settings):
        for e in (e for e in evs if e["figures"]["setting"] == s):
            f = e["figures"]
            col = colors.get(f["architecture"], "k")
            st, el = zip(*f["curve_eval"])
            ax[0, j].plot(st, el, color=col, label=f["architecture"])
            ax[0, j].axhline(f["predicted_risk"], color=col, ls=":", lw=1)
        ax[0, j].set_yscale("log")
        ax[0, j].set_title(s, fontsize=9)
        ax[0, j].set_xlabel("Adam step")
        ax[0, j].set_ylabel("eval risk (squared label units)")
        ax[0, j].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out, "training_curves")
    f0 = evs[0]["figures"]
    return ("Evaluation risk during training (solid) and the predicted optimum of each architecture (dotted) for "
            f"the G6 settings; {f0['steps']} Adam steps, batch {f0['batch_size']}, seed {f0['seed']}. The curves use "
            "one fixed, small evaluation set per setting (1024 prompts in the quick profile), so the curves of a "
            "setting share its sampling error, which can reach about 10%; the claim's verdicts use the exact risk of "
            "the trained predictor and a 50,000-prompt Monte Carlo estimate.")


@figure("depth", "Risk vs depth (number of GLA layers = causal WPGD steps)")
def _depth(report, out):
    path = DATA / "depth.csv"
    if not path.exists():
        return None
    rows, _ = _read_csv(path)
    plt = _plt()
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, ax = plt.subplots(1, len(settings), figsize=(3.4 * len(settings), 3.3), squeeze=False)
    for j, s in enumerate(settings):
        for arch, col in (("gla", "tab:blue"), ("linear", "tab:gray")):
            rs = sorted((r for r in rows if r["setting"] == s and r["architecture"] == arch), key=lambda r: int(r["L"]))
            if not rs:
                continue
            L = [int(r["L"]) for r in rs]
            ax[0, j].errorbar(L, [float(r["risk"]) for r in rs], yerr=[2 * float(r["stderr"]) for r in rs],
                              color=col, marker="o", capsize=3, label="GLA" if arch == "gla" else "linear attention")
            cf = rs[0].get("closed_form_L1")
            if cf:
                ax[0, j].plot([1], [float(cf)], marker="x", color="k", ms=8, ls="none")
        ax[0, j].set_title(s, fontsize=9)
        ax[0, j].set_xlabel("layers L")
        ax[0, j].set_xticks([1, 2, 3, 4])
        ax[0, j].set_ylabel("test risk (squared label units)")
        ax[0, j].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out, "depth")
    return ("Monte Carlo test risk (error bars 2 standard errors) of the best L-layer residual GLA found by "
            "sample-average optimisation, for GLA (delimiter gates per layer) and linear attention; x marks the "
            "certified 1-layer closed form. Settings per panel: " + "; ".join(
                dict.fromkeys(r["settings"] for r in rows)) + ". Data: docs/data/depth.csv.")
