"""``docs/theory.md`` and the appendix notation come from one source, ``proofs_check.notation``:
the committed page is the generated one, every symbol a claim uses is defined, and every
claim's statement there is the one ``gla-verify`` checks."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from proofs_check import appendix as app, notation as nt
from proofs_check.cli import main
from proofs_check.registry import all_claims

ROOT = Path(__file__).resolve().parents[1]
THEORY_MD = ROOT / "docs" / "theory.md"


def _one_line(s):
    return " ".join(str(s).split())


def test_committed_theory_md_is_the_generated_one():
    assert THEORY_MD.read_text(encoding="utf-8") == nt.render_theory_md(), (
        "docs/theory.md is out of date: run `gla-verify theory --out docs/theory.md`"
    )


def test_theory_md_states_every_claim_as_checked():
    text = nt.render_theory_md()
    for cid, c in all_claims().items():
        assert f"#### {cid}: {_one_line(c.title)}" in text
        assert f"> **Claim {cid}.** {_one_line(c.statement)}" in text
        assert f"*Source:* {_one_line(c.source)}." in text
        if c.status_note:
            assert f"*Note:* {_one_line(c.status_note)}" in text
        for chk in c.checks:
            assert f"* {chk.leg}: {_one_line(chk.name)}" in text


def test_every_symbol_of_every_claim_is_defined():
    covered = nt.covered_tokens()
    missing = {}
    for cid, c in all_claims().items():
        texts = [c.statement, *nt._conditions(c)]
        miss = set().union(*(nt.math_tokens(t) for t in texts)) - covered
        if miss:
            missing[cid] = sorted(miss)
    assert not missing, (
        f"symbols used by claims but not in proofs_check.notation.SYMBOLS: {missing}"
    )


def test_every_symbol_of_the_appendix_formulas_is_defined():
    """The appendix also prints the SymPy-rendered formulas; their symbols are in the table too."""
    report = {"claims": [{"id": cid} for cid in all_claims()]}
    formulas = app.derived_formulas(report)
    assert formulas
    covered = nt.covered_tokens()
    missing = {name: sorted(nt.math_tokens(f"${tex}$") - covered) for _c, name, tex in formulas}
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"symbols in the appendix formulas but not in SYMBOLS: {missing}"


def test_every_symbol_of_the_setting_is_defined():
    covered = nt.covered_tokens()
    for sec in nt.SETTING:
        for p in sec.paragraphs:
            assert nt.math_tokens(p) <= covered, (sec.title, nt.math_tokens(p) - covered)
    for s in nt.SYMBOLS:
        assert nt.math_tokens(s.meaning) <= covered, (s.symbol, nt.math_tokens(s.meaning) - covered)


def test_symbol_check_can_fail():
    """A planted undefined symbol is reported; operators and labels are not symbols."""
    assert nt.math_tokens(r"$\zeta_i+\omega$") - nt.covered_tokens() == {r"\zeta"}
    assert nt.math_tokens(r"$L^*_{GLA}\le\max_s\mathrm{tr}(P)$") == {"L", "s", "P"}
    assert nt.math_tokens(r"$\mathcal Q + \mathbf 1$") == {r"\mathcal Q", r"\mathbf 1"}
    assert nt.math_tokens("no math, words and tB") == set()


def test_symbol_table_rows_are_well_formed_and_unique():
    seen = set()
    for s in nt.SYMBOLS:
        assert s.symbol and s.latex and s.meaning, s
        assert s.meaning.count("$") % 2 == 0, s
        assert s.symbol not in seen, f"duplicate row {s.symbol}"
        seen.add(s.symbol)
    for name in ("R", "Σ", "σ", "A", "B", "r", "M", "ω", "P", "n", "d", "K"):
        assert any(
            name == s.symbol or s.symbol.startswith(name + " ") or s.symbol.startswith(name + ",")
            for s in nt.SYMBOLS
        ), name
    assert nt.symbol("omega").latex == r"\omega"
    with pytest.raises(KeyError, match="no row"):
        nt.symbol("nonexistent")


def test_abstract_citations_are_read_from_the_claims_sources():
    """Which claims quote an abstract sentence is computed from their ``source`` fields (one
    source of truth), never typed in :data:`proofs_check.notation.ABSTRACT_SENTENCES`."""
    from proofs_check import sources

    for _, topic in nt.ABSTRACT_SENTENCES:
        assert not any(cid in topic.split() for cid in all_claims()), topic
    # every quotation in a registered claim is one of the sentences, verbatim
    sentences = {s for s, _ in nt.ABSTRACT_SENTENCES}
    for cid, c in all_claims().items():
        if 'abstract: "' in c.source:
            quoted = c.source.split('abstract: "', 1)[1].rsplit('"', 1)[0]
            assert any(s in quoted for s in sentences), cid
    # a claim set of our own: the page follows it
    fake = {
        "Z7": SimpleNamespace(
            id="Z7",
            title="t",
            statement="$a$",
            source=sources.abstract(sources.WEIGHTS_FROM_GATES),
            status_note="",
        )
    }
    text = nt.render_theory_md(fake)
    assert "Weights from the gates: Z7." in text
    assert "GLA implements WPGD: no claim." in text


def test_generator_reads_optional_conditions_and_missing_fields():
    claims = {
        "X1": SimpleNamespace(
            id="X1",
            title="A claim",
            statement=r"$\omega\ne0$",
            source="derived here",
            status_note="",
            conditions=["$r\\neq0$", "B positive"],
            checks=[SimpleNamespace(name="a check", leg="theory")],
        ),
        "C9": SimpleNamespace(
            id="C9",
            title="Another",
            statement="$P=0$",
            source="derived here",
            status_note="holds",
            conditions="$n\\ge1$",
        ),
    }
    text = nt.render_theory_md(claims)
    assert "*Conditions:*\n\n* $r\\neq0$\n* B positive" in text
    assert "* $n\\ge1$" in text and "*Note:* holds" in text
    assert "### Other claims" in text and "* theory: a check" in text


def test_appendix_has_the_notation_section():
    """The setting's prose (without the paragraphs claims state in full), and every symbol the
    appendix uses defined once: by that prose or in the glossary of the others."""
    import json

    rep = json.loads((ROOT / "docs" / "appendix" / "results.json").read_text())
    formulas = app.derived_formulas(rep)
    md = app.render_markdown(rep, [], formulas)
    tex = app.render_tex(rep, [], formulas)
    assert "## Setting and notation" in md and r"\subsection{Setting and notation}" in tex
    shown = app._setting_paragraphs()
    assert len(shown) >= len(nt.SETTING) - 2  # only the scope and whole claims are left out
    for title, paragraphs in shown:
        assert f"**{title}.**" in md and r"\paragraph{" + nt.md_to_tex(title) + ".}" in tex
        assert all(app._tex(p) in tex for p in paragraphs)
    setting_math = " ".join(
        re.findall(r"\$([^$]+)\$", " ".join(p for _t, ps in shown for p in ps))
    ).replace(" ", "")
    used = app._used_math(rep, [], formulas)
    glossary = app._glossary(used)
    assert len(glossary) >= 10
    for s in nt.SYMBOLS:
        if s in glossary:
            assert f"${s.latex}$" in md
            assert "$" + app.tex_unicode(s.latex).replace(", ", r",\allowbreak ") + "$" in tex
        elif s.symbol in app.SETTING_DEFINES:
            for part in s.latex.split(", "):
                assert part.replace(" ", "") in setting_math, (s.symbol, part)
        else:
            assert not app.symbol_used(s, used), s.symbol  # not in the appendix at all


def test_notation_tex_needs_no_unicode_setup():
    tex = nt.render_notation_tex()
    assert all(ord(ch) < 128 for ch in tex), {ch for ch in tex if ord(ch) >= 128}
    assert (
        nt.md_to_tex("a_b $x_i$ **bold** `code_1` *it*")
        == r"a\_b $x_i$ \textbf{bold} \texttt{code\_1} \emph{it}"
    )


def test_cli_theory_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "theory.md"
    assert main(["theory", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == nt.render_theory_md()
    assert main(["theory", "--check", str(out)]) == 0
    out.write_text("stale\n", encoding="utf-8")
    assert main(["theory", "--check", str(out)]) == 2  # stale: an input error, not a false claim
    assert "out of date" in capsys.readouterr().err
    assert main(["theory", "--check", str(tmp_path / "missing.md")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["theory", "--out", str(out), "--check", str(out)])
    assert exc.value.code == 2
