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
        "The query's own term vanishes (its label slot is 0) and its gate $g_{n+1}$ multiplies "
        "every weight. As first posed the preconditioner was only said to be built from $P_k$ "
        r"and $P_q$: it is $P=P_q^\top P_k$."
    ),
    formulas=th.formulas,
    verdict="as-stated",
    cost=1.3,  # quick-profile CPU seconds, pieces included (scheduling hint)
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
    "gating_matrix", "Gating is weighting: the decay matrix $D$ and the induced WPGD weights"
)
def _gating_matrix(claim, out, data_dir):
    import matplotlib

    from ..plotting import OKABE_ITO, figure, save_figure

    # 3 segments of 5 examples; a delimiter token closes segments 1 and 2 (gates 0.5, 0.7),
    # the query closes segment 3. Example and query gates are 1, so D is piecewise constant.
    m, delim_gates = (5, 5, 5), (0.5, 0.7)
    gates, kinds = [], []
    for k, mk in enumerate(m):
        gates += [1.0] * mk
        kinds += ["example"] * mk
        if k < len(delim_gates):
            gates.append(delim_gates[k])
            kinds.append("delimiter")
    gates.append(1.0)
    kinds.append("query")
    log_g = np.log(np.array(gates))[None, :]
    D = gla.decay_matrix(log_g)[0]
    omega = wpgd.weights_from_log_gates(log_g)[0]
    T = D.shape[0]
    pos = np.arange(1, T + 1)  # 1-based token positions in both panels
    delims = [int(p) for p, k in zip(pos, kinds) if k == "delimiter"]
    fig, ax = figure(1, 2, height=2.4, gridspec_kw={"width_ratios": [1.0, 1.25]})
    a = ax[0, 0]
    shown = np.ma.masked_where(np.triu(np.ones_like(D, bool), 1), D)  # causal: j > i not defined
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    im = a.imshow(shown, cmap=cmap, vmin=0, vmax=1, extent=(0.5, T + 0.5, T + 0.5, 0.5))
    a.set_xlabel("source token $j$")
    a.set_ylabel("target token $i$")
    ticks = [1, *delims, T]
    a.set_xticks(ticks)
    a.set_yticks(ticks)
    for p in delims:
        a.axvline(p, color=OKABE_ITO["orange"], lw=0.6, ls="--")
        a.axhline(p, color=OKABE_ITO["orange"], lw=0.6, ls="--")
    a.set_title(r"$D_{ij}=\prod_{r=j+1}^{i} g_r$ for $j\leq i$")
    fig.colorbar(im, ax=a, fraction=0.05, pad=0.03).set_label("$D_{ij}$")
    b = ax[0, 1]
    is_delim = np.array([k == "delimiter" for k in kinds[:-1]])
    b.bar(pos[:-1][~is_delim], omega[~is_delim], color=OKABE_ITO["blue"], label="example token")
    b.bar(
        pos[:-1][is_delim],
        omega[is_delim],
        color="white",
        edgecolor=OKABE_ITO["orange"],
        hatch="///",
        label="delimiter token",
    )
    b.set_xticks(ticks)
    b.set_xlabel(f"token position $i$ (query at {T})")
    b.set_ylabel(r"weight $\omega_i$")
    b.set_title(rf"last row: $\omega_i=D_{{{T},i}}=\prod_{{j>i}} g_j$")
    b.set_ylim(0, 1.15)
    b.legend(loc="upper left")
    data = [
        {"panel": "D", "i": int(i + 1), "j": int(j + 1), "value": float(D[i, j])}
        for i in range(T)
        for j in range(i + 1)
    ] + [
        {"panel": "omega", "i": int(i + 1), "j": "", "value": float(omega[i]), "token": kinds[i]}
        for i in range(T - 1)
    ]
    save_figure(fig, out, "gating_matrix", data, notes={"gates": " ".join(map(str, gates))})
    return (
        r"Left: the decay matrix $D$ of a scalar-gated GLA layer (causal upper triangle "
        r"undefined, blank; dashed: delimiter tokens). Right: the WPGD weights it induces on the "
        r"query, $\omega_i=\prod_{j=i+1}^{n+1} g_j$, the last row of $D$ without its diagonal. "
        r"Prompt: 3 segments of 5 examples, the first two closed by delimiters with gates $0.5$ "
        r"and $0.7$, all other gates 1; delimiters carry no label, so their weights do not enter "
        r"$\hat y$. Positions 1-based. Computed by the figure."
    )
