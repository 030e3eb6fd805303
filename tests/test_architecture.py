"""The layering: ``theory`` and ``numerics`` never import each other (``proofs_check`` composes them)."""

import pkgutil
import subprocess
import sys

import pytest

import numerics
import theory


def _modules(pkg):
    return [f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]


@pytest.mark.parametrize("pkg, forbidden", [(theory, "numerics"), (numerics, "theory")])
def test_packages_do_not_import_each_other(pkg, forbidden):
    mods = _modules(pkg)
    assert mods
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m == {forbidden!r} or m.startswith({forbidden!r} + '.'))\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 0, res.stderr[-2000:]


def _all_modules():
    import importlib

    import proofs_check

    out = []
    for pkg in (theory, numerics, proofs_check):
        out.append(pkg.__name__)
        out += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    return [importlib.import_module(m) for m in out]


def test_every_module_declares_its_public_names():
    """``__all__`` in every module, and every name in it exists (an explicit public API)."""
    missing = [m.__name__ for m in _all_modules() if not hasattr(m, "__all__")]
    assert not missing, f"modules without __all__: {missing}"
    for m in _all_modules():
        absent = [n for n in m.__all__ if not hasattr(m, n)]
        assert not absent, f"{m.__name__}.__all__ names {absent}, which do not exist"


def test_package_reexports_keep_submodules_reachable():
    """``numerics`` and ``theory`` re-export functions, never under a submodule's name."""
    import importlib

    for pkg in (theory, numerics):
        for m in pkgutil.iter_modules(pkg.__path__):
            sub = importlib.import_module(f"{pkg.__name__}.{m.name}")
            assert getattr(pkg, m.name) is sub, (
                f"{pkg.__name__}.{m.name} is shadowed by a re-export"
            )


def test_pytest_runs_at_least_40_doctests():
    """Runnable examples on the public functions: pytest (``--doctest-modules``) runs every
    docstring with examples; at least 40 of them, none of them skipped wholesale."""
    import doctest

    finder = doctest.DocTestFinder()
    runnable = [
        t.name
        for m in _all_modules()
        for t in finder.find(m)
        if any(not ex.options.get(doctest.SKIP) for ex in t.examples)
    ]
    assert len(runnable) >= 40, f"only {len(runnable)} docstrings with runnable examples"
