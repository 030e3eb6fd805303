r"""SymPy side of claim G5 (depth): the nesting identity and exact multi-layer population risks.

Never imports :mod:`numerics`. Conventions (``docs/conventions.md``, ``docs/depth.md``):

* residual GLA stack ``Z_{ℓ+1} = Z_ℓ + GLA_ℓ(Z_ℓ)``, ``o_t = S_t q_t`` (the token attends to
  itself), construction weights of :func:`theory.construction.block_weights`;
* ``L``-step causal WPGD over tokens ``1..n+1`` (query last, label slot 0):
  ``w^{(i)}_{ℓ+1} = w^{(i)}_ℓ + P_ℓ Σ_{j<=i} ω^{(ℓ)}_{ij} x_j (y_j − x_jᵀ w^{(j)}_ℓ)``,
  ``ω^{(ℓ)}_{ij} = Π_{k=j+1}^{i} g^{(ℓ)}_k``; prediction ``ŷ = xᵀ w^{(n+1)}_L``.

Nesting (:func:`prove_nesting`): a GLA layer with ``W_q = 0`` outputs ``o_t = S_t · 0 = 0`` for
every token, whatever ``W_k, W_v`` and gates, so it is the identity on the residual stream;
in WPGD terms a step with ``P_ℓ = 0`` leaves every token's iterate unchanged. Hence inserting
such a layer anywhere in an ``(L−1)``-layer stack gives an ``L``-layer stack computing the same
function, and ``min_{L layers} risk <= min_{L−1 layers} risk``.

Exact risk (:func:`population_risk`): for ``d = 1``, ``Σ = 1``, independent tasks
(``Γ = I``) and a query task ``β = Σ_k ρ_k β^{(k)} + c ζ_0`` (so ``E β² = Σ ρ_k² + c²``), the
prediction is a polynomial in independent standard normals (features, task factors,
noises); ``E(y − ŷ)²`` is taken monomial by monomial with ``E z^{2m} = (2m−1)!!`` in a sparse
polynomial ring (fast enough for ``L = 2, n <= 3``). The result is a polynomial in the
per-layer step sizes ``p_ℓ`` and delimiter gates ``g_{ℓ,k}`` (``g_{ℓ,K}`` is the query's
gate), the same delimiter parametrisation as :mod:`numerics.depth`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from math import prod
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy import QQ
from sympy.polys.rings import ring

from .construction import (
    _mat,
    block_weights,
    causal_wpgd_symbolic,
    gla_symbolic,
    prompt_symbols,
    residual_stack_symbolic,
    scalar_gates,
    tokens,
)
from .population_loss import risk_formula_L1
from .result import ProofResult

if TYPE_CHECKING:  # numpy is imported lazily, where the float functions are built
    import numpy as np

__all__ = [
    "prove_nesting",
    "SmallInstance",
    "population_risk",
    "check_one_layer_matches_L1",
    "lambdify_risk",
]


# ----------------------------------------------------------------------------- nesting
def prove_nesting(cases: Sequence[tuple[int, int]] = ((2, 1), (3, 2))) -> ProofResult:
    r"""Prove, for each ``(n, d)``: (i) a scalar-gated GLA layer with ``W_q = 0`` and generic
    ``W_k, W_v`` (``(d+1)×(d+1)`` symbols) and gates outputs 0 at every token; (ii) the
    2-layer residual construction stack with a switched-off second layer (``P_q = 0``) equals
    the 1-layer stack at every token; (iii) causal WPGD with ``P = 0`` inserted before, or after,
    a generic step gives the same iterates for every token.

    Returns a :class:`~theory.result.ProofResult` whose cases are ``{n, d, zero_output,
    stack_unchanged, insert_front, insert_back, seconds}``.
    """
    out = []
    for n, d in cases:
        t0 = time.perf_counter()
        xs, ys, xq = prompt_symbols(n, d)
        Z = tokens(xs, ys, xq)
        T, D = n + 1, d + 1
        g1, g2 = scalar_gates(T, "g"), scalar_gates(T, "h")
        Wk, Wv = _mat("K", D), _mat("V", D)
        O = gla_symbolic(Z, sp.zeros(D, D), Wk, Wv, g1)
        zero_output = all(sp.expand(o) == sp.zeros(D, 1) for o in O)
        Pq, Pk = _mat("A", d), _mat("B", d)
        lay1 = block_weights(Pq, Pk, -1)
        lay0 = block_weights(sp.zeros(d, d), _mat("C", d), -1)
        Z1 = residual_stack_symbolic(Z, [lay1], [g1])
        Z2 = residual_stack_symbolic(Z, [lay1, lay0], [g1, g2])
        stack_unchanged = all(sp.expand(a - b) == sp.zeros(D, 1) for a, b in zip(Z1, Z2))
        P = _mat("P", d)
        w1 = causal_wpgd_symbolic(xs, ys, xq, [P], [g1])
        wf = causal_wpgd_symbolic(xs, ys, xq, [sp.zeros(d, d), P], [g2, g1])
        wb = causal_wpgd_symbolic(xs, ys, xq, [P, sp.zeros(d, d)], [g1, g2])
        insert_front = all(sp.expand(a - b) == sp.zeros(d, 1) for a, b in zip(w1, wf))
        insert_back = all(sp.expand(a - b) == sp.zeros(d, 1) for a, b in zip(w1, wb))
        out.append(
            {
                "n": n,
                "d": d,
                "zero_output": zero_output,
                "stack_unchanged": stack_unchanged,
                "insert_front": insert_front,
                "insert_back": insert_back,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
    ok = all(
        c["zero_output"] and c["stack_unchanged"] and c["insert_front"] and c["insert_back"]
        for c in out
    )
    latex = (
        r"W_q=0\Rightarrow o_t=S_t\,0=0\ \forall t\Rightarrow Z_{\ell+1}=Z_\ell;\quad "
        r"P_\ell=0\Rightarrow w^{(i)}_{\ell+1}=w^{(i)}_\ell\ \forall i;\quad "
        r"\min_{L}\mathcal L\le\min_{L-1}\mathcal L"
    )
    return ProofResult(
        "a W_q = 0 / P = 0 layer is the identity on the residual stream (nesting)",
        ok,
        cases=out,
        seconds=sum(c["seconds"] for c in out),
        latex=latex,
    )


# ----------------------------------------------------------------------------- exact risk
class SmallInstance:
    """A ``d = 1`` K-task instance with rational data: segment lengths ``m``, query correlations
    ``rho`` (``E[β^{(k)} β] = ρ_k``), independent query part ``c``, noise std ``sigma``; ``Σ = 1``,
    ``Γ = I``. ``R`` is the ``(n+1)×(n+1)`` task correlation (``R_ij = [k(i) = k(j)]``,
    ``R_{i,n+1} = ρ_{k(i)}``, ``R_{n+1,n+1} = Σρ² + c²``)."""

    def __init__(
        self,
        m: Sequence[int] = (1, 1),
        rho: Sequence[sp.Expr] = (sp.Rational(2, 7), sp.Rational(6, 7)),
        c: sp.Expr = sp.Rational(3, 7),
        sigma: sp.Expr = sp.Rational(1, 2),
    ) -> None:
        m = tuple(int(v) for v in m)
        if not m or any(v < 1 for v in m):
            raise ValueError(f"m: segment lengths must be positive integers, got {m!r}")
        rho = tuple(sp.Rational(r) for r in rho)
        if len(rho) != len(m):
            raise ValueError(f"rho: expected {len(m)} entries to match m, got {len(rho)}")
        c, sigma = sp.Rational(c), sp.Rational(sigma)
        if sigma < 0:
            raise ValueError(f"sigma: must be >= 0, got {sigma}")
        self.m, self.rho, self.c, self.sigma = m, rho, c, sigma
        self.K = len(m)
        self.n = sum(m)
        self.segments = [k for k, mk in enumerate(m) for _ in range(mk)]

    @property
    def query_var(self) -> sp.Expr:
        return sum(r * r for r in self.rho) + self.c**2

    @property
    def R(self) -> sp.Matrix:
        n, seg = self.n, self.segments
        R = sp.zeros(n + 1, n + 1)
        for i in range(n):
            for j in range(n):
                R[i, j] = 1 if seg[i] == seg[j] else 0
            R[i, n] = R[n, i] = self.rho[seg[i]]
        R[n, n] = self.query_var
        return R

    def owner(self) -> list[int]:
        """``owner[t]`` = the segment whose delimiter gate token ``t`` carries, else -1 (query last)."""
        own = [-1] * (self.n + 1)
        for i in range(1, self.n):
            if self.segments[i] != self.segments[i - 1]:
                own[i] = self.segments[i - 1]
        own[self.n] = self.K - 1
        return own


def _double_factorial_odd(e: int) -> int:
    return prod(range(e - 1, 0, -2)) if e > 0 else 1


def population_risk(inst: SmallInstance, L: int, *, linear: bool = False) -> dict:
    r"""Exact ``E(y − ŷ)²`` of ``L``-layer causal WPGD (``d = 1``) on ``inst`` as a SymPy polynomial.

    Symbols: ``p_1..p_L`` (step sizes, ``P_ℓ = p_ℓ``) and ``g_{ℓ,k}`` (layer ``ℓ``, delimiter after
    segment ``k``; ``k = K`` is the query's gate), unless ``linear`` (all gates 1). Returns
    ``{"risk", "p": [...], "g": [[...]] , "terms", "seconds"}``.
    """
    L = int(L)
    if L < 1:
        raise ValueError(f"L: must be >= 1, got {L}")
    t0 = time.perf_counter()
    n, K = inst.n, inst.K
    gauss = (
        [f"u{i}" for i in range(n + 1)]
        + [f"z{k}" for k in range(K + 1)]
        + [f"e{i}" for i in range(n + 1)]
    )
    pnames = [f"p{l + 1}" for l in range(L)]
    gnames = [] if linear else [f"g{l + 1}_{k + 1}" for l in range(L) for k in range(K)]
    Rg, *gens = ring(",".join(gauss + pnames + gnames), QQ)
    G = len(gauss)
    u = gens[: n + 1]
    z = gens[n + 1 : n + K + 2]  # z[0..K-1] tasks, z[K] the query's own part
    e = gens[n + K + 2 : G]
    p = gens[G : G + L]
    gsym = gens[G + L :]
    beta = [z[k] for k in range(K)]
    beta_q = sum((inst.rho[k] * z[k] for k in range(K)), Rg(0)) + inst.c * z[K]
    X = list(u)
    Y = [u[i] * beta[inst.segments[i]] + inst.sigma * e[i] for i in range(n)] + [Rg(0)]
    yq = u[n] * beta_q + inst.sigma * e[n]
    own = inst.owner()
    T = n + 1
    w = [Rg(0)] * T
    for l in range(L):
        gate = [Rg(1) if (linear or own[t] < 0) else gsym[l * K + own[t]] for t in range(T)]
        resid = [Y[j] - X[j] * w[j] for j in range(T)]
        new = []
        for i in range(T):
            acc = Rg(0)
            wt = Rg(1)
            for j in range(i, -1, -1):  # ω_ij = Π_{k=j+1}^{i} g_k, built right to left
                acc += wt * X[j] * resid[j]
                wt = wt * gate[j]
            new.append(w[i] + p[l] * acc)
        w = new
    err = yq - u[n] * w[n]
    sq = err * err
    moments: dict = {}  # parameter monomial -> coefficient after taking the Gaussian moments
    for monom, coeff in sq.items():
        gm = monom[:G]
        if any(k % 2 for k in gm):
            continue
        mom = prod(_double_factorial_odd(k) for k in gm if k)
        key = monom[G:]
        moments[key] = moments.get(key, 0) + coeff * mom
    psyms = [sp.Symbol(s, real=True) for s in pnames]
    gsyms = [sp.Symbol(s, nonnegative=True) for s in gnames]
    allp = psyms + gsyms
    risk = sp.Add(
        *[
            sp.Rational(int(c.numerator), int(c.denominator))
            * sp.Mul(*[s**k for s, k in zip(allp, key)])
            for key, c in moments.items()
            if c != 0
        ]
    )
    gmat = [gsyms[l * K : (l + 1) * K] for l in range(L)] if not linear else []
    return {
        "risk": risk,
        "p": psyms,
        "g": gmat,
        "terms": len(moments),
        "seconds": time.perf_counter() - t0,
    }


def check_one_layer_matches_L1(inst: SmallInstance | None = None) -> ProofResult:
    r"""Identity: the Gaussian-moment risk of 1-layer causal WPGD equals claim L1's closed form
    ``σ² + R_{n+1,n+1} tr Σ − 2a tr(PΣ²) + tr(PᵀΣP(bΣ² + cΣ))`` (:func:`theory.population_loss.risk_formula_L1`)
    with ``P = p_1`` and the query's gate-induced weights ``ω_i = Π_{k=k(i)}^{K} g_{1,k}``."""
    inst = inst or SmallInstance()
    t0 = time.perf_counter()
    res = population_risk(inst, 1)
    g = res["g"][0]
    omega = [sp.Mul(*g[inst.segments[i] :]) for i in range(inst.n)]
    ref = risk_formula_L1(
        sp.Matrix([[1]]), inst.R, inst.sigma, sp.Matrix([[res["p"][0]]]), sp.Matrix(omega)
    )
    diff = sp.expand(res["risk"] - ref)
    return ProofResult(
        "Gaussian-moment risk of 1-layer causal WPGD = L1 closed form",
        diff == 0,
        cases=[{"n": inst.n, "K": inst.K, "m": list(inst.m), "terms": res["terms"]}],
        residual_terms=len(sp.Add.make_args(diff)) if diff != 0 else 0,
        seconds=round(time.perf_counter() - t0, 3),
        latex=r"\mathbb E(y-\hat y)^2\big|_{L=1}=\sigma^2+R_{n+1,n+1}-2ap+p^2(b+c)",
    )


def lambdify_risk(
    res: dict,
) -> tuple[
    list[sp.Symbol], Callable[[np.ndarray], float], Callable[[np.ndarray], tuple[float, np.ndarray]]
]:
    """Fast float functions of an exact risk polynomial (:func:`population_risk` output):
    returns ``(symbols, value(v), value_and_gradient(v))`` with ``v`` ordered as ``symbols`` =
    ``(p_1..p_L, g_{1,1..K}, ..., g_{L,1..K})``; the gradient shares common subexpressions.

    >>> syms, f, fg = lambdify_risk({"risk": sp.Symbol("p") ** 2, "p": [sp.Symbol("p")], "g": []})
    >>> f([3.0]), fg([3.0])[1].tolist()
    (9.0, [6.0])
    """
    import numpy as np

    syms = list(res["p"]) + [g for row in res["g"] for g in row]
    poly = sp.Poly(res["risk"], *syms)
    f = sp.lambdify(syms, poly.as_expr(), "math")
    fg = sp.lambdify(
        syms, [poly.as_expr()] + [poly.diff(s).as_expr() for s in syms], "math", cse=True
    )

    def value_grad(v: Any) -> tuple:
        out = fg(*v)
        return out[0], np.array(out[1:], dtype=float)

    return syms, (lambda v: float(f(*v))), value_grad
