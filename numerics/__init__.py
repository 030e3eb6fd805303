"""NumPy/SciPy/cvxpy engines: GLA forward passes, WPGD predictors, data models, risks, optima.

Never imports :mod:`theory`.
"""
