"""Keep freed memory in the process heap (glibc), so that repeated steps reuse it.

A training step allocates and frees dozens of temporaries of 0.1-30 MB.  With glibc's
defaults each of them is a fresh ``mmap`` (or the top of the heap is given back to the
system after the step) and every page is faulted in again on first touch: measured on the
2-core machine, the page faults were ~55% of the CPU time of a two-layer
``loss_and_grad`` at N=256, T=41 (29 ms -> 12 ms with the heap kept).  :func:`keep_heap`
sets glibc's ``mmap`` threshold and its trim threshold to 1 GiB (as the command line does,
:mod:`proofs_check._allocator`): blocks up to 1 GiB come from the heap and memory freed by
one step stays mapped for the next (at most 1 GiB of free heap is kept).  With the earlier
32 MB / 256 MB the ``long`` shape of ``bench/train.py`` (N=512, T=129, D=21) still faulted
~34,000 pages per four-layer ``loss_and_grad`` (its projections of 34 MB and two layers'
kept scores): 123 ms of system time on 430 ms of user time, none with 1 GiB.  It is called
once, on the first step, by :mod:`numerics.train`; elsewhere (other C libraries, macOS,
Windows) it does nothing.  PyTorch's caching allocator does the same for
tensors.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_heap"]

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 1 << 30
_done = False


def keep_heap() -> bool:
    """Apply the thresholds once per process; True if glibc accepted them."""
    global _done
    if _done:
        return True
    _done = True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok)
