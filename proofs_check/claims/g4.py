r"""G4: vector (key-wise) gating vs scalar gating.

Theory leg: :mod:`theory.reachability` (Jordan decomposition ``w = u − v`` with ``u, v ∈ M``;
the two-key-copy layer). Numerics leg: with ``D_k = 2d`` the key-gated engines with Jordan
gates realise ``ω*`` and reach ``L*_WPGD`` (closed form and Monte Carlo); with ``D_k = d`` the
feature-wise cone optimum against scalar gating over anisotropic ``Σ``.
"""

from __future__ import annotations

import numpy as np

from numerics import gla_landscape as gl, prompts as pr, wpgd
from numerics.data import MultitaskModel, random_covariance
from numerics.landscape import solve_wpgd
from numerics.risk import monte_carlo_risk, null_risk, optimal_P, profile_risk, wpgd_predictor
from theory import reachability as th

from .. import sources, tolerances as tol
from ..registry import Claim, Evidence, above, at_least, at_most, compare, equals, symbolic
from ._gates import GATE_CONDITION, GATE_NOTE

__all__ = ["CLAIM"]

CLAIM = Claim(
    id="G4",
    area="gla-landscape",
    title="Vector (key-wise) gating vs scalar gating",
    statement=(
        r"(i) $D_k=d$, $P_k=I$: feature-wise weights $\Omega=EU$, each column in $M$; $L^*_{vec}\le L^*_{GLA}$ "
        r"(scalar $\subset$ vector), strictly iff the per-coordinate cone optima differ (diagonal $\Sigma$: "
        r"column $a$ solves the cone QP at $t=1/\lambda_a$); no gain for $\Sigma\propto I$. "
        r"(ii) $D_k=2d$, keys $[x;x]$ with separate gates, queries $[P^\top x;-P^\top x]$: weights $u-v$, "
        r"$u,v\in M$, and every block vector is such a difference (Jordan), so vector gating reaches "
        r"$L^*_{WPGD}$ on every instance — strictly better than scalar whenever G1's condition fails. "
        r"Two scalar-gated heads with query projections $\pm P$ give the same."
    ),
    conditions=(
        GATE_CONDITION,
        "(i) key dimension $D_k=d$ with $P_k=I$; (ii) $D_k=2d$ with two key copies",
    ),
    source=sources.DERIVED_HERE
    + " (vector gating within "
    + sources.abstract(sources.GLA_LANDSCAPE)
    + ")",
    status_note=(
        GATE_NOTE
        + (
            " With $D_k=d$ and $P_k=I$, vector gating helps only through the anisotropy of "
            r"$\Sigma$ (per coordinate $a$, $t=1/\lambda_a$); with $D_k\ge2d$ it removes the "
            r"monotonicity restriction entirely. “Vector $\ge$ scalar”, as first posed, holds; "
            "“when strictly better” is answered by both mechanisms."
        )
    ),
    verdict="as-stated",
)


@CLAIM.check(
    "SymPy: Jordan decomposition w = u - v, u, v in M; two-key-copy layer = weights u - v",
    leg="theory",
)
def _theory(ctx):
    return [
        symbolic("Jordan decomposition (K=2,3,5)", th.prove_jordan()),
        symbolic(
            "key copies [x;x], q = [P^T x; -P^T x]: o_T = sum (u_i - v_i) y_i x^T P x_i",
            th.prove_key_copies(),
        ),
    ]


@CLAIM.check(
    "D_k=2d: key-gated engines with Jordan gates = WPGD(omega*); risk = L*_WPGD < L*_GLA (closed form + MC)",
    leg="numerics",
)
def _copies(ctx):
    rng = ctx.rng("g4-copies")
    out = []
    spec = pr.StructuredPrompt((3, 2, 4), "distinct", False)
    d = 3
    model = spec.model(
        np.eye(3), np.array([0.1, 0.5, 0.2]), random_covariance(d, rng, cond=5.0), 0.3
    )
    vec = gl.solve_gla(model, gating="vector", key_copies=2)
    sca = gl.solve_gla(model)
    lu = pr.token_log_gates(spec, gl._type_log_gates_for(spec, vec.gates["u"]))
    lv = pr.token_log_gates(spec, gl._type_log_gates_for(spec, vec.gates["v"]))
    om = vec.gates["scale"] * (pr.induced_weights(spec, lu) - pr.induced_weights(spec, lv))
    out.append(compare("Jordan gates realise omega*", om, vec.omega, tol.IDENTITY))
    p = model.sample(256, rng)
    ref = wpgd.wpgd_predict(p.X, p.y, p.x, vec.P, vec.omega)

    def predict(pp, engine="final"):
        return pr.key_copies_predict(
            spec, pr.tokens(spec, pp), vec.P, lu, lv, scale=vec.gates["scale"], engine=engine
        )

    for eng in ("final", "chunked"):
        out.append(
            compare(
                f"key-gated GLA[{eng}] (D_k=2d) vs WPGD(omega*, P*)",
                predict(p, eng),
                ref,
                tol.IDENTITY,
            )
        )
    gap = (sca.risk - vec.risk) / null_risk(model)
    out.append(
        Evidence(
            "scalar GLA strictly above vector (G1 condition fails here)",
            "numeric",
            [above("rel_gap", gap, tol.STRICT_GAIN, "(L*_scalar - L*_vector)/L0")],
            {"L_scalar": sca.risk, "L_vector": vec.risk, "threshold": tol.STRICT_GAIN},
        )
    )
    N = 40000 if not ctx.full else 200000
    mean, se = monte_carlo_risk(model, predict, N, ctx.rng("g4-mc"))
    out.append(
        Evidence(
            "Monte Carlo risk of the key-gated GLA vs L*_WPGD",
            "monte-carlo",
            [
                at_most(
                    "z",
                    abs(mean - vec.risk) / se,
                    tol.MC_Z,
                    "|MC - closed form| in standard errors",
                )
            ],
            {"mc_mean": mean, "standard_error": se, "closed_form": vec.risk, "N": N},
        )
    )
    return out


def _featurewise_instance(rng, iso: bool):
    K = int(rng.integers(2, 5))
    d = int(rng.integers(2, 5))
    m = rng.integers(1, 5, K)
    lam = np.ones(d) if iso else np.exp(rng.uniform(-np.log(30), 0, d))
    lam *= d / lam.sum()
    rho = rng.uniform(-0.2, 0.6, K) / np.sqrt(K)
    return (
        MultitaskModel.k_task(m, np.eye(K), rho, np.diag(lam), float(rng.uniform(0.1, 1.0))),
        lam,
        rho,
        m,
    )


@CLAIM.check(
    "D_k=d, P_k=I: feature-wise cone optimum vs scalar (search over anisotropic Sigma); no gain at Sigma=I",
    leg="numerics",
)
def _featurewise(ctx):
    rng = ctx.rng("g4-fw")
    n_inst = 10 if not ctx.full else 40
    gains, bad, best = [], [], None
    for i in range(n_inst):
        iso = i < 2
        model, lam, rho, m = _featurewise_instance(rng, iso)
        L0 = null_risk(model)
        fw = gl.featurewise_cone(model)
        g = (gl.solve_cone(model, certify=False).risk - fw["risk"]) / L0
        gains.append(g)
        if (
            g < -tol.CERTIFIED_VALUE
            or abs(fw["risk"] - fw["risk_formula"]) > tol.CERTIFIED_VALUE * L0
            or (iso and abs(g) > tol.CERTIFIED_VALUE)
        ):
            bad.append({"instance": i, "gain": g, "iso": iso})
        if best is None or g > best["gain"]:
            best = {"gain": g, "lambda": lam.tolist(), "rho": rho.tolist(), "m": m.tolist()}
    # a non-diagonal Sigma with the local optimiser: must not be worse than scalar (it starts there)
    model = MultitaskModel.k_task(
        np.array([2, 3, 2]),
        np.eye(3),
        np.array([0.4, 0.1, 0.3]),
        random_covariance(3, rng, cond=20.0),
        0.4,
    )
    sca = gl.solve_cone(model, certify=False).risk
    g_loc = (sca - gl.featurewise_cone(model, rng=rng)["risk"]) / null_risk(model)
    strict = int(sum(g > tol.STRICT_GAIN for g in gains))
    return Evidence(
        "vector (D_k=d) >= scalar; strict gains under anisotropy; none at Sigma=I",
        "search",
        [
            equals(
                "failed_instances",
                len(bad),
                0,
                "negative gains, risk-formula mismatches, or gains at Sigma = I",
            ),
            at_least(
                "nondiagonal_local_gain",
                g_loc,
                -tol.CERTIFIED_VALUE,
                "gain of the local optimiser at a non-diagonal Sigma (never negative)",
            ),
            at_least("strict_gains", strict, 1, "instances with a strict gain"),
        ],
        {
            "instances": n_inst,
            "max_rel_gain": max(gains),
            "min_rel_gain": min(gains),
            "tolerance": tol.CERTIFIED_VALUE,
            "best_instance": best,
        },
        counterexample=bad[0] if bad else None,
    )


def _three_task_model(n_per: int, rho=(0.2, 0.7, 0.5), d: int = 4, sigma: float = 0.5):
    """K = 3 independent tasks, Sigma = I: optimal weights prop. to rho_k/(m_k+1+d+sigma^2), non-monotone."""
    return MultitaskModel.k_task([n_per] * 3, np.eye(3), list(rho), np.eye(d), sigma=sigma)


def _architecture_optima(model):
    """``{key: (omega, P, risk)}`` for linear attention, scalar GLA, vector GLA and optimal WPGD
    (keys of :data:`proofs_check.plotting.ARCH_STYLE`)."""
    ones = np.ones(model.n) / np.sqrt(model.n)
    s = gl.solve_gla(model, gating="scalar", delimiters="distinct")
    v = gl.solve_gla(model, gating="vector", delimiters="distinct")
    w = solve_wpgd(model)
    return {
        "linear": (ones, optimal_P(model, ones), profile_risk(model, ones)),
        "scalar": (s.omega, s.P, s.risk),
        "vector": (v.omega, v.P, v.risk),
        "wpgd": (w.omega, w.P, w.risk),
    }


#: Vector GLA reaches the WPGD optimum (claim G4 (ii)), so the figures draw them as one series
#: after checking that the two risks agree to this relative tolerance.
_SAME_RISK = 1e-9
_FIG_SETTING = (
    r"$K=3$ independent tasks of equal length, $\rho=(0.2,0.7,0.5)$ (non-monotone), "
    r"$\Sigma=I_4$, $\sigma=0.5$, distinct delimiters; vector GLA with key dimension $2d$"
)


def _merged_optima(model):
    """:func:`_architecture_optima` with vector GLA and optimal WPGD checked equal and merged."""
    opt = _architecture_optima(model)
    rv, rw = opt["vector"][2], opt.pop("wpgd")[2]
    if abs(rv - rw) > _SAME_RISK * rw:
        raise AssertionError(f"vector GLA risk {rv} differs from L*_WPGD {rw}")
    return opt


def _label(key):
    from ..plotting import ARCH_STYLE

    return "vector GLA = optimal WPGD" if key == "vector" else ARCH_STYLE[key][0]


@CLAIM.figure(
    "optimal_risk_vs_n",
    "Optimal risk vs number of in-context examples: linear attention, scalar GLA, vector GLA",
)
def _risk_vs_n(claim, out, data_dir):
    from ..plotting import ARCH_STYLE, figure, mc_errorbar, save_figure

    per = np.arange(1, 21)
    curves = {k: [] for k in ("linear", "scalar", "vector")}
    for m in per:
        for k, (_, _, risk) in _merged_optima(_three_task_model(int(m))).items():
            curves[k].append(risk)
    mc_per, num_prompts, seed = (2, 6, 12, 20), 20000, 2024
    rng = np.random.default_rng(seed)
    fig, ax = figure(1, 2, height=2.4, gridspec_kw={"width_ratios": [1.6, 1.0]})
    data = []
    for k, ys in curves.items():
        _, col, _, ls = ARCH_STYLE[k]
        ax[0, 0].plot(3 * per, ys, color=col, ls=ls, label=_label(k))
        data += [{"n": int(3 * m), "architecture": k, "closed_form": y} for m, y in zip(per, ys)]
    offsets = {"linear": -0.8, "scalar": 0.0, "vector": 0.8}
    for m in mc_per:
        model = _three_task_model(m)
        for k, (omega, P, risk) in _merged_optima(model).items():
            mean, se = monte_carlo_risk(model, wpgd_predictor(P, omega), num_prompts, rng)
            mc_errorbar(ax[0, 0], [3 * m], [mean], [se], k, filled=False)
            mc_errorbar(ax[0, 1], [3 * m + offsets[k]], [(mean - risk) / se], [1.0], k)
            data.append(
                {"n": 3 * m, "architecture": k, "closed_form": risk, "mc": mean, "mc_se": se}
            )
    ax[0, 0].plot([], [], "o", color="0.3", mfc="white", label=r"Monte Carlo $\pm2$ s.e.")
    ax[0, 0].set_xlabel("number of in-context examples $n$")
    ax[0, 0].set_ylabel(r"risk $\mathbb{E}(y-\hat y)^2$")
    ax[0, 0].legend(loc="upper right")
    ax[0, 1].axhspan(-2, 2, color="0.9", lw=0)
    ax[0, 1].axhline(0, color="k", lw=0.5)
    ax[0, 1].set_xlabel("$n$")
    ax[0, 1].set_ylabel(r"(Monte Carlo $-$ closed form) / s.e.")
    ax[0, 1].set_ylim(-4.5, 4.5)
    save_figure(
        fig, out, "optimal_risk_vs_n", data, notes={"mc_prompts": num_prompts, "seed": seed}
    )
    return (
        r"Optimal risk of each architecture against the number of in-context examples $n$ "
        r"($n/3$ per segment). Left: certified closed-form optima (lines) and Monte Carlo "
        rf"estimates of the same predictors on {num_prompts:,} fresh prompts (hollow markers, "
        r"error bars $\pm2$ standard errors). Right: the Monte Carlo minus closed-form "
        r"difference in standard errors (shaded: $\pm2$); markers are offset horizontally by "
        r"$\mp0.8$ for legibility. Vector GLA reaches the WPGD optimum (claim G4), so the two are "
        rf"one series. Setting: {_FIG_SETTING}. Computed by the figure itself; data: "
        r"\texttt{optimal\_risk\_vs\_n.csv}."
    )


@CLAIM.figure("weights", "Optimal weights by position and what each architecture reaches")
def _weights(claim, out, data_dir):
    from ..plotting import ARCH_STYLE, figure, save_figure

    model = _three_task_model(10)
    fig, ax = figure(height=2.0)
    a = ax[0, 0]
    pos = np.arange(1, model.n + 1)
    data = []
    for j, (k, (omega, P, risk)) in enumerate(_merged_optima(model).items()):
        # Sigma = I so P = p I: the effective per-example step is p * omega_i (scale-free).
        p = float(np.trace(P)) / model.d
        _, col, mk, ls = ARCH_STYLE[k]
        a.plot(
            pos,
            p * omega,
            color=col,
            ls=ls,
            marker=mk,
            markevery=(2 + 3 * j, 10),
            drawstyle="steps-mid",
            label=f"{_label(k)} ($L={risk:.4f}$)",
        )
        data += [
            {"position": int(i), "architecture": k, "p_omega": float(v), "risk": risk}
            for i, v in zip(pos, p * omega)
        ]
    for b in (10.5, 20.5):
        a.axvline(b, color="0.6", lw=0.5)
    a.set_xlabel("example position $i$ (segments of 10; the query follows position 30)")
    a.set_ylabel(r"effective step $p\,\omega_i$ ($P=pI$)")
    a.legend(loc="lower right")
    save_figure(fig, out, "weights", data)
    return (
        r"Weights times step size ($P=pI$ since $\Sigma=I$) by example position for the optimum "
        r"of each architecture; $m=(10,10,10)$, " + _FIG_SETTING + r". The optimal WPGD block "
        r"weights are "
        r"proportional to $\rho_k/(m_k+1+d+\sigma^2)$ (non-monotone); scalar gating reaches only "
        r"non-decreasing block weights; vector gating reaches the WPGD optimum; linear attention "
        r"is constant. Computed by the figure itself; data: \texttt{weights.csv}."
    )
