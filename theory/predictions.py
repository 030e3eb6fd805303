r"""Exact predicted optima of one-layer architectures on segmented multitask prompts (claim G6).

For ``Σ = I_d``, ``K`` segments of lengths ``m``, task correlations ``Γ``, query
correlations ``ρ`` (query variance 1) and label noise ``σ``, the optimal risks of

* linear attention (``ω = 1``): ``L_LA``;
* scalar gating (block weights in the monotone cone ``M = {0 <= u_1 <= … <= u_K}`` or its
  negative): ``L*_GLA``;
* vector gating / unrestricted WPGD: ``L*_WPGD`` at ``ω = (A + B)^{-1} r`` (the isotropic
  optimum, ``φ ≡ 1``), checked equal to the L7 closed form ``ρ_k/(m_k + 1 + d + σ²)``,

in exact rational arithmetic from the SymPy profile risk, with no numerical optimiser: the
cone maximum is found by enumerating the ``2^K − 1`` faces of the cone. Inputs are plain
numbers (converted exactly via their decimal strings); never imports :mod:`numerics`.

>>> ex = exact_predictions(m=(1, 1), rho=(0.2, 0.6), Gamma=((1, 0), (0, 1)), d=1, sigma=0.5)
>>> ex["L7_closed_form"], ex["gla_eq_wpgd"], ex["L0"]
(True, True, 5/4)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import sympy as sp

from .stationarity import profile_risk

__all__ = ["exact_predictions"]


def _rat(x: float) -> sp.Rational:
    return sp.Rational(str(x))


def _segment_model(m: Sequence[int], rho: Any, G: Any, d: Any, sig: Any) -> tuple:
    """``R, r, A, B, E`` of the segmented model (exact)."""
    seg = [k for k in range(len(m)) for _ in range(m[k])]
    n = len(seg)
    R = sp.zeros(n + 1, n + 1)
    for i in range(n):
        for j in range(n):
            R[i, j] = G[seg[i], seg[j]]
        R[i, n] = R[n, i] = rho[seg[i]]
    R[n, n] = 1
    A = R[:n, :n] + sp.diag(*[R[i, i] for i in range(n)])
    B = sp.diag(*[R[i, i] * d + sig**2 for i in range(n)])
    E = sp.Matrix(n, len(m), lambda i, k: 1 if seg[i] == k else 0)
    return seg, R[:n, n], A, B, E


def _cone_maximum(Qt: sp.Matrix, rt: sp.Matrix, K: int) -> tuple:
    """``max_{u ∈ M ∪ −M} (r̃ᵀu)²/(uᵀQ̃u)`` by faces: on the span of face generators ``V`` the
    0-homogeneous gain is maximised at ``θ ∝ (VᵀQ̃V)^{-1}Vᵀr̃``, kept if ``θ`` has one sign
    (the maximiser lies in the relative interior of some face). Returns ``(value, u)``."""
    C = sp.Matrix(K, K, lambda i, j: 1 if j <= i else 0)
    best, best_u = sp.Integer(0), None
    for size in range(1, K + 1):
        for S in itertools.combinations(range(K), size):
            V = C[:, list(S)]
            theta = (V.T * Qt * V).LUsolve(V.T * rt)
            if all(t >= 0 for t in theta) or all(t <= 0 for t in theta):
                val = (rt.T * V * theta)[0, 0]
                if val > best:
                    best, best_u = val, V * theta
    return best, best_u if best_u is not None else sp.zeros(K, 1)


def exact_predictions(
    *, m: Sequence[int], rho: Sequence[sp.Expr], Gamma: sp.Matrix, d: int, sigma: sp.Expr
) -> dict:
    """Exact ``L_LA``, ``L*_GLA``, ``L*_WPGD`` and ``L0`` (SymPy rationals), the block weights
    ``u_wpgd`` (L7 closed form) and ``u_gla``, and the flags ``L7_closed_form`` (``(A + B)^{-1} r``
    equals the closed form) and ``gla_eq_wpgd``."""
    m = [int(v) for v in m]
    K = len(m)
    sig = _rat(sigma)
    rho = [_rat(v) for v in rho]
    G = sp.Matrix(K, K, lambda i, j: _rat(Gamma[i][j]))
    seg, r, A, B, E = _segment_model(m, rho, G, d, sig)
    lam = [sp.Integer(1)] * d

    def risk_of(omega: sp.Matrix) -> sp.Expr:
        a = (r.T * omega)[0, 0]
        b = (omega.T * A * omega)[0, 0]
        c = (omega.T * B * omega)[0, 0]
        return sp.nsimplify(sp.simplify(profile_risk(a, b, c, lam, sig, 1)))

    w_star = (A + B).LUsolve(r)
    closed = sp.Matrix([rho[s] / (m[s] + 1 + d + sig**2) for s in seg])
    best, u_gla = _cone_maximum(E.T * (A + B) * E, E.T * r, K)
    L0 = sig**2 + d
    L_gla = sp.nsimplify(L0 - d * best)  # best = max gain / d
    L_wpgd = risk_of(w_star)
    return {
        "L_la": risk_of(sp.ones(len(seg), 1)),
        "L_wpgd": L_wpgd,
        "L_gla": L_gla,
        "L0": L0,
        "L7_closed_form": bool(all(sp.simplify(v) == 0 for v in (w_star - closed))),
        "u_wpgd": [rho[k] / (m[k] + 1 + d + sig**2) for k in range(K)],
        "u_gla": list(u_gla),
        "gla_eq_wpgd": bool(sp.simplify(L_gla - L_wpgd) == 0),
    }
