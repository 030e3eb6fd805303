r"""A matrix-level expectation engine: Gaussian moments in general dimension ``d`` and for ``n`` examples.

The coordinate engine (:func:`theory.population_loss.wick_expectation`) integrates scalars and
therefore proves identities for one ``(n, d)`` at a time. This engine works on *matrix words*
instead, so ``d`` and ``n`` never get a value: what it proves holds for every ``n`` and ``d``.

Expressions (:class:`Expr`) are sums of :class:`Term` s. A term is

    ``Σ_{dummies} coeff · Π chains``,

* ``coeff``: a SymPy expression in scalar symbols (``σ``, ``a``, ``n``, ``d``...) and in
  indexed scalars such as ``ω[i]``, ``R[i, j]``, ``ξ[i]``, ``y[i]``;
* a *chain* ``('c', left, word, right)`` is the matrix product ``leftᵀ W_1 ⋯ W_k right`` where
  each end is either a vector (``('v', kind, index, occurrence)``, e.g. the example ``x_i``)
  or an open index (``('row',)`` / ``('col',)`` for a matrix-valued term); a *cycle*
  ``('o', word)`` is ``tr(W_1 ⋯ W_k)``. Every tensor network in which each node has at most two
  indices (matrices, vectors) is a product of such chains and cycles, so this representation is
  closed under products, transposes, traces and Gaussian pairings;
* a *letter* of a word is a general ``d×d`` matrix ``('M', name, indices, transposed, symmetric)``
  (``P``, ``Pᵀ``, ``D_i = diag(Ω_i)``...) or a function of the covariance
  ``('F', f)``, meaning ``f(Σ)`` for a SymPy expression ``f`` in :data:`LAM` (``Σ`` itself is
  ``f = λ``, ``I`` is ``f = 1``, ``(bΣ + cI)^{-1}`` is ``f = 1/(bλ + c)``): all such matrices
  commute with each other and are symmetric;
* ``dummies``: example indices summed over ``1..n`` (pairwise distinct when ``distinct``; the
  query has the fixed index :data:`Q` ``= n + 1``); ``eig``: eigen-indices summed over ``1..d``
  (only after the spectral rule).

Conventions (``docs/conventions.md``): ``x_i, x ~ N(0, Σ)`` i.i.d. (the query ``x`` is ``x_Q``);
``E[β_i β_jᵀ] = R_ij I_d`` with the query task ``β = β_Q``; ``ξ_i ~ N(0, σ²)`` i.i.d.; ``y_i =
x_iᵀβ_i + ξ_i``. Every rule the engine applies is a :class:`Rule` in :data:`RULES`; each one is
checked against the coordinate engine in :mod:`theory.matrix_crosscheck`.

Example: the second and fourth Gaussian moments, for general ``d``.

>>> x = vec("x", Q)
>>> M = mat("M")
>>> print(expectation(x @ x.T).latex())
\Sigma
>>> print(expectation(x @ x.T @ M @ x @ x.T).latex())
\Sigma M \Sigma + \Sigma M^{\top} \Sigma + \operatorname{tr}(\Sigma M) \Sigma

Never imports :mod:`numerics`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

__all__ = [
    "EIG",
    "IDENTITY",
    "LAM",
    "OMEGA",
    "RULES",
    "SIGMA",
    "SIGMA_NOISE",
    "XI",
    "D",
    "Expr",
    "Log",
    "N",
    "Q",
    "R",
    "Rij",
    "Rule",
    "Term",
    "Y",
    "apply_vector_rule",
    "canonical",
    "diff_indexed",
    "equal",
    "expectation",
    "fn",
    "grad_trace",
    "idx",
    "is_zero",
    "mat",
    "realise",
    "scalar",
    "split_sums",
    "substitute_letter",
    "sum_over",
    "vec",
]

# ----------------------------------------------------------------------------- symbols

#: The spectral variable: a letter ``('F', f)`` stands for ``f(Σ)``.
LAM = sp.Symbol("lambda", positive=True)
#: Eigenvalues ``λ_k`` of ``Σ`` (after the spectral rule ``tr f(Σ) = Σ_k f(λ_k)``).
EIG = sp.IndexedBase("lambda", positive=True)
#: Number of examples and dimension (never given a value).
N = sp.Symbol("n", integer=True, positive=True)
D = sp.Symbol("d", integer=True, positive=True)
#: The query's index ``n + 1`` (distinct from every example index).
Q = sp.Symbol("q", integer=True, positive=True)
OMEGA = sp.IndexedBase("omega", real=True)
R = sp.IndexedBase("R", real=True)
XI = sp.IndexedBase("xi", real=True)
Y = sp.IndexedBase("y", real=True)
SIGMA_NOISE = sp.Symbol("sigma", positive=True)

_POOL = ["i", "j", "l", "m", "u", "v"]
_EIG_POOL = ["k", "k'", "k''"]


def idx(name: str) -> sp.Symbol:
    """An index symbol (integer, positive), e.g. ``idx("i")``."""
    return sp.Symbol(name, integer=True, positive=True)


def _idx_key(s) -> tuple:
    return (s == Q, str(s))


def Rij(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """``R[a, b]`` with the indices in a canonical order (``R`` is symmetric)."""
    a, b = sorted((a, b), key=_idx_key)
    return R[a, b]


def _canon_R(expr):
    if not expr.has(R):
        return expr
    return expr.replace(
        lambda e: (
            isinstance(e, sp.Indexed)
            and e.base == R
            and list(e.indices) != sorted(e.indices, key=_idx_key)
        ),
        lambda e: Rij(*e.indices),
    )


# ----------------------------------------------------------------------------- letters, ends, chains


def _L_M(name, indices=(), t=False, sym=False):
    return ("M", name, tuple(indices), bool(t) and not sym, bool(sym))


def _L_F(f):
    return ("F", sp.sympify(f))


def _tr_letter(L):
    if L[0] == "F" or L[4]:
        return L
    return ("M", L[1], L[2], not L[3], L[4])


def _rev(word):
    return tuple(_tr_letter(L) for L in reversed(word))


def _letter_key(L) -> str:
    if L[0] == "F":
        return "F(" + sp.srepr(L[1]) + ")"
    return "M(" + L[1] + "," + ",".join(map(str, L[2])) + (",T" if L[3] else "") + ")"


def _end_key(e) -> str:
    if e[0] == "v":
        return f"v:{e[1]}:{e[2]}"
    return e[0]


def _chain_key(c) -> str:
    if c[0] == "o":
        return "o[" + ";".join(map(_letter_key, c[1])) + "]"
    return (
        "c[" + _end_key(c[1]) + "|" + ";".join(map(_letter_key, c[2])) + "|" + _end_key(c[3]) + "]"
    )


def _reverse_chain(c):
    return ("c", c[3], _rev(c[2]), c[1])


def _ends(c):
    return () if c[0] == "o" else (c[1], c[3])


def _end_id(e):
    return ("v", e[3]) if e[0] == "v" else e


# ----------------------------------------------------------------------------- terms and expressions


@dataclass(frozen=True)
class Term:
    """``Σ_{dummies} Σ_{eig} coeff · Π chains`` (see the module docstring)."""

    coeff: sp.Expr
    chains: tuple = ()
    dummies: tuple = ()
    distinct: bool = False
    eig: tuple = ()

    def open_ends(self) -> set:
        return {e[0] for c in self.chains for e in _ends(c) if e[0] in ("row", "col")}

    def indices(self) -> set:
        out = set()
        for c in self.chains:
            for L in c[1] if c[0] == "o" else c[2]:
                if L[0] == "M":
                    out.update(L[2])
            for e in _ends(c):
                if e[0] == "v" and e[2] is not None:
                    out.add(e[2])
        return out


def _subs_term(t: Term, mapping: dict) -> Term:
    """Rename index symbols (dummies, the query index) everywhere in ``t``."""
    if not mapping:
        return t

    def m(s):
        return mapping.get(s, s)

    def letter(L):
        return L if L[0] == "F" else ("M", L[1], tuple(m(s) for s in L[2]), L[3], L[4])

    def end(e):
        return ("v", e[1], m(e[2]), e[3]) if e[0] == "v" else e

    chains: list[tuple] = []
    for c in t.chains:
        if c[0] == "o":
            chains.append(("o", tuple(letter(L) for L in c[1])))
        else:
            chains.append(("c", end(c[1]), tuple(letter(L) for L in c[2]), end(c[3])))
    coeff = _canon_R(sp.sympify(t.coeff).xreplace(mapping))
    return Term(
        coeff, tuple(chains), tuple(m(s) for s in t.dummies), t.distinct, tuple(m(s) for s in t.eig)
    )


_FRESH = itertools.count()


def _fresh(s) -> sp.Symbol:
    return idx(f"{str(s).rstrip('0123456789_')}_{next(_FRESH)}")


def _find(chains, eid):
    for k, c in enumerate(chains):
        if c[0] == "c":
            if _end_id(c[1]) == eid:
                return k, "left"
            if _end_id(c[3]) == eid:
                return k, "right"
    raise KeyError(f"end {eid} not found")


def _join(chains: list, a, b, word=()) -> list:
    """Contract end ``a`` with end ``b`` through ``word``: ``… a · bᵀ …  →  … W …``.

    Same chain ``(b, V, a)``: ``bᵀ V a = tr(V a bᵀ)`` becomes the cycle ``tr(V W)``. Different
    chains ``(l, V_1, a)`` and ``(b, V_2, r)``: ``lᵀV_1 a bᵀ V_2 r`` becomes ``lᵀ V_1 W V_2 r``.
    """
    chains = list(chains)
    ka, sa = _find(chains, a)
    kb, sb = _find(chains, b)
    ca = chains[ka] if sa == "right" else _reverse_chain(chains[ka])
    if ka == kb:
        cycle = ("o", tuple(ca[2]) + tuple(word))
        return [c for k, c in enumerate(chains) if k != ka] + [cycle]
    cb = chains[kb] if sb == "left" else _reverse_chain(chains[kb])
    joined = ("c", ca[1], tuple(ca[2]) + tuple(word) + tuple(cb[2]), cb[3])
    return [c for k, c in enumerate(chains) if k not in (ka, kb)] + [joined]


def _relabel_open(chains, old, new):
    out = []
    for c in chains:
        if c[0] == "c":
            c = ("c", new if c[1] == old else c[1], c[2], new if c[3] == old else c[3])
        out.append(c)
    return out


def _mul_terms(t1: Term, t2: Term) -> Term:
    if (t1.dummies and t1.distinct) or (t2.dummies and t2.distinct) or t1.eig or t2.eig:
        raise ValueError("products of terms whose sums are already split are not supported")
    used1 = set(t1.dummies) | t1.indices() | set(sp.sympify(t1.coeff).free_symbols)
    used2 = set(t2.dummies) | t2.indices() | set(sp.sympify(t2.coeff).free_symbols)
    t1 = _subs_term(t1, {s: _fresh(s) for s in t1.dummies if s in used2 - set(t2.dummies)})
    t2 = _subs_term(t2, {s: _fresh(s) for s in t2.dummies if s in used1 | set(t1.dummies)})
    o1, o2 = t1.open_ends(), t2.open_ends()
    c1, c2 = list(t1.chains), list(t2.chains)
    if "col" in o1 and "row" in o2:
        chains = _relabel_open(c1, ("col",), ("_a",)) + _relabel_open(c2, ("row",), ("_b",))
        chains = _join(chains, ("_a",), ("_b",))
    elif ("col" not in o1 and "row" not in o2) or not o1 or not o2:
        chains = c1 + c2
    else:
        raise ValueError(
            f"shape mismatch in a product: left ends {sorted(o1)}, right ends {sorted(o2)}"
        )
    return Term(t1.coeff * t2.coeff, tuple(chains), t1.dummies + t2.dummies, False)


class Expr:
    """A sum of :class:`Term` s; ``+``, ``-``, ``*`` (by a scalar), ``@`` (matrix product), ``.T``.

    ``@`` joins the right open index of the left factor to the left open index of the right
    factor; products of vectors and scalars juxtapose (``x @ x.T`` is the outer product,
    ``x.T @ M @ x`` a scalar chain). Dummies of the right factor that clash are renamed, so
    ``h @ h.T`` for ``h = Σ_i …`` is the double sum over ``i`` and a fresh ``j``.
    """

    __slots__ = ("terms",)

    def __init__(self, terms: Iterable[Term] = ()) -> None:
        self.terms = [t for t in terms if t.coeff != 0]

    # arithmetic
    def __add__(self, other):
        other = _as_expr(other)
        return Expr(self.terms + other.terms)

    __radd__ = __add__

    def __neg__(self):
        return Expr([replace(t, coeff=-t.coeff) for t in self.terms])

    def __sub__(self, other):
        return self + (-_as_expr(other))

    def __rsub__(self, other):
        return _as_expr(other) - self

    def __mul__(self, other):
        if isinstance(other, Expr):
            return self @ other
        c = sp.sympify(other)
        return Expr([replace(t, coeff=t.coeff * c) for t in self.terms])

    __rmul__ = __mul__

    def __matmul__(self, other):
        other = _as_expr(other)
        return Expr([_mul_terms(a, b) for a in self.terms for b in other.terms])

    @property
    def T(self) -> Expr:
        def sw(e):
            return ("col",) if e == ("row",) else ("row",) if e == ("col",) else e

        out = []
        for t in self.terms:
            chains = tuple(("c", sw(c[1]), c[2], sw(c[3])) if c[0] == "c" else c for c in t.chains)
            out.append(replace(t, chains=chains))
        return Expr(out)

    def tr(self) -> Expr:
        """Trace of a square matrix-valued expression (joins its column index to its row index)."""
        out = []
        for t in self.terms:
            if t.open_ends() != {"row", "col"}:
                raise ValueError("tr: the expression is not matrix-valued")
            out.append(replace(t, chains=tuple(_join(list(t.chains), ("col",), ("row",)))))
        return Expr(out)

    def map_coeff(self, f: Callable) -> Expr:
        return Expr([replace(t, coeff=f(t.coeff)) for t in self.terms])

    def __len__(self):
        return len(self.terms)

    def __repr__(self):
        return f"Expr({self.latex()})"

    def latex(self, max_terms: int | None = None) -> str:
        """LaTeX of the sum (``max_terms`` truncates long sums with a count)."""
        return _latex_expr(self, max_terms)


def _as_expr(x) -> Expr:
    if isinstance(x, Expr):
        return x
    return scalar(x)


def scalar(c: sp.Expr | int) -> Expr:
    """The scalar ``c`` (any SymPy expression) as an :class:`Expr`."""
    return Expr([Term(sp.sympify(c))])


def mat(name: str, *indices: sp.Expr, sym: bool = False) -> Expr:
    """A general ``d×d`` matrix letter (``sym=True`` declares it symmetric, e.g. diagonal ``D_i``)."""
    return Expr(
        [Term(sp.Integer(1), (("c", ("row",), (_L_M(name, indices, False, sym),), ("col",)),))]
    )


def fn(f: sp.Expr | int) -> Expr:
    """``f(Σ)`` for a SymPy expression ``f`` in :data:`LAM` (``fn(LAM)`` is ``Σ``, ``fn(1)`` is ``I``)."""
    return Expr([Term(sp.Integer(1), (("c", ("row",), (_L_F(f),), ("col",)),))])


SIGMA = fn(LAM)
IDENTITY = fn(1)


def vec(kind: str, index: sp.Expr | None = None) -> Expr:
    """A column vector: ``vec("x", i)`` is the example ``x_i``, ``vec("x", Q)`` the query ``x``,
    ``vec("beta", i)`` the task ``β_i``; other kinds (``"w"``, ``"u"``...) are deterministic."""
    return Expr([Term(sp.Integer(1), (("c", ("row",), (), ("v", kind, index, 0)),))])


def sum_over(e: Expr, *dummies: sp.Symbol) -> Expr:
    """``Σ_{dummies = 1..n} e`` (the dummies must be fresh index symbols used in ``e``)."""
    return Expr([replace(t, dummies=t.dummies + tuple(dummies)) for t in e.terms])


# ----------------------------------------------------------------------------- rules and the log


@dataclass
class Rule:
    """A named rewrite rule with its statement (LaTeX) and its action."""

    name: str
    statement: str
    apply: Callable


@dataclass
class Log:
    """The trace of a derivation: one entry per pass, ``(rule, applications, note, latex)``."""

    steps: list = field(default_factory=list)

    def add(
        self,
        rule: str,
        applications: int,
        note: str,
        expr: Expr | str | None = None,
        max_terms: int = 6,
    ) -> None:
        lx = expr if isinstance(expr, str) else (expr.latex(max_terms) if expr is not None else "")
        self.steps.append(
            {"rule": rule, "applications": int(applications), "note": note, "latex": lx}
        )


def _pairings(items):
    if not items:
        yield []
        return
    a = items[0]
    for k in range(1, len(items)):
        rest = items[1:k] + items[k + 1 :]
        for p in _pairings(rest):
            yield [(a, items[k])] + p


def _second_moment(chains, ends):
    ((a, b),) = [tuple(ends)]
    return [(sp.Integer(1), _join(chains, a, b, (_L_F(LAM),)))]


def _fourth_moment(chains, ends):
    out = []
    e = list(ends)
    for (a, b), (c, d) in (
        [(e[0], e[1]), (e[2], e[3])],
        [(e[0], e[2]), (e[1], e[3])],
        [(e[0], e[3]), (e[1], e[2])],
    ):
        out.append((sp.Integer(1), _join(_join(chains, a, b, (_L_F(LAM),)), c, d, (_L_F(LAM),))))
    return out


def _odd_moment(chains, ends):
    return []


def _task_covariance(chains, ends, indices):
    (a, b), (ia, ib) = tuple(ends), tuple(indices)
    return [(Rij(ia, ib), _join(chains, a, b, ()))]


def _noise(coeff, indices):
    syms = [XI[i] for i in indices]
    present = [s for s in syms if coeff.has(s)]
    if not present:
        return coeff
    poly = sp.Poly(sp.expand(coeff), *present)
    out = sp.Integer(0)
    for monom, c in poly.terms():
        m = sp.Integer(1)
        for k in monom:
            m *= 0 if k % 2 else SIGMA_NOISE**k * sp.factorial2(k - 1) if k else 1
        out += c * m
    return out


RULES: dict[str, Rule] = {
    "second moment": Rule("second moment", r"\mathbb E[x x^\top] = \Sigma", _second_moment),
    "fourth moment": Rule(
        "fourth moment",
        r"\mathbb E[x x^\top M x x^\top] = \Sigma(M+M^\top)\Sigma + \operatorname{tr}(M\Sigma)\Sigma"
        r"\quad(\text{index form } \mathbb E[x_ax_bx_cx_d]=\Sigma_{ab}\Sigma_{cd}+\Sigma_{ac}\Sigma_{bd}"
        r"+\Sigma_{ad}\Sigma_{bc})",
        _fourth_moment,
    ),
    "odd moment": Rule("odd moment", r"\mathbb E[x^{\otimes(2k+1)}] = 0", _odd_moment),
    "task covariance": Rule(
        "task covariance", r"\mathbb E[\beta_i\beta_j^\top] = R_{ij} I_d", _task_covariance
    ),
    "noise": Rule(
        "noise",
        r"\mathbb E[\xi_i^{2k}] = (2k-1)!!\,\sigma^{2k},\ \mathbb E[\xi_i^{2k+1}] = 0,"
        r"\ \xi_i \perp \xi_j",
        _noise,
    ),
}
#: Rules that are not Gaussian moments (they are algebra); listed for the trace.
ALGEBRA = {
    "index split": r"\sum_{i,j} f(i,j) = \sum_{i\neq j} f(i,j) + \sum_i f(i,i)",
    "independence": r"x_i \perp x_j \perp \beta\ (i\neq j):\ \mathbb E \text{ factorises; condition on the rest}",
    "trace cyclicity": r"\operatorname{tr}(UV)=\operatorname{tr}(VU),\ \operatorname{tr}(U^\top)=\operatorname{tr}(U),"
    r"\ u^\top M v = v^\top M^\top u",
    "functions of Sigma": r"f(\Sigma)g(\Sigma)=(fg)(\Sigma),\ f(\Sigma)^\top=f(\Sigma),"
    r"\ \operatorname{tr} I_d = d,\ \text{linearity in } f",
    "spectral": r"\operatorname{tr} f(\Sigma) = \sum_{k=1}^d f(\lambda_k)",
    "free index": r"\sum_{i_1,\dots,i_m \text{ distinct}} 1 = n - m + 1 \text{ per unused index}",
    "linearity": r"\mathbb E \text{ and } \operatorname{tr} \text{ are linear}",
}


# ----------------------------------------------------------------------------- sums over examples


def _set_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for p in _set_partitions(rest):
        yield [[first]] + p
        for k in range(len(p)):
            yield p[:k] + [[first] + p[k]] + p[k + 1 :]


def split_sums(e: Expr) -> tuple[Expr, int]:
    r"""Rule *index split*: ``Σ_{i_1..i_m}`` (free) ``= Σ_{partitions} Σ_{distinct}``.

    Each set partition of the dummies identifies the indices of a block; the result's sums
    run over pairwise distinct indices (and distinct from the query ``Q``). Returns the new
    expression and the number of terms split.

    >>> i, j = idx("i"), idx("j")
    >>> e, count = split_sums(sum_over(scalar(OMEGA[i] * OMEGA[j]), i, j))
    >>> print(e.latex())
    \sum_{i,j\ \mathrm{distinct}} {\omega}_{i} {\omega}_{j} + \sum_{i} {\omega}_{i}^{2}
    """
    out, count = [], 0
    for t in e.terms:
        if t.distinct or not t.dummies:
            out.append(replace(t, distinct=True) if t.dummies else t)
            continue
        count += 1
        for part in _set_partitions(list(t.dummies)):
            mapping = {s: blk[0] for blk in part for s in blk}
            u = _subs_term(t, {k: v for k, v in mapping.items() if k != v})
            out.append(Term(u.coeff, u.chains, tuple(blk[0] for blk in part), True))
    return Expr(out), count


# ----------------------------------------------------------------------------- expectation


def _vector_groups(t: Term, kind: str):
    groups: dict = {}
    for c in t.chains:
        for e in _ends(c):
            if e[0] == "v" and e[1] == kind:
                groups.setdefault(e[2], []).append(e)
    return groups


def _number_ends(t: Term) -> Term:
    k = itertools.count(1)
    chains = []
    for c in t.chains:
        if c[0] == "c":
            l, r = c[1], c[3]
            l = ("v", l[1], l[2], next(k)) if l[0] == "v" else l
            r = ("v", r[1], r[2], next(k)) if r[0] == "v" else r
            c = ("c", l, c[2], r)
        chains.append(c)
    return replace(t, chains=tuple(chains))


def apply_vector_rule(rule: Rule, t: Term, kind: str, index: sp.Expr | None) -> Expr:
    """Apply ``rule`` to the occurrences of the vector ``(kind, index)`` in term ``t`` (one rule
    application); the other vectors are held fixed (conditioning). Used by the cross-checks."""
    t = _number_ends(t)
    ends = [_end_id(e) for e in _vector_groups(t, kind).get(index, [])]
    return Expr(
        [
            replace(t, coeff=t.coeff * c, chains=tuple(ch))
            for c, ch in rule.apply(list(t.chains), ends)
        ]
    )


def _moment_rule(k) -> str:
    if k % 2:
        return "odd moment"
    if k == 2:
        return "second moment"
    if k == 4:
        return "fourth moment"
    raise NotImplementedError(
        f"Gaussian moment of order {k}: only orders <= 4 are needed and implemented"
    )


def expectation(
    e: Expr, *, rules: dict | None = None, log: Log | None = None, canon: bool = True
) -> Expr:
    r"""``E[e]`` under the multitask model, by the rules in ``rules`` (default :data:`RULES`).

    Passes: split the sums over examples (index split), integrate the noises, then each
    feature vector ``x_i`` given everything else (independence across examples; its ends are
    paired by the second/fourth moment rule), then the task vectors jointly (task covariance),
    then :func:`canonical`. ``log`` receives one entry per pass.

    >>> i = idx("i")
    >>> h = sum_over(OMEGA[i] * (vec("x", i).T @ vec("beta", i) + XI[i]) @ vec("x", i), i)
    >>> print(expectation(h).latex())  # E[h | β] = Σ_i ω_i Σ β_i, and E[β_i] = 0
    0
    >>> print(expectation(h.T @ h).latex())
    \sum_{i,j\ \mathrm{distinct}} {R}_{i,j} {\omega}_{i} {\omega}_{j} \operatorname{tr}(\Sigma^{2}) + \sum_{i} {R}_{i,i} {\omega}_{i}^{2} \operatorname{tr}(\Sigma) \operatorname{tr}(\Sigma) + \sum_{i} 2 {R}_{i,i} {\omega}_{i}^{2} \operatorname{tr}(\Sigma^{2}) + \sum_{i} \sigma^{2} {\omega}_{i}^{2} \operatorname{tr}(\Sigma)
    """
    rules = RULES if rules is None else rules
    _check_random_indices(e)
    e, nsplit = split_sums(e)
    if log is not None and nsplit:
        log.add("index split", nsplit, ALGEBRA["index split"], e)
    e, napp = _integrate_noise(e, rules)
    if log is not None:
        log.add("noise", napp, rules["noise"].statement, e)
    e, counts = _integrate_features(e, rules)
    if log is not None:
        log.add("independence", sum(counts.values()), ALGEBRA["independence"])
        for key, k in sorted(counts.items()):
            log.add(rules[key].name, k, rules[key].statement)
        log.add("linearity", len(e), "after integrating the features", e)
    e, tcount = _integrate_tasks(e, rules)
    if log is not None:
        log.add("task covariance", tcount, rules["task covariance"].statement, e)
    if canon:
        e = canonical(e)
        if log is not None:
            log.add(
                "trace cyclicity",
                len(e),
                ALGEBRA["trace cyclicity"] + r";\ " + ALGEBRA["functions of Sigma"],
                e,
                max_terms=20,
            )
    return e


def _check_random_indices(e: Expr) -> None:
    """Refuse a random vector whose example index is neither summed over nor ``Q``: a free
    index could coincide with another one, and independence would not hold."""
    for t in e.terms:
        for c in t.chains:
            for x in _ends(c):
                if x[0] == "v" and x[1] in ("x", "beta") and x[2] != Q and x[2] not in t.dummies:
                    raise ValueError(
                        f"e: the random vector {x[1]}_{x[2]} has an index that is neither summed "
                        "over (sum_over) nor the query index Q"
                    )


def _integrate_noise(e: Expr, rules: dict) -> tuple[Expr, int]:
    """The noise pass: ``(E over ξ of e, number of terms it changed)``."""
    out, napp = [], 0
    for t in e.terms:
        ids = set(t.dummies) | {Q}
        c = rules["noise"].apply(sp.sympify(t.coeff), sorted(ids, key=_idx_key))
        napp += c != t.coeff
        out.append(replace(t, coeff=c))
    return Expr(out), napp


def _integrate_features(e: Expr, rules: dict) -> tuple[Expr, dict[str, int]]:
    """The feature pass: integrate one independent ``x_i`` at a time (lowest index first) by
    its moment rule until no feature vector is left; returns the counts per rule."""
    counts: dict[str, int] = {}
    work = list(e.terms)
    while True:
        changed = False
        nxt = []
        for t in work:
            groups = _vector_groups(t, "x")
            if not groups:
                nxt.append(t)
                continue
            index = sorted(groups, key=_idx_key)[0]
            key = _moment_rule(len(groups[index]))
            counts[key] = counts.get(key, 0) + 1
            nxt.extend(apply_vector_rule(rules[key], t, "x", index).terms)
            changed = True
        work = nxt
        if not changed:
            return Expr(work), counts


def _integrate_tasks(e: Expr, rules: dict) -> tuple[Expr, int]:
    """The task pass: the task vectors are jointly Gaussian across examples; odd moments
    vanish, second moments pair by the task covariance rule."""
    out, tcount = [], 0
    for t in e.terms:
        ends = [
            (e_, e_[2])
            for c in _number_ends(t).chains
            for e_ in _ends(c)
            if e_[0] == "v" and e_[1] == "beta"
        ]
        if not ends:
            out.append(t)
            continue
        t = _number_ends(t)
        ends = [
            (e_, e_[2]) for c in t.chains for e_ in _ends(c) if e_[0] == "v" and e_[1] == "beta"
        ]
        if len(ends) % 2:
            tcount += 1
            continue
        if len(ends) != 2:
            raise NotImplementedError(
                "task moments of order > 2 are not needed and not implemented"
            )
        tcount += 1
        for c, ch in rules["task covariance"].apply(
            list(t.chains), [_end_id(a) for a, _ in ends], [i for _, i in ends]
        ):
            out.append(replace(t, coeff=t.coeff * c, chains=tuple(ch)))
    return Expr(out), tcount


# ----------------------------------------------------------------------------- canonical form


def _merge_F(word, cyclic=False):
    """Merge adjacent ``f(Σ)`` letters; returns (scalar factor, word)."""
    word = list(word)
    if cyclic and word and any(L[0] != "F" for L in word):
        while word[0][0] == "F":
            word = word[1:] + word[:1]
    out, run, factor = [], None, sp.Integer(1)

    def flush():
        nonlocal run, factor
        if run is not None:
            f = sp.cancel(run) if run.is_rational_function(LAM) else sp.simplify(run)
            if not f.has(LAM):
                factor *= f
            else:
                out.append(_L_F(f))
        run = None

    for L in word:
        if L[0] == "F":
            run = L[1] if run is None else run * L[1]
        else:
            flush()
            out.append(L)
    flush()
    return factor, tuple(out)


def _split_F(f):
    """``f = Σ_k c_k · (λ^k / q)`` with ``q`` monic in λ; [(c_k, letter)] (the *linearity* rule)."""
    if not f.is_rational_function(LAM):
        return [(sp.Integer(1), _L_F(f))]
    p, qd = sp.fraction(sp.cancel(f))
    qp = sp.Poly(qd, LAM)
    lc = qp.LC()
    # monic denominator with cancelled coefficients: a canonical representative of f's class
    qm = sp.Add(*[sp.cancel(cq) * LAM**kq for (kq,), cq in qp.monic().terms()])
    out = []
    for (k,), c in sp.Poly(sp.expand(p), LAM).terms():
        letter = LAM**k / qm
        out.append((sp.cancel(c / lc), None if letter == 1 else _L_F(letter)))
    return out


def _sort_runs(word, commuting):
    """Rule *diagonal matrices commute*: sort each run of adjacent letters named in ``commuting``."""
    if not commuting:
        return tuple(word)
    word, k = list(word), 0
    while k < len(word):
        j = k
        while j < len(word) and word[j][0] == "M" and word[j][1] in commuting:
            j += 1
        if j > k:
            word[k:j] = sorted(word[k:j], key=_letter_key)
            k = j
        else:
            k += 1
    return tuple(word)


def _orient(c, commuting=frozenset()):
    if c[0] == "o":
        w = c[1]
        if not w:
            return c
        cands = []
        for ww in (w, _rev(w)):
            for k in range(len(ww)):
                cands.append(_sort_runs(ww[k:] + ww[:k], commuting))
        return ("o", min(cands, key=lambda x: ";".join(map(_letter_key, x))))
    r = _reverse_chain(c)
    c = ("c", c[1], _sort_runs(c[2], commuting), c[3])
    r = ("c", r[1], _sort_runs(r[2], commuting), r[3])
    if c[1] == ("row",) or c[3] == ("col",):
        return c
    if r[1] == ("row",) or r[3] == ("col",):
        return r
    return min(c, r, key=_chain_key)


def _expand_term(t: Term, spectral: bool) -> list[Term]:
    """Merge and split ``f(Σ)`` letters, evaluate ``tr I = d``, optionally the spectral rule."""
    coeff = sp.sympify(t.coeff)
    partial: list[tuple[Any, list, tuple]] = [(coeff, [], t.eig)]
    for c in t.chains:
        cyc = c[0] == "o"
        word = c[1] if cyc else c[2]
        factor, word = _merge_F(word, cyclic=cyc)
        options: list[tuple[Any, list]] = [(factor, [])]
        for L in word:
            if L[0] == "F":
                options = [
                    (fa * cc, w + ([Lp] if Lp is not None else []))
                    for fa, w in options
                    for cc, Lp in _split_F(L[1])
                ]
            else:
                options = [(fa, w + [L]) for fa, w in options]
        new_partial = []
        for fa, w in options:
            if cyc:
                fa2, w2 = _merge_F(w, cyclic=True)
                fa, w = fa * fa2, list(w2)
            for pc, pchains, peig in partial:
                if cyc and not w:
                    new_partial.append((pc * fa * D, pchains, peig))
                elif cyc and spectral and len(w) == 1 and w[0][0] == "F":
                    k = idx(f"k_{next(_FRESH)}")
                    new_partial.append((pc * fa * w[0][1].subs(LAM, EIG[k]), pchains, peig + (k,)))
                elif cyc:
                    new_partial.append((pc * fa, pchains + [("o", tuple(w))], peig))
                else:
                    new_partial.append((pc * fa, pchains + [("c", c[1], tuple(w), c[3])], peig))
        partial = new_partial
    return [Term(pc, tuple(pch), t.dummies, t.distinct, peig) for pc, pch, peig in partial]


def _free_index(t: Term) -> Term:
    """Rule *free index*: a distinct dummy used nowhere contributes ``n - (m - 1)``."""
    used = t.indices() | set(sp.sympify(t.coeff).free_symbols)
    if isinstance(t.coeff, sp.Basic):
        for ind in t.coeff.atoms(sp.Indexed):
            used |= set(ind.indices)
    dums = list(t.dummies)
    coeff = t.coeff
    for s in list(dums):
        if s not in used:
            coeff = coeff * (N - (len(dums) - 1) if t.distinct else N)
            dums.remove(s)
    return replace(t, coeff=coeff, dummies=tuple(dums), distinct=t.distinct and bool(dums))


def _rename_canonical(t: Term, commuting=frozenset()) -> Term:
    best = None
    dums, eigs = list(t.dummies), list(t.eig)
    taken = {
        str(s)
        for s in (t.indices() | set(sp.sympify(t.coeff).free_symbols)) - set(dums) - set(eigs)
    }
    names = [idx(s) for s in _POOL if s not in taken][: len(dums)]
    enames = [idx(s) for s in _EIG_POOL if s not in taken][: len(eigs)]
    if len(names) < len(dums) or len(enames) < len(eigs):
        raise NotImplementedError("too many summation indices")
    for perm in itertools.permutations(names):
        for eperm in itertools.permutations(enames):
            mapping = dict(zip(dums, perm))
            mapping.update(dict(zip(eigs, eperm)))
            u = _subs_term(t, mapping)
            chains = tuple(sorted((_orient(c, commuting) for c in u.chains), key=_chain_key))
            u = replace(u, chains=chains, dummies=tuple(names), eig=tuple(enames))
            key = (tuple(_chain_key(c) for c in chains), sp.srepr(u.coeff))
            if best is None or key < best[0]:
                best = (key, u)
    assert best is not None
    return best[1]


def canonical(e: Expr, *, spectral: bool = False, commuting: Iterable[str] = frozenset()) -> Expr:
    r"""The canonical form: rules *trace cyclicity* (chains oriented, cycles rotated/reflected to a
    least representative), *functions of Σ* (adjacent ``f(Σ)`` merged, split by linearity into
    ``λ^k/q(λ)`` letters, ``tr I = d``), *free index*, optionally *spectral*
    (``tr f(Σ) = Σ_k f(λ_k)``), canonical names of summation indices; equal structures are
    collected and their coefficients added (terms with a zero coefficient dropped). Letters named
    in ``commuting`` (declared diagonal) commute with each other (rule *diagonal matrices commute*).

    >>> b, c = sp.symbols("b c", positive=True)
    >>> print(canonical(fn(LAM**2 / (b * LAM + c)).tr(), spectral=True).latex())
    \sum_{k=1}^{d} \frac{{\lambda}_{k}^{2}}{b {\lambda}_{k} + c}
    """
    groups: dict = {}
    order = []
    for t in e.terms:
        for u in _expand_term(t, spectral):
            for arg in sp.Add.make_args(sp.expand(u.coeff)):
                v = _free_index(replace(u, coeff=_canon_R(arg)))
                v = _rename_canonical(v, frozenset(commuting))
                key = (
                    tuple(map(str, v.dummies)),
                    v.distinct,
                    tuple(map(str, v.eig)),
                    tuple(_chain_key(c) for c in v.chains),
                )
                if key not in groups:
                    groups[key] = [v, sp.Integer(0)]
                    order.append(key)
                groups[key][1] += v.coeff
    out = []
    for key in order:
        v, c = groups[key]
        c = (
            sp.together(c)
            if c.has(sp.Pow) and any(p.exp.is_negative for p in c.atoms(sp.Pow))
            else sp.expand(c)
        )
        if _zero_coeff(c):
            continue
        out.append(replace(v, coeff=c))
    return Expr(out)


def _zero_coeff(c) -> bool:
    c = sp.sympify(c)
    if c == 0:
        return True
    return sp.expand(sp.numer(sp.together(c))) == 0


def is_zero(e: Expr, *, spectral: bool = False, commuting: Iterable[str] = frozenset()) -> bool:
    """Is ``e`` zero for every ``n`` and ``d``? (Its canonical form has no terms; sound: every
    rewrite is an identity, so an empty canonical form proves ``e = 0``.)"""
    e, _ = split_sums(e)
    return len(canonical(e, spectral=spectral, commuting=commuting)) == 0


def equal(
    a: Expr, b: Expr, *, spectral: bool = False, commuting: Iterable[str] = frozenset()
) -> bool:
    r"""``a = b`` for every ``n`` and ``d`` (see :func:`is_zero`).

    >>> P = mat("P")
    >>> equal((P @ SIGMA @ P.T).tr(), (SIGMA @ P.T @ P).tr()), equal(P, P.T)
    (True, False)
    >>> equal(fn(1 / LAM) @ SIGMA, IDENTITY)
    True
    """
    return is_zero(a - b, spectral=spectral, commuting=commuting)


# ----------------------------------------------------------------------------- substitution, derivatives


def substitute_letter(e: Expr, name: str, replacement: Expr) -> Expr:
    r"""Replace every letter ``name`` (and its transpose by the transpose) by the matrix-valued
    ``replacement`` (a sum of single-chain ``(row, W, col)`` terms without dummies).

    >>> P = mat("P")
    >>> print(canonical(substitute_letter((P.T @ SIGMA).tr(), "P", 2 * SIGMA)).latex())
    2 \operatorname{tr}(\Sigma^{2})
    """
    reps = []
    for t in replacement.terms:
        if (
            len(t.chains) != 1
            or t.chains[0][0] != "c"
            or t.chains[0][1] != ("row",)
            or t.chains[0][3] != ("col",)
            or t.dummies
        ):
            raise ValueError("replacement: must be a sum of plain matrix words")
        reps.append((t.coeff, t.chains[0][2]))
    out: list[Term] = []
    for t in e.terms:
        options: list[tuple[Any, list]] = [(t.coeff, [])]
        for c in t.chains:
            word = c[1] if c[0] == "o" else c[2]
            wopts: list[tuple[Any, tuple]] = [(sp.Integer(1), ())]
            for L in word:
                if L[0] == "M" and L[1] == name:
                    wopts = [
                        (a * cc, w + (W if not L[3] else _rev(W)))
                        for a, w in wopts
                        for cc, W in reps
                    ]
                else:
                    wopts = [(a, w + (L,)) for a, w in wopts]
            new = []
            for a, chs in options:
                for b, w in wopts:
                    new.append((a * b, chs + [("o", w) if c[0] == "o" else ("c", c[1], w, c[3])]))
            options = new
        out.extend(Term(a, tuple(chs), t.dummies, t.distinct, t.eig) for a, chs in options)
    return Expr(out)


def diff_indexed(e: Expr, base: sp.IndexedBase, index: sp.Expr) -> Expr:
    r"""Rule *Kronecker delta*: ``∂/∂base[index]`` of ``e`` for a free ``index`` (not summed).

    For a sum over free (not yet split) dummies, ``∂/∂ω_l Σ_s f(ω_s) = Σ_s δ_{sl} ∂f/∂ω_s``: each
    dummy ``s`` carried by a differentiated ``base[s]`` is set to ``l`` and leaves the sum; a
    ``base[l]`` that is already free is differentiated directly. Chains must not contain
    ``base`` (it is a scalar of the coefficients).

    >>> i, l = idx("i"), idx("l")
    >>> b = sum_over(scalar(OMEGA[i] ** 2 * Rij(i, i)), i)
    >>> print(canonical(diff_indexed(b, OMEGA, l)).latex())
    2 {R}_{l,l} {\omega}_{l}
    """
    out = []
    for t in e.terms:
        if t.distinct and len(t.dummies) > 1:
            raise ValueError("diff_indexed: differentiate before the sums are split")
        coeff = sp.sympify(t.coeff)

        def d_atom(c, atom):
            # plain partial derivative in one indexed atom (SymPy's Indexed derivative would add
            # Kronecker deltas for the other indices, which the sum rule below accounts for)
            z = sp.Dummy("z")
            return sp.diff(c.xreplace({atom: z}), z).xreplace({z: atom})

        direct = d_atom(coeff, base[index])
        if direct != 0:
            out.append(replace(t, coeff=direct))
        for s in t.dummies:
            part = d_atom(coeff, base[s])
            if part == 0:
                continue
            u = replace(t, coeff=part, dummies=tuple(x for x in t.dummies if x != s))
            out.append(_subs_term(u, {s: index}))
    return Expr(out)


def grad_trace(e: Expr, name: str) -> Expr:
    r"""Rule *trace derivative*: ``∂/∂X tr(X U) = Uᵀ``, ``∂/∂X tr(Xᵀ U) = U`` (product rule over
    occurrences), for a scalar ``e`` whose letters ``name`` occur only in cycles.

    >>> P = mat("P")
    >>> print(canonical(grad_trace((P.T @ SIGMA @ P).tr(), "P")).latex())
    2 \Sigma P
    """
    out = []
    for t in e.terms:
        chains = list(t.chains)
        for k, c in enumerate(chains):
            if c[0] != "o":
                if any(L[0] == "M" and L[1] == name for L in c[2]):
                    raise ValueError("grad_trace: the variable occurs in a vector chain")
                continue
            w = c[1]
            for p, L in enumerate(w):
                if L[0] == "M" and L[1] == name:
                    U = w[p + 1 :] + w[:p]
                    G = _rev(U) if not L[3] else U
                    rest = chains[:k] + chains[k + 1 :]
                    out.append(
                        Term(
                            t.coeff,
                            tuple(rest) + (("c", ("row",), G, ("col",)),),
                            t.dummies,
                            t.distinct,
                            t.eig,
                        )
                    )
    return Expr(out)


# ----------------------------------------------------------------------------- LaTeX

_LATEX_NAMES = {"Delta": r"\Delta", "Gamma": r"\Gamma"}


def _latex_letter(L) -> str:
    if L[0] == "F":
        f = L[1]
        if f == LAM:
            return r"\Sigma"
        p, qd = sp.fraction(sp.cancel(f)) if f.is_rational_function(LAM) else (f, sp.Integer(1))
        S = sp.Symbol(r"\Sigma")
        ps = sp.latex(p.subs(LAM, S))
        if qd == 1:
            return ps if p.is_Pow or p.is_Symbol else rf"\left({ps}\right)"
        qs = sp.latex(qd.subs(LAM, S))
        num = "" if p == 1 else (ps if p.is_Pow or p.is_Symbol else rf"\left({ps}\right)")
        return num + rf"\left({qs}\right)^{{-1}}"
    s = _LATEX_NAMES.get(L[1], L[1])
    if L[2]:
        s += "_{" + ",".join(map(sp.latex, L[2])) + "}"
    return s + (r"^{\top}" if L[3] else "")


def _latex_vec(e, transpose: bool) -> str:
    kind, i = e[1], e[2]
    base = {"beta": r"\beta", "x": "x", "xi": r"\xi"}.get(kind, kind)
    if i is not None and i != Q:
        base += "_{" + sp.latex(i) + "}"
    return base + (r"^{\top}" if transpose else "")


def _latex_word(w) -> str:
    return " ".join(_latex_letter(L) for L in w) if w else ""


def _latex_chain(c) -> str:
    if c[0] == "o":
        w = _latex_word(c[1])
        return rf"\operatorname{{tr}}({w})" if w else "d"
    parts = []
    if c[1][0] == "v":
        parts.append(_latex_vec(c[1], True))
    w = _latex_word(c[2])
    if w:
        parts.append(w)
    if c[3][0] == "v":
        parts.append(_latex_vec(c[3], False))
    if not parts:
        return "I"
    return " ".join(parts)


def _display_names(t: Term) -> Term:
    """Rename summation indices to ``i, j, l, …`` (``k, k'`` for eigen-indices) for display."""
    taken = {
        str(s)
        for s in (t.indices() | set(sp.sympify(t.coeff).free_symbols)) - set(t.dummies) - set(t.eig)
    }
    names = [idx(s) for s in _POOL if s not in taken][: len(t.dummies)]
    enames = [idx(s) for s in _EIG_POOL if s not in taken][: len(t.eig)]
    if len(names) < len(t.dummies) or len(enames) < len(t.eig):
        return t
    mapping = dict(zip(t.dummies, names))
    mapping.update(zip(t.eig, enames))
    return _subs_term(t, mapping)


def _latex_term(t: Term) -> str:
    t = _display_names(t)
    c = sp.sympify(t.coeff).xreplace({Q: sp.Symbol("n+1")})
    sign = ""
    if (t.dummies or t.eig) and c.could_extract_minus_sign():
        sign, c = "-", -c
    # scalar factors (cycles, bilinear forms) first, then the vector/matrix part
    ordered = sorted(
        t.chains, key=lambda ch: 0 if ch[0] == "o" or all(e[0] == "v" for e in _ends(ch)) else 1
    )
    chains = " ".join(_latex_chain(ch) for ch in ordered)
    if c == 1 and chains:
        body = chains
    elif c == -1 and chains:
        body = "-" + chains
    else:
        cs = sp.latex(c)
        if isinstance(c, sp.Add):
            cs = rf"\left({cs}\right)"
        body = (cs + " " + chains).strip()
    sums = ""
    if t.dummies:
        ds = ",".join(map(sp.latex, t.dummies))
        if t.distinct and len(t.dummies) > 1:
            sums += rf"\sum_{{{ds}\ \mathrm{{distinct}}}}"
        else:
            sums += rf"\sum_{{{ds}}}"
    if t.eig:
        sums += rf"\sum_{{{','.join(map(sp.latex, t.eig))}=1}}^{{d}}"
    return (sign + sums + " " + body).strip()


def _latex_expr(e: Expr, max_terms=None) -> str:
    if not e.terms:
        return "0"
    terms = e.terms if max_terms is None else e.terms[:max_terms]
    s = ""
    for k, t in enumerate(terms):
        lt = _latex_term(t)
        if k and not lt.startswith("-"):
            s += " + "
        elif k:
            s += " "
        s += lt
    if max_terms is not None and len(e.terms) > max_terms:
        s += rf" + \dots\ (\text{{{len(e.terms)} terms}})"
    return s


# ----------------------------------------------------------------------------- realisation (for cross-checks)


def realise(e: Expr, n: int, d: int, env: dict) -> sp.Matrix:
    """Evaluate ``e`` for concrete sizes ``n, d`` with explicit SymPy matrices (cross-checks only).

    ``env``: ``"Sigma"`` (``d×d``), ``"letters"`` (``name -> f(indices) -> d×d Matrix``),
    ``"vectors"`` (``kind -> f(index) -> d×1 Matrix``), ``"coeff"`` (``Expr -> Expr``, applied
    after the indices are given values; the query index is ``n + 1``), ``"eigenvalues"``
    (list, for terms after the spectral rule). Returns a ``1×1`` Matrix for scalars.
    """
    Sigma = env["Sigma"]
    out = None
    for t in e.terms:
        dums = list(t.dummies)
        ranges = (
            itertools.permutations(range(1, n + 1), len(dums))
            if t.distinct
            else itertools.product(range(1, n + 1), repeat=len(dums))
        )
        for vals in ranges:
            mapping = dict(zip(dums, vals))
            mapping[Q] = n + 1
            eig_ranges = itertools.product(range(d), repeat=len(t.eig))
            for evals in eig_ranges:
                val = _realise_term(t, mapping, dict(zip(t.eig, evals)), d, Sigma, env)
                out = val if out is None else out + val
    if out is None:
        out = sp.zeros(1, 1)
    return out


def _F_matrix(f, Sigma):
    d = Sigma.shape[0]
    p, qd = sp.fraction(sp.cancel(f))

    def poly_at(expr):
        M = sp.zeros(d, d)
        for (k,), c in sp.Poly(sp.expand(expr), LAM).terms():
            M += c * Sigma**k
        return M

    Pm = poly_at(p)
    if qd == 1:
        return Pm
    return Pm * poly_at(qd).inv()


def _realise_term(t: Term, mapping, emap, d, Sigma, env):
    def m(s):
        return mapping.get(s, s)

    def letter(L):
        if L[0] == "F":
            return _F_matrix(L[1], Sigma)
        M = env["letters"][L[1]](*[m(s) for s in L[2]])
        return M.T if L[3] else M

    def word(w):
        M = sp.eye(d)
        for L in w:
            M = M * letter(L)
        return M

    def vec_(e):
        return env["vectors"][e[1]](m(e[2]))

    scal = sp.Integer(1)
    col, row, mat_ = None, None, None
    for c in t.chains:
        if c[0] == "o":
            scal *= word(c[1]).trace()
            continue
        if c[1] == ("col",) or c[3] == ("row",):
            c = _reverse_chain(c)
        W = word(c[2])
        l, r = c[1], c[3]
        if l[0] == "v" and r[0] == "v":
            scal *= (vec_(l).T * W * vec_(r))[0, 0]
        elif l == ("row",) and r == ("col",):
            mat_ = W
        elif l == ("row",):
            col = W * vec_(r)
        else:
            row = vec_(l).T * W
    coeff = sp.sympify(t.coeff).xreplace({**mapping})
    if t.eig:
        lam = env["eigenvalues"]
        coeff = coeff.replace(
            lambda x: isinstance(x, sp.Indexed) and x.base == EIG, lambda x: lam[emap[x.indices[0]]]
        )
    coeff = env["coeff"](coeff) * scal
    if mat_ is not None:
        return coeff * mat_
    if col is not None and row is not None:
        return coeff * (col * row)
    if col is not None:
        return coeff * col
    if row is not None:
        return coeff * row
    return sp.Matrix([[coeff]])
