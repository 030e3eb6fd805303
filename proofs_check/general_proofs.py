r"""Theory-leg evidence from the general-dimension proofs of :mod:`theory.general`.

One function, :func:`evidence`, turns the matrix-engine proof of a claim into an
:class:`~proofs_check.registry.Evidence` item whose figures say ``"dimensions": "symbolic"``,
list the sizes kept symbolic, and carry the proof's trace (rule, applications, LaTeX) and the
standard facts it used. Its criteria are the proof itself and, once per run, the engine's
rule cross-check against the coordinate Wick engine (every rule agrees on explicit instances,
and a planted wrong fourth-moment rule is rejected). The small-instance proofs of each claim
stay as separate, independent theory checks.

A claim module adds the check with::

    @CLAIM.check("Matrix engine: <identity> for symbolic n and d", leg="theory")
    def _general(ctx):
        return general_proofs.evidence(ctx, "L1")
"""

from __future__ import annotations

import time

from theory import general
from theory.matrix_crosscheck import cross_check_rules, planted_rules

from .registry import Context, Evidence, holds, shared_work, symbolic

__all__ = ["evidence", "rule_cross_check"]

#: The wrong rule the run plants to show the cross-check can fail (see docs/general_proofs.md).
PLANTED = "fourth moment without M^T"


def rule_cross_check() -> dict:
    """Every engine rule vs the Wick engine on ``d = 2`` instances, plus the planted wrong rule."""
    t0 = time.perf_counter()
    res = cross_check_rules(d=2)
    bad = cross_check_rules(planted_rules()[PLANTED], only=["fourth moment"], d=2)
    return {
        "holds": bool(res["holds"]),
        "instances": int(res["instances"]),
        "rules": sorted(res["rules"]),
        "failed_rules": sorted(k for k, v in res["rules"].items() if not v["holds"]),
        "planted_rule": PLANTED,
        "planted_rule_rejected": not bad["holds"],
        "seconds": round(time.perf_counter() - t0, 3),
    }


#: The run-cache key of :func:`rule_cross_check`: once per run, shared by every claim with a
#: general-dimension proof (declared with :func:`~proofs_check.registry.shared_work`, so a run on a
#: pool computes it once, not once per claim).
CROSS_CHECK = ("matrix-engine", "rule-cross-check")
shared_work(CROSS_CHECK, rule_cross_check, general.PROOFS)


def evidence(ctx: Context, claim_id: str, check: str | None = None) -> Evidence:
    """Run :data:`theory.general.PROOFS` ``[claim_id]`` and report it (see the module docstring)."""
    if claim_id not in general.PROOFS:
        raise ValueError(
            f"claim_id: no general-dimension proof for {claim_id!r}; have {sorted(general.PROOFS)}"
        )
    ctx.progress(f"{claim_id}: matrix-engine proof (symbolic dimensions)")
    proof = general.PROOFS[claim_id]()
    cc = ctx.cache.get(CROSS_CHECK, rule_cross_check)
    d = proof.to_dict()
    name = check or f"Matrix engine: {proof.claim} for symbolic {', '.join(proof.symbols)}"
    return symbolic(
        name,
        proof.to_result(),
        holds(
            "rule cross-check vs Wick",
            cc["holds"],
            f"{cc['instances']} instances, rules {', '.join(cc['rules'])}",
        ),
        holds(
            "planted wrong rule rejected",
            cc["planted_rule_rejected"],
            f"planted: {cc['planted_rule']}",
        ),
        dimensions="symbolic",
        symbols=d["symbols"],
        assumptions=d["assumptions"],
        lemmas=d["lemmas"],
        trace=d["trace"],
        trace_steps=d["trace_steps"],
        scope=d["scope"],
        rule_cross_check=cc,
    )
