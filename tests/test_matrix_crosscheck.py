"""Every rule of the matrix engine agrees with the coordinate Wick engine; planted wrong rules are caught."""

import pytest

from theory.general import prove_L1, prove_L1f
from theory.matrix_crosscheck import cross_check_derivation, cross_check_rules, planted_rules


def test_all_rules_agree_with_wick_d2():
    res = cross_check_rules(d=2)
    assert res["holds"], {k: v for k, v in res["rules"].items() if not v["holds"]}
    assert {
        "second moment",
        "fourth moment",
        "odd moment",
        "task covariance",
        "noise",
        "index split",
        "free index",
        "canonical form",
        "spectral",
        "trace derivative",
        "independence",
        "kronecker delta",
    } <= set(res["rules"])
    assert res["instances"] >= 25


@pytest.mark.slow
def test_all_rules_agree_with_wick_d3():
    assert cross_check_rules(d=3)["holds"]


@pytest.mark.parametrize("label", sorted(planted_rules()))
def test_planted_wrong_rule_is_rejected(label):
    rules = planted_rules()[label]
    res = cross_check_rules(rules, d=2)
    assert not res["holds"]
    failed = [k for k, v in res["rules"].items() if not v["holds"]]
    assert len(failed) == 1
    # and a derivation built on the wrong rule disagrees with the coordinate derivation
    assert not cross_check_derivation(2, 2, rules=rules)["holds"]
    assert not prove_L1(rules=rules).holds


def test_fourth_moment_without_transpose_is_caught_only_by_nonsymmetric_instances():
    res = cross_check_rules(
        planted_rules()["fourth moment without M^T"], only=["fourth moment"], d=2
    )
    bad = [c["case"] for c in res["rules"]["fourth moment"]["cases"] if not c["ok"]]
    assert "x x^T M x x^T, M general" in bad
    assert "(u^T x)^2 x x^T" not in bad  # symmetric wiring: the wrong rule agrees there


@pytest.mark.parametrize("n, d, featurewise", [(1, 1, False), (2, 2, False), (1, 2, True)])
def test_derivation_matches_coordinate_wick(n, d, featurewise):
    res = cross_check_derivation(n, d, featurewise=featurewise)
    assert res["holds"] and res["residual_terms"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("n, d, featurewise", [(2, 3, False), (2, 2, True), (3, 2, False)])
def test_derivation_matches_coordinate_wick_larger(n, d, featurewise):
    assert cross_check_derivation(n, d, featurewise=featurewise)["holds"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="d:"):
        cross_check_rules(d=1)


def test_featurewise_proof_fails_with_planted_task_rule():
    assert not prove_L1f(rules=planted_rules()["task covariance ignoring i != j"]).holds
