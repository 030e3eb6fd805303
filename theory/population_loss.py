r"""Population risk of one-step WPGD under the Gaussian multitask model, derived by Wick.

Model (``docs/theory.md``, ``docs/conventions.md``):

* ``x_1..x_n, x`` i.i.d. ``N(0, Σ)`` in ``R^d`` (``x`` is the query);
* task vectors ``β_1..β_n, β_{n+1} = β`` jointly Gaussian, zero mean,
  ``E[β_i β_j^T] = R_ij I_d`` (``R`` symmetric of size ``n+1``, indices 1-based in
  symbol names, the query task is index ``n+1``);
* noises ``ξ_1..ξ_{n+1}`` i.i.d. ``N(0, σ^2)``, independent of everything else;
* labels ``y_i = x_i^T β_i + ξ_i`` and the query label ``y = x^T β + ξ_{n+1}``.

Predictors (the query does **not** attend to itself; sign +, scale 1):

* scalar weights ``ŷ = x^T P Σ_i ω_i y_i x_i`` with ``P`` a general ``d×d`` matrix and
  ``ω`` an ``n``-vector;
* feature-wise weights ``ŷ = x^T P Σ_i y_i (Ω_i ⊙ x_i)`` with ``Ω`` of shape ``(n, d)``
  (row ``i`` multiplies the *features* of example ``i``, i.e. ``D_i = diag(Ω_i)`` acts
  on ``x_i`` before ``P``).

The risk is ``L = E(y - ŷ)^2`` (no factor 1/2).

:func:`wick_expectation` computes expectations of polynomials in jointly Gaussian
zero-mean scalars by Isserlis' theorem (sum over perfect matchings), and
:func:`derive_risk` applies it to ``(y - ŷ)^2`` written out coordinate by coordinate
from the model definition above. :func:`check_L1` / :func:`check_featurewise` then prove
(for the given small ``n, d``) that the derived polynomial equals the closed matrix
formulas :func:`risk_formula_L1` / :func:`risk_formula_featurewise` by expanding the
difference to the zero polynomial. Never imports :mod:`numerics`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .result import ProofResult

__all__ = [
    "wick_expectation",
    "Derivation",
    "derive_risk",
    "model_symbols",
    "risk_from_moments",
    "risk_formula_L1",
    "risk_formula_featurewise",
    "featurewise_second_moment",
    "check_L1",
    "check_featurewise",
    "check_featurewise_reduces_to_L1",
    "check_featurewise_diagonal",
    "formulas",
    "abc_matrices",
]


# --------------------------------------------------------------------------- Wick engine


def _as_symbol_list(variables: Any) -> list[sp.Symbol]:
    try:
        vs = list(variables)
    except TypeError:
        raise ValueError("variables: must be a sequence of sympy Symbols") from None
    if not all(isinstance(v, sp.Symbol) for v in vs):
        raise ValueError("variables: every entry must be a sympy Symbol")
    if len(set(vs)) != len(vs):
        raise ValueError("variables: contains duplicates")
    return vs


def _blocks(cov: sp.Matrix) -> list[list[int]]:
    """Connected components of the graph "covariance entry not identically zero".

    Variables in different components are independent (jointly Gaussian + zero
    covariance), so the expectation of a monomial factorises over components; this
    is what keeps the pairing sum small (e.g. ``x_i`` and ``x_j`` never pair).
    """
    m = cov.shape[0]
    parent = list(range(m))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(m):
        for j in range(i + 1, m):
            if cov[i, j] != 0:
                parent[find(i)] = find(j)
    comps: dict[int, list[int]] = {}
    for i in range(m):
        comps.setdefault(find(i), []).append(i)
    return list(comps.values())


class _BlockMoments:
    """Memoised Gaussian moments ``E[Π_k v_k^{e_k}]`` of one independence block.

    Recursion (Isserlis): pick the first variable ``v_k`` with ``e_k > 0``; pair one
    of its occurrences with each other occurrence ``v_j``:
    ``E[v^e] = Σ_j C_kj (e_j - δ_kj) E[v^{e - 1_k - 1_j}]``. Unrolled, this is exactly
    the sum over perfect matchings of the occurrences, with equal matchings grouped by
    their multiplicity (``e_j - δ_kj`` choices of partner occurrence).
    """

    def __init__(self, cov_block: sp.Matrix):
        self.cov = cov_block
        self.size = cov_block.shape[0]
        self.nonzero = [
            [j for j in range(self.size) if cov_block[k, j] != 0] for k in range(self.size)
        ]
        self.cache: dict[tuple[int, ...], sp.Expr] = {(0,) * self.size: sp.Integer(1)}

    def moment(self, e: tuple[int, ...]) -> sp.Expr:
        if e in self.cache:
            return self.cache[e]
        if sum(e) % 2:
            self.cache[e] = sp.Integer(0)
            return self.cache[e]
        k = next(i for i, ei in enumerate(e) if ei)
        total = sp.Integer(0)
        for j in self.nonzero[k]:
            mult = e[j] - (1 if j == k else 0)
            if mult <= 0:
                continue
            rest = list(e)
            rest[k] -= 1
            rest[j] -= 1
            sub = self.moment(tuple(rest))
            if sub != 0:
                total += mult * self.cov[k, j] * sub
        val = sp.expand(total)
        self.cache[e] = val
        return val


def wick_expectation(
    expr: sp.Expr, variables: Sequence[sp.Symbol], covariance: sp.Matrix
) -> sp.Expr:
    r"""``E[expr]`` for ``expr`` a polynomial in zero-mean jointly Gaussian ``variables``.

    Parameters
    ----------
    expr:
        SymPy expression, polynomial in ``variables``; other symbols are treated as
        deterministic coefficients.
    variables:
        sequence of distinct ``sympy.Symbol`` (the random scalars ``v_1..v_m``).
    covariance:
        ``m×m`` symmetric matrix (SymPy ``Matrix`` or nested lists), ``cov[i, j] =
        E[v_i v_j]``; entries may be symbolic but must not involve ``variables``.
        Entries that are identically 0 declare independence. Positive
        semidefiniteness is not checked (entries are symbolic); the result is the
        polynomial identity that holds whenever the covariance is valid.

    Returns
    -------
    The expanded expectation: ``Σ_monomials coeff · Σ_{perfect matchings} Π cov``.
    Odd monomials contribute 0. Moments are cached per independence block.
    """
    vs = _as_symbol_list(variables)
    try:
        cov = sp.Matrix(covariance)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"covariance: cannot convert to a sympy Matrix ({exc})") from None
    m = len(vs)
    if cov.shape != (m, m):
        raise ValueError(f"covariance: expected shape {(m, m)} for {m} variables, got {cov.shape}")
    vset = set(vs)
    for i in range(m):
        for j in range(m):
            if cov[i, j].free_symbols & vset:
                raise ValueError(f"covariance: entry ({i}, {j}) involves a random variable")
            if j > i and sp.expand(cov[i, j] - cov[j, i]) != 0:
                raise ValueError(f"covariance: not symmetric at ({i}, {j})")
    try:
        poly = sp.Poly(sp.expand(sp.sympify(expr)), *vs) if vs else None
    except sp.PolynomialError as exc:
        raise ValueError(f"expr: not a polynomial in the variables ({exc})") from None
    if poly is None:
        return sp.expand(sp.sympify(expr))
    blocks = _blocks(cov)
    engines = [_BlockMoments(cov.extract(b, b)) for b in blocks]
    terms = []
    for monom, coeff in poly.terms():
        val = sp.Integer(1)
        for b, eng in zip(blocks, engines):
            e = tuple(monom[i] for i in b)
            if any(e):
                mom = eng.moment(e)
                if mom == 0:
                    val = sp.Integer(0)
                    break
                val = val * mom
        if val != 0:
            terms.append(sp.sympify(coeff) * val)
    return sp.expand(sp.Add(*terms))


# --------------------------------------------------------------------------- model symbols


def _sym_matrix(
    name: str, rows: int, cols: int | None = None, *, symmetric: bool = False, **assumptions: Any
) -> sp.Matrix:
    cols = rows if cols is None else cols

    def entry(i: int, j: int) -> sp.Symbol:
        if symmetric and j < i:
            i, j = j, i
        return sp.Symbol(
            f"{name}_{i + 1}{j + 1}" if max(rows, cols) < 10 else f"{name}_{i + 1}_{j + 1}",
            real=True,
            **assumptions,
        )

    return sp.Matrix(rows, cols, entry)


def _check_size(n: int, d: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: must be a positive integer, got {n!r}")
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"d: must be a positive integer, got {d!r}")


def model_symbols(
    n: int, d: int, *, featurewise: bool = False, sigma_diagonal: bool = False
) -> dict:
    """The deterministic symbols of the model for sizes ``n, d``.

    Returns a dict with ``Sigma`` (``d×d`` symmetric Matrix, or ``diag(lambda_1..lambda_d)``
    with positive symbols if ``sigma_diagonal``), ``R`` (``(n+1)×(n+1)`` symmetric),
    ``sigma`` (positive Symbol, the noise *standard deviation*), ``P`` (general ``d×d``)
    and ``omega`` (``n×1``) or ``Omega`` (``n×d``).
    """
    _check_size(n, d)
    if sigma_diagonal:
        lam = [sp.Symbol(f"lambda_{k + 1}", positive=True) for k in range(d)]
        Sigma = sp.diag(*lam)
    else:
        Sigma = _sym_matrix("Sigma", d, symmetric=True)
    out = {
        "Sigma": Sigma,
        "R": _sym_matrix("R", n + 1, symmetric=True),
        "sigma": sp.Symbol("sigma", positive=True),
        "P": _sym_matrix("P", d),
    }
    if featurewise:
        out["Omega"] = _sym_matrix("Omega", n, d)
    else:
        out["omega"] = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"omega_{i + 1}", real=True))
    return out


@dataclass
class Derivation:
    """The risk ``E(y - ŷ)^2`` derived by Wick from the model definition.

    ``risk`` is the expanded polynomial in the entries of ``Sigma, R, sigma, P`` and
    ``omega`` / ``Omega`` (all in ``symbols``); ``terms`` its number of monomials;
    ``random_variables`` the Gaussian scalars integrated out; ``seconds`` the time taken.
    """

    n: int
    d: int
    featurewise: bool
    sigma_diagonal: bool
    risk: sp.Expr
    symbols: dict = field(repr=False)
    random_variables: list = field(repr=False)
    terms: int = 0
    seconds: float = 0.0


@functools.lru_cache(maxsize=32)
def derive_risk(
    n: int, d: int, *, featurewise: bool = False, sigma_diagonal: bool = False
) -> Derivation:
    r"""Derive ``E(y - ŷ)^2`` for sizes ``n, d`` by writing the model out coordinatewise
    and integrating every Gaussian scalar with :func:`wick_expectation`.

    Random scalars: ``x_{i,c}`` (examples), ``xq_c`` (query features), ``beta_{i,c}``
    (``i = 1..n+1``), ``xi_i`` (noises, ``i = n+1`` is the query noise). Their joint
    covariance: ``Cov(x_{i,c}, x_{i,c'}) = Σ_cc'`` (independent across ``i`` and from the
    query), ``Cov(β_{i,c}, β_{j,c'}) = R_ij δ_cc'``, ``Var ξ_i = σ^2``; everything else 0.
    Conditioning on ``β`` first is implicit: the covariance has no ``x``–``β`` entries,
    so each monomial factorises into an ``x``-moment (given ``β``) times a ``β``-moment.
    Results are cached (the returned object must not be mutated).
    """
    _check_size(n, d)
    t0 = time.perf_counter()
    S = model_symbols(n, d, featurewise=featurewise, sigma_diagonal=sigma_diagonal)
    Sigma, R, sigma, P = S["Sigma"], S["R"], S["sigma"], S["P"]
    X = [[sp.Symbol(f"x_{i + 1}_{c + 1}", real=True) for c in range(d)] for i in range(n)]
    xq = [sp.Symbol(f"xq_{c + 1}", real=True) for c in range(d)]
    beta = [[sp.Symbol(f"beta_{i + 1}_{c + 1}", real=True) for c in range(d)] for i in range(n + 1)]
    xi = [sp.Symbol(f"xi_{i + 1}", real=True) for i in range(n + 1)]

    variables: list[sp.Symbol] = []
    groups: list[tuple[str, list[sp.Symbol]]] = []
    for i in range(n):
        groups.append(("x", X[i]))
    groups.append(("x", xq))
    for c in range(d):
        groups.append(("beta", [beta[i][c] for i in range(n + 1)]))
    for i in range(n + 1):
        groups.append(("xi", [xi[i]]))
    m = sum(len(g) for _, g in groups)
    cov = sp.zeros(m, m)
    off = 0
    for kind, g in groups:
        k = len(g)
        block = Sigma if kind == "x" else R if kind == "beta" else sp.Matrix([[sigma**2]])
        cov[off : off + k, off : off + k] = block
        variables.extend(g)
        off += k

    y = [sum(X[i][c] * beta[i][c] for c in range(d)) + xi[i] for i in range(n)]
    y_query = sum(xq[c] * beta[n][c] for c in range(d)) + xi[n]
    if featurewise:
        Om = S["Omega"]
        h = [sum(y[i] * Om[i, c] * X[i][c] for i in range(n)) for c in range(d)]
    else:
        om = S["omega"]
        h = [sum(om[i] * y[i] * X[i][c] for i in range(n)) for c in range(d)]
    y_hat = sum(xq[a] * P[a, b] * h[b] for a in range(d) for b in range(d))
    risk = wick_expectation((y_query - y_hat) ** 2, variables, cov)
    return Derivation(
        n=n,
        d=d,
        featurewise=featurewise,
        sigma_diagonal=sigma_diagonal,
        risk=risk,
        symbols=S,
        random_variables=variables,
        terms=len(sp.Add.make_args(risk)),
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- closed forms


def _as_matrix(M: Any, name: str) -> sp.Matrix:
    try:
        return sp.Matrix(M)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert to a sympy Matrix ({exc})") from None


def _check_common(Sigma: Any, R: Any, sigma: Any, P: Any, n: int) -> tuple:
    Sigma = _as_matrix(Sigma, "Sigma")
    d = Sigma.shape[0]
    if Sigma.shape != (d, d):
        raise ValueError(f"Sigma: must be square, got shape {Sigma.shape}")
    if sp.expand(Sigma - Sigma.T) != sp.zeros(d, d):
        raise ValueError("Sigma: not symmetric")
    R = _as_matrix(R, "R")
    if R.shape != (n + 1, n + 1):
        raise ValueError(f"R: expected shape {(n + 1, n + 1)}, got {R.shape}")
    if sp.expand(R - R.T) != sp.zeros(n + 1, n + 1):
        raise ValueError("R: not symmetric")
    P = _as_matrix(P, "P")
    if P.shape != (d, d):
        raise ValueError(f"P: expected shape {(d, d)}, got {P.shape}")
    sigma = sp.sympify(sigma)
    if sigma.is_negative:
        raise ValueError(f"sigma: noise standard deviation must be >= 0, got {sigma}")
    return Sigma, R, sigma, P


def abc_matrices(
    R: sp.Matrix, Sigma: sp.Matrix, sigma: sp.Expr
) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    r"""``(r, A, B)`` of the multitask model (``docs/theory.md``) from ``R`` (size ``n+1``), ``Sigma``, ``sigma``:
    ``r = R[:n, n]``, ``A = R[:n,:n] + diag(R_ii)``, ``B = diag(R_ii tr Σ + σ^2)``.

    >>> r, A, B = abc_matrices(sp.ones(3, 3), sp.eye(2), 0)
    >>> (list(r), A.tolist(), B.tolist())
    ([1, 1], [[2, 1], [1, 2]], [[2, 0], [0, 2]])
    """
    R = _as_matrix(R, "R")
    n = R.shape[0] - 1
    trS = _as_matrix(Sigma, "Sigma").trace()
    r = R[:n, n]
    A = R[:n, :n] + sp.diag(*[R[i, i] for i in range(n)])
    B = sp.diag(*[R[i, i] * trS + sp.sympify(sigma) ** 2 for i in range(n)])
    return r, A, B


def risk_from_moments(
    Sigma: sp.Matrix,
    P: sp.Matrix,
    a: sp.Expr,
    b: sp.Expr,
    c: sp.Expr,
    sigma: sp.Expr,
    R_query: sp.Expr,
) -> sp.Expr:
    r"""The L1 formula as a function of the scalars ``a, b, c``:
    ``σ^2 + R_{n+1,n+1} tr Σ - 2a tr(PΣ^2) + tr(P^T Σ P (bΣ^2 + cΣ))``."""
    Sigma = _as_matrix(Sigma, "Sigma")
    P = _as_matrix(P, "P")
    return (
        sp.sympify(sigma) ** 2
        + R_query * Sigma.trace()
        - 2 * a * (P * Sigma**2).trace()
        + (P.T * Sigma * P * (b * Sigma**2 + c * Sigma)).trace()
    )


def risk_formula_L1(
    Sigma: sp.Matrix, R: sp.Matrix, sigma: sp.Expr, P: sp.Matrix, omega: sp.Matrix
) -> sp.Expr:
    r"""Claim L1: ``L = σ^2 + R_{n+1,n+1} tr Σ - 2a tr(PΣ^2) + tr(P^T Σ P (bΣ^2 + cΣ))``
    with ``a = r^T ω``, ``b = ω^T A ω``, ``c = ω^T B ω`` (scalar weights ``omega``: ``n×1``)."""
    omega = _as_matrix(omega, "omega")
    if omega.shape[1] != 1:
        omega = omega.reshape(len(omega), 1)
    n = omega.shape[0]
    Sigma, R, sigma, P = _check_common(Sigma, R, sigma, P, n)
    r, A, B = abc_matrices(R, Sigma, sigma)
    a = (r.T * omega)[0, 0]
    b = (omega.T * A * omega)[0, 0]
    c = (omega.T * B * omega)[0, 0]
    return risk_from_moments(Sigma, P, a, b, c, sigma, R[n, n])


def featurewise_second_moment(
    Sigma: sp.Matrix, R: sp.Matrix, sigma: sp.Expr, Omega: sp.Matrix
) -> sp.Matrix:
    r"""``E[h h^T]`` for ``h = Σ_i y_i D_i x_i``, ``D_i = diag(Ω_i)``:
    ``Σ_{i,j} A_ij D_i Σ^2 D_j + Σ_i B_ii D_i Σ D_i`` (``A, B`` as in ``docs/theory.md``).

    Off-diagonal ``i ≠ j``: ``E[D_i x_i x_i^T β_i β_j^T x_j x_j^T D_j] = R_ij D_i Σ^2 D_j``.
    Diagonal: ``E[y_i^2 x_i x_i^T] = R_ii E[x x^T x x^T] + σ^2 Σ = R_ii(2Σ^2 + tr(Σ)Σ) + σ^2 Σ``
    (Isserlis: ``E[x x^T M x x^T] = Σ(M + M^T)Σ + tr(MΣ)Σ`` with ``M = I``), which is
    ``A_ii Σ^2 + B_ii Σ`` since ``A_ii = 2R_ii``.
    """
    Omega = _as_matrix(Omega, "Omega")
    n, d = Omega.shape
    Sigma, R, sigma, _ = _check_common(Sigma, R, sigma, sp.zeros(Omega.shape[1]), n)
    if Sigma.shape[0] != d:
        raise ValueError(f"Omega: expected {Sigma.shape[0]} columns (d), got {d}")
    _, A, B = abc_matrices(R, Sigma, sigma)
    D = [sp.diag(*Omega[i, :]) for i in range(n)]
    S2 = Sigma**2
    M = sp.zeros(d, d)
    for i in range(n):
        for j in range(n):
            M += A[i, j] * D[i] * S2 * D[j]
        M += B[i, i] * D[i] * Sigma * D[i]
    return M


def risk_formula_featurewise(
    Sigma: sp.Matrix, R: sp.Matrix, sigma: sp.Expr, P: sp.Matrix, Omega: sp.Matrix
) -> sp.Expr:
    r"""Feature-wise risk (derived here, checked by :func:`check_featurewise`):

    ``L = σ^2 + R_{n+1,n+1} tr Σ - 2 tr(P M_r Σ^2) + tr(P^T Σ P H)`` with
    ``M_r = Σ_i r_i D_i``, ``D_i = diag(Ω_i)`` and
    ``H = E[h h^T] = Σ_{i,j} A_ij D_i Σ^2 D_j + Σ_i B_ii D_i Σ D_i``.
    With ``Ω_i = ω_i 1`` (``D_i = ω_i I``): ``M_r = a I`` and ``H = bΣ^2 + cΣ``, i.e. L1.
    """
    Omega = _as_matrix(Omega, "Omega")
    n, d = Omega.shape
    Sigma, R, sigma, P = _check_common(Sigma, R, sigma, P, n)
    if Sigma.shape[0] != d:
        raise ValueError(f"Omega: expected {Sigma.shape[0]} columns (d), got {d}")
    r, _, _ = abc_matrices(R, Sigma, sigma)
    Mr = sp.zeros(d, d)
    for i in range(n):
        Mr += r[i] * sp.diag(*Omega[i, :])
    H = featurewise_second_moment(Sigma, R, sigma, Omega)
    return (
        sigma**2
        + R[n, n] * Sigma.trace()
        - 2 * (P * Mr * Sigma**2).trace()
        + (P.T * Sigma * P * H).trace()
    )


# --------------------------------------------------------------------------- checks


def _identity_zero(expr: sp.Expr) -> tuple[bool, int]:
    """Is the polynomial ``expr`` identically zero? Returns (verdict, number of residual terms)."""
    diff = sp.expand(expr)
    return diff == 0, (0 if diff == 0 else len(sp.Add.make_args(diff)))


def check_L1(
    n: int, d: int, *, sigma_diagonal: bool = False, formula: Callable | None = None
) -> ProofResult:
    r"""Prove L1 for sizes ``n, d``: Wick-derived risk minus ``formula(Sigma, R, sigma, P, omega)``
    (default :func:`risk_formula_L1`) expands to the zero polynomial in all symbols.

    Returns a :class:`~theory.result.ProofResult`; its case records ``terms`` (monomials of
    the derived risk) and ``residual_terms`` (monomials of the difference, 0 iff verified).
    """
    f = risk_formula_L1 if formula is None else formula
    return _prove_wick_formula(
        "Wick-derived risk = L1 formula", n, d, f, sigma_diagonal, featurewise=False
    )


def check_featurewise(
    n: int, d: int, *, sigma_diagonal: bool = False, formula: Callable | None = None
) -> ProofResult:
    r"""Prove the feature-wise risk formula for sizes ``n, d`` (same contract as :func:`check_L1`,
    ``formula(Sigma, R, sigma, P, Omega)`` defaulting to :func:`risk_formula_featurewise`)."""
    f = risk_formula_featurewise if formula is None else formula
    return _prove_wick_formula(
        "Wick-derived feature-wise risk = formula", n, d, f, sigma_diagonal, featurewise=True
    )


def _prove_wick_formula(
    statement: str, n: int, d: int, formula: Callable, sigma_diagonal: bool, *, featurewise: bool
) -> ProofResult:
    """The Wick-derived risk minus ``formula(Sigma, R, sigma, P, weights)`` is the zero
    polynomial (weights ``omega``, or ``Omega`` when ``featurewise``)."""
    t0 = time.perf_counter()
    der = derive_risk(n, d, featurewise=featurewise, sigma_diagonal=sigma_diagonal)
    S = der.symbols
    weights = S["Omega"] if featurewise else S["omega"]
    ok, resid = _identity_zero(der.risk - formula(S["Sigma"], S["R"], S["sigma"], S["P"], weights))
    return ProofResult(
        statement,
        ok,
        cases=[
            {
                "n": n,
                "d": d,
                "sigma_diagonal": sigma_diagonal,
                "terms": der.terms,
                "residual_terms": resid,
            }
        ],
        residual_terms=resid,
        seconds=time.perf_counter() - t0,
        latex=sp.latex(formulas()["L_featurewise" if featurewise else "L1"]),
        data={"derive_seconds": der.seconds},
    )


def check_featurewise_reduces_to_L1(n: int, d: int) -> ProofResult:
    """With ``Ω_i = ω_i 1`` the feature-wise formula equals L1 (symbolic ``Σ, R, σ, P, ω``)."""
    t0 = time.perf_counter()
    S = model_symbols(n, d)
    Omega = sp.Matrix(n, d, lambda i, _: S["omega"][i])
    lhs = risk_formula_featurewise(S["Sigma"], S["R"], S["sigma"], S["P"], Omega)
    ok, resid = _identity_zero(
        lhs - risk_formula_L1(S["Sigma"], S["R"], S["sigma"], S["P"], S["omega"])
    )
    return ProofResult(
        "Omega_i = omega_i 1 reduces the feature-wise risk to L1",
        ok,
        cases=[{"n": n, "d": d}],
        parts={"identity": ok},
        residual_terms=resid,
        seconds=time.perf_counter() - t0,
        latex=sp.latex(formulas()["L_featurewise"]),
    )


def check_featurewise_diagonal(n: int = 2, d: int = 2) -> ProofResult:
    r"""Feature-wise risk for a *diagonal* ``Σ = diag(λ_1..λ_d)`` (coordinates = gate axis).

    Proves, for symbolic ``λ, R, σ, P, Ω`` of sizes ``n, d``, the exact completion of squares
    ``L_fw(P, Ω) = L_fw^*(Ω) + Σ_{e,c} λ_e H_cc (P_ec - P*_ec)^2`` with ``H = E[hh^T]`` diagonal,
    ``H_cc = λ_c^2 Ω_c^T A Ω_c + λ_c Ω_c^T B Ω_c`` (``Ω_c`` = column ``c`` of ``Ω``),
    ``P* = diag(λ_c r^TΩ_c / H_cc)`` and
    ``L_fw^*(Ω) = σ^2 + R_{n+1,n+1} tr Σ - Σ_c λ_c^2 (r^TΩ_c)^2 / (λ_c Ω_c^TAΩ_c + Ω_c^TBΩ_c)``.
    Each column is then a separate generalised Rayleigh quotient, maximised by
    ``Ω_c ∝ (λ_c A + B)^{-1} r`` (Cauchy-Schwarz), giving
    ``L_fw^* = σ^2 + R_{n+1,n+1} tr Σ - Σ_c λ_c^2 r^T(λ_cA + B)^{-1} r``; scalar weights force
    all columns equal, so the gain is strict iff these directions differ.
    Also checks ``H`` is diagonal (part ``H_diagonal``).
    """
    _check_size(n, d)
    t0 = time.perf_counter()
    S = model_symbols(n, d, featurewise=True, sigma_diagonal=True)
    Sigma, R, sigma, P, Om = S["Sigma"], S["R"], S["sigma"], S["P"], S["Omega"]
    lam = [Sigma[k, k] for k in range(d)]
    r, A, B = abc_matrices(R, Sigma, sigma)
    H = featurewise_second_moment(Sigma, R, sigma, Om)
    cols = [Om[:, k] for k in range(d)]
    Hcc = [
        lam[k] ** 2 * (cols[k].T * A * cols[k])[0, 0] + lam[k] * (cols[k].T * B * cols[k])[0, 0]
        for k in range(d)
    ]
    parts = {
        "H_diagonal": all(sp.expand(H[i, j]) == 0 for i in range(d) for j in range(d) if i != j)
        and all(sp.expand(H[k, k] - Hcc[k]) == 0 for k in range(d))
    }
    m = [(r.T * cols[k])[0, 0] for k in range(d)]
    Pstar = sp.diag(*[lam[k] * m[k] / Hcc[k] for k in range(d)])
    Lstar = (
        sigma**2
        + R[n, n] * sum(lam)
        - sum(
            lam[k] ** 2
            * m[k] ** 2
            / (lam[k] * (cols[k].T * A * cols[k])[0, 0] + (cols[k].T * B * cols[k])[0, 0])
            for k in range(d)
        )
    )
    L = risk_formula_featurewise(Sigma, R, sigma, P, Om)
    squares = sum(
        lam[e] * Hcc[c] * (P[e, c] - Pstar[e, c]) ** 2 for e in range(d) for c in range(d)
    )
    diff = sp.together(L - Lstar - squares)
    parts["completion_of_squares"] = sp.expand(sp.numer(diff)) == 0
    return ProofResult(
        "diagonal Sigma: completion of squares and column-wise optimum",
        all(parts.values()),
        cases=[{"n": n, "d": d}],
        parts=parts,
        seconds=time.perf_counter() - t0,
        latex=sp.latex(formulas()["L_featurewise_diagonal_opt"]),
    )


def formulas() -> dict[str, sp.Expr]:
    """The derived formulas as abstract SymPy expressions (``MatrixSymbol`` based), for LaTeX."""
    d = sp.Symbol("d", integer=True, positive=True)
    Sigma = sp.MatrixSymbol(r"\Sigma", d, d)
    P = sp.MatrixSymbol("P", d, d)
    H = sp.MatrixSymbol("H", d, d)
    M_r = sp.MatrixSymbol("M_r", d, d)
    a, b, c = sp.symbols("a b c", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    Rq = sp.Symbol("R_{n+1,n+1}", real=True)
    base = sigma**2 + Rq * sp.Trace(Sigma)
    return {
        "L1": sp.Eq(
            sp.Symbol(r"L(P, \omega)"),
            base
            - 2 * a * sp.Trace(P * Sigma**2)
            + sp.Trace(P.T * Sigma * P * (b * Sigma**2 + c * Sigma)),
            evaluate=False,
        ),
        "L_featurewise": sp.Eq(
            sp.Symbol(r"L(P, \Omega)"),
            base - 2 * sp.Trace(P * M_r * Sigma**2) + sp.Trace(P.T * Sigma * P * H),
            evaluate=False,
        ),
        "H_featurewise": sp.Eq(
            sp.Symbol("H"),
            sp.Symbol(r"\sum_{i,j} A_{ij} D_i \Sigma^2 D_j + \sum_i B_{ii} D_i \Sigma D_i"),
            evaluate=False,
        ),
        "M_r": sp.Eq(sp.Symbol("M_r"), sp.Symbol(r"\sum_{i} r_{i} D_{i}"), evaluate=False),
        "L_featurewise_diagonal_opt": sp.Eq(
            sp.Symbol(r"\min_{P,\Omega} L_{fw}"),
            base
            - sp.Sum(
                sp.IndexedBase(r"\lambda")[sp.Symbol("c")] ** 2
                * sp.Symbol(r"r^T(\lambda_c A + B)^{-1} r"),
                (sp.Symbol("c"), 1, d),
            ),
            evaluate=False,
        ),
    }
