"""Claims are discovered: a throw-away package registers the template claim through the
``gla_verify.claims`` entry-point group and ``gla-verify run`` runs it (one new file, nothing
else edited); broken or clashing claim packages are refused with exit status 3."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import proofs_check
from proofs_check.claims import builtin_modules, discover

ROOT = Path(proofs_check.__file__).resolve().parent.parent
TEMPLATE = ROOT / "proofs_check" / "claims" / "_template.py"


def _package(
    tmp_path: Path, name: str, modules: dict[str, str], entry_points: dict[str, str]
) -> Path:
    """A minimal installed distribution: ``<name>/`` with ``modules`` and a ``.dist-info`` with
    ``entry_points.txt``, in a fresh directory meant for PYTHONPATH."""
    site = tmp_path / f"site-{name}"
    pkg = site / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for mod, text in modules.items():
        (pkg / f"{mod}.py").write_text(text)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[gla_verify.claims]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    )
    return site


def _gla_verify(args, *sites, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, sites), str(ROOT)]))
    return subprocess.run(
        [sys.executable, "-m", "proofs_check", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def test_template_is_not_discovered_but_runs():
    assert "proofs_check.claims._template" not in builtin_modules()
    assert "T0" not in discover()


def test_a_claim_package_is_discovered_listed_and_run(tmp_path):
    t0 = time.perf_counter()
    site = _package(
        tmp_path,
        "gla_demo_claims",
        {"x1": TEMPLATE.read_text().replace('id="T0"', 'id="X1"')},
        {"X1": "gla_demo_claims.x1"},
    )
    listed = _gla_verify(["list"], site)
    assert listed.returncode == 0, listed.stderr
    assert (
        "X1" in listed.stdout
        and "gla-demo-claims: gla_demo_claims.x1 (entry point X1)" in listed.stdout
    )
    report = tmp_path / "r.json"
    res = _gla_verify(["run", "X1", "--json", str(report), "-q"], site)
    assert res.returncode == 0, res.stdout + res.stderr
    rep = json.loads(report.read_text())
    (claim,) = rep["claims"]
    assert claim["id"] == "X1" and claim["status"] == "pass" and claim["area"] == "examples"
    assert claim["origin"].startswith("gla-demo-claims") and set(claim["legs"]) == {
        "theory",
        "numerics",
    }
    print(f"template claim added and run in {time.perf_counter() - t0:.1f} s")


@pytest.mark.parametrize(
    "module, message",
    [
        ("raise RuntimeError('boom')\n", "load failed: RuntimeError: boom"),
        ("CLAIM = 3\n", "expected a module with a CLAIM attribute"),
    ],
)
def test_a_broken_claim_package_is_an_environment_error(tmp_path, module, message):
    site = _package(tmp_path, "gla_bad_claims", {"bad": module}, {"B1": "gla_bad_claims.bad"})
    res = _gla_verify(["list"], site)
    assert res.returncode == 3 and message in res.stderr and "gla_bad_claims.bad" in res.stderr


def test_a_clashing_claim_id_is_refused(tmp_path):
    site = _package(
        tmp_path,
        "gla_clash",
        {"c1": TEMPLATE.read_text().replace('id="T0"', 'id="C1"')},
        {"C1": "gla_clash.c1"},
    )
    res = _gla_verify(["run", "C1", "-q"], site)
    assert res.returncode == 3 and "defined twice" in res.stderr
