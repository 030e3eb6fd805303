"""Claims L1-L7 (registry entries). The stress searches are tested in tests/test_stress*.py."""

from proofs_check.cli import run_claims
from proofs_check.registry import all_claims


# ----------------------------------------------------------------------------- registry
def test_landscape_claims_registered_with_both_legs():
    claims = all_claims()
    for cid in ("L1", "L1f", "L2", "L3", "L4", "L5", "L6", "L7"):
        assert cid in claims, cid
        c = claims[cid]
        assert c.legs() == {"theory", "numerics"}, cid
        assert c.statement.isascii() and c.status_note.isascii(), cid


def test_cheap_claims_pass_and_carry_model_specs():
    results, _ = run_claims(["L3"], seed=0, profile="quick")
    for res in results:
        assert res.passed, [(e.check, e.figures) for e in res.evidence if not e.passed]
        for e in res.evidence:
            if e.leg == "numerics":
                assert e.criteria and "d" in e.figures and "sigma" in e.figures, e.check
