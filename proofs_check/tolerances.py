r"""Every tolerance of the suite, named once and justified here.

Claims, stress searches and tests import these names; none of them writes a tolerance as a
literal. A tolerance is a statement about the *measured* size of an error: each comment says
what was measured and why the limit leaves room for it without admitting a genuine failure.
Relative figures are relative to the quantity named in the comment (a risk's null risk
``L0``, a reference's norm, the solver's gain ``F*``).

>>> IDENTITY < CERTIFIED_VALUE < CVXPY_VALUE < CURVE_RESIDUAL
True
>>> MC_Z
4.0
"""

from __future__ import annotations

__all__ = [
    "IDENTITY",
    "SCALE_INVARIANCE",
    "MC_Z",
    "STRICT_FACTOR",
    "CERTIFIED_VALUE",
    "CVXPY_VALUE",
    "SEARCH_EXCESS",
    "PARAM_SEARCH_EXCESS",
    "STRICT_GAIN",
    "GAIN",
    "DIRECTION",
    "DIFFERENT_DIRECTION",
    "CURVE_RESIDUAL",
    "BRACKET_REL",
    "BRUTE_FORCE_DIRECTION",
    "FIXED_POINT",
    "KKT_AT_ONE",
    "ZERO_GAP",
    "CONE_MEMBER_DISTANCE",
    "CONE_NONMEMBER_DISTANCE",
    "EXACT_OPTIMUM",
    "BELOW_CERTIFIED_MINIMUM",
    "EXACT_STRICT",
    "ROUNDING_BELOW_OPTIMUM",
    "RISK_GAP",
    "COSINE",
    "PREDICTION",
    "BFGS_PRECONDITIONER",
    "PHASE_BOUNDARY",
]

# ---------------------------------------------------------------------------- identities
#: Float64 identities between independent implementations (GLA engines vs WPGD predictors,
#: closed forms vs solvers; docs/conventions.md): measured <= ~1e-14 relative; 1e-10 leaves
#: four orders for ill-conditioned instances, while any modelling error is >= 1e-3.
IDENTITY = 1e-10
#: Exact scale invariances ``L(P/s, s ω) = L(P, ω)`` evaluated with scales ``e^{±3}``:
#: measured ~1e-15 relative; 1e-12 allows the rounding of the scaled inputs.
SCALE_INVARIANCE = 1e-12
#: "Genuinely different" means a relative gap above ``STRICT_FACTOR × IDENTITY``: a
#: discrepancy that rounding can never produce (C2's general ``P_k``, C3's ``L = 2``).
STRICT_FACTOR = 1e3

# ---------------------------------------------------------------------------- Monte Carlo
#: Monte Carlo estimates must lie within this many standard errors of the closed form
#: (two-sided p ~ 6e-5 per check, so a run of ~40 such checks fails by chance with p ~ 3e-3).
#: Sample sizes are chosen so that the tolerance (4 s.e.) is below 1% of the risk.
MC_Z = 4.0

# ---------------------------------------------------------------------------- optima
#: Optimal values computed by different exact methods (NNLS active set vs closed form vs
#: ``solve_wpgd``), relative to ``L0``: measured ~1e-15 when they coincide, while genuine gaps
#: found are >= 1e-6. It is also the solver's own KKT scale (``numerics.gla_landscape.KKT_TOL``).
CERTIFIED_VALUE = 1e-9
#: cvxpy (Clarabel, default tolerances ~1e-8) vs the exact NNLS value, relative.
CVXPY_VALUE = 1e-6
#: A local search (brute force, sigmoid gates, per-token weights) may not beat a certified
#: optimum by more than this, relative to ``L0`` (the profile risk is rounded at ~1e-15).
SEARCH_EXCESS = 1e-9
#: The same for a grid + L-BFGS-B optimum of a *parametrised* family (cases a–c of G3), whose
#: own optimiser stops at ~1e-9: 1e-7 relative to ``L0``.
PARAM_SEARCH_EXCESS = 1e-7
#: A "strict" gain between two optima must exceed this, relative to ``L0``: 1e3 times the
#: search tolerance, far above rounding, well below the gains found (>= 1e-4).
STRICT_GAIN = 1e-6
#: The solver is "worse than a baseline" only if the baseline's gain ``F`` exceeds the
#: solver's by more than this, relative to ``F*`` (1e4 × the rounding of the spectral formulas;
#: a wrong fixed point misses by the gap between local maxima, >> 1e-10).
GAIN = 1e-10
#: Two optima have the same direction when ``1 − |cos| <= DIRECTION``. L-BFGS leaves
#: ``1 − |cos| <= 1e-12`` at converged optima; genuinely distinct optima differ by >= 1e-3.
#: (This reconciles the claim's former ``1 − 1e-8`` with the stress search's ``1e-6``.)
DIRECTION = 1e-6
#: A direction is "clearly different" when ``1 − |cos| > 1e-3`` (L5's free coordinate).
DIFFERENT_DIRECTION = 1e-3
#: Curve property of L4: ``‖(A + tB)ω − proj_r‖ / ‖(A + tB)ω‖`` at ``t = φ(ω)`` of a brute-force
#: optimum. L-BFGS stops at a relative gradient of 1e-13..1e-9, which leaves residuals up to
#: ~1e-6 on ill-conditioned instances (cond(Σ) = 1e8); points genuinely off the curve have
#: residuals O(1). (This reconciles the claim's former 1e-6 with the stress search's 1e-4.)
CURVE_RESIDUAL = 1e-4
#: ``t`` lies in ``[1/λ_max, 1/λ_min]`` up to this relative rounding of the bracket ends.
BRACKET_REL = 1e-12
#: Relative RMS between a unit-normalised brute-force optimum and a closed-form direction:
#: ``sqrt(2(1 − cos))`` with ``1 − cos <= 1e-12`` gives ~1e-6 at most.
BRUTE_FORCE_DIRECTION = 1e-6
#: Fixed-point residual, projected-gradient and block-deviation figures of the cone
#: certificate (relative): measured <= 1e-11; 1e-8 is the solver's own stopping scale.
FIXED_POINT = 1e-8
#: KKT residual at ``u = 1`` of the cone problem (G2), relative to ``F/‖ω‖``: linear in the
#: distance from a KKT point, so 1e-8 matches a gap of ~1e-16.
KKT_AT_ONE = 1e-8
#: A "zero" gap ``L_LA − L*_GLA`` (exact ties measure ~1e-16 relative).
ZERO_GAP = 1e-12
#: Cone membership (G1): the risk gap grows quadratically with the distance of ω* from the
#: cone, so a tolerance on the distance and one on the gap agree only away from the boundary:
#: member if distance <= 1e-9 (then the gap must be <= CERTIFIED_VALUE), clear non-member if
#: distance >= 1e-3 (then the gap must exceed it); in between "borderline".
CONE_MEMBER_DISTANCE = 1e-9
CONE_NONMEMBER_DISTANCE = 1e-3

# ---------------------------------------------------------------------------- depth (G5)
#: Numerically minimised exact polynomial vs its closed-form optimum, relative: L-BFGS-B from
#: 16 starts on a smooth 3-parameter problem reaches ~1e-15; 1e-8 leaves room for an optimum
#: on the boundary of the gate box.
EXACT_OPTIMUM = 1e-8
#: The exact risk of a trained 1-layer model may fall below the certified 1-layer optimum only
#: by the float64 rounding of the two risk formulas (~1e-15 relative): 1e-12 relative.
BELOW_CERTIFIED_MINIMUM = 1e-12
#: An exact risk is "strictly below" another when below it by more than this (absolute, risks
#: are O(1)): 1e6 × float64 rounding of the polynomial's evaluation.
EXACT_STRICT = 1e-9

# ---------------------------------------------------------------------------- training (G6)
#: Trained models live in the architecture's reachable class, so their exact risk can never
#: be below the predicted infimum; float64 rounding of the two risk formulas is ~1e-15
#: relative, a genuine violation would be >= 1e-6.
ROUNDING_BELOW_OPTIMUM = 1e-9
#: The claim's target: trained risk within 2% (relative) of the predicted optimum.
RISK_GAP = 0.02
#: The claim's target: cosine of effective block weights (and of P) with the prediction.
COSINE = 0.98
#: Theory (exact rationals) vs numerics predictions of the optima: ~1e-14 relative measured.
PREDICTION = 1e-9
#: ``optimal_P`` vs a BFGS minimisation over the ``d²`` entries of ``P`` (L2): BFGS stops at
#: gtol 1e-12 on a quadratic of condition up to ~cond(Σ)³, so ``P`` is accurate to ~1e-12 cond³
#: relative at worst; 1e-5 leaves room at cond 1e3 (the risk itself is checked at IDENTITY).
BFGS_PRECONDITIONER = 1e-5

# ---------------------------------------------------------------------------- figures
#: A phase boundary of G1's figure located by bisection of the closed form must separate the
#: phases within this relative distance along its ray: the gain over linear attention grows
#: linearly past the boundary (measured ~0.08·L_LA per unit of relative distance at K = 4), so
#: 1e-6 beyond it the gain is ~8e-8, far above the zero threshold CERTIFIED_VALUE, while the
#: bisection itself stops within ~1e-8.
PHASE_BOUNDARY = 1e-6
