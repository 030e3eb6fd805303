"""The registry, the runner and the ``gla-verify`` command (exit codes, JSON, atomicity)."""

import json
import os

import numpy as np
import pytest

from proofs_check import registry
from proofs_check.cli import main
from proofs_check.registry import Claim, Evidence, compare, holds
from proofs_check.report import atomic_write_text


def test_every_registered_claim_is_a_theorem_checked_by_two_legs():
    claims = registry.all_claims()
    for cid, c in claims.items():
        assert c.id == cid and c.title and c.statement and c.source, cid
        assert c.legs() == set(registry.LEGS), (
            f"{cid} is checked by {c.legs()}, needs theory and numerics"
        )


@pytest.fixture
def fake_registry(monkeypatch):
    """Replace the registry by two fake claims: one passes, one fails, one crashes."""
    reg = {}
    import proofs_check.api as api
    import proofs_check.cli as cli

    for mod in (registry, api, cli):
        monkeypatch.setattr(mod, "all_claims", lambda: dict(reg))

    ok = Claim("T1", "passes", r"1 = 1", "test")
    ok.check("sym", leg="theory")(
        lambda ctx: Evidence("sym", "symbolic", [holds("verified", True)])
    )
    ok.check("num", leg="numerics")(
        lambda ctx: compare("num", ctx.rng("a").normal(size=3), ctx.rng("a").normal(size=3), 1e-12)
    )
    bad = Claim("T2", "fails", r"1 = 2", "test")
    bad.check("num", leg="numerics")(lambda ctx: compare("num", [1.0], [2.0], 1e-3))
    boom = Claim("T3", "crashes", r"?", "test")
    boom.check("boom", leg="numerics")(lambda ctx: 1 / 0)
    for c in (ok, bad, boom):
        reg[c.id] = c
    return reg


def test_exit_codes(fake_registry, tmp_path, capsys):
    assert main(["run", "T1", "-q"]) == 0
    assert main(["run", "T1", "T2", "-q"]) == 1
    assert main(["run", "T3", "-q"]) == 1
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert main(["run", "NOPE", "-q"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["run", "--seed", "x"])
    assert exc.value.code == 2


def test_json_report_has_evidence_settings_versions(fake_registry, tmp_path):
    path = tmp_path / "sub" / "r.json"
    assert main(["run", "T1", "T2", "-q", "--seed", "7", "--json", str(path)]) == 1
    rep = json.loads(path.read_text())
    assert rep["settings"]["seed"] == 7 and rep["settings"]["ids"] == ["T1", "T2"]
    assert rep["versions"]["numpy"] == np.__version__
    assert rep["summary"] == {**rep["summary"], "claims": 2, "passed": 1, "failed": 1}
    t2 = rep["claims"][1]
    assert t2["status"] == "FAIL" and t2["evidence"][0]["figures"]["tolerance"] == 1e-3
    assert t2["evidence"][0]["figures"]["rel_rms"] == pytest.approx(0.5)
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp file left behind


def test_same_seed_same_randomness():
    a = registry.Context(seed=3, claim_id="X").rng("n").normal(size=4)
    b = registry.Context(seed=3, claim_id="X").rng("n").normal(size=4)
    c = registry.Context(seed=4, claim_id="X").rng("n").normal(size=4)
    d = registry.Context(seed=3, claim_id="Y").rng("n").normal(size=4)
    assert np.array_equal(a, b) and not np.allclose(a, c) and not np.allclose(a, d)


def test_verdict_and_key_figure_come_from_criteria():
    ev = Evidence(
        "x",
        "search",
        [registry.above("gap", 0.5, 1e-6, "a gap"), registry.at_most("err", 2.0, 1.0)],
    )
    assert (
        not ev.passed and ev.key_figure() == "err=2.00e+00 (tol 1.00e+00)"
    )  # the failing criterion
    assert not Evidence("no criteria").passed  # nothing checked, nothing passes
    assert not Evidence("nan", criteria=[registry.at_least("c", float("nan"), 0.9)]).passed
    with pytest.raises(ValueError, match="kind"):
        Evidence("x", "informational")
    with pytest.raises(ValueError, match="op"):
        registry.Criterion("x", 1.0, "~", 1.0)


def test_compare_metrics():
    assert compare("x", [1.0, 0.0], [1.0, 1e-13], 1e-12, metric="abs").passed
    assert not compare("x", [1.0, 0.0], [1.0, 1e-11], 1e-12, metric="abs").passed
    assert not compare("x", [np.nan], [1.0], 1.0).passed
    assert not compare("x", [1.0, 2.0], [1.0], 1.0).passed
    with pytest.raises(ValueError, match="metric"):
        compare("x", [1.0], [1.0], 1.0, metric="nope")


def test_atomic_write_keeps_previous_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_list_runs(capsys):
    assert main(["list"]) == 0
