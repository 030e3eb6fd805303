"""The general-dimension proofs in the claims: theory checks that report ``dimensions: symbolic``."""

import pytest

from proofs_check import general_proofs
from proofs_check.appendix_evidence import proved_for as _proved_for
from proofs_check.registry import ClaimResult, Context, all_claims
from theory import general


def _general_check(claim):
    found = [c for c in claim.checks if c.name.startswith("Matrix engine:")]
    assert len(found) == 1, claim.id
    return found[0]


def test_every_general_proof_is_a_theory_check_of_its_claim():
    claims = all_claims()
    for cid in general.PROOFS:
        assert _general_check(claims[cid]).leg == "theory"


@pytest.mark.parametrize("cid", ["L3", "C3", "G5"])
def test_general_check_reports_symbolic_dimensions_and_trace(cid):
    claim = all_claims()[cid]
    ev = _general_check(claim).func(Context(claim_id=cid))
    assert ev.passed
    f = ev.figures
    assert f["dimensions"] == "symbolic" and f["symbols"] and f["trace"]
    assert f["rule_cross_check"]["holds"] and f["rule_cross_check"]["planted_rule_rejected"]
    ev.leg = "theory"
    res = ClaimResult(claim, [ev], 0.0)
    # G5's general proof covers its nesting theorem only (the strict decrease is measured)
    want = "partial" if cid == "G5" else "symbolic"
    assert res.dimensions == want and res.to_json()["dimensions"] == want
    assert _proved_for(res.to_json()).startswith("symbolic")
    assert _proved_for(res.to_json()).endswith("(part of the claim)") == (cid == "G5")


def test_small_instance_checks_report_their_instances():
    claim = all_claims()["L3"]
    chk = next(
        c for c in claim.checks if c.leg == "theory" and not c.name.startswith("Matrix engine:")
    )
    ev = chk.func(Context(claim_id="L3"))
    ev = ev[0] if isinstance(ev, list) else ev
    assert isinstance(ev.figures["dimensions"], list) and ev.figures["dimensions"]
    ev.leg = "theory"
    assert ClaimResult(claim, [ev], 0.0).dimensions == "instances"


def test_unknown_claim_is_refused():
    with pytest.raises(ValueError, match="claim_id"):
        general_proofs.evidence(Context(), "X9")


def test_appendix_prints_the_trace_and_what_was_proved():
    from proofs_check.appendix import render_markdown, render_tex

    claim = all_claims()["L3"]
    ev = _general_check(claim).func(Context(claim_id="L3"))
    ev.leg = "theory"
    c = ClaimResult(claim, [ev], 0.0).to_json()
    report = {
        "summary": {"passed": 1, "claims": 1},
        "created": "now",
        "settings": {"seed": 0, "profile": "quick"},
        "versions": {},
        "claims": [c],
    }
    md = render_markdown(report, [], [])
    assert "general proof for symbolic $n, d$" in md and "**Proof for symbolic n, d**" in md
    assert "1. definition: $" in md
    tex = render_tex(report, [], [])
    assert "general proof for symbolic $n, d$" in tex  # the claims table
    # the claim's theory row summarises a proof this long; the --detail section lists its steps
    assert "a proof for symbolic $n, d$ in 5 engine steps" in tex
    assert r"\begin{enumerate}" not in tex
    detail = render_tex(report, [], [], detail=True)
    assert "A proof for symbolic $n, d$ in engine steps:" in detail
    assert r"\begin{enumerate}" in detail
