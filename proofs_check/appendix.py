r"""``gla-verify appendix``: turn a verification report into a paper appendix.

Writes, into ``--out DIR``:

* ``appendix.tex``: an ``\input``-able appendix section (``appendix_standalone.tex`` wraps it
  in a document that compiles with plain ``pdflatex`` and the standard packages, at a text
  width of :data:`proofs_check.plotting.TEXT_WIDTH_IN` inches, the width the figures are
  drawn for; figures are included at their natural size);
* ``appendix.md``: the same content for GitHub (formulas whole, one per line);
* ``figures/*.pdf|png`` and the data each figure plots (``figures/*.csv``, written by the
  figure functions);
* ``results.json``: the verification report the appendix was built from (every check, with
  every criterion, tolerance and figure).

The appendix reads like a paper appendix, not like a test log: the run (profile, seed,
versions, commit); the setting and notation (from :mod:`proofs_check.notation`, the source of
``docs/theory.md`` too); a claims table with each claim's verdict (as stated, with an added
condition, in a restricted setting, false), its condition in words and its evidence in one
line; then one section per claim with its statement, its derivation (the general proof's
steps and the formulas rendered by ``sympy.latex``, each with its left-hand side, long ones
broken across lines), its figures (placed there and referenced), and one evidence row per
leg. ``detail=True`` (``--detail``) adds a section with every check.

The whole directory is built in a temporary sibling directory and swapped in at the end
(journalled and locked, see :mod:`proofs_check.output`), so an interrupted run leaves the
previous appendix intact or lets the next run complete the swap. Only a directory carrying
gla-verify's marker file is ever replaced.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import notation
from .api import DEFAULT_DATA_DIR
from .appendix_evidence import ascii_math, check_sentence, claim_summary, leg_rows
from .appendix_text import (
    FORMULA_WIDTH,
    display_group,
    display_tex,
    split_formulas,
    tex_escape,
    tex_unicode,
    tex_width,
)
from .output import replace_dir
from .plotting import TEXT_WIDTH_IN
from .registry import Figure
from .report import write_json
from .schema import load_report as _load_report

__all__ = [
    "tex_escape",
    "tex_unicode",
    "verdict_text",
    "VERDICT_LABELS",
    "FORMULA_CLAIM",
    "report_figures",
    "derived_formulas",
    "render_markdown",
    "render_tex",
    "build_appendix",
    "load_report",
    "report_from_run",
    "standalone",
    "with_current_texts",
    "TEXT_FIELDS",
]

VERDICT_LABELS = {
    "as-stated": "holds as stated",
    "with-condition": "holds with an added condition",
    "restricted": "holds in a restricted setting",
    "false": "false (counterexample)",
}

#: Figures that belong to the suite, not to a claim (speed benchmarks): not in a theory appendix.
_SUITE_ONLY = ("bench",)


def verdict_text(c: dict) -> str:
    """The claims-table verdict of one claim: its recorded verdict in words and its condition.

    A claim whose checks failed in this run reads ``FAIL``, whatever its recorded verdict; a
    report written before verdicts were recorded falls back to the run status.

    >>> verdict_text({"status": "pass", "verdict": "restricted", "verdict_condition": "only for $L = 1$"})
    'holds in a restricted setting: only for $L = 1$'
    >>> verdict_text({"status": "FAIL", "verdict": "as-stated"})
    'FAIL'
    """
    if c["status"] != "pass" or "verdict" not in c:
        return "pass" if c["status"] == "pass" else "FAIL"
    label = VERDICT_LABELS[c["verdict"]]
    cond = c.get("verdict_condition", "")
    return f"{label}: {cond}" if cond else label


def _verdict_parts(c: dict) -> tuple[str, str]:
    """(label, condition as Markdown-with-math) of a claim's verdict."""
    text = verdict_text(c)
    label, _, cond = text.partition(": ")
    return label, cond


# ------------------------------------------------------------------------ figures


def report_figures(report: dict) -> list[tuple[Figure, dict | None]]:
    """The figures of the report's claims, each with its claim's report entry, in claim order.

    Suite figures (the speed benchmarks of :mod:`proofs_check.figures`) are not part of a
    theory appendix and are left out."""
    from .registry import all_claims

    claims = all_claims()
    return [
        (f, c)
        for c in report["claims"]
        if c["id"] in claims
        for f in claims[c["id"]].figures
        if f.name not in _SUITE_ONLY
    ]


# ----------------------------------------------------------------------- formulas

#: The claim whose section shows each derived formula. Formula functions are shared by the
#: claims of one theory module; a formula whose name starts with a claim id (``"C2 key
#: gating"``) goes to that claim, one listed here to the claim named, any other to the first
#: claim that points to its function.
FORMULA_CLAIM = {
    "L1": "L1",
    "a_b_c": "L1",
    "L_featurewise": "L1f",
    "H_featurewise": "L1f",
    "M_r": "L1f",
    "L_featurewise_diagonal_opt": "L1f",
    "P_star": "L2",
    "profile": "L2",
    "phi": "L4",
    "kappa": "L4",
    "gradient": "L4",
    "curve": "L4",
    "omega_isotropic": "L4",
    "dJdt": "L5",
    "P_star_single_task": "L6",
    "omega_K_tasks": "L7",
}


def derived_formulas(report: dict) -> list[tuple[str, str, str]]:
    """``(claim id, name, LaTeX)`` of every formula the report's claims derive, rendered by
    ``sympy.latex`` (never retyped), each placed with the claim :data:`FORMULA_CLAIM` names."""
    import sympy as sp

    from .registry import all_claims

    claims = all_claims()
    ids = [c["id"] for c in report["claims"] if c["id"] in claims]
    seen: dict = {}
    for cid in ids:
        if claims[cid].formulas is not None:
            seen.setdefault(claims[cid].formulas, cid)
    out = []
    for get, first in seen.items():
        for name, expr in get().items():
            prefix = name.split(" ", 1)[0]
            owner = prefix if prefix in claims else FORMULA_CLAIM.get(name, first)
            if owner in ids:
                out.append((owner, name, sp.latex(expr)))
    return out


def _derivation_formulas(
    c: dict, formulas: Sequence[tuple[str, str, str]]
) -> tuple[list[str], list[str]]:
    """The displayed formulas of a claim: its derived formulas (rendered by ``sympy.latex``),
    and, for a claim without a proof for symbolic sizes, the statements its SymPy checks
    verified on explicit sizes (split at ``,\\quad``; worked examples left out)."""
    derived = [tex for cid, _name, tex in formulas if cid == c["id"]]
    verified: list[str] = []
    if _general_proofs(c):
        return derived, verified
    for e in c.get("evidence") or []:
        fig = e.get("figures") or {}
        if e.get("leg") != "theory" or e.get("kind") != "symbolic" or not e.get("detail"):
            continue
        if fig.get("dimensions") == "symbolic":
            continue  # the general proof: rendered as its trace
        for f in split_formulas(e["detail"]):
            if f not in verified + derived and "=" in f and not f.startswith(r"\text{e.g."):
                verified.append(f)
    return derived, verified


_VERIFIED = "SymPy verifies, as identities on explicit sizes"
_DERIVED = "Closed forms derived"


def _general_proofs(c: dict) -> list[dict]:
    return [
        e
        for e in c.get("evidence") or []
        if e.get("passed") and (e.get("figures") or {}).get("dimensions") == "symbolic"
    ]


# -------------------------------------------------------------------------- text


def _md_cell(s: str) -> str:
    return " ".join(s.split()).replace("|", "\\|")


def _tex(md: str) -> str:
    """Markdown with inline ``$...$`` math (the claims' texts) to LaTeX."""
    return notation.md_to_tex(" ".join(str(md).split()))


def _conditions(c: dict) -> list[str]:
    """The claim's conditions, the standing assumption on gates (stated once, in the setting)
    named rather than repeated."""
    from .claims._gates import GATE_CONDITION

    return [
        "the standing assumption on gates (they read only structural channels)"
        if x == GATE_CONDITION
        else x
        for x in c.get("conditions") or []
    ]


def _note(c: dict) -> str:
    """The claim's note without the standing assumption on gates (stated in the setting)."""
    from .claims._gates import GATE_NOTE

    return (c.get("status_note") or "").replace(GATE_NOTE, "").strip()


def _tex_heading(md: str) -> str:
    """A heading's LaTeX: math kept for the page, plain text for the PDF bookmarks."""
    parts = re.split(r"(\$[^$]+\$)", " ".join(md.split()))
    return "".join(
        rf"\texorpdfstring{{{tex_unicode(p)}}}{{{tex_escape(notation.plain_text(p))}}}"
        if i % 2
        else tex_escape(p)
        for i, p in enumerate(parts)
    )


#: Paragraphs of the setting the appendix leaves out, by their first words: the engines'
#: log-space gates (code, not mathematics), and what claims state in full in their own
#: sections (the constructions of C1 and C3, the curve of L4 and L5, the reachable weights of
#: G1, depth and training).
_NOT_IN_APPENDIX = (
    "The engines keep gates",
    "**Construction.**",
    "**Causal WPGD.**",
    "The minimisers are found on the curve",
    "**Reachable weights.**",
    "$\\mathcal L^*_L$ is the infimum",
)


def _setting_paragraphs() -> list[tuple[str, list[str]]]:
    """``(title, paragraphs)`` of the setting as the appendix shows it: the sections of
    :data:`notation.SETTING` after its scope, without the paragraphs of
    :data:`_NOT_IN_APPENDIX` and without sentences about files and code."""
    out = []
    for sec in notation.SETTING[1:]:
        kept = [_paper_paragraph(p) for p in sec.paragraphs if not p.startswith(_NOT_IN_APPENDIX)]
        if kept:
            out.append((sec.title, kept))
    return out


def _paper_paragraph(p: str) -> str:
    """A paragraph of the setting without its sentences about files and code (the appendix
    points to the repository once, in its *Reproducing* paragraph)."""
    sentences = re.split(r"(?<=[.;])\s+(?=[A-Z*(])", p)
    keep = [s for s in sentences if "`" not in s and not s.startswith("In code")]
    return " ".join(keep)


def _short_source(src: str) -> str:
    """A claim's source with the abstract's sentences replaced by their labels (S1-S5, quoted
    once in the setting) and the prior result by its name."""
    from .sources import AHN_2023

    for i, (sentence, _topic) in enumerate(notation.ABSTRACT_SENTENCES, 1):
        src = src.replace(sentence, f"[S{i}]")
    src = re.sub(
        r'abstract: "((?:\[S\d\]\s*)+)"',
        lambda m: "abstract, " + ", ".join(re.findall(r"S\d", m.group(1))),
        src,
    )
    return src.replace(AHN_2023, "Ahn et al. 2023")


def _sources() -> tuple[list[str], list[tuple[str, str]]]:
    """(the references, cited up to their venue and year, the abstract's sentences as (label,
    sentence)); what each reference is used for is said where it is used."""
    refs = [
        re.split(r"(?<=\b(?:19|20)\d\d)\b", text, maxsplit=1)[0] + "."
        for name, text in notation.SOURCES
        if name != "derived here"
    ]
    sentences = [(f"S{i}", s) for i, (s, _t) in enumerate(notation.ABSTRACT_SENTENCES, 1)]
    return refs, sentences


def _run_facts(report: dict) -> list[tuple[str, str]]:
    s, st, v = report["summary"], report["settings"], report["versions"]
    seconds = f" ({s['seconds']:.0f} s of checks)" if "seconds" in s else ""
    versions = ", ".join(
        f"{name} {v[key]}"
        for key, name in (
            ("python", "Python"),
            ("numpy", "NumPy"),
            ("scipy", "SciPy"),
            ("sympy", "SymPy"),
            ("cvxpy", "cvxpy"),
            ("matplotlib", "Matplotlib"),
        )
        if key in v
    )
    return [
        ("profile", f"{st.get('profile')} (seed {st.get('seed')})"),
        ("result", f"{s['passed']} of {s['claims']} claims pass their checks" + seconds),
        (
            "software",
            f"gla-verify {v.get('gla-verify', '?')}"
            + (f", commit {v['git']}" if v.get("git") else ""),
        ),
        ("versions", versions),
        ("generated", str(report.get("created", ""))),
    ] + _texts_fact(report)


def _texts_fact(report: dict) -> list[tuple[str, str]]:
    """The first-page line saying the claims' texts (and, as always, the figures) are newer
    than the run, when they are."""
    t = report.get("claim_texts")
    if not t:
        return []
    at = f"gla-verify {t.get('gla-verify', '?')}" + (f", commit {t['git']}" if t.get("git") else "")
    return [("rendered", f"by {at}: claim texts and figures as of then, evidence as recorded")]


_INTRO = (
    "Each claim is checked by two independent legs. The *theory* leg derives it with SymPy: a "
    "proof for symbolic sizes where one exists (every step a rewrite rule of a matrix engine, each "
    "rule checked against a coordinate-wise Wick engine; `--detail` lists the steps), else "
    "identities on explicit sizes; "
    "displayed closed forms are SymPy's expressions as `sympy.latex` prints them. The *numerics* "
    "leg recomputes the claim with NumPy, SciPy or cvxpy: a second implementation, a closed form, "
    "a Monte Carlo estimate with its standard error, a certified optimum, or a search that must "
    "find nothing. A claim's *verdict* says how the claim as first posed holds: as stated; with "
    "an added condition; in a restricted setting; or false. Where the checks changed a claim, the "
    "statement is the corrected one and its note says what changed."
)

_REPRODUCE = (
    "Everything here comes from one verification run: `gla-verify appendix --full --seed 0` "
    "reruns it, `gla-verify appendix --from R.json` renders a saved report. Its report, "
    "`results.json` beside this file, holds every check with every criterion and tolerance; "
    "`figures/NAME.csv` the data figure NAME plots; `--detail` adds a section with every check."
)


# ---------------------------------------------------------------------- markdown


def _md_claims_table(report: dict) -> list[str]:
    L = ["| id | claim | verdict | condition | evidence |", "|---|---|---|---|---|"]
    for c in report["claims"]:
        label, cond = _verdict_parts(c)
        L.append(
            f"| {c['id']} | {_md_cell(c['title'])} | {label} | {_md_cell(cond)} | "
            f"{_md_cell(claim_summary(c).md())} |"
        )
    return L


def _md_claim(c: dict, figs: Sequence[tuple[Figure, str]], formulas) -> list[str]:
    label, _cond = _verdict_parts(c)  # the condition is in the claims table
    L = [
        "",
        f"### {c['id']}: {c['title']}",
        "",
        f"**Verdict: {label}.**",
        "",
        f"> **Claim {c['id']}.** " + " ".join(c["statement"].split()),
        "",
    ]
    if c.get("conditions"):
        L += ["*Conditions:* " + "; ".join(" ".join(x.split()) for x in _conditions(c)) + ".", ""]
    L += [f"*Source:* {' '.join(_short_source(c['source']).split())}.", ""]
    if _note(c):
        L += [f"*Note:* {' '.join(_note(c).split())}", ""]
    L += _md_derivation(c, formulas)
    for f, cap in figs:
        if f.claim_id == c["id"]:
            L += [
                f"![{f.title}](figures/{f.name}.png)",
                "",
                f"*Figure {f.name}: {f.title}.* {_caption_md(f, cap)}",
                "",
            ]
    L += ["**Evidence.**", "", "| leg | checks | result |", "|---|---|---|"]
    for leg, n, ok, phrase in leg_rows(c):
        L.append(f"| {leg} | {n} | {'' if ok else '**FAIL** '}{_md_cell(phrase.md())} |")
    return L


def _md_derivation(c: dict, formulas) -> list[str]:
    L: list[str] = []
    for e in _general_proofs(c):
        f = e["figures"]
        L += [
            f"**Proof for symbolic {', '.join(f.get('symbols', []))}** "
            f"(every step a rule of the matrix engine, each rule checked against the Wick engine):",
            "",
        ]
        for k, st in enumerate(f.get("trace", []), 1):
            app = f" (×{st['applications']})" if st["applications"] > 1 else ""
            L.append(f"{k}. {st['rule']}{app}" + (f": ${st['latex']}$" if st["latex"] else ""))
        if f.get("lemmas"):
            L += ["", "Standard facts used: " + "; ".join(f["lemmas"]) + "."]
        L.append("")
    derived, verified = _derivation_formulas(c, formulas)
    for head, shown in ((_VERIFIED, verified), (_DERIVED, derived)):
        if shown:
            L += [head + ":", ""]
            for tex in shown:
                L += ["$$", tex, "$$", ""]
    return L


def _md_detail(report: dict) -> list[str]:
    L = ["", "## Every check", ""]
    for c in report["claims"]:
        L += [f"### {c['id']}", "", "| check | leg | kind | result |", "|---|---|---|---|"]
        for e in c["evidence"]:
            ok = "" if e["passed"] else "**FAIL** "
            L.append(
                f"| {_md_cell(e['check'])} | {e['leg']} | {e['kind']} | {ok}{_md_cell(check_sentence(e).md())} |"
            )
        L.append("")
    return L


def render_markdown(
    report: dict,
    figs: Sequence[tuple[Figure, str]],
    formulas: Sequence[tuple[str, str, str]] = (),
    *,
    detail: bool = False,
) -> str:
    """``appendix.md``: the run, the setting and symbols, the claims table, one section per
    claim (with the same verdicts, formulas whole), and with ``detail`` every check."""
    L = ["# Appendix: verification of the claims", ""]
    L += [f"* **{k}:** {v}" for k, v in _run_facts(report)]
    L += ["", _INTRO, "", f"**Reproducing.** {_REPRODUCE}", "", "## Setting and notation", ""]
    for title, paragraphs in _setting_paragraphs():
        L += [f"**{title}.** " + " ".join(paragraphs), ""]
    refs, sentences = _sources()
    L += ["**Sources.** " + " ".join(f"({i}) {r}" for i, r in enumerate(refs, 1)), ""]
    L += ["Of (1) only the abstract was read; the claims make these of its sentences precise:", ""]
    L += [f'* **{lab}** "{sen}"' for lab, sen in sentences]
    L += ["", "**Other symbols.**", "", "| symbol | meaning |", "|---|---|"]
    used = _used_math(report, figs, formulas)
    L += [f"| ${s.latex}$ | {_md_cell(s.meaning)} |" for s in _glossary(used)]
    L += ["", "## Claims", ""] + _md_claims_table(report)
    L += ["", "## The claims one by one"]
    for c in report["claims"]:
        L += _md_claim(c, figs, formulas)
    if detail:
        L += _md_detail(report)
    return "\n".join(L) + "\n"


# ------------------------------------------------------------------------- LaTeX

_P = r">{\raggedright\arraybackslash}p"


def _tex_claims_table(report: dict) -> list[str]:
    L = [
        r"{\footnotesize",
        r"\setlength{\tabcolsep}{3pt}",
        rf"\begin{{longtable}}{{@{{}}l{_P}{{0.25\linewidth}}{_P}{{0.36\linewidth}}{_P}{{0.31\linewidth}}@{{}}}}",
        r"\caption{The claims: verdict, the condition or restriction found, and the key evidence "
        r"(the general proof; the numerical check closest to its bound).}\label{tab:claims}\\",
        r"\toprule",
        r"id & claim & verdict & evidence \\ \midrule",
        r"\endfirsthead",
        r"\toprule id & claim & verdict & evidence \\ \midrule",
        r"\endhead",
        r"\bottomrule",
        r"\endlastfoot",
    ]
    for c in report["claims"]:
        label, cond = _verdict_parts(c)
        verdict = r"\textbf{" + tex_escape(label) + "}" + (": " + _tex(cond) if cond else "")
        L.append(
            rf"\hyperref[sec:{c['id']}]{{{tex_escape(c['id'])}}} & {_tex(c['title'])} & {verdict} & "
            f"{claim_summary(c).tex()} \\\\"
        )
        L.append(r"\addlinespace[2pt]")
    L += [r"\end{longtable}", "}", ""]
    return L


def _trace_body(latex: str) -> str:
    """A proof step's formula: inline, or displayed and broken across lines when wide; a step
    whose "formula" is a sentence (words, no control sequences) is set as text."""
    if not latex:
        return ""
    if re.search(r"[A-Za-z]{3,} [a-z]{2,} [a-z]{2,}", latex) and "\\" not in latex:
        return ": " + tex_escape(latex)
    if tex_width(latex) > FORMULA_WIDTH - 6:
        return ":" + display_tex(latex)
    return f": ${tex_unicode(latex)}$"


def _tex_trace(e: dict) -> list[str]:
    """A proof for symbolic sizes step by step, for the ``--detail`` section (a claim's section
    gives its number of steps in the theory row: the appendix's page budget)."""
    f = e["figures"]
    L = [
        rf"A proof for symbolic ${', '.join(f.get('symbols', []))}$ in engine steps:",
        r"\begin{enumerate}\setlength{\itemsep}{0pt}\setlength{\parskip}{0pt}\small",
    ]
    for st in f.get("trace", []):
        app = rf" ($\times{st['applications']}$)" if st["applications"] > 1 else ""
        # rule names carry inline math (``$P=P_q^\top P_k$``): text escaped, math kept
        L.append(r"\item \textsf{" + _tex(st["rule"]) + "}" + app + _trace_body(st["latex"]))
    L.append(r"\end{enumerate}")
    if f.get("lemmas"):
        L.append(r"{\small Standard facts used: " + _tex("; ".join(f["lemmas"])) + r".\par}")
    return L


def _is_latex(cap: str) -> bool:
    """Whether a caption is LaTeX (math in ``$...$``, file names in ``\\texttt``) rather than
    plain text, which is escaped."""
    return "$" in cap or "\\" in cap


def _title_tex(title: str) -> str:
    """A figure title: Markdown with math, or a plain title whose ASCII math is set as math."""
    return _tex(title) if "$" in title else ascii_math(title).tex()


def _caption_tex(f: Figure, cap: str) -> str:
    """The caption as LaTeX (where a figure's plotted data are is said once, in the
    *Reproducing* paragraph: ``figures/NAME.csv``)."""
    body = tex_unicode(" ".join(cap.split())) if _is_latex(cap) else tex_escape(cap)
    return rf"\textbf{{{_title_tex(f.title)}.}} {body}"


def _caption_md(f: Figure, cap: str) -> str:
    """The caption for Markdown: ``\\texttt{x}`` as code, LaTeX escapes undone, math kept."""
    text = " ".join(cap.split())
    if _is_latex(cap):
        text = re.sub(
            r"\\texttt\{((?:[^{}]|\{[^{}]*\})*)\}", lambda m: "`" + m.group(1) + "`", text
        )
        text = re.sub(r"\\([_%&#])", r"\1", text)
    return text


#: Where a figure may go: here if it fits, else at the top or bottom of a page, else on a page
#: of figures; placed right after its claim's statement and note, it stays in or next to its
#: claim's section (a barrier before each claim would end pages early, a [H] leave gaps).
FIGURE_PLACEMENT = "!htbp"


def _tex_figure(f: Figure, cap: str) -> list[str]:
    return [
        rf"\begin{{figure}}[{FIGURE_PLACEMENT}]",
        r"\centering\small",  # the caption in \small: what is plotted, marks, settings, data
        rf"\includegraphics{{figures/{f.name}.pdf}}",
        rf"\caption{{{_caption_tex(f, cap)}}}",
        rf"\label{{fig:{f.name}}}",
        r"\end{figure}",
    ]


def _tex_claim(c: dict, figs: Sequence[tuple[Figure, str]], formulas) -> list[str]:
    label, _cond = _verdict_parts(c)
    L = [
        "",
        rf"\subsection{{{tex_escape(c['id'])}: {_tex_heading(c['title'])}}}\label{{sec:{c['id']}}}",
        r"{\sloppy\noindent\textbf{Verdict: " + tex_escape(label) + r".}\ "
        rf"\textbf{{Claim {tex_escape(c['id'])}.}}\ \textit{{"
        + tex_unicode(" ".join(c["statement"].split()))
        + r"}\par}\smallskip",
    ]
    meta = []
    if c.get("conditions"):
        meta.append(r"\emph{Conditions:} " + "; ".join(_tex(x) for x in _conditions(c)) + ".")
    meta.append(r"\emph{Source:} " + _tex(_short_source(c["source"])) + ".")
    if _note(c):
        meta.append(r"\emph{Note:} " + _tex(_note(c)))
    mine = [(f, cap) for f, cap in figs if f.claim_id == c["id"]]
    if mine:
        meta.append(_see_figures([f.name for f, _ in mine]))
    L += [r"{\small\noindent " + " ".join(meta) + r"\par}", ""]
    # placed before the derivation: a figure that does not fit here floats to the top of the
    # next page, still within its claim's section
    for f, cap in mine:
        L += _tex_figure(f, cap)
    L += _tex_derivation(c, formulas)
    L += [
        # one row per leg: the leg, its number of checks, what they found (a rule above: the
        # claim's evidence, set apart from its derivation)
        r"\par\smallskip\noindent{\small",
        rf"\begin{{tabular}}{{@{{}}lr{_P}{{0.75\linewidth}}@{{}}}}",
        r"\midrule",
    ]
    for leg, n, ok, phrase in leg_rows(c):
        fail = "" if ok else r"\textbf{FAIL} "
        L.append(f"{leg} & {n} {'check' if n == 1 else 'checks'} & {fail}{phrase.tex()} \\\\")
    L += [r"\end{tabular}}\par"]
    return L


def _see_figures(names: Sequence[str]) -> str:
    r"""The sentence that references a claim's figures.

    >>> _see_figures(["a"]), _see_figures(["a", "b", "c"])
    ('See Figure~\\ref{fig:a}.', 'See Figures~\\ref{fig:a}, \\ref{fig:b} and~\\ref{fig:c}.')
    """
    refs = [rf"\ref{{fig:{n}}}" for n in names]
    if len(refs) == 1:
        return f"See Figure~{refs[0]}."
    return "See Figures~" + ", ".join(refs[:-1]) + f" and~{refs[-1]}."


def _tex_derivation(c: dict, formulas) -> list[str]:
    derived, verified = _derivation_formulas(c, formulas)
    if not derived and not verified:
        return []
    # in \small, as the conditions and notes: the statement above is the claim, this its proof
    L = [r"{\small\noindent\textbf{Derivation.}"]
    for head, shown in ((_VERIFIED, verified), (_DERIVED, derived)):
        if shown:
            L.append(_tex(head) + ":")
            L.append(display_group(shown, style=r"\textstyle "))
    return L + [r"\par}"]


def _tex_setting(used: str | None = None) -> list[str]:
    """The setting (:func:`_setting_paragraphs`), the sources with the abstract's sentences
    run in, and the symbols as one run-in list: every symbol defined once, in little space."""
    L = [r"\subsection{Setting and notation}\label{sec:notation}"]
    for title, paragraphs in _setting_paragraphs():
        L += [r"\paragraph{" + _tex(title) + ".} " + " ".join(_tex(p) for p in paragraphs), ""]
    refs, sentences = _sources()
    L += [
        r"\paragraph{Sources.} "
        + " ".join(f"({i}) {_tex(r)}" for i, r in enumerate(refs, 1))
        + " Of (1) only the abstract was read; the claims make these of its sentences precise:",
        "",
        r"{\small\noindent "
        + " ".join(rf"\textbf{{{lab}}}~``{_tex(sen)}''" for lab, sen in sentences)
        + r"\par}",
        "",
        r"\paragraph{Other symbols.}{\small "
        + "; ".join(
            r"$" + tex_unicode(s.latex).replace(", ", r",\allowbreak ") + "$: " + _tex(s.meaning)
            for s in _glossary(used)
        )
        + r".\par}",
    ]
    return L


#: The symbols the setting's prose above defines completely (by :attr:`notation.Symbol.symbol`):
#: the appendix's glossary leaves them out, so that every symbol is defined once. A symbol
#: with a second meaning somewhere (``L``, ``M``, ``a, b, c``, ...) stays in the glossary,
#: which says where. A test checks that each occurs in the setting's formulas.
SETTING_DEFINES = (
    "n", "d", "K", "m_k", "ℓ", "X", "q_t, k_t, v_t", "W_q, W_k, W_v", "o_t", "G_t", "γ_t",
    "GLA_ℓ", "𝟏", "ℝ", "Ω", "ŷ", "Σ", "λ_k", "β_i, β", "R", "ξ_i, ξ", "σ", "𝒩", "r",
    "A", "B", "Γ", "ρ_k", "E (matrix)",
)  # fmt: skip


def _glossary(used: str | None = None) -> list[notation.Symbol]:
    """The symbols of :data:`notation.SYMBOLS` the setting does not define
    (:data:`SETTING_DEFINES`), in their order; with ``used`` (the appendix's math, see
    :func:`_used_math`), only those that occur in it (:func:`symbol_used`)."""
    return [
        s
        for s in notation.SYMBOLS
        if s.symbol not in SETTING_DEFINES and (used is None or symbol_used(s, used))
    ]


def symbol_used(sym: notation.Symbol, math: str) -> bool:
    r"""Whether one of the forms of ``sym`` (its ``latex``, split at ", ") occurs in ``math``
    (LaTeX math, ``$``-delimited pieces): a single letter as a token of the math
    (:func:`notation.math_tokens`), anything longer as written (spaces ignored).

    >>> symbol_used(notation.symbol("omega"), "$a=r^\\top\\omega$")
    True
    >>> symbol_used(notation.SYMBOLS[2], "$\\mathcal N(0,1)$")  # N: not the normal law's N
    False
    """
    flat = "".join(re.findall(r"\$([^$]+)\$", math)).replace(" ", "")
    tokens = notation.math_tokens(math)
    for form in (f.strip() for f in sym.latex.split(", ")):
        if re.fullmatch(r"[A-Za-z]", form):
            if form in tokens:
                return True
        elif form.replace(" ", "") in flat:
            return True
    return False


def _used_math(report: dict, figs: Sequence[tuple[Figure, str]], formulas) -> str:
    """The math the appendix shows outside its glossary: the setting, the claims' texts,
    derived formulas, evidence sentences and captions (``$``-delimited)."""
    parts = [p for _t, ps in _setting_paragraphs() for p in ps]
    for c in report["claims"]:
        parts += [c.get("statement", ""), c.get("status_note", ""), c.get("title", "")]
        parts += [c.get("verdict_condition", "")] + list(c.get("conditions") or [])
        parts += [claim_summary(c).md()] + [ph.md() for *_x, ph in leg_rows(c)]
    parts += [f"${t}$" for _c, _n, t in formulas] + [cap for _f, cap in figs]
    return " ".join(parts)


def _tex_detail(report: dict) -> list[str]:
    L = [r"\subsection{Every check}\label{sec:detail}"]
    for c in report["claims"]:
        L += [
            r"{\footnotesize",
            rf"\begin{{longtable}}{{@{{}}{_P}{{0.38\linewidth}}{_P}{{0.13\linewidth}}"
            rf"{_P}{{0.42\linewidth}}@{{}}}}",
            rf"\multicolumn{{3}}{{@{{}}l}}{{\textbf{{{tex_escape(c['id'])}}}}}\\ \toprule",
            r"check & leg, kind & result \\ \midrule",
        ]
        for e in c["evidence"]:
            ok = "" if e["passed"] else r"\textbf{FAIL} "
            L.append(
                f"{tex_escape(e['check'])} & {e['leg']}, {e['kind']} & {ok}{check_sentence(e).tex()} \\\\"
            )
        L += [r"\bottomrule", r"\end{longtable}", "}"]
        for e in _general_proofs(c):
            L += _tex_trace(e)
    return L


def render_tex(
    report: dict,
    figs: Sequence[tuple[Figure, str]],
    formulas: Sequence[tuple[str, str, str]] = (),
    *,
    detail: bool = False,
) -> str:
    """``appendix.tex``: the same content as :func:`render_markdown`, as an ``\\input``-able
    section (needs amsmath, amssymb, graphicx, booktabs, longtable, array, hyperref)."""
    L = [
        r"% Generated by gla-verify appendix; do not edit by hand.",
        # long formulas and identifiers in narrow columns: stretch spaces rather than overflow
        r"\begingroup\tolerance=2000\emergencystretch=3em",
        r"\section{Verification of the claims}\label{sec:verification}",
        # the run, in one run-in paragraph
        r"{\small\noindent "
        + "; ".join(rf"\textbf{{{k}:}} {tex_escape(v)}" for k, v in _run_facts(report))
        + r".\par}\smallskip",
    ]
    L += [
        "",
        _tex(_INTRO),
        "",
        r"{\sloppy\paragraph{Reproducing.} " + _tex(_REPRODUCE) + r"\par}",
        "",
    ]
    L += _tex_setting(_used_math(report, figs, formulas))
    L += [r"\subsection{The claims}\label{sec:claims}"]
    L += [
        "Table~\\ref{tab:claims} lists the claims with their verdicts; "
        "Sections~\\ref{sec:"
        + report["claims"][0]["id"]
        + "}--\\ref{sec:"
        + report["claims"][-1]["id"]
        + "} take them one by one."
        if report["claims"]
        else ""
    ]
    L += _tex_claims_table(report)
    for c in report["claims"]:
        L += _tex_claim(c, figs, formulas)
    if detail:
        L += _tex_detail(report)
    L.append(r"\endgroup")
    return "\n".join(L) + "\n"


def standalone(text_width_in: float = TEXT_WIDTH_IN) -> str:
    """``appendix_standalone.tex``: a document around ``appendix.tex`` in the page layout of a
    NeurIPS or COLM paper (10 pt, a 9 in text height, the compact section headings of
    their style files) at the text width the figures are drawn for (figures are included at
    their natural size, so their fonts print at the size they were drawn); its page count is
    the appendix's length in such a paper."""
    return (
        "\\documentclass[10pt]{article}\n"
        f"\\usepackage[letterpaper,textwidth={text_width_in}in,textheight=9in]{{geometry}}\n"
        "\\usepackage{amsmath,amssymb,graphicx,booktabs,longtable,array}\n"
        "\\usepackage[hidelinks]{hyperref}\n"
        # the headings of the conference style files: bold, body-sized subsections, small skips
        "\\makeatletter\n"
        "\\renewcommand\\section{\\@startsection{section}{1}{\\z@}{-2ex plus -0.5ex minus -0.2ex}"
        "{1ex plus 0.2ex}{\\large\\bfseries\\raggedright}}\n"
        "\\renewcommand\\subsection{\\@startsection{subsection}{2}{\\z@}{-1.5ex plus -0.5ex minus "
        "-0.2ex}{0.5ex plus 0.2ex}{\\normalsize\\bfseries\\raggedright}}\n"
        "\\renewcommand\\paragraph{\\@startsection{paragraph}{4}{\\z@}{1.5ex plus 0.5ex minus "
        "0.2ex}{-1em}{\\normalsize\\bfseries}}\n"
        "\\makeatother\n"
        # figures sit with their claims: let a page take more of them before floating away
        "\\renewcommand{\\topfraction}{0.9}\\renewcommand{\\bottomfraction}{0.8}\n"
        "\\renewcommand{\\textfraction}{0.07}\\renewcommand{\\floatpagefraction}{0.6}\n"
        "\\setcounter{topnumber}{3}\\setcounter{totalnumber}{4}\n"
        "\\setlength{\\abovecaptionskip}{4pt}\\setlength{\\floatsep}{8pt plus 2pt}\n"
        "\\setlength{\\textfloatsep}{10pt plus 2pt}\\setlength{\\intextsep}{8pt plus 2pt}\n"
        "\\begin{document}\n"
        "\\appendix\n"
        "\\input{appendix.tex}\n"
        "\\end{document}\n"
    )


# ------------------------------------------------------------------------- driver


def _draw_figures(report: dict, tmp: Path, data_dir: Path, progress) -> list[tuple[Figure, str]]:
    import matplotlib

    matplotlib.use("Agg")
    figs = []
    for f, entry in report_figures(report):
        progress(f"figure {f.name}: {f.title}")
        t0 = time.perf_counter()
        cap = f.make(entry, tmp, data_dir)
        if cap is None:
            progress("  skipped: its data is not available")
            continue
        figs.append((f, cap))
        progress(f"  done in {time.perf_counter() - t0:.1f}s")
    return figs


def _height_in(pdf: Path) -> float:
    """The height of a figure's PDF in inches (its first MediaBox); 0 when unreadable."""
    try:
        box = re.search(
            rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", pdf.read_bytes()
        )
    except OSError:
        return 0.0
    return (float(box.group(4)) - float(box.group(2))) / 72.0 if box else 0.0


def tallest_last(figs: Sequence[tuple[Figure, str]], figdir: Path) -> list[tuple[Figure, str]]:
    """The figures in claim order and, within a claim, shortest first (their PDFs in
    ``figdir``): a claim's short figures can then share a page, and its tallest does not hold
    them back (LaTeX places figures in order)."""
    first: dict[str, int] = {}
    for i, (f, _) in enumerate(figs):
        first.setdefault(f.claim_id, i)
    return sorted(
        figs, key=lambda fc: (first[fc[0].claim_id], _height_in(figdir / f"{fc[0].name}.pdf"))
    )


def build_appendix(
    out: str | os.PathLike,
    report: dict,
    *,
    progress: Callable[[str], None] = print,
    figures: bool = True,
    detail: bool = False,
    data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
) -> Path:
    """Write the appendix for ``report`` into ``out``, replacing it as a whole; figures drawn
    from data files read ``data_dir`` (default ``docs/data`` of the working directory);
    ``detail`` adds the section listing every check.

    ``out`` must be absent, empty or gla-verify's own (carry :data:`output.MARKER`); the
    swap is journalled, locked and umask-respecting (:func:`proofs_check.output.replace_dir`).
    """
    out = Path(out)
    with replace_dir(out, progress=progress) as tmp:
        figs = _draw_figures(report, tmp, Path(data_dir), progress) if figures else []
        figs = tallest_last(figs, tmp / "figures")
        formulas = derived_formulas(report)
        write_json(tmp / "results.json", report)
        (tmp / "appendix.md").write_text(
            render_markdown(report, figs, formulas, detail=detail), encoding="utf-8"
        )
        (tmp / "appendix.tex").write_text(
            render_tex(report, figs, formulas, detail=detail), encoding="utf-8"
        )
        (tmp / "appendix_standalone.tex").write_text(standalone(), encoding="utf-8")
    return out


def load_report(path: str | os.PathLike[str]) -> dict:
    """Read ``path`` and validate it against the report schema (:mod:`proofs_check.schema`);
    raises :class:`proofs_check.output.UsageError` naming the first problem."""
    return _load_report(path)


#: The fields of a claim's report entry that are text about the claim, not evidence:
#: :func:`with_current_texts` takes them from the registry.
TEXT_FIELDS = ("title", "statement", "conditions", "source", "status_note", "verdict_condition")


def with_current_texts(report: dict) -> dict:
    """A copy of ``report`` whose claims carry the texts (:data:`TEXT_FIELDS`) of the claims as
    registered now, for editorial changes made after the run; the evidence, statuses and
    verdicts stay the recorded ones. ``report["claim_texts"]`` records where the texts come
    from (this tool's version and commit), and the appendix's first page says so.

    Raises :class:`proofs_check.output.UsageError` for a claim that is no longer registered or
    whose registered verdict differs from the recorded one (that is not an editorial change:
    rerun the claim).
    """
    from .output import UsageError
    from .registry import all_claims
    from .report import package_versions

    claims = all_claims()
    out = dict(report, claims=[dict(c) for c in report["claims"]])
    for c in out["claims"]:
        k = claims.get(c["id"])
        if k is None:
            raise UsageError(f"--current-texts: claim {c['id']} of the report is not registered")
        if c.get("verdict", k.verdict) != k.verdict:
            raise UsageError(
                f"--current-texts: the verdict of claim {c['id']} was recorded as "
                f"{c['verdict']!r} and is registered as {k.verdict!r} now; rerun the claim"
            )
        c.update(
            {f: list(k.conditions) if f == "conditions" else getattr(k, f) for f in TEXT_FIELDS}
        )
    v = package_versions()
    out["claim_texts"] = {"gla-verify": v["gla-verify"], "git": v.get("git", "")}
    return out


def report_from_run(
    ids: Sequence[str], *, seed: int, profile: str, progress: Callable[[str], None]
) -> dict:
    """Run the claims ``ids`` (validated first) and return the report as JSON-ready data."""
    from .cli import _run_validated  # seed, profile and ids checked first (UsageError)

    return _run_validated(ids, seed=seed, profile=profile, progress=progress).to_json()
