r"""Claim G6: trained GLA models match the theory.

Numerics leg: :mod:`numerics.trained` trains one-layer GLA models (linear attention, scalar
gates, key-wise vector gates) with Adam on fresh structured prompts and compares the trained
risk, effective weights / preconditioner and the predictor itself with the predicted optimum
of the architecture (``solve_gla`` / ``profile_risk``). Theory leg: the predicted optima of
the same settings in exact rational arithmetic from the SymPy profile risk of
:mod:`theory.stationarity` (no numerical optimiser), the L7 closed form and its SymPy proof.
Protocol and measured figures: docs/trained.md; each case's evaluation curve is in its evidence.
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import sympy as sp

from numerics import trained as T
from theory import stationarity as th

from ..registry import Claim, Evidence, compare, register

#: Targets of the claim statement.
RISK_TOL = 0.02          # trained risk within 2% (relative) of the predicted optimum
COS_TOL = 0.98           # cosine of effective block weights (and of P) with the prediction
#: Trained models live in the architecture's reachable class, so their exact risk can never be
#: below the predicted infimum; allow float64 rounding of the two risk formulas (~1e-15
#: relative, measured) with 1e-9 -- a genuine violation would be >= 1e-6 (docs/trained.md).
BELOW_TOL = 1e-9
#: Monte Carlo vs exact risk of the same trained model: within 4 standard errors (conventions).
MC_Z = 4.0
#: Theory vs numerics predictions: certified optima agree to ~1e-14 relative (solve_cone's
#: EQUAL_TOL is 1e-9); rational arithmetic on the theory side is exact.
PRED_TOL = 1e-9

ARCHS = ("linear", "scalar", "vector")


def _settings(ctx):
    return T.default_settings()


G6 = register(Claim(
    id="G6",
    title="Trained GLA models reach the predicted optimum of their architecture",
    statement=(r"For one-layer GLA trained by Adam on fresh structured prompts (distinct delimiters, "
               r"$\Sigma=I_d$, independent tasks) in the single-task, monotone and non-monotone "
               r"$K$-task settings, and for each architecture (linear attention, scalar gating, key-wise "
               r"vector gating), with the WPGD structure of the construction ($W_q, W_k$ read only $x$, $W_v$ "
               r"only $y$, gates read only the delimiter channels): the trained risk is within $2\%$ of the predicted optimum of the "
               r"architecture ($L_{LA}=L(\mathbf 1)$, $L^*_{GLA}$ the monotone-cone optimum, "
               r"$L^*_{vec}=L^*_{WPGD}$), never below it, and the effective block weights and "
               r"preconditioner read from the trained gates and projections have cosine $\ge 0.98$ with "
               r"the predicted $\omega^*$, $P^*$ (up to the scale $(P,\omega)\to(P/s,s\omega)$); the trained "
               r"predictor and $\partial\hat y/\partial x$ match $x^\top P^* X^\top(\omega^*\odot y)$."),
    source="THEORY.md section 4 (G6); derived here",
    status_note=(
        "Holds in all 9 (setting, architecture) cases under the WPGD-structure restriction "
        "(W_q, W_k read only x, W_v only y -> label, gates read only the delimiter channels): quick "
        "profile gaps 0.02-0.9%, full profile 0.01-0.23%, cosines >= 0.9999. "
        "Vector gating is trained with D_k = 8d: D_k = 2d can represent L*_WPGD (two key copies, "
        "weights u - v) but Adam from random inits stalls in local minima there (pooled "
        "scalar-GLA-like weights, or only one direction split): 0/3 seeds within 2% at 2d, 1/3 at 4d, "
        "3/3 at 8d. The optimal predictor is unique as a function, so the function-level comparison "
        "uses no fitted scale (fitted scale 0.98-1.02). Disagreement with THEORY.md G6 as worded "
        "(no restriction): unrestricted models, whose gates can read x_i, y_i, BEAT the predicted "
        "optimum (full profile: single/vector -25.7% at 59 s.e., monotone/vector -17.0%, "
        "single/scalar -4.0%, monotone/scalar -1.4%): data-dependent gates leave the fixed-weight "
        "WPGD class, so the prediction is the optimum of structural gating only. The one "
        "unrestricted case that stays above the prediction (nonmonotone/vector, +5.4% after 4000 "
        "steps, +16% after 1500) is a training failure of the same kind as D_k = 2d. The full "
        "profile records the unrestricted runs as a counterexample search (docs/trained.md)."),
    settings={"settings": [s.describe() | {"name": s.name} for s in T.default_settings()],
              "architectures": {a: {"gate": g, "Dk": f"{m}d", "init_gate_weight_scale": w}
                                for a, (g, m, w) in T.ARCHITECTURES.items()},
              "profiles": {k: vars(v) for k, v in T.PROFILES.items() if k != "tiny"},
              "restriction": "wpgd (quick and full); free (full only)",
              "optimizer": "Adam (0.9, 0.999, 1e-8), cosine lr decay, fresh prompts every step",
              "risk_tol": RISK_TOL, "cos_tol": COS_TOL},
))


# ============================================================================ theory leg
def _rat(x) -> sp.Rational:
    return sp.Rational(str(x))


def exact_predictions(setting: T.Setting) -> dict:
    r"""Exact (rational) predicted optima for ``setting`` (``Σ = I_d``, block-constant weights).

    Builds ``R`` of the setting, ``A = R_{[n],[n]} + diag(R_ii)``, ``B = diag(R_ii d + σ²)``,
    ``r``, and evaluates the SymPy profile risk ``th.profile_risk(a, b, c, λ = 1^d, σ, 1)`` at
    * LA: ``ω = 1``;
    * WPGD: ``ω = (A + B)^{-1} r`` (isotropic optimum, ``φ ≡ 1``), checked block-constant and equal
      to the L7 closed form ``ρ_k/(m_k + 1 + d + σ²)``;
    * scalar GLA: the maximum of the gain over the monotone cone ``{0 <= u_1 <= … <= u_K}`` (and its
      negative) by enumerating its ``2^K − 1`` faces: on the span of a face the 0-homogeneous gain
      ``d (r̃ᵀu)²/(uᵀ(Ã + B̃)u)`` is maximised at ``θ ∝ (VᵀQV)^{-1}Vᵀr̃`` (face generators ``V``), kept
      if ``θ`` has one sign (the maximiser lies in the relative interior of some face).
    """
    d, K = setting.d, setting.K
    m = [int(v) for v in setting.m]
    n = sum(m)
    sig = _rat(setting.sigma)
    rho = [_rat(v) for v in setting.rho]
    G = sp.Matrix(K, K, lambda i, j: _rat(setting.Gamma_matrix[i, j]))
    seg = [k for k in range(K) for _ in range(m[k])]
    R = sp.zeros(n + 1, n + 1)
    for i in range(n):
        for j in range(n):
            R[i, j] = G[seg[i], seg[j]]
        R[i, n] = R[n, i] = rho[seg[i]]
    R[n, n] = 1
    r = R[:n, n]
    A = R[:n, :n] + sp.diag(*[R[i, i] for i in range(n)])
    B = sp.diag(*[R[i, i] * d + sig ** 2 for i in range(n)])
    lam = [sp.Integer(1)] * d
    E = sp.Matrix(n, K, lambda i, k: 1 if seg[i] == k else 0)

    def risk_of(omega):
        a = (r.T * omega)[0, 0]
        b = (omega.T * A * omega)[0, 0]
        c = (omega.T * B * omega)[0, 0]
        return sp.nsimplify(sp.simplify(th.profile_risk(a, b, c, lam, sig, 1)))

    L_la = risk_of(sp.ones(n, 1))
    w_star = (A + B).LUsolve(r)
    closed = sp.Matrix([rho[seg[i]] / (m[seg[i]] + 1 + d + sig ** 2) for i in range(n)])
    L7_ok = bool(all(sp.simplify(v) == 0 for v in (w_star - closed)))
    L_wpgd = risk_of(w_star)
    # scalar GLA: faces of the cone u = C θ, θ >= 0
    C = sp.Matrix(K, K, lambda i, j: 1 if j <= i else 0)
    Qt, rt = E.T * (A + B) * E, E.T * r
    best, best_u = sp.Integer(0), None
    for size in range(1, K + 1):
        for S in itertools.combinations(range(K), size):
            V = C[:, list(S)]
            theta = (V.T * Qt * V).LUsolve(V.T * rt)
            if all(t >= 0 for t in theta) or all(t <= 0 for t in theta):
                val = (rt.T * V * theta)[0, 0]          # = max gain / d on this face
                if val > best:
                    best, best_u = val, V * theta
    L0 = sig ** 2 + d
    L_gla = sp.nsimplify(L0 - d * best)
    u_gla = best_u if best_u is not None else sp.zeros(K, 1)
    return {"L_la": L_la, "L_wpgd": L_wpgd, "L_gla": L_gla, "L0": L0, "L7_closed_form": L7_ok,
            "u_wpgd": [rho[k] / (m[k] + 1 + d + sig ** 2) for k in range(K)],
            "u_gla": list(u_gla), "gla_eq_wpgd": bool(sp.simplify(L_gla - L_wpgd) == 0)}


@G6.check("SymPy: exact predicted optima (LA, scalar-GLA cone faces, WPGD = L7) vs numerics predictions",
          leg="theory")
def _g6_theory(ctx):
    out = []
    for s in _settings(ctx):
        t0 = time.perf_counter()
        ex = exact_predictions(s)
        sym_s = time.perf_counter() - t0
        key = {"linear": "L_la", "scalar": "L_gla", "vector": "L_wpgd"}
        vals = [T.predict_optimum(s, a).risk for a in ARCHS]
        refs = [float(ex[key[a]]) for a in ARCHS]
        pv = T.predict_optimum(s, "vector")
        u_cos = T.cosine(pv.u, np.array([float(v) for v in ex["u_wpgd"]]))
        ev = compare(f"{s.name}: exact L_LA, L*_GLA, L*_WPGD vs predict_optimum", vals, refs, PRED_TOL,
                     kind="symbolic", setting=s.name, exact={k: str(ex[key[a]]) for a, k in key.items()},
                     exact_float=dict(zip(ARCHS, refs)), numerics=dict(zip(ARCHS, vals)),
                     L7_closed_form=ex["L7_closed_form"], u_wpgd_closed_form=[str(v) for v in ex["u_wpgd"]],
                     cos_u_vector_vs_L7=u_cos, gla_eq_wpgd_exact=ex["gla_eq_wpgd"], sympy_seconds=round(sym_s, 3),
                     model=s.describe())
        ev.passed = bool(ev.passed and ex["L7_closed_form"] and abs(1 - u_cos) <= 1e-10)
        out.append(ev)
    res = th.check_L7()
    out.append(Evidence("SymPy: L7 closed form omega*_k = rho_k/(m_k+1+d+sigma^2) (theory.stationarity.check_L7)",
                        bool(res["verified"]), "symbolic",
                        {"parts": res["parts"], "segment_lengths": res["segment_lengths"],
                         "sympy_seconds": round(res["seconds"], 3)}, detail=res["latex"]))
    return out


# ============================================================================ numerics leg
def _progress_cb(ctx, label, steps):
    state = {"last": -math.inf}

    def cb(step, loss, eta):
        now = time.perf_counter()
        if step == 1 or step == steps or now - state["last"] >= 2.0:
            state["last"] = now
            ctx.progress(f"G6 {label}: step {step}/{steps} loss {loss:.4g} eta {eta:.1f}s")
    return cb


def fn_tolerance(pred_risk: float, null: float) -> float:
    r"""Function-level relative-RMS tolerance equivalent to the 2% risk target: if the trained
    predictor ``f`` deviates from the optimum ``f*`` orthogonally to the residual, its excess risk
    is ``E(f − f*)²``, and ``E f*² = L₀ − L*`` for the (scale-optimal) optimum, so a 2% excess
    corresponds to ``rel RMS = sqrt(0.02 L* / (L₀ − L*))``."""
    return math.sqrt(RISK_TOL * pred_risk / (null - pred_risk))


def case_evidence(res: T.CaseResult) -> Evidence:
    """Verdict and figures of one trained case (see the module docstring of numerics.trained)."""
    f = dict(res.figures)
    tol_fn = fn_tolerance(f["predicted_risk"], f["null_risk"])
    exact = f["trained_risk_exact"] is not None
    ok_gap = f["rel_gap"] <= RISK_TOL
    ok_below = (f["rel_gap"] >= -BELOW_TOL) if exact else (f["paired_gap_mc"] >= -MC_Z * f["paired_gap_se"])
    ok_mc = (abs(f["mc_vs_exact_z"]) <= MC_Z) if exact else True
    ok_cos = f["cos_omega"] >= COS_TOL and f["cos_P"] >= COS_TOL
    ok_fn = f["fn_rel_rms_pred"] <= tol_fn and f["fn_rel_rms_grad"] <= tol_fn
    passed = bool(ok_gap and ok_below and ok_mc and ok_cos and ok_fn)
    figs = {"gap": f["rel_gap"], "tolerance": RISK_TOL, "cos_tolerance": COS_TOL, "fn_tolerance": tol_fn,
            "below_tolerance": BELOW_TOL, "mc_z_tolerance": MC_Z, **f}
    fails = [name for name, ok in (("risk gap", ok_gap), ("below optimum", ok_below), ("MC vs exact", ok_mc),
                                   ("cosines", ok_cos), ("function level", ok_fn)) if not ok]
    detail = (f"predicted {f['predicted_risk']:.5f}, trained {f['trained_risk']:.5f} "
              f"(MC {f['trained_risk_mc']:.5f} +- {f['trained_risk_se']:.5f}), rel gap {f['rel_gap']:.4f}; "
              f"cos(omega) {f['cos_omega']:.5f}, cos(P) {f['cos_P']:.5f}; fn rel RMS {f['fn_rel_rms_pred']:.4f}"
              + (f"; FAILED: {', '.join(fails)}" if fails else ""))
    name = f"{res.setting.name} / {res.architecture} (D_k={f['Dk']}, {res.restriction})"
    return Evidence(name, passed, "monte-carlo", figs, detail=detail, seconds=f["train_seconds"] + f["eval_seconds"])


def run_all(ctx, profile: str, restriction: str = "wpgd") -> list[T.CaseResult]:
    """Train every (setting, architecture) with ``ctx.seed``; progress to ``ctx.progress``."""
    results = []
    prof = T.PROFILES[profile]
    for s in _settings(ctx):
        for a in ARCHS:
            label = f"{s.name}/{a}/{restriction}"
            results.append(T.run_case(s, a, profile=prof, seed=ctx.seed, restriction=restriction,
                                      progress=_progress_cb(ctx, label, prof.steps)))
            f = results[-1].figures
            ctx.progress(f"G6 {label}: rel gap {f['rel_gap']:.4f}, cos(omega) {f['cos_omega']:.4f}, "
                         f"{f['train_seconds']:.1f}s train")
    return results


_RESULTS: dict = {}


@G6.check("trained one-layer GLA vs predicted optimum (risk, block weights, P, predictor)", leg="numerics")
def _g6_numerics(ctx):
    profile = "full" if ctx.full else "quick"
    results = run_all(ctx, profile, "wpgd")
    _RESULTS["wpgd"] = results
    evs = [case_evidence(r) for r in results]
    for ev, r in zip(evs, results):
        # The evaluation curve travels with the evidence (report -> appendix), not via files.
        ev.figures["curve_eval"] = [[int(st), float(el)] for st, _, el in r.curve if el == el]
    return evs


@G6.check("full profile: unrestricted weights (gates may read x, y): counterexample search against "
          "THEORY.md's unrestricted wording, and the vector-gate width study", leg="numerics")
def _g6_free(ctx):
    """Full profile only (quick: no evidence). Unrestricted models are outside the class the
    prediction optimises over; THEORY.md's G6 is worded without the restriction. This check
    searches for a counterexample to that wording: it passes when some unrestricted model
    beats its architecture's predicted optimum by more than ``MC_Z`` standard errors of the
    paired Monte Carlo gap (data-dependent gates leave fixed-weight WPGD). Every case's
    figures are in the evidence, including the ones that stay above the prediction."""
    if not ctx.full:
        return []
    free = run_all(ctx, "full", "free")
    cases = []
    for r in free:
        f = case_evidence(r).figures
        cases.append({"case": f"{r.setting.name}/{r.architecture}", "predicted_risk": f["predicted_risk"],
                      "trained_risk_mc": f["trained_risk"], "rel_gap": f["rel_gap"],
                      "beats_prediction_z": -f["paired_gap_mc"] / f["paired_gap_se"], "Dk": f["Dk"]})
    best = max(cases, key=lambda c: c["beats_prediction_z"])
    found = best["beats_prediction_z"] > MC_Z
    ev = Evidence("unrestricted models vs the structural-gate prediction (counterexample search)", bool(found),
                  "search", {"cases": cases, "z_threshold": MC_Z, "best_case": best["case"],
                             "best_rel_gap": best["rel_gap"], "best_z": best["beats_prediction_z"]},
                  detail=(f"best: {best['case']} rel gap {best['rel_gap']:+.4f} "
                          f"({best['beats_prediction_z']:+.1f} s.e. below the prediction); cases above the "
                          f"prediction: " + ", ".join(f"{c['case']} {c['rel_gap']:+.3f}" for c in cases
                                                       if c["rel_gap"] > 0)),
                  counterexample=({"statement": "THEORY.md G6 without the structural-gate restriction",
                                   **best} if found else None))
    return [ev, _dk_width_study(ctx)]


def _dk_width_study(ctx) -> Evidence:
    """Full profile: how often vector gating at D_k = 2d, 4d, 8d reaches the 2% target on the
    non-monotone setting (3 seeds, quick budget). Reported as a search; it passes when the default
    width (8d) succeeds for every seed."""
    s = [x for x in _settings(ctx) if x.name == "nonmonotone"][0]
    pred = T.predict_optimum(s, "vector")
    rows = {}
    for mult in (2, 4, 8):
        gaps = []
        for k in range(3):
            r = T.run_case(s, "vector", profile="quick", seed=ctx.seed + k, prediction=pred, dk_multiple=mult)
            gaps.append(r.figures["rel_gap"])
            ctx.progress(f"G6 D_k={mult}d seed {ctx.seed + k}: rel gap {gaps[-1]:.4f}")
        rows[f"{mult}d"] = {"rel_gaps": gaps, "success": int(sum(g <= RISK_TOL for g in gaps))}
    ok = rows[f"{T.ARCHITECTURES['vector'][1]}d"]["success"] == 3
    return Evidence("vector gating: D_k width study (non-monotone, 3 seeds each)", ok, "search",
                    {"widths": rows, "tolerance": RISK_TOL, "seeds": [ctx.seed + k for k in range(3)]},
                    detail="; ".join(f"D_k={k}: {v['success']}/3 within 2%" for k, v in rows.items()))
