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
