r"""C1: one scalar-gated GLA layer is one WPGD step.

Theory leg: :func:`theory.construction.prove_c1` runs the GLA recurrence on symbolic tokens
and expands the difference to the WPGD formula to 0; the state formula is proved by
induction. Numerics leg: the GLA engines (through :mod:`numerics.stack`) against the WPGD
predictor of :mod:`numerics.wpgd`, which never calls a GLA engine. Conventions:
docs/construction.md.
"""

from __future__ import annotations

import numpy as np

from numerics import gla, stack, wpgd
from theory import construction as th

from .. import general_proofs, sources, tolerances as tol
from ..checks import per_engine
from ..instances import construction_sizes, log_gates, prompt
from ..registry import Claim, compare, holds, symbolic

__all__ = ["CLAIM"]

CLAIM = Claim(
    id="C1",
    area="construction",
    title="One scalar-gated GLA layer is one WPGD step",
    statement=(
        r"With $W_q=\begin{bmatrix}P_q&0\\0&0\end{bmatrix}$, $W_k=\begin{bmatrix}P_k&0\\0&0\end{bmatrix}$, "
        r"$W_v=\begin{bmatrix}0&0\\0&1\end{bmatrix}$ and scalar gates $g_t$, "
        r"$e_{d+1}^\top o_{n+1} = x^\top P X^\top(\omega\odot y)$ with $P=P_q^\top P_k$ and "
        r"$\omega_i=\prod_{j=i+1}^{n+1} g_j$; linear attention ($g\equiv1$) gives $\omega=\mathbf 1$. "
        r"The GLA state is $S_t=\sum_{s\le t}(\prod_{r=s+1}^{t}G_r)\odot v_s k_s^\top$."
    ),
    conditions=(
        r"gates $g_t\in[0,1]$ (log-gates in $[-\infty,0]$)",
        "read-out: the label coordinate of $o_{n+1}$; the query attends to itself",
    ),
    source=sources.abstract(sources.GLA_IS_WPGD, sources.WEIGHTS_FROM_GATES)
    + r"; $P=P_q^\top P_k$ derived here",
    status_note=(
        "Holds as stated. Read-out: $+$ the label coordinate of $o_{n+1}$, scale 1, the query "
        "attends to itself (its own term vanishes because its label slot is 0); the query's "
        "gate $g_{n+1}$ multiplies every weight. As first posed the preconditioner was only "
        r"said to be built from $P_k$ and $P_q$: it is $P=P_q^\top P_k$."
    ),
    formulas=th.formulas,
    verdict="as-stated",
)


@CLAIM.check(
    "Matrix engine: one scalar-gated layer = one WPGD step (symbolic dimensions)", leg="theory"
)
def _general(ctx):
    return general_proofs.evidence(ctx, "C1")


@CLAIM.check(
    "SymPy: scalar-gated layer = one WPGD step (n<=4, d<=2, generic P_q, P_k)", leg="theory"
)
def _theory(ctx):
    res = th.prove_c1() if not ctx.full else th.prove_c1(cases=th.C1_CASES + ((6, 2), (4, 3)))
    return symbolic("SymPy: scalar-gated layer = one WPGD step", res, P=res.data["P"])


@CLAIM.check("SymPy: state formula S_t by induction on t (scalar/key/value gates)", leg="theory")
def _state(ctx):
    ind = th.prove_state_formula_induction()
    small = th.prove_state_formula_small(T=4 if not ctx.full else 5, D=2)
    return symbolic(
        "SymPy: state formula induction step",
        ind,
        holds("direct_check", small.verified, "unrolled formula with general D x D gates, t <= T"),
        gates=[c["gate"] for c in ind.cases],
        steps_verified=[c["steps"] for c in ind.cases],
        direct_check_T=small.cases[0]["T"],
        direct_check_D=small.cases[0]["D"],
        sympy_seconds=round(ind.seconds + small.seconds, 3),
    )


@CLAIM.check(
    "engines vs wpgd_predict (random prompts, gates near 0/1 and exactly 0)", leg="numerics"
)
def _numerics(ctx):
    rng = ctx.rng("c1-numerics")
    out = []
    for N, n, d in construction_sizes(ctx.full):
        X, y, x = prompt(rng, N, n, d)
        P_q, P_k = rng.standard_normal((d, d)), rng.standard_normal((d, d))
        lg = log_gates(rng, (N, n + 1))
        layer = stack.construct_wpgd_layer(P_q, P_k, +1)
        ref = wpgd.wpgd_predict(X, y, x, P_q.T @ P_k, wpgd.weights_from_log_gates(lg))
        out += per_engine(
            "one layer",
            f"vs wpgd_predict (N={N}, n={n}, d={d})",
            (X, y, x),
            [layer],
            [lg],
            ref,
            tol.IDENTITY,
            readout="output",
            N=N,
            n=n,
            d=d,
        )
        # linear attention: log g = 0 gives omega = 1
        val = stack.stack_predict(
            X, y, x, [layer], [np.zeros((N, n + 1))], engine="chunked", readout="output"
        )
        ref1 = wpgd.wpgd_predict(X, y, x, P_q.T @ P_k, np.ones(n))
        out.append(
            compare(
                f"linear attention vs omega=1 (n={n}, d={d})",
                val,
                ref1,
                tol.IDENTITY,
                N=N,
                n=n,
                d=d,
            )
        )
    return out


@CLAIM.check("weights_from_log_gates vs explicit products and vs gla.decay_matrix", leg="numerics")
def _weights(ctx):
    rng = ctx.rng("c1-weights")
    N, n = (32, 12) if not ctx.full else (128, 40)
    lg = log_gates(rng, (N, n + 1))
    om = wpgd.weights_from_log_gates(lg)
    g = np.exp(lg)
    brute = np.array([[np.prod(g[b, i + 1 :]) for i in range(n)] for b in range(N)])
    return [
        compare(
            f"omega vs explicit products of gates (N={N}, n={n})", om, brute, tol.IDENTITY, N=N, n=n
        ),
        compare(
            "omega vs last row of gla.decay_matrix",
            om,
            gla.decay_matrix(lg)[:, n, :n],
            tol.IDENTITY,
            N=N,
            n=n,
        ),
    ]


@CLAIM.figure(
    "gating_matrix", "Gating is weighting: the decay matrix D and the induced WPGD weights"
)
def _gating_matrix(claim, out, data_dir):
    from ..plotting import pyplot, save_figure

    plt = pyplot()
    # A 3-segment prompt with delimiter tokens: example gates 1, delimiter gates 0.5 and 0.7.
    m = [5, 5, 5]
    gates = []
    for k, mk in enumerate(m):
        gates += [1.0] * mk
        gates.append([0.5, 0.7, 1.0][k])  # delimiter after segment k (the last is the query's slot)
    gates = np.array(gates[:-1] + [1.0])  # the final token is the query, gate 1
    log_g = np.log(gates)[None, :]
    D = gla.decay_matrix(log_g)[0]
    omega = wpgd.weights_from_log_gates(log_g)[0]
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
    return (
        "Decay matrix D of a scalar-gated GLA (left) and the WPGD weights it induces on the query "
        "(right, last row of D without the diagonal entry). Prompt: 3 segments of 5 examples, each "
        "followed by a delimiter token; example gates 1, delimiter gates 0.5 and 0.7, query gate 1."
    )
