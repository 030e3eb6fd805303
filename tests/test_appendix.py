"""``gla-verify appendix``: builds from a small run, covers every claim, valid images,
compiles with pdflatex (where installed), and is written atomically."""

import json
import shutil
import subprocess

import pytest

from proofs_check import appendix as app
from proofs_check.cli import main
from proofs_check.registry import all_claims


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """A real run of C1 (fast), written as JSON."""
    path = tmp_path_factory.mktemp("run") / "r.json"
    assert main(["run", "C1", "-q", "--json", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def built(small_report, tmp_path_factory):
    out = tmp_path_factory.mktemp("app") / "appendix"
    assert main(["appendix", "--from", str(small_report), "--out", str(out), "-q"]) == 0
    return out


def test_appendix_files_and_valid_images(built):
    for name in ("appendix.tex", "appendix.md", "appendix_standalone.tex", "results.json"):
        assert (built / name).is_file(), name
    pngs = sorted((built / "figures").glob("*.png"))
    pdfs = sorted((built / "figures").glob("*.pdf"))
    # The figures of the report's claims (C1) and the suite figures whose data files exist.
    assert (
        len(pngs)
        == len(pdfs)
        <= len(app.report_figures(json.loads((built / "results.json").read_text())))
    )
    assert {p.stem for p in pngs} >= {"gating_matrix"}
    import matplotlib.image as mpimg

    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(p)
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 0.01, f"{p.name} is blank"
    for p in pdfs:
        assert p.read_bytes()[:5] == b"%PDF-"
    md = (built / "appendix.md").read_text()
    for p in pngs:
        assert f"figures/{p.name}" in md


def test_every_claim_in_report_appears(built, small_report):
    rep = json.loads(small_report.read_text())
    md = (built / "appendix.md").read_text()
    tex = (built / "appendix.tex").read_text()
    for c in rep["claims"]:
        assert f"### {c['id']}:" in md and f"{{{c['id']}: " in tex


def test_markdown_covers_every_registered_claim():
    """Rendering a report of every registered claim (without running them) lists each one."""
    claims = all_claims()
    fake = {
        "created": "now",
        "settings": {"seed": 0, "profile": "quick"},
        "versions": {"numpy": "x"},
        "summary": {"claims": len(claims), "passed": len(claims), "failed": 0},
        "claims": [
            {
                "id": c.id,
                "title": c.title,
                "statement": c.statement,
                "source": c.source,
                "status_note": c.status_note,
                "status": "pass",
                "seconds": 0.0,
                "evidence": [
                    {
                        "check": "x",
                        "leg": "theory",
                        "kind": "symbolic",
                        "passed": True,
                        "figures": {},
                        "criteria": [],
                        "key_figure": {
                            "name": "verified",
                            "value": True,
                            "limit": True,
                            "op": "==",
                        },
                    }
                ],
            }
            for c in claims.values()
        ],
    }
    md = app.render_markdown(fake, [], [])
    tex = app.render_tex(fake, [], [])
    for cid in claims:
        assert f"### {cid}:" in md
        assert f"{{{app.tex_escape(cid)}: " in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_tex_compiles_with_pdflatex(built):
    res = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "appendix_standalone.tex"],
        cwd=built,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:]
    assert (built / "appendix_standalone.pdf").read_bytes()[:5] == b"%PDF-"


def test_interrupted_build_keeps_previous_appendix(built, small_report, tmp_path, monkeypatch):
    out = tmp_path / "appendix"
    shutil.copytree(built, out)
    before = (out / "appendix.md").read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "render_tex", boom)
    with pytest.raises(KeyboardInterrupt):
        app.build_appendix(
            out, json.loads(small_report.read_text()), progress=lambda m: None, figures=False
        )
    assert (out / "appendix.md").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appendix"]  # no temp dirs left


def test_bad_from_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["appendix", "--from", str(bad), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert (
        main(
            [
                "appendix",
                "--from",
                str(tmp_path / "missing.json"),
                "--out",
                str(tmp_path / "o"),
                "-q",
            ]
        )
        == 2
    )
    assert not (tmp_path / "o").exists()


def test_current_texts_replace_the_claims_texts_not_their_evidence(small_report, tmp_path):
    """``--current-texts``: the claims' texts as registered now, the evidence and verdicts as
    recorded; a changed verdict is refused; the first page says where the texts come from."""
    from proofs_check.output import UsageError

    rep = json.loads(small_report.read_text())
    c = rep["claims"][0]
    c.update(statement="an old statement", status_note="an old note")
    new = app.with_current_texts(rep)
    k = all_claims()[c["id"]]
    assert new["claims"][0]["statement"] == k.statement
    assert new["claims"][0]["status_note"] == k.status_note
    assert new["claims"][0]["evidence"] == c["evidence"]
    assert rep["claims"][0]["statement"] == "an old statement"  # the report is not modified
    assert "claim_texts" in new and "claim texts and figures as of" in app.render_tex(new, [], [])
    c["verdict"] = "false" if k.verdict != "false" else "as-stated"
    with pytest.raises(UsageError, match="verdict"):
        app.with_current_texts(rep)
    # the option needs a report to take the evidence from
    out = tmp_path / "o"
    assert main(["appendix", "C1", "--current-texts", "--out", str(out), "-q"]) == 2
    assert not out.exists()


def test_tex_escape():
    assert app.tex_escape("a_b & 50% #1") == r"a\_b \& 50\% \#1"
    assert app.tex_escape("ω ≤ 1 §") == r"\ensuremath{\omega} \ensuremath{\le} 1 \S{}"
    assert app.tex_unicode(r"$a ∪ b$") == r"$a \ensuremath{\cup} b$"  # works inside math too


def test_claim_texts_have_no_unmapped_unicode():
    """Everything a claim puts into the .tex renders without unicode set-up in pdflatex."""
    from proofs_check import appendix_text

    known = set(appendix_text._UNICODE_TEXT) | set(appendix_text._UNICODE_MATH)
    for c in all_claims().values():
        texts = (c.id, c.title, c.statement, c.source, c.status_note, c.verdict_condition)
        for text in (*texts, *c.conditions):
            bad = {ch for ch in text if ord(ch) > 127 and ch not in known}
            assert not bad, f"{c.id}: unmapped characters {bad}"


def test_a_claim_figure_is_drawn_through_the_notebook_api(tmp_path):
    import proofs_check as pc

    png, caption = pc.draw("L4", "landscape_1d", out=tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "fixed point" in caption
    with pytest.raises(LookupError, match="not available"):
        pc.draw("G6", "training_curves", out=tmp_path)  # needs a report with G6's evidence


def _report_of_every_claim():
    """A schema-valid report of every registered claim, each with one passing check (not run)."""
    from proofs_check.registry import ClaimResult, Criterion, Evidence
    from proofs_check.schema import validate_report

    claims = all_claims()
    fake = {
        "schema": 1,
        "tool": "gla-verify",
        "created": "now",
        "command": "test",
        "settings": {"seed": 0, "profile": "quick"},
        "versions": {"numpy": "x"},
        "summary": {"claims": len(claims), "passed": len(claims), "failed": 0, "seconds": 0.0},
        "claims": [
            ClaimResult(
                c,
                [
                    Evidence(
                        "x", "symbolic", [Criterion("verified", True, "==", True)], leg="theory"
                    )
                ],
                0.0,
            ).to_json()
            for c in claims.values()
        ],
    }
    validate_report(fake)
    return claims, fake


def test_claims_table_verdicts_match_recorded_verdicts():
    """The claims table shows each claim's recorded verdict and condition (not "pass"), in the
    Markdown and in the LaTeX version."""
    from proofs_check.registry import VERDICTS

    claims, fake = _report_of_every_claim()
    rows = {}
    md = app.render_markdown(fake, [], [])
    table = md.split("\n## Claims\n", 1)[1].split("\n## ", 1)[0]
    for line in table.splitlines():
        cells = [x.strip() for x in line.strip("|").split(" | ")]
        if len(cells) == 5 and cells[0] in claims:
            rows[cells[0]] = (cells[2], cells[3])
    assert set(rows) == set(claims)
    tex = app.render_tex(fake, [], [])
    table_tex = tex.split(r"\label{tab:claims}", 1)[1].split(r"\end{longtable}", 1)[0]
    for cid, c in claims.items():
        assert c.verdict in VERDICTS
        label = app.VERDICT_LABELS[c.verdict]
        assert rows[cid] == (label, " ".join(c.verdict_condition.split()).replace("|", "\\|")), cid
        expected = r"\textbf{" + app.tex_escape(label) + "}"
        if c.verdict_condition:
            expected += ": " + app._tex(c.verdict_condition)
        assert expected in table_tex, cid
        section = tex.split(rf"\label{{sec:{cid}}}", 1)[1][:400]
        verdict = r"{\sloppy\noindent\textbf{Verdict: " + app.tex_escape(label) + ".}"
        assert section.startswith("\n" + verdict), cid
    assert "Status:" not in tex and "Status:" not in md
    # the findings: these hold only as corrected or restricted
    for cid in ("C2", "C3", "L5", "G1", "G6"):
        assert claims[cid].verdict != "as-stated", cid
    assert claims["G6"].verdict == "restricted"


def test_failed_claim_reads_fail_and_old_reports_fall_back():
    _, fake = _report_of_every_claim()
    c = dict(fake["claims"][0], status="FAIL")
    assert app.verdict_text(c) == "FAIL"
    old = {k: v for k, v in fake["claims"][0].items() if k not in ("verdict", "verdict_condition")}
    assert app.verdict_text(old) == "pass"


def test_claim_verdict_is_validated():
    from proofs_check.registry import Claim

    with pytest.raises(ValueError, match="verdict"):
        Claim(id="X", title="t", statement="s", source="s", verdict="holds")
    with pytest.raises(ValueError, match="verdict_condition"):
        Claim(id="X", title="t", statement="s", source="s", verdict="restricted")


def test_schema_verdicts_match_registry():
    from proofs_check import schema
    from proofs_check.registry import VERDICTS

    assert schema._CLAIM["?verdict"] == ("enum", VERDICTS)
    _, fake = _report_of_every_claim()
    fake["claims"][0]["verdict"] = "holds"
    with pytest.raises(Exception, match="verdict"):
        schema.validate_report(fake)
