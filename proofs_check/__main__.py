"""``python -m proofs_check`` is ``gla-verify``."""

import sys

from .cli import main

__all__ = []

if __name__ == "__main__":
    sys.exit(main())
