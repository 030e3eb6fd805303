"""Packaging metadata: one version, a licence, a citation and a changelog that agree."""

import configparser
import json
import re
import tomllib
from pathlib import Path

import pytest

import proofs_check
from proofs_check._version import __version__
from proofs_check.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_defined_once():
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?", __version__)
    assert proofs_check.__version__ == __version__
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    # setup.cfg reads the version from the module instead of repeating it.
    assert cfg["metadata"]["version"] == "attr: proofs_check._version.__version__"


def test_version_flag_and_report(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"gla-verify {__version__}"
    path = tmp_path / "r.json"
    assert main(["run", "C1", "-q", "--json", str(path)]) == 0
    assert json.loads(path.read_text())["versions"]["gla-verify"] == __version__


def test_citation_file_matches_the_package():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == __version__
    assert cff["license"] == "MIT"
    (paper,) = cff["references"]
    assert paper["title"] == (
        "Gating is Weighting: Understanding Gated Linear Attention through In-context Learning"
    )
    assert paper["year"] == 2025 and "COLM 2025" in paper["conference"]["name"]


def test_changelog_and_licence():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{__version__}]" in changelog
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "the gla-verify authors" in licence
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["license"] == "MIT"


def test_lint_configuration_allows_the_papers_symbols():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lint = conf["tool"]["ruff"]["lint"]
    assert "E741" in lint["ignore"]  # I, l, O are symbols of the paper
    assert {"B", "UP", "F"} <= set(lint["select"])
    assert set(conf["tool"]["mypy"]["files"]) == {"theory", "numerics", "proofs_check"}
