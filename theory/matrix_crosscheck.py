r"""Every rule of the matrix engine, checked against the coordinate Wick engine.

A rule of :mod:`theory.matrix_engine` is trusted only if, on small explicit instances, it agrees
with :func:`theory.population_loss.wick_expectation` (Isserlis by perfect matchings on scalar
coordinates, an independent implementation) or with direct coordinate algebra. The instances
are chosen so that a plausible wrong rule fails: e.g. the fourth-moment instances include a
*non-symmetric* ``M`` (a rule that forgets ``Mᵀ`` is right for symmetric ``M`` only) and
ends spread over separate bilinear forms.

:func:`cross_check_rules` checks the rules of a rule set (default :data:`RULES`);
:func:`planted_rules` returns rule sets with one deliberately wrong rule, which the check must
reject. :func:`cross_check_derivation` compares a whole engine derivation (the L1 and
feature-wise risks) with the coordinate derivation :func:`theory.population_loss.derive_risk`.

>>> res = cross_check_rules(d=2)
>>> res["holds"], sorted(res["rules"])[:3]
(True, ['canonical form', 'fourth moment', 'free index'])
>>> cross_check_rules(planted_rules()["fourth moment without M^T"], only=["fourth moment"], d=2)[
...     "holds"
... ]
False

Never imports :mod:`numerics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace

import sympy as sp

from . import matrix_engine as me
from .matrix_engine import (
    LAM,
    OMEGA,
    RULES,
    SIGMA_NOISE,
    XI,
    D,
    Expr,
    N,
    Q,
    Rule,
    Term,
    apply_vector_rule,
    canonical,
    fn,
    idx,
    mat,
    realise,
    scalar,
    split_sums,
    sum_over,
    vec,
)
from .population_loss import derive_risk, wick_expectation

__all__ = ["coordinate_env", "cross_check_derivation", "cross_check_rules", "planted_rules"]


def _symvec(name, index, d):
    return sp.Matrix([sp.Symbol(f"{name}_{index}_{c + 1}", real=True) for c in range(d)])


def _symmat(name, d, symmetric=False):
    def e(a, b):
        if symmetric and b < a:
            a, b = b, a
        return sp.Symbol(f"{name}_{a + 1}{b + 1}", real=True)

    return sp.Matrix(d, d, e)


def coordinate_env(
    n: int, d: int, *, Sigma: sp.Matrix | None = None, eigenvalues: list | None = None
) -> dict:
    """Explicit symbolic matrices for :func:`theory.matrix_engine.realise`: ``Σ`` symmetric,
    general letters ``P, M, N, U, Δ``, diagonal ``D_i = diag(Ω_i)``, vectors with symbolic
    coordinates, ``R`` symmetric of size ``n + 1``; ``n`` and ``d`` are given their values."""
    Sigma = _symmat("Sigma", d, True) if Sigma is None else Sigma
    Rm = _symmat("R", n + 1, True)
    fixed = {name: _symmat(name, d) for name in ("P", "M", "N", "U", "Delta", "P_q", "P_k")}
    letters: dict[str, Callable[..., sp.Matrix]] = {
        name: (lambda *i, _m=m: _m) for name, m in fixed.items()
    }
    letters["D"] = lambda i: sp.diag(
        *[sp.Symbol(f"Omega_{i}_{c + 1}", real=True) for c in range(d)]
    )

    def coeff(c):
        c = sp.sympify(c).xreplace({N: sp.Integer(n), D: sp.Integer(d)})
        return c.replace(
            lambda e: isinstance(e, sp.Indexed) and e.base == me.R,
            lambda e: (
                Rm[int(e.indices[0]) - 1, int(e.indices[1]) - 1]
                if all(sp.sympify(k).is_Integer for k in e.indices)
                else e
            ),
        )

    vectors = {
        kind: (lambda i, _k=kind: _symvec(_k, i, d)) for kind in ("x", "beta", "u", "v", "w")
    }
    return {
        "Sigma": Sigma,
        "letters": letters,
        "vectors": vectors,
        "coeff": coeff,
        "R": Rm,
        "eigenvalues": eigenvalues,
    }


def _wick(expr_matrix, variables, cov):
    return expr_matrix.applyfunc(lambda e: wick_expectation(e, variables, cov))


def _check_vector_rule(rule: Rule, term_expr: Expr, kind: str, index, d: int) -> bool:
    """One instance: Wick over the coordinates of ``(kind, index)`` vs the rule's output."""
    env = coordinate_env(3, d)
    t = term_expr.terms[0]
    lhs_det = realise(Expr([t]), 3, d, env)
    # realise() gives the query index Q the value n + 1 = 4
    variables = list(_symvec("x", 4 if index == Q else index, d))
    lhs = _wick(lhs_det, variables, env["Sigma"])
    rhs = realise(apply_vector_rule(rule, t, kind, index), 3, d, env)
    if rhs.shape != lhs.shape:
        if rhs.shape == (1, 1) and rhs[0, 0] == 0:
            rhs = sp.zeros(*lhs.shape)
        else:
            return False
    return sp.expand(lhs - rhs) == sp.zeros(*lhs.shape)


def _vector_cases():
    x = vec("x", Q)
    u, v = vec("u", 1), vec("v", 2)
    M, Nn, U = mat("M"), mat("N"), mat("U")
    return {
        "second moment": [
            ("x x^T", x @ x.T),
            ("u^T x x^T v", (u.T @ x) @ (x.T @ v)),
            ("x^T M x", x.T @ M @ x),
            ("M x x^T N", M @ x @ x.T @ Nn),
            ("(u^T x) N x", (u.T @ x) @ (Nn @ x)),
        ],
        "fourth moment": [
            ("x x^T M x x^T, M general", x @ x.T @ M @ x @ x.T),
            ("(x^T M x)(x^T N x)", (x.T @ M @ x) @ (x.T @ Nn @ x)),
            ("(u^T x)^2 x x^T", (u.T @ x) @ (u.T @ x) @ x @ x.T),
            ("(u^T x)(x^T M x)(v^T x)", (u.T @ x) @ (x.T @ M @ x) @ (v.T @ x)),
            ("U x x^T M x x^T N", U @ x @ x.T @ M @ x @ x.T @ Nn),
        ],
        "odd moment": [
            ("x", x),
            ("(u^T x)(x^T M x)", (u.T @ x) @ (x.T @ M @ x)),
            ("x x^T x", x @ x.T @ x),
        ],
    }


def _check_task_rule(rule: Rule, d: int) -> list[dict]:
    i, j = idx("i"), idx("j")
    M = mat("M")
    cases = [
        ("beta_i^T M beta_j", vec("beta", i).T @ M @ vec("beta", j), [i, j]),
        ("beta_i^T M beta_i", vec("beta", i).T @ M @ vec("beta", i), [i]),
        (
            "(x^T beta_q)(beta_i^T u)",
            (vec("x", Q).T @ vec("beta", Q)) @ (vec("beta", i).T @ vec("u", 1)),
            [i, Q],
        ),
        ("beta_i beta_j^T (matrix)", vec("beta", i) @ vec("beta", j).T, [i, j]),
    ]
    out = []
    env = coordinate_env(3, d)
    for name, e, inds in cases:
        t = me._number_ends(e.terms[0])
        ends = [
            (x_, x_[2]) for c in t.chains for x_ in me._ends(c) if x_[0] == "v" and x_[1] == "beta"
        ]
        res = Expr(
            [
                replace(t, coeff=t.coeff * c, chains=tuple(ch))
                for c, ch in rule.apply(
                    list(t.chains), [me._end_id(a) for a, _ in ends], [k for _, k in ends]
                )
            ]
        )
        variables = []
        for k in inds:
            variables += list(_symvec("beta", 4 if k == Q else k, d))
        m = len(variables)
        cov = sp.zeros(m, m)
        for a in range(len(inds)):
            for b in range(len(inds)):
                for c in range(d):
                    cov[a * d + c, b * d + c] = me.Rij(inds[a], inds[b]).xreplace({Q: 4})
        lhs = _wick(realise(Expr([t]), 3, d, env), variables, cov)
        rhs = realise(res, 3, d, env)
        out.append({"case": name, "ok": sp.expand(lhs - rhs) == sp.zeros(*lhs.shape)})
    return out


def _check_noise_rule(rule: Rule) -> list[dict]:
    i, j = idx("i"), idx("j")
    xs = [sp.Symbol("xi_i", real=True), sp.Symbol("xi_j", real=True)]
    cov = sp.diag(SIGMA_NOISE**2, SIGMA_NOISE**2)
    a = sp.Symbol("a")
    cases = [
        ("xi_i^2", XI[i] ** 2),
        ("xi_i^4", XI[i] ** 4),
        ("xi_i xi_j", XI[i] * XI[j]),
        ("(a + xi_i)^2 xi_j^2", (a + XI[i]) ** 2 * XI[j] ** 2),
        ("xi_i^3", XI[i] ** 3),
    ]
    out = []
    for name, c in cases:
        got = rule.apply(c, [i, j])
        ref = wick_expectation(c.xreplace({XI[i]: xs[0], XI[j]: xs[1]}), xs, cov)
        out.append({"case": name, "ok": sp.expand(got - ref) == 0})
    return out


def _check_algebra(d: int) -> dict[str, list[dict]]:
    """Rules that are algebra (index split, free index, canonical form, spectral, trace derivative),
    each against a coordinate computation on explicit ``d``-dimensional instances."""
    return {
        "index split": _check_index_split(d),
        "independence": _check_independence(d),
        "kronecker delta": _check_kronecker_delta(d),
        "free index": _check_free_index(d),
        "canonical form": _check_canonical_form(d),
        "spectral": _check_spectral(d),
        "trace derivative": _check_trace_derivative(d),
    }


def _omega_env(d: int) -> dict:
    """The coordinate environment for ``n = 3`` with the weights ``ω_i`` as plain symbols."""
    env = coordinate_env(3, d)
    env["coeff"] = _coeff_with_omega(env, 3)
    return env


def _check_index_split(d: int) -> list[dict]:
    """A double and a triple sum, realised for ``n = 3``, against their split form."""
    i, j, l = idx("i"), idx("j"), idx("l")
    cases = []
    for name, e in [
        (
            "sum_{i,j} omega_i omega_j R_ij",
            sum_over(scalar(OMEGA[i] * OMEGA[j] * me.Rij(i, j)), i, j),
        ),
        (
            "sum_{i,j,l} omega_i R_jl x_i^T x_l",
            sum_over(OMEGA[i] * me.Rij(j, l) * (vec("x", i).T @ vec("x", l)), i, j, l),
        ),
    ]:
        env3 = _omega_env(d)
        a = realise(e, 3, d, env3)
        b = realise(split_sums(e)[0], 3, d, env3)
        cases.append({"case": name, "ok": sp.expand(a - b) == sp.zeros(*a.shape)})
    return cases


def _check_independence(d: int) -> list[dict]:
    """Distinct examples and the query are integrated one vector at a time (Wick at ``n = 2``)."""
    i, j = idx("i"), idx("j")
    U = mat("U")
    env = coordinate_env(3, d)
    xi_, xj_, xq_ = vec("x", i), vec("x", j), vec("x", Q)
    e = Expr(
        [
            Term(sp.Integer(1), t.chains, (i, j), True)
            for t in (xi_ @ xi_.T @ U @ xj_ @ xj_.T @ xq_ @ xq_.T).terms
        ]
    )
    n2 = 2
    variables = [v for k in (1, 2, n2 + 1) for v in _symvec("x", k, d)]
    cov = sp.diag(*[env["Sigma"]] * 3)
    env2 = coordinate_env(n2, d, Sigma=env["Sigma"])
    a = _wick(realise(e, n2, d, env2), variables, cov)
    b = realise(me.expectation(e), n2, d, env2)
    return [
        {
            "case": "sum_{i != j} x_i x_i^T U x_j x_j^T x x^T, n = 2",
            "ok": sp.expand(a - b) == sp.zeros(d, d),
        }
    ]


def _check_kronecker_delta(d: int) -> list[dict]:
    """``d/dω_l`` of a double sum, against coordinate differentiation at ``n = 3``."""
    i, j, lfree = idx("i"), idx("j"), idx("l")
    b2 = sum_over(scalar(OMEGA[i] * OMEGA[j] * me.Rij(i, j)), i, j) + sum_over(
        scalar(OMEGA[i] ** 2 * me.Rij(i, i) * me.Rij(i, Q)), i
    )
    env3 = _omega_env(d)
    val = realise(b2, 3, d, env3)[0, 0]
    got = me.diff_indexed(b2, OMEGA, lfree)
    got = Expr([me._subs_term(t, {lfree: sp.Integer(2)}) for t in got.terms])
    ok = (
        sp.expand(realise(got, 3, d, env3)[0, 0] - sp.diff(val, sp.Symbol("omega_2", real=True)))
        == 0
    )
    return [
        {
            "case": "d/d omega_2 of sum_{i,j} omega_i omega_j R_ij + sum_i omega_i^2 R_ii R_iq",
            "ok": ok,
        }
    ]


def _check_free_index(d: int) -> list[dict]:
    """The sum over distinct ``(i, j)`` of ``ω_i`` is ``(n − 1) Σ_i ω_i``."""
    i, j = idx("i"), idx("j")
    e = Expr([Term(OMEGA[i], (), (i, j), True)])
    env3 = _omega_env(d)
    a, b = realise(e, 3, d, env3), realise(canonical(e), 3, d, env3)
    return [{"case": "sum_{i != j} omega_i", "ok": sp.expand(a - b) == sp.zeros(1, 1)}]


def _check_canonical_form(d: int) -> list[dict]:
    """Cyclicity, transposes, functions of ``Σ`` (polynomial and rational), ``tr I = d``."""
    P, M, U = mat("P"), mat("M"), mat("U")
    S = me.SIGMA
    env = coordinate_env(3, d)
    b_, c_ = sp.symbols("b c", positive=True)
    exprs = [
        (
            "tr(P Sigma P^T Sigma^2) + tr(Sigma^2 P Sigma P^T)",
            (P @ S @ P.T @ S @ S).tr() + (S @ S @ P @ S @ P.T).tr(),
        ),
        (
            "u^T P^T M v + v^T M^T P u",
            vec("u", 1).T @ P.T @ M @ vec("v", 2) + vec("v", 2).T @ M.T @ P @ vec("u", 1),
        ),
        (
            "tr((b Sigma + c I)^{-1} Sigma (b Sigma^2 + c Sigma) U)",
            (fn(1 / (b_ * LAM + c_)) @ S @ fn(b_ * LAM**2 + c_ * LAM) @ U).tr(),
        ),
        (
            "tr(I) tr(Sigma) P + (P (Sigma + Sigma^2))^T",
            me.IDENTITY.tr() @ S.tr() @ P + (P @ fn(LAM + LAM**2)).T,
        ),
    ]
    cases = []
    for name, e in exprs:
        a, b = realise(e, 3, d, env), realise(canonical(e), 3, d, env)
        cases.append({"case": name, "ok": sp.expand(sp.together(a - b)) == sp.zeros(*a.shape)})
    return cases


def _check_spectral(d: int) -> list[dict]:
    """The spectral rule with an exactly orthogonal rotation of a diagonal ``Σ``."""
    b_, c_ = sp.symbols("b c", positive=True)
    lam = [sp.Symbol(f"l_{k + 1}", positive=True) for k in range(d)]
    Qm = sp.eye(d)
    Qm[0, 0], Qm[0, 1], Qm[1, 0], Qm[1, 1] = (
        sp.Rational(3, 5),
        sp.Rational(-4, 5),
        sp.Rational(4, 5),
        sp.Rational(3, 5),
    )
    Sg = Qm * sp.diag(*lam) * Qm.T
    envs = coordinate_env(3, d, Sigma=Sg, eigenvalues=lam)
    e = fn(LAM**2 / (b_ * LAM + c_)).tr() - 2 * fn(LAM).tr() @ fn(1 / (LAM + c_)).tr()
    a, b = realise(e, 3, d, envs), realise(canonical(e, spectral=True), 3, d, envs)
    return [
        {
            "case": "tr(Sigma^2 (b Sigma + c)^{-1}) - 2 tr(Sigma) tr((Sigma + c)^{-1}), rotated Sigma",
            "ok": sp.simplify(a[0, 0] - b[0, 0]) == 0,
        }
    ]


def _check_trace_derivative(d: int) -> list[dict]:
    """The matrix derivative of a trace, against coordinate differentiation."""
    P, M, U = mat("P"), mat("M"), mat("U")
    S = me.SIGMA
    env = coordinate_env(3, d)
    e = (P @ M @ P.T @ U).tr() + 3 * (P @ S @ S).tr() + (P.T @ S @ P @ fn(LAM**2 + LAM)).tr()
    g = me.grad_trace(e, "P")
    val = realise(e, 3, d, env)[0, 0]
    Pm = env["letters"]["P"]()
    ref = sp.Matrix(d, d, lambda a_, b__: sp.diff(val, Pm[a_, b__]))
    return [
        {
            "case": "tr(P M P^T U) + 3 tr(P Sigma^2) + tr(P^T Sigma P (Sigma^2 + Sigma))",
            "ok": sp.expand(realise(g, 3, d, env) - ref) == sp.zeros(d, d),
        }
    ]


def _coeff_with_omega(env, n):
    base = env["coeff"]

    def coeff(c):
        c = base(c)
        return c.replace(
            lambda e: isinstance(e, sp.Indexed) and e.base == OMEGA,
            lambda e: sp.Symbol(f"omega_{int(e.indices[0])}", real=True),
        )

    return coeff


def cross_check_rules(
    rules: dict | None = None, *, only: Iterable[str] | None = None, d: int = 2
) -> dict:
    """Check every rule (or those in ``only``) of ``rules`` on explicit ``d``-dimensional instances.

    Returns ``{"holds", "rules": {name: {"holds", "cases": [{"case", "ok"}]}}, "instances", "seconds"}``.
    """
    if not isinstance(d, int) or d < 2:
        raise ValueError(
            f"d: must be an integer >= 2 (instances need room for non-symmetric M), got {d!r}"
        )
    rules = RULES if rules is None else rules
    t0 = time.perf_counter()
    out: dict = {}

    def want(name):
        return only is None or name in only

    for name, cases in _vector_cases().items():
        if want(name):
            out[name] = [
                {"case": c, "ok": _check_vector_rule(rules[name], e, "x", Q, d)} for c, e in cases
            ]
    if want("task covariance"):
        out["task covariance"] = _check_task_rule(rules["task covariance"], d)
    if want("noise"):
        out["noise"] = _check_noise_rule(rules["noise"])
    if only is None or set(only) & {
        "index split",
        "free index",
        "canonical form",
        "spectral",
        "trace derivative",
    }:
        for k, v in _check_algebra(d).items():
            if want(k):
                out[k] = v
    rules_out = {k: {"holds": all(c["ok"] for c in v), "cases": v} for k, v in out.items()}
    return {
        "holds": all(r["holds"] for r in rules_out.values()),
        "rules": rules_out,
        "instances": sum(len(v) for v in out.values()),
        "d": d,
        "seconds": time.perf_counter() - t0,
    }


def planted_rules() -> dict[str, dict]:
    """Rule sets with one deliberately wrong rule each (the cross-check must reject them):

    * ``fourth moment without M^T``: ``E[x xᵀ M x xᵀ] = 2ΣMΣ + tr(MΣ)Σ`` (right only for symmetric ``M``);
    * ``second moment transposed twice``: ``E[x xᵀ] = Σ²``;
    * ``task covariance ignoring i != j``: ``E[β_i β_jᵀ] = R_ii I``.
    """

    def bad_fourth(chains, ends):
        e = list(ends)
        out = []
        for (a, b), (c, d) in (
            [(e[0], e[1]), (e[2], e[3])],
            [(e[0], e[2]), (e[1], e[3])],
            [(e[0], e[2]), (e[1], e[3])],
        ):
            out.append(
                (
                    sp.Integer(1),
                    me._join(me._join(chains, a, b, (me._L_F(LAM),)), c, d, (me._L_F(LAM),)),
                )
            )
        return out

    def bad_second(chains, ends):
        a, b = ends
        return [(sp.Integer(1), me._join(chains, a, b, (me._L_F(LAM**2),)))]

    def bad_task(chains, ends, indices):
        a, b = ends
        return [(me.Rij(indices[0], indices[0]), me._join(chains, a, b, ()))]

    out = {}
    for label, name, f in (
        ("fourth moment without M^T", "fourth moment", bad_fourth),
        ("second moment transposed twice", "second moment", bad_second),
        ("task covariance ignoring i != j", "task covariance", bad_task),
    ):
        rs = dict(RULES)
        rs[name] = Rule(name + " (planted)", RULES[name].statement, f)
        out[label] = rs
    return out


def cross_check_derivation(
    n: int = 2, d: int = 2, *, featurewise: bool = False, rules: dict | None = None
) -> dict:
    """The engine's derivation of the risk (:func:`theory.general.derive_risk_matrix`), realised at
    ``(n, d)``, minus the coordinate derivation :func:`theory.population_loss.derive_risk`:
    expands to 0 iff the two independent derivations agree."""
    from .general import derive_risk_matrix
    from .population_loss import model_symbols

    t0 = time.perf_counter()
    E, _ = derive_risk_matrix(featurewise=featurewise, rules=rules)
    coord = derive_risk(n, d, featurewise=featurewise)
    S = coord.symbols
    env = coordinate_env(n, d, Sigma=S["Sigma"])
    env["letters"]["P"] = lambda *i: S["P"]
    if featurewise:
        env["letters"]["D"] = lambda i: sp.diag(*S["Omega"][int(i) - 1, :])
    base = env["coeff"]

    def coeff(c):
        c = base(c).xreplace({me.SIGMA_NOISE: S["sigma"]})
        c = c.replace(
            lambda e: isinstance(e, sp.Indexed) and e.base == me.R,
            lambda e: S["R"][int(e.indices[0]) - 1, int(e.indices[1]) - 1],
        )
        if not featurewise:
            c = c.replace(
                lambda e: isinstance(e, sp.Indexed) and e.base == OMEGA,
                lambda e: S["omega"][int(e.indices[0]) - 1],
            )
        return c

    env["coeff"] = coeff
    diff = sp.expand(realise(E, n, d, env)[0, 0] - coord.risk)
    _ = model_symbols
    return {
        "holds": diff == 0,
        "n": n,
        "d": d,
        "featurewise": featurewise,
        "residual_terms": 0 if diff == 0 else len(sp.Add.make_args(diff)),
        "seconds": time.perf_counter() - t0,
    }
