"""SymPy derivations: the GLA -> WPGD construction, population risks, stationarity.

Never imports :mod:`numerics`.
"""
