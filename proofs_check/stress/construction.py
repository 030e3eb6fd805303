r"""Stress properties of claims C1-C3 (GLA implements WPGD) and G5's proxy (nesting of depth).

References are written here from the statements, independently of :mod:`numerics.wpgd`:
weights as explicit running *products* of the gates ``exp(log g)`` (not log-space suffix
sums), and the causal recursion as a direct per-token loop over layers. Errors are measured
relative to the magnitude of the summands (``|xᵀP| Σ_i ω_i |y_i| ‖x_i‖`` per prompt), the
scale at which float64 rounding lives, with the claims' tolerance ``TOL``.
"""

from __future__ import annotations

import numpy as np

from numerics import depth as ndepth, stack, wpgd

from .. import tolerances as tol
from .core import StressProperty, register
from .instances import build_prompt, log_gates, prompt_params, prompt_tags

__all__ = ["TOL", "TINY"]

#: The claims' tolerance for float64 identities between implementations.
TOL = tol.IDENTITY
#: Weights below this are "zero" for the entrywise relative comparison (products of many
#: small gates reach the subnormal range, where relative precision is lost).
TINY = 1e-290


def _prod_weights(lg: np.ndarray) -> np.ndarray:
    """``ω_i = Π_{j=i+1}^{T} g_j`` for tokens on axis 1 of ``lg`` (``(N, T)`` or ``(N, T, d)``),
    as a running product of ``g = exp(lg)`` from the right. Returns ``(N, T-1[, d])``."""
    g = np.exp(lg)
    rev = np.cumprod(g[:, ::-1], axis=1)[:, ::-1]  # rev[:, i] = Π_{j>=i} g_j
    return rev[:, 1:]


def _prod_causal(lg_tokens: np.ndarray) -> np.ndarray:
    """``Ω[b, i, j] = Π_{k=j+1}^{i} g_k`` (``j <= i``, 1 on the diagonal, 0 above), by products.
    ``lg_tokens``: ``(N, T)`` or ``(N, T, d)``."""
    g = np.exp(lg_tokens)
    N, T = g.shape[:2]
    Om = np.zeros((N, T, T) + g.shape[2:])
    for i in range(T):
        Om[:, i, i] = 1.0
        acc = np.ones((N,) + g.shape[2:])
        for j in range(i - 1, -1, -1):
            acc = acc * g[:, j + 1]
            Om[:, i, j] = acc
    return Om


def _naive_causal(X, y, x, Ps, Oms):
    """Direct causal WPGD: ``w^{(i)}_{l+1} = w^{(i)}_l + P_l Σ_{j<=i} Ω_ij ⊙ x_j (y_j − x_jᵀ w^{(j)}_l)``
    over tokens ``1..n+1`` (query label 0); returns ``ŷ = xᵀ w^{(n+1)}_L``."""
    N, n, d = X.shape
    Xt = np.concatenate([X, x[:, None, :]], axis=1)
    yt = np.concatenate([y, np.zeros((N, 1))], axis=1)
    W = np.zeros((N, n + 1, d))
    for P, Om in zip(Ps, Oms):
        resid = yt - np.sum(Xt * W, axis=2)
        U = Xt * resid[:, :, None]
        S = np.einsum("bij,bjd->bid", Om, U) if Om.ndim == 3 else np.einsum("bijd,bjd->bid", Om, U)
        W = W + S @ P.T
    return np.sum(x * W[:, n], axis=1)


def _scale(X, y, x, Ps, ref):
    """Rounding scale of a multi-layer prediction: ``|ŷ| + ‖x‖ max_l ‖P_l‖ Σ_i |y_i| ‖x_i‖``
    (the first step's summand magnitudes; later steps are of the same order for the
    well-scaled ``P`` drawn here)."""
    return np.abs(ref) + np.linalg.norm(x, axis=1) * max(np.linalg.norm(P) for P in Ps) * np.sum(
        np.abs(y) * np.linalg.norm(X, axis=2), axis=1
    )


def _rel_err(val, ref, scale):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.abs(np.asarray(val) - ref) / np.maximum(scale, 1e-300)
    return float(np.max(np.where(np.isnan(e), np.inf, e)))


def _layer_rng(inst, k=1):
    return np.random.default_rng([inst["seed"], k])


# ============================================================================ C1
def _c1_eval(inst, rng0):
    X, y, x, N, n, d = inst["X"], inst["y"], inst["x"], inst["N"], inst["n"], inst["d"]
    rng = _layer_rng(inst)
    P_q = rng.standard_normal((d, d)) * inst["P_scale"]
    P_k = rng.standard_normal((d, d))
    lg = log_gates(rng, (N, n + 1), inst["gates"])
    P = P_q.T @ P_k
    om = _prod_weights(lg)  # (N, n)
    ref = np.einsum("bd,de,bi,bie->b", x, P, om * y, X)
    scale = np.linalg.norm(x @ P, axis=1) * np.sum(
        om * np.abs(y) * np.linalg.norm(X, axis=2), axis=1
    )
    layer = stack.construct_wpgd_layer(P_q, P_k, +1)
    errs = {}
    for eng in stack.ENGINES:
        val = stack.stack_predict(X, y, x, [layer], [lg], engine=eng, readout="output")
        errs[f"engine_{eng}"] = _rel_err(val, ref, scale)
    w = wpgd.weights_from_log_gates(lg)
    errs["weights_vs_products"] = float(np.max(np.abs(w - om) / np.maximum(np.abs(om), TINY)))
    errs["wpgd_predict"] = _rel_err(wpgd.wpgd_predict(X, y, x, P, w), ref, scale)
    margin = max(errs.values()) / TOL
    return {
        "outcome": "holds" if margin <= 1 else "mismatch",
        "figures": {**errs, "margin": margin},
        "tags": prompt_tags(inst, [lg]),
    }


def _describe_prompt(inst):
    return {k: inst[k] for k in ("N", "n", "d", "L", "gates", "P_scale")}


register(
    StressProperty(
        claim_id="C1",
        statement="one scalar-gated GLA layer (every engine) = x^T P X^T(omega ⊙ y), P = P_q^T P_k, omega_i = "
        "prod_{j>i} g_j (explicit products); weights_from_log_gates = the products; error relative to the "
        "summand magnitudes <= TOL",
        strategy=lambda: prompt_params(),
        build=build_prompt,
        evaluate=_c1_eval,
        bad=("mismatch", "error"),
        good=("holds",),
        tolerances={"TOL": TOL},
        describe=_describe_prompt,
    )
)


# ============================================================================ C2
def _c2_eval(inst, rng0):
    X, y, x, N, n, d = inst["X"], inst["y"], inst["x"], inst["N"], inst["n"], inst["d"]
    rng = _layer_rng(inst, 2)
    P_q = rng.standard_normal((d, d)) * inst["P_scale"]
    lg = log_gates(rng, (N, n + 1, d + 1), inst["gates"])
    Om = _prod_weights(lg[..., :d])  # (N, n, d)
    errs = {}
    for label, P_k in (
        ("general", rng.standard_normal((d, d))),
        ("diagonal", np.diag(rng.standard_normal(d))),
        ("identity", np.eye(d)),
    ):
        kx = np.einsum("ef,bif->bie", P_k, X)  # key coordinates P_k x_i
        ref = np.einsum("bd,ed,bi,bie->b", x, P_q, y, Om * kx)
        scale = np.einsum("be,bi,bie->b", np.abs(x @ P_q.T), np.abs(y), Om * np.abs(kx))
        layer = stack.construct_wpgd_layer(P_q, P_k, +1, gate="key")
        for eng in stack.ENGINES:
            val = stack.stack_predict(X, y, x, [layer], [lg], engine=eng, readout="output")
            errs[f"{label}_{eng}"] = _rel_err(val, ref, scale)
        if label != "general":
            fw = wpgd.wpgd_predict_featurewise(
                X, y, x, P_q.T @ P_k, wpgd.weights_from_log_gates(lg[..., :d], gate="key")
            )
            errs[f"{label}_featurewise_formula"] = _rel_err(fw, ref, scale)
    Wk = wpgd.weights_from_log_gates(lg[..., :d], gate="key")
    errs["weights_vs_products"] = float(np.max(np.abs(Wk - Om) / np.maximum(np.abs(Om), TINY)))
    margin = max(errs.values()) / TOL
    return {
        "outcome": "holds" if margin <= 1 else "mismatch",
        "figures": {**errs, "margin": margin},
        "tags": prompt_tags(inst, [lg]),
    }


register(
    StressProperty(
        claim_id="C2",
        statement="one key-gated GLA layer (every engine) = x^T P_q^T sum_i y_i (Omega_i ⊙ P_k x_i), Omega_i = "
        "prod_{j>i} gamma_j (explicit products), for general, diagonal and identity P_k; for diagonal P_k "
        "also = the feature-wise WPGD formula with P = P_q^T P_k; error relative to summand magnitudes <= TOL",
        strategy=lambda: prompt_params(n=(16, 1, 2, 7, 120, 3)),
        build=build_prompt,
        evaluate=_c2_eval,
        bad=("mismatch", "error"),
        good=("holds",),
        tolerances={"TOL": TOL},
        describe=_describe_prompt,
    )
)


# ============================================================================ C3
def _c3_eval(inst, rng0):
    X, y, x, N, n, d, L = (
        inst["X"],
        inst["y"],
        inst["x"],
        inst["N"],
        inst["n"],
        inst["d"],
        inst["L"],
    )
    rng = _layer_rng(inst, 3)
    # well-scaled preconditioners (step ~ 1/n) so L-step iterates stay O(1) and the scale below is honest
    Ps = [
        inst["P_scale"]
        * (0.5 * np.eye(d) + 0.2 * rng.standard_normal((d, d)) / np.sqrt(d))
        / max(n, 1)
        for _ in range(L)
    ]
    lgs = [log_gates(rng, (N, n + 1), inst["gates"]) for _ in range(L)]
    ref = _naive_causal(X, y, x, Ps, [_prod_causal(g) for g in lgs])
    scale = _scale(X, y, x, Ps, ref)
    errs = {}
    layers = stack.construct_wpgd_stack(Ps)
    for eng in stack.ENGINES:
        errs[f"scalar_{eng}"] = _rel_err(
            stack.stack_predict(X, y, x, layers, lgs, engine=eng), ref, scale
        )
    errs["causal_wpgd"] = _rel_err(wpgd.causal_wpgd(X, y, x, Ps, lgs), ref, scale)
    # key gates with diagonal P_k (the feature-wise causal recursion)
    P_qs = [inst["P_scale"] * rng.standard_normal((d, d)) / max(n, 1) for _ in range(L)]
    P_ks = [np.diag(rng.uniform(0.5, 1.5, d)) for _ in range(L)]
    lgk = [log_gates(rng, (N, n + 1, d + 1), inst["gates"]) for _ in range(L)]
    Pk_eff = [a.T @ b for a, b in zip(P_qs, P_ks)]
    refk = _naive_causal(X, y, x, Pk_eff, [_prod_causal(g[..., :d]) for g in lgk])
    scalek = _scale(X, y, x, Pk_eff, refk)
    valk = stack.stack_predict(
        X,
        y,
        x,
        stack.construct_wpgd_stack(list(zip(P_qs, P_ks)), gate="key"),
        lgk,
        engine="chunked",
    )
    errs["key_chunked"] = _rel_err(valk, refk, scalek)
    errs["key_causal_wpgd"] = _rel_err(
        wpgd.causal_wpgd(X, y, x, Pk_eff, [g[..., :d] for g in lgk], gate="key"), refk, scalek
    )
    margin = max(errs.values()) / TOL
    return {
        "outcome": "holds" if margin <= 1 else "mismatch",
        "figures": {**errs, "margin": margin},
        "tags": prompt_tags(inst, lgs) + [f"L={L}"],
    }


register(
    StressProperty(
        claim_id="C3",
        statement="an L-layer residual GLA stack (every engine; key gates with diagonal P_k) and wpgd.causal_wpgd = "
        "L-step causal WPGD over tokens 1..n+1 with the query's self-term (direct per-token recursion, "
        "weights as explicit gate products); error relative to the summand scale <= TOL",
        strategy=lambda: prompt_params(n=(8, 1, 2, 5, 40, 3), layers=(2, 1, 3, 4)),
        build=build_prompt,
        evaluate=_c3_eval,
        bad=("mismatch", "error"),
        good=("holds",),
        tolerances={"TOL": TOL},
        describe=_describe_prompt,
    )
)


# ============================================================================ G5 (proxy)
def _g5_eval(inst, rng0):
    X, y, x, n, d, L = inst["X"], inst["y"], inst["x"], inst["n"], inst["d"], inst["L"]
    rng = _layer_rng(inst, 5)
    Ps = [inst["P_scale"] * rng.standard_normal((d, d)) / max(n, 1) for _ in range(L)]
    lgs = [log_gates(rng, (1, n + 1), inst["gates"])[0] for _ in range(L)]
    base = ndepth.depth_predict(X, y, x, Ps, lgs)
    ref = _naive_causal(
        X,
        y,
        x,
        Ps,
        [np.broadcast_to(_prod_causal(g[None]), (X.shape[0], n + 1, n + 1)) for g in lgs],
    )
    scale = _scale(X, y, x, Ps, ref)
    errs = {"depth_predict_vs_recursion": _rel_err(base, ref, scale)}
    # nesting: a layer with P = 0 (W_q = 0), inserted anywhere with any gates, is the identity
    pos = int(rng.integers(0, L + 1))
    Pz = Ps[:pos] + [np.zeros((d, d))] + Ps[pos:]
    gz = lgs[:pos] + [log_gates(rng, (1, n + 1), "mixed")[0]] + lgs[pos:]
    errs["zero_layer_inserted"] = _rel_err(ndepth.depth_predict(X, y, x, Pz, gz), base, scale)
    Pstack = stack.stack_predict(
        X,
        y,
        x,
        stack.construct_wpgd_stack(Pz),
        [np.broadcast_to(g, (X.shape[0], n + 1)) for g in gz],
        engine="chunked",
    )
    errs["stack_with_zero_layer"] = _rel_err(Pstack, base, scale)
    margin = max(errs.values()) / TOL
    return {
        "outcome": "holds" if margin <= 1 else "nesting-broken",
        "figures": {**errs, "inserted_at": pos, "margin": margin},
        "tags": prompt_tags(inst, lgs) + [f"L={L}"],
    }


register(
    StressProperty(
        claim_id="G5",
        statement="(i) nesting L*_L <= L*_{L-1}: an L-layer model with a P = 0 layer inserted at any position "
        "(any gates) predicts exactly like the (L-1)-layer model, in numerics.depth and in the GLA stack; "
        "and depth_predict = the direct causal recursion (TOL, summand scale)",
        proxy=(
            "G5's part (ii) (strict decrease of the trained risk with depth) is an empirical statement of the "
            "claim's own SAA runs; the stress property checks the theorem part (i) on random prompts, gates and "
            "preconditioners, which is what makes L*_L non-increasing for every instance"
        ),
        strategy=lambda: prompt_params(n=(8, 1, 2, 5, 40, 3), layers=(1, 2, 3)),
        build=build_prompt,
        evaluate=_g5_eval,
        bad=("nesting-broken", "error"),
        good=("holds",),
        tolerances={"TOL": TOL},
        describe=_describe_prompt,
    )
)
