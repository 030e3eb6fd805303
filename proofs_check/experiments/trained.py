r"""Training study behind claim G6: train one-layer GLA models on structured multitask prompts
and compare them with the predicted optimum of their architecture (the claim is
``proofs_check/claims/g6.py``, the protocol ``docs/trained.md``; ``python -m
proofs_check.experiments g6`` writes the ``docs/data/g6_*.csv`` snapshots).

Setting
-------
Prompts are :class:`numerics.prompts.StructuredPrompt` with **distinct delimiters** (a
one-hot delimiter token ``p_k`` after every segment, including the last one, so gate-induced
block weights ``0 <= u_1 <= ... <= u_K`` are reachable) and no contextual features. Token
layout ``z = [x; y; δ]`` (``D = d + 1 + K``), label at index ``d``, query last with label slot
0. Data: ``Σ = I_d``, independent tasks ``Γ = I_K``, query correlations ``ρ_k``,
``query_var = 1``, label noise ``σ`` (:meth:`StructuredPrompt.model`).

Architectures (``numerics/train.py`` model, one layer, read-out ``ŷ = +e_dᵀ o_query``, the
query attends to itself with weight 1):

* ``"linear"``: ``gate="none"``, ``D_k = d`` -- linear attention, ``ω ≡ 1``;
* ``"scalar"``: ``gate="scalar"``, ``D_k = d`` -- ``g_t = sigmoid(w_g·z_t + b_g)``;
* ``"vector"``: ``gate="key"``, ``D_k = 8d`` by default -- key-wise gates
  ``γ_t = sigmoid(W_g z_t + b_g)`` acting on the key axis. ``D_k = 2d`` is what the
  "difference-of-cones" realisation of :func:`numerics.gla_landscape.solve_gla`
  (``key_copies=2``) needs to reach ``L*_WPGD`` (keys ``[x; x]``, queries ``[Pᵀx; −Pᵀx]``, block
  weights ``u − v`` with ``u, v`` monotone), but gradient training at that width stalls in
  local minima; ``D_k = 8d`` (over-parameterised, same reachable set) trains reliably.

Restriction ``"wpgd"`` (default): ``W_q, W_k`` read only the feature coordinates
(:func:`numerics.train.wpgd_mask`), ``W_v`` only ``y → label slot``, and the gate weights read
only the **structural** (delimiter) channels, never ``x`` or ``y`` -- the hypothesis of the
landscape claims (gates that see ``x_i, y_i`` make ``ω`` data dependent). Under this
restriction a trained model is *exactly* a predictor ``ŷ = Σ_i y_i xᵀ M_i x_i`` with
prompt-independent token matrices ``M_i`` (:func:`token_matrices`) and its risk has a closed
form (:func:`token_matrix_risk`). Restriction ``"free"``: every weight trainable (gates may
read ``x, y``); its risk is only estimated by Monte Carlo.

Predicted optimum for the architecture (:func:`predict_optimum`): ``L_LA = profile_risk(ω = 1)``,
``L*_GLA`` = certified cone optimum ``solve_gla(gating="scalar", delimiters="distinct")``,
``L*_vector = solve_gla(gating="vector")`` (= ``L*_WPGD``). The predictor ``(P*(ω*), ω*)`` is
unique as a *function* (``(P, ω) → (P/s, sω)`` leaves ``ŷ`` unchanged and ``P*(ω)`` is
homogeneous of degree −1), so function-level comparisons need no fitted scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from numerics import train as tr
from numerics._validate import as_float_array
from numerics.data import MultitaskModel
from numerics.gla_landscape import solve_gla
from numerics.measures import cosine, rel_rms
from numerics.prompts import StructuredPrompt, example_positions, tokens
from numerics.risk import null_risk, optimal_P, profile_risk

from ..report import atomic_write_text
from ._base import Experiment

__all__ = [
    "ARCHITECTURES",
    "RESTRICTIONS",
    "Setting",
    "default_settings",
    "Prediction",
    "predict_optimum",
    "make_spec",
    "sampler",
    "token_matrices",
    "token_matrix_risk",
    "rank1_readout",
    "block_average",
    "rel_frobenius_scaled",
    "run_case",
    "run_cases",
    "CaseResult",
    "Profile",
    "PROFILES",
    "CURVE_COLUMNS",
    "SUMMARY_COLUMNS",
    "write_curves_csv",
    "write_summary_csv",
    "EXPERIMENT",
]

#: architecture -> (train.py gate kind, default D_k as a multiple of d, initial gate-weight scale).
#: Vector gating uses D_k = 8d: D_k = 2d suffices to *represent* L*_WPGD (two key copies,
#: weights u - v), but Adam from random inits at D_k = 2d stalls in local minima (the pooled,
#: scalar-GLA-like weights, or only one of the d directions split into u - v): measured 0/3
#: seeds within 2% at D_k = 2d, 1/3 at 4d, 3/3 at 8d (docs/trained.md). Random initial gate
#: weights (scale 2) give the key coordinates diverse gate patterns to start from.
ARCHITECTURES = {
    "linear": ("none", 1, 0.0),
    "scalar": ("scalar", 1, 0.5),
    "vector": ("key", 8, 2.0),
}
RESTRICTIONS = ("wpgd", "free")


# ============================================================================ settings
@dataclass(frozen=True)
class Setting:
    """One data setting: segment lengths ``m`` (K ints), query correlations ``rho`` (K),
    task correlations ``Gamma`` (K×K, default ``I``), feature dimension ``d`` (``Σ = I_d``),
    label-noise std ``sigma``; ``query_var = 1``. Prompts use distinct delimiters."""

    name: str
    m: tuple
    rho: tuple
    d: int = 2
    sigma: float = 0.1
    Gamma: tuple | None = None

    def __post_init__(self):
        if not isinstance(self.d, (int, np.integer)) or isinstance(self.d, bool) or self.d < 1:
            raise ValueError(f"d: must be a positive integer, got {self.d!r}")
        if not (
            isinstance(self.sigma, (int, float, np.floating))
            and math.isfinite(self.sigma)
            and self.sigma >= 0
        ):
            raise ValueError(f"sigma: must be finite and >= 0, got {self.sigma!r}")
        if len(tuple(self.rho)) != len(tuple(self.m)):
            raise ValueError(
                f"rho: needs one entry per segment ({len(tuple(self.m))}), got {self.rho!r}"
            )
        self.model()  # validates m, rho, Gamma (PSD of [[Γ, ρ], [ρᵀ, 1]])

    @property
    def K(self) -> int:
        return len(self.m)

    @property
    def prompt(self) -> StructuredPrompt:
        return StructuredPrompt(tuple(self.m), "distinct")

    @property
    def Gamma_matrix(self) -> np.ndarray:
        return np.eye(self.K) if self.Gamma is None else np.asarray(self.Gamma, dtype=np.float64)

    def model(self) -> MultitaskModel:
        return StructuredPrompt(tuple(self.m), "distinct").model(
            self.Gamma_matrix, np.asarray(self.rho, float), np.eye(self.d), self.sigma
        )

    def describe(self) -> dict:
        """Everything needed to rebuild the model: m, Gamma, rho, Sigma, sigma, query_var."""
        return {
            "m": list(self.m),
            "rho": [float(v) for v in self.rho],
            "Gamma": self.Gamma_matrix.tolist(),
            "Sigma": f"I_{self.d}",
            "d": self.d,
            "sigma": float(self.sigma),
            "query_var": 1.0,
            "delimiters": "distinct",
            "contextual": False,
        }


def default_settings(d: int = 2, sigma: float = 0.1, m_per: int = 6) -> list[Setting]:
    """The three G6 settings (``Σ = I_d``, ``Γ = I``):

    * ``single``: ``K = 1``, ``m = 2·m_per``, ``ρ = 1`` (``R = 11ᵀ``: one task);
    * ``monotone``: ``K = 3``, ``ρ = (0.15, 0.35, 0.85)`` -- ``ρ_k/(m_k+1+d+σ²)`` increasing, so
      scalar GLA reaches ``L*_WPGD`` (G1);
    * ``nonmonotone``: ``K = 3``, ``ρ = (0.55, 0, 0.8)`` -- optimal block weights high–zero–high,
      outside the monotone cone: ``L_LA > L*_GLA > L*_vector = L*_WPGD``.
    """
    return [
        Setting("single", (2 * m_per,), (1.0,), d, sigma),
        Setting("monotone", (m_per,) * 3, (0.15, 0.35, 0.85), d, sigma),
        Setting("nonmonotone", (m_per,) * 3, (0.55, 0.0, 0.8), d, sigma),
    ]


# ============================================================================ predictions
@dataclass
class Prediction:
    """Predicted optimum of one architecture on one setting.

    risk : the optimal population risk.  omega : (n,) optimal weights (unit 2-norm).
    P : (d, d) ``P*(ω)``, so ``ŷ* = xᵀ P Xᵀ(ω ⊙ y)`` is the optimal predictor itself.
    u : (K,) block weights ``block_average(omega)``.  source : how it was computed.
    """

    architecture: str
    risk: float
    omega: np.ndarray
    P: np.ndarray
    u: np.ndarray
    source: str
    extra: dict = field(default_factory=dict)


def block_average(w: ArrayLike, m: Sequence[int]) -> np.ndarray:
    """Mean of ``w (n,)`` (or ``(..., n)``) over each segment of lengths ``m`` -> ``(..., K)``."""
    w = as_float_array(w, "w")
    lengths = np.asarray(m, dtype=np.int64)
    if w.shape[-1] != int(lengths.sum()):
        raise ValueError(
            f"w: last axis has length {w.shape[-1]}, segments sum to {int(lengths.sum())}"
        )
    edges = np.concatenate([[0], np.cumsum(lengths)])
    return np.stack(
        [w[..., edges[k] : edges[k + 1]].mean(axis=-1) for k in range(lengths.size)], axis=-1
    )


def predict_optimum(setting: Setting, architecture: str) -> Prediction:
    """Predicted optimum for ``architecture`` on ``setting`` (see the module docstring)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture: must be one of {list(ARCHITECTURES)}, got {architecture!r}"
        )
    model = setting.model()
    if architecture == "linear":
        omega = np.ones(model.n) / math.sqrt(model.n)
        P = optimal_P(model, omega)
        risk, src, extra = (
            profile_risk(model, omega),
            "profile_risk(model, ones) (L2 with omega = 1)",
            {},
        )
    else:
        sol = solve_gla(
            model, gating="scalar" if architecture == "scalar" else "vector", delimiters="distinct"
        )
        omega, P, risk = np.asarray(sol.omega, float), np.asarray(sol.P, float), float(sol.risk)
        src = f"solve_gla(gating={'scalar' if architecture == 'scalar' else 'vector'!r}, delimiters='distinct') [{sol.case}]"
        extra = {"case": sol.case}
    return Prediction(
        architecture, float(risk), omega, P, block_average(omega, setting.m), src, extra
    )


# ============================================================================ models and data
def make_spec(
    setting: Setting,
    architecture: str,
    restriction: str = "wpgd",
    *,
    init_gate: float = 0.95,
    init_scale: float = 0.5,
    gate_weight_scale: float | None = None,
    dk_multiple: int | None = None,
) -> tr.GLASpec:
    """The :class:`numerics.train.GLASpec` of ``architecture`` on ``setting``'s token layout.

    ``restriction="wpgd"``: ``wpgd_mask`` on ``W_q, W_k, W_v`` and gate weights restricted to the
    delimiter channels ``d+1..D-1`` (``b_g`` free). ``"free"``: no mask.
    ``dk_multiple`` (default from :data:`ARCHITECTURES`): ``D_k = dk_multiple · d``.
    ``gate_weight_scale`` (default from :data:`ARCHITECTURES`): std·sqrt(D) of the initial gate
    weights; > 0 breaks the symmetry between key coordinates of the vector gate.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture: must be one of {list(ARCHITECTURES)}, got {architecture!r}"
        )
    if restriction not in RESTRICTIONS:
        raise ValueError(f"restriction: must be one of {RESTRICTIONS}, got {restriction!r}")
    gate, mult, gws = ARCHITECTURES[architecture]
    if dk_multiple is not None:
        if (
            isinstance(dk_multiple, bool)
            or not isinstance(dk_multiple, (int, np.integer))
            or dk_multiple < 1
        ):
            raise ValueError(f"dk_multiple: must be a positive integer, got {dk_multiple!r}")
        mult = int(dk_multiple)
    gws = gws if gate_weight_scale is None else gate_weight_scale
    d = setting.d
    D = setting.prompt.width(d)
    base = tr.GLASpec(
        D=D,
        Dk=mult * d,
        num_layers=1,
        gate=gate,
        label_index=d,
        init_scale=init_scale,
        init_gate=init_gate,
        gate_weight_scale=gws if gate != "none" else 0.0,
    )
    if restriction == "free":
        return base
    mask = tr.wpgd_mask(base, d)
    struct = np.zeros(D, dtype=bool)
    struct[d + 1 :] = True
    if gate == "scalar":
        mask["w_g"] = struct
    elif gate == "key":
        mask["W_g"] = struct[None, :]
    return tr.GLASpec(
        D=D,
        Dk=base.Dk,
        num_layers=1,
        gate=gate,
        label_index=d,
        init_scale=init_scale,
        init_gate=init_gate,
        gate_weight_scale=base.gate_weight_scale,
        trainable=mask,
    )


def sampler(
    setting: Setting,
) -> Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]:
    """``sample_batch(rng, B) -> (Z (B, T, D), y_query (B,))``: fresh prompts of the setting."""
    model, sp = setting.model(), setting.prompt

    def sample_batch(rng, B):
        p = model.sample(int(B), rng)
        return tokens(sp, p), p.y_query

    return sample_batch


# ============================================================================ read-outs
def token_matrices(
    params: dict, spec: tr.GLASpec, setting: Setting, Z: np.ndarray
) -> tuple[np.ndarray, float]:
    """Token matrices ``M (n, d, d)`` of a ``"wpgd"``-restricted one-layer model:
    ``ŷ = Σ_i y_i xᵀ M_i x_i`` with ``M_i = W_v[d,d] · W_q[:, :d]ᵀ diag(Ω_i) W_k[:, :d]``, ``Ω_i``
    the decay from example ``i`` to the query on each key coordinate (``ω_i 1`` for scalar
    gates, ``1`` for linear attention), read by :func:`numerics.train.effective_wpgd` on ``Z``.

    Returns ``(M, omega_spread)``: ``omega_spread`` = max std of ``Ω`` across the prompts of ``Z``
    relative to its max (0 when gates read only structural channels; > 0 flags data-dependent
    gates, for which ``M`` is only the average)."""
    d = setting.d
    ro = tr.effective_wpgd(params, spec, d, Z)
    pos = example_positions(setting.prompt)
    p = tr.check_params(params, spec)["layers"][0]
    Q, Kx, vy = p["W_q"][:, :d], p["W_k"][:, :d], p["W_v"][d, d]
    Om = ro.omega_mean[pos]
    if Om.ndim == 1:
        Om = np.repeat(Om[:, None], spec.Dk, axis=1)
    M = vy * np.einsum("ka,ik,kb->iab", Q, Om, Kx)
    spread = float(np.max(ro.omega_std) / max(float(np.max(np.abs(ro.omega_mean))), 1e-300))
    return M, spread


def token_matrix_risk(model: MultitaskModel, M: ArrayLike) -> float:
    r"""Exact risk ``E(y − ŷ)²`` of ``ŷ = Σ_i y_i xᵀ M_i x_i`` (``M: (n, d, d)``, any matrices).

    With ``y_i = x_iᵀβ_i + ξ_i``, ``E[x_i y_i y_j x_jᵀ] = A_ij Σ² + B_ij Σ`` (Gaussian fourth
    moment for ``i = j``) and ``E[y ŷ] = Σ_i R_{i,q} tr(M_i Σ²)``:
    ``L = σ² + R_qq tr Σ − 2 Σ_i r_i tr(M_i Σ²) + Σ_ij tr(M_i (A_ij Σ² + B_ij Σ) M_jᵀ Σ)``.
    For ``M_i = ω_i P`` this is L1 (used by the tests as the independent check).
    """
    M = as_float_array(M, "M", ndim=3)
    n, d = model.n, model.d
    if M.shape != (n, d, d):
        raise ValueError(f"M: expected shape {(n, d, d)}, got {M.shape}")
    S = np.asarray(model.Sigma)
    S2 = S @ S
    lin = float(np.einsum("i,iab,ba->", model.r, M, S2))
    MS2 = np.einsum("iab,bc->iac", M, S2)  # M_i Σ²
    MS = np.einsum("iab,bc->iac", M, S)  # M_i Σ
    # Σ_ij A_ij tr(M_i Σ² M_jᵀ Σ) + B_ij tr(M_i Σ M_jᵀ Σ); B is diagonal.
    # tr(X M_jᵀ Σ) = <X, Σ M_j>_F because Σ is symmetric.
    SM = np.einsum("ab,jbc->jac", S, M)  # Σ M_j
    quad_A = float(np.einsum("ij,iab,jab->", model.A, MS2, SM))
    quad_B = float(np.einsum("i,iab,iab->", model.B_diag, MS, SM))
    return float(null_risk(model) - 2.0 * lin + quad_A + quad_B)


def rank1_readout(M: ArrayLike, omega_ref: ArrayLike | None = None) -> dict:
    """Best rank-1 fit ``M_i ≈ ω_i P`` (leading singular pair of the ``(n, d²)`` matrix of
    ``vec M_i``): ``omega`` (unit norm), ``P`` (so ``ω_i P`` is the fit), ``residual`` =
    ``‖M − ω⊗P‖_F / ‖M‖_F`` (0 for scalar gates; > 0 when key gates make the token matrices
    genuinely different from a common ``P``). The sign is fixed so ``omega · omega_ref >= 0``
    (``(P, ω) → (−P, −ω)`` is the same predictor), else so ``sum(omega) >= 0``."""
    M = as_float_array(M, "M", ndim=3)
    n, d, _ = M.shape
    U, s, Vt = np.linalg.svd(M.reshape(n, d * d), full_matrices=False)
    om, P = U[:, 0], s[0] * Vt[0].reshape(d, d)
    ref = np.ones(n) if omega_ref is None else as_float_array(omega_ref, "omega_ref", ndim=1)
    if float(om @ ref) < 0:
        om, P = -om, -P
    res = float(
        np.linalg.norm(M - om[:, None, None] * P[None]) / max(float(np.linalg.norm(M)), 1e-300)
    )
    return {"omega": om, "P": P, "residual": res}


def rel_frobenius_scaled(A: ArrayLike, B: ArrayLike) -> float:
    """``min_s ‖sA − B‖_F / ‖B‖_F`` (best scaling of ``A``) ``= sqrt(1 − cos²(A, B))``, computed
    directly from the optimal ``s = ⟨A, B⟩/‖A‖²``."""
    a = np.ravel(np.asarray(A, float))
    b = np.ravel(np.asarray(B, float))
    na = float(a @ a)
    s = float(a @ b) / na if na > 0 else 0.0
    return float(np.linalg.norm(s * a - b) / max(float(np.linalg.norm(b)), 1e-300))


# ============================================================================ the experiment
@dataclass(frozen=True)
class Profile:
    """Training / evaluation budget of one case: Adam ``steps`` on ``batch_size`` fresh prompts,
    base ``lr`` with a cosine decay, evaluation every ``eval_every`` steps on ``eval_size``
    fixed prompts (for the curve), Monte Carlo of the final model on ``mc_prompts`` fresh
    prompts, function-level comparison on ``fn_prompts`` prompts."""

    steps: int
    batch_size: int
    lr: float
    eval_every: int
    eval_size: int
    mc_prompts: int
    fn_prompts: int

    @classmethod
    def from_params(cls, params: dict) -> Profile:
        """The profile whose fields are read from a sweep point's ``params`` (extra keys ignored).

        >>> Profile.from_params({**dict.fromkeys(("steps", "batch_size", "eval_every", "eval_size",
        ...     "mc_prompts", "fn_prompts"), 1), "lr": 0.1, "arch": "scalar"}).lr
        0.1
        """
        from dataclasses import fields

        return cls(**{f.name: params[f.name] for f in fields(cls)})


PROFILES = {
    "tiny": Profile(
        steps=150,
        batch_size=64,
        lr=0.05,
        eval_every=50,
        eval_size=256,
        mc_prompts=4000,
        fn_prompts=256,
    ),
    "quick": Profile(
        steps=1500,
        batch_size=128,
        lr=0.05,
        eval_every=150,
        eval_size=1024,
        mc_prompts=50_000,
        fn_prompts=1024,
    ),
    "full": Profile(
        steps=4000,
        batch_size=256,
        lr=0.05,
        eval_every=200,
        eval_size=4096,
        mc_prompts=200_000,
        fn_prompts=4096,
    ),
}


@dataclass
class CaseResult:
    """Figures of one (setting, architecture, restriction) run; ``figures`` is flat and JSON-able,
    ``curve`` rows ``(step, loss, eval_loss)`` (``eval_loss`` NaN off the evaluation grid)."""

    setting: Setting
    architecture: str
    restriction: str
    prediction: Prediction
    figures: dict
    curve: list
    params: dict
    spec: tr.GLASpec


#: Prompts per block of :func:`_query_prediction`: a Monte Carlo batch of 20,000 key-gated
#: prompts made ~650 MB of temporaries at once, each page a fault the first time (measured
#: ~30 us a fault on the development VM); blocks of 2048 keep them near 65 MB, and the block's
#: arrays stay in cache (0.116 -> 0.087 s CPU per batch of 20,000, same bits).
_PREDICT_BLOCK = 2048


def _query_prediction(params, spec, Z):
    """``ŷ: (N,)`` of a one-layer model on ``Z: (N, T, D)`` from the query output alone
    (``train._last_layer``: O(N T D_k), no full-sequence scan), the same closed form the
    training gradients use, in blocks of :data:`_PREDICT_BLOCK` prompts (each prompt's
    prediction is its own); the function-level figures use :func:`numerics.train.predict`
    (full-sequence engine) instead."""
    p = tr.check_params(params, spec)["layers"][0]
    b = _PREDICT_BLOCK
    return np.concatenate([tr._last_layer(Z[i : i + b], p, spec)[0] for i in range(0, len(Z), b)])


def _mc_paired(model, sp, cases, num, rng, batch=20_000):
    """Monte Carlo of the trained risk and of the paired difference to the optimal predictor on
    the same prompts (a control variate: the difference has far smaller variance). ``cases``:
    ``(predict_fn, theory_P, theory_omega)`` triples, all scored on the same prompts (each
    one's figures are those of a run with it alone). Returns one ``(risk, se, gap, gap se)``
    per case."""
    se: list[list] = [[] for _ in cases]
    de: list[list] = [[] for _ in cases]
    n_done = 0
    while n_done < num:
        B = min(batch, num - n_done)
        p = model.sample(B, rng)
        Z = tokens(sp, p)
        for k, (predict_fn, theory_P, theory_omega) in enumerate(cases):
            yh = predict_fn(Z)
            ys = np.einsum(
                "Nd,de,Ne->N", p.x, theory_P, np.einsum("Nid,Ni,i->Nd", p.X, p.y, theory_omega)
            )
            e_tr = (p.y_query - yh) ** 2
            se[k].append(e_tr)
            de[k].append(e_tr - (p.y_query - ys) ** 2)
        n_done += B
    out = []
    for s_k, d_k in zip(se, de):
        s_all, d_all = np.concatenate(s_k), np.concatenate(d_k)
        out.append(
            (
                float(s_all.mean()),
                float(s_all.std(ddof=1) / math.sqrt(s_all.size)),
                float(d_all.mean()),
                float(d_all.std(ddof=1) / math.sqrt(d_all.size)),
            )
        )
    return out


def run_case(
    setting: Setting,
    architecture: str,
    *,
    profile: Profile | str = "quick",
    seed: int = 0,
    restriction: str = "wpgd",
    progress: Callable[[int, float, float], None] | bool = False,
    prediction: Prediction | None = None,
    dk_multiple: int | None = None,
) -> CaseResult:
    """Train ``architecture`` on ``setting`` and compare it with the predicted optimum.

    Seeds: model init and training prompts from ``seed`` (:func:`numerics.train.train`), the
    Monte Carlo prompts from ``default_rng([seed, 3])``, the function-level prompts from
    ``default_rng([seed, 4])``: the same seed gives the same figures bit for bit.

    Figures: ``predicted_risk``, ``trained_risk_exact`` (:func:`token_matrix_risk`, "wpgd" only),
    ``trained_risk_mc`` ± ``trained_risk_se``, ``paired_gap_mc`` ± ``paired_gap_se`` (trained minus
    optimal predictor on the same prompts), ``rel_gap`` = (trained − predicted)/predicted (exact
    risk when available, else predicted + paired gap), ``mc_vs_exact_z``; ``cos_omega`` (block
    weights of the rank-1 read-out vs the predicted ``u``), ``cos_omega_tokens`` (per example),
    ``cos_P``, ``rel_frob_P``, ``rank1_residual``, ``omega_spread``; ``fn_rel_rms_pred``
    (predictions vs ``ŷ*``) and ``fn_rel_rms_grad`` (``∂ŷ/∂x_query`` vs ``P* Xᵀ(ω* ⊙ y)``, no fitted
    scale), ``fn_fitted_scale`` (least-squares scale of ``ŷ*`` onto ``ŷ``, ≈ 1); ``curve_exact``
    (``[step, exact risk]`` at every evaluation step, "wpgd" only, else ``None``; its last
    entry is ``trained_risk``); sizes, steps, seconds, seed, lr, batch size.
    """
    return run_cases(
        setting,
        [architecture],
        profile=profile,
        seed=seed,
        restriction=restriction,
        progress=progress,
        predictions=[prediction],
        dk_multiples=[dk_multiple],
    )[0]


def run_cases(
    setting: Setting,
    architectures: Sequence[str],
    *,
    profile: Profile | str = "quick",
    seed: int = 0,
    restriction: str | Sequence[str] = "wpgd",
    progress: Callable[[int, float, float], None] | bool = False,
    predictions: Sequence[Prediction | None] | None = None,
    dk_multiples: Sequence[int | None] | None = None,
) -> list[CaseResult]:
    """:func:`run_case` for several architectures (or widths ``dk_multiples``, or restrictions:
    ``restriction`` is one for every case or one per case) on one setting with one seed,
    trained side by side (:func:`numerics.train.train_shared`): the same seed draws the same
    training, evaluation, Monte Carlo and function-level prompts for every case, so they are
    drawn once. Result ``i`` equals ``run_case(setting, architectures[i],
    restriction=restrictions[i], prediction=predictions[i], dk_multiple=dk_multiples[i], ...)``
    bit for bit (its ``train_seconds`` counts an equal share of the sampling)."""
    # why long: one linear protocol (train with the exact-risk hook, read the models out, score
    # them three ways) for the contract of :func:`run_case`
    prof = PROFILES.get(profile) if isinstance(profile, str) else profile
    if not isinstance(prof, Profile):
        raise ValueError(f"profile: must be one of {list(PROFILES)} or a Profile, got {profile!r}")
    archs = list(architectures)
    preds_in = [None] * len(archs) if predictions is None else list(predictions)
    mults = [None] * len(archs) if dk_multiples is None else list(dk_multiples)
    restrs = [restriction] * len(archs) if isinstance(restriction, str) else list(restriction)
    if not archs or not len(preds_in) == len(mults) == len(restrs) == len(archs):
        raise ValueError(
            "architectures, predictions, dk_multiples, restriction: need the same non-zero "
            "number of entries"
        )
    preds = [predict_optimum(setting, a) if p is None else p for a, p in zip(archs, preds_in)]
    specs = [make_spec(setting, a, r, dk_multiple=m) for a, r, m in zip(archs, restrs, mults)]
    model, sp = setting.model(), setting.prompt
    inits = [tr.init_params(sp_, seed, zero_frozen=r == "wpgd") for sp_, r in zip(specs, restrs)]
    curves_exact: list[list[list[float]]] = [[] for _ in specs]
    on_evals: list[Callable[[int, dict], None] | None] = [None] * len(specs)
    if "wpgd" in restrs:
        # The exact risk at every evaluation step (the eval loss is a noisy estimate on a fixed
        # set). Under the restriction the gates read only structural channels, so the token
        # matrices are the same for every prompt and a few prompts suffice to read them.
        Zc = tokens(sp, model.sample(4, np.random.default_rng([seed, 5])))
        on_evals = [
            _exact_risk_hook(setting, model, spec, Zc, c) if r == "wpgd" else None
            for spec, r, c in zip(specs, restrs, curves_exact)
        ]

    results = tr.train_shared(
        specs,
        sampler(setting),
        steps=prof.steps,
        batch_size=prof.batch_size,
        lr=prof.lr,
        seed=seed,
        inits=inits,
        schedule="cosine",
        progress=progress,
        eval_every=prof.eval_every,
        eval_size=prof.eval_size,
        on_evals=on_evals,
    )
    t1 = time.perf_counter()
    evs = _evaluate_trained(
        setting, model, specs, [r.params for r in results], preds, prof, seed, restrs
    )
    eval_seconds = (time.perf_counter() - t1) / len(specs)
    out = []
    for arch, restr, spec, pred, res, ev, curve_exact in zip(
        archs, restrs, specs, preds, results, evs, curves_exact
    ):
        # the exact-risk figures first, then the case, then the comparison: the order of the reports
        figs: dict[str, Any] = {k: ev.pop(k) for k in ("trained_risk_exact", "mc_vs_exact_z")}
        figs.update(
            {
                "setting": setting.name,
                "architecture": arch,
                "restriction": restr,
                "gate": spec.gate,
                "Dk": spec.Dk,
                "D": spec.D,
                "T": sp.T,
                "n": model.n,
                "K": setting.K,
                **ev,
                "final_eval_loss": res.final_eval_loss,
                "curve_exact": curve_exact if restr == "wpgd" else None,
                "steps": prof.steps,
                "batch_size": prof.batch_size,
                "lr": prof.lr,
                "schedule": "cosine",
                "seed": seed,
                "mc_prompts": prof.mc_prompts,
                "fn_prompts": prof.fn_prompts,
                "train_seconds": res.seconds,
                "eval_seconds": eval_seconds,
                **{f"model_{k}": v for k, v in setting.describe().items()},
            }
        )
        out.append(CaseResult(setting, arch, restr, pred, figs, _curve(res), res.params, spec))
    return out


def _exact_risk_hook(setting, model, spec, Zc, curve: list) -> Callable[[int, dict], None]:
    """``on_eval`` of one model: appends ``[step, exact risk]`` to ``curve``."""

    def on_eval(step: int, p: dict) -> None:
        M_t = token_matrices(p, spec, setting, Zc)[0]
        curve.append([int(step), token_matrix_risk(model, M_t)])

    return on_eval


def _evaluate_trained(
    setting: Setting,
    model: MultitaskModel,
    specs: Sequence[tr.GLASpec],
    params_list: Sequence[dict],
    preds: Sequence[Prediction],
    prof: Profile,
    seed: int,
    restrictions: Sequence[str],
) -> list[dict[str, Any]]:
    """The figures of :func:`run_case` that compare each trained model (``params_list[i]``,
    ``specs[i]``) with its prediction ``preds[i]``: risks (Monte Carlo, paired with the optimal
    predictor, and exact for "wpgd" models), the learned weights and preconditioner, and the
    function-level comparison. Every model is scored on the same prompts, drawn once."""
    sp = setting.prompt
    mc = _mc_paired(
        model,
        sp,
        [
            (_query_predictor(params, spec), pred.P, pred.omega)
            for params, spec, pred in zip(params_list, specs, preds)
        ],
        prof.mc_prompts,
        np.random.default_rng([seed, 3]),
    )
    p_fn = model.sample(prof.fn_prompts, np.random.default_rng([seed, 4]))
    Zf = tokens(sp, p_fn)
    return [
        _case_figures(
            setting, model, specs[i], params_list[i], preds[i], mc[i], p_fn, Zf, restrictions[i]
        )
        for i in range(len(specs))
    ]


def _query_predictor(params, spec) -> Callable[[np.ndarray], np.ndarray]:
    return lambda Z: _query_prediction(params, spec, Z)


def _case_figures(setting, model, spec, params, pred, mc_stats, p_fn, Zf, restriction) -> dict:
    """One model's figures of :func:`_evaluate_trained` (``mc_stats`` from :func:`_mc_paired`)."""
    mc, mc_se, gap, gap_se = mc_stats
    M, spread = token_matrices(params, spec, setting, Zf)
    if restriction == "wpgd":
        exact = token_matrix_risk(model, M)
        trained = exact
        exact_figs = {"trained_risk_exact": exact, "mc_vs_exact_z": (mc - exact) / mc_se}
    else:
        trained = pred.risk + gap
        exact_figs = {"trained_risk_exact": None, "mc_vs_exact_z": None}
    r1 = rank1_readout(M, pred.omega)
    u_tr = block_average(r1["omega"], setting.m)
    return {
        **exact_figs,
        "predicted_risk": pred.risk,
        "prediction_source": pred.source,
        "null_risk": null_risk(model),
        "trained_risk": trained,
        "trained_risk_mc": mc,
        "trained_risk_se": mc_se,
        "paired_gap_mc": gap,
        "paired_gap_se": gap_se,
        "rel_gap": (trained - pred.risk) / pred.risk,
        "cos_omega": cosine(u_tr, pred.u),
        "cos_omega_tokens": cosine(r1["omega"], pred.omega),
        "u_trained": u_tr / max(np.linalg.norm(u_tr), 1e-300),
        "u_predicted": pred.u / np.linalg.norm(pred.u),
        "cos_P": cosine(r1["P"], pred.P),
        "rel_frob_P": rel_frobenius_scaled(r1["P"], pred.P),
        "P_trained": r1["P"] / max(np.linalg.norm(r1["P"]), 1e-300),
        "P_predicted": pred.P / max(np.linalg.norm(pred.P), 1e-300),
        "rank1_residual": r1["residual"],
        "omega_spread": spread,
        **_function_level(params, spec, setting, pred, p_fn, Zf),
    }


def _function_level(params, spec, setting: Setting, pred: Prediction, p_fn, Zf) -> dict:
    """Predictions and ``∂ŷ/∂x_query`` of the trained model vs the optimal predictor (no fitted
    scale: the optimal predictor is unique as a function)."""
    yhat = tr.predict(params, spec, Zf)
    h = np.einsum("Nid,Ni,i->Nd", p_fn.X, p_fn.y, pred.omega)
    ystar = np.einsum("Nd,de,Ne->N", p_fn.x, pred.P, h)
    grad_tr = tr.predictor_gradient(params, spec, Zf, d=setting.d)
    grad_th = np.einsum("de,Ne->Nd", pred.P, h)
    return {
        "fn_rel_rms_pred": rel_rms(yhat, ystar),
        "fn_rel_rms_grad": rel_rms(grad_tr, grad_th),
        "fn_fitted_scale": float(yhat @ ystar / (ystar @ ystar)),
    }


def _curve(res) -> list[tuple[int, float, float]]:
    """``(step, batch loss, eval loss)`` rows; step 0 (initial parameters) when evaluated."""
    ev = dict(zip(res.eval_step.tolist(), res.eval_loss.tolist()))
    curve = [(0, math.nan, ev.get(0, math.nan))] if 0 in ev else []
    return curve + [
        (s, l, ev.get(s, math.nan)) for s, l in zip(res.step.tolist(), res.loss.tolist())
    ]


# ============================================================================ CSV output
CURVE_COLUMNS = ["setting", "architecture", "restriction", "step", "loss", "eval_loss"]
SUMMARY_COLUMNS = [
    "setting",
    "architecture",
    "restriction",
    "gate",
    "Dk",
    "predicted_risk",
    "trained_risk",
    "trained_risk_mc",
    "trained_risk_se",
    "rel_gap",
    "cos_omega",
    "cos_P",
    "rel_frob_P",
    "rank1_residual",
    "fn_rel_rms_pred",
    "fn_rel_rms_grad",
    "steps",
    "batch_size",
    "lr",
    "seed",
    "train_seconds",
    "model_m",
    "model_rho",
    "model_d",
    "model_sigma",
]


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(float(v)) else repr(float(v))
    if isinstance(v, (list, tuple, np.ndarray)):
        return " ".join(_cell(x) for x in np.ravel(np.asarray(v, dtype=object)))
    return str(v)


def write_curves_csv(path: str, results: list[CaseResult], *, max_rows: int = 500) -> None:
    """``g6_curves.csv``: training curves, ``loss`` = fresh-batch MSE at that step (before its
    update), ``eval_loss`` = fixed evaluation set after it (empty off the evaluation grid; step 0
    = initial parameters). Kept: every ``k``-th step with ``k = max(1, steps // max_rows)``, every
    evaluation step and the last step (keeps the file small; values with 7 significant digits)."""
    lines = [",".join(CURVE_COLUMNS)]
    for r in results:
        steps = max((s for s, _, _ in r.curve), default=0)
        k = max(1, steps // max(1, int(max_rows)))
        for s, l, e in r.curve:
            if s % k == 0 or s == steps or s == 1 or not math.isnan(e):
                lines.append(
                    ",".join(
                        [
                            r.setting.name,
                            r.architecture,
                            r.restriction,
                            str(s),
                            _short(l),
                            _short(e),
                        ]
                    )
                )
    atomic_write_text(path, "\n".join(lines) + "\n")


def _short(v) -> str:
    return "" if v is None or not math.isfinite(float(v)) else f"{float(v):.7g}"


def write_summary_csv(path: str, results: list[CaseResult]) -> None:
    """``g6_summary.csv``: one row per case with :data:`SUMMARY_COLUMNS` (lists space-separated)."""
    lines = [",".join(SUMMARY_COLUMNS)]
    for r in results:
        lines.append(",".join(_cell(r.figures.get(c)) for c in SUMMARY_COLUMNS))
    atomic_write_text(path, "\n".join(lines) + "\n")


# ============================================================================ the study as an experiment
def _points(full: bool) -> list[dict]:
    """Quick profile (seed 0): every (setting, architecture) for g6_curves.csv / g6_summary.csv;
    with ``full`` also the full profile for g6_summary_full.csv."""
    profiles = ("quick", "full") if full else ("quick",)
    return [
        {"setting": s.name, "architecture": a, "profile": p, "seed": 0}
        for p in profiles
        for s in default_settings()
        for a in ARCHITECTURES
    ]


def _run_point(p: dict) -> tuple[str, CaseResult]:
    setting = {s.name: s for s in default_settings()}[p["setting"]]
    return p["profile"], run_case(setting, p["architecture"], profile=p["profile"], seed=p["seed"])


def _write(results: list, out) -> None:
    from pathlib import Path

    out = Path(out)
    quick = [r for prof, r in results if prof == "quick"]
    write_curves_csv(out / "g6_curves.csv", quick)
    write_summary_csv(out / "g6_summary.csv", quick)
    full = [r for prof, r in results if prof == "full"]
    if full:
        write_summary_csv(out / "g6_summary_full.csv", full)


EXPERIMENT = Experiment(
    "g6",
    ("g6_curves.csv", "g6_summary.csv", "g6_summary_full.csv"),
    _points,
    _run_point,
    _write,
    about="G6: train every (setting, architecture), quick and full profile (~30 min)",
)
