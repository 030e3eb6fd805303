r"""``gla-verify appendix``: turn a verification report into a paper appendix.

Writes, into ``--out DIR``:

* ``appendix.tex``: ``\input``-able body (``appendix_standalone.tex`` wraps it in a
  document that compiles with plain ``pdflatex`` and standard packages);
* ``appendix.md``: the same content for GitHub;
* both open with the notation (the symbol table of :mod:`proofs_check.notation`);
* ``figures/*.pdf`` and ``figures/*.png`` (matplotlib, Agg backend);
* ``results.json``: the verification report the appendix was built from.

Formulas are rendered from the SymPy derivations with ``sympy.latex``, never retyped.
The whole directory is built in a temporary sibling directory and swapped in at the
end (journalled and locked, see :mod:`proofs_check.output`), so an interrupted run leaves
the previous appendix intact or lets the next run complete the swap. Only a directory
carrying gla-verify's marker file is ever replaced.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .api import DEFAULT_DATA_DIR
from .notation import render_notation_md, render_notation_tex
from .output import replace_dir
from .registry import Figure
from .report import write_json
from .schema import load_report as _load_report

__all__ = [
    "tex_escape",
    "tex_unicode",
    "key_figure",
    "headline",
    "verdict_text",
    "VERDICT_LABELS",
    "report_figures",
    "derived_formulas",
    "render_markdown",
    "render_tex",
    "build_appendix",
    "load_report",
    "report_from_run",
    "STANDALONE",
]


# --------------------------------------------------------------------------- text

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def tex_escape(s: str) -> str:
    """Escape plain text for LaTeX (not for math); non-ASCII symbols become ASCII LaTeX."""
    return tex_unicode("".join(_TEX_SPECIAL.get(ch, ch) for ch in s))


def tex_unicode(s: str) -> str:
    """Replace non-ASCII characters by LaTeX that works in text and in math mode
    (``\\ensuremath``), so the appendix compiles with plain pdflatex and no unicode set-up.
    Characters without a mapping become ``?`` (a test keeps the claims free of them)."""
    out = []
    for ch in s:
        if ord(ch) < 128:
            out.append(ch)
        elif ch in _UNICODE_TEXT:
            out.append(_UNICODE_TEXT[ch])
        elif ch in _UNICODE_MATH:
            out.append(r"\ensuremath{" + _UNICODE_MATH[ch] + "}")
        else:
            out.append("?")
    return "".join(out)


_UNICODE_TEXT = {
    "§": r"\S{}",
    "–": "--",
    "—": "---",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "…": r"\dots{}",
    "−": "-",
    "é": r"\'e",
    "ü": r"\"u",
    "ö": r"\"o",
    "ä": r"\"a",
}
_UNICODE_MATH = {
    "ω": r"\omega",
    "Ω": r"\Omega",
    "Σ": r"\Sigma",
    "σ": r"\sigma",
    "λ": r"\lambda",
    "ρ": r"\rho",
    "Γ": r"\Gamma",
    "γ": r"\gamma",
    "β": r"\beta",
    "φ": r"\varphi",
    "ξ": r"\xi",
    "δ": r"\delta",
    "κ": r"\kappa",
    "μ": r"\mu",
    "θ": r"\theta",
    "α": r"\alpha",
    "ε": r"\varepsilon",
    "τ": r"\tau",
    "Π": r"\Pi",
    "ℓ": r"\ell",
    "≤": r"\le",
    "≥": r"\ge",
    "≠": r"\ne",
    "⊙": r"\odot",
    "→": r"\to",
    "⇒": r"\Rightarrow",
    "⇔": r"\Leftrightarrow",
    "∝": r"\propto",
    "×": r"\times",
    "·": r"\cdot",
    "≈": r"\approx",
    "∈": r"\in",
    "∉": r"\notin",
    "∪": r"\cup",
    "∩": r"\cap",
    "ᵀ": r"^\top",
    "²": r"^2",
    "³": r"^3",
    "⁻": r"^-",
    "¹": r"^1",
    "≻": r"\succ",
    "⪰": r"\succeq",
    "∞": r"\infty",
    "±": r"\pm",
    "√": r"\surd",
    "‖": r"\|",
    "∑": r"\sum",
    "∏": r"\prod",
    "∂": r"\partial",
    "∇": r"\nabla",
    "⊗": r"\otimes",
    "≡": r"\equiv",
    "⊂": r"\subset",
    "⊆": r"\subseteq",
    "ŷ": r"\hat y",
    "₀": r"_0",
    "₁": r"_1",
    "₂": r"_2",
    "₃": r"_3",
    "₄": r"_4",
    "ₖ": r"_k",
    "ᵢ": r"_i",
    "ⱼ": r"_j",
    "ₙ": r"_n",
    "ₗ": r"_l",
    "∀": r"\forall",
    "∃": r"\exists",
    "↦": r"\mapsto",
}


def _fmt_num(x) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def key_figure(ev: dict) -> str:
    """The key figure of one check's evidence (its key criterion, as in the terminal table).

    >>> key_figure({"kind": "numeric", "key_figure": {"name": "rel_rms", "value": 1e-16, "limit": 1e-10, "op": "<="}})
    'rel_rms = 1e-16 (tol 1e-10)'
    >>> key_figure({"kind": "symbolic", "passed": True, "key_figure": {"name": "verified", "value": True,
    ...                                                                 "limit": True, "op": "=="}})
    'identity verified'
    """
    k = ev.get("key_figure")
    if not k:
        return (ev.get("detail") or "no criteria").splitlines()[0][:60]
    if ev.get("kind") == "symbolic" and k["name"] == "verified":
        return "identity verified" if ev.get("passed") else "identity FAILED"
    if k["op"] == "==":
        return f"{k['name']} = {_fmt_num(k['value'])}" + (
            "" if k["value"] is True else f" (want {_fmt_num(k['limit'])})"
        )
    return f"{k['name']} = {_fmt_num(k['value'])} (tol {_fmt_num(k['limit'])})"


def _closeness(ev: dict) -> float:
    """``|value| / limit`` of the evidence's passed upper-bound criteria (largest), else -1."""
    ratios = [
        abs(c["value"]) / c["limit"]
        for c in ev.get("criteria") or []
        if c["op"] in ("<=", "<")
        and c["passed"]
        and isinstance(c["value"], (int, float))
        and not isinstance(c["value"], bool)
        and isinstance(c["limit"], (int, float))
        and c["limit"] > 0
    ]
    return max(ratios, default=-1.0)


def headline(claim: dict) -> str:
    """The claim's key evidence: its first failed check, else the check closest to its tolerance."""
    evs = claim.get("evidence") or []
    if not evs:
        return "no evidence"
    failed = [e for e in evs if not e.get("passed")]
    if failed:
        return f"{failed[0]['check']}: {key_figure(failed[0])}"
    worst = max(evs, key=_closeness)
    n_sym = sum(e.get("kind") == "symbolic" for e in evs)
    if _closeness(worst) < 0:
        return f"{len(evs)} checks ({n_sym} symbolic), all pass"
    return f"{len(evs)} checks ({n_sym} symbolic); closest to tolerance: {key_figure(worst)}"


# ------------------------------------------------------------------------ figures


def report_figures(report: dict) -> list[tuple[Figure, dict | None]]:
    """The figures of the report's claims (with each claim's report entry), then the suite figures."""
    from .figures import SUITE_FIGURES
    from .registry import all_claims

    claims = all_claims()
    out = [(f, c) for c in report["claims"] if c["id"] in claims for f in claims[c["id"]].figures]
    return out + [(f, None) for f in SUITE_FIGURES]


# ----------------------------------------------------------------------- formulas


def derived_formulas(report: dict) -> list[tuple[str, str]]:
    """(name, LaTeX) pairs rendered by ``sympy.latex`` from the formulas of the report's claims."""
    from .formulas import collect
    from .registry import all_claims

    claims = all_claims()
    return collect([claims[c["id"]] for c in report["claims"] if c["id"] in claims])


# ------------------------------------------------------------------------ writers


def _status(c: dict) -> str:
    return "pass" if c["status"] == "pass" else "FAIL"


VERDICT_LABELS = {
    "as-stated": "holds as stated",
    "with-condition": "holds with an added condition",
    "restricted": "holds in a restricted setting",
    "false": "false (counterexample)",
}


def verdict_text(c: dict) -> str:
    """The claims-table verdict of one claim: its recorded verdict in words and its condition.

    A claim whose checks failed in this run reads ``FAIL``, whatever its recorded verdict; a
    report written before verdicts were recorded falls back to the run status.

    >>> verdict_text({"status": "pass", "verdict": "restricted", "verdict_condition": "only for L = 1"})
    'holds in a restricted setting: only for L = 1'
    >>> verdict_text({"status": "FAIL", "verdict": "as-stated"})
    'FAIL'
    """
    if c["status"] != "pass" or "verdict" not in c:
        return _status(c)
    label = VERDICT_LABELS[c["verdict"]]
    cond = c.get("verdict_condition", "")
    return f"{label}: {cond}" if cond else label


def _symbolic_proofs(c: dict) -> list[dict]:
    """The claim's passing evidence proved for symbolic dimensions (with a trace)."""
    return [
        e
        for e in c.get("evidence") or []
        if e.get("passed") and (e.get("figures") or {}).get("dimensions") == "symbolic"
    ]


def _proved_for(c: dict) -> str:
    """``symbolic n, d`` (the sizes kept symbolic by a general-dimension proof) or ``instances``."""
    evs = _symbolic_proofs(c)
    syms = [s for e in evs for s in (e.get("figures") or {}).get("symbols", [])]
    if not syms:
        return "instances"
    part = all((e.get("figures") or {}).get("scope", "whole") != "whole" for e in evs)
    return "symbolic " + ", ".join(dict.fromkeys(syms)) + (" (part of the claim)" if part else "")


def render_markdown(
    report: dict, figs: list[tuple[Figure, str]], formulas: list[tuple[str, str]]
) -> str:
    L = ["# Appendix: verification of the claims", ""]
    s = report["summary"]
    L.append(
        f"Generated by `{report.get('command', 'gla-verify')}` on {report['created']} "
        f"(seed {report['settings'].get('seed')}, profile {report['settings'].get('profile')}); "
        f"{s['passed']}/{s['claims']} claims pass. Package versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if k != "platform")
        + "."
    )
    L += [
        "",
        "## Notation",
        "",
        "The setting and every claim are stated in words in `docs/theory.md`.",
        "",
        render_notation_md("###"),
    ]
    L += [
        "",
        "## Claims",
        "",
        "| id | claim | source | verdict | proved for | key evidence |",
        "|---|---|---|---|---|---|",
    ]
    for c in report["claims"]:
        L.append(
            f"| {c['id']} | {c['title']} | {c['source']} | {verdict_text(c)} | {_proved_for(c)} | {headline(c)} |"
        )
    for c in report["claims"]:
        L += [
            "",
            f"### {c['id']}: {c['title']}",
            "",
            f"> **Claim {c['id']}.** " + " ".join(c["statement"].split()),
            "",
            f"*Source:* {c['source']}. *Status:* **{_status(c)}** ({c['seconds']} s).",
        ]
        if c.get("status_note"):
            L += ["", f"*Note:* {c['status_note']}"]
        L += ["", "| check | leg | kind | result | key figure |", "|---|---|---|---|---|"]
        for e in c["evidence"]:
            L.append(
                f"| {e['check']} | {e['leg']} | {e['kind']} | {'ok' if e['passed'] else 'FAIL'} | {key_figure(e)} |"
            )
        for e in _symbolic_proofs(c):
            f = e["figures"]
            L += [
                "",
                f"**Proof for symbolic {', '.join(f.get('symbols', []))}** ({e['check']}); every step is a rule "
                "of the matrix engine, each rule checked against the coordinate Wick engine:",
                "",
            ]
            for k, st in enumerate(f.get("trace", []), 1):
                app = f" (×{st['applications']})" if st["applications"] > 1 else ""
                L.append(f"{k}. {st['rule']}{app}" + (f": ${st['latex']}$" if st["latex"] else ""))
            if f.get("lemmas"):
                L += ["", "Standard facts used: " + "; ".join(f["lemmas"]) + "."]
    if formulas:
        L += ["", "## Derived formulas (rendered from the SymPy derivations)", ""]
        for name, tex in formulas:
            L += [f"**{name}**", "", "$$", tex, "$$", ""]
    if figs:
        L += ["", "## Figures", ""]
        for f, cap in figs:
            L += [f"![{f.title}](figures/{f.name}.png)", "", f"*Figure ({f.name}).* {cap}", ""]
    return "\n".join(L) + "\n"


def render_tex(
    report: dict, figs: list[tuple[Figure, str]], formulas: list[tuple[str, str]]
) -> str:
    s = report["summary"]
    L = [
        r"% Generated by gla-verify appendix; do not edit by hand.",
        r"% Needs: amsmath, amssymb, graphicx, booktabs, longtable, array.",
        r"\section*{Appendix: verification of the claims}",
        tex_escape(
            f"Generated on {report['created']} (seed {report['settings'].get('seed')}, profile "
            f"{report['settings'].get('profile')}); {s['passed']}/{s['claims']} claims pass."
        ),
        "",
        render_notation_tex(),
        r"\subsection*{Claims}",
        "",
        r"\begin{longtable}{@{}l>{\raggedright\arraybackslash}p{0.2\linewidth}>{\raggedright\arraybackslash}p{0.15\linewidth}"
        r">{\raggedright\arraybackslash}p{0.27\linewidth}>{\raggedright\arraybackslash}p{0.22\linewidth}@{}}",
        r"\toprule",
        r"id & claim & source & verdict & key evidence \\ \midrule",
        r"\endhead",
    ]
    for c in report["claims"]:
        L.append(
            " & ".join(
                [
                    tex_escape(c["id"]),
                    tex_escape(c["title"]),
                    tex_escape(c["source"]),
                    tex_escape(verdict_text(c)),
                    tex_escape(f"{headline(c)}; proved for {_proved_for(c)}"),
                ]
            )
            + r" \\"
        )
    L += [r"\bottomrule", r"\end{longtable}", ""]
    for c in report["claims"]:
        L += [
            rf"\subsection*{{{tex_escape(c['id'])}: {tex_escape(c['title'])}}}",
            r"\begin{quote}",
            rf"\textbf{{Claim {tex_escape(c['id'])}.}} " + tex_unicode(c["statement"].strip()),
            r"\end{quote}",
            tex_escape(f"Source: {c['source']}. Status: {_status(c)} ({c['seconds']} s)."),
        ]
        if c.get("status_note"):
            L += ["", r"\emph{Note:} " + tex_escape(c["status_note"])]
        L += [
            "",
            r"\begin{longtable}{@{}>{\raggedright\arraybackslash}p{0.42\linewidth}ll>{\raggedright\arraybackslash}p{0.33\linewidth}@{}}",
            r"\toprule",
            r"check & leg & result & key figure \\ \midrule",
        ]
        for e in c["evidence"]:
            L.append(
                " & ".join(
                    [
                        tex_escape(e["check"]),
                        e["leg"],
                        "ok" if e["passed"] else "FAIL",
                        tex_escape(key_figure(e)),
                    ]
                )
                + r" \\"
            )
        L += [r"\bottomrule", r"\end{longtable}", ""]
        for e in _symbolic_proofs(c):
            L += [
                e["detail"],
                "",
            ]  # theory.general.Proof.latex(): the trace, amsmath + amssymb only
    if formulas:
        L += [r"\subsection*{Derived formulas}", "Rendered from the SymPy derivations.", ""]
        for name, tex in formulas:
            L += [
                r"\paragraph{" + tex_escape(name) + "}",
                r"\begin{equation*}",
                tex_unicode(tex),
                r"\end{equation*}",
            ]
    for f, cap in figs:
        L += [
            r"\begin{figure}[ht]",
            r"\centering",
            rf"\includegraphics[width=0.8\linewidth]{{figures/{f.name}.pdf}}",
            rf"\caption{{{tex_escape(cap)}}}",
            rf"\label{{fig:{f.name}}}",
            r"\end{figure}",
            "",
        ]
    return "\n".join(L) + "\n"


STANDALONE = r"""\documentclass[11pt]{article}
\usepackage[margin=2.2cm]{geometry}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb,graphicx,booktabs,longtable,array}
\begin{document}
\input{appendix.tex}
\end{document}
"""


# ------------------------------------------------------------------------- driver


def build_appendix(
    out: str | os.PathLike,
    report: dict,
    *,
    progress: Callable[[str], None] = print,
    figures: bool = True,
    data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
) -> Path:
    """Write the appendix for ``report`` into ``out``, replacing it as a whole; figures drawn
    from data files read ``data_dir`` (default ``docs/data`` of the working directory).

    ``out`` must be absent, empty or gla-verify's own (carry :data:`output.MARKER`); the
    swap is journalled, locked and umask-respecting (:func:`proofs_check.output.replace_dir`).
    """
    out = Path(out)
    with replace_dir(out, progress=progress) as tmp:
        import matplotlib

        matplotlib.use("Agg")
        figs = []
        if figures:
            for f, entry in report_figures(report):
                progress(f"figure {f.name}: {f.title}")
                t0 = time.perf_counter()
                cap = f.make(entry, tmp, Path(data_dir))
                if cap is None:
                    progress("  skipped: its data is not available")
                    continue
                figs.append((f, cap))
                progress(f"  done in {time.perf_counter() - t0:.1f}s")
        formulas = derived_formulas(report)
        write_json(tmp / "results.json", report)
        (tmp / "appendix.md").write_text(render_markdown(report, figs, formulas), encoding="utf-8")
        (tmp / "appendix.tex").write_text(render_tex(report, figs, formulas), encoding="utf-8")
        (tmp / "appendix_standalone.tex").write_text(STANDALONE, encoding="utf-8")
    return out


def load_report(path: str | os.PathLike[str]) -> dict:
    """Read ``path`` and validate it against the report schema (:mod:`proofs_check.schema`);
    raises :class:`proofs_check.output.UsageError` naming the first problem."""
    return _load_report(path)


def report_from_run(
    ids: Sequence[str], *, seed: int, profile: str, progress: Callable[[str], None]
) -> dict:
    from .cli import _run_validated  # seed, profile and ids checked first (UsageError)

    return _run_validated(ids, seed=seed, profile=profile, progress=progress).to_json()
