r"""Hypothesis strategies and deterministic builders of stress instances.

Every strategy draws a JSON-able dict of *parameters*; a builder turns it into the instance
with numpy ``default_rng(params["seed"])``. Lists of values are ordered with the hard cases
first (hypothesis' integer/float strategies favour "simple" values -- 0, 1, small sizes --
which would leave ill-conditioned instances rare), and shrink towards the first entry.

Families:

* :func:`model_params` / :func:`build_model` -- a general multitask model (claims L1-L5):
  full / low-rank / near-singular (``1e-9``-regularised rank-deficient) / ``K``-task mixture
  ``R``, unequal task variances, tasks with flipped signs (negative correlations), the
  query row scaled by ``r_scale`` down to ``1e-6`` (``r`` near 0) or to exactly 0, ``Σ``
  spread / clustered / diagonal / isotropic with condition number up to ``1e8``, noise
  ``σ`` from 0 to 2, ``n`` from 1 to 16, ``d`` from 1 to 8;
* :func:`segmented_params` / :func:`build_segmented` -- ``K``-task prompts (claims L7, G1-G4):
  one-token segments, ``K = 1..5``, query correlations ``ρ`` of either sign, zero or equal
  (cone boundaries), ``Γ = I`` or correlated, ``Σ = I``, ``sI``, diagonal or rotated;
* :func:`prompt_params` / :func:`build_prompt` -- prompts and gates for the GLA engines
  (claims C1-C3, G5): long prompts (up to 600 tokens), ``d = 1``, gates exactly 0 or 1,
  near 0 (``log g ~ -30``) or near 1 (``log g ~ -1e-8``), and mixtures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from numerics.data import MultitaskModel, random_correlation, random_covariance

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "build_model",
    "build_prompt",
    "build_segmented",
    "describe_model",
    "log_gates",
    "model_from_json",
    "model_params",
    "model_tags",
    "model_to_json",
    "prompt_params",
    "segmented_params",
]


# ============================================================================ general models
def model_params(
    *,
    n: Sequence[int] = (12, 8, 16, 5, 3, 2, 1),
    d: Sequence[int] = (6, 4, 3, 2, 8, 1),
    r_zero: bool = True,
    sigma_zero_prob: bool = True,
) -> SearchStrategy:
    """Strategy of :func:`build_model` parameters. ``r_zero``: also draw ``r_scale = 0``
    (the query uncorrelated with every example: outside L4/L5's condition ``r != 0``)."""
    from hypothesis import strategies as st

    r_scales = [1.0, 1e-6, 1e-2, 1e-4, 1.0] + ([0.0] if r_zero else [])
    return st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**32 - 1),
            "n": st.sampled_from(list(n)),
            "d": st.sampled_from(list(d)),
            "R_kind": st.sampled_from(["near-singular", "low-rank", "mixture", "full"]),
            "rank": st.integers(1, 4),
            "K": st.integers(1, 4),
            "common": st.floats(0.0, 3.0),
            "flip": st.booleans(),
            "S_kind": st.sampled_from(["spread", "clustered", "diagonal", "isotropic"]),
            "log10_cond": st.sampled_from([8.0, 7.0, 6.0, 4.0, 2.0, 1.0, 0.0]),
            "r_scale": st.sampled_from(r_scales),
            "log_var_spread": st.sampled_from([0.0, 6.0, 1.0, 3.0, 0.0]),
            "dead": st.sampled_from([False, False, False, True])
            if sigma_zero_prob
            else st.just(False),
            "sigma": st.sampled_from([0.0, 1e-8, 1e-4, 0.1, 1.0, 2.0]),
        }
    )


def build_model(p: dict) -> MultitaskModel:
    r"""Deterministic model from :func:`model_params` parameters.

    ``R_kind``: ``full`` (random correlation), ``low-rank`` (rank ``rank``), ``near-singular``
    (rank-deficient + ``1e-9 I``, renormalised), ``mixture`` (``K`` tasks in contiguous
    segments). ``flip``: random signs ``D = diag(±1)`` (``R -> D R D``: negative task
    correlations). ``log_var_spread = v > 0``: example ``i``'s task rescaled by
    ``exp(U(-v, v))``. ``r_scale`` multiplies the query's row and column (``r -> r_scale r``).
    ``dead`` (with ``sigma = 0``): example 1 gets ``R_11 = 0`` (``y_1 ≡ 0``, ``B_11 = 0``:
    outside L4/L5's condition ``B > 0``). ``S_kind``: ``spread`` / ``diagonal`` (condition
    ``10^log10_cond`` minus a seeded jitter in ``[0, 0.5]`` decades unless ``jitter`` is False), ``clustered`` (two
    eigenvalue clusters {1, 1/cond}, jitter 1e-6), ``isotropic`` (``s I``).
    """
    rng = np.random.default_rng(p["seed"])
    n, d = int(p["n"]), int(p["d"])
    kind = p["R_kind"]
    if kind == "full":
        R = random_correlation(n + 1, rng, common=p["common"])
    elif kind == "low-rank":
        R = random_correlation(n + 1, rng, rank=min(p["rank"], n + 1), common=p["common"])
    elif kind == "near-singular":
        C = random_correlation(
            n + 1, rng, rank=min(p["rank"], n + 1), common=p["common"]
        ) + 1e-9 * np.eye(n + 1)
        s = 1 / np.sqrt(np.diag(C))
        R = C * s[:, None] * s[None, :]
        R = (R + R.T) / 2
        np.fill_diagonal(R, 1.0)
    elif kind == "mixture":
        K = min(int(p["K"]), n)
        M = random_correlation(K + 1, rng, common=p["common"])
        cuts = (
            np.sort(rng.choice(np.arange(1, n), size=K - 1, replace=False))
            if K > 1
            else np.array([], int)
        )
        seg = np.repeat(np.arange(K), np.diff(np.concatenate([[0], cuts, [n]])))
        R = M[np.ix_(np.append(seg, K), np.append(seg, K))]
    else:
        raise ValueError(f"p: unknown R_kind {kind!r}")
    D = np.ones(n + 1)
    if p.get("flip", False):
        D[:n] = rng.choice([-1.0, 1.0], n)
    v = p.get("log_var_spread", 0.0)
    if v > 0:
        D[:n] *= np.exp(rng.uniform(-v, v, n))
    D[-1] = p["r_scale"]
    R = R * D[:, None] * D[None, :]
    if p.get("dead", False) and p["sigma"] == 0.0 and n >= 2:
        R[0, :] = 0.0
        R[:, 0] = 0.0
    cond = 10.0 ** max(
        p["log10_cond"] - (rng.uniform(0.0, 0.5) if p.get("jitter", True) else 0.0), 0.0
    )
    sk = p["S_kind"]
    if sk == "spread":
        S = random_covariance(d, rng, cond=cond)
    elif sk == "diagonal":
        S = random_covariance(d, rng, cond=cond, diagonal=True)
    elif sk == "isotropic":
        S = np.exp(rng.uniform(-2, 2)) * np.eye(d)
    elif sk == "clustered":
        lam = np.where(rng.random(d) < 0.5, 1.0, 1.0 / cond) * (1 + 1e-6 * rng.standard_normal(d))
        Q, Rq = np.linalg.qr(rng.standard_normal((d, d)))
        Q = Q * np.sign(np.diag(Rq))
        S = (Q * lam) @ Q.T
        S = (S + S.T) / 2
    else:
        raise ValueError(f"p: unknown S_kind {sk!r}")
    return MultitaskModel(R, S, p["sigma"])


def model_to_json(model: MultitaskModel) -> dict:
    out = {"R": model.R.tolist(), "Sigma": model.Sigma.tolist(), "sigma": float(model.sigma)}
    if model.segments is not None:
        out["segments"] = model.segments.tolist()
    return out


def model_from_json(obj: dict) -> MultitaskModel:
    """Inverse of :func:`model_to_json` (keys ``R``, ``Sigma``, ``sigma``, optional
    ``segments``); validates like the model."""
    for k in ("R", "Sigma", "sigma"):
        if k not in obj:
            raise ValueError(f"instance: missing key {k!r}")
    seg = obj.get("segments")
    return MultitaskModel(
        np.asarray(obj["R"], float),
        np.asarray(obj["Sigma"], float),
        float(obj["sigma"]),
        segments=None if seg is None else np.asarray(seg, dtype=np.int64),
    )


def describe_model(model: MultitaskModel) -> dict:
    lam = np.asarray(model.eigvals)
    return {
        "n": model.n,
        "d": model.d,
        "cond_Sigma": float(lam[-1] / lam[0]),
        "sigma": float(model.sigma),
        "r_norm": float(np.linalg.norm(model.r)),
        "R_min_eig": float(np.linalg.eigvalsh(model.R)[0]),
    }


def model_tags(model: MultitaskModel) -> list[str]:
    """Edge regimes an instance falls in (counted in the summary's ``coverage``)."""
    s = describe_model(model)
    tags = []
    if s["cond_Sigma"] >= 1e6:
        tags.append("cond(Sigma)>=1e6")
    if s["cond_Sigma"] <= 1 + 1e-9:
        tags.append("Sigma~I")
    if 0 < s["r_norm"] <= 1e-3:
        tags.append("0<|r|<=1e-3")
    if s["r_norm"] == 0:
        tags.append("r=0")
    if s["R_min_eig"] <= 1e-8 * max(1.0, float(np.max(np.diag(model.R)))):
        tags.append("R near-singular")
    if np.any(model.R[:-1, :-1] < 0):
        tags.append("negative task correlation")
    if np.any(model.B_diag == 0):
        tags.append("B singular")
    if model.sigma == 0:
        tags.append("sigma=0")
    if model.d == 1:
        tags.append("d=1")
    if model.n == 1:
        tags.append("n=1")
    return tags


# ============================================================================ segmented models
def segmented_params(
    *,
    K: Sequence[int] = (3, 2, 1, 4, 5),
    d: Sequence[int] = (3, 1, 2, 4, 6),
    sigma_iso: bool = False,
    gamma_identity: bool = False,
    sigma_kinds: Sequence[str] = ("identity", "diagonal", "rotated", "scaled"),
) -> SearchStrategy:
    """Strategy of :func:`build_segmented` parameters. ``gamma_identity``: independent tasks
    only; ``sigma_kinds``: which ``Σ`` families to draw."""
    from hypothesis import strategies as st

    rho_kinds = [
        "increasing",
        "decreasing",
        "mixed-sign",
        "equal",
        "zero-block",
        "negative",
        "random",
    ]
    return st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**32 - 1),
            "K": st.sampled_from(list(K)),
            "m_kind": st.sampled_from(["ones", "random", "equal", "one-long"]),
            "m_max": st.sampled_from([4, 1, 2, 8, 20]),
            "rho_kind": st.sampled_from(rho_kinds),
            "rho_norm": st.sampled_from([0.9, 0.5, 0.99, 0.1, 1e-3]),
            "Gamma": st.just("identity")
            if gamma_identity
            else st.sampled_from(["identity", "correlated", "near-singular"]),
            "d": st.sampled_from(list(d)),
            "S_kind": st.sampled_from(list(sigma_kinds)),
            "log10_cond": st.sampled_from([1.0, 3.0, 6.0, 0.5, 0.0]),
            "sigma": st.sampled_from([0.5, 0.0, 1e-4, 0.1, 1.0, 2.0]),
        }
    )


def build_segmented(p: dict) -> MultitaskModel:
    r"""A ``K``-task model (``MultitaskModel.k_task``; ``query_var = 1``) from
    :func:`segmented_params` parameters. ``ρ`` is drawn by ``rho_kind`` (monotone either way,
    mixed signs, all equal, one zero block, all negative, random) and scaled to
    ``‖L^{-1}ρ‖ = rho_norm < 1`` (``Γ = LLᵀ``), so ``[[Γ, ρ], [ρᵀ, 1]]`` is PSD."""
    rng = np.random.default_rng(p["seed"])
    K, d = int(p["K"]), int(p["d"])
    mk, mmax = p["m_kind"], int(p["m_max"])
    if mk == "ones":
        m = np.ones(K, dtype=np.int64)
    elif mk == "equal":
        m = np.full(K, int(rng.integers(1, mmax + 1)), dtype=np.int64)
    elif mk == "one-long":
        m = np.ones(K, dtype=np.int64)
        m[int(rng.integers(K))] = mmax
    else:
        m = rng.integers(1, mmax + 1, K).astype(np.int64)
    g = p["Gamma"]
    if g == "identity" or K == 1:
        Gamma = np.eye(K)
    elif g == "correlated":
        Gamma = random_correlation(K, rng, common=float(rng.uniform(0, 2)))
    else:
        Gamma = random_correlation(K, rng, rank=1, common=0.5) * (1 - 1e-9) + 1e-9 * np.eye(K)
    rk = p["rho_kind"]
    z = rng.uniform(0.1, 1.0, K)
    if rk == "increasing":
        z = np.sort(z)
    elif rk == "decreasing":
        z = np.sort(z)[::-1].copy()
    elif rk == "mixed-sign":
        z = z * rng.choice([-1.0, 1.0], K)
        if K > 1:
            z[0], z[-1] = abs(z[0]), -abs(z[-1])
    elif rk == "equal":
        z = np.full(K, z[0])
    elif rk == "zero-block":
        z[int(rng.integers(K))] = 0.0
    elif rk == "negative":
        z = -np.sort(z)
    elif rk == "random":
        z = rng.standard_normal(K)
    # rho = L z' with ||z'|| = rho_norm keeps [[Γ, ρ], [ρᵀ, 1]] PSD (Schur: 1 - ρᵀΓ⁻¹ρ >= 0)
    Lc = np.linalg.cholesky(Gamma + 1e-15 * np.eye(K))
    if g == "identity" or K == 1:
        rho = z / max(float(np.linalg.norm(z)), 1e-300) * p["rho_norm"] if np.any(z) else z
    else:
        w = np.linalg.solve(Lc, z)
        rho = Lc @ (w / max(float(np.linalg.norm(w)), 1e-300) * p["rho_norm"]) if np.any(z) else z
        rho = rho * 0.999  # Γ's regularisation: stay inside
    cond = 10.0 ** p["log10_cond"]
    sk = p["S_kind"]
    if sk == "identity":
        S = np.eye(d)
    elif sk == "scaled":
        S = float(np.exp(rng.uniform(-2, 2))) * np.eye(d)
    elif sk == "diagonal":
        S = random_covariance(d, rng, cond=cond, diagonal=True)
    else:
        S = random_covariance(d, rng, cond=cond)
    return MultitaskModel.k_task(m, Gamma, rho, S, p["sigma"])


def segmented_tags(model: MultitaskModel) -> list[str]:
    seg = np.asarray(model.segments)
    m = np.bincount(seg)
    rho = np.array([model.r[np.argmax(seg == k)] for k in range(m.size)])
    tags = model_tags(model)
    if np.any(m == 1):
        tags.append("one-token segment")
    if m.size == 1:
        tags.append("K=1")
    if np.any(rho < 0):
        tags.append("negative rho")
    if np.any(rho < 0) and np.any(rho > 0):
        tags.append("mixed-sign rho")
    if np.any(rho == 0):
        tags.append("rho_k=0")
    return tags


# ============================================================================ prompts and gates
def prompt_params(
    *,
    n: Sequence[int] = (16, 1, 2, 7, 200, 600, 3),
    d: Sequence[int] = (3, 1, 2, 5),
    N: Sequence[int] = (4, 1, 2, 16),
    layers: Sequence[int] = (1,),
) -> SearchStrategy:
    """Strategy of :func:`build_prompt` parameters (GLA engines vs WPGD)."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**32 - 1),
            "N": st.sampled_from(list(N)),
            "n": st.sampled_from(list(n)),
            "d": st.sampled_from(list(d)),
            "L": st.sampled_from(list(layers)),
            "gates": st.sampled_from(
                [
                    "mixed",
                    "zero",
                    "one",
                    "near-one",
                    "near-zero",
                    "moderate",
                    "zero-at-query",
                    "one-zero",
                ]
            ),
            "P_scale": st.sampled_from([1.0, 1e-3, 1e3]),
            "x_scale": st.sampled_from([1.0, 1e-4, 1e4]),
        }
    )


def log_gates(rng: np.random.Generator, shape: tuple[int, ...], regime: str) -> np.ndarray:
    r"""Log-gates of a regime: ``one`` (all 0: linear attention), ``zero`` (all ``-inf``),
    ``near-one`` (``-1e-8 U``), ``near-zero`` (``-30 - 10U``), ``moderate`` (``-Exp(0.5)``),
    ``zero-at-query`` (moderate, the last token's gate exactly 0), ``one-zero`` (each gate
    exactly 0 or 1), ``mixed`` (per entry one of near-one / moderate / near-zero / exactly 0)."""
    shape = tuple(shape)
    if regime == "one":
        return np.zeros(shape)
    if regime == "zero":
        return np.full(shape, -np.inf)
    if regime == "near-one":
        return -1e-8 * rng.random(shape)
    if regime == "near-zero":
        return -30.0 - 10.0 * rng.random(shape)
    if regime == "moderate":
        return -rng.exponential(0.5, shape)
    if regime == "zero-at-query":
        lg = -rng.exponential(0.5, shape)
        lg[:, -1] = -np.inf
        return lg
    if regime == "one-zero":
        return np.where(rng.random(shape) < 0.3, -np.inf, 0.0)
    if regime == "mixed":
        kind = rng.integers(0, 4, size=shape)
        lg = np.where(
            kind == 0,
            -1e-8 * rng.random(shape),
            np.where(
                kind == 1,
                -rng.exponential(0.05, shape),
                np.where(kind == 2, -rng.exponential(1.0, shape), -30.0 * rng.random(shape)),
            ),
        )
        lg[rng.random(shape) < 0.05] = -np.inf
        return lg
    raise ValueError(f"regime: unknown {regime!r}")


def build_prompt(p: dict) -> dict:
    """``{"X" (N, n, d), "y" (N, n), "x" (N, d), "rng_seed", "n", "d", "N", "L", "gates",
    "P_scale"}`` -- the arrays scaled by ``x_scale``; gates and matrices are drawn by the
    property from ``default_rng([seed, 1])`` (so each property draws what it needs)."""
    rng = np.random.default_rng(p["seed"])
    N, n, d = int(p["N"]), int(p["n"]), int(p["d"])
    s = float(p["x_scale"])
    return {
        "X": s * rng.standard_normal((N, n, d)),
        "y": rng.standard_normal((N, n)),
        "x": s * rng.standard_normal((N, d)),
        "seed": int(p["seed"]),
        "N": N,
        "n": n,
        "d": d,
        "L": int(p["L"]),
        "gates": p["gates"],
        "P_scale": float(p["P_scale"]),
    }


def prompt_tags(inst: dict, lgs) -> list[str]:
    tags = []
    if inst["n"] == 1:
        tags.append("n=1")
    if inst["n"] >= 200:
        tags.append("long prompt (n>=200)")
    if inst["d"] == 1:
        tags.append("d=1")
    flat = np.concatenate([np.ravel(g) for g in lgs])
    if np.any(np.isneginf(flat)):
        tags.append("gate exactly 0")
    if np.any(flat == 0):
        tags.append("gate exactly 1")
    if np.any((flat < 0) & (flat > -1e-6)):
        tags.append("gate near 1")
    if np.any((flat < -25) & np.isfinite(flat)):
        tags.append("gate near 0")
    return tags
