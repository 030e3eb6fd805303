r"""SymPy algebra of the GLA landscape (claims G1–G4): which WPGD weights gates can reach,
the KKT correspondence behind the cone certificate, and the closed forms for independent tasks.

Never imports :mod:`numerics`. Each ``prove_*`` returns a
:class:`~theory.result.ProofResult`; a case records what was expanded to 0 (or shown
nonnegative) and its time.

Setting (docs/gla_landscape.md): ``K`` segments; with distinct delimiters the block weight of
segment ``k`` is ``ω_k = g_q Π_{l>=k} δ_l`` (example gates 1, ``δ_l`` the gate of the delimiter
after segment ``l``, ``g_q`` the query's gate). Gates ``δ ∈ (0, 1]`` are parametrised as
``δ = 1/(1 + e)``, ``e >= 0`` (``δ = 0`` is the limit ``e → ∞``), so SymPy's assumption system can
decide signs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sympy as sp

from .result import ProofResult

__all__ = [
    "prove_gate_products",
    "prove_delimiter_recurrence",
    "prove_jordan",
    "prove_kkt_gradient",
    "prove_g1_closed_form",
    "prove_g2_profile",
    "prove_key_copies",
    "prove_nesting",
]


def _result(statement: str, cases: list[dict], latex: str) -> ProofResult:
    return ProofResult(
        statement,
        all(c["verified"] for c in cases),
        cases=cases,
        seconds=sum(c["seconds"] for c in cases),
        latex=latex,
    )


def _case(name: str, ok: Any, t0: float, **kw: Any) -> dict[str, Any]:
    return {"name": name, "verified": bool(ok), "seconds": round(time.perf_counter() - t0, 4), **kw}


def _zero(expr: sp.Expr) -> bool:
    return sp.simplify(sp.expand(expr)) == 0


def _rational_zero(expr: sp.Expr) -> bool:
    """Is the rational function ``expr`` identically 0? Exact: ``together`` writes it as one
    fraction ``p/q`` and the numerator ``p`` must expand to the zero polynomial (a decision
    procedure, unlike ``simplify``, and several times cheaper on the KKT identities)."""
    return sp.expand(sp.numer(sp.together(expr))) == 0


# ============================================================================ reachability
def prove_gate_products(Ks: Sequence[int] = (2, 3, 4)) -> ProofResult:
    r"""Gate products ⇒ monotone cone, and back.

    (i) ``ω_k = g_q Π_{l>=k} δ_l`` gives ``ω_k = δ_k ω_{k+1}`` and ``ω_{k+1} − ω_k = ω_{k+1}(1 − δ_k)``,
    manifestly ``>= 0`` (SymPy sign inference with ``δ = 1/(1+e)``, ``e >= 0``), and ``ω_1 >= 0``.
    (ii) Conversely ``u_k = Σ_{l<=k} θ_l`` (``θ_1 > 0``, ``θ_l >= 0``) is realised by
    ``δ_k = u_k/u_{k+1}`` (``k < K``), ``δ_K = 1``, ``g_q = u_K``: ``g_q Π_{l>=k} δ_l = u_k`` and
    ``1 − δ_k = θ_{k+1}/u_{k+1} >= 0``, ``δ_k >= 0``.
    """
    cases = []
    for K in Ks:
        t0 = time.perf_counter()
        e = [sp.Symbol(f"e_{k + 1}", nonnegative=True) for k in range(K)]
        gq = sp.Symbol("g_q", positive=True)
        dl = [1 / (1 + ek) for ek in e]
        om = [gq * sp.Mul(*dl[k:]) for k in range(K)]
        ok = all(_zero(om[k] - dl[k] * om[k + 1]) for k in range(K - 1))
        incs = [sp.factor(sp.simplify(om[k + 1] - om[k])) for k in range(K - 1)]
        ok = ok and all(bool(i.is_nonnegative) for i in incs) and bool(om[0].is_nonnegative)
        th = [sp.Symbol(f"theta_{k + 1}", positive=(k == 0), nonnegative=True) for k in range(K)]
        u = [sp.Add(*th[: k + 1]) for k in range(K)]
        dd = [u[k] / u[k + 1] for k in range(K - 1)] + [sp.Integer(1)]
        back = [u[-1] * sp.Mul(*dd[k:]) for k in range(K)]
        ok2 = all(_zero(back[k] - u[k]) for k in range(K))
        ok2 = ok2 and all(_zero((1 - dd[k]) - th[k + 1] / u[k + 1]) for k in range(K - 1))
        ok2 = ok2 and all(
            bool(sp.simplify(1 - dd[k]).is_nonnegative) and bool(dd[k].is_nonnegative)
            for k in range(K - 1)
        )
        cases.append(_case(f"K={K}", ok and ok2, t0, K=K, forward=bool(ok), converse=bool(ok2)))
    return _result(
        "gate products <=> monotone cone M",
        cases,
        latex=r"\omega_k=g_q\prod_{l\ge k}\delta_l\ \Rightarrow\ \omega_{k+1}-\omega_k=\omega_{k+1}(1-\delta_k)\ge0;"
        r"\quad u\in M\ \Rightarrow\ \delta_k=u_k/u_{k+1}\in[0,1],\ u_K\prod_{l\ge k}\delta_l=u_k",
    )


def prove_delimiter_recurrence(
    m: Sequence[int] = (2, 1), delimiters: str = "distinct"
) -> ProofResult:
    r"""The scalar GLA recurrence on a structured prompt with delimiter tokens (``d = 1``,
    ``x = y = 0`` on delimiters, ``S_t = g_t S_{t-1} + v_t k_t``, ``o_T = S_T q_T``, ``v = y``,
    ``k = x``, ``q = p x``) equals ``p x Σ_i ω_i y_i x_i`` with ``ω_i = Π_{j>pos(i)} g_j``
    (delimiter gates included, the query's gate too)."""
    t0 = time.perf_counter()
    toks: list[tuple[Any, Any]] = []  # (x, y) per token
    ex_pos = []
    i = 0
    for mk in m:
        for _ in range(mk):
            i += 1
            ex_pos.append(len(toks))
            toks.append((sp.Symbol(f"x_{i}", real=True), sp.Symbol(f"y_{i}", real=True)))
        if delimiters != "none":
            toks.append((sp.Integer(0), sp.Integer(0)))
    xq, p = sp.symbols("x_q p", real=True)
    toks.append((xq, sp.Integer(0)))
    T = len(toks)
    g = [sp.Symbol(f"g_{t + 1}", nonnegative=True) for t in range(T)]
    S = sp.Integer(0)
    for t, (x, y) in enumerate(toks):
        S = g[t] * S + y * x
    out = S * p * xq
    ref = sum(sp.Mul(*g[pos + 1 :]) * toks[pos][1] * toks[pos][0] for pos in ex_pos) * p * xq
    ok = _zero(out - ref)
    return _result(
        "delimiter tokens: v k^T = 0, gate kept",
        [_case(f"m={m}, {delimiters}", ok, t0, T=T)],
        latex=r"o_T=p\,x\sum_i\Big(\prod_{j>\mathrm{pos}(i)}g_j\Big)y_ix_i\ \text{(delimiters: }v k^\top=0\text{, gate kept)}",
    )


def prove_jordan(Ks: Sequence[int] = (2, 3, 5)) -> ProofResult:
    r"""Every ``w ∈ R^K`` is ``u − v`` with ``u, v ∈ M``: ``u_k = Σ_{l<=k} max(Δ_l, 0)``,
    ``v_k = Σ_{l<=k} max(−Δ_l, 0)``, ``Δ_l = w_l − w_{l−1}``, ``w_0 = 0``: increments of ``u, v``
    are ``max(·, 0) >= 0`` (so ``u, v`` nonnegative and nondecreasing) and
    ``u − v − w = Σ (max(Δ,0) − max(−Δ,0) − Δ) = 0``."""
    t0 = time.perf_counter()
    x = sp.Symbol("Delta", real=True)
    # the atom: max(Δ,0) − max(−Δ,0) = Δ for every real Δ (case split by Piecewise)
    atom = sp.simplify((sp.Max(x, 0) - sp.Max(-x, 0) - x).rewrite(sp.Piecewise)) == 0
    atom = atom and bool(sp.Max(x, 0).is_nonnegative) and bool(sp.Max(-x, 0).is_nonnegative)
    cases = [_case("atom max(D,0) - max(-D,0) = D, both parts >= 0", atom, t0)]
    for K in Ks:
        t0 = time.perf_counter()
        w = [sp.Symbol(f"w_{k + 1}", real=True) for k in range(K)]
        D = [w[0]] + [w[k] - w[k - 1] for k in range(1, K)]
        Pp = [sp.Symbol(f"P_{k + 1}", nonnegative=True) for k in range(K)]  # max(Δ_l, 0)
        Nn = [sp.Symbol(f"N_{k + 1}", nonnegative=True) for k in range(K)]  # max(−Δ_l, 0)
        u = [sp.Add(*Pp[: k + 1]) for k in range(K)]
        v = [sp.Add(*Nn[: k + 1]) for k in range(K)]
        # substitute the atom P_l = Δ_l + N_l: u − v − w must telescope to 0
        sub = {Pp[l]: D[l] + Nn[l] for l in range(K)}
        ok = atom and all(sp.expand((u[k] - v[k] - w[k]).subs(sub)) == 0 for k in range(K))
        ok = (
            ok
            and all(
                bool((u[k + 1] - u[k]).is_nonnegative) and bool((v[k + 1] - v[k]).is_nonnegative)
                for k in range(K - 1)
            )
            and bool(u[0].is_nonnegative)
            and bool(v[0].is_nonnegative)
        )
        cases.append(_case(f"K={K}", ok, t0, K=K))
    return _result(
        "Jordan decomposition w = u - v with u, v in M",
        cases,
        latex=r"w=u-v,\ u_k=\sum_{l\le k}(w_l-w_{l-1})_+,\ v_k=\sum_{l\le k}(w_{l-1}-w_l)_+,\ u,v\in M",
    )


# ============================================================================ KKT correspondence
def prove_kkt_gradient(n: int = 2, dim: int = 2) -> ProofResult:
    r"""For ``F(ω) = a² Σ_j λ_j²/(bλ_j + c)`` (``a = rᵀω``, ``b = ωᵀAω``, ``c = ωᵀBω``, ``A``
    symmetric, ``B`` diagonal, symbolic): ``∇F = 2a²T₃[κ r − (A + φB)ω]`` with
    ``T_p = Σλ^p/(bλ+c)²``, ``φ = T₂/T₃``, ``κ = (b + φc)/a``, and ``ωᵀ∇F = 0`` (Euler, degree 0).
    Hence with ``t = φ(ω)``, ``s = sign(a)``, ``u = sω/a``, ``ν = 2κs/a``: the QP multiplier
    ``μ := 2(A + tB)u − νr = −(s/(a³T₃))∇F`` and ``μᵀu = 0`` — the QP's dual-cone condition
    ``μ ∈ M*`` is exactly the cone KKT condition ``∇Fᵀv <= 0 ∀v ∈ M`` (``s/a > 0``)."""
    t0 = time.perf_counter()
    om = sp.Matrix(sp.symbols(f"omega1:{n + 1}", real=True))
    r = sp.Matrix(sp.symbols(f"r1:{n + 1}", real=True))
    A = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"A{min(i, j) + 1}{max(i, j) + 1}", real=True))
    B = sp.diag(*sp.symbols(f"B1:{n + 1}", positive=True))
    lam = sp.symbols(f"lambda1:{dim + 1}", positive=True)
    a = (r.T * om)[0]
    b = (om.T * A * om)[0]
    c = (om.T * B * om)[0]
    F = a**2 * sum(l**2 / (b * l + c) for l in lam)
    grad = sp.Matrix([sp.diff(F, w) for w in om])
    T2 = sum(l**2 / (b * l + c) ** 2 for l in lam)
    T3 = sum(l**3 / (b * l + c) ** 2 for l in lam)
    phi = T2 / T3
    kappa = (b + phi * c) / a
    claim = 2 * a**2 * T3 * (kappa * r - (A + phi * B) * om)
    ok1 = all(_rational_zero(gi - ci) for gi, ci in zip(grad, claim))
    ok2 = _rational_zero((om.T * grad)[0])
    s = sp.Symbol("s", real=True)  # s = sign(a); the identity below holds for any s
    u = s * om / a
    nu = 2 * kappa * s / a
    mu = 2 * (A + phi * B) * u - nu * r
    ok3 = all(_rational_zero(mi + s / (a**3 * T3) * gi) for mi, gi in zip(mu, grad))
    ok4 = _rational_zero((mu.T * u)[0])
    ok = bool(ok1 and ok2 and ok3 and ok4)
    return _result(
        "grad F and the KKT multiplier of the cone QP",
        [
            _case(
                f"n={n}, d={dim}",
                ok,
                t0,
                gradient=bool(ok1),
                euler=bool(ok2),
                multiplier=bool(ok3),
                complementarity=bool(ok4),
            )
        ],
        latex=r"\nabla F=2a^2T_3[\kappa r-(A+\varphi B)\omega],\ \mu=2(A+\varphi B)u-\nu r=-\tfrac{s}{a^3T_3}\nabla F,\ \mu^\top u=0",
    )


# ============================================================================ independent tasks
def _independent_model(m: Sequence[int]) -> tuple:
    """Symbolic ``A, B, r, E`` of ``K`` independent unit-variance tasks (``Γ = I``), ``Σ = I_d``
    (``tr Σ = d`` symbolic), noise ``σ``, segment lengths ``m`` (concrete)."""
    d, sig = sp.Symbol("d", positive=True), sp.Symbol("sigma", nonnegative=True)
    K = len(m)
    rho = sp.symbols(f"rho1:{K + 1}", real=True)
    seg = [k for k, mk in enumerate(m) for _ in range(mk)]
    n = len(seg)
    R = sp.Matrix(n, n, lambda i, j: 1 if seg[i] == seg[j] else 0)
    A = R + sp.eye(n)  # R_[n] + diag(R_ii), R_ii = 1
    B = (d + sig**2) * sp.eye(n)  # R_ii tr Σ + σ²
    r = sp.Matrix([rho[k] for k in seg])
    E = sp.Matrix(n, K, lambda i, k: 1 if seg[i] == k else 0)
    return d, sig, rho, A, B, r, E


def prove_g1_closed_form(ms: Sequence[Sequence[int]] = ((1, 2), (2, 1, 3), (3, 3))) -> ProofResult:
    r"""``Σ = I``, ``Γ = I``: the WPGD stationarity ``(A + B)ω = r`` (``t = 1``) is solved by the
    block-constant ``ω = Eα``, ``α_k = ρ_k/(m_k + 1 + d + σ²)`` (symbolic ``ρ, d, σ``, concrete
    ``m``). ``A + B ≻ 0`` so this is the unique stationary direction (L4/L5): ``ω* ∝ Eα``, and
    gates reach it iff ``sα ∈ M`` for a sign ``s``."""
    cases = []
    for m in ms:
        t0 = time.perf_counter()
        d, sig, rho, A, B, r, E = _independent_model(m)
        alpha = sp.Matrix([rho[k] / (mk + 1 + d + sig**2) for k, mk in enumerate(m)])
        res = (A + B) * (E * alpha) - r
        ok = all(sp.simplify(x) == 0 for x in res)
        cases.append(_case(f"m={m}", ok, t0, K=len(m)))
    return _result(
        "Sigma = I, Gamma = I: (A + B) E alpha = r, alpha_k = rho_k/(m_k + 1 + d + sigma^2)",
        cases,
        latex=r"\Sigma=I,\Gamma=I:\ (A+B)E\alpha=r,\ \alpha_k=\frac{\rho_k}{m_k+1+d+\sigma^2};\ "
        r"\text{GLA}=\text{WPGD}\iff s\alpha\in M\text{ for some }s=\pm1",
    )


def prove_g2_profile(ms: Sequence[Sequence[int]] = ((1, 2), (2, 1, 3))) -> ProofResult:
    r"""``Σ = I``, ``Γ = I``, block weights ``u``: ``b + c = Σ_k w_k u_k²`` and ``a = Σ_k w_k α_k u_k``
    with ``w_k = m_k(m_k + 1 + d + σ²)``, so ``L(Eu) = L₀ − d⟨α,u⟩_w²/‖u‖_w²`` (gain ``a² d/(b + c)``
    from ``λ ≡ 1``). Also the K = 2 Lagrange identity
    ``‖α‖_w² − ⟨α,1⟩_w²/‖1‖_w² = w₁w₂(α₁ − α₂)²/(w₁ + w₂)`` (= ``(L_LA − L*_WPGD)/d``) and the
    projection of ``α`` with ``α₁ > α₂`` onto ``M`` is the pooled mean ``ᾱ1``: ``⟨α − ᾱ1, 1⟩_w = 0``,
    ``⟨α − ᾱ1, e₂⟩_w = w₁w₂(α₂ − α₁)/(w₁ + w₂) <= 0`` (so ``L*_GLA = L_LA`` then)."""
    cases = []
    for m in ms:
        t0 = time.perf_counter()
        d, sig, rho, A, B, r, E = _independent_model(m)
        K = len(m)
        u = sp.Matrix(sp.symbols(f"u1:{K + 1}", real=True))
        om = E * u
        a = (r.T * om)[0]
        bc = (om.T * (A + B) * om)[0]
        w = [mk * (mk + 1 + d + sig**2) for mk in m]
        al = [rho[k] / (mk + 1 + d + sig**2) for k, mk in enumerate(m)]
        ok = _zero(a - sum(w[k] * al[k] * u[k] for k in range(K))) and _zero(
            bc - sum(w[k] * u[k] ** 2 for k in range(K))
        )
        cases.append(_case(f"profile m={m}", ok, t0, K=K))
    t0 = time.perf_counter()
    w1, w2 = sp.symbols("w1 w2", positive=True)
    a1, a2 = sp.symbols("alpha1 alpha2", real=True)
    lag = (
        w1 * a1**2
        + w2 * a2**2
        - (w1 * a1 + w2 * a2) ** 2 / (w1 + w2)
        - w1 * w2 * (a1 - a2) ** 2 / (w1 + w2)
    )
    abar = (w1 * a1 + w2 * a2) / (w1 + w2)
    ok_l = sp.simplify(lag) == 0
    ok_p = (
        sp.simplify(w1 * (a1 - abar) + w2 * (a2 - abar)) == 0
        and sp.simplify(w2 * (a2 - abar) - w1 * w2 * (a2 - a1) / (w1 + w2)) == 0
    )
    cases.append(_case("K=2 Lagrange identity and pooled projection", ok_l and ok_p, t0))
    return _result(
        "block profile L(Eu) = L0 - d <alpha,u>_w^2/|u|_w^2; K = 2 gap",
        cases,
        latex=r"L(Eu)=L_0-d\frac{\langle\alpha,u\rangle_w^2}{\|u\|_w^2},\ w_k=m_k(m_k+1+d+\sigma^2);\ "
        r"K=2:\ L_{LA}-L^*_{WPGD}=d\frac{w_1w_2(\alpha_1-\alpha_2)^2}{w_1+w_2}",
    )


def prove_key_copies(n: int = 2, d: int = 2) -> ProofResult:
    r"""Key-wise gating with two key copies: ``k_i = [x_i; x_i]`` (``D_k = 2d``), key gates
    ``γ_t = [g^u_t 1_d; g^v_t 1_d]``, ``q = [Pᵀx; −Pᵀx]``, ``v_i = y_i`` give
    ``o_T = Σ_i (u_i − v_i) y_i xᵀ P x_i`` with ``u_i = Π_{j>i} g^u_j``, ``v_i = Π_{j>i} g^v_j``
    (recurrence ``S_t = S_{t−1} diag(γ_t) + v_t k_tᵀ`` run symbolically; the query token has
    ``y = 0``): one layer, two decay profiles, the same as two scalar-gated heads with query
    projections ``+P`` and ``−P``."""
    t0 = time.perf_counter()
    xs = [sp.Matrix(sp.symbols(f"x{i + 1}_1:{d + 1}", real=True)) for i in range(n)]
    ys = list(sp.symbols(f"y1:{n + 1}", real=True))
    xq = sp.Matrix(sp.symbols(f"xq1:{d + 1}", real=True))
    P = sp.Matrix(d, d, lambda a, b: sp.Symbol(f"P{a + 1}{b + 1}", real=True))
    gu = sp.symbols(f"gu1:{n + 2}", nonnegative=True)
    gv = sp.symbols(f"gv1:{n + 2}", nonnegative=True)
    toks = [(xs[i], ys[i]) for i in range(n)] + [(xq, sp.Integer(0))]
    S = sp.zeros(1, 2 * d)
    for t, (x, y) in enumerate(toks):
        gam = sp.diag(*([gu[t]] * d + [gv[t]] * d))
        S = S * gam + y * sp.Matrix.vstack(x, x).T
    q = sp.Matrix.vstack(P.T * xq, -P.T * xq)
    out = (S * q)[0]
    ref = sum(
        (sp.Mul(*gu[i + 1 :]) - sp.Mul(*gv[i + 1 :])) * ys[i] * (xq.T * P * xs[i])[0]
        for i in range(n)
    )
    ok = _zero(out - ref)
    return _result(
        "key copies [x; x], q = [P^T x; -P^T x] give weights u - v",
        [_case(f"n={n}, d={d}", ok, t0)],
        latex=r"k=[x;x],\ q=[P^\top x;-P^\top x]\ \Rightarrow\ o_T=\sum_i(u_i-v_i)\,y_i\,x^\top Px_i",
    )


def prove_nesting(m: Sequence[int] = (2, 1, 2)) -> ProofResult:
    r"""Nesting of the reachable weight families (per-token weights of the examples, symbolic
    gates): geometric (a) = segment-geometric (b) at ``g_k = g``; (a) = two-gate (c) at ``δ = 1``;
    (b) and (c) are the full family (per-segment example gates ``g_k``, per-delimiter gates
    ``δ_k``: distinct + context) at ``δ_k = 1`` resp. ``g_k = g, δ_k = δ``; the block-constant
    cone M is the full family at ``g_k = 1``. Every family's consecutive weight ratios are
    gates in ``[0, 1]``, i.e. all lie in the per-token nondecreasing cone."""
    t0 = time.perf_counter()
    K = len(m)
    g, dlt = sp.symbols("g delta", nonnegative=True)
    gk = sp.symbols(f"g1:{K + 1}", nonnegative=True)
    dk = sp.symbols(f"delta1:{K + 1}", nonnegative=True)

    def weights(ex_gate: Any, delim_gate: Any) -> list:
        """Example weights for per-segment example gates / delimiter gates (None = no delimiter);
        the query gate is 1 (a common factor)."""
        gates: list = []
        pos: list = []
        for k, mk in enumerate(m):
            for _ in range(mk):
                pos.append(len(gates))
                gates.append(ex_gate[k])
            if delim_gate is not None:
                gates.append(delim_gate[k])
        gates.append(sp.Integer(1))
        return [sp.Mul(*gates[p + 1 :]) for p in pos]

    full = weights(gk, dk)
    a = weights([g] * K, None)
    b = weights(gk, None)
    c = weights([g] * K, [dlt] * K)
    checks = {
        "(b)|g_k=g == (a)": [sp.simplify(x.subs(dict(zip(gk, [g] * K))) - y) for x, y in zip(b, a)],
        "(c)|delta=1 == (a)": [sp.simplify(x.subs(dlt, 1) - y) for x, y in zip(c, a)],
        "full|delta_k=1 == (b)": [
            sp.simplify(x.subs(dict(zip(dk, [1] * K))) - y) for x, y in zip(full, b)
        ],
        "full|g_k=g,delta_k=delta == (c)": [
            sp.simplify(x.subs({**dict(zip(gk, [g] * K)), **dict(zip(dk, [dlt] * K))}) - y)
            for x, y in zip(full, c)
        ],
    }
    ok = all(all(e == 0 for e in v) for v in checks.values())
    cone = [sp.simplify(x.subs(dict(zip(gk, [1] * K)))) for x in full]
    seg = [k for k, mk in enumerate(m) for _ in range(mk)]
    blockconst = all(
        sp.simplify(cone[i] - cone[j]) == 0
        for i in range(len(seg))
        for j in range(len(seg))
        if seg[i] == seg[j]
    )
    ratios_ok = all(
        sp.simplify(full[i] - full[i + 1] * _gate_between(m, gk, dk, i)) == 0
        for i in range(len(seg) - 1)
    )
    ok = bool(ok and blockconst and ratios_ok)
    return _result(
        "nesting of the reachable weight families",
        [
            _case(
                f"m={m}",
                ok,
                t0,
                block_constant_at_g1=bool(blockconst),
                ratios_are_gates=bool(ratios_ok),
            )
        ],
        latex=r"(a)\subset(b),(c)\subset\text{full}\subset\{\text{nondecreasing per token}\};\ M=\text{full}|_{g_k=1}",
    )


def _gate_between(m: Sequence[int], gk: Sequence[Any], dk: Sequence[Any], i: int) -> Any:
    """Product of the gates strictly after example ``i`` up to and including example ``i+1``."""
    seg = [k for k, mk in enumerate(m) for _ in range(mk)]
    if seg[i] == seg[i + 1]:
        return gk[seg[i + 1]]
    return dk[seg[i]] * gk[seg[i + 1]]
