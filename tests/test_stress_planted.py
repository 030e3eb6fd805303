"""Every stress property is shown able to fail: a planted bug per property.

Each case monkeypatches the function under test with a slightly wrong version (a wrong
moment factor, an off-by-one in the gate products, a dropped sign branch, a wrong closed-form
coefficient, ...) and asserts that the search finds a counterexample within ``BUDGET[claim]``
distinct instances (seed 0). ``NEEDED`` records how many instances the search needed when
the budgets were set (the 1-based position of the first counterexample); the test asserts the
same number, so a change in the strategies that makes a bug harder to find shows up here.
"""

from __future__ import annotations

import numpy as np
import pytest

import numerics.depth as ndepth
import numerics.gla_landscape as gl
import numerics.landscape as nland
import numerics.prompts as nprompts
import numerics.risk as nrisk
import numerics.stack as nstack
import numerics.wpgd as nwpgd
import proofs_check.experiments.trained as ntrained
from numerics import closed_forms
from proofs_check.stress import PROPERTIES, run_stress


# ----------------------------------------------------------------------------- the bugs
def _weights_off_by_one(orig):
    """ω_i = Π_{j>=i} g_j: the example's own gate included (scalar gates)."""

    def bad(log_g, *, gate="scalar"):
        w = orig(log_g, gate=gate)
        if gate != "scalar":
            return w
        return w * np.exp(np.asarray(log_g, float)[..., :-1])

    return bad


def _engine_drops_query_gate(orig):
    """The GLA layer forgets the query token's gate (the last factor of every product)."""

    def bad(Z, layer, log_g, **kw):
        lg = np.array(log_g, dtype=float, copy=True)
        lg[:, -1] = 0.0
        return orig(Z, layer, lg, **kw)

    return bad


def _causal_without_self_term(orig):
    """Causal weights with the query's own term dropped (ω_{n+1,n+1} = 0)."""

    def bad(lg_tokens):
        W = orig(lg_tokens)
        T = W.shape[1]
        W[:, T - 1, T - 1] = 0.0
        return W

    return bad


def _risk_wrong_moment_factor(orig):
    """L1 with E[x xᵀ M x xᵀ] taken as Σ² + tr(Σ)Σ (instead of 2Σ² + tr(Σ)Σ): A loses diag(R_ii)."""

    def bad(model, P, omega):
        om = np.asarray(omega, float)
        S = np.asarray(model.Sigma)
        P = np.asarray(P, float)
        extra = float(np.sum(np.diag(model.R)[:-1] * om * om)) * float(
            np.trace(P.T @ S @ P @ S @ S)
        )
        return orig(model, P, omega) - extra

    return bad


def _featurewise_closed_form_coefficient(orig):
    """Ω_:c ∝ (A + λ_c B)^{-1} r instead of (λ_c A + B)^{-1} r (the risk formula kept)."""

    def bad(model):
        S = model.Sigma
        if np.any(S - np.diag(np.diag(S)) != 0):
            return orig(model)
        lam = np.diag(S)
        Om = np.column_stack([np.linalg.solve(model.A + lk * model.B, model.r) for lk in lam])
        gain = sum(
            lk * lk * float(model.r @ np.linalg.solve(model.A + lk * model.B, model.r))
            for lk in lam
        )
        return Om, nrisk.null_risk(model) - gain

    return bad


def _optimal_P_wrong_coefficient(orig):
    """P* = a (bΣ + 2cI)^{-1}."""

    def bad(model, omega):
        a, b, c = nrisk.abc(model, omega)
        if b == 0 and c == 0:
            return orig(model, omega)
        return a * np.linalg.inv(b * model.Sigma + 2 * c * np.eye(model.d))

    return bad


def _abc_dropped_sign(orig):
    """c = ωᵀB|ω|: the sign of one factor dropped (invisible for ω >= 0)."""

    def bad(model, omega):
        a, b, _ = orig(model, omega)
        om = np.asarray(omega, float)
        return a, b, float(om @ (model.B_diag * np.abs(om)))

    return bad


def _solver_bracket_end(orig):
    """The solver returns the curve point at t = 1/λ_max instead of the fixed point."""

    def bad(model, **kw):
        sol = orig(model, **kw)
        if not np.any(model.r) or not np.all(model.B_diag > 0):
            return sol
        t = 1.0 / model.eigvals[-1]
        om = nland.omega_curve(model, t)
        sol.omega = om / np.linalg.norm(om) * np.sign(model.r @ om)
        sol.t = t
        return sol

    return bad


def _solver_always_unique(orig):
    """The certificate claims uniqueness and no inactive examples, always."""

    def bad(model, **kw):
        sol = orig(model, **kw)
        sol.certificate["unique"] = True
        sol.certificate["inactive_examples"] = 0
        return sol

    return bad


def _single_task_n_not_n_plus_1(orig):
    def bad(n, Sigma, sigma):
        return orig(n - 1, Sigma, sigma)

    return bad


def _k_task_without_plus_one(orig):
    def bad(m, rho, d, sigma):
        return orig(m, rho, d - 1, sigma)

    return bad


def _cone_qp_drops_negative_cone(orig):
    def bad(Q, r, s):
        if s == -1:
            return None, np.inf
        return orig(Q, r, s)

    return bad


def _closed_form_gap_coefficient(orig):
    """c₀ = d + σ² (the fourth-moment +1 dropped) in the Σ = I, Γ = I closed forms."""

    def bad(m, rho, d, sigma, query_var=1.0):
        out = orig(m, rho, d - 1, sigma, query_var)
        # keep L0 and the d factor of the true formula: only c0 is wrong
        m_, rho_ = np.asarray(m, float), np.asarray(rho, float)
        c0 = d + sigma**2
        w, alpha = m_ * (m_ + c0), rho_ / (m_ + c0)
        L0 = sigma**2 + d * query_var
        proj = [gl.monotone_projection(s * alpha, w) for s in (1, -1)]
        out.update(
            L0=L0,
            L_wpgd=L0 - d * float(np.sum(w * alpha**2)),
            L_la=L0 - d * float(np.sum(w * alpha)) ** 2 / float(np.sum(w)),
            L_gla=L0 - d * max(float(np.sum(w * p * p)) for p in proj),
        )
        return out

    return bad


def _induced_weights_off_by_one(orig):
    """Each example's own token gate included in its weight."""

    def bad(spec, token_log_g):
        lg = np.asarray(token_log_g, float)
        pos = nprompts.example_positions(spec)
        return orig(spec, token_log_g) * np.exp(lg[..., pos])

    return bad


def _jordan_off_by_one(orig):
    """Increments taken from w_1 (the first block's level dropped)."""

    def bad(w):
        w = np.asarray(w, float)
        inc = np.diff(w, prepend=w[:1])
        return np.cumsum(np.maximum(inc, 0.0)), np.cumsum(np.maximum(-inc, 0.0))

    return bad


def _depth_weights_off_by_one(orig):
    """ω_ij = Π_{k=j}^{i} g_k (token j's own gate included)."""

    def bad(log_g):
        lg = np.asarray(log_g, float)
        return orig(log_g) * np.exp(lg)[None, :] * np.tri(lg.size)

    return bad


def _token_risk_wrong_moment(orig):
    """Gaussian fourth moment taken as Σ² (factor 1 instead of 2 on A's diagonal)."""

    def bad(model, M):
        M = np.asarray(M, float)
        S = np.asarray(model.Sigma)
        S2 = S @ S
        extra = sum(model.R[i, i] * float(np.trace(M[i] @ S2 @ M[i].T @ S)) for i in range(model.n))
        return orig(model, M) - extra

    return bad


#: claim -> (module, attribute, bug factory, description)
PLANTED = {
    "C1": (nwpgd, "weights_from_log_gates", _weights_off_by_one, "off-by-one in the gate products"),
    "C2": (nstack, "gla_layer", _engine_drops_query_gate, "engine drops the query's gate"),
    "C3": (nwpgd, "_causal_weights", _causal_without_self_term, "query self-term dropped"),
    "L1": (nrisk, "wpgd_risk", _risk_wrong_moment_factor, "wrong fourth-moment factor"),
    "L1f": (
        nland,
        "featurewise_diagonal_optimum",
        _featurewise_closed_form_coefficient,
        "wrong closed-form coefficient (A + λB)",
    ),
    "L2": (nrisk, "optimal_P", _optimal_P_wrong_coefficient, "wrong coefficient 2c in P*"),
    "L3": (nrisk, "abc", _abc_dropped_sign, "dropped sign in c = ωᵀBω"),
    "L4": (
        nland,
        "solve_wpgd",
        _solver_bracket_end,
        "solver returns the bracket end, not the fixed point",
    ),
    "L5": (
        nland,
        "solve_wpgd",
        _solver_always_unique,
        "certificate always 'unique', no inactive examples",
    ),
    "L6": (
        closed_forms,
        "single_task_preconditioner",
        _single_task_n_not_n_plus_1,
        "n instead of n + 1",
    ),
    "L7": (
        closed_forms,
        "independent_task_weights",
        _k_task_without_plus_one,
        "+1 dropped from m_k + 1 + d",
    ),
    "G1": (gl, "cone_qp", _cone_qp_drops_negative_cone, "dropped sign branch (only +M)"),
    "G2": (
        gl,
        "independent_closed_form",
        _closed_form_gap_coefficient,
        "wrong closed-form coefficient c0",
    ),
    "G3": (
        nprompts,
        "induced_weights",
        _induced_weights_off_by_one,
        "off-by-one in the token gate products",
    ),
    "G4": (gl, "jordan_decomposition", _jordan_off_by_one, "off-by-one in the Jordan increments"),
    "G5": (
        ndepth,
        "causal_weight_matrix",
        _depth_weights_off_by_one,
        "off-by-one in the causal gate products",
    ),
    "G6": (ntrained, "token_matrix_risk", _token_risk_wrong_moment, "wrong fourth-moment factor"),
}

#: Examples the search needed (seed 0) to find the planted bug: the first counterexample's
#: 1-based position among the distinct instances; measured, asserted exactly.
NEEDED = {
    "C1": 1,
    "C2": 1,
    "C3": 1,
    "L1": 1,
    "L1f": 9,
    "L2": 1,
    "L3": 1,
    "L4": 11,
    "L5": 14,
    "L6": 1,
    "L7": 5,
    "G1": 18,
    "G2": 1,
    "G3": 1,
    "G4": 1,
    "G5": 1,
    "G6": 1,
}
#: Budget per claim (distinct instances searched).
BUDGET = {**dict.fromkeys(PLANTED, 20), "L5": 30, "G1": 40}
#: Cases whose budget run took more than 3 s (on a loaded 2-core machine): marked slow.
SLOW = {"C1", "L4", "L5", "G1", "G3", "G4"}


def test_every_property_has_a_planted_bug():
    assert set(PLANTED) == set(PROPERTIES)


def _run(monkeypatch, cid, examples, seed=0):
    mod, attr, factory, _ = PLANTED[cid]
    monkeypatch.setattr(mod, attr, factory(getattr(mod, attr)))
    return run_stress(cid, examples=examples, seed=seed, shrink=False)


@pytest.mark.parametrize(
    "cid", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in PLANTED]
)
def test_planted_bug_is_found(monkeypatch, cid):
    s = _run(monkeypatch, cid, BUDGET[cid])
    assert s["failures"] >= 1, (cid, PLANTED[cid][3], s["counts"])
    if cid in NEEDED:
        assert s["first_failure_at"] == NEEDED[cid], (cid, s["first_failure_at"])


@pytest.mark.parametrize("cid", list(PLANTED))
def test_without_the_bug_the_same_search_is_clean(cid):
    """The same budget without the planted bug finds nothing (so the failures above are the bug's)."""
    if cid in SLOW:
        pytest.skip("slow")
    s = run_stress(cid, examples=min(BUDGET[cid], 10), seed=0, shrink=False)
    assert s["failures"] == 0, (cid, s["counts"], s["smallest"])
