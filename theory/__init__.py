"""SymPy derivations: the GLA -> WPGD construction, population risks, stationarity,
gate-reachable weights, depth, and exact predicted optima.

Every proof returns a :class:`ProofResult`. Never imports :mod:`numerics`.

>>> import theory
>>> theory.check_L3().verified
True
"""

from .construction import (
    prove_c1,
    prove_c2,
    prove_c3,
    prove_state_formula_induction,
    prove_state_formula_small,
)
from .depth import SmallInstance, check_one_layer_matches_L1, population_risk, prove_nesting
from .population_loss import (
    check_featurewise,
    check_featurewise_diagonal,
    check_featurewise_reduces_to_L1,
    check_L1,
    derive_risk,
    risk_formula_featurewise,
    risk_formula_L1,
)
from .predictions import exact_predictions
from .reachability import (
    prove_delimiter_recurrence,
    prove_g1_closed_form,
    prove_g2_profile,
    prove_gate_products,
    prove_jordan,
    prove_key_copies,
    prove_kkt_gradient,
)
from .result import ProofResult
from .stationarity import (
    check_isotropic,
    check_L2,
    check_L3,
    check_L4,
    check_L5_conditions,
    check_L6,
    check_L7,
    optimal_P,
    phi,
    profile_risk,
)

__all__ = [
    "ProofResult",
    # construction (C1-C3)
    "prove_c1",
    "prove_c2",
    "prove_c3",
    "prove_state_formula_induction",
    "prove_state_formula_small",
    # population risk (L1, L1f)
    "derive_risk",
    "risk_formula_L1",
    "risk_formula_featurewise",
    "check_L1",
    "check_featurewise",
    "check_featurewise_reduces_to_L1",
    "check_featurewise_diagonal",
    # stationarity (L2-L7)
    "optimal_P",
    "profile_risk",
    "phi",
    "check_L2",
    "check_L3",
    "check_L4",
    "check_isotropic",
    "check_L5_conditions",
    "check_L6",
    "check_L7",
    # reachability (G1-G4)
    "prove_gate_products",
    "prove_delimiter_recurrence",
    "prove_jordan",
    "prove_kkt_gradient",
    "prove_g1_closed_form",
    "prove_g2_profile",
    "prove_key_copies",
    # depth (G5), predictions (G6)
    "prove_nesting",
    "SmallInstance",
    "population_risk",
    "check_one_layer_matches_L1",
    "exact_predictions",
]
