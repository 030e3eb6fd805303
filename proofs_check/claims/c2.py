r"""C2: key-wise gating gives feature-wise WPGD weights, in the key basis.

Theory leg: :func:`theory.construction.prove_c2` (symbolic key-gated layer, the diagonal
``P_k`` specialisations and a counterexample for general ``P_k``). Numerics leg: the key-gated
engines against the key-basis formula written directly and against
:func:`numerics.wpgd.wpgd_predict_featurewise`.
"""

from __future__ import annotations

import numpy as np

from numerics import gla, stack, wpgd
from numerics.measures import rel_rms
from theory import construction as th

from .. import general_proofs, sources, tolerances as tol
from ..checks import per_engine
from ..instances import construction_sizes, log_gates, prompt
from ..registry import Claim, Evidence, above, compare, symbolic

__all__ = ["CLAIM"]

CLAIM = Claim(
    id="C2",
    area="construction",
    title="Key-wise gating gives feature-wise WPGD weights (in the key basis)",
    statement=(
        r"With key gates $G_t=\mathbf 1\gamma_t^\top$, $\gamma_t\in[0,1]^{d+1}$, and the weights of C1: "
        r"$e_{d+1}^\top o_{n+1}=x^\top P_q^\top\sum_{i\le n} y_i\,\mathrm{diag}(\Omega_i)\,P_k x_i$, "
        r"$\Omega_i=(\prod_{j=i+1}^{n+1}\gamma_j)_{1:d}$. Hence "
        r"$\hat y = x^\top P\sum_i y_i(\Omega_i\odot x_i)$ with $P=P_q^\top P_k$ when $P_k$ is diagonal "
        r"(e.g. $P_k=I$, $P=P_q^\top$); for non-diagonal $P_k$ the weights act on the features $P_k x_i$."
    ),
    conditions=(
        r"key gates $\gamma_t\in[0,1]^{d+1}$",
        (
            "the feature-wise form in $x_i$ needs $P_k$ diagonal (otherwise the weights act on "
            "$P_kx_i$)"
        ),
    ),
    source=sources.abstract(sources.WEIGHTS_FROM_GATES) + "; the key-basis form derived here",
    status_note=(
        "As first posed, the feature-wise form was claimed for every $P_k$; it is exact only for "
        "diagonal $P_k$ (given invertible $P_q$). The gate on the label coordinate is irrelevant "
        "($k_t$ is 0 there)."
    ),
    formulas=th.formulas,
    verdict="with-condition",
    verdict_condition=(
        "the feature-wise form in $x_i$ holds only for diagonal $P_k$; in general the gates "
        "weight the key coordinates $P_kx_i$ (SymPy counterexample "
        r"$P_k=\bigl(\begin{smallmatrix}1&1\\0&1\end{smallmatrix}\bigr)$)"
    ),
    cost=1.4,  # quick-profile CPU seconds, pieces included (scheduling hint)
)


@CLAIM.check(
    "Matrix engine: key-gated layer = feature-wise WPGD in the key basis (symbolic dimensions)",
    leg="theory",
)
def _general(ctx):
    return general_proofs.evidence(ctx, "C2")


@CLAIM.check(
    "SymPy: key-gated layer = feature-wise WPGD in the key basis; x-basis form iff P_k diagonal",
    leg="theory",
)
def _theory(ctx):
    res = th.prove_c2() if not ctx.full else th.prove_c2(cases=th.C2_CASES + ((4, 2), (3, 3)))
    return symbolic(
        "SymPy: key-gated layer = feature-wise WPGD",
        res,
        counterexample_gap=res.data["counterexample"]["difference"],
    )


def _key_basis_cases(rng, N, n, d, out):
    X, y, x = prompt(rng, N, n, d)
    P_q = rng.standard_normal((d, d))
    lg = log_gates(rng, (N, n + 1, d + 1))
    Om = wpgd.weights_from_log_gates(lg[..., :d], gate="key")
    for label, P_k in (
        ("general P_k", rng.standard_normal((d, d))),
        ("diagonal P_k", np.diag(rng.standard_normal(d))),
        ("P_k = I", np.eye(d)),
    ):
        layer = stack.construct_wpgd_layer(P_q, P_k, +1, gate="key")
        # key-basis formula, written directly: x^T P_q^T Σ_i y_i (Ω_i ⊙ P_k x_i)
        ref = np.einsum("bd,ed,bi,bie->b", x, P_q, y, Om * np.einsum("ef,bif->bie", P_k, X))
        out += per_engine(
            label,
            f"vs key-basis formula (n={n}, d={d})",
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
        if label != "general P_k":
            val = stack.stack_predict(X, y, x, [layer], [lg], engine="chunked", readout="output")
            fw = wpgd.wpgd_predict_featurewise(X, y, x, P_q.T @ P_k, Om)
            out.append(
                compare(
                    f"{label}: engine vs wpgd_predict_featurewise(P=P_q^T P_k) (n={n}, d={d})",
                    val,
                    fw,
                    tol.IDENTITY,
                    N=N,
                    n=n,
                    d=d,
                )
            )


@CLAIM.check(
    "key-gated engines vs direct feature-wise formula and wpgd_predict_featurewise", leg="numerics"
)
def _numerics(ctx):
    rng = ctx.rng("c2-numerics")
    out = []
    for N, n, d in construction_sizes(ctx.full):
        _key_basis_cases(rng, N, n, d, out)
    N, n, d = 16, 10, 3
    lg = log_gates(rng, (N, n + 1, d))
    out.append(
        compare(
            "Omega vs last row of gla.decay_matrix (key gates)",
            wpgd.weights_from_log_gates(lg, gate="key"),
            gla.decay_matrix(lg)[:, n, :n],
            tol.IDENTITY,
            N=N,
            n=n,
            d=d,
        )
    )
    return out


@CLAIM.check(
    "non-diagonal P_k: the x-basis feature-wise form with P=P_q^T P_k is wrong (numeric gap)",
    leg="numerics",
)
def _gap(ctx):
    rng = ctx.rng("c2-gap")
    N, n, d = 64, 8, 3
    X, y, x = prompt(rng, N, n, d)
    P_q, P_k = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    lg = log_gates(rng, (N, n + 1, d + 1))
    Om = wpgd.weights_from_log_gates(lg[..., :d], gate="key")
    val = stack.stack_predict(
        X,
        y,
        x,
        [stack.construct_wpgd_layer(P_q, P_k, +1, gate="key")],
        [lg],
        engine="chunked",
        readout="output",
    )
    wrong = wpgd.wpgd_predict_featurewise(X, y, x, P_q.T @ P_k, Om)
    limit = tol.STRICT_FACTOR * tol.IDENTITY
    return Evidence(
        "x-basis form with general P_k differs from the layer",
        "search",
        [
            above(
                "gap",
                rel_rms(wrong, val),
                limit,
                "relative RMS between the layer and the x-basis form; must exceed rounding by far",
            )
        ],
        {"threshold": limit, "N": N, "n": n, "d": d},
        detail="relative RMS between GLA layer and x^T P Σ y_i(Ω_i⊙x_i), P = P_q^T P_k, random P_k",
    )
