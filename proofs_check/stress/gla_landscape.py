r"""Stress properties of claims G1-G4 (the GLA landscape on structured multitask prompts).

Functions under test are looked up at call time (``gl.solve_cone``, ``gl.independent_closed_form``,
``prompts.induced_weights``, ...). Independent references: the certified WPGD optimum
(:func:`numerics.landscape.solve_wpgd`), cone membership decided directly from the block
weights (nonnegative and nondecreasing up to sign) and the distance to the cone from scipy's
isotonic regression, random points of the cones, explicit products of the token gates.
"""

from __future__ import annotations

import numpy as np

from numerics import gla_landscape as gl, landscape, moments, prompts, risk
from numerics.risk import gain

from .. import tolerances as tol
from .core import StressProperty, register
from .instances import (
    build_segmented,
    describe_model,
    model_from_json,
    model_to_json,
    segmented_params,
    segmented_tags,
)

__all__ = ["VAL_TOL", "SEARCH_TOL", "MONOTONE_ROUNDING", "CONE_SAMPLES", "SETTINGS", "GATE_DRAWS"]

VAL_TOL = tol.CERTIFIED_VALUE
SEARCH_TOL = tol.SEARCH_EXCESS
MEMBER_DIST, NONMEMBER_DIST = tol.CONE_MEMBER_DISTANCE, tol.CONE_NONMEMBER_DISTANCE
#: "Nondecreasing" up to rounding (relative to the largest weight): ties measure ~1e-16.
MONOTONE_ROUNDING = tol.ZERO_GAP
#: Random cone points per instance (the search that must never beat the certificate).
CONE_SAMPLES = 256


def _blocks(model):
    seg = np.asarray(model.segments)
    m = np.bincount(seg).astype(float)
    E = np.zeros((seg.size, m.size))
    E[np.arange(seg.size), seg] = 1.0
    return E, m


def _rho(model):
    seg = np.asarray(model.segments)
    return np.array([model.r[np.argmax(seg == k)] for k in range(seg.max() + 1)])


def _cone_distance(w, m) -> float:
    """``min_s ‖s w − Π_M(s w)‖_m / ‖w‖_m`` with ``Π_M`` = positive part of the m-weighted
    isotonic (nondecreasing) regression (scipy, not the suite's PAVA)."""
    from scipy.optimize import isotonic_regression

    nrm = np.sqrt(np.sum(m * w * w))
    best = np.inf
    for s in (1.0, -1.0):
        proj = np.maximum(isotonic_regression(s * w, weights=m, increasing=True).x, 0.0)
        best = min(best, float(np.sqrt(np.sum(m * (s * w - proj) ** 2))))
    return best / nrm


def _random_cone_points(model, rng, k=CONE_SAMPLES):
    """``k`` random points of ``E(M ∪ −M)`` (exponential increments with random zeros; the
    profile risk is even in ω, so the sign is immaterial)."""
    E, m = _blocks(model)
    K = m.size
    th = rng.exponential(1.0, (k, K)) * (rng.random((k, K)) < 0.7)
    th[np.all(th == 0, axis=1), -1] = 1.0
    U = np.cumsum(th, axis=1)
    return [E @ u for u in U]


def _seg_strategy(**kw):
    return lambda: segmented_params(**kw)


# ============================================================================ G1
def _null_reported(model):
    """r = 0 (every weight gives the null risk, outside the claims' setting): the suite must
    refuse with a ValueError rather than return an optimum."""
    try:
        gl.solve_cone(model, certify=False)
    except ValueError as exc:
        return {
            "outcome": "condition-violated-reported",
            "figures": {"margin": 0.0, "message": str(exc)},
            "tags": segmented_tags(model) + ["r=0"],
        }
    return {
        "outcome": "false-verdict",
        "figures": {"margin": np.inf},
        "tags": segmented_tags(model) + ["r=0"],
    }


def _g1_eval(model, rng):
    L0 = risk.null_risk(model)
    E, m = _blocks(model)
    tags = segmented_tags(model)
    if not np.any(model.r):
        return _null_reported(model)
    ws = landscape.solve_wpgd(model)
    w = E.T @ ws.omega / m
    dev = float(np.linalg.norm(E @ w - ws.omega))
    sol = gl.solve_cone(model, certify=False)
    # gaps relative to the optimal gain F* = L0 - L*_WPGD, computed from (a, b, c) directly: relative
    # to L0 they vanish in rounding when |r| is small (F* ~ |r|^2 L0)
    F_w = gain(model, ws.omega)
    gap = (F_w - gain(model, sol.omega)) / F_w
    dist = _cone_distance(w, m)
    Fs = [gain(model, om) for om in _random_cone_points(model, rng)]
    search_excess = float((max(Fs) - gain(model, sol.omega)) / F_w)
    figs = {
        "rel_gap": gap,
        "cone_distance": dist,
        "search_excess": search_excess,
        "block_deviation": dev,
        "spec": describe_model(model),
    }
    margins = [-gap / VAL_TOL, search_excess / SEARCH_TOL, dev / 1e-8]
    if dist <= MEMBER_DIST:
        cls = "member"
        margins.append(abs(gap) / VAL_TOL)
        ok = abs(gap) <= VAL_TOL
    elif dist >= NONMEMBER_DIST:
        cls = "nonmember"
        # a clear non-member must have a strictly positive gap (margin: how far from it)
        margins.append(VAL_TOL / gap if gap > 0 else np.inf)
        ok = gap > VAL_TOL
    else:
        cls = "borderline"
        ok = True
    ok = ok and gap >= -VAL_TOL and search_excess <= SEARCH_TOL and dev <= 1e-8
    S = np.asarray(model.Sigma)
    R = np.asarray(model.R)
    K = m.size
    if (
        np.array_equal(S, np.eye(model.d))
        and np.allclose(R[:-1, :-1], E @ E.T, rtol=0, atol=0)
        and R[-1, -1] == 1.0
    ):
        cf = gl.independent_closed_form(m.astype(int), _rho(model), model.d, model.sigma)
        e_cf = abs(cf["L_gla"] - sol.risk) / L0
        figs.update(closed_form_error=e_cf, closed_form_reaches=bool(cf["reaches"]))
        margins.append(e_cf / VAL_TOL)
        ok = (
            ok
            and e_cf <= VAL_TOL
            and (cls == "borderline" or cf["reaches"] == (abs(gap) <= VAL_TOL))
        )
        tags = tags + ["Sigma=I, Gamma=I (closed form)"]
    figs["class"] = cls
    figs["margin"] = max(margins)
    return {
        "outcome": ("holds-" + cls) if ok else "gap-membership-mismatch",
        "figures": figs,
        "tags": tags + [f"omega* {cls}"] + ([f"K={K}"] if K >= 4 else []),
    }


register(
    StressProperty(
        claim_id="G1",
        statement="L*_GLA (certified cone optimum) = L*_WPGD iff the optimal block weights lie in M ∪ -M: members "
        "(distance <= 1e-9) have |gap| <= VAL_TOL, clear non-members (>= 1e-3) gap > VAL_TOL, never a "
        "negative gap (gaps relative to the optimal gain F* = L0 - L*_WPGD); 256 random cone points never "
        "beat the certificate by > SEARCH_TOL x F*; Sigma = I, Gamma = I: the PAVA closed form agrees "
        "(VAL_TOL x L0) and 'alpha monotone' <=> zero gap; r = 0 is refused with a ValueError",
        strategy=_seg_strategy(),
        build=build_segmented,
        evaluate=_g1_eval,
        bad=("gap-membership-mismatch", "false-verdict", "error"),
        good=("holds-member", "holds-nonmember", "holds-borderline", "condition-violated-reported"),
        tolerances={
            "VAL_TOL (gaps: relative to F*; closed form: to L0)": VAL_TOL,
            "SEARCH_TOL": SEARCH_TOL,
            "member distance": MEMBER_DIST,
            "non-member distance": NONMEMBER_DIST,
        },
        describe=describe_model,
        to_json=model_to_json,
        from_json=model_from_json,
    )
)


# ============================================================================ G2
def _g2_eval(model, rng):
    if not np.any(model.r):
        return _null_reported(model)
    L0 = risk.null_risk(model)
    E, m = _blocks(model)
    sol = gl.solve_cone(model, certify=False)
    L_la = risk.profile_risk(model, np.ones(model.n))
    F_c = gain(model, sol.omega)
    gap_gain = (
        F_c - gain(model, np.ones(model.n))
    ) / F_c  # (L_LA - L*_GLA)/F*_GLA, no cancellation
    gap = (L_la - sol.risk) / L0
    figs = {"rel_gap": gap, "gap_over_gain": gap_gain, "spec": describe_model(model)}
    margins = [-gap_gain / VAL_TOL]
    tags = segmented_tags(model)
    S, R = np.asarray(model.Sigma), np.asarray(model.R)
    if (
        np.array_equal(S, np.eye(model.d))
        and np.array_equal(R[:-1, :-1], E @ E.T)
        and R[-1, -1] == 1.0
    ):
        rho = _rho(model)
        cf = gl.independent_closed_form(m.astype(int), rho, model.d, model.sigma)
        # the closed-form risks against the fourth-moment risk at the closed-form weights
        e_la = abs(cf["L_la"] - L_la) / L0
        e_gap = abs((cf["L_la"] - cf["L_gla"]) / L0 - gap)
        figs.update(closed_form_gap=(cf["L_la"] - cf["L_gla"]) / L0, la_error=e_la, gap_error=e_gap)
        margins += [e_la / VAL_TOL, e_gap / VAL_TOL]
        tags.append("Sigma=I, Gamma=I (closed form)")
        if m.size == 2:  # Lagrange identity
            w, a = m * (m + 1 + model.d + model.sigma**2), rho / (m + 1 + model.d + model.sigma**2)
            s = 1.0 if (a[0] + a[1]) >= 0 else -1.0
            f = None
            if 0 <= s * a[0] <= s * a[1]:
                f = model.d * w[0] * w[1] * (a[1] - a[0]) ** 2 / (w[0] + w[1])
            elif s * a[0] > s * a[1] >= 0:
                f = 0.0
            if f is not None:
                e_k2 = abs(f / L0 - gap)
                figs["lagrange_error"] = e_k2
                margins.append(e_k2 / VAL_TOL)
                tags.append("K=2 Lagrange identity")
        # and the closed-form WPGD optimum against the certified one
        ws = landscape.solve_wpgd(model) if np.any(rho) else None
        if ws is not None:
            e_w = abs(cf["L_wpgd"] - ws.risk) / L0
            figs["wpgd_closed_form_error"] = e_w
            margins.append(e_w / VAL_TOL)
            Pm = risk.optimal_P(model, np.ones(model.n))
            e_mom = abs(moments.risk_by_moments(model, Pm, np.ones(model.n)) - cf["L_la"]) / L0
            figs["la_moments_error"] = e_mom
            margins.append(e_mom / VAL_TOL)
    figs["margin"] = max(margins)
    return {
        "outcome": "holds" if figs["margin"] <= 1 else "gap-wrong",
        "figures": figs,
        "tags": tags,
    }


register(
    StressProperty(
        claim_id="G2",
        statement="L_LA - L*_GLA >= 0 (-VAL_TOL x the gain of L*_GLA); for Sigma = I, Gamma = I the closed-form gap (PAVA), L_LA and "
        "L*_WPGD agree with the certified values, L_LA with the fourth-moment risk of linear attention at "
        "P*(1), and for K = 2 the Lagrange-identity gap holds (all VAL_TOL x L0)",
        strategy=lambda: _g2_strategy(),
        build=build_segmented,
        evaluate=_g2_eval,
        bad=("gap-wrong", "false-verdict", "error"),
        good=("holds", "condition-violated-reported"),
        tolerances={"VAL_TOL (relative to L0)": VAL_TOL},
        describe=describe_model,
        to_json=model_to_json,
        from_json=model_from_json,
    )
)


def _g2_strategy():
    from hypothesis import strategies as st

    return st.one_of(
        segmented_params(gamma_identity=True, sigma_kinds=("identity",), K=(2, 3, 1, 4, 5)),
        segmented_params(),
    )


# ============================================================================ G3
SETTINGS = [
    ("none", False),
    ("none", True),
    ("shared", False),
    ("shared", True),
    ("distinct", False),
    ("distinct", True),
]
#: Random gate assignments per setting and instance.
GATE_DRAWS = 12


def _type_gates(rng, names, kind):
    g = rng.random(len(names))
    if kind == 1:
        g = np.where(rng.random(len(names)) < 0.4, 1.0, g)
    elif kind == 2:
        g = np.where(
            rng.random(len(names)) < 0.3, 0.0, np.where(rng.random(len(names)) < 0.5, 1.0, g)
        )
    elif kind == 3:
        g = 1.0 - 1e-6 * rng.random(len(names))
    with np.errstate(divide="ignore"):
        return dict(zip(names, np.log(g)))


def _product_weights(spec, type_lg):
    """``ω_i = Π_{t > pos(i)} g_{type(t)}`` by explicit products over the later tokens."""
    ids, names = prompts.token_types(spec)
    g = np.exp(np.array([type_lg[nm] for nm in names]))[ids]
    pos = prompts.example_positions(spec)
    return np.array([np.prod(g[p + 1 :]) for p in pos])


def _g3_eval(model, rng):
    if not np.any(model.r):
        return _null_reported(model)
    m = tuple(int(v) for v in np.bincount(model.segments))
    sol = gl.solve_cone(model, certify=False)  # case (d), certified
    Ld, Fd = sol.risk, gain(model, sol.omega)
    worst_below, worst_w, not_in_N, incl = -np.inf, 0.0, 0, 0.0
    for dl, ctx in SETTINGS:
        spec = prompts.StructuredPrompt(m, dl, ctx)
        names = prompts.token_types(spec)[1]
        for j in range(GATE_DRAWS):
            lgd = _type_gates(rng, names, j % 4)
            om = prompts.induced_weights(spec, prompts.token_log_gates(spec, lgd))
            ref = _product_weights(spec, lgd)
            worst_w = max(
                worst_w, float(np.max(np.abs(om - ref) / np.maximum(np.abs(ref), 1e-290)))
            )
            if np.any(om < 0) or np.any(np.diff(om) < -MONOTONE_ROUNDING * np.max(om)):
                not_in_N += 1
            if np.any(om > 0):
                worst_below = max(worst_below, (gain(model, om / np.max(om)) - Fd) / Fd)
            if dl == "none" and not ctx:
                # (a) inside (b) (every context gate = the example gate) and (c) (delimiter gate 1)
                for dl2, ctx2 in (("none", True), ("shared", False)):
                    sp2 = prompts.StructuredPrompt(m, dl2, ctx2)
                    n2 = prompts.token_types(sp2)[1]
                    lg2 = {
                        nm: (
                            0.0
                            if nm.startswith("delimiter")
                            else lgd["example"]
                            if nm.startswith("example") or nm == "query"
                            else 0.0
                        )
                        for nm in n2
                    }
                    om2 = prompts.induced_weights(sp2, prompts.token_log_gates(sp2, lg2))
                    incl = max(
                        incl, float(np.max(np.abs(om2 - om) / np.maximum(np.abs(om), 1e-290)))
                    )
    figs = {
        "L_star_d": Ld,
        "max_below_certificate": worst_below,
        "weights_vs_products": worst_w,
        "not_in_N": not_in_N,
        "inclusion_error": incl,
        "spec": describe_model(model),
    }
    figs["margin"] = max(
        worst_below / VAL_TOL,
        worst_w / tol.IDENTITY,
        incl / tol.IDENTITY,
        np.inf if not_in_N else 0.0,
    )
    return {
        "outcome": "holds" if figs["margin"] <= 1 else "ordering-violated",
        "figures": figs,
        "tags": segmented_tags(model),
    }


register(
    StressProperty(
        claim_id="G3",
        statement="every weight vector reachable with delimiters none/shared/distinct x context (random gates incl. "
        "exactly 0/1, realised through token_log_gates + induced_weights = explicit gate products) is "
        "nonnegative and nondecreasing (in N) and never has a gain above the certified case (d) (VAL_TOL x F*_(d)); "
        "family (a) is realised inside (b) and (c) with the same weights: hence L*_(d) <= L*_(b), L*_(c) "
        "<= L*_(a)",
        proxy=(
            "the optima of cases (a)-(c) are non-convex searches (~1 s per instance), so the property checks the "
            "inclusions the ordering rests on point by point (12 gate draws per setting) against the certified "
            "case (d), instead of recomputing the searches"
        ),
        strategy=_seg_strategy(),
        build=build_segmented,
        evaluate=_g3_eval,
        bad=("ordering-violated", "false-verdict", "error"),
        good=("holds", "condition-violated-reported"),
        tolerances={"VAL_TOL": VAL_TOL, "TOL (weights)": tol.IDENTITY},
        describe=describe_model,
        to_json=model_to_json,
        from_json=model_from_json,
    )
)


# ============================================================================ G4
def _g4_eval(model, rng):
    if not np.any(model.r):
        return _null_reported(model)
    L0 = risk.null_risk(model)
    sca = gl.solve_cone(model, certify=False).risk
    fw = gl.featurewise_cone(model, rng=rng, restarts=1)
    g = (sca - fw["risk"]) / L0
    figs = {"vector_gain": g, "kind": fw["kind"], "spec": describe_model(model)}
    margins = [-g / VAL_TOL]
    S = np.asarray(model.Sigma)
    tags = segmented_tags(model)
    if fw["kind"] == "exact":
        e_f = abs(fw["risk"] - fw["risk_formula"]) / L0
        figs["formula_error"] = e_f
        margins.append(e_f / VAL_TOL)
    if np.ptp(np.diag(S)) == 0 and np.array_equal(S, np.diag(np.diag(S))):
        figs["iso_gain"] = abs(g)
        margins.append(abs(g) / VAL_TOL)
        tags.append("Sigma ∝ I (no gain)")
    # (ii) two key copies (weights u - v, u, v in M) reach L*_WPGD, realised by the Jordan gates
    vec = gl.solve_gla(model, gating="vector", key_copies=2, certify=False)
    ws = landscape.solve_wpgd(model)
    e_v = abs(vec.risk - ws.risk) / L0
    margins.append(e_v / VAL_TOL)
    if np.any(model.r):
        u, v = gl.jordan_decomposition(
            gl.block_reduce(model).E.T @ ws.omega / np.bincount(model.segments)
        )
        ok_uv = bool(
            np.all(u >= 0)
            and np.all(np.diff(u) >= -MONOTONE_ROUNDING * max(np.max(u), 1e-300))
            and np.all(v >= 0)
            and np.all(np.diff(v) >= -MONOTONE_ROUNDING * max(np.max(v), 1e-300))
        )
        wblk = gl.block_reduce(model).E.T @ ws.omega / np.bincount(model.segments)
        e_j = float(np.linalg.norm(u - v - wblk) / max(np.linalg.norm(wblk), 1e-300))
        figs.update(jordan_error=e_j, jordan_in_cones=ok_uv)
        margins += [e_j / tol.IDENTITY, 0.0 if ok_uv else np.inf]
    figs.update(key_copies_vs_wpgd=e_v, margin=max(margins))
    return {
        "outcome": "holds" if figs["margin"] <= 1 else "vector-below-claim",
        "figures": figs,
        "tags": tags,
    }


register(
    StressProperty(
        claim_id="G4",
        statement="(i) D_k = d, P_k = I: L*_vec <= L*_GLA (-VAL_TOL), exact per-coordinate formula for diagonal Sigma, "
        "no gain for Sigma ∝ I (VAL_TOL); (ii) D_k = 2d: block weights = u - v with u, v in M (Jordan) and "
        "the key-copy optimum = L*_WPGD (VAL_TOL x L0)",
        strategy=_seg_strategy(sigma_kinds=("diagonal", "identity", "scaled", "rotated")),
        build=build_segmented,
        evaluate=_g4_eval,
        bad=("vector-below-claim", "false-verdict", "error"),
        good=("holds", "condition-violated-reported"),
        tolerances={"VAL_TOL (relative to L0)": VAL_TOL, "TOL (Jordan)": tol.IDENTITY},
        describe=describe_model,
        to_json=model_to_json,
        from_json=model_from_json,
    )
)
