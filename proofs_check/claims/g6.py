r"""G6: trained GLA models reach the predicted optimum of their architecture.

Numerics leg: the training study :mod:`proofs_check.experiments.trained` trains one-layer GLA
models (linear attention, scalar gates, key-wise vector gates) with Adam on fresh structured
prompts and compares the trained risk, effective weights / preconditioner and the predictor
itself with the predicted optimum of the architecture. Theory leg: the predicted optima of the
same settings in exact rational arithmetic (:func:`theory.predictions.exact_predictions`, no
numerical optimiser), the L7 closed form and its SymPy proof. Protocol and measured figures:
docs/trained.md; each case's evaluation curve travels with its evidence, and the figures are
drawn from it.
"""

from __future__ import annotations

import math
import time

import numpy as np

from numerics.measures import cosine
from theory import stationarity as st
from theory.predictions import exact_predictions

from .. import sources, tolerances as tol
from ..experiments import trained as T
from ..registry import Claim, Evidence, above, at_least, at_most, compare, equals, holds, symbolic

__all__ = ["CLAIM", "case_evidence", "fn_tolerance"]

ARCHS = ("linear", "scalar", "vector")

CLAIM = Claim(
    id="G6",
    area="training",
    title="Trained GLA models reach the predicted optimum of their architecture",
    statement=(
        r"For one-layer GLA trained by Adam on fresh structured prompts (distinct delimiters, "
        r"$\Sigma=I_d$, independent tasks) in the single-task, monotone and non-monotone "
        r"$K$-task settings, and for each architecture (linear attention, scalar gating, key-wise "
        r"vector gating), with the WPGD structure of the construction ($W_q, W_k$ read only $x$, $W_v$ "
        r"only $y$, gates read only the delimiter channels): the trained risk is within $2\%$ of the predicted "
        r"optimum of the architecture ($L_{LA}=L(\mathbf 1)$, $L^*_{GLA}$ the monotone-cone optimum, "
        r"$L^*_{vec}=L^*_{WPGD}$), never below it, and the effective block weights and "
        r"preconditioner read from the trained gates and projections have cosine $\ge 0.98$ with "
        r"the predicted $\omega^*$, $P^*$ (up to the scale $(P,\omega)\to(P/s,s\omega)$); the trained "
        r"predictor and $\partial\hat y/\partial x$ match $x^\top P^* X^\top(\omega^*\odot y)$."
    ),
    conditions=(
        (
            "$W_q,W_k$ read only $x$; $W_v$ only $y$, into the label slot; gates read only the "
            "delimiter channels"
        ),
        "vector gating trained with key dimension $D_k=8d$",
    ),
    source=sources.DERIVED_HERE
    + " (a training experiment of this project on the landscape of "
    + sources.abstract(sources.GLA_LANDSCAPE)
    + ")",
    status_note=(
        "Holds in all 9 (setting, architecture) cases under the WPGD-structure restriction "
        "($W_q,W_k$ read only $x$, $W_v$ only $y$ into the label slot, gates read only the "
        "delimiter channels): quick-profile gaps 0.02–0.9%, full-profile gaps 0.01–0.23%, "
        r"cosines $\ge0.9999$. Vector gating is trained with $D_k=8d$: $D_k=2d$ can represent "
        "$L^*_{WPGD}$ (two key copies, weights $u-v$) but Adam from random initialisations "
        "stalls in local minima there (pooled, scalar-like weights, or only one direction "
        "split): 0/3 seeds within 2% at $2d$, 1/3 at $4d$, 3/3 at $8d$. The optimal predictor "
        "is unique as a function, so the function-level comparison uses no fitted scale "
        "(fitted scale 0.98–1.02). As first posed the claim had no restriction, and that "
        "wording is wrong: unrestricted models, whose gates can read $x_i,y_i$, beat the "
        r"predicted optimum (full profile: single/vector $-25.7\%$ at 59 s.e., monotone/vector "
        r"$-17.0\%$, single/scalar $-4.0\%$, monotone/scalar $-1.4\%$): data-dependent gates "
        "leave the fixed-weight WPGD class, so the prediction is the optimum of structural "
        "gating only. The one unrestricted case that stays above the prediction "
        r"(nonmonotone/vector, $+5.4\%$ after 4000 steps, $+16\%$ after 1500) is a training "
        "failure of the same kind as $D_k=2d$. The full profile records the unrestricted runs "
        "as a counterexample search."
    ),
    settings={
        "settings": [s.describe() | {"name": s.name} for s in T.default_settings()],
        "architectures": {
            a: {"gate": g, "Dk": f"{m}d", "init_gate_weight_scale": w}
            for a, (g, m, w) in T.ARCHITECTURES.items()
        },
        "profiles": {k: vars(v) for k, v in T.PROFILES.items() if k != "tiny"},
        "restriction": "wpgd (quick and full); free (full only)",
        "optimizer": "Adam (0.9, 0.999, 1e-8), cosine lr decay, fresh prompts every step",
        "risk_tol": tol.RISK_GAP,
        "cos_tol": tol.COSINE,
    },
    verdict="restricted",
    verdict_condition=(
        "only for models restricted to the WPGD structure ($W_q,W_k$ read only $x$, $W_v$ "
        "only $y$, gates only the delimiter channels); unrestricted trained models beat the "
        "fixed-weight optimum by up to 25.7%"
    ),
)


# ============================================================================ theory leg
def _setting_evidence(s: T.Setting) -> Evidence:
    t0 = time.perf_counter()
    ex = exact_predictions(m=s.m, rho=s.rho, Gamma=s.Gamma_matrix.tolist(), d=s.d, sigma=s.sigma)
    sym_s = time.perf_counter() - t0
    key = {"linear": "L_la", "scalar": "L_gla", "vector": "L_wpgd"}
    vals = [T.predict_optimum(s, a).risk for a in ARCHS]
    refs = [float(ex[key[a]]) for a in ARCHS]
    u_cos = cosine(T.predict_optimum(s, "vector").u, np.array([float(v) for v in ex["u_wpgd"]]))
    return compare(
        f"{s.name}: exact L_LA, L*_GLA, L*_WPGD vs predict_optimum",
        vals,
        refs,
        tol.PREDICTION,
        kind="symbolic",
        criteria=(
            holds(
                "L7_closed_form", ex["L7_closed_form"], "(A + B)^{-1} r equals rho_k/(m_k+1+d+s^2)"
            ),
            at_most(
                "one_minus_cos_u_vector_vs_L7",
                abs(1 - u_cos),
                tol.IDENTITY,
                "1 - cos between the numerics' vector-gating block weights and the L7 form",
            ),
        ),
        setting=s.name,
        exact={k: str(ex[key[a]]) for a, k in key.items()},
        exact_float=dict(zip(ARCHS, refs)),
        numerics=dict(zip(ARCHS, vals)),
        u_wpgd_closed_form=[str(v) for v in ex["u_wpgd"]],
        cos_u_vector_vs_L7=u_cos,
        gla_eq_wpgd_exact=ex["gla_eq_wpgd"],
        sympy_seconds=round(sym_s, 3),
        model=s.describe(),
    )


@CLAIM.check(
    "SymPy: exact predicted optima (LA, scalar-GLA cone faces, WPGD = L7) vs numerics predictions",
    leg="theory",
)
def _theory(ctx):
    out = [_setting_evidence(s) for s in T.default_settings()]
    out.append(
        symbolic(
            "SymPy: L7 closed form omega*_k = rho_k/(m_k+1+d+sigma^2) (theory.stationarity.check_L7)",
            st.check_L7(),
        )
    )
    return out


# ============================================================================ numerics leg
def fn_tolerance(pred_risk: float, null: float) -> float:
    r"""Function-level relative-RMS tolerance equivalent to the 2% risk target: if the trained
    predictor ``f`` deviates from the optimum ``f*`` orthogonally to the residual, its excess risk
    is ``E(f − f*)²``, and ``E f*² = L₀ − L*`` for the (scale-optimal) optimum, so a 2% excess
    corresponds to ``rel RMS = sqrt(0.02 L* / (L₀ − L*))``.

    >>> round(fn_tolerance(1.0, 3.0), 4)
    0.1
    """
    return math.sqrt(tol.RISK_GAP * pred_risk / (null - pred_risk))


def case_evidence(res: T.CaseResult) -> Evidence:
    """Verdict and figures of one trained case (see :mod:`proofs_check.experiments.trained`)."""
    f = dict(res.figures)
    tol_fn = fn_tolerance(f["predicted_risk"], f["null_risk"])
    exact = f["trained_risk_exact"] is not None
    criteria = [
        at_most("gap", f["rel_gap"], tol.RISK_GAP, "(trained - predicted risk) / predicted risk")
    ]
    if exact:
        criteria += [
            at_least(
                "rel_gap_below",
                f["rel_gap"],
                -tol.ROUNDING_BELOW_OPTIMUM,
                "exact trained risk is never below the predicted infimum",
            ),
            at_most(
                "mc_vs_exact_abs_z",
                abs(f["mc_vs_exact_z"]),
                tol.MC_Z,
                "Monte Carlo vs exact risk of the trained model, in standard errors",
            ),
        ]
    else:
        criteria.append(
            at_least(
                "paired_gap_z",
                f["paired_gap_mc"] / f["paired_gap_se"],
                -tol.MC_Z,
                "paired MC gap to the prediction in standard errors (never far below)",
            )
        )
    criteria += [
        at_least("cos_omega", f["cos_omega"], tol.COSINE, "cosine of effective block weights"),
        at_least("cos_P", f["cos_P"], tol.COSINE, "cosine of the effective preconditioner"),
        at_most("fn_rel_rms_pred", f["fn_rel_rms_pred"], tol_fn, "relative RMS of the predictor"),
        at_most("fn_rel_rms_grad", f["fn_rel_rms_grad"], tol_fn, "relative RMS of dy/dx"),
    ]
    figs = {
        "tolerance": tol.RISK_GAP,
        "cos_tolerance": tol.COSINE,
        "fn_tolerance": tol_fn,
        "below_tolerance": tol.ROUNDING_BELOW_OPTIMUM,
        "mc_z_tolerance": tol.MC_Z,
        **f,
    }
    detail = (
        f"predicted {f['predicted_risk']:.5f}, trained {f['trained_risk']:.5f} "
        f"(MC {f['trained_risk_mc']:.5f} +- {f['trained_risk_se']:.5f}), rel gap {f['rel_gap']:.4f}; "
        f"cos(omega) {f['cos_omega']:.5f}, cos(P) {f['cos_P']:.5f}; fn rel RMS {f['fn_rel_rms_pred']:.4f}"
    )
    name = f"{res.setting.name} / {res.architecture} (D_k={f['Dk']}, {res.restriction})"
    return Evidence(
        name,
        "monte-carlo",
        criteria,
        figs,
        detail=detail,
        seconds=f["train_seconds"] + f["eval_seconds"],
    )


def _train_case(
    setting, architecture, profile, seed, restriction, prediction=None, dk_multiple=None
):
    """One independent training run (a piece for :meth:`Context.map`: picklable, no callbacks)."""
    return T.run_case(
        setting,
        architecture,
        profile=profile,
        seed=seed,
        restriction=restriction,
        prediction=prediction,
        dk_multiple=dk_multiple,
        progress=False,
    )


def _map_cases(ctx, label: str, args: list[tuple]) -> list[T.CaseResult]:
    """Train the cases ``args`` (arguments of :func:`_train_case`) on the run's pool, in order."""
    ctx.progress(
        f"G6 {label}: training {len(args)} cases" + (f" on {ctx.pool.backend}" if ctx.pool else "")
    )
    return ctx.map(
        _train_case, args, progress=lambda k, n: ctx.progress(f"G6 {label}: {k}/{n} cases trained")
    )


def run_all(ctx, profile: str, restriction: str = "wpgd") -> list[T.CaseResult]:
    """Train every (setting, architecture) with ``ctx.seed`` (independent runs: on the run's pool
    if it has one, see :meth:`Context.map`); progress to ``ctx.progress``."""
    prof = T.PROFILES[profile]
    cases = [(s, a, prof, ctx.seed, restriction) for s in T.default_settings() for a in ARCHS]
    results = _map_cases(ctx, f"{profile}/{restriction}", cases)
    for r in results:
        f = r.figures
        ctx.progress(
            f"G6 {r.setting.name}/{r.architecture}/{restriction}: rel gap {f['rel_gap']:.4f}, "
            f"cos(omega) {f['cos_omega']:.4f}, {f['train_seconds']:.1f}s train"
        )
    return results


@CLAIM.check(
    "trained one-layer GLA vs predicted optimum (risk, block weights, P, predictor)", leg="numerics"
)
def _numerics(ctx):
    results = run_all(ctx, "full" if ctx.full else "quick", "wpgd")
    evs = [case_evidence(r) for r in results]
    for ev, r in zip(evs, results):
        # The evaluation curve travels with the evidence (report -> appendix), not via files.
        ev.figures["curve_eval"] = [[int(st_), float(el)] for st_, _, el in r.curve if el == el]
    return evs


@CLAIM.check(
    "full profile: unrestricted weights (gates may read x, y): counterexample search against "
    "the unrestricted wording, and the vector-gate width study",
    leg="numerics",
)
def _free(ctx):
    """Full profile only (quick: no evidence). Unrestricted models are outside the class the
    prediction optimises over; the claim as first posed had no restriction. This check searches
    for a counterexample to that wording: it passes when some unrestricted model beats its
    architecture's predicted optimum by more than ``MC_Z`` standard errors of the paired Monte
    Carlo gap (data-dependent gates leave fixed-weight WPGD). Every case's figures are in the
    evidence, including the ones that stay above the prediction."""
    if not ctx.full:
        return []
    cases = []
    for r in run_all(ctx, "full", "free"):
        f = case_evidence(r).figures
        cases.append(
            {
                "case": f"{r.setting.name}/{r.architecture}",
                "predicted_risk": f["predicted_risk"],
                "trained_risk_mc": f["trained_risk"],
                "rel_gap": f["rel_gap"],
                "beats_prediction_z": -f["paired_gap_mc"] / f["paired_gap_se"],
                "Dk": f["Dk"],
            }
        )
    best = max(cases, key=lambda c: c["beats_prediction_z"])
    found = best["beats_prediction_z"] > tol.MC_Z
    ev = Evidence(
        "unrestricted models vs the structural-gate prediction (counterexample search)",
        "search",
        [
            above(
                "best_z",
                best["beats_prediction_z"],
                tol.MC_Z,
                "largest paired z by which an unrestricted model beats its prediction",
            )
        ],
        {
            "cases": cases,
            "z_threshold": tol.MC_Z,
            "best_case": best["case"],
            "best_rel_gap": best["rel_gap"],
        },
        detail=(
            f"best: {best['case']} rel gap {best['rel_gap']:+.4f} "
            f"({best['beats_prediction_z']:+.1f} s.e. below the prediction); cases above the "
            f"prediction: "
            + ", ".join(f"{c['case']} {c['rel_gap']:+.3f}" for c in cases if c["rel_gap"] > 0)
        ),
        counterexample=(
            {"statement": "G6 as first posed, without the structural-gate restriction", **best}
            if found
            else None
        ),
    )
    return [ev, _dk_width_study(ctx)]


def _dk_width_study(ctx) -> Evidence:
    """Full profile: how often vector gating at D_k = 2d, 4d, 8d reaches the 2% target on the
    non-monotone setting (3 seeds, quick budget). Reported as a search; it passes when the default
    width (8d) succeeds for every seed."""
    s = next(x for x in T.default_settings() if x.name == "nonmonotone")
    pred = T.predict_optimum(s, "vector")
    rows = {}
    widths = (2, 4, 8)
    cases = [
        (s, "vector", "quick", ctx.seed + k, "wpgd", pred, mult)
        for mult in widths
        for k in range(3)
    ]
    results = _map_cases(ctx, "D_k width study", cases)
    for i, mult in enumerate(widths):
        gaps = [r.figures["rel_gap"] for r in results[3 * i : 3 * i + 3]]
        ctx.progress(f"G6 D_k={mult}d: rel gaps {', '.join(f'{g:.4f}' for g in gaps)}")
        rows[f"{mult}d"] = {"rel_gaps": gaps, "success": int(sum(g <= tol.RISK_GAP for g in gaps))}
    default = f"{T.ARCHITECTURES['vector'][1]}d"
    return Evidence(
        "vector gating: D_k width study (non-monotone, 3 seeds each)",
        "search",
        [
            equals(
                "default_width_successes",
                rows[default]["success"],
                3,
                f"seeds within 2% at the default width {default}",
            )
        ],
        {"widths": rows, "tolerance": tol.RISK_GAP, "seeds": [ctx.seed + k for k in range(3)]},
        detail="; ".join(f"D_k={k}: {v['success']}/3 within 2%" for k, v in rows.items()),
    )


# ============================================================================ figures
def _trained_evidence(claim: dict | None) -> list[dict]:
    if not claim:
        return []
    return [
        e
        for e in claim["evidence"]
        if "u_trained" in (e.get("figures") or {}) and e["figures"].get("restriction") == "wpgd"
    ]


@CLAIM.figure("trained_vs_predicted", "Trained vs predicted weights and preconditioners (G6)")
def _trained_vs_predicted(claim, out, data_dir):
    from ..plotting import pyplot, save_figure

    evs = _trained_evidence(claim)
    if not evs:
        return None
    plt = pyplot()
    names = list(dict.fromkeys(e["figures"]["setting"] for e in evs))
    archs = list(dict.fromkeys(e["figures"]["architecture"] for e in evs))
    fig, ax = plt.subplots(2, len(archs), figsize=(3.3 * len(archs), 5.6), squeeze=False)
    for j, arch in enumerate(archs):
        for i, s in enumerate(names):
            e = next(
                (
                    e
                    for e in evs
                    if e["figures"]["setting"] == s and e["figures"]["architecture"] == arch
                ),
                None,
            )
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
        e = next(
            (
                e
                for e in evs
                if e["figures"]["architecture"] == arch
                and "P_trained" in e["figures"]
                and e["figures"]["setting"] == names[-1]
            ),
            None,
        )
        if e is not None:
            Pt, Pp = np.asarray(e["figures"]["P_trained"]), np.asarray(e["figures"]["P_predicted"])
            both = np.concatenate([Pt, np.full((Pt.shape[0], 1), np.nan), Pp], axis=1)
            im = ax[1, j].imshow(both, cmap="coolwarm", vmin=-1, vmax=1)
            ax[1, j].set_title(f"P trained | P predicted ({names[-1]})", fontsize=8)
            ax[1, j].set_xticks([])
            ax[1, j].set_yticks([])
            fig.colorbar(im, ax=ax[1, j], fraction=0.046)
    fig.tight_layout()
    save_figure(fig, out, "trained_vs_predicted")
    f0 = evs[0]["figures"]
    return (
        "Top: block weights read from the trained gates (dots) vs the predicted optimum of the architecture "
        "(bars), unit-normalised, per setting. Bottom: trained vs predicted preconditioner P (Frobenius-"
        f"normalised). 1-layer GLAs with the WPGD-construction mask, {f0['steps']} Adam steps, batch "
        f"{f0['batch_size']}, seed {f0['seed']}; settings of claim G6 (Sigma = I, d = {f0['model_d']}, "
        f"sigma = {f0['model_sigma']}, distinct delimiters)."
    )


@CLAIM.figure("training_curves", "Training curves of the G6 models against their predicted optima")
def _training_curves(claim, out, data_dir):
    from ..plotting import pyplot, save_figure

    evs = [e for e in _trained_evidence(claim) if e["figures"].get("curve_eval")]
    if not evs:
        return None
    plt = pyplot()
    names = list(dict.fromkeys(e["figures"]["setting"] for e in evs))
    fig, ax = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.2), squeeze=False)
    colors = {"linear": "tab:gray", "scalar": "tab:blue", "vector": "tab:orange"}
    for j, s in enumerate(names):
        for e in (e for e in evs if e["figures"]["setting"] == s):
            f = e["figures"]
            col = colors.get(f["architecture"], "k")
            st_, el = zip(*f["curve_eval"])
            ax[0, j].plot(st_, el, color=col, label=f["architecture"])
            ax[0, j].axhline(f["predicted_risk"], color=col, ls=":", lw=1)
        ax[0, j].set_yscale("log")
        ax[0, j].set_title(s, fontsize=9)
        ax[0, j].set_xlabel("Adam step")
        ax[0, j].set_ylabel("eval risk (squared label units)")
        ax[0, j].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out, "training_curves")
    f0 = evs[0]["figures"]
    return (
        "Evaluation risk during training (solid) and the predicted optimum of each architecture (dotted) for "
        f"the G6 settings; {f0['steps']} Adam steps, batch {f0['batch_size']}, seed {f0['seed']}. The curves use "
        "one fixed, small evaluation set per setting (1024 prompts in the quick profile), so the curves of a "
        "setting share its sampling error, which can reach about 10%; the claim's verdicts use the exact risk of "
        "the trained predictor and a 50,000-prompt Monte Carlo estimate."
    )
