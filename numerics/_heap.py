"""Keep freed memory in the process heap (glibc), so that repeated steps reuse it.

A training step, an L-BFGS evaluation of a depth fit or an engine call allocates and frees
dozens of temporaries of 0.1-100 MB.  With glibc's defaults each of them is a fresh ``mmap``
(blocks above the mmap threshold: 128 KB, moving up to at most 32 MB as blocks are freed), or
the top of the heap is given back to the system once more than twice that is free there, and
every page is faulted in again on first touch.  Measured on the 2-core development machine:

* the page faults were ~55% of the CPU time of a two-layer ``loss_and_grad`` at N=256, T=41
  (29 ms -> 12 ms with the heap kept); the ``long`` shape of ``bench/train.py`` (N=512,
  T=129, D=21) faulted ~34,000 pages per four-layer ``loss_and_grad`` with 32 MB / 256 MB
  thresholds (123 ms of system time on 430 ms of user time), none with 1 GiB;
* G5 in the full profile (depth fits on arrays of 10 x 8,000 x 3 floats), one process, idle:
  128.8 s wall (70.1 s user plus 58.7 s system time) with glibc's defaults, 63.3 s wall (63.0 s
  user plus 0.3 s system) kept.

:func:`keep_heap` sets glibc's mmap threshold and its trim threshold to 1 GiB: blocks up to
1 GiB come from the heap, and memory freed by one step stays mapped for the next (at most
1 GiB of free heap is kept; the process holds its peak heap until it exits).  It is called
once per process by the command line (``proofs_check.cli.main``, whose forked workers inherit
it), on the first training step or prediction of :mod:`numerics.train`, on the first call
of an engine of :mod:`numerics.gla` (in its argument checks) and of the fits, predictions
and evaluations of :mod:`numerics.depth` (without it a depth forward pass at G5's full
size took 3.7-5 ms instead of 1.3 ms: ``bench/depth.py``); the workers of the
local Dask clusters the tool starts get the same settings through their environment
(:data:`MALLOC_ENV`, which replaces Dask's ``MALLOC_TRIM_THRESHOLD_=65536``).  It does nothing
off glibc (macOS, Windows, musl) and where the user tunes the allocator in the environment
(:func:`user_tuned`).  PyTorch's caching allocator does the same for tensors.

>>> sorted(MALLOC_ENV)
['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

__all__ = ["MALLOC_ENV", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_heap", "user_tuned"]

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 1 << 30

#: The same settings as glibc environment variables, for processes a caller starts (read by
#: glibc when the process starts).
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
}

_done: bool | None = None


def user_tuned(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment already tunes glibc's allocator (any ``MALLOC_*`` variable or
    ``GLIBC_TUNABLES``): then it is left as the user set it.

    >>> user_tuned({"PATH": "/bin"}), user_tuned({"MALLOC_ARENA_MAX": "2"})
    (False, True)
    """
    env = os.environ if environ is None else environ
    return "GLIBC_TUNABLES" in env or any(k.startswith("MALLOC_") for k in env)


def keep_heap() -> bool:
    """Apply the thresholds once per process; True if they are in effect (glibc, no settings
    of the user's, both accepted), else False."""
    global _done
    if _done is None:
        _done = _apply()
    return _done


def _apply() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_tuned():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Both: setting the trim threshold alone turns off glibc's dynamic mmap threshold and
    # leaves it at 128 KB (every larger block a fresh mmap).
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok)
