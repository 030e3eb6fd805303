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
from numerics.prompts import tokens
from theory import stationarity as st
from theory.predictions import exact_predictions

from .. import sources, tolerances as tol
from ..experiments import trained as T
from ..instances import unit
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
        "$D_k=2d$ would suffice to represent $L^*_{WPGD}$ (two key copies, weights $u-v$), but "
        "Adam from random initialisations stalls in local minima there: 0/3 seeds within 2% at "
        "$2d$, 1/3 at $4d$, 3/3 at $8d$. The optimal predictor is unique as a function, so the "
        "function-level comparison fits no scale. As first posed the claim had no restriction, "
        "which is wrong: unrestricted models, whose gates can read $x_i,y_i$, beat the predicted "
        r"optimum (full profile: single/vector $-25.7\%$ at 59 s.e., monotone/vector $-17.0\%$, "
        r"single/scalar $-4.0\%$, monotone/scalar $-1.4\%$), as data-dependent gates leave the "
        r"fixed-weight WPGD class; the one case above it (nonmonotone/vector, $+5.4\%$) is a "
        "training failure like $D_k=2d$."
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
        "only for models with the WPGD structure ($W_q,W_k$ read only $x$, $W_v$ only $y$, gates "
        "only the delimiter channels); unrestricted ones beat the fixed-weight optimum by up "
        "to 25.7%"
    ),
    cost=19,  # quick-profile CPU seconds, pieces included (scheduling hint)
    cost_full=92,  # the same in the full profile
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


def _train_cases(
    setting, architectures, profile, seed, restriction, predictions=None, dk_multiples=None
):
    """The cases of one setting and seed, trained side by side on the same prompts
    (:func:`proofs_check.experiments.trained.run_cases`: each result equals its own
    ``run_case`` bit for bit, the prompts are drawn once); a piece for :meth:`Context.map`
    (picklable, no callbacks)."""
    return T.run_cases(
        setting,
        architectures,
        profile=profile,
        seed=seed,
        restriction=restriction,
        predictions=predictions,
        dk_multiples=dk_multiples,
        progress=False,
    )


#: D_k multiples and seeds of the width study (:func:`_dk_width_study`).
WIDTHS = (2, 4, 8)
WIDTH_SEEDS = 3


def _width_groups(ctx) -> list[tuple]:
    """The groups of the D_k width study (full profile, :func:`_dk_width_study`): one per seed,
    the widths 2d, 4d, 8d of vector gating side by side on the non-monotone setting's prompts."""
    s = next(x for x in T.default_settings() if x.name == "nonmonotone")
    pred = T.predict_optimum(s, "vector")
    return [
        (s, ("vector",) * len(WIDTHS), "quick", ctx.seed + k, "wpgd", (pred,) * len(WIDTHS), WIDTHS)
        for k in range(WIDTH_SEEDS)
    ]


def _groups(ctx) -> list[tuple[tuple[str, ...], tuple]]:
    """Every group of cases the run trains: ``(study of each case, arguments of
    :func:`_train_cases`)``. Studies: ``"wpgd"`` the trained-vs-predicted cases of the profile;
    in the full profile also ``"free"`` (unrestricted weights, in the same group as the
    ``"wpgd"`` cases of their setting: same seed, so the same prompts, drawn once) and
    ``"width"`` (the D_k width study)."""
    prof = T.PROFILES["full" if ctx.full else "quick"]
    studies = ("wpgd", "free") if ctx.full else ("wpgd",)
    labels = tuple(st_ for st_ in studies for _ in ARCHS)
    out = [
        (labels, (s, ARCHS * len(studies), prof, ctx.seed, labels)) for s in T.default_settings()
    ]
    if ctx.full:
        out += [(("width",) * len(WIDTHS), g) for g in _width_groups(ctx)]
    return out


def _cost(group: tuple) -> int:
    """A group's training work up to a constant (steps x batch x prompt length x summed D_k):
    only to start the long groups first."""
    s, archs, prof = group[0], group[1], group[2]
    prof = T.PROFILES[prof] if isinstance(prof, str) else prof
    mults = group[6] if len(group) > 6 and group[6] else [T.ARCHITECTURES[a][1] for a in archs]
    return prof.steps * prof.batch_size * s.prompt.T * sum(mults)


def _train_all(ctx) -> dict[str, list[T.CaseResult]]:
    """Train every group of :func:`_groups` in one :meth:`Context.map`, the most expensive first,
    so the run's pool works on all of them side by side instead of one study after the other
    behind a barrier each; the results by study, in the order of :func:`_groups` (each case's
    result depends only on its arguments: neither the grouping nor the order changes a figure)."""
    groups = _groups(ctx)
    order = sorted(range(len(groups)), key=lambda i: -_cost(groups[i][1]))  # stable
    n = sum(len(labels) for labels, _ in groups)
    ctx.progress(
        f"G6: training {n} cases in {len(groups)} groups"
        + (f" on {ctx.pool.backend}" if ctx.pool else "")
    )
    done = ctx.map(
        _train_cases,
        [groups[i][1] for i in order],
        progress=lambda k, m: ctx.progress(f"G6: {k}/{m} groups of cases trained"),
    )
    by_index = dict(zip(order, done))
    out: dict[str, list[T.CaseResult]] = {}
    for i, (labels, _) in enumerate(groups):
        for study, res in zip(labels, by_index[i]):
            out.setdefault(study, []).append(res)
    return out


def _trained(ctx) -> dict[str, list[T.CaseResult]]:
    """:func:`_train_all`, once per run (the checks of this claim share it)."""
    return ctx.shared("trained", lambda: _train_all(ctx))


def run_all(ctx, restriction: str = "wpgd") -> list[T.CaseResult]:
    """Every (setting, architecture) of the profile trained with ``ctx.seed`` and
    ``restriction`` (one group per setting, its architectures side by side; all of the run's
    groups are trained once, together, by :func:`_train_all`); progress to ``ctx.progress``."""
    results = _trained(ctx)[restriction]
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
    results = run_all(ctx, "wpgd")
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
    for r in run_all(ctx, "free"):
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
    rows = {}
    widths = WIDTHS
    by_seed = _trained(ctx)["width"]
    for i, mult in enumerate(widths):
        gaps = [by_seed[len(widths) * k + i].figures["rel_gap"] for k in range(WIDTH_SEEDS)]
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
                WIDTH_SEEDS,
                f"seeds within 2% at the default width {default}",
            )
        ],
        {
            "widths": rows,
            "tolerance": tol.RISK_GAP,
            "seeds": [ctx.seed + k for k in range(WIDTH_SEEDS)],
        },
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


def _pct(v: float, fmt: str = ".0%") -> str:
    r"""``v`` as a LaTeX percentage (``%`` starts a comment in LaTeX).

    >>> _pct(0.02)
    '2\\%'
    """
    return f"{v:{fmt}}".replace("%", r"\%")


#: Exact risks below the predicted optimum by less than this (relative) are float64 rounding of
#: two risk formulas (claim G6 allows ``ROUNDING_BELOW_OPTIMUM``); drawn at this floor on the
#: logarithmic axis of the training curves.
_GAP_FLOOR = 1e-6


@CLAIM.figure("training_curves", "Training curves of the G6 models against their predicted optima")
def _training_curves(claim, out, data_dir):
    from ..plotting import ARCH_STYLE, figure, save_figure

    evs = [e for e in _trained_evidence(claim) if e["figures"].get("curve_exact")]
    if not evs:
        return None
    names = list(dict.fromkeys(e["figures"]["setting"] for e in evs))
    fig, ax = figure(1, len(names), height=2.3, sharey=True)
    data = []
    for j, s in enumerate(names):
        a = ax[0, j]
        for e in (e for e in evs if e["figures"]["setting"] == s):
            f = e["figures"]
            label, col, mk, ls = ARCH_STYLE[f["architecture"]]
            steps, risk = (np.asarray(v, float) for v in zip(*f["curve_exact"]))
            gap = (risk - f["predicted_risk"]) / f["predicted_risk"]
            a.plot(steps, np.maximum(gap, _GAP_FLOOR), color=col, ls=ls, label=label)
            # the claim's verdict: the exact risk of the final model (the curve's last point)
            a.plot(steps[-1], max(f["rel_gap"], _GAP_FLOOR), color=col, marker=mk, ls="none")
            data += [
                {
                    "setting": s,
                    "architecture": f["architecture"],
                    "step": int(t),
                    "exact_risk": float(r),
                    "predicted_risk": f["predicted_risk"],
                    "rel_gap": float(g),
                }
                for t, r, g in zip(steps, risk, gap)
            ]
        a.axhline(tol.RISK_GAP, color="0.4", lw=0.8, ls=(0, (4, 2)))
        a.set_yscale("log")
        a.set_title(s)
        a.set_xlabel("Adam step")
    ax[0, 0].set_ylabel(r"$(L(\theta_t)-L^*)/L^*$ (exact)")
    ax[0, 0].plot([], [], color="0.4", lw=0.8, ls=(0, (4, 2)), label=f"claim: {tol.RISK_GAP:.0%}")
    ax[0, 0].plot([], [], color="0.3", marker="o", ls="none", label="final model")
    fig.legend(*ax[0, 0].get_legend_handles_labels(), loc="outside upper center", ncols=5)
    save_figure(fig, out, "training_curves", data)
    f0 = evs[0]["figures"]
    worst = max(e["figures"]["rel_gap"] for e in evs)
    return (
        r"The exact population risk $L(\theta_t)$ of each trained G6 model (closed form from its "
        r"token matrices, no sampling) relative to the predicted optimum $L^*$ of its "
        rf"architecture, every {int(f0['steps']) // max(len(f0['curve_exact']) - 1, 1)} Adam "
        r"steps (logarithmic axis); a trained model lies in its architecture's class, so the gap "
        r"is $\ge0$. Markers: the final models, on which the verdict rests (largest gap "
        rf"{_pct(worst, '.2%')}; dashed: the claim's {_pct(tol.RISK_GAP)}). {f0['steps']} steps, "
        rf"batch {f0['batch_size']}, seed {f0['seed']}; $\Sigma=I$, $d={f0['model_d']}$, "
        rf"$\sigma={f0['model_sigma']}$, distinct delimiters. Data: the run's evidence."
    )


def _readout(res: T.CaseResult):
    """Per-token weights (unit norm, rank-1 read-out) and ``P`` of a trained case."""
    sp = res.setting.prompt
    Z = tokens(sp, res.setting.model().sample(4, np.random.default_rng(0)))
    M, _ = T.token_matrices(res.params, res.spec, res.setting, Z)
    r1 = T.rank1_readout(M, res.prediction.omega)
    return unit(r1["omega"]), r1["P"]


def _heat(ax, A, vmax, title):
    im = ax.imshow(A, cmap="PuOr_r", vmin=-vmax, vmax=vmax)
    ax.set_title(title)
    ax.set_xticks(range(A.shape[1]), [str(k + 1) for k in range(A.shape[1])])
    ax.set_yticks(range(A.shape[0]), [str(k + 1) for k in range(A.shape[0])])
    return im


@CLAIM.figure(
    "trained_vs_predicted",
    r"Learned vs predicted weights by position and preconditioner (anisotropic $\Sigma$)",
)
def _trained_vs_predicted(claim, out, data_dir):
    """Top: weights by position per architecture; bottom: ``P*``, trained ``P`` and their
    entries against each other. The sweep ``g6_seeds`` stores the block weights of every seed
    but not the trained parameters, so the sweep's first seed of each architecture is retrained
    here with the same setting, budget and seed (the same run: deterministic, its stored exact
    risk gap is compared, and the caption says whether it matched)."""
    from ..experiments import g6_seeds as G6S
    from ..plotting import TEXT_WIDTH_IN, pyplot, save_figure, sweep_rows

    rows, source = sweep_rows(data_dir, G6S.SWEEP)
    rows = [r for r in rows if r["setting"] == "nonmonotone"]
    if not rows:
        return None
    archs = [a for a in ARCHS if any(r["arch"] == a for r in rows)]
    # two rows laid out apart (subfigures): the heatmaps' colour bar must not shift the top row
    fig = pyplot().figure(figsize=(TEXT_WIDTH_IN, 3.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1.0])
    ax = [top.subplots(1, 3), bottom.subplots(1, 3)]
    data, cases, seeds = [], {}, {}
    for j, arch in enumerate(archs):
        ra = sorted((r for r in rows if r["arch"] == arch), key=lambda r: int(r["rep"]))
        seeds[arch] = ra
        cases[arch] = _retrain_first_seed(ra[0], arch, G6S)
        data += _weights_panel(ax[0][j], arch, cases[arch], ra)
    for a in ax[0][len(archs) :]:
        a.set_visible(False)
    ax[0][0].set_ylabel(r"weight $\omega_i$ (unit norm)")
    top.legend(handles=_weights_legend(len(ra)), loc="outside upper center", ncols=3)
    res = cases[archs[-1]]  # the most expressive architecture of the sweep
    P_rows, frob = _preconditioner_panels(bottom, ax[1], res, archs[-1])
    data += P_rows
    save_figure(fig, out, "trained_vs_predicted", data)
    return _trained_vs_predicted_caption(res, cases, seeds, frob, source, G6S.COND)


def _retrain_first_seed(first: dict, arch: str, G6S) -> T.CaseResult:
    """The sweep's run of ``first`` (its setting, training budget and seed) trained again."""
    ref = T.PROFILES["quick"]
    prof = T.Profile(**{k: type(getattr(ref, k))(first[k]) for k in vars(ref)})
    return T.run_case(G6S.make_setting(first), arch, profile=prof, seed=int(first["seed"]))


def _weights_panel(a, arch: str, res: T.CaseResult, ra: list[dict]) -> list[dict]:
    """One architecture's weights by position: predicted ``ω*`` (step line), the retrained first
    seed read from its gates (hollow markers) and the block weights of every seed of the sweep
    (mean, bar: range); returns the plotted rows."""
    from ..plotting import ARCH_STYLE

    setting, first = res.setting, ra[0]
    om, _ = _readout(res)
    om_star = unit(res.prediction.omega)
    m = np.asarray(setting.m)
    pos = np.arange(1, setting.model().n + 1)
    U = np.array([np.asarray(r["u_trained"], float) for r in ra])
    U /= np.sqrt((U**2 * m).sum(axis=1, keepdims=True))  # block weights -> per-token scale
    edges = np.concatenate([[0], np.cumsum(m)])
    centres = (edges[:-1] + edges[1:]) / 2 + 0.5
    label, col, mk, _ = ARCH_STYLE[arch]
    a.step(pos, om_star, where="mid", color="k", lw=1.0)
    a.plot(pos, om, ls="none", marker=mk, color=col, mfc="none", ms=3.0)
    a.errorbar(
        centres,
        U.mean(0),
        yerr=np.maximum([U.mean(0) - U.min(0), U.max(0) - U.mean(0)], 0.0),  # rounding
        ls="none",
        color=col,
        marker="_",
        ms=8,
        capsize=3,
    )
    a.set_xticks([1, *(int(e) for e in edges[1:])])
    for b in edges[1:-1]:
        a.axvline(b + 0.5, color="0.7", lw=0.5)
    a.set_title(label)
    a.set_xlabel("example position $i$")
    a.set_ylim(-0.05, max(0.6, float(om_star.max()) * 1.25))
    return [
        {
            "architecture": arch,
            "position": int(i),
            "omega_predicted": float(w0),
            "omega_trained_first_seed": float(w1),
            "rel_gap_retrained": res.figures["rel_gap"],
            "rel_gap_in_sweep": first["rel_gap"],
        }
        for i, w0, w1 in zip(pos, om_star, om)
    ] + [
        {
            "architecture": arch,
            "segment": k + 1,
            "block_weight_mean": float(U[:, k].mean()),
            "block_weight_min": float(U[:, k].min()),
            "block_weight_max": float(U[:, k].max()),
            "seeds": len(ra),
        }
        for k in range(len(m))
    ]


def _weights_legend(seeds: int) -> list:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color="k", lw=1.0, label=r"predicted $\omega^*$"),
        Line2D(
            [], [], color="0.3", marker="o", mfc="white", ls="none", label="trained, first seed"
        ),
        Line2D(
            [],
            [],
            color="0.3",
            marker="_",
            ms=8,
            ls="none",
            label=f"block weights over {seeds} seeds (mean; bar: range)",
        ),
    ]


def _preconditioner_panels(fig, ax, res: T.CaseResult, arch: str) -> tuple[list[dict], float]:
    """``P*`` and the trained ``P`` (Frobenius-normalised, one colour scale) as heatmaps, and
    their entries against each other (diagonal filled, off-diagonal hollow, the line ``y = x``);
    returns the plotted rows and ``‖P − P*‖_F`` of the normalised matrices."""
    from ..plotting import ARCH_STYLE

    Pstar = res.prediction.P / np.linalg.norm(res.prediction.P)
    _, P = _readout(res)
    P = P / np.linalg.norm(P)
    vmax = float(np.abs(Pstar).max())
    for a, A, t in zip(ax[:2], (Pstar, P), ("predicted $P^*$", "trained $P$")):
        im = _heat(a, A, vmax, t)
        a.set_xlabel("column $b$")
    ax[0].set_ylabel("row $a$")
    fig.colorbar(im, ax=ax[:2], shrink=0.9, label=r"$P_{ab}/\|P\|_F$")
    _, col, mk, _ = ARCH_STYLE[arch]
    diag = np.eye(P.shape[0], dtype=bool)
    a = ax[2]
    lims = (min(Pstar.min(), P.min()) - 0.08, max(Pstar.max(), P.max()) + 0.08)
    a.plot(lims, lims, color="0.5", lw=0.8, ls=":")
    a.set_xlim(lims)
    a.set_ylim(lims)
    a.plot(Pstar[diag], P[diag], ls="none", marker=mk, color=col, label="diagonal")
    a.plot(Pstar[~diag], P[~diag], ls="none", marker=mk, color=col, mfc="white", label="off-diag.")
    a.set_xlabel(r"predicted $P^*_{ab}$")
    a.set_ylabel(r"trained $P_{ab}$")
    a.set_title("entries")
    a.legend(loc="lower right", handletextpad=0.2, borderaxespad=0.2)
    a.set_aspect("equal")
    d = P.shape[0]
    rows = [
        {
            "architecture": arch,
            "P_row": i + 1,
            "P_col": k + 1,
            "P_predicted": Pstar[i, k],
            "P_trained_first_seed": P[i, k],
        }
        for i in range(d)
        for k in range(d)
    ]
    return rows, float(np.linalg.norm(P - Pstar))


def _seed_block_cosines(rows: list[dict], case: T.CaseResult) -> list[float]:
    """Cosine (over tokens: blocks weighted by their lengths) between each seed's trained block
    weights ``u_trained`` and the block weights of ``case``'s predicted optimum."""
    m = np.asarray(case.setting.m, float)
    starts = np.concatenate([[0], np.cumsum(m)[:-1]]).astype(int)
    v = np.asarray(case.prediction.omega, float)[starts]
    out = []
    for r in rows:
        u = np.asarray(r["u_trained"], float)
        out.append(float(np.sum(m * u * v) / math.sqrt(np.sum(m * u * u) * np.sum(m * v * v))))
    return out


def _trained_vs_predicted_caption(res, cases, seeds, frob, source, cond) -> str:
    """The caption: setting, panels, and the gaps to the predicted optimum over every seed of
    the sweep (with how many are within G6's tolerance); the first seeds are retrained when
    the figure is drawn (the sweep keeps no parameters), and the caption says so when their
    gaps differ from the sweep's record."""
    from ..plotting import ARCH_STYLE

    archs = list(seeds)
    f0 = res.figures
    spread = "; ".join(
        f"{ARCH_STYLE[a][0]} {_pct(min(g), '.2%')}--{_pct(max(g), '.2%')} "
        f"({sum(x <= tol.RISK_GAP for x in g)}/{len(g)})"
        for a in archs
        for g in [[float(r["rel_gap"]) for r in seeds[a]]]
    )
    # the retrained first seed is the sweep's run: its gap must be the one the sweep stored
    same = all(abs(cases[a].figures["rel_gap"] - seeds[a][0]["rel_gap"]) <= 1e-6 for a in archs)
    learned = ""
    if "scalar" in cases and "vector" in cases:
        cos_s, cos_v = (
            _seed_block_cosines(seeds["vector"], cases[a]) for a in ("scalar", "vector")
        )
        learned = (
            r" Vector GLA's blocks: cosine "
            rf"{min(cos_s):.3f}--{max(cos_s):.3f} with the scalar-GLA optimum, "
            rf"{min(cos_v):.3f}--{max(cos_v):.3f} with its own."
        )
    return (
        rf"$\rho=({', '.join(f'{v:g}' for v in f0['model_rho'])})$, "
        rf"$m=({', '.join(str(v) for v in f0['model_m'])})$, $\mathrm{{cond}}(\Sigma)={cond:g}$, "
        rf"$\sigma={f0['model_sigma']:g}$, {f0['steps']} Adam steps. Top: trained weights by "
        r"position (hollow: first seed), predicted $\omega^*$ (line), all seeds' block weights "
        rf"(mean, range). Gaps (seeds within {_pct(tol.RISK_GAP)}): {spread}.{learned} Bottom: "
        rf"predicted against trained $P$ of {ARCH_STYLE[archs[-1]][0]} "
        rf"($\|P-P^*\|_F={frob:.3f}$)"
        + ("" if same else r"; the retrained gaps differ from the sweep's record (both in the CSV)")
        + rf". Data: {_sweep_name(source)}."
    )


def _sweep_name(source: str) -> str:
    r"""A sweep's data source without the repository path (the appendix says once where the
    data are).

    >>> _sweep_name(r"the sweep \texttt{g6\_seeds} (\texttt{docs/data/g6\_seeds.csv})")
    'the sweep \\texttt{g6\\_seeds}'
    """
    return source.split(r" (\texttt{docs/", 1)[0]


def _n_set(ns) -> str:
    r"""``$n\in\{3,6\}$`` for ``[3, 6]``.

    >>> _n_set([3.0, 6])
    '$n\\in\\{3,6\\}$'
    """
    return r"$n\in\{" + ",".join(str(int(n)) for n in ns) + r"\}$"


def _seed_stats(rows, arch, n, key):
    v = np.array([r[key] for r in rows if r["arch"] == arch and r["n"] == n], float)
    return v.mean(), v.min(), v.max(), v.size


@CLAIM.figure(
    "trained_risk_vs_n",
    "Test risk of trained linear attention, scalar and vector GLA vs context length $n$",
)
def _trained_risk_vs_n(claim, out, data_dir):
    """Left: trained risk per architecture (seed mean and range) against its predicted optimum
    and the reference predictors; right: the relative gap to the optimum (log axis)."""
    from ..experiments import risk_vs_n as RN
    from ..plotting import ARCH_STYLE, figure, save_figure, sweep_rows

    rows, source = sweep_rows(data_dir, RN.SWEEP)
    base = sorted((r for r in rows if r["arch"] == "baselines"), key=lambda r: r["n"])
    if not base:
        return None
    ns = np.array([r["n"] for r in base], float)
    fig, ax = figure(1, 2, height=2.6, gridspec_kw={"width_ratios": [1.25, 1.0]})
    data = []
    offsets = dict(zip(RN.ARCHS, (-0.35, 0.0, 0.35)))
    for arch in RN.ARCHS:
        label, col, mk, ls = ARCH_STYLE[arch]
        pred = np.array([r[f"pred_{arch}"] for r in base])
        st = np.array([_seed_stats(rows, arch, n, "trained_risk") for n in ns])
        gp = np.array([_seed_stats(rows, arch, n, "rel_gap") for n in ns])
        ok = st[:, 3] > 0
        ax[0, 0].plot(ns, pred, color=col, ls=ls, lw=1.0)
        ax[0, 0].fill_between(ns[ok], st[ok, 1], st[ok, 2], color=col, alpha=0.3, lw=0)
        ax[0, 0].plot(
            ns[ok] + offsets[arch], st[ok, 0], color=col, marker=mk, ls="none", ms=3.5, label=label
        )
        ax[0, 1].errorbar(
            ns[ok] + offsets[arch],
            gp[ok, 0],
            yerr=[gp[ok, 0] - gp[ok, 1], gp[ok, 2] - gp[ok, 0]],
            color=col,
            marker=mk,
            ls=ls,
            lw=0.8,
            label=label,
        )
        data += [
            {
                "n": int(n),
                "architecture": arch,
                "predicted_optimum": p,
                "trained_mean": a,
                "trained_min": b,
                "trained_max": c,
                "seeds": int(k),
                "rel_gap_mean": g[0],
                "rel_gap_min": g[1],
                "rel_gap_max": g[2],
            }
            for n, p, (a, b, c, k), g in zip(ns, pred, st, gp)
        ]
    data += _baseline_markers(ax[0, 0], base, ns)
    ax[0, 0].plot([], [], color="0.3", lw=1.0, label="lines: predicted optima")
    # linear axis up to just above the null risk: the architectures' differences stay visible;
    # baselines worse than the null predictor (ridge, OLS at small n) fall off the top
    top = 1.15 * max(r["null_risk"] for r in base)
    ax[0, 0].set_ylim(0, top)
    off: dict[str, list[int]] = {}
    for d in data:
        if d.get("mc_risk", 0) > top:
            off.setdefault(ARCH_STYLE[d["architecture"]][0], []).append(d["n"])
    ax[0, 0].set_xlabel("context length $n$")
    ax[0, 0].set_ylabel(r"test risk $\mathbb{E}(y-\hat y)^2$")
    ax[0, 1].axhline(RN.RISK_TOL, color="0.4", lw=0.8, ls=(0, (4, 2)))
    ax[0, 1].set_yscale("log")
    ax[0, 1].set_xlabel("context length $n$")
    ax[0, 1].set_ylabel(r"$(L_{\mathrm{trained}}-L^*)/L^*$ (exact)")
    fig.legend(*ax[0, 0].get_legend_handles_labels(), loc="outside upper center", ncols=4)
    save_figure(fig, out, "trained_risk_vs_n", data)
    return _risk_vs_n_caption(data, rows, off, source)


def _baseline_markers(a, base: list[dict], ns: np.ndarray) -> list[dict]:
    """The reference predictors' Monte Carlo risks (hollow markers, ±2 s.e.) on axis ``a``;
    returns the plotted rows. The null risk is exact (no standard error); OLS is undefined for
    ``n < d + 2`` (no marker)."""
    from ..plotting import ARCH_STYLE, mc_errorbar

    data = []
    for key in ("null", "bayes", "ridge", "ols"):
        v = np.array([np.nan if r.get(f"{key}_risk") is None else r[f"{key}_risk"] for r in base])
        se = np.array([r.get(f"{key}_se") or 0.0 for r in base])
        ok = np.isfinite(v)
        mc_errorbar(a, ns[ok], v[ok], se[ok], key, filled=False, ms=3.5, label=ARCH_STYLE[key][0])
        data += [
            {"n": int(n), "architecture": key, "mc_risk": float(x), "mc_se": float(e)}
            for n, x, e in zip(ns[ok], v[ok], se[ok])
        ]
    return data


def _risk_vs_n_caption(data: list[dict], rows: list[dict], off: dict, source: str) -> str:
    """The caption of :func:`_trained_risk_vs_n`: seeds, lines, baselines (and which fall off
    the axis), the gap of each architecture against G6's tolerance, setting and data source."""
    from ..experiments import risk_vs_n as RN
    from ..plotting import ARCH_STYLE

    counts = sorted({d["seeds"] for d in data if "seeds" in d})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    first = next(r for r in rows if r["arch"] == "scalar")
    within, above = [], []
    for a in RN.ARCHS:
        ns = [
            d["n"]
            for d in data
            if d.get("architecture") == a
            and "rel_gap_mean" in d
            and d["rel_gap_mean"] > RN.RISK_TOL
        ]
        if ns:
            above.append(f"{ARCH_STYLE[a][0]} at {_n_set(ns)}")
        else:
            within.append(ARCH_STYLE[a][0])
    verdict = "; ".join(
        ([f"within it at every $n$: {', '.join(within)}"] if within else [])
        + ([f"above it: {'; '.join(above)}"] if above else [])
    )
    return (
        rf"WPGD-structured one-layer GLAs, {int(first['steps'])} Adam steps; $K=3$ tasks, "
        rf"$\rho=({', '.join(f'{v:g}' for v in first.get('rho', RN.RHO))})$, "
        rf"$\Sigma=I_{{{int(first['d'])}}}$, $\sigma={first.get('sigma', RN.SIGMA):g}$. Left: "
        rf"exact risk (mean, range over {seeds} seeds), predicted optima (lines), reference "
        r"predictors (hollow; Monte Carlo $\pm2$ s.e."
        + ("; some above the axis" if off else "")
        + rf"). Right: gap to the optimum (dashed: {_pct(RN.RISK_TOL)}); mean {verdict}. "
        r"Markers offset by $\pm0.35$ in $n$. "
        rf"Data: {_sweep_name(source)}."
    )
