"""Claim modules; importing this package registers every claim.

Each module registers its claims at import time. Order here is the order in
``gla-verify list`` and in reports.
"""
from importlib import import_module

_MODULES = ["construction", "landscape", "gla_landscape", "depth", "trained"]

for _m in _MODULES:
    import_module(f"{__name__}.{_m}")
