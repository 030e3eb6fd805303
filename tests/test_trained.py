"""Tests of the G6 training study (proofs_check/experiments/trained.py) and claim G6's verdict logic.

Every comparison is against an independent computation: the L1 risk formula
(numerics.risk.wpgd_risk) or Monte Carlo for the token-matrix risk, the certified cone optimum
(solve_gla) for a hand-built GLA realising it, exact rationals (SymPy) for the predictions.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from numerics import train as tr
from numerics.data import MultitaskModel, random_correlation, random_covariance
from numerics.gla_landscape import independent_closed_form
from numerics.measures import cosine
from numerics.prompts import tokens
from numerics.risk import monte_carlo_risk, wpgd_risk
from proofs_check.experiments import trained as T
from proofs_check.tolerances import MC_Z

SETTINGS = {s.name: s for s in T.default_settings()}


# ----------------------------------------------------------------------------- exact risk
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6),
    d=st.integers(1, 4),
    cond=st.sampled_from([1.0, 10.0, 1e3]),
    sigma=st.floats(0.0, 2.0),
)
def test_token_matrix_risk_reduces_to_L1(seed, n, d, cond, sigma):
    """M_i = ω_i P: the token-matrix risk equals the L1 formula (wpgd_risk), incl. ill-conditioned Σ
    and rank-deficient R. Float64 identity; 1e-10 relative as in the conventions."""
    rng = np.random.default_rng(seed)
    R = random_correlation(n + 1, rng, rank=int(rng.integers(1, n + 2)))
    model = MultitaskModel(R, random_covariance(d, rng, cond=cond), sigma)
    P, w = rng.standard_normal((d, d)), rng.standard_normal(n)
    ref = wpgd_risk(model, P, w)
    val = T.token_matrix_risk(model, w[:, None, None] * P[None])
    assert abs(val - ref) <= 1e-10 * max(1.0, abs(ref))


def test_token_matrix_risk_vs_monte_carlo():
    """General token matrices (not of the form ω_i P): exact formula vs Monte Carlo, 4 s.e."""
    rng = np.random.default_rng(7)
    n, d = 5, 3
    model = MultitaskModel(random_correlation(n + 1, rng), random_covariance(d, rng, cond=5.0), 0.4)
    M = 0.3 * rng.standard_normal((n, d, d))
    exact = T.token_matrix_risk(model, M)
    mean, se = monte_carlo_risk(
        model,
        lambda p: np.einsum("Ni,Na,iab,Nib->N", p.y, p.x, M, p.X),
        200_000,
        np.random.default_rng(8),
    )
    assert abs(mean - exact) <= 4 * se


def test_token_matrix_risk_validates_shape():
    model = SETTINGS["single"].model()
    with pytest.raises(ValueError, match=r"^M:"):
        T.token_matrix_risk(model, np.zeros((3, 2, 2)))


# ----------------------------------------------------------------------------- predictions
@pytest.mark.parametrize("name", ["monotone", "nonmonotone"])
def test_predictions_vs_independent_closed_form(name):
    """predict_optimum (certified solvers) vs the closed forms of independent tasks (Moreau
    projection), and the ordering L_LA >= L*_GLA >= L*_vector."""
    s = SETTINGS[name]
    cf = independent_closed_form(np.array(s.m), np.array(s.rho), s.d, s.sigma)
    got = {a: T.predict_optimum(s, a).risk for a in T.ARCHITECTURES}
    assert got["linear"] == pytest.approx(cf["L_la"], rel=1e-10)
    assert got["scalar"] == pytest.approx(cf["L_gla"], rel=1e-9)
    assert got["vector"] == pytest.approx(cf["L_wpgd"], rel=1e-9)
    assert got["linear"] > got["scalar"] >= got["vector"] - 1e-12
    if name == "nonmonotone":  # the setting must separate the three architectures clearly
        assert got["scalar"] > 1.1 * got["vector"] and got["linear"] > 1.1 * got["scalar"]


def test_exact_sympy_predictions_match():
    """The theory leg's exact rational optima (cone-face enumeration) equal the numerics ones."""
    from theory.predictions import exact_predictions

    s = T.Setting("small", (2, 3, 2), (0.6, 0.1, 0.5), 2, 0.5)
    ex = exact_predictions(m=s.m, rho=s.rho, Gamma=s.Gamma_matrix.tolist(), d=s.d, sigma=s.sigma)
    assert ex["L7_closed_form"]
    for a, k in (("linear", "L_la"), ("scalar", "L_gla"), ("vector", "L_wpgd")):
        assert T.predict_optimum(s, a).risk == pytest.approx(float(ex[k]), rel=1e-10)


# ----------------------------------------------------------------------------- read-outs
def _construct_scalar_optimum(s: T.Setting, pred: T.Prediction) -> tuple[tr.GLASpec, dict]:
    """A scalar-gated GLA realising the predicted (P*, u*): W_q = P*^T, W_k = I on x, W_v copies y;
    example/query gates sigmoid(40) (= 1 - 4e-18), delimiter gate k = u_k/u_{k+1} (u_{K+1} = 1 after
    normalising u to max 1), all through the delimiter channels only."""
    spec = T.make_spec(s, "scalar")
    d, K = s.d, s.K
    p = {k: np.zeros(v) for k, v in spec.param_shapes().items()}
    u = pred.u / pred.u.max()
    # Example i of segment k then gets ω_i = Π_{l>=k} δ_l = u_k (telescoping), so P_eff must carry
    # the factor max(u) for ω_i P_eff = pred.omega_i pred.P.
    p["W_q"][:, :d] = pred.P.T * float(pred.u.max())
    p["W_k"][:, :d] = np.eye(d)
    p["W_v"][d, d] = 1.0
    b = 40.0
    p["b_g"] = np.array(b)
    for k in range(K):
        nxt = 1.0 if k == K - 1 else u[k + 1]
        delta = u[k] / nxt
        logit = math.log(delta) - math.log1p(-delta) if delta < 1 else 40.0
        p["w_g"][d + 1 + k] = logit - b
    return spec, {"layers": [p]}


@pytest.mark.parametrize("name", ["monotone", "nonmonotone"])
def test_readout_of_constructed_optimum_and_permuted_prediction(name):
    """The read-out chain on a hand-built optimum: exact risk = predicted cone optimum, cosines 1;
    a deliberately wrong prediction (reversed block weights) gives cosine < 0.98."""
    s = SETTINGS[name]
    pred = T.predict_optimum(s, "scalar")
    spec, params = _construct_scalar_optimum(s, pred)
    Z = tokens(s.prompt, s.model().sample(64, np.random.default_rng(0)))
    M, spread = T.token_matrices(params, spec, s, Z)
    assert spread < 1e-12  # structural gates: the same weights in every prompt (std rounding only)
    assert T.token_matrix_risk(s.model(), M) == pytest.approx(pred.risk, rel=1e-9)
    r1 = T.rank1_readout(M, pred.omega)
    assert r1["residual"] < 1e-12
    u = T.block_average(r1["omega"], s.m)
    assert cosine(u, pred.u) > 1 - 1e-9
    assert cosine(r1["P"], pred.P) > 1 - 1e-9 and T.rel_frobenius_scaled(r1["P"], pred.P) < 1e-6
    wrong = pred.u[::-1]
    assert cosine(u, wrong) < 0.98


def test_rel_frobenius_scaled_is_scale_invariant_and_detects_mismatch():
    rng = np.random.default_rng(3)
    B = rng.standard_normal((3, 3))
    assert T.rel_frobenius_scaled(-2.5 * B, B) < 1e-14
    assert T.rel_frobenius_scaled(np.eye(3), B) > 0.1
    assert cosine(B, B) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- the experiment
@pytest.fixture(scope="module")
def tiny_case():
    return T.run_case(SETTINGS["monotone"], "scalar", profile="tiny", seed=5)


def test_tiny_experiment_produces_the_figures(tiny_case, tmp_path):
    f = tiny_case.figures
    for key in (
        "predicted_risk",
        "trained_risk",
        "trained_risk_mc",
        "trained_risk_se",
        "rel_gap",
        "cos_omega",
        "cos_P",
        "rel_frob_P",
        "fn_rel_rms_pred",
        "fn_rel_rms_grad",
        "steps",
        "seed",
        "train_seconds",
    ):
        assert key in f and f[key] is not None
    assert np.isfinite([f["trained_risk"], f["cos_omega"], f["fn_rel_rms_pred"]]).all()
    # the trained model lives in the reachable class: its exact risk is never below the optimum
    assert f["rel_gap"] >= -1e-9
    assert abs(f["mc_vs_exact_z"]) <= MC_Z
    assert f["model_m"] == [6, 6, 6] and f["model_sigma"] == 0.1
    T.write_curves_csv(tmp_path / "c.csv", [tiny_case])
    T.write_summary_csv(tmp_path / "s.csv", [tiny_case])
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == ",".join(T.CURVE_COLUMNS) and len(lines) == 1 + 1 + T.PROFILES["tiny"].steps
    T.write_curves_csv(tmp_path / "c2.csv", [tiny_case], max_rows=10)
    rows = [ln.split(",") for ln in (tmp_path / "c2.csv").read_text().splitlines()[1:]]
    steps = [int(r[3]) for r in rows]
    assert steps[0] == 0 and steps[-1] == T.PROFILES["tiny"].steps and len(rows) < 40
    assert all(
        r[5] for r in rows if int(r[3]) % T.PROFILES["tiny"].eval_every == 0
    )  # eval rows kept
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "c.csv").stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would
    srow = (tmp_path / "s.csv").read_text().splitlines()
    assert srow[0].split(",") == T.SUMMARY_COLUMNS and len(srow) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_verdict_detects_a_wrong_prediction(tiny_case):
    """Same seed, same trained model, compared with reversed block weights: the case fails."""
    from proofs_check.claims.g6 import case_evidence

    s = SETTINGS["monotone"]
    good = tiny_case.prediction
    rev = good.omega[::-1].copy()
    wrong = T.Prediction("scalar", good.risk, rev, good.P, T.block_average(rev, s.m), "reversed")
    bad = T.run_case(s, "scalar", profile="tiny", seed=5, prediction=wrong)
    assert bad.figures["trained_risk_exact"] == tiny_case.figures["trained_risk_exact"]
    assert bad.figures["cos_omega"] < 0.98 < tiny_case.figures["cos_omega"]
    ev = case_evidence(bad)
    assert not ev.passed and "cos_omega" in [c.name for c in ev.criteria if not c.passed]


def test_cases_trained_side_by_side_equal_their_own_runs(tiny_case):
    """``run_cases`` (one group, the prompts drawn once) gives each case's ``run_case`` figures,
    curve and parameters bit for bit, whatever else is in the group (other widths, another
    restriction); a wrong prediction in the group fails only its own case."""
    from proofs_check.claims.g6 import case_evidence

    s = SETTINGS["monotone"]
    good = tiny_case.prediction
    rev = good.omega[::-1].copy()
    wrong = T.Prediction("scalar", good.risk, rev, good.P, T.block_average(rev, s.m), "reversed")
    group = T.run_cases(
        s,
        ["linear", "scalar", "vector", "scalar", "scalar"],
        profile="tiny",
        seed=5,
        restriction=["wpgd"] * 4 + ["free"],
        predictions=[None, None, None, wrong, None],
        dk_multiples=[None, None, 2, None, None],
    )
    alone = T.run_case(s, "vector", profile="tiny", seed=5, dk_multiple=2)
    free = T.run_case(s, "scalar", profile="tiny", seed=5, restriction="free")
    skip = {"train_seconds", "eval_seconds"}
    for one, other in ((group[1], tiny_case), (group[2], alone), (group[4], free)):
        assert one.figures.keys() == other.figures.keys()
        for k, v in one.figures.items():
            if k not in skip:
                assert np.array_equal(np.asarray(v), np.asarray(other.figures[k])), k
        np.testing.assert_array_equal(np.asarray(one.curve), np.asarray(other.curve))
        w, w0 = one.params["layers"][0], other.params["layers"][0]
        assert all(np.array_equal(w[k], w0[k]) for k in w0)
    assert case_evidence(group[1]).passed is case_evidence(tiny_case).passed
    assert not case_evidence(group[3]).passed
    with pytest.raises(ValueError, match="same non-zero number"):
        T.run_cases(s, ["linear", "scalar"], profile="tiny", predictions=[None])


def test_determinism(tiny_case):
    again = T.run_case(SETTINGS["monotone"], "scalar", profile="tiny", seed=5)
    other = T.run_case(SETTINGS["monotone"], "scalar", profile="tiny", seed=6)
    skip = {"train_seconds", "eval_seconds"}
    for k, v in tiny_case.figures.items():
        if k not in skip:
            assert np.array_equal(np.asarray(v), np.asarray(again.figures[k])), k
    assert other.figures["trained_risk"] != tiny_case.figures["trained_risk"]


def test_vector_architecture_width_and_mask():
    s = SETTINGS["single"]
    spec = T.make_spec(s, "vector")
    assert spec.gate == "key" and spec.Dk == T.ARCHITECTURES["vector"][1] * s.d
    m = spec.trainable[0]
    assert (
        not m["W_g"][:, : s.d + 1].any() and m["W_g"][:, s.d + 1 :].all()
    )  # gates read delimiters only
    assert T.make_spec(s, "vector", dk_multiple=2).Dk == 2 * s.d
    assert T.make_spec(s, "linear", "free").trainable is None


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: T.make_spec(SETTINGS["single"], "softmax"), "architecture"),
        (lambda: T.make_spec(SETTINGS["single"], "scalar", "loose"), "restriction"),
        (lambda: T.make_spec(SETTINGS["single"], "scalar", dk_multiple=0), "dk_multiple"),
        (lambda: T.predict_optimum(SETTINGS["single"], "none"), "architecture"),
        (lambda: T.Setting("x", (2, 2), (0.5,), 2, 0.1), "rho"),
        (lambda: T.Setting("x", (2,), (0.5,), 2, -0.1), "sigma"),
        (lambda: T.Setting("x", (2, 2), (0.9, 0.9), 2, 0.1), "rho"),
        (lambda: T.run_case(SETTINGS["single"], "scalar", profile="huge"), "profile"),
        (lambda: T.block_average(np.ones(5), [2, 2]), "w"),
    ],
)
def test_bad_input_raises_named_value_error(call, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        call()
