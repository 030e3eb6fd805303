r"""TEMPLATE: a claim in one file. Copy it to ``proofs_check/claims/<id>.py`` (a name without a
leading underscore: underscore files are not discovered), or into your own package and register
it under the ``gla_verify.claims`` entry-point group. See docs/adding_a_claim.md.

The example is a real, small theorem so the template runs as it is:

    The profile risk is invariant under a change of sign of the weights,
    ``min_P L(P, -ω) = min_P L(P, ω)``.

Read it from top to bottom: statement and conditions, then the theory leg (a SymPy proof
returning a :class:`theory.result.ProofResult`), then the numerics leg (an independent
computation), then an optional figure.
"""

from __future__ import annotations

import sympy as sp

from numerics.data import MultitaskModel, random_correlation, random_covariance
from numerics.risk import optimal_P, profile_risk, wpgd_risk

# Use the shared helpers rather than writing your own: named tolerances (one home, each
# justified), quoted sources, the evidence builders. Absolute imports, so the file works both
# inside proofs_check/claims/ and in a package of your own.
from proofs_check import sources, tolerances as tol
from proofs_check.registry import Claim, compare, symbolic
from theory.result import ProofResult, Timer

__all__ = ["CLAIM"]

# --------------------------------------------------------------------------- the statement
# ``id`` must be unique across the suite and every installed claim package. ``statement`` is
# LaTeX (it goes into the appendix as is). ``source`` says what the claim rests on: the paper's
# abstract with the sentence quoted (``sources.abstract(...)``), a named prior result, or
# ``sources.DERIVED_HERE`` -- never a section or equation number of a text nobody here read.
# ``status_note`` says, in your words, where the claim as first posed was wrong or needed a
# condition ("Holds as first posed." is a fine note). ``area`` groups claims in reports; a new
# area is reported after the built-in ones.
CLAIM = Claim(
    id="T0",
    area="examples",
    title=r"The profile risk is invariant under $\omega\mapsto-\omega$",
    statement=r"$\min_P L(P,-\omega)=\min_P L(P,\omega)$ for every $\omega$.",
    conditions=("the multitask model of L1",),
    source=sources.DERIVED_HERE,
    status_note="Holds as first posed (a special case of L3 with $s=-1$).",
)


# --------------------------------------------------------------------------- theory leg
# A check is ``func(ctx) -> Evidence | list[Evidence]``. The theory leg proves an identity with
# SymPy; put the proof itself in a ``theory`` module when it is more than a few lines (theory
# never imports numerics), and have it return a ProofResult. ``symbolic`` turns a ProofResult
# into evidence whose criterion is "every residual reduced to 0".
def prove_sign_invariance() -> ProofResult:
    """The profile risk ``σ² + R tr Σ − a² Σ λ²/(bλ + c)`` depends on ``a = rᵀω`` only through ``a²``
    and on ``b, c`` (quadratic forms) not at all through the sign of ``ω``."""
    timer = Timer()
    a, b, c, lam, sigma, Rq = sp.symbols("a b c lambda sigma R_q", real=True)
    profile = sigma**2 + Rq * lam - a**2 * lam**2 / (b * lam + c)
    # omega -> -omega maps (a, b, c) -> (-a, b, c)
    residual = sp.simplify(profile.subs(a, -a) - profile)
    return ProofResult(
        "profile risk is even in a = r^T omega",
        residual == 0,
        residual_terms=0 if residual == 0 else len(sp.Add.make_args(residual)),
        seconds=timer(),
        latex=sp.latex(sp.Eq(residual, 0)),
    )


@CLAIM.check(
    "SymPy: the profile risk is even in a (omega -> -omega maps a -> -a, b, c unchanged)",
    leg="theory",
)
def _theory(ctx):
    return symbolic("SymPy: profile risk even in a", prove_sign_invariance())


# --------------------------------------------------------------------------- numerics leg
# Compare against an *independent* computation, never against the same code path. Draw
# randomness only from ``ctx.rng(name)`` (seeded by the run's seed and this claim's id).
# ``compare(name, value, reference, tolerance)`` builds evidence with one criterion (relative
# RMS error <= tolerance); more criteria go in ``criteria=(...)``. Never set a verdict by hand.
@CLAIM.check(
    "risk at (P*(-omega), -omega) (matrix formula) vs profile_risk(omega) (eigenvalues)",
    leg="numerics",
)
def _numerics(ctx):
    rng = ctx.rng("sign")
    out = []
    for n, d in ((4, 2), (9, 3)):
        model = MultitaskModel(
            random_correlation(n + 1, rng, common=0.4), random_covariance(d, rng, cond=100.0), 0.3
        )
        omegas = rng.standard_normal((5, n))
        # two different code paths: the full L1 risk at the optimal P of -omega, and the profile formula at omega
        out.append(
            compare(
                f"wpgd_risk(P*(-omega), -omega) vs profile_risk(omega) (n={n}, d={d})",
                [wpgd_risk(model, optimal_P(model, -w), -w) for w in omegas],
                [profile_risk(model, w) for w in omegas],
                tol.IDENTITY,
                n=n,
                d=d,
            )
        )
    return out


# --------------------------------------------------------------------------- figure (optional)
# ``@CLAIM.figure(name, title)`` registers ``make(claim_json, out, data_dir) -> caption | None``:
# draw from the claim's report entry (``claim_json["evidence"]``) or from data files in
# ``data_dir``; save with ``plotting.save_figure``; return the caption, or None when the data is
# not there. This template has none.
