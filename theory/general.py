r"""Proofs for every dimension: claims L1, L1f, L2, L3, L4, L6, L7, C1, C2, C3 with symbolic ``n`` and ``d``.

Each ``prove_*`` function returns a :class:`Proof`: ``holds`` (every machine-checked part
reduced to an identity), ``dimensions`` (``"symbolic"``: no size was given a value),
``trace`` (the rule applications from the definition to the closed form, one entry per pass,
each with its rule, its number of applications and the expression it produced),
``latex()`` (the trace as a LaTeX ``align*`` block for the appendix), ``parts`` (named
sub-identities), ``lemmas`` (standard facts used and *not* machine-checked, e.g. Cauchy–Schwarz)
and ``seconds``.

The engine is :mod:`theory.matrix_engine`; every rule it uses is cross-checked against the
coordinate Wick engine in :mod:`theory.matrix_crosscheck`. Conventions are those of
``docs/conventions.md``: ``x_i, x ~ N(0, Σ)``, ``E[β_iβ_jᵀ] = R_ij I``, ``y_i = x_iᵀβ_i + ξ_i``,
``ŷ = xᵀ P Σ_i ω_i y_i x_i`` (sign +, scale 1, the query does **not** attend to itself in the
one-step predictor), risk ``E(y − ŷ)²`` without a factor ½; ``r = R_{[n], n+1}``,
``A = R_{[n]} + diag(R_ii)``, ``B = diag(R_ii tr Σ + σ²)``, ``a = rᵀω``, ``b = ωᵀAω``,
``c = ωᵀBω``. In the constructions (C1–C3) every token attends to itself; the gated axis is
the key axis (columns of the state).

>>> p = prove_L1()
>>> p.holds, p.dimensions
(True, 'symbolic')
>>> [s["rule"] for s in p.trace][:3]
['definition', 'linearity', 'index split']

Not proved here in general dimension: L5 (uniqueness of the maximiser of ``J(t)`` on the
bracket is open, see ``docs/landscape.md``) and the claims G1–G6 (optimisation over the gate
cone, training, depth), which are statements about optimisation or measurement, not identities.

Never imports :mod:`numerics`.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from . import matrix_engine as me
from .matrix_engine import (
    EIG,
    IDENTITY,
    LAM,
    OMEGA,
    SIGMA,
    SIGMA_NOISE,
    XI,
    Expr,
    Log,
    N,
    Q,
    Rij,
    Term,
    Y,
    canonical,
    equal,
    expectation,
    fn,
    grad_trace,
    idx,
    is_zero,
    mat,
    scalar,
    substitute_letter,
    sum_over,
    vec,
)
from .result import ProofResult

__all__ = [
    "PROOFS",
    "Block",
    "Proof",
    "derive_risk_matrix",
    "prove_C1",
    "prove_C2",
    "prove_C3",
    "prove_G5_nesting",
    "prove_L1",
    "prove_L1f",
    "prove_L2",
    "prove_L3",
    "prove_L4",
    "prove_L6",
    "prove_L7",
    "prove_all",
]


# ----------------------------------------------------------------------------- the proof object


@dataclass
class Proof:
    """A machine-checked proof for symbolic dimensions.

    ``holds``: all ``parts`` verified. ``dimensions``: ``"symbolic"`` (``n``, ``d`` and, where the
    statement has them, ``K`` and the segment lengths are symbols). ``symbols``: the sizes kept
    symbolic. ``assumptions``: hypotheses of the statement used by the proof. ``trace``: list of
    ``{"rule", "applications", "note", "latex"}``. ``lemmas``: standard facts used without a
    machine check. ``seconds``: wall time of the proof. ``scope``: ``"whole"`` when the proof
    covers the claim's whole statement, else the part it covers.
    """

    claim: str
    statement: str
    holds: bool = False
    dimensions: str = "symbolic"
    symbols: tuple = ("n", "d")
    assumptions: list = field(default_factory=list)
    trace: list = field(default_factory=list)
    parts: dict = field(default_factory=dict)
    lemmas: list = field(default_factory=list)
    seconds: float = 0.0
    scope: str = "whole"

    def latex(self) -> str:
        r"""The trace as LaTeX (``amsmath``, ``amssymb``): the statement, the assumptions, then an
        ``enumerate`` with one item per step (rule, number of applications, the expression it
        produced, in inline math so long sums wrap), the standard facts used and the verified parts."""
        lines = [
            rf"\paragraph{{{self.claim} (symbolic ${', '.join(self.symbols)}$).}} ${self.statement}$"
        ]
        if self.assumptions:
            lines.append(r"\emph{Assumptions:} " + "; ".join(self.assumptions) + ".")
        lines.append(r"\begin{enumerate}")
        for s in self.trace:
            app = rf" ($\times{s['applications']}$)" if s["applications"] > 1 else ""
            body = f": ${s['latex']}$" if s["latex"] else ""
            lines.append(rf"\item \textsf{{{_tex_text(s['rule'])}}}{app}{body}")
        lines.append(r"\end{enumerate}")
        if self.lemmas:
            lines.append(r"\emph{Standard facts used:} " + "; ".join(self.lemmas) + ".")
        parts = ", ".join(
            _tex_text(k) + ("" if v else r" (\textbf{FAILED})") for k, v in self.parts.items()
        )
        lines.append(rf"\emph{{Verified parts:}} {parts}.")
        return "\n".join(lines)

    def to_result(self) -> ProofResult:
        """The proof as the suite's common :class:`theory.result.ProofResult` (no ``cases``: the
        proof is symbolic in the sizes; ``data`` carries ``dimensions``, the trace and the lemmas)."""
        d = self.to_dict()
        return ProofResult(
            f"{self.claim} for symbolic {', '.join(self.symbols)}",
            self.holds,
            [],
            dict(self.parts),
            0 if self.holds else None,
            round(self.seconds, 3),
            self.latex(),
            {k: d[k] for k in ("dimensions", "symbols", "trace", "lemmas", "assumptions")},
        )

    def to_dict(self) -> dict:
        """JSON-ready summary (for evidence figures)."""
        return {
            "claim": self.claim,
            "holds": bool(self.holds),
            "dimensions": self.dimensions,
            "symbols": list(self.symbols),
            "assumptions": list(self.assumptions),
            "parts": {k: bool(v) for k, v in self.parts.items()},
            "lemmas": list(self.lemmas),
            "trace": [
                {
                    "rule": s["rule"],
                    "applications": s["applications"],
                    "note": s["note"],
                    "latex": s["latex"],
                }
                for s in self.trace
            ],
            "trace_steps": len(self.trace),
            "scope": self.scope,
            "seconds": round(self.seconds, 3),
        }


def _tex_escape(s: str) -> str:
    """Escape text-mode specials (part and rule names go inside ``\\text{}``)."""
    out = s.replace("\\", r"\textbackslash{}")
    for ch in "_&%#$":
        out = out.replace(ch, "\\" + ch)
    return (
        out.replace("^", r"\^{}")
        .replace("~", r"\~{}")
        .replace("<", r"\textless{}")
        .replace(">", r"\textgreater{}")
    )


def _tex_text(s: str) -> str:
    r"""A label (text with inline math in ``$...$``, as part and rule names are written) for text
    mode: the text escaped, the math kept.

    >>> print(_tex_text(r"label output, $P=P_q^\top P_k$ & more"))
    label output, $P=P_q^\top P_k$ \& more
    """
    parts = re.split(r"(\$[^$]+\$)", s)
    return "".join(p if i % 2 else _tex_escape(p) for i, p in enumerate(parts))


def _note_math(note: str) -> str:
    r"""A step note for math mode: its inline formulas (``$...$``) kept, the words around them
    set as ``\text``.

    >>> print(_note_math(r"the sum over $j\le i$ is formal"))
    \text{the sum over }j\le i\text{ is formal}
    """
    parts = re.split(r"\$([^$]+)\$", note)
    return "".join(
        p if i % 2 else (rf"\text{{{_tex_escape(p)}}}" if p else "") for i, p in enumerate(parts)
    )


class _Builder:
    def __init__(
        self,
        claim: str,
        statement: str,
        symbols: Iterable[str] = ("n", "d"),
        assumptions: Iterable[str] = (),
    ) -> None:
        self.t0 = time.perf_counter()
        self.log = Log()
        self.proof = Proof(claim, statement, symbols=tuple(symbols), assumptions=list(assumptions))

    def step(self, rule: str, note: str, expr: Any = None, applications: int = 1) -> None:
        self.log.add(rule, applications, note, expr, max_terms=20)

    def part(
        self, name: str, ok: Any, rule: str = "identity", note: str = "", expr: Any = None
    ) -> bool:
        self.proof.parts[name] = bool(ok)
        verdict = r"\quad\checkmark" if ok else r"\quad\textbf{FAILED}"
        if note and "$" not in note and any(ch in note for ch in "\\=^_"):
            body = note  # the identity itself, as a formula
        elif expr is not None:
            body = expr if isinstance(expr, str) else expr.latex(12)
        else:
            body = _note_math(note) if note else ""
        self.log.add(f"{rule} [{name}]", 1, note or name, body + verdict)
        return bool(ok)

    def lemma(self, text: str) -> None:
        self.proof.lemmas.append(text)

    def done(self) -> Proof:
        self.proof.trace = self.log.steps
        self.proof.holds = bool(self.proof.parts) and all(self.proof.parts.values())
        self.proof.seconds = time.perf_counter() - self.t0
        return self.proof


# ----------------------------------------------------------------------------- model pieces

_i, _j = idx("i"), idx("j")
_P = mat("P")
_trS = SIGMA.tr()
_sig2 = SIGMA_NOISE**2


def _model_h(featurewise: bool) -> Expr:
    xi, bi = vec("x", _i), vec("beta", _i)
    y_i = xi.T @ bi + XI[_i]
    if featurewise:
        return sum_over(y_i @ mat("D", _i, sym=True) @ xi, _i)
    return sum_over(OMEGA[_i] * y_i @ xi, _i)


def _abc() -> tuple[Expr, Expr, Expr]:
    """``a = Σ_i R_{i,q} ω_i``, ``b = Σ_{i,j} ω_iR_ijω_j + Σ_i R_ii ω_i²``, ``c = Σ_i ω_i²(R_ii tr Σ + σ²)``."""
    a = sum_over(scalar(Rij(_i, Q) * OMEGA[_i]), _i)
    b = sum_over(scalar(OMEGA[_i] * OMEGA[_j] * Rij(_i, _j)), _i, _j) + sum_over(
        scalar(Rij(_i, _i) * OMEGA[_i] ** 2), _i
    )
    c = sum_over(Rij(_i, _i) * OMEGA[_i] ** 2 * _trS, _i) + sum_over(
        scalar(_sig2 * OMEGA[_i] ** 2), _i
    )
    return a, b, c


def derive_risk_matrix(*, featurewise: bool = False, rules: dict | None = None) -> tuple[Expr, Log]:
    r"""``E(y − ŷ)²`` derived by the matrix engine from the model definition (symbolic ``n, d``).

    ``ŷ = xᵀ P Σ_i ω_i y_i x_i`` (or ``xᵀ P Σ_i y_i D_i x_i`` with ``D_i = diag(Ω_i)`` when
    ``featurewise``); ``y = xᵀβ + ξ`` the noisy query label. Returns the canonical expression and
    the log of rule applications.

    >>> E, log = derive_risk_matrix()
    >>> len(E), sum(s["applications"] for s in log.steps if s["rule"] == "fourth moment")
    (7, 1)
    """
    log = Log()
    x = vec("x", Q)
    y = x.T @ vec("beta", Q) + XI[Q]
    yhat = x.T @ _P @ _model_h(featurewise)
    hdef = (
        r"\sum_i y_i D_i x_i,\ D_i=\operatorname{diag}(\Omega_i)"
        if featurewise
        else r"\sum_i \omega_i y_i x_i"
    )
    log.add(
        "definition",
        1,
        "the model",
        r"\mathbb E(y-\hat y)^2,\ y = x^\top\beta + \xi,\ y_i = x_i^\top\beta_i"
        r" + \xi_i,\ \hat y = x^\top P h,\ h = " + hdef,
    )
    risk = (y - yhat) @ (y - yhat)
    log.add("linearity", len(risk), "expand the square", risk)
    return expectation(risk, rules=rules, log=log), log


def _closed_L1() -> Expr:
    a, b, c = _abc()
    S2 = SIGMA @ SIGMA
    return (
        scalar(_sig2)
        + Rij(Q, Q) * _trS
        - 2 * a @ (_P @ S2).tr()
        + b @ (_P.T @ SIGMA @ _P @ S2).tr()
        + c @ (_P.T @ SIGMA @ _P @ SIGMA).tr()
    )


def _closed_featurewise() -> tuple[Expr, Expr, Expr]:
    D_i, D_j = mat("D", _i, sym=True), mat("D", _j, sym=True)
    S2 = SIGMA @ SIGMA
    H = (
        sum_over(Rij(_i, _j) * (D_i @ S2 @ D_j), _i, _j)
        + sum_over(Rij(_i, _i) * (D_i @ S2 @ D_i), _i)
        + sum_over((Rij(_i, _i) * _trS + _sig2) @ (D_i @ SIGMA @ D_i), _i)
    )
    M_r = sum_over(Rij(_i, Q) * D_i, _i)
    L = scalar(_sig2) + Rij(Q, Q) * _trS - 2 * (_P @ M_r @ S2).tr() + (_P.T @ SIGMA @ _P @ H).tr()
    return L, H, M_r


# ----------------------------------------------------------------------------- L1, L1f


def prove_L1(rules: dict | None = None) -> Proof:
    r"""L1 for every ``n`` and ``d``: ``E(y−ŷ)² = σ² + R_{n+1,n+1} tr Σ − 2a tr(PΣ²) + tr(PᵀΣP(bΣ² + cΣ))``.

    Parts: the engine's derivation from the model equals the closed form (both with ``a, b, c``
    written as sums over the examples); ``E[h hᵀ] = bΣ² + cΣ``; ``E[y ŷ] = a tr(PΣ²)``.
    ``rules`` replaces the rule set (used by the planted-rule tests).
    """
    st = (
        r"\mathbb E(y-\hat y)^2=\sigma^2+R_{n+1,n+1}\operatorname{tr}\Sigma-2a\operatorname{tr}(P\Sigma^2)"
        r"+\operatorname{tr}(P^\top\Sigma P(b\Sigma^2+c\Sigma))"
    )
    bld = _Builder(
        "L1", st, assumptions=[r"$P$ general $d\times d$, $\Sigma$ symmetric, $R$ symmetric"]
    )
    E, log = derive_risk_matrix(rules=rules)
    bld.log.steps.extend(log.steps)
    closed = _closed_L1()
    bld.step("closed form", "a, b, c written as sums over examples", closed)
    bld.part(
        "derived risk = closed form",
        equal(E, closed),
        "difference",
        r"\mathbb E(y-\hat y)^2-\text{closed form}=0",
    )
    h = _model_h(False)
    a, b, c = _abc()
    Hh = expectation(h @ h.T, rules=rules)
    bld.part(
        r"$\mathbb E[hh^\top]=b\Sigma^2+c\Sigma$",
        equal(Hh, b @ SIGMA @ SIGMA + c @ SIGMA),
        "difference",
        "",
        Hh,
    )
    x = vec("x", Q)
    yy = expectation((x.T @ vec("beta", Q) + XI[Q]) @ (x.T @ _P @ h), rules=rules)
    bld.part(
        r"$\mathbb E[y\hat y]=a\operatorname{tr}(P\Sigma^2)$",
        equal(yy, a @ (_P @ SIGMA @ SIGMA).tr()),
        "difference",
        "",
        yy,
    )
    return bld.done()


def _scalarise_D(e: Expr) -> Expr:
    """``D_i ↦ ω_i I`` (feature-wise weights equal to scalar weights)."""
    out = []
    for t in e.terms:
        coeff, chains = t.coeff, []
        for c in t.chains:
            word = c[1] if c[0] == "o" else c[2]
            new = []
            for L in word:
                if L[0] == "M" and L[1] == "D":
                    coeff = coeff * OMEGA[L[2][0]]
                else:
                    new.append(L)
            chains.append(("o", tuple(new)) if c[0] == "o" else ("c", c[1], tuple(new), c[3]))
        out.append(Term(coeff, tuple(chains), t.dummies, t.distinct, t.eig))
    return Expr(out)


def prove_L1f(rules: dict | None = None) -> Proof:
    r"""L1f for every ``n`` and ``d``: the feature-wise risk
    ``σ² + R_{n+1,n+1} tr Σ − 2 tr(P M_r Σ²) + tr(PᵀΣPH)``, ``M_r = Σ_i r_i D_i``,
    ``H = E[hhᵀ] = Σ_{i,j} A_ij D_iΣ²D_j + Σ_i B_ii D_iΣD_i``; ``D_i = ω_i I`` gives L1; and, for
    diagonal ``Σ = diag(λ)``, the column-wise completion of squares giving
    ``min_{P,Ω} L = σ² + R_{n+1,n+1} tr Σ − Σ_c λ_c² rᵀ(λ_cA + B)^{-1} r`` (a generic coordinate ``c``).
    """
    st = (
        r"L=\sigma^2+R_{n+1,n+1}\operatorname{tr}\Sigma-2\operatorname{tr}(PM_r\Sigma^2)+\operatorname{tr}"
        r"(P^\top\Sigma PH),\ H=\sum_{i,j}A_{ij}D_i\Sigma^2D_j+\sum_iB_{ii}D_i\Sigma D_i"
    )
    bld = _Builder("L1f", st, assumptions=[r"$D_i=\mathrm{diag}(\Omega_i)$ (symmetric letters)"])
    E, log = derive_risk_matrix(featurewise=True, rules=rules)
    bld.log.steps.extend(log.steps)
    L, H, _ = _closed_featurewise()
    bld.step("closed form", r"$M_r$ and $H$ as sums over examples", L)
    bld.part(
        "derived feature-wise risk = closed form",
        equal(E, L),
        "difference",
        r"\mathbb E(y-\hat y)^2-\text{closed form}=0",
    )
    Hh = expectation(_model_h(True) @ _model_h(True).T, rules=rules)
    bld.part(r"$\mathbb E[hh^\top]=H$", equal(Hh, H), "difference", "", Hh)
    bld.part(
        r"$D_i=\omega_iI$ reduces to L1",
        equal(_scalarise_D(L), _closed_L1()),
        "substitution",
        r"D_i=\omega_i I",
    )
    # diagonal Sigma: one generic coordinate c (every quantity below is a scalar of coordinate c)
    lam, Hc, mc, Pcc = sp.symbols("lambda_c H_cc m_c P_cc", positive=True)
    qA, qB = sp.symbols("q_A q_B", positive=True)  # Ω_cᵀAΩ_c, Ω_cᵀBΩ_c
    Pstar = lam * mc / Hc
    bld.part(
        "column-wise completion of squares",
        sp.expand(
            lam * Hc * Pcc**2
            - 2 * lam**2 * mc * Pcc
            - (lam * Hc * (Pcc - Pstar) ** 2 - lam**3 * mc**2 / Hc)
        )
        == 0,
        "algebra",
        r"\lambda_cH_{cc}P_{cc}^2-2\lambda_c^2m_cP_{cc}=\lambda_cH_{cc}(P_{cc}-\lambda_cm_c/H_{cc})^2"
        r"-\lambda_c^3m_c^2/H_{cc}",
    )
    bld.part(
        "column value",
        sp.simplify(lam**3 * mc**2 / (lam**2 * qA + lam * qB) - lam**2 * mc**2 / (lam * qA + qB))
        == 0,
        "algebra",
        r"H_{cc}=\lambda_c^2\Omega_c^\top A\Omega_c+\lambda_c\Omega_c^\top B\Omega_c\Rightarrow"
        r"\lambda_c^3m_c^2/H_{cc}=\lambda_c^2(r^\top\Omega_c)^2/\Omega_c^\top(\lambda_cA+B)\Omega_c",
    )
    bld.lemma(
        r"for diagonal $\Sigma$ and $D_i$: $H$ is diagonal, $\operatorname{tr}(PM_r\Sigma^2)=\sum_c P_{cc}"
        r"m_c\lambda_c^2$, $\operatorname{tr}(P^\top\Sigma PH)=\sum_{e,c}\lambda_eH_{cc}P_{ec}^2$ (off-diagonal "
        r"$P_{ec}$ only add $\lambda_eH_{cc}P_{ec}^2\ge0$)"
    )
    bld.lemma(
        r"Cauchy--Schwarz: $\max_{\Omega_c}(r^\top\Omega_c)^2/\Omega_c^\top M_c\Omega_c=r^\top M_c^{-1}r$ "
        r"for $M_c=\lambda_cA+B\succ0$, attained iff $\Omega_c\propto M_c^{-1}r$"
    )
    return bld.done()


# ----------------------------------------------------------------------------- L2, L3

_a, _b, _c = sp.Symbol("a", real=True), sp.Symbol("b", positive=True), sp.Symbol("c", positive=True)
_Rq = Rij(Q, Q)


def _risk_abc(P: Expr) -> Expr:
    """``L(P) = σ² + R_q tr Σ − 2a tr(PΣ²) + tr(PᵀΣP N)``, ``N = bΣ² + cΣ`` (scalars ``a, b, c``)."""
    return (
        scalar(_sig2)
        + _Rq * _trS
        - 2 * _a * (P @ SIGMA @ SIGMA).tr()
        + (P.T @ SIGMA @ P @ fn(_b * LAM**2 + _c * LAM)).tr()
    )


def prove_L2(rules: dict | None = None) -> Proof:
    r"""L2 for every ``d``: ``P*(ω) = a(bΣ + cI)^{-1}`` is the unique minimiser of ``L(·, ω)`` and
    ``min_P L = σ² + R_{n+1,n+1} tr Σ − a² Σ_k λ_k²/(bλ_k + c)``.

    Parts: gradient by the trace-derivative rule, ``∇_P L = 2(ΣPΣ(bΣ+cI) − aΣ²)``; the gradient
    maps invertibly to ``P − P*`` (so ``∇L = 0 ⇔ P = P*``); exact quadratic
    ``L(P* + Δ) − L(P*) = tr(ΔᵀΣΔN)``; ``tr(ΔᵀΣΔN) = ‖Σ^{1/2}ΔN^{1/2}‖_F²``; the profile by the
    spectral rule.
    """
    st = (
        r"P^*(\omega)=a(b\Sigma+cI)^{-1},\ \min_PL=\sigma^2+R_{n+1,n+1}\operatorname{tr}\Sigma-a^2\sum_k"
        r"\lambda_k^2/(b\lambda_k+c)"
    )
    bld = _Builder(
        "L2",
        st,
        symbols=("d",),
        assumptions=[
            r"$\Sigma\succ0$",
            r"$b\Sigma+cI\succ0$ (e.g. $b,c>0$)",
            r"$a,b,c$ the scalars of L1",
        ],
    )
    L = _risk_abc(_P)
    bld.step("definition", "the L1 risk as a function of P", L)
    G = grad_trace(L, "P")
    bld.step(
        "trace derivative",
        r"\partial_X\operatorname{tr}(XU)=U^\top,\ \partial_X\operatorname{tr}(X^\top U)=U",
        canonical(G),
        applications=3,
    )
    Gclosed = 2 * (SIGMA @ _P @ SIGMA @ fn(_b * LAM + _c)) - 2 * _a * (SIGMA @ SIGMA)
    bld.part("gradient", equal(G, Gclosed), "identity", "", Gclosed)
    Pstar = _a * fn(1 / (_b * LAM + _c))
    # Σ^{-1} ∇L (Σ(bΣ + cI))^{-1} / 2 = P − P*: invertible map, so ∇L = 0 iff P = P*
    back = fn(1 / LAM) @ G @ fn(1 / (LAM * (_b * LAM + _c))) * sp.Rational(1, 2)
    bld.part(
        r"stationarity $\Leftrightarrow P=P^*$",
        equal(back, _P - Pstar),
        "functions of Sigma",
        r"\tfrac12\Sigma^{-1}\nabla_PL\,(\Sigma(b\Sigma+cI))^{-1}=P-a(b\Sigma+cI)^{-1}",
        _P - Pstar,
    )
    Delta = mat("Delta")
    Lshift = substitute_letter(L, "P", Pstar + Delta)
    quad = (Delta.T @ SIGMA @ Delta @ fn(_b * LAM**2 + _c * LAM)).tr()
    Lstar = substitute_letter(L, "P", Pstar)
    bld.part(
        "exact quadratic",
        equal(Lshift - Lstar, quad),
        "substitution",
        r"L(P^*+\Delta)-L(P^*)=\operatorname{tr}(\Delta^\top\Sigma\Delta N),\ N=b\Sigma^2+c\Sigma",
        quad,
    )
    Gm = fn(sp.sqrt(LAM)) @ Delta @ fn(sp.sqrt(_b * LAM**2 + _c * LAM))
    bld.part(
        "sum of squares",
        equal((Gm.T @ Gm).tr(), quad),
        "functions of Sigma",
        r"\operatorname{tr}(\Delta^\top\Sigma\Delta N)=\|\Sigma^{1/2}\Delta N^{1/2}\|_F^2",
    )
    prof = scalar(_sig2) + _Rq * _trS - _a**2 * fn(LAM**2 / (_b * LAM + _c)).tr()
    bld.part(
        "profile",
        equal(Lstar, prof, spectral=True),
        "spectral",
        r"L(P^*)=\sigma^2+R_{n+1,n+1}\operatorname{tr}\Sigma-a^2\sum_k\lambda_k^2/(b\lambda_k+c)",
        canonical(Lstar, spectral=True),
    )
    bld.lemma(
        r"$\|G\|_F^2\ge0$ with equality iff $G=0$; $\Sigma^{1/2}$ and $N^{1/2}$ are invertible when "
        r"$\Sigma\succ0$, $b\Sigma+cI\succ0$, so $\Delta\ne0\Rightarrow L(P^*+\Delta)>L(P^*)$"
    )
    return bld.done()


def _subs_everywhere(e: Expr, mapping: dict) -> Expr:
    """Substitute scalars in coefficients and inside ``f(Σ)`` letters."""
    out = []
    for t in e.terms:
        chains = []
        for c in t.chains:
            word = c[1] if c[0] == "o" else c[2]
            word = tuple(("F", L[1].xreplace(mapping)) if L[0] == "F" else L for L in word)
            chains.append(("o", word) if c[0] == "o" else ("c", c[1], word, c[3]))
        out.append(
            Term(sp.sympify(t.coeff).xreplace(mapping), tuple(chains), t.dummies, t.distinct, t.eig)
        )
    return Expr(out)


def prove_L3() -> Proof:
    r"""L3 for every ``n`` and ``d``: ``L(P/s, sω) = L(P, ω)`` for ``s ≠ 0``; ``a, b, c`` are homogeneous
    of degrees 1, 2, 2 in ``ω``; the profile is homogeneous of degree 0; ``P*(sω) = P*(ω)/s``."""
    st = r"L(P/s,s\omega)=L(P,\omega)\ (s\ne0),\ P^*(s\omega)=P^*(\omega)/s"
    bld = _Builder("L3", st, assumptions=[r"$s\neq0$ (either sign)"])
    s = sp.Symbol("s", real=True, nonzero=True)
    L = _closed_L1()
    bld.step("definition", "the L1 risk, a, b, c as sums over examples", L)

    def scale_omega(e: Expr) -> Expr:
        return e.map_coeff(
            lambda c: c.replace(
                lambda x: isinstance(x, sp.Indexed) and x.base == OMEGA, lambda x: s * x
            )
        )

    Ls = scale_omega(substitute_letter(L, "P", (1 / s) * _P))
    bld.part(
        "risk invariant",
        equal(Ls, L),
        "substitution",
        r"P\mapsto P/s,\ \omega_i\mapsto s\omega_i",
        Ls,
    )
    a, b, c = _abc()
    bld.part(
        "$a, b, c$ homogeneous of degrees 1, 2, 2",
        equal(scale_omega(a), s * a)
        and equal(scale_omega(b), s**2 * b)
        and equal(scale_omega(c), s**2 * c),
        "substitution",
    )
    prof = scalar(_sig2) + _Rq * _trS - _a**2 * fn(LAM**2 / (_b * LAM + _c)).tr()
    profs = _subs_everywhere(prof, {_a: s * _a, _b: s**2 * _b, _c: s**2 * _c})
    bld.part("profile degree 0", equal(profs, prof, spectral=True), "spectral")
    P1 = _a * fn(1 / (_b * LAM + _c))
    bld.part(
        "$P^*$ scaling",
        equal(_subs_everywhere(P1, {_a: s * _a, _b: s**2 * _b, _c: s**2 * _c}), (1 / s) * P1),
        "functions of Sigma",
    )
    return bld.done()


# ----------------------------------------------------------------------------- L4 (gradient, curve, bracket)


def prove_L4() -> Proof:
    r"""L4 for every ``n`` and ``d``: at a stationary point of the profile with ``a ≠ 0``,
    ``(A + φB)ω = κ r`` with ``φ = S_2/S_3`` a weighted mean of ``1/λ_k``; so every global minimiser
    lies on the curve ``ω ∝ (A + tB)^{-1} r`` with ``t = φ(ω) ∈ [1/λ_max, 1/λ_min]``, a fixed point of
    ``t ↦ φ(ω(t))``; for ``Σ = sI``, ``φ ≡ 1/s``.

    Parts (symbolic ``n`` through the vector chain rule, symbolic ``d`` through eigen-sums):
    ``F = bS_3 + cS_2`` (so the gradient is ``−2a²S_3[(A + φB)ω − κr]``), ``φ`` minus any ``m`` is
    the weighted mean of ``1/λ_k − m`` with weights ``λ_k³/(bλ_k+c)² > 0``, ``φ`` is homogeneous of
    degree 0 in ``(b, c)`` (so ``φ(ω(t)) = φ(ω)`` when ``ω ∝ ω(t)``), isotropic ``φ = 1/s``.
    """
    # why long: a linear derivation, one proof step per statement, read top to bottom like the
    # proof on paper; split into helpers, its steps would no longer read in order.
    st = (
        r"\nabla_\omega\Big(a^2\sum_k\frac{\lambda_k^2}{b\lambda_k+c}\Big)=2a^2S_3\big[\kappa r-(A+\varphi B)"
        r"\omega\big],\ \varphi=\frac{S_2}{S_3}\in[\lambda_{\max}^{-1},\lambda_{\min}^{-1}]"
    )
    bld = _Builder(
        "L4", st, assumptions=[r"$r\ne0$, $B\succ0$, $\Sigma\succ0$", r"$a\ne0$ at minimisers"]
    )
    k = idx("k")
    lam = EIG[k]
    F, S2, S3 = (
        lam**2 / (_b * lam + _c),
        lam**2 / (_b * lam + _c) ** 2,
        lam**3 / (_b * lam + _c) ** 2,
    )
    bld.step(
        "definition",
        r"profile gain $J=a^2F(b,c)$, $F=\sum_k\lambda_k^2/(b\lambda_k+c)$ (L2)",
        r"J(\omega)=a^2\sum_k \lambda_k^2/(b\lambda_k+c)",
    )
    l = idx("l")
    a, b, c = _abc()
    Aw = sum_over(scalar(Rij(l, _j) * OMEGA[_j]), _j) + Rij(l, l) * OMEGA[l]
    Bw = (Rij(l, l) * _trS + _sig2) @ scalar(OMEGA[l])
    bld.part(
        r"$\nabla a=r$, $\nabla b=2A\omega$, $\nabla c=2B\omega$",
        equal(me.diff_indexed(a, OMEGA, l), scalar(Rij(l, Q)))
        and equal(me.diff_indexed(b, OMEGA, l), 2 * Aw)
        and equal(me.diff_indexed(c, OMEGA, l), 2 * Bw),
        "kronecker delta",
        r"\partial_{\omega_l}a=r_l,\ \partial_{\omega_l}b=2(A\omega)_l,\ \partial_{\omega_l}c=2(B\omega)_l",
    )
    bld.step(
        "chain rule",
        r"J=a^2F(b,c)",
        r"\nabla J=2aF\,r+2a^2F_b\,A\omega+2a^2F_c\,B\omega",
    )
    bld.part(
        "$F_b=-S_3$, $F_c=-S_2$",
        sp.simplify(sp.diff(F, _b) + S3) == 0 and sp.simplify(sp.diff(F, _c) + S2) == 0,
        "spectral",
        "termwise in $k$",
    )
    bld.part(
        "$F=bS_3+cS_2$",
        sp.simplify(F - (_b * S3 + _c * S2)) == 0,
        "spectral",
        r"\Rightarrow \nabla J=2a^2S_3\big[\tfrac{b+\varphi c}{a}r-(A+\varphi B)\omega\big]",
    )
    m = sp.Symbol("m", real=True)
    # φ − m = Σ_k w_k (1/λ_k − m) / Σ_k w_k with w_k = λ_k³/(bλ_k+c)²: checked termwise on numerators
    bld.part(
        r"$\varphi$ is a weighted mean of $1/\lambda_k$",
        sp.simplify(S2 - m * S3 - S3 * (1 / lam - m)) == 0,
        "spectral",
        r"S_2-mS_3=\sum_k w_k(\lambda_k^{-1}-m),\ w_k=\lambda_k^3/(b\lambda_k+c)^2>0",
    )
    bld.part("weights positive", sp.simplify(S3).is_positive is True, "sign", r"\lambda_k,b,c>0")
    s = sp.Symbol("s", positive=True)
    bld.part(
        r"$\varphi$ homogeneous of degree 0",
        sp.simplify((S2 / S3).subs({_b: s * _b, _c: s * _c}) - S2 / S3) == 0,
        "algebra",
    )
    bld.part(
        r"isotropic: $\varphi=1/s$",
        sp.simplify((S2 / S3).subs(lam, s) - 1 / s) == 0,
        "spectral",
        r"\Sigma=sI\Rightarrow\varphi=1/s",
    )
    bld.lemma(
        r"a stationary point with $a\ne0$ has $\nabla J=0$, i.e. $(A+\varphi B)\omega=\kappa r$; "
        r"$A\succeq0$, $B\succ0$, $\varphi>0$ make $A+\varphi B$ invertible, so $\omega\propto(A+\varphi B)^{-1}r$"
    )
    bld.lemma(
        r"$J\ge0$ with $J=0$ iff $a=0$; $r\ne0$ gives points with $J>0$, so global maximisers of $J$ "
        r"(minimisers of the risk) have $a\ne0$"
    )
    return bld.done()


# ----------------------------------------------------------------------------- L6, L7


def _set_indexed(e: Expr, base: Any, value: int) -> Expr:
    """Give every ``base[...]`` in the coefficients the value ``value`` (e.g. ``R = 11ᵀ``, ``ω = 1``)."""
    return e.map_coeff(
        lambda c: c.replace(
            lambda x: isinstance(x, sp.Indexed) and x.base == base, lambda x: sp.Integer(value)
        )
    )


def prove_L6() -> Proof:
    r"""L6 for every ``n`` and ``d``: for ``R = 11ᵀ``, ``ω* ∝ 1`` is the unique minimiser up to scale and
    ``P*(1) = ((n+1)Σ + (tr Σ + σ²)I)^{-1}``.

    Proof: with ``R = 11ᵀ``, ``b = a² + q`` and ``c = τq`` (``q = ωᵀω``, ``τ = tr Σ + σ²``); the
    profile gain is ``J = a²F(a² + q, τq) = F(1 + u, τu)``, ``u = q/a²`` (degree 0), strictly
    decreasing in ``u``; Cauchy–Schwarz ``nq − a² = ½Σ_{i,j}(ω_i − ω_j)² ≥ 0`` gives ``u ≥ 1/n``
    with equality iff ``ω ∝ 1``. At ``ω = 1``: ``a = n``, ``b = n² + n``, ``c = nτ``.
    """
    # why long: a linear derivation, one proof step per statement, read top to bottom like the
    # proof on paper; split into helpers, its steps would no longer read in order.
    st = (
        r"R=\mathbf 1\mathbf 1^\top:\ \omega^*\propto\mathbf 1,\ P^*(\mathbf 1)=\big((n+1)\Sigma+"
        r"(\operatorname{tr}\Sigma+\sigma^2)I\big)^{-1}"
    )
    bld = _Builder(
        "L6", st, assumptions=[r"$\Sigma\succ0$", r"$R=\mathbf 1\mathbf 1^\top$ (size $n+1$)"]
    )
    a, b, c = _abc()
    a1, b1, c1 = (_set_indexed(e, me.R, 1) for e in (a, b, c))
    qsum = sum_over(scalar(OMEGA[_i] ** 2), _i)
    bld.step(
        "definition",
        r"$R=\mathbf 1\mathbf 1^\top$ in $a, b, c$",
        r"a=\sum_i\omega_i,\ b=\sum_{i,j}\omega_i\omega_j+\sum_i"
        r"\omega_i^2,\ c=(\operatorname{tr}\Sigma+\sigma^2)\sum_i\omega_i^2",
    )
    bld.part("$b=a^2+q$", equal(b1, a1 @ a1 + qsum), "index split", r"q=\omega^\top\omega")
    bld.part(
        r"$c=\tau q$",
        equal(c1, (_trS + _sig2) @ qsum),
        "linearity",
        r"\tau=\operatorname{tr}\Sigma+\sigma^2",
    )
    cs = sum_over(scalar((OMEGA[_i] - OMEGA[_j]) ** 2 / 2), _i, _j)
    bld.part(
        "Cauchy-Schwarz identity",
        equal(N * qsum - a1 @ a1, cs),
        "free index",
        r"nq-a^2=\tfrac12\sum_{i,j}(\omega_i-\omega_j)^2\ge0,\ =0\iff\omega\propto\mathbf 1",
        cs,
    )
    k = idx("k")
    lam = EIG[k]
    u, tau, aa = (
        sp.Symbol("u", positive=True),
        sp.Symbol("tau", positive=True),
        sp.Symbol("a", nonzero=True, real=True),
    )
    term = aa**2 * lam**2 / ((aa**2 + u * aa**2) * lam + tau * u * aa**2)
    g = lam**2 / ((1 + u) * lam + tau * u)
    bld.part(
        "$J$ depends on $u=q/a^2$ only",
        sp.simplify(term - g) == 0,
        "spectral",
        r"a^2F(a^2+q,\tau q)=\sum_k\lambda_k^2/((1+u)\lambda_k+\tau u)",
    )
    dg = sp.simplify(sp.diff(g, u))
    bld.part(
        "$J$ strictly decreasing in $u$",
        sp.simplify(dg + lam**2 * (lam + tau) / ((1 + u) * lam + tau * u) ** 2) == 0
        and (lam**2 * (lam + tau) / ((1 + u) * lam + tau * u) ** 2).is_positive is True,
        "sign",
        r"\partial_u=-\sum_k\lambda_k^2(\lambda_k+\tau)/((1+u)\lambda_k+\tau u)^2<0",
    )
    i1 = canonical(sum_over(scalar(1), _i))
    a_1, b_1, c_1 = (_set_indexed(e, OMEGA, 1) for e in (a1, b1, c1))
    bld.part(
        r"$a(\mathbf 1)=n$, $b(\mathbf 1)=n^2+n$, $c(\mathbf 1)=n\tau$",
        equal(a_1, scalar(N))
        and equal(b_1, scalar(N**2 + N))
        and equal(c_1, N * (_trS + _sig2))
        and equal(i1, scalar(N)),
        "free index",
    )
    tS = sp.Symbol(r"\operatorname{tr}\Sigma", positive=True)
    Pstar = N * fn(1 / ((N**2 + N) * LAM + N * (tS + _sig2)))
    target = fn(1 / ((N + 1) * LAM + tS + _sig2))
    bld.part(
        r"$P^*(\mathbf 1)$",
        equal(Pstar, target),
        "functions of Sigma",
        r"n\big((n^2+n)\Sigma+n(\operatorname{tr}\Sigma+\sigma^2)I\big)^{-1}=\big((n+1)\Sigma+(\operatorname{tr}"
        r"\Sigma+\sigma^2)I\big)^{-1}",
        target,
    )
    bld.lemma(
        r"$J=0$ iff $a=0$, and $J(\mathbf 1)>0$, so minimisers have $a\ne0$; $J$ decreasing in $u$ and "
        r"$u\ge1/n$ with equality iff $\omega\propto\mathbf 1$ give the unique maximiser up to scale (L3)"
    )
    return bld.done()


def prove_L7() -> Proof:
    r"""L7 for every ``K``, segment lengths ``m_k``, ``d`` and ``σ``: with independent unit-variance tasks
    and ``Σ = I_d``, ``ω*`` is unique up to scale, constant on each segment, ``ω*_k ∝ ρ_k/(m_k + 1 + d + σ²)``,
    and ``min L = σ² + R_{n+1,n+1} d − d Σ_k m_k ρ_k²/(m_k + 1 + d + σ²)``.

    Proof: for ``Σ = I`` the profile gain is ``J = d a²/(b + c) = d (rᵀω)²/(ωᵀMω)``, ``M = A + B``
    (spectral rule with every ``λ_k = 1``), a Rayleigh quotient maximised exactly on
    ``ω ∝ M^{-1} r`` (Cauchy–Schwarz, ``M ≻ 0``); the segment identity ``(Mω̂)_i = ρ_{k(i)}`` for the
    claimed ``ω̂`` is checked for a generic segment ``κ`` with symbolic ``m_κ, ρ_κ``.
    """
    st = r"\omega^*_k\propto\rho_k/(m_k+1+d+\sigma^2)\ \text{on segment } k"
    bld = _Builder(
        "L7",
        st,
        symbols=("n", "d", "K", "m_k"),
        assumptions=[
            r"$\Sigma=I_d$",
            r"$R_{ij}=[k(i)=k(j)]$, $R_{i,n+1}=\rho_{k(i)}$",
            r"$R\succeq0$",
        ],
    )
    bld.step(
        "definition",
        "profile gain from L2, tasks and covariance of the statement",
        r"J(\omega)=a^2\sum_k\frac{\lambda_k^2}{b\lambda_k+c},\ A=R_{[n]}+I,\ B=(d+\sigma^2)I,\ r_i=\rho_{k(i)}",
    )
    k = idx("k")
    lam = EIG[k]
    F = lam**2 / (_b * lam + _c)
    bld.part(
        r"$\Sigma=I$: $J=da^2/(b+c)$",
        sp.simplify(F.subs(lam, 1) - 1 / (_b + _c)) == 0,
        "spectral",
        r"\operatorname{tr}f(I_d)=d\,f(1)",
    )
    d = me.D
    kap = idx("kappa")
    m_, rho = sp.IndexedBase("m", positive=True), sp.IndexedBase("rho", real=True)
    sig = SIGMA_NOISE
    w = rho[kap] / (m_[kap] + 1 + d + sig**2)
    # (M ŵ)_i for i in segment κ: Σ_{j: k(j)=κ} ŵ_j (R_ij = 1 there, 0 elsewhere: Γ = I)
    #   + R_ii ŵ_i (the diag(R_ii) of A) + (R_ii tr Σ + σ²) ŵ_i (B, tr I = d)
    Mw = m_[kap] * w + 1 * w + (1 * d + sig**2) * w
    bld.step(
        "segment sum",
        r"\sum_{j:k(j)=\kappa}g(k(j))=m_\kappa\,g(\kappa);\ \sum_{j:k(j)\ne\kappa}R_{ij}\hat\omega_j=0",
        r"(M\hat\omega)_i=m_\kappa\hat\omega_\kappa+\hat\omega_\kappa+(d+\sigma^2)\hat\omega_\kappa",
    )
    bld.part(
        r"$M\hat\omega=r$",
        sp.simplify(Mw - rho[kap]) == 0,
        "algebra",
        r"(M\hat\omega)_i=\rho_{k(i)}=r_i\Rightarrow M^{-1}r=\hat\omega",
        sp.latex(w),
    )
    Kk = sp.Symbol("K", integer=True, positive=True)
    rMr = sp.Sum(m_[kap] * rho[kap] * w, (kap, 1, Kk))
    Lstar = (
        sig**2
        + Rij(Q, Q) * d
        - d * sp.Sum(m_[kap] * rho[kap] ** 2 / (m_[kap] + 1 + d + sig**2), (kap, 1, Kk))
    )
    bld.part(
        "optimal risk",
        sp.simplify(sig**2 + Rij(Q, Q) * d - d * rMr - Lstar) == 0,
        "segment sum",
        r"r^\top M^{-1}r=\sum_\kappa m_\kappa\rho_\kappa\hat\omega_\kappa",
        sp.latex(Lstar),
    )
    bld.lemma(
        r"$M=A+B=R_{[n]}+\mathrm{diag}(R_{ii})+(d+\sigma^2)I\succ0$ ($R_{[n]}\succeq0$ as a principal "
        r"submatrix of $R\succeq0$)"
    )
    bld.lemma(
        r"Cauchy--Schwarz in the $M$-inner product: $(r^\top\omega)^2\le(\omega^\top M\omega)(r^\top M^{-1}r)$, "
        r"equality iff $\omega\propto M^{-1}r$"
    )
    return bld.done()


# ----------------------------------------------------------------------------- block-matrix algebra (C1–C3)


class Block:
    """A block matrix with blocks of sizes ``d`` (features) and ``1`` (label) whose entries are
    :class:`~theory.matrix_engine.Expr` (``None`` is a zero block). ``@`` multiplies blockwise
    with the engine's product; ``.T`` transposes blocks and entries.

    >>> x, y = vec("x", Q), scalar(Y[Q])
    >>> z = Block([[x], [y]])
    >>> Wq = Block([[mat("P_q"), None], [None, None]])
    >>> print((Wq @ z).rows[0][0].latex())
    P_q x
    """

    def __init__(self, rows: Iterable[Iterable[Expr | None]]) -> None:
        self.rows = [list(r) for r in rows]

    def __matmul__(self, other: Block) -> Block:
        n, m, p = len(self.rows), len(other.rows), len(other.rows[0])
        if len(self.rows[0]) != m:
            raise ValueError("block shapes do not match")
        out = []
        for i in range(n):
            row = []
            for j in range(p):
                acc = None
                for k in range(m):
                    a, b = self.rows[i][k], other.rows[k][j]
                    if a is None or b is None:
                        continue
                    acc = a @ b if acc is None else acc + a @ b
                row.append(acc)
            out.append(row)
        return Block(out)

    def map(self, f: Callable[[Expr], Expr]) -> Block:
        return Block([[None if e is None else f(e) for e in r] for r in self.rows])

    @property
    def T(self) -> Block:
        cols = [list(c) for c in zip(*self.rows)]
        return Block([[None if e is None else e.T for e in c] for c in cols])

    def __add__(self, other: Block) -> Block:
        return Block(
            [
                [a if b is None else b if a is None else a + b for a, b in zip(r1, r2)]
                for r1, r2 in zip(self.rows, other.rows)
            ]
        )


def _weights(Pq: Expr, Pk: Expr, sign: int) -> tuple:
    return (
        Block([[Pq, None], [None, None]]),
        Block([[Pk, None], [None, None]]),
        Block([[None, None], [None, scalar(sign)]]),
    )


def _zero(e: Any) -> bool:
    return e is None or is_zero(e)


@functools.lru_cache(maxsize=1)
def _state_formula() -> tuple[bool, str]:
    """(verified, LaTeX) of the symbolic-``t`` induction proof of the GLA state formula."""
    from .construction import prove_state_formula_induction

    res = prove_state_formula_induction()
    if isinstance(res, dict):
        return bool(res["verified"]), res["latex"]
    return bool(res.verified), res.latex


def prove_C1() -> Proof:
    r"""C1 for every ``n`` and ``d``: one scalar-gated GLA layer with the block weights outputs
    ``e_{d+1}ᵀ o_{n+1} = xᵀ (P_qᵀP_k) Σ_i ω_i y_i x_i`` with ``ω_i = Π_{j=i+1}^{n+1} g_j``.

    From the state formula ``S_{n+1} = Σ_{s≤n+1} ω_s v_s k_sᵀ`` (induction on ``t`` with symbolic
    ``t``, :func:`theory.construction.prove_state_formula_induction`) and block-matrix algebra on a
    generic example token ``z_s = [x_s; y_s]`` and the query ``z_{n+1} = [x; 0]``.
    """
    st = r"e_{d+1}^\top o_{n+1}=x^\top P_q^\top P_k\sum_{i\le n}\omega_iy_ix_i,\ \omega_i=\prod_{j=i+1}^{n+1}g_j"
    bld = _Builder(
        "C1",
        st,
        assumptions=[
            r"$W_q=[P_q\,0;0\,0]$, $W_k=[P_k\,0;0\,0]$, $W_v=[0\,0;0\,1]$",
            "the query attends to itself",
        ],
    )
    bld.step(
        "definition",
        r"the GLA layer (scalar gates $G_t=g_t\mathbf 1\mathbf 1^\top$)",
        r"S_t=G_t\odot S_{t-1}+v_tk_t^\top,\ o_t=S_tq_t,\ q_t=W_qz_t,\ k_t=W_kz_t,\ v_t=W_vz_t,\ z_i=[x_i;y_i],\ z_{n+1}=[x;0]",
    )
    ok, tex = _state_formula()
    bld.part("state formula (induction on $t$)", ok, "lemma", "scalar, key and value gates", tex)
    s = idx("s")
    Pq, Pk = mat("P_q"), mat("P_k")
    Wq, Wk, Wv = _weights(Pq, Pk, 1)
    zs = Block([[vec("x", s)], [scalar(Y[s])]])
    zq = Block([[vec("x", Q)], [None]])
    q = Wq @ zq
    term_s = (Wv @ zs) @ (Wk @ zs).T @ q
    term_q = (Wv @ zq) @ (Wk @ zq).T @ q
    bld.step(
        "block product", r"v_sk_s^\top q_{n+1}=[0;y_s][(P_kx_s)^\top\,0][P_qx;0]", term_s.rows[1][0]
    )
    bld.part(
        "query term vanishes",
        _zero(term_q.rows[1][0]) and _zero(term_q.rows[0][0]),
        "block product",
        r"v_{n+1}=W_v[x;0]=0",
    )
    yhat = sum_over(OMEGA[s] * term_s.rows[1][0], s)
    target = vec("x", Q).T @ Pq.T @ Pk @ sum_over(OMEGA[s] * Y[s] * vec("x", s), s)
    bld.part(
        r"label output = one WPGD step, $P=P_q^\top P_k$",
        equal(yhat, target),
        "trace cyclicity",
        r"y_sx_s^\top P_k^\top P_qx=x^\top P_q^\top P_kx_sy_s",
        target,
    )
    return bld.done()


def prove_C2() -> Proof:
    r"""C2 for every ``n`` and ``d``: with key gates ``G_t = 1γ_tᵀ`` the label output is
    ``xᵀP_qᵀ Σ_i y_i D_i P_k x_i``, ``D_i = diag(Ω_i)``, ``Ω_i = (Π_{j>i} γ_j)_{1:d}``; with ``P_k`` diagonal
    (e.g. ``I``) it equals ``xᵀ P Σ_i y_i (Ω_i ⊙ x_i)``, ``P = P_qᵀP_k``."""
    st = r"e_{d+1}^\top o_{n+1}=x^\top P_q^\top\sum_iy_i\operatorname{diag}(\Omega_i)P_kx_i"
    bld = _Builder("C2", st, assumptions=[r"key gates act on the columns of $S$ (the key axis)"])
    bld.step(
        "definition",
        r"the GLA layer (key gates $G_t=\mathbf 1\gamma_t^\top$)",
        r"S_t=G_t\odot S_{t-1}+v_tk_t^\top,\ o_t=S_tq_t,\ q_t=W_qz_t,\ k_t=W_kz_t,\ v_t=W_vz_t,\ z_i=[x_i;y_i],\ z_{n+1}=[x;0]",
    )
    ok, _ = _state_formula()
    bld.part(
        "state formula (induction on $t$, key gates)",
        ok,
        "lemma",
        "",
        r"S_{n+1}=\sum_s v_sk_s^\top\Gamma_s,\ \Gamma_s=\prod_{r>s}\operatorname{diag}(\gamma_r)",
    )
    s = idx("s")
    Pq, Pk = mat("P_q"), mat("P_k")
    Wq, Wk, Wv = _weights(Pq, Pk, 1)
    Ds = mat("D", s, sym=True)
    Gam = Block([[Ds, None], [None, scalar(sp.Symbol("gamma_label"))]])
    zs = Block([[vec("x", s)], [scalar(Y[s])]])
    q = Wq @ Block([[vec("x", Q)], [None]])
    term_s = (Wv @ zs) @ (Wk @ zs).T @ Gam @ q
    bld.step("block product", r"v_sk_s^\top\Gamma_sq_{n+1}", term_s.rows[1][0])
    yhat = sum_over(term_s.rows[1][0], s)
    target = vec("x", Q).T @ Pq.T @ sum_over(Y[s] * (Ds @ Pk @ vec("x", s)), s)
    bld.part(
        "label output = feature-wise WPGD in the key basis",
        equal(yhat, target),
        "trace cyclicity",
        "",
        target,
    )
    yI = substitute_letter(yhat, "P_k", IDENTITY)
    bld.part(
        r"$P_k=I$: $x^\top P\sum_iy_i(\Omega_i\odot x_i)$, $P=P_q^\top$",
        equal(yI, vec("x", Q).T @ Pq.T @ sum_over(Y[s] * (Ds @ vec("x", s)), s)),
        "substitution",
    )
    # diagonal P_k: diagonal letters commute, D_s K = K D_s
    yK = substitute_letter(yhat, "P_k", mat("K", sym=True))
    fw = vec("x", Q).T @ Pq.T @ mat("K", sym=True) @ sum_over(Y[s] * (Ds @ vec("x", s)), s)
    bld.part(
        r"$P_k$ diagonal: $P=P_q^\top P_k$",
        equal(yK, fw, commuting={"D", "K"}),
        "diagonal matrices commute",
        r"D_sK=KD_s",
    )
    bld.lemma(
        r"for non-diagonal $P_k$ the form $x^\top P\sum_iy_i(\Omega_i\odot x_i)$ fails (counterexample "
        r"$d=2$, $P_k=[[1,1],[0,1]]$ in the small-instance leg)"
    )
    return bld.done()


def prove_C3() -> Proof:
    r"""C3 for every ``L``, ``n`` and ``d``: the induction step of the residual stack.

    Hypothesis at layer ``ℓ``: token ``i`` is ``[x_i; y_i − x_iᵀw_i]`` (``y_{n+1} = 0``). One layer with
    ``W_v = [0 0; 0 −1]`` and ``P = P_qᵀP_k`` leaves the features unchanged and maps the label slot to
    ``y_i − x_iᵀ(w_i + P Σ_{j≤i} ω_ij x_j (y_j − x_jᵀw_j))`` — the causal WPGD update, query self-term
    included (``j = n+1`` has residual ``0 − xᵀw_{n+1}``). Base ``ℓ = 0``: ``w = 0``. Hence
    ``ŷ = −e_{d+1}ᵀz^{(L)}_{n+1} = xᵀw^{(n+1)}_L`` for every ``L``.
    """
    st = (
        r"y^{(\ell+1)}_i=y_i-x_i^\top w^{(i)}_{\ell+1},\ w^{(i)}_{\ell+1}=w^{(i)}_\ell+P_\ell\sum_{j\le i}"
        r"\omega_{ij}x_j(y_j-x_j^\top w^{(j)}_\ell)"
    )
    bld = _Builder(
        "C3",
        st,
        symbols=("L", "n", "d"),
        assumptions=[
            r"$Z_{\ell+1}=Z_\ell+\mathrm{GLA}_\ell(Z_\ell)$, $W_v=[0\,0;0\,-1]$",
            "every token attends to itself",
        ],
    )
    bld.step(
        "definition",
        r"induction hypothesis at layer $\ell$",
        r"z^{(\ell)}_i=[x_i;\,y_i-x_i^\top w^{(i)}_\ell],\ o_i=\sum_{j\le i}\omega_{ij}v_jk_j^\top q_i",
    )
    i, j = idx("t"), idx("s")
    om = sp.IndexedBase("omega")
    Pq, Pk = mat("P_q"), mat("P_k")
    Wq, Wk, Wv = _weights(Pq, Pk, -1)

    def token(k: Any) -> Any:  # a Block; Any because its entries are optional
        return Block([[vec("x", k)], [scalar(Y[k]) - vec("x", k).T @ vec("w", k)]])

    zi, zj = token(i), token(j)
    q = Wq @ zi
    o = (Wv @ zj) @ (Wk @ zj).T @ q  # summand j of o_i = Σ_{j≤i} ω_ij v_j k_jᵀ q_i
    bld.step("block product", r"o_i=\sum_{j\le i}\omega_{ij}v_jk_j^\top q_i", o.rows[1][0])
    bld.part(
        "features unchanged",
        _zero(o.rows[0][0]),
        "block product",
        r"W_v\ \text{writes only the label slot}",
    )
    new_label = zi.rows[1][0] + sum_over(om[i, j] * o.rows[1][0], j)
    P = Pq.T @ Pk
    upd = vec("w", i) + P @ sum_over(
        om[i, j] * (vec("x", j) @ (scalar(Y[j]) - vec("x", j).T @ vec("w", j))), j
    )
    claimed = scalar(Y[i]) - vec("x", i).T @ upd
    bld.part(
        r"label slot $=y_i-x_i^\top w^{(i)}_{\ell+1}$",
        equal(new_label, claimed),
        "trace cyclicity",
        r"the sum over $j\le i$ is formal (same range on both sides)",
        claimed,
    )
    w0 = substitute_vector_zero(zi.rows[1][0], "w")
    bld.part(r"base case $\ell=0$", equal(w0, scalar(Y[i])), "substitution", r"w^{(i)}_0=0")
    bld.part(
        "read-out",
        equal(-(scalar(0) - vec("x", Q).T @ vec("w", Q)), vec("x", Q).T @ vec("w", Q)),
        "linearity",
        r"\hat y=-y^{(L)}_{n+1}=x^\top w^{(n+1)}_L",
    )
    bld.lemma(
        r"induction on $\ell$: the step holds for every token $i$ and layer $\ell$, so for every $L$"
    )
    return bld.done()


def prove_G5_nesting() -> Proof:
    r"""The nesting part of G5 for every ``L``, ``n`` and ``d``: a GLA layer with ``W_q = 0`` outputs
    ``o_t = S_t q_t = 0`` at every token whatever ``W_k``, ``W_v``, the gates and the state, so it is the
    identity on the residual stream wherever it is inserted; in WPGD terms a step with ``P_ℓ = 0`` leaves
    every iterate unchanged. Hence ``min_{L layers} risk <= min_{L-1 layers} risk``."""
    st = r"W_q=0\Rightarrow o_t=S_tq_t=0\ \forall t;\ P_\ell=0\Rightarrow w^{(i)}_{\ell+1}=w^{(i)}_\ell"
    bld = _Builder(
        "G5 (nesting)", st, symbols=("L", "n", "d"), assumptions=["residual stack, any gates"]
    )
    bld.proof.scope = "part (i), the nesting theorem; the strict decrease is measured, not proved"
    bld.step(
        "definition",
        "a GLA layer with $W_q=0$ in the residual stack",
        r"S_t=G_t\odot S_{t-1}+v_tk_t^\top,\ o_t=S_tq_t,\ q_t=W_qz_t,\ k_t=W_kz_t,\ v_t=W_vz_t,\ z_i=[x_i;y_i],\ z_{n+1}=[x;0],\ W_q=0",
    )
    t = idx("t")
    # a generic state: blocks d×d, d×1, 1×d, 1×1 given as generic words/vectors/scalars
    S = Block(
        [
            [mat("S_{11}"), vec("s_{12}", t)],
            [vec("s_{21}", t).T, scalar(sp.Symbol("s_22"))],
        ]
    )
    Wq = Block([[None, None], [None, None]])
    z = Block([[vec("x", t)], [scalar(Y[t])]])
    o = S @ (Wq @ z)
    bld.part(
        r"zero query $\Rightarrow$ zero output",
        all(_zero(e) for row in o.rows for e in row),
        "block product",
        r"q_t=W_qz_t=0\Rightarrow o_t=S_tq_t=0",
    )
    j = idx("j")
    om = sp.IndexedBase("omega")
    upd = vec("w", t) + mat("P") @ sum_over(
        om[t, j] * (vec("x", j) @ (scalar(Y[j]) - vec("x", j).T @ vec("w", j))), j
    )
    bld.part(
        "$P=0$ leaves the iterate unchanged",
        equal(substitute_letter(upd, "P", 0 * IDENTITY), vec("w", t)),
        "substitution",
        r"w_t+0\cdot\sum_{j\le t}\omega_{tj}x_j(y_j-x_j^\top w_j)=w_t",
    )
    bld.lemma(
        r"a zero layer inserted anywhere maps every $(L-1)$-layer model to an $L$-layer one computing "
        r"the same function, so the infimum over $L$ layers is at most the one over $L-1$"
    )
    return bld.done()


def substitute_vector_zero(e: Expr, kind: str) -> Expr:
    """Set every vector of ``kind`` to 0 (terms containing it vanish)."""
    return Expr(
        [
            t
            for t in e.terms
            if not any(x[0] == "v" and x[1] == kind for c in t.chains for x in me._ends(c))
        ]
    )


# ----------------------------------------------------------------------------- registry

#: One function per claim.
PROOFS = {
    "L1": prove_L1,
    "L1f": prove_L1f,
    "L2": prove_L2,
    "L3": prove_L3,
    "L4": prove_L4,
    "L6": prove_L6,
    "L7": prove_L7,
    "C1": prove_C1,
    "C2": prove_C2,
    "C3": prove_C3,
    "G5": prove_G5_nesting,
}


def prove_all() -> dict[str, Proof]:
    """Run every general-dimension proof (a few seconds in total)."""
    return {k: f() for k, f in PROOFS.items()}
