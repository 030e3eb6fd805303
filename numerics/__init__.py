"""NumPy/SciPy/cvxpy engines: GLA forward passes, WPGD predictors, data models, risks, optima.

Engines only (the studies that drive them live in :mod:`proofs_check.experiments`). Never
imports :mod:`theory`.

>>> import numpy as np, numerics
>>> m = numerics.MultitaskModel.single_task(4, np.eye(2), sigma=0.5)
>>> sol = numerics.solve_wpgd(m)
>>> bool(np.allclose(sol.omega, 0.5))          # one task: constant weights (claim L6)
True
"""

from .data import MultitaskModel, Prompts, check_model, random_correlation, random_covariance
from .depth import depth_predict, evaluate_depth, one_layer_optimum, optimise_depth
from .gla import decay_matrix, gla_chunked, gla_final, gla_parallel, gla_recurrent
from .gla_landscape import independent_closed_form, monotone_projection, solve_cone, solve_gla
from .landscape import brute_force_wpgd, omega_curve, solve_wpgd, solve_wpgd_featurewise
from .measures import cosine, max_abs, rel_rms
from .prompts import StructuredPrompt, gla_predict, induced_weights, token_log_gates
from .risk import (
    abc,
    gain,
    monte_carlo_risk,
    null_risk,
    optimal_P,
    phi,
    profile_risk,
    profile_risk_grad,
    wpgd_predictor,
    wpgd_risk,
    wpgd_risk_featurewise,
)
from .stack import construct_wpgd_layer, construct_wpgd_stack, stack_predict
from .train import GLASpec  # not `train`: `from numerics import train` must stay the module
from .wpgd import (
    causal_wpgd,
    weights_from_log_gates,
    wpgd_multistep,
    wpgd_predict,
    wpgd_predict_featurewise,
)

__all__ = [
    # data model
    "MultitaskModel",
    "Prompts",
    "check_model",
    "random_correlation",
    "random_covariance",
    "StructuredPrompt",
    # GLA engines and the residual stack
    "gla_recurrent",
    "gla_chunked",
    "gla_parallel",
    "gla_final",
    "decay_matrix",
    "stack_predict",
    "construct_wpgd_layer",
    "construct_wpgd_stack",
    "gla_predict",
    "token_log_gates",
    "induced_weights",
    # WPGD
    "wpgd_predict",
    "wpgd_predict_featurewise",
    "weights_from_log_gates",
    "causal_wpgd",
    "wpgd_multistep",
    # risks
    "abc",
    "phi",
    "gain",
    "null_risk",
    "optimal_P",
    "profile_risk",
    "profile_risk_grad",
    "wpgd_risk",
    "wpgd_risk_featurewise",
    "wpgd_predictor",
    "monte_carlo_risk",
    # certified optima
    "solve_wpgd",
    "solve_wpgd_featurewise",
    "brute_force_wpgd",
    "omega_curve",
    "solve_cone",
    "solve_gla",
    "monotone_projection",
    "independent_closed_form",
    # depth and training engines
    "optimise_depth",
    "evaluate_depth",
    "depth_predict",
    "one_layer_optimum",
    "GLASpec",
    # comparison measures
    "rel_rms",
    "max_abs",
    "cosine",
]
