r"""Study ``vector_gap``: why trained vector-gated GLA stays above ``L*_WPGD`` in ``risk_vs_n``.

At ``d = 8`` (``risk_vs_n``) the trained vector-gated models stop 2–15% above their predicted
optimum ``L*_vector = L*_WPGD``, close to the *scalar*-GLA optimum. Three questions separate
"the prediction is wrong or unreachable" from "training does not find it":

* ``probe = "realise"`` -- is ``L*_WPGD`` reachable by the trained parameterisation? Build the
  difference-of-cones predictor of :func:`numerics.gla_landscape.solve_gla` (``gating="vector"``)
  *inside* the study's model (:func:`realise_optimum`: ``D_k = 8d`` key coordinates, gates that
  read only the delimiter channels, sigmoid gates of sharpness ``B``) and compute its exact risk
  (:func:`~proofs_check.experiments.trained.token_matrix_risk`). Sigmoid gates reach 0 and 1
  only in the limit, so the gap must fall to 0 as ``B`` grows.
* ``probe = "train"``, ``init = "optimum"`` -- is the optimum a point training keeps? Start Adam
  (the study's budget) *at* the realised optimum and report where it ends.
* ``probe = "train"``, ``init = "random"`` -- does the outcome depend on the learning rate, the
  feature dimension ``d``, or the spread of the initial gate weights? Each trained row also
  reads the solution's *directions*: ``ratio_mid_sv`` are the singular values of
  ``M̄₂ M̄₃⁻¹`` (``M̄_k`` = mean token matrix of segment ``k``; the predicted optimum has
  ``M̄₂ = 0`` because ``ρ₂ = 0``, the scalar-GLA optimum ``u₂/u₃`` in every direction, here
  ``ratio_mid_scalar``). A direction whose singular value is near 0 has been "split" into
  ``u − v`` by two groups of key coordinates; one near ``ratio_mid_scalar`` still pools
  segments 1 and 2 as scalar gating must.

The setting is ``risk_vs_n``'s (``ρ = (0.55, 0, 0.8)``, ``Σ = I``, ``σ = 0.1``, ``n = 3m``).
"""

from __future__ import annotations

import math

import numpy as np

from numerics import train as tr
from numerics.gla_landscape import jordan_decomposition

from ..sweep.grid import Points, Sweep
from . import trained as T
from .risk_vs_n import RHO, SIGMA

__all__ = ["SWEEP", "point", "realise_optimum", "summarize"]


def _setting(d: int, m: int) -> T.Setting:
    return T.Setting(f"m{m}", (m,) * len(RHO), RHO, d, SIGMA)


def realise_optimum(setting: T.Setting, spec: tr.GLASpec, sharpness: float) -> dict:
    """Parameters of ``spec`` (the ``"vector"`` architecture of :func:`T.make_spec`, WPGD
    restriction, ``D_k >= 2d``) that realise the predicted optimum ``(P*, ω*)`` of
    :func:`T.predict_optimum` ``(setting, "vector")`` up to sigmoid saturation.

    Block weights ``w = u − v`` (:func:`jordan_decomposition`, ``u, v`` nonnegative and
    nondecreasing toward the query). Key coordinates ``0..d-1`` read ``x`` (``W_k = I``) with
    queries ``S P*ᵀ`` and gates realising ``u/S``; coordinates ``d..2d-1`` the same keys with
    queries ``−S P*ᵀ`` and gates realising ``v/S`` (``S = max(u_K, v_K)``); the other key
    coordinates are 0. Gate logits: ``b_g = B`` on every token (examples and query gate
    ``sigmoid(B)``, → 1), delimiter ``k`` adds ``clip(logit δ_k, −B, B) − B`` with
    ``δ_k = a_k / a_{k+1}`` (``δ_K = a_K``) for the target ``a``. As ``B → ∞`` the token
    matrices tend to ``ω*_i P*`` exactly.

    >>> s = _setting(2, 1)
    >>> spec = T.make_spec(s, "vector")
    >>> target = T.predict_optimum(s, "vector").risk
    >>> gaps = [_exact(s, spec, realise_optimum(s, spec, B), 0)[0] / target - 1 for B in (2, 32)]
    >>> round(gaps[0], 4), abs(gaps[1]) < 1e-12
    (0.0469, True)
    """
    d, K = setting.d, setting.K
    if spec.gate != "key" or spec.Dk < 2 * d:
        raise ValueError(
            f"spec: needs key gates with Dk >= 2d = {2 * d}, got {spec.gate}, {spec.Dk}"
        )
    if not (isinstance(sharpness, (int, float)) and math.isfinite(sharpness) and sharpness > 0):
        raise ValueError(f"sharpness: must be a finite number > 0, got {sharpness!r}")
    pred = T.predict_optimum(setting, "vector")
    w = T.block_average(pred.omega, setting.m)
    u, v = jordan_decomposition(w)
    S = float(max(u[-1], v[-1]))
    B = float(sharpness)
    p = {
        "W_q": np.zeros((spec.Dk, spec.D)),
        "W_k": np.zeros((spec.Dk, spec.D)),
        "W_v": np.zeros((spec.D, spec.D)),
        "W_g": np.zeros((spec.Dk, spec.D)),
        "b_g": np.full(spec.Dk, B),
    }
    p["W_v"][d, d] = 1.0
    for g, (target, sign) in enumerate(((u / S, 1.0), (v / S, -1.0))):
        rows = slice(g * d, (g + 1) * d)
        p["W_k"][rows, :d] = np.eye(d)
        p["W_q"][rows, :d] = sign * S * pred.P.T
        for k in range(K):
            nxt = 1.0 if k == K - 1 else target[k + 1]
            delta = target[k] / nxt if nxt > 0 else 0.0
            if delta <= 0.0:
                logit = -B
            elif delta >= 1.0:
                logit = B
            else:
                logit = min(B, max(-B, math.log(delta) - math.log1p(-delta)))
            p["W_g"][rows, d + 1 + k] = logit - B
    return {"layers": [p]}


def _exact(
    setting: T.Setting, spec: tr.GLASpec, params: dict, seed: int
) -> tuple[float, np.ndarray]:
    """Exact risk and token matrices ``M (n, d, d)`` of a WPGD-restricted model (gates read only
    delimiter channels, so a handful of prompts fixes ``Ω``)."""
    model = setting.model()
    Z, _ = T.sampler(setting)(np.random.default_rng([seed, 5]), 4)
    M, _ = T.token_matrices(params, spec, setting, Z)
    return T.token_matrix_risk(model, M), M


def _directions(setting: T.Setting, M: np.ndarray) -> dict:
    """Singular values of ``M̄_k M̄₃⁻¹`` for segments 1 and 2 (see the module docstring)."""
    edges = np.concatenate([[0], np.cumsum(setting.m)])
    Mb = [M[edges[k] : edges[k + 1]].mean(axis=0) for k in range(setting.K)]
    inv = np.linalg.pinv(Mb[-1])
    return {
        "ratio_first_sv": np.linalg.svd(Mb[0] @ inv, compute_uv=False).tolist(),
        "ratio_mid_sv": np.linalg.svd(Mb[1] @ inv, compute_uv=False).tolist(),
    }


def point(params: dict, seed: int) -> dict:
    """One probe (see the module docstring); risks are exact (token-matrix formula)."""
    d, m = int(params["d"]), int(params["m"])
    setting = _setting(d, m)
    pv = T.predict_optimum(setting, "vector")
    ps = T.predict_optimum(setting, "scalar")
    spec = T.make_spec(
        setting,
        "vector",
        dk_multiple=int(params.get("dk_multiple", 8)),
        gate_weight_scale=params.get("gate_weight_scale"),
    )
    out: dict = {
        "n": setting.model().n,
        "pred_vector": pv.risk,
        "pred_scalar": ps.risk,
        "ratio_mid_scalar": float(ps.u[1] / ps.u[2]),
        "ratio_first_vector": float(pv.u[0] / pv.u[2]),
    }
    if params["probe"] == "realise":
        params0 = realise_optimum(setting, spec, float(params["sharpness"]))
        risk, M = _exact(setting, spec, params0, seed)
    elif params["probe"] == "train":
        if params["init"] == "optimum":
            init = realise_optimum(setting, spec, float(params["sharpness"]))
        elif params["init"] == "random":
            init = tr.init_params(spec, seed, zero_frozen=True)
        else:
            raise ValueError(f"init: must be 'optimum' or 'random', got {params['init']!r}")
        if params["init"] == "optimum":
            out["init_risk"] = _exact(setting, spec, init, seed)[0]
        res = tr.train(
            spec,
            T.sampler(setting),
            steps=int(params["steps"]),
            batch_size=int(params["batch_size"]),
            lr=float(params["lr"]),
            seed=seed,
            init=init,
            schedule="cosine",
            progress=False,
        )
        risk, M = _exact(setting, spec, res.params, seed)
    else:
        raise ValueError(f"probe: must be 'realise' or 'train', got {params['probe']!r}")
    r1 = T.rank1_readout(M, pv.omega)
    u_tr = T.block_average(r1["omega"], setting.m)
    out.update(
        risk=risk,
        gap_vector=(risk - pv.risk) / pv.risk,
        gap_scalar=(risk - ps.risk) / ps.risk,
        cos_omega_vector=float(u_tr @ pv.u / (np.linalg.norm(u_tr) * np.linalg.norm(pv.u))),
        cos_omega_scalar=float(u_tr @ ps.u / (np.linalg.norm(u_tr) * np.linalg.norm(ps.u))),
        rank1_residual=r1["residual"],
        **_directions(setting, M),
    )
    return out


def summarize(rows: list[dict], profile: str) -> dict:
    """One line per probe: exact risk, gap to ``L*_vector`` and to ``L*_scalar``, the singular
    values of the segment-2/segment-3 ratio."""
    lines = [
        "vector_gap: exact risk of realised / trained vector-gated models (n = 3m, D_k = 8d unless given)"
    ]
    for r in rows:
        what = (
            f"realise B={r['sharpness']:g}"
            if r["probe"] == "realise"
            else f"train init={r['init']} lr={r['lr']:g} steps={r['steps']}"
            + (f" gws={r['gate_weight_scale']:g}" if r.get("gate_weight_scale") is not None else "")
        )
        sv = " ".join(f"{x:.2f}" for x in r["ratio_mid_sv"])
        lines.append(
            f"d={r['d']} n={r['n']:>2} {what:<44} risk {r['risk']:.4f}  gap vs L*_vector {r['gap_vector']:+.4%}"
            f"  vs L*_scalar {r['gap_scalar']:+.2%}  mid/last sv [{sv}] (scalar {r['ratio_mid_scalar']:.2f})"
        )
    return {"profile": profile, "text": "\n".join(lines)}


_TRAIN = {"probe": "train", "steps": 3000, "batch_size": 128, "rep": 0}


def _points(full: bool) -> list[dict]:
    if not full:
        return [
            {"probe": "realise", "d": 4, "m": 2, "sharpness": 8.0},
            dict(_TRAIN, d=2, m=1, init="optimum", sharpness=8.0, lr=0.05, steps=100),
        ]
    pts: list[dict] = [
        {"probe": "realise", "d": 8, "m": m, "sharpness": B}
        for m in (1, 8)
        for B in (2.0, 4.0, 8.0, 16.0, 32.0)
    ]
    # the study's own rows are the random-start reference at d = 8, lr 0.05 (5 seeds per n)
    pts += [
        dict(_TRAIN, d=8, m=1, init="optimum", sharpness=8.0, lr=0.05),
        dict(_TRAIN, d=8, m=1, init="optimum", sharpness=8.0, lr=0.005),
        dict(_TRAIN, d=8, m=1, init="random", lr=0.01),
        dict(_TRAIN, d=8, m=1, init="random", lr=0.05, gate_weight_scale=8.0),
        dict(_TRAIN, d=2, m=1, init="random", lr=0.05),
        dict(_TRAIN, d=4, m=1, init="random", lr=0.05),
    ]
    return pts


SWEEP = Sweep(
    "vector_gap",
    fn=point,
    description="why trained vector GLA misses L*_WPGD at d=8: realised optimum, training from it, lr/d/gate spread",
    grids={"full": [Points(_points(True))], "quick": [Points(_points(False))]},
    summarize=summarize,
)
