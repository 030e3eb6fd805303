"""Experiment drivers: studies built on the engines of :mod:`numerics`, run as sweeps
(:mod:`proofs_check.sweep`)."""
