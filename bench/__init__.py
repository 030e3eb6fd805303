"""Benchmarks: ``python -m bench.gla`` etc. Ratios are against a reference run in the same process."""
