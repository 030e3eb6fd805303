r"""Evidence as a reader wants it: one sentence per check, one row per leg, one line per claim.

The report keeps every check with every criterion (``results.json``); the appendix
summarises them. The sentences are built from the criteria and figures the checks record,
never retyped:

* a Monte Carlo estimate against a closed form: "Monte Carlo :math:`7.084 \pm 0.135` vs
  closed form 7.127, :math:`z = -0.32`" (figures ``monte_carlo``/``mc``/``mc_mean``,
  ``standard_error``/``stderr``, ``closed_form``, ``z``);
* a trained model against its predicted optimum: "trained 0.4116 vs predicted 0.4111
  (+0.14%)" (figures ``trained_risk``, ``predicted_risk``);
* a difference with paired standard errors: "0.261 ± 0.011 (paired s.e.), z = 23.1";
* a comparison with an independent computation: "relative RMS error :math:`4.6\cdot10^{-15}`
  (tolerance :math:`10^{-10}`)";
* anything else: what the key criterion measures, its value and its bound.

A leg's row groups its checks by kind and key criterion and shows, per group, the count and
the member closest to its bound (the one a reader should look at).

>>> ev = {"kind": "numeric", "passed": True, "criteria": [{"name": "rel_rms", "value": 4.6e-15,
...       "op": "<=", "limit": 1e-10, "measures": "relative RMS error", "passed": True}], "figures": {}}
>>> check_sentence(ev).md()
'relative RMS error $4.6\\cdot 10^{-15}$ (tolerance $10^{-10}$)'
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from .appendix_text import Phrase

__all__ = [
    "ascii_math",
    "num",
    "check_sentence",
    "leg_rows",
    "claim_summary",
    "closeness",
    "proved_for",
]

_OP_TEX = {"<=": r"\le", "<": "<", ">=": r"\ge", ">": ">", "==": "="}
_METRICS = {
    "rel_rms": "relative RMS error",
    "abs": "largest absolute error",
    "abs_error": "largest absolute error",
}


def num(x: Any, digits: int = 3) -> str:
    r"""A number as LaTeX math: plain between :math:`10^{-3}` and :math:`10^4`, else
    :math:`m\cdot 10^{e}`; exact powers of ten as :math:`10^{e}`.

    >>> num(0.04318), num(1e-10), num(4.6e-15), num(12), num(-0.32), num(True)
    ('0.0432', '10^{-10}', '4.6\\cdot 10^{-15}', '12', '-0.32', '\\text{true}')
    """
    if isinstance(x, bool):
        return r"\text{true}" if x else r"\text{false}"
    if isinstance(x, int):
        return str(x)
    if not isinstance(x, float):
        return r"\text{" + str(x).replace("_", " ") + "}"
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return r"\infty" if x > 0 else r"-\infty"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    mant, exp = f"{x:.{max(digits - 1, 1) - 1}e}".split("e")
    e = int(exp)
    if float(mant) in (1.0, -1.0):
        return ("-" if float(mant) < 0 else "") + f"10^{{{e}}}"
    return f"{mant}\\cdot 10^{{{e}}}"


def _first(fig: dict, *names: str) -> Any:
    for n in names:
        v = fig.get(n)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _key(ev: dict) -> dict | None:
    crit = ev.get("criteria") or []
    failing = [c for c in crit if not c.get("passed")]
    return (failing or crit or [None])[0]


def closeness(ev: dict) -> float:
    """How close the check came to failing, 0 (far) .. 1 (at its bound), >1 failed; -1 when its
    key criterion is not a numeric bound. Upper bounds: ``|value| / limit``; lower bounds with a
    positive limit: ``limit / value``; a Monte Carlo ``z``: ``|z| / z_max``."""
    k = _key(ev)
    if not k or k["op"] == "==" or isinstance(k["value"], (bool, str)):
        return -1.0
    v, lim = k["value"], k["limit"]
    if not isinstance(v, (int, float)) or not isinstance(lim, (int, float)):
        return -1.0
    if k["op"] in ("<=", "<"):
        return abs(v) / lim if lim > 0 else -1.0
    if lim > 0:
        return lim / v if v > 0 else 2.0
    return -1.0


def _bound(k: dict) -> Phrase:
    """`` (tolerance L)`` / `` (must be > L)`` / `` (must be ≥ 0)`` for the key criterion."""
    op, lim = k["op"], k["limit"]
    if op in ("<=", "<"):
        return Phrase.of(" (tolerance ", ("m", num(lim)), ")")
    if op in (">=", ">") and isinstance(lim, float) and abs(lim) < 1e-8:
        return Phrase.of(" (must be ", ("m", _OP_TEX[op] + " 0"), " up to rounding)")
    if op == "==":
        return Phrase.of()
    return Phrase.of(" (must be ", ("m", f"{_OP_TEX[op]} {num(lim)}"), ")")


def _mc_sentence(fig: dict) -> Phrase | None:
    mc = _first(fig, "monte_carlo", "mc", "mc_mean")
    se = _first(fig, "standard_error", "stderr")
    ref = _first(fig, "closed_form")
    if mc is None or se is None or ref is None:
        return None
    z = _first(fig, "z")
    if z is None:
        z = (mc - ref) / se if se > 0 else 0.0
    return Phrase.of(
        "Monte Carlo ",
        ("m", f"{num(mc, 4)} \\pm {num(se, 2)}"),
        " vs closed form ",
        ("m", num(ref, 4)),
        ", ",
        ("m", f"z = {z:.2f}"),
    )


def _trained_sentence(fig: dict) -> Phrase | None:
    tr, pr = _first(fig, "trained_risk"), _first(fig, "predicted_risk")
    if tr is None or pr is None or pr == 0:
        return None
    out = Phrase.of("trained ", ("m", num(tr, 4)), " vs predicted optimum ", ("m", num(pr, 4)))
    return out + Phrase.of(" (", ("m", f"{100 * (tr - pr) / pr:+.2f}\\%"), ")")


def _paired_sentence(ev: dict, k: dict) -> Phrase | None:
    fig = ev.get("figures") or {}
    se, z = _first(fig, "se_paired"), _first(fig, "z_paired")
    if se is None or not isinstance(k["value"], (int, float)):
        return None
    out = Phrase.of(
        _measures(k), " ", ("m", f"{num(float(k['value']))} \\pm {num(se, 2)}"), " (paired s.e."
    )
    return out + (Phrase.of("), ", ("m", f"z = {z:.1f}")) if z is not None else Phrase.of(")"))


#: ASCII math in the criteria's ``measures`` texts (written for terminals) and its LaTeX
#: (``{0}`` is the first group of the pattern).
_ASCII_MATH = (
    # whole differences first (one formula, not math pieces around a text hyphen)
    (r"\|L\*_(\w+) - L\*_(\w+)\|/L0", "|L^*_{{{0}}}-L^*_{{{1}}}|/L_0"),
    (r"\(L\*_(\w+) - L\*_(\w+)\)/L0", "(L^*_{{{0}}}-L^*_{{{1}}})/L_0"),
    (r"\(L_LA - L\*_GLA\)/L0", r"(L_{LA}-L^*_{GLA})/L_0"),
    (r"L_LA - L\*_GLA", r"L_{LA}-L^*_{GLA}"),
    (r"risk\(L=(\d+)\) - risk\(L=(\d+)\)", "L_{{{0}}}-L_{{{1}}}"),
    (r"risk\(linear\) - risk\(GLA\)", r"L^{\mathrm{LA}}_\ell-L^{\mathrm{GLA}}_\ell"),
    (r"\(cone optimum - search\)/L0", r"(L_{\mathrm{cone}}-L_{\mathrm{search}})/L_0"),
    (r"\(certified - search\)/L0", r"(L_{\mathrm{cert}}-L_{\mathrm{search}})/L_0"),
    (r"\(certified - brute force\)/L0", r"(L_{\mathrm{cert}}-L_{\mathrm{brute}})/L_0"),
    (r"\(trained - predicted risk\) / predicted risk", r"(L_{\mathrm{trained}}-L^*)/L^*"),
    (r"1 - \|cos\|", r"1-|\cos|"),
    (r"L\*_(\w+)", "L^*_{{{0}}}"),
    (r"\bL_([A-Z]{2,})\b", "L_{{{0}}}"),
    (r"\bL0\b", "L_0"),
    (r"\bomega\*", r"\omega^*"),
    (r"\bomega\b", r"\omega"),
    (r"\bOmega\b", r"\Omega"),
    (r"\bSigma\b", r"\Sigma"),
    (r"\balpha\b", r"\alpha"),
    (r"\brho\b", r"\rho"),
    (r"\bP\*", "P^*"),
    (r"\bdy/dx\b", r"\partial\hat y/\partial x"),
    (r">=", r"\ge"),
    (r"<=", r"\le"),
    (r"->", r"\to"),
)
_ASCII_RE = re.compile("|".join(f"(?:{p})" for p, _ in _ASCII_MATH))


def ascii_math(text: str) -> Phrase:
    r"""A terminal text with its ASCII math (``L*_GLA``, ``omega*``, ``>=``) set as math.

    >>> print(ascii_math("largest |L*_GLA - L*_WPGD|/L0 where omega* >= 0").md())
    largest $|L^*_{GLA}-L^*_{WPGD}|/L_0$ where $\omega^*$ $\ge$ 0
    """
    parts: list = []
    pos = 0
    for m in _ASCII_RE.finditer(text):
        parts.append(text[pos : m.start()])
        for pat, rep in _ASCII_MATH:
            g = re.fullmatch(pat, m.group(0))
            if g:
                parts.append(("m", rep.format(*g.groups()) if g.groups() else rep))
                break
        pos = m.end()
    parts.append(text[pos:])
    return Phrase.of(*parts)


def _measures(k: dict) -> Phrase:
    text = _METRICS.get(k["name"]) or k.get("measures") or k["name"].replace("_", " ")
    # terminal shorthand a reader of the appendix would not know
    text = text.replace(" <= tol,", " within tolerance,").replace(
        "'alpha monotone'", "alpha monotone"
    )
    return ascii_math(text)


def check_sentence(ev: dict) -> Phrase:
    """One check's result in words and numbers (see the module docstring)."""
    if ev.get("kind") == "error" or not ev.get("criteria"):
        return Phrase.of("crashed: " + (ev.get("detail") or "no criteria").splitlines()[0][:80])
    k = _key(ev)
    assert k is not None
    fig = ev.get("figures") or {}
    if ev.get("kind") == "symbolic" and k["name"] == "verified":
        return Phrase.of("identity verified" if k["passed"] else "identity FAILED")
    for special in (_trained_sentence(fig), _mc_sentence(fig), _paired_sentence(ev, k)):
        if special is not None:
            return special
    if k["op"] == "==":
        if isinstance(k["value"], bool) or isinstance(k["limit"], bool):
            verdict = "yes" if k["passed"] else "no"
            return Phrase.of(_measures(k), ": ", verdict)
        return Phrase.of(_measures(k), " ", ("m", f"= {num(k['value'])}"))
    return Phrase.of(_measures(k), " ", ("m", num(k["value"]))) + _bound(k)


# ------------------------------------------------------------------------------ legs

_KIND_NOUN = {
    "symbolic": ("SymPy identity", "SymPy identities"),
    "numeric": ("comparison", "comparisons"),
    "monte-carlo": ("Monte Carlo estimate", "Monte Carlo estimates"),
    "certificate": ("certificate", "certificates"),
    "search": ("search", "searches"),
    "error": ("crashed check", "crashed checks"),
}


def _count(n: int, kind: str) -> str:
    one, many = _KIND_NOUN.get(kind, ("check", "checks"))
    return f"{n} {one if n == 1 else many}"


def _groups(evs: Sequence[dict]) -> list[list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for e in evs:
        k = _key(e)
        name = "" if e.get("kind") == "symbolic" or not k else k["name"]
        out.setdefault((e.get("kind"), name), []).append(e)
    return list(out.values())


def _worst(group: Sequence[dict]) -> dict:
    failed = [e for e in group if not e.get("passed")]
    return failed[0] if failed else max(group, key=closeness)


def _group_phrase(group: Sequence[dict]) -> Phrase:
    e = group[0]
    kind = e.get("kind", "")
    if kind == "symbolic" and all(g.get("passed") for g in group):
        sym = [g for g in group if (g.get("figures") or {}).get("dimensions") == "symbolic"]
        inst = len(group) - len(sym)
        out = Phrase.of()
        if sym:
            syms = ", ".join(dict.fromkeys(s for g in sym for s in g["figures"].get("symbols", [])))
            steps = sum(len(g["figures"].get("trace", [])) for g in sym)
            out = Phrase.of("a proof for symbolic ", ("m", syms) if syms else "sizes")
            if steps:
                out = out + f" in {steps} engine steps"
        if inst:
            out = out + Phrase.of((" and " if sym else "") + _count(inst, "symbolic"))
            out = out + " on explicit sizes"
        return out + ", all verified"
    w = _worst(group)
    if len(group) == 1:
        return Phrase.of(_count(1, kind) + ": ") + check_sentence(w)
    lead = "worst" if closeness(w) >= 0 or not w.get("passed") else "e.g."
    return Phrase.of(f"{_count(len(group), kind)}, {lead}: ") + check_sentence(w)


def leg_rows(claim: dict) -> list[tuple[str, int, bool, Phrase]]:
    """One row per leg of the claim: ``(leg, number of checks, all passed, summary)``."""
    rows = []
    for leg in ("theory", "numerics"):
        evs = [e for e in claim.get("evidence") or [] if e.get("leg") == leg]
        if not evs:
            continue
        phrases = [_group_phrase(g) for g in _groups(evs)]
        summary = Phrase.of()
        for i, p in enumerate(phrases):
            summary = summary + Phrase.of("; " if i else "") + p
        rows.append((leg, len(evs), all(e.get("passed") for e in evs), summary))
    return rows


def proved_for(claim: dict) -> str:
    """``symbolic n, d`` (the sizes a general-dimension proof keeps symbolic; ``(part)`` when it
    proves a part of the claim) or ``instances`` (identities proved on explicit sizes)."""
    evs = [
        e
        for e in claim.get("evidence") or []
        if e.get("passed") and (e.get("figures") or {}).get("dimensions") == "symbolic"
    ]
    syms = [s for e in evs for s in (e.get("figures") or {}).get("symbols", [])]
    if not syms:
        return "instances"
    part = all((e.get("figures") or {}).get("scope", "whole") != "whole" for e in evs)
    return "symbolic " + ", ".join(dict.fromkeys(syms)) + (" (part of the claim)" if part else "")


_PREFERENCE = ("monte-carlo", "certificate", "search", "numeric")


def claim_summary(claim: dict) -> Phrase:
    """The claims-table evidence of one claim: what was proved symbolically, then the most
    telling numerical check (its first failure; else, in the order Monte Carlo, certificate,
    search, comparison, the one closest to its bound)."""
    evs = claim.get("evidence") or []
    if not evs:
        return Phrase.of("no evidence")
    failed = [e for e in evs if not e.get("passed")]
    if failed:
        return Phrase.of(f"FAILED {failed[0]['check']}: ") + check_sentence(failed[0])
    pf = proved_for(claim)
    head = Phrase.of()
    if pf != "instances":
        syms, _, part = pf[len("symbolic ") :].partition(" (")
        head = Phrase.of("general proof for symbolic ", ("m", syms), f" ({part}" if part else "")
    n_sym = sum(e.get("kind") == "symbolic" for e in evs)
    if pf == "instances" and n_sym:
        head = Phrase.of(_count(n_sym, "symbolic"))
    for kind in _PREFERENCE:
        group = [e for e in evs if e.get("kind") == kind and e.get("leg") == "numerics"]
        group = group or [e for e in evs if e.get("kind") == kind]
        if group:
            # the worst of the group; how many there are is in the claim's evidence rows
            tail = check_sentence(_worst(group))
            return head + Phrase.of("; " if head else "") + tail
    return head + Phrase.of(f" ({len(evs)} checks)")
