"""The version of gla-verify, kept in this one place.

``setup.cfg`` reads it (``version = attr: proofs_check._version.__version__``), ``gla-verify
--version`` prints it, and every JSON report records it under ``versions["gla-verify"]``.
Change it together with a new section in ``CHANGELOG.md``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
