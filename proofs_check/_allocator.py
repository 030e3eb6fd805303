"""Keep freed memory in the process: glibc's allocator otherwise returns it and faults it in again.

The studies allocate and free the same large temporaries thousands of times (G5's depth fits:
arrays of ``(n+1) x N x d`` = 10 x 8,000 x 3 floats, about 1.9 MB, per L-BFGS evaluation).
With glibc's default settings the top of the heap is trimmed back to the operating system
whenever more than twice the largest freed block is free there, and blocks above the mmap
threshold (128 KB until the first one is freed) get pages of their own, so every new
temporary page-faults on zeroed pages again. Measured on G5 in the full profile (one process,
one BLAS thread): 85 s user plus **63 s system** time with the defaults, 61 s user plus 0.3 s
system with the settings below.

:func:`keep_freed_memory` sets, through ``mallopt``, an mmap threshold and a trim threshold of
1 GiB and a top pad of 64 MiB, so blocks up to 1 GiB come from the heap and freed heap memory
stays mapped for the next temporary. The cost is memory: the process keeps its peak heap
(plus at most 64 MiB) until it exits instead of returning it between steps.

It is called by the command line (:func:`proofs_check.cli.main`; the run's forked workers
inherit the settings) and by the workers of the local Dask clusters the tool starts
(through their environment, :data:`MALLOC_ENV`). It is not called on a user's cluster
(``--scheduler``) nor when the library is imported: those processes are not the tool's. It
does nothing where the C library is not glibc, and it leaves the allocator alone where the
user has chosen settings of their own (any ``MALLOC_*`` variable or ``GLIBC_TUNABLES`` in
the environment).

>>> keep_freed_memory() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

__all__ = ["MALLOC_ENV", "keep_freed_memory", "user_tuned"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_GIB = 1 << 30
_TOP_PAD = 64 << 20

#: The same settings as glibc environment variables, for processes started by the tool
#: (the workers of its local Dask clusters): read by glibc when the process starts.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(_GIB),
    "MALLOC_TRIM_THRESHOLD_": str(_GIB),
    "MALLOC_TOP_PAD_": str(_TOP_PAD),
}

_DONE: bool | None = None


def user_tuned(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment already tunes glibc's allocator (any ``MALLOC_*`` variable or
    ``GLIBC_TUNABLES``): then the tool leaves it as the user set it.

    >>> user_tuned({"PATH": "/bin"}), user_tuned({"MALLOC_ARENA_MAX": "2"})
    (False, True)
    """
    env = os.environ if environ is None else environ
    return "GLIBC_TUNABLES" in env or any(k.startswith("MALLOC_") for k in env)


def keep_freed_memory() -> bool:
    """Apply the settings of this module to this process once; True if they are in effect
    (glibc, no settings of the user's, every ``mallopt`` call accepted), else False."""
    global _DONE
    if _DONE is None:
        _DONE = _apply()
    return _DONE


def _apply() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_tuned():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # The mmap threshold first: setting either of the others turns off glibc's dynamic
    # adjustment of the mmap threshold, which would leave it at 128 KB.
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, _GIB),
            (_M_TRIM_THRESHOLD, _GIB),
            (_M_TOP_PAD, _TOP_PAD),
        )
    )
