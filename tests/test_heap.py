"""numerics._heap: the tool's processes keep freed memory instead of faulting it in again.

Counted, not timed: the minor page faults of a loop that allocates, fills and frees the same
2 MB temporary (the size of G5's depth-fit arrays) 200 times, in a fresh interpreter. With
glibc's defaults every round faults its 512 pages in anew (about 100,000 faults); with the
tool's settings the pages are reused (measured: a few hundred)."""

import os
import platform
import subprocess
import sys

import pytest

from numerics._heap import MALLOC_ENV, user_tuned

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the settings are glibc's",
)

_LOOP = """
import resource, numpy as np
a = np.ones((10, 8000, 3))
b = a * 2.0  # the first free: glibc's dynamic mmap threshold moves up to this size
del b
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    b = a * 2.0
    c = b + a
    del b, c
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(prefix: str, env_extra: dict | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not user_tuned({k: v})}
    env.update(env_extra or {})
    out = subprocess.run(
        [sys.executable, "-c", prefix + _LOOP], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[-1]), " ".join(out[:-1])


@glibc
def test_freed_temporaries_reuse_their_pages():
    default, _ = _faults("")
    kept, said = _faults("from numerics._heap import keep_heap\nprint(keep_heap())\n")
    assert said == "True"
    assert default > 50_000, default  # the defaults do fault every round in (else: no test)
    assert kept * 20 < default, (kept, default)


@glibc
def test_the_command_line_applies_it_and_the_user_settings_win():
    run_list = (
        "import contextlib, io\nfrom proofs_check.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['list'])\n"
    )
    default, _ = _faults("")
    kept, _ = _faults(run_list)
    assert kept * 20 < default, (kept, default)
    # A MALLOC_* variable of the user's: the tool leaves the allocator alone (here glibc's
    # defaults, as the arena limit does not touch trimming).
    mine, said = _faults(
        "from numerics._heap import keep_heap\nprint(keep_heap())\n",
        {"MALLOC_ARENA_MAX": "4"},
    )
    assert said == "False" and mine > 50_000, mine


@glibc
def test_the_depth_fits_apply_it():
    """A library user's first call of :mod:`numerics.depth` (here ``depth_predict``) keeps the
    heap, as the command line does (G5's depth fits were ~3x slower without it)."""
    call = (
        "import numpy as np\nfrom numerics.depth import depth_predict\n"
        "depth_predict(np.ones((1, 2, 1)), np.ones((1, 2)), np.ones((1, 1)), [np.eye(1)], "
        "[np.zeros(3)])\n"
    )
    default, _ = _faults("")
    kept, _ = _faults(call)
    assert kept * 20 < default, (kept, default)


def test_the_environment_of_started_processes_says_the_same():
    assert {int(v) for v in MALLOC_ENV.values()} == {1 << 30}
    assert user_tuned({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
    assert not user_tuned({"HOME": "/root"})
