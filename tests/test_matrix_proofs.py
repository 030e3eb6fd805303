"""General-dimension proofs (theory.general): every claim holds with symbolic sizes and carries a trace."""

import json

import pytest

from theory import general as g
from theory.matrix_engine import Q, equal, idx, mat, scalar, sum_over, vec


@pytest.mark.parametrize("claim", sorted(g.PROOFS))
def test_proof_holds_symbolically(claim):
    p = g.PROOFS[claim]()
    assert p.holds, {k: v for k, v in p.parts.items() if not v}
    assert (p.dimensions == "symbolic" and "d" in p.symbols) or claim in ("L2",)
    assert p.trace and all({"rule", "applications", "note", "latex"} <= set(s) for s in p.trace)
    assert p.trace[0]["rule"] == "definition"
    tex = p.latex()
    assert tex.count(r"\begin{enumerate}") == 1 and tex.count(r"\end{enumerate}") == 1
    assert tex.count("$") % 2 == 0
    json.dumps(p.to_dict())
    assert p.to_dict()["dimensions"] == "symbolic"


def test_L1_trace_goes_from_definition_through_the_moment_rules():
    rules = [s["rule"] for s in g.prove_L1().trace]
    assert rules[0] == "definition"
    for r in (
        "index split",
        "noise",
        "fourth moment",
        "second moment",
        "task covariance",
        "trace cyclicity",
    ):
        assert r in rules


def test_a_wrong_closed_form_is_not_proved():
    # L1 with the fourth-moment '2' in A dropped: b = Σ ω_i R_ij ω_j only
    E, _ = g.derive_risk_matrix()
    a, _, c = g._abc()
    i, j = idx("i"), idx("j")
    P, S = mat("P"), g.SIGMA
    b_wrong = sum_over(scalar(g.OMEGA[i] * g.OMEGA[j] * g.Rij(i, j)), i, j)
    wrong = (
        scalar(g._sig2)
        + g.Rij(Q, Q) * g._trS
        - 2 * a @ (P @ S @ S).tr()
        + b_wrong @ (P.T @ S @ P @ S @ S).tr()
        + c @ (P.T @ S @ P @ S).tr()
    )
    assert not equal(E, wrong)
    assert equal(E, g._closed_L1())


def test_C2_general_key_matrix_is_not_the_featurewise_form():
    # sanity: with a general P_k the two words differ (the counterexample lives in the small-instance leg)
    s = idx("s")
    Pq, Pk = mat("P_q"), mat("P_k")
    D = mat("D", s, sym=True)
    left = vec("x", Q).T @ Pq.T @ sum_over(g.Y[s] * (D @ Pk @ vec("x", s)), s)
    right = vec("x", Q).T @ Pq.T @ Pk @ sum_over(g.Y[s] * (D @ vec("x", s)), s)
    assert not equal(left, right)
    assert equal(left, right, commuting={"D", "P_k"})


def test_prove_all_runs_every_claim():
    out = g.prove_all()
    assert set(out) == set(g.PROOFS) and all(p.holds for p in out.values())
