r"""Text for the appendix: LaTeX escaping, mixed text/math phrases, and display formulas
broken across lines.

Three things the appendix needs and nothing else does:

* :func:`tex_escape` / :func:`tex_unicode`: plain text (and the non-ASCII symbols of the claim
  texts) to LaTeX that compiles with plain ``pdflatex`` and no unicode set-up;
* :class:`Phrase`: a sentence made of text parts and math parts, rendered once as Markdown
  (math between ``$...$``) and once as LaTeX, so generated sentences ("Monte Carlo
  :math:`7.08 \pm 0.13` vs closed form 7.13") read the same in both versions;
* :func:`break_formula` / :func:`display_tex`: a LaTeX formula (as ``sympy.latex`` writes it)
  split at its top-level ``+``/``-`` (and inside a long parenthesised factor) into lines that
  fit the text width, set in an ``equation*``/``split`` with the left-hand side aligned.

>>> Phrase.of("error ", ("m", r"10^{-15}"), " (tol ", ("m", r"10^{-10}"), ")").md()
'error $10^{-15}$ (tol $10^{-10}$)'
>>> break_formula(r"y = a + b", width=100)
['y = a + b']
>>> lines = break_formula("y = " + " + ".join(f"x_{{{i}}}" for i in range(40)), width=30)
>>> len(lines) > 1 and all(tex_width(x) <= 30 for x in lines)
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "tex_escape",
    "tex_unicode",
    "Phrase",
    "tex_width",
    "break_formula",
    "display_tex",
    "display_group",
    "split_formulas",
    "FORMULA_WIDTH",
]

# --------------------------------------------------------------------------- escaping

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
    r"""Escape plain text for LaTeX (not for math); non-ASCII symbols become ASCII LaTeX.

    >>> print(tex_escape("a_b & 50% --x"))
    a\_b \& 50\% -{}-x
    """
    # "--" of command-line options must not become an en dash ligature
    return tex_unicode("".join(_TEX_SPECIAL.get(ch, ch) for ch in s).replace("--", "-{}-"))


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


# ---------------------------------------------------------------------------- phrases


@dataclass(frozen=True)
class Phrase:
    """A sentence of text parts and math parts: ``parts`` is a tuple of ``(kind, text)`` with
    ``kind`` ``"t"`` (plain text, escaped on output) or ``"m"`` (LaTeX math, kept)."""

    parts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, *items: str | tuple[str, str] | Phrase) -> Phrase:
        """Build from strings (text), ``("m", latex)`` pairs and other phrases."""
        parts: list[tuple[str, str]] = []
        for it in items:
            if isinstance(it, Phrase):
                parts.extend(it.parts)
            elif isinstance(it, tuple):
                parts.append(it)
            else:
                parts.append(("t", it))
        return cls(tuple(p for p in parts if p[1]))

    def __add__(self, other: Phrase | str) -> Phrase:
        return Phrase.of(self, other)

    def md(self) -> str:
        """Markdown: text as is (``*`` escaped), math between ``$...$``; a table cell escapes its
        pipes itself."""
        return "".join(f"${s}$" if k == "m" else s.replace("*", "\\*") for k, s in self.parts)

    def tex(self) -> str:
        """LaTeX: text escaped, math between ``$...$``."""
        return "".join(f"${tex_unicode(s)}$" if k == "m" else tex_escape(s) for k, s in self.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)


# ------------------------------------------------------------------------- formulas

#: Width budget of one display line, in the units of :func:`tex_width` (about the width of an
#: italic letter at 11 pt, 6 pt): a 5.5 in text width holds about 65; the margin leaves room
#: for the ``&\quad`` of continuation lines and for the estimate's error.
FORMULA_WIDTH = 50.0

_ZERO = re.compile(
    r"\\(left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|displaystyle)(?![A-Za-z])"
)
_SPACES = {"quad": 2.0, "qquad": 4.0, ",": 0.3, ";": 0.4, ":": 0.4, " ": 0.5, "!": 0.0}
_WIDE = frozenset("sum prod int le ge ne to in approx equiv mapsto Rightarrow iff".split())
_WORDS = ("operatorname", "mathrm", "text", "textsf", "mathbf", "mathbb", "mathcal", "mathit")


def _group(s: str, i: int) -> tuple[str, int]:
    """The brace group starting at ``s[i] == '{'`` (without braces) and the index after it; a
    single character (or control word) when ``s[i]`` is not a brace."""
    if i >= len(s):
        return "", i
    if s[i] != "{":
        if s[i] == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            assert m is not None
            return m.group(0), i + len(m.group(0))
        return s[i], i + 1
    depth, j = 0, i
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
        j += 1
    return s[i + 1 :], len(s)


def tex_width(s: str) -> float:
    """Estimated printed width of LaTeX math ``s``, in italic-letter widths (about 6 pt at 11 pt).

    Fractions count their wider part, scripts 0.7 of their width, control words one letter,
    operators with their spacing 1.6; sizing commands (``\\left``, ``\\Big``) nothing.

    >>> tex_width("a+b")
    3.6
    >>> tex_width(r"\\frac{a}{bcd}") == tex_width("bcd")
    True
    """
    s = _ZERO.sub("", s)
    w, i = 0.0, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            if m is None:  # a lone trailing backslash
                break
            name, i = m.group(1), i + len(m.group(0))
            if name in ("frac", "tfrac", "dfrac"):
                a, i = _group(s, i)
                b, i = _group(s, i)
                w += max(tex_width(a), tex_width(b)) * (0.75 if name == "tfrac" else 1.0)
            elif name in _WORDS:
                a, i = _group(s, i)
                w += 0.85 * len(re.sub(r"\\.|[{} ]", "", a)) if name != "mathbf" else tex_width(a)
            elif name in _SPACES:
                w += _SPACES[name]
            elif name in _WIDE:
                w += 1.8
            else:
                w += 1.0
        elif ch in "^_":
            a, i = _group(s, i + 1)
            w += 0.7 * tex_width(a)
        elif ch in "{} ":
            i += 1
        elif ch in "+-=<>":
            w, i = w + 1.6, i + 1
        elif ch in "()[],;.|'":
            w, i = w + 0.5, i + 1
        else:
            w, i = w + 1.0, i + 1
    return round(w, 3)


def _pieces(s: str) -> list[str]:
    """``s`` cut before each top-level binary ``+``/``-`` (outside braces and ``\\left...\\right``)."""
    out, start, depth, i = [], 0, 0, 0
    while i < len(s):
        if s.startswith(r"\left", i) and not s[i + 5 : i + 6].isalpha():
            depth, i = depth + 1, i + 5
            continue
        if s.startswith(r"\right", i) and not s[i + 6 : i + 7].isalpha():
            depth, i = depth - 1, i + 6
            continue
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0 and s.startswith(("\\ ", "\\quad"), i + 1):
            # a list of formulas ("a = 1,\ b = 2"): a break after the comma and its space
            j = i + (2 if s.startswith("\\ ", i + 1) else 5) + 1
            out.append(s[start:j])
            start = i = j
            continue
        elif ch in "+-" and depth == 0 and i > start:
            prev = s[start:i].rstrip()
            if prev and prev[-1] not in "=(+-,{&^_[" and not prev.endswith(("\\cdot", "\\quad")):
                out.append(s[start:i])
                start = i
        i += 1
    out.append(s[start:])
    # strip, but keep the space of a trailing control space ("\\ ")
    return [p + " " if p.endswith("\\") else p for p in (x.strip() for x in out) if p]


def _open_paren(piece: str) -> tuple[str, str, str] | None:
    r"""Split ``prefix \left( inner \right) suffix`` at the widest top-level ``\left(``-group."""
    best, depth, i, start = None, 0, 0, -1
    while i < len(piece):
        if piece.startswith(r"\left", i) and not piece[i + 5 : i + 6].isalpha():
            if depth == 0:
                start = i
            depth, i = depth + 1, i + 5
            continue
        if piece.startswith(r"\right", i) and not piece[i + 6 : i + 7].isalpha():
            depth, i = depth - 1, i + 6
            if depth == 0 and start >= 0 and piece[start + 5 : start + 6] in "([":
                end = i + 1  # the closing delimiter character
                inner = piece[start + 6 : i - 6]
                if best is None or len(inner) > len(best[1]):
                    best = (piece[:start], inner, piece[end:], piece[start + 5], piece[i])
            continue
        if piece[i] == "\\":
            i += 2
            continue
        i += 1
    if best is None:
        return None
    pre, inner, post, op, cl = best
    return pre + r"\Bigl" + op, inner, r"\Bigr" + cl + post


def _chunks(s: str, width: float) -> list[str]:
    """Pieces of ``s`` no wider than ``width`` where possible: top-level terms, and the terms of
    a too-wide parenthesised factor (its ``\\left(``/``\\right)`` become ``\\Bigl(``/``\\Bigr)``)."""
    out: list[str] = []
    for p in _pieces(s):
        if tex_width(p) <= width:
            out.append(p)
            continue
        split = _open_paren(p)
        if split is None:
            out.append(p)
            continue
        pre, inner, post = split
        inner_chunks = _chunks(inner, width)
        inner_chunks[0] = pre + " " + inner_chunks[0]
        inner_chunks[-1] = inner_chunks[-1] + " " + post
        out.extend(inner_chunks)
    return out


def _top_level_eq(s: str) -> int:
    """Index of the first top-level ``=`` of ``s`` (-1 if none)."""
    depth, i = 0, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            assert m is not None
            name = m.group(1)
            depth += name == "left"
            depth -= name == "right"
            i += len(m.group(0))
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "=" and depth == 0:
            return i
        i += 1
    return -1


def break_formula(tex: str, width: float = FORMULA_WIDTH) -> list[str]:
    """``tex`` as lines of at most ``width`` (:func:`tex_width`) where possible; the first line
    keeps the left-hand side. Lines after the first start with their ``+``/``-``."""
    eq = _top_level_eq(tex)
    lhs, rhs = (tex[: eq + 1], tex[eq + 1 :]) if eq >= 0 else ("", tex)
    chunks = _chunks(rhs.strip(), width - 4)
    lines: list[str] = []
    cur = (lhs + " " + chunks[0]).strip() if chunks else lhs
    for c in chunks[1:]:
        if tex_width(cur + c) > width:
            lines.append(cur)
            cur = c
        else:
            cur = cur + " " + c
    lines.append(cur)
    return lines


_SEPARATORS = re.compile(r",?\s*\\quad\s*(?=\\?[A-Za-z\\(])|;\s*\\\s|;\s*\\quad")


def split_formulas(tex: str) -> list[str]:
    r"""Cut a formula written as several formulas side by side (``A = x,\quad B = y``) into
    them, at top-level ``,\quad``, ``;\ `` and ``;\quad`` separators.

    >>> split_formulas(r"a = 1,\quad b = 2")
    ['a = 1', 'b = 2']
    """
    out, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        ch = tex[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            m = _SEPARATORS.match(tex, i)
            if m and (ch in ",;" or ch == "\\"):
                out.append(tex[start:i])
                start = i = m.end()
                continue
        if ch == "\\":
            i += 2
            continue
        i += 1
    out.append(tex[start:])
    return [x.strip().rstrip(",;") for x in out if x.strip()]


def _display_body(tex: str, width: float, style: str = "") -> str:
    """One display formula's body: a single line, or a ``split`` aligned at the first ``=``
    (continuation lines indented by ``\\quad``); ``style`` (e.g. ``\\textstyle``) starts
    every cell."""
    lines = break_formula(tex_unicode(tex), width)
    if len(lines) == 1:
        return style + lines[0]
    eq = _top_level_eq(lines[0])
    head = (
        style + lines[0][:eq] + "&" + style + lines[0][eq:] if eq >= 0 else "&" + style + lines[0]
    )
    body = [head] + ["&" + style + "\\quad " + ln for ln in lines[1:]]
    return "\\begin{split}\n" + " \\\\\n".join(body) + "\n\\end{split}"


def display_tex(tex: str, width: float = FORMULA_WIDTH) -> str:
    """A display formula for LaTeX: one line in ``equation*``, or several in ``split`` aligned
    at the first ``=`` (continuation lines indented by ``\\quad``).

    >>> print(display_tex("y = a + b"))
    \\begin{equation*}
    y = a + b
    \\end{equation*}
    """
    return "\\begin{equation*}\n" + _display_body(tex, width) + "\n\\end{equation*}"


def display_group(texs: list[str], width: float = FORMULA_WIDTH, style: str = "") -> str:
    """Several display formulas as one ``gather*`` (one display: no display skips between
    them), each broken across lines like :func:`display_tex`; two consecutive formulas that
    each fit half a line share one; ``style`` (``\\textstyle``) sets every formula without
    nested fractions in text style.

    >>> print(display_group(["y = a", "z = b", "w = " + " + ".join(["x"] * 30)], width=40))
    \\begin{gather*}
    y = a \\qquad z = b \\\\
    \\begin{split}
    w &= x + x + x + x + x + x + x + x + x + x + x + x + x + x + x \\\\
    &\\quad + x + x + x + x + x + x + x + x + x + x + x + x + x + x + x
    \\end{split}
    \\end{gather*}
    """
    rows: list[str] = []
    half = (width - 4) / 2  # two formulas this narrow share a line, \qquad apart
    pending = ""
    given = style
    for t in texs:
        # a fraction of fractions stays in display style: in text style its parts are unreadable
        style = "" if t.count("\\frac") > 1 else given
        narrow = tex_width(t) <= half and "\\\\" not in t
        if pending and narrow:
            rows.append(pending + r" \qquad " + style + tex_unicode(t))
            pending = ""
            continue
        if pending:
            rows.append(pending)
            pending = ""
        if narrow:
            pending = style + tex_unicode(t)
        else:
            rows.append(_display_body(t, width, style))
    if pending:
        rows.append(pending)
    return "\\begin{gather*}\n" + " \\\\\n".join(rows) + "\n\\end{gather*}"
