r"""Training GLA models on sampled prompts, in NumPy, with hand-written gradients.

Model (see ``docs/training.md``)
--------------------------------
Tokens ``Z: (N, T, D)`` (batch-first), the query is the **last** token ``T-1``;
coordinate ``label_index`` holds the labels and must be 0 in the query token on input.
Other coordinates are whatever the prompt builder put there (features ``x``,
delimiter flags, contextual features): the model just sees ``D`` coordinates.

Layer ``ℓ`` (``ℓ = 0..L-1``) maps ``Z_ℓ`` to ``Z_{ℓ+1} = Z_ℓ + O_ℓ`` (residual), with

* ``q_t = W_q z_t``, ``k_t = W_k z_t`` (``W_q, W_k: (Dk, D)``), ``v_t = W_v z_t``
  (``W_v: (D, D)``, so ``O_ℓ`` has the token width and can be added residually);
* gates computed from the layer's own input token ``z_t`` (of ``Z_ℓ``):

  - ``gate="scalar"``: ``g_t = sigmoid(w_g · z_t + b_g)``, ``w_g: (D,)``, ``b_g: ()``;
    ``G_t = g_t 11ᵀ``;
  - ``gate="key"``: ``γ_t = sigmoid(W_g z_t + b_g)``, ``W_g: (Dk, D)``, ``b_g: (Dk,)``;
    ``G_t = 1 γ_tᵀ`` acts on the **key axis** (columns of ``S``);
  - ``gate="none"``: ``G_t ≡ 1`` (linear attention, no gate parameters);

  kept as log-gates ``log g = log_sigmoid(u) = -logaddexp(0, -u) <= 0`` (stable for any
  ``u``; products of gates become sums);
* state ``S_t = G_t ⊙ S_{t-1} + v_t k_tᵀ`` (``S: (N, D, Dk)``, ``S_{-1} = 0``) and output
  ``o_t = S_t q_t`` (scale 1; the current token attends to itself with weight 1), i.e.
  ``o_t = Σ_{s<=t} v_s (k_s ⊙ exp(c_t - c_s))ᵀ q_t`` with ``c_t = Σ_{r<=t} log g_r``.

Prediction ``ŷ = Z_L[:, T-1, label_index]`` (sign +, scale 1): the query's label slot
after ``L`` residual layers. For one layer this is ``ŷ = e_labᵀ o_{T-1}`` because the
query's input label slot is 0. (The C3 construction in ``numerics/stack.py`` reads
``−e_labᵀ z^{(L)}`` with ``W_v = [0 0; 0 −1]``; a trained model simply learns the sign.)

Loss ``L = (1/N) Σ_i (ŷ_i − y_query,i)²`` (mean squared error, no factor 1/2; an unbiased
estimate of the risk ``E(y − ŷ)²`` of docs/conventions.md).

Parameters are a dict ``{"layers": [layer_0, ..., layer_{L-1}]}``; each layer is a dict of
float64 arrays with keys ``W_q, W_k, W_v`` plus ``w_g, b_g`` (scalar gate) or
``W_g, b_g`` (key gate). Gradients have exactly the same structure.

Gradients (no autodiff library): the last layer only influences ``ŷ`` through the query's
output, so its forward and backward are a closed form over tokens (``O(N T Dk)``, also used
by :func:`predict`); every earlier layer runs the chunked engine with its reverse pass
(:func:`numerics.gla.gla_chunked_vjp`: chunk states kept from the forward, reverse state
scan ``dS_m = Q̃_mᵀ dO_m + γ_m ⊙ dS_{m+1}`` over chunks, gate gradients in log-gate space
from the pairs of tokens each gate separates); then everything is chained to the weights
and to the layer input (including the path through the gate) and back through the
residual stream.  Each layer's projections ``q, k, v, u`` are one matmul, and so are their
weight and input gradients.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import gla
from ._blas import tokens_matmul, tokens_wgrad
from ._validate import _finite_sum, as_float_array

__all__ = [
    "ADAM_BETA1",
    "ADAM_BETA2",
    "ADAM_EPS",
    "GATE_KINDS",
    "GLASpec",
    "SCHEDULES",
    "TrainResult",
    "WPGDReadout",
    "check_params",
    "default_printer",
    "effective_wpgd",
    "forward",
    "init_params",
    "input_gradient",
    "layer_log_gates",
    "log_sigmoid",
    "loss_and_grad",
    "mse",
    "predict",
    "predictor_gradient",
    "train",
    "wpgd_mask",
]

GATE_KINDS = ("scalar", "key", "none")
SCHEDULES = ("constant", "cosine", "linear")

# Adam hyper-parameters (Kingma & Ba defaults).
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8


# --------------------------------------------------------------------------- spec, params


@dataclass
class GLASpec:
    """Architecture and initialisation of a residual GLA model.

    D : token width.  Dk : key/query width.  num_layers : L >= 1.
    gate : "scalar" | "key" | "none".
    label_index : the label coordinate (negative values count from the end; normalised to
        ``0..D-1``). The query's label slot must be 0 on input.
    init_scale : projection entries are drawn ``N(0, init_scale² / D)``.
    init_gate : initial gate value in (0, 1): ``b_g = logit(init_gate)``.
    gate_weight_scale : ``w_g`` / ``W_g`` entries drawn ``N(0, gate_weight_scale² / D)``
        (default 0: every initial gate equals ``init_gate``).
    trainable : ``None`` (all trainable) or a dict ``name -> bool | mask array`` (the mask
        broadcasts to the parameter's shape; ``True`` = trained) or ``name -> list`` of one
        such entry per layer. Names not listed stay trainable. Frozen entries are not
        changed by :func:`train` (their gradient is still returned by :func:`loss_and_grad`).
    """

    D: int
    Dk: int
    num_layers: int = 1
    gate: str = "scalar"
    label_index: int = -1
    init_scale: float = 0.5
    init_gate: float = 0.9
    gate_weight_scale: float = 0.0
    trainable: dict | None = None

    def __post_init__(self):
        for name in ("D", "Dk", "num_layers"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
            setattr(self, name, int(v))
        if self.gate not in GATE_KINDS:
            raise ValueError(f"gate: must be one of {GATE_KINDS}, got {self.gate!r}")
        li = self.label_index
        if (
            not isinstance(li, (int, np.integer))
            or isinstance(li, bool)
            or not -self.D <= li < self.D
        ):
            raise ValueError(
                f"label_index: must be an integer in [-{self.D}, {self.D}), got {li!r}"
            )
        self.label_index = int(li) % self.D
        for name in ("init_scale", "init_gate", "gate_weight_scale"):
            setattr(self, name, _real(name, getattr(self, name)))
        if not (np.isfinite(self.init_scale) and self.init_scale >= 0):
            raise ValueError(f"init_scale: must be finite and >= 0, got {self.init_scale!r}")
        if not 0.0 < self.init_gate < 1.0:
            raise ValueError(f"init_gate: must lie in (0, 1), got {self.init_gate!r}")
        if not (np.isfinite(self.gate_weight_scale) and self.gate_weight_scale >= 0):
            raise ValueError(
                f"gate_weight_scale: must be finite and >= 0, got {self.gate_weight_scale!r}"
            )
        if self.trainable is not None:
            self.trainable = _normalise_trainable(self.trainable, self)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of one layer's parameters, in a fixed order."""
        D, Dk = self.D, self.Dk
        shapes: dict[str, tuple[int, ...]] = {"W_q": (Dk, D), "W_k": (Dk, D), "W_v": (D, D)}
        if self.gate == "scalar":
            shapes.update(w_g=(D,), b_g=())
        elif self.gate == "key":
            shapes.update(W_g=(Dk, D), b_g=(Dk,))
        return shapes


def _real(name: str, value) -> float:
    """``value`` as a float; ``TypeError`` naming the argument for anything that is not a
    real number (strings, complex numbers, arrays, bools)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    return int(seed)


class _Overflow(ValueError):
    """A prediction or loss beyond the float64 range (reported by :func:`loss_and_grad`)."""


def _normalise_trainable(trainable, spec: GLASpec) -> list[dict[str, np.ndarray]]:
    """``trainable`` -> one dict per layer of boolean masks with the parameters' shapes."""
    if not isinstance(trainable, dict):
        raise ValueError(
            f"trainable: expected a dict name -> bool/mask, got {type(trainable).__name__}"
        )
    shapes = spec.param_shapes()
    unknown = set(trainable) - set(shapes)
    if unknown:
        raise ValueError(
            f"trainable: unknown parameter name(s) {sorted(unknown)} for gate={spec.gate!r}; "
            f"known: {list(shapes)}"
        )
    out = [
        {name: np.ones(shape, dtype=bool) for name, shape in shapes.items()}
        for _ in range(spec.num_layers)
    ]
    for name, entry in trainable.items():
        per_layer = entry if isinstance(entry, list) else [entry] * spec.num_layers
        if len(per_layer) != spec.num_layers:
            raise ValueError(
                f"trainable: {name!r} has {len(per_layer)} per-layer entries, "
                f"model has {spec.num_layers} layers"
            )
        for l, m in enumerate(per_layer):
            m = np.asarray(m)
            if m.dtype != bool:
                raise ValueError(
                    f"trainable: {name!r} entries must be bool or boolean arrays, got dtype {m.dtype}"
                )
            try:
                out[l][name] = np.broadcast_to(m, shapes[name]).copy()
            except ValueError:
                raise ValueError(
                    f"trainable: mask for {name!r} has shape {m.shape}, "
                    f"not broadcastable to {shapes[name]}"
                ) from None
    return out


def wpgd_mask(spec: GLASpec, d: int) -> dict[str, Any]:
    """A ``trainable`` dict restricting a model to the WPGD structure of claim C1.

    Keys and queries read only the feature coordinates ``0..d-1`` (columns of ``W_q, W_k``),
    the value reads only the label into the label slot (``W_v[lab, lab]``); gates are fully
    trainable. Combine with :func:`init_params` ``(..., zero_frozen=True)``.
    """
    if not isinstance(d, (int, np.integer)) or not 1 <= d <= spec.D:
        raise ValueError(f"d: must be an integer in [1, {spec.D}], got {d!r}")
    if spec.label_index < d:
        raise ValueError(
            f"d: feature coordinates 0..{d - 1} overlap label_index {spec.label_index}"
        )
    cols = np.zeros(spec.D, dtype=bool)
    cols[:d] = True
    wv = np.zeros((spec.D, spec.D), dtype=bool)
    wv[spec.label_index, spec.label_index] = True
    return {"W_q": cols[None, :], "W_k": cols[None, :], "W_v": wv}


def init_params(spec: GLASpec, seed: int, *, zero_frozen: bool = False) -> dict:
    """Random initial parameters from ``np.random.default_rng(seed)``.

    Projections ``N(0, init_scale²/D)``; gate weights ``N(0, gate_weight_scale²/D)``; gate
    biases ``logit(init_gate)``. ``zero_frozen=True`` sets entries frozen by
    ``spec.trainable`` to 0 (except gate biases, which keep their initial value).
    """
    rng = np.random.default_rng(_check_seed(seed))
    std = spec.init_scale / math.sqrt(spec.D)
    gstd = spec.gate_weight_scale / math.sqrt(spec.D)
    bias = math.log(spec.init_gate) - math.log1p(-spec.init_gate)
    layers = []
    for l in range(spec.num_layers):
        shapes = spec.param_shapes()
        p = {name: std * rng.standard_normal(shapes[name]) for name in ("W_q", "W_k", "W_v")}
        if spec.gate == "scalar":
            p["w_g"] = gstd * rng.standard_normal(shapes["w_g"])
            p["b_g"] = np.array(bias)
        elif spec.gate == "key":
            p["W_g"] = gstd * rng.standard_normal(shapes["W_g"])
            p["b_g"] = np.full(shapes["b_g"], bias)
        if zero_frozen and spec.trainable is not None:
            for name, m in spec.trainable[l].items():
                if name != "b_g":
                    p[name] = np.where(m, p[name], 0.0)
        layers.append(p)
    return {"layers": layers}


def check_params(params, spec: GLASpec) -> dict:
    """Validate the structure, shapes and finiteness of ``params``; returns float64 copies."""
    if not isinstance(params, dict) or "layers" not in params:
        raise ValueError("params: expected a dict with key 'layers'")
    layers = params["layers"]
    if not isinstance(layers, (list, tuple)) or len(layers) != spec.num_layers:
        n = len(layers) if isinstance(layers, (list, tuple)) else type(layers).__name__
        raise ValueError(
            f"params: 'layers' must be a list of {spec.num_layers} layer dicts, got {n}"
        )
    shapes = spec.param_shapes()
    out = []
    for l, p in enumerate(layers):
        if not isinstance(p, dict) or set(p) != set(shapes):
            got = sorted(p) if isinstance(p, dict) else type(p).__name__
            raise ValueError(
                f"params: layer {l} must have keys {sorted(shapes)} (gate={spec.gate!r}), got {got}"
            )
        q = {}
        for name, shape in shapes.items():
            a = as_float_array(p[name], f"params: layer {l} {name}")
            if a.shape != shape:
                raise ValueError(f"params: layer {l} {name} must have shape {shape}, got {a.shape}")
            q[name] = a
        out.append(q)
    return {"layers": out}


def _check_tokens(Z, spec: GLASpec, name: str = "Z") -> np.ndarray:
    Z = as_float_array(Z, name, ndim=3)
    if Z.shape[2] != spec.D:
        raise ValueError(f"{name}: token width {Z.shape[2]} does not match spec.D = {spec.D}")
    if Z.shape[0] < 1 or Z.shape[1] < 1:
        raise ValueError(f"{name}: needs at least one prompt and one token, got shape {Z.shape}")
    if np.any(Z[:, -1, spec.label_index] != 0):
        raise ValueError(
            f"{name}: the query token's label slot (index {spec.label_index}) must be 0"
        )
    return Z


def _check_targets(y_query, N: int) -> np.ndarray:
    y = as_float_array(y_query, "y_query", ndim=1)
    if y.shape != (N,):
        raise ValueError(f"y_query: expected shape {(N,)}, got {y.shape}")
    return y


# --------------------------------------------------------------------------- forward pieces


def log_sigmoid(u):
    """``log sigmoid(u) = -logaddexp(0, -u)``, evaluated as ``min(u, 0) − log1p(exp(−|u|))``.

    Same value as ``-np.logaddexp(0, -u)`` (to rounding) but ~3x faster; ``exp`` never
    overflows (its argument is <= 0), no cancellation, and the result is always ``<= 0``.
    """
    u = np.asarray(u, dtype=np.float64)
    return np.minimum(u, 0.0) - np.log1p(np.exp(-np.abs(u)))


def _wgrad(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``Σ_{n,t} dA[n,t]ᵀ ⊗ Z[n,t]`` (weight gradient of ``A = Z Wᵀ``), ``(Dout, D)``.

    Summed over serial-sized row blocks (:func:`numerics._blas.tokens_wgrad`): a single tall
    ``(N·T, ·)`` GEMM goes through multithreaded BLAS, which is ~10x slower on a shared
    2-core machine."""
    return tokens_wgrad(dA, Z)


def _gate_logits(Z: np.ndarray, p: dict, gate: str):
    """Gate pre-activations ``u``: ``(N, T)`` (scalar) or ``(N, T, Dk)`` (key); None for "none"."""
    if gate == "scalar":
        return Z @ p["w_g"] + p["b_g"]
    if gate == "key":
        return Z @ p["W_g"].T + p["b_g"]
    return None


def layer_log_gates(params, spec: GLASpec, Z, layer: int = 0) -> np.ndarray:
    """Log-gates of layer ``layer`` evaluated on that layer's input tokens ``Z``.

    Returns ``(N, T)`` for scalar gates and for ``gate="none"`` (zeros), ``(N, T, Dk)`` for
    key gates. Only meaningful for ``layer = 0`` when ``Z`` are the prompt tokens; use
    :func:`forward` to get the inputs of deeper layers.
    """
    params = check_params(params, spec)
    Z = as_float_array(Z, "Z", ndim=3)
    if Z.shape[2] != spec.D:
        raise ValueError(f"Z: token width {Z.shape[2]} does not match spec.D = {spec.D}")
    if not 0 <= layer < spec.num_layers:
        raise ValueError(f"layer: must be in [0, {spec.num_layers}), got {layer!r}")
    u = _gate_logits(Z, params["layers"][layer], spec.gate)
    return np.zeros(Z.shape[:2]) if u is None else log_sigmoid(u)


def _gate_rows(p: dict, gate: str):
    """The gate weights as rows of a projection (``(1, D)`` scalar, ``(Dk, D)`` key, or None)."""
    if gate == "scalar":
        return p["w_g"][None, :]
    if gate == "key":
        return p["W_g"]
    return None


def _split_gate(P: np.ndarray, p: dict, gate: str, start: int):
    """Gate logits ``u`` from the projection columns ``start:`` (adds the bias)."""
    if gate == "none":
        return None
    u = P[..., start:] + p["b_g"]
    return u[..., 0] if gate == "scalar" else u


class _Layer:
    """One full layer on its input ``Z``: projections in one matmul, outputs via the engine.

    ``grad=True`` keeps the chunked engine's reverse pass (:func:`numerics.gla.gla_chunked_vjp`,
    which reuses the forward's chunk states); otherwise the forward engine
    :func:`numerics.gla.gla_chunked` runs.  ``O: (N, T, D)``.
    """

    def __init__(self, Z, p, gate, grad: bool, chunk_size=None):
        self.Z, self.p, self.gate = Z, p, gate
        Dk = p["W_q"].shape[0]
        D = p["W_v"].shape[0]
        rows = [p["W_q"], p["W_k"], p["W_v"]]
        g = _gate_rows(p, gate)
        if g is not None:
            rows.append(g)
        self.W = np.concatenate(rows, axis=0)  # (2 Dk + D [+ gate rows], D)
        P = tokens_matmul(Z, self.W.T)
        q, k, v = P[..., :Dk], P[..., Dk : 2 * Dk], P[..., 2 * Dk : 2 * Dk + D]
        self.u = _split_gate(P, p, gate, 2 * Dk + D)
        lg = self.L = None
        if self.u is not None:
            lg, self.L = _log_sigmoid_parts(self.u)
        eg = "key" if gate == "key" else "scalar"
        if not (_finite_sum(P) or np.all(np.isfinite(P))):
            raise _Overflow(
                f"params, Z: a projection overflows float64 (max |Z| = {np.max(np.abs(Z)):.3g})"
            )
        try:
            if grad:
                self.O, self.vjp = gla.gla_chunked_vjp(q, k, v, lg, gate=eg, chunk_size=chunk_size)
            else:
                lg = np.zeros(Z.shape[:2]) if lg is None else lg
                self.O = gla.gla_chunked(q, k, v, lg, gate=eg, scale=1.0)
        except ValueError as exc:  # inputs are finite: only an overflow gets here
            raise _Overflow(f"params, Z: {exc}") from None

    def backward(self, dO, need_dZ: bool):
        """Gradients of ``Σ <dO, O>``: (parameter grads, input path ``dZ`` or None)."""
        N, T, D = self.Z.shape
        Dk = self.p["W_q"].shape[0]
        dP = np.empty((N, T, self.W.shape[0]))  # the gradients land in their columns
        parts = [dP[..., :Dk], dP[..., Dk : 2 * Dk], dP[..., 2 * Dk : 2 * Dk + D], None]
        if self.u is not None:
            parts[3] = dP[..., 2 * Dk + D] if self.gate == "scalar" else dP[..., 2 * Dk + D :]
        try:
            self.vjp(dO, out=parts)
        except ValueError as exc:  # dO is finite: only an overflow gets here
            raise _Overflow(f"params, Z: {exc}") from None
        if self.u is not None:
            parts[3] *= _sigmoid_neg(self.u, self.L)  # d log g -> du
        return _param_grads(dP, self.Z, self.W, self.p, self.gate, ["W_q", "W_k", "W_v"], need_dZ)


def _param_grads(dP, Z, W, p, gate, names, need_dZ):
    """Weight gradients of ``P = Z Wᵀ`` split back into ``names`` (+ the gate weights and
    bias), and the input path ``dZ = dP W`` (None unless ``need_dZ``)."""
    dW = _wgrad(dP, Z)
    g, r = {}, 0
    for name in names:
        n = p[name].shape[0]
        g[name] = dW[r : r + n]
        r += n
    if gate == "scalar":
        g["w_g"] = dW[r]
        g["b_g"] = np.array(dP[..., r].sum())
    elif gate == "key":
        g["W_g"] = dW[r:]
        g["b_g"] = dP[..., r:].sum(axis=(0, 1))
    return g, (tokens_matmul(dP, W) if need_dZ else None)


def forward(params, spec: GLASpec, Z, *, return_all: bool = False):
    """Residual forward pass with the chunked engine: ``Z_L: (N, T, D)`` (or ``[Z_0..Z_L]``),
    every token of every layer (use :func:`predict` when only the query's label is needed)."""
    params = check_params(params, spec)
    Z = _check_tokens(Z, spec)
    out = [Z]
    for p in params["layers"]:
        out.append(out[-1] + _Layer(out[-1], p, spec.gate, grad=False).O)
    return out if return_all else out[-1]


def predict(params, spec: GLASpec, Z) -> np.ndarray:
    """``ŷ = Z_L[:, T-1, label_index]``, shape ``(N,)``.

    The first ``L-1`` layers run the chunked engine on every token (their outputs feed the
    next layer); the last layer only reads out the query, by the closed form of
    :func:`_last_layer` (``O(N·T·Dk)``, no state).  Equals ``forward(...)[:, -1, label_index]``
    to rounding.

    >>> spec = GLASpec(D=3, Dk=2, num_layers=2)
    >>> Z = np.random.default_rng(0).normal(size=(4, 5, 3)); Z[:, -1, -1] = 0.0
    >>> params = init_params(spec, 0)
    >>> bool(np.allclose(predict(params, spec, Z), forward(params, spec, Z)[:, -1, -1], rtol=1e-12))
    True
    """
    params = check_params(params, spec)
    Z = _check_tokens(Z, spec)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
        for p in params["layers"][:-1]:
            Z = Z + _Layer(Z, p, spec.gate, grad=False).O
        yhat = Z[:, -1, spec.label_index] + _last_layer(Z, params["layers"][-1], spec)[0]
    return _check_prediction(yhat, Z)


def _check_prediction(yhat, Z):
    if not np.all(np.isfinite(yhat)):
        raise _Overflow(
            f"params, Z: the prediction overflows float64 (max |Z| = {np.max(np.abs(Z)):.3g}); "
            "the weights or tokens are too large"
        )
    return yhat


def mse(params, spec: GLASpec, Z, y_query) -> float:
    """``(1/N) Σ (ŷ − y_query)²`` with :func:`predict` (no gradient)."""
    yhat = predict(params, spec, Z)
    y = _check_targets(y_query, yhat.shape[0])
    return float(np.mean((yhat - y) ** 2))


# --------------------------------------------------------------------------- backward pieces


def _suffix_log_decay(lg: np.ndarray) -> np.ndarray:
    """``s_t = Σ_{r=t+1}^{T-1} lg_r`` along axis 1 (so ``exp(s_t) = Π_{r>t} g_r``, ``s_{T-1} = 0``),
    a reverse running sum (:func:`numerics.gla.suffix_log_decay`), not ``c_{T-1} − c_t``."""
    return gla.suffix_log_decay(lg)[0]


def _log_sigmoid_parts(u):
    """``(log_sigmoid(u), L)`` with ``L = log1p(exp(-|u|))``, kept for :func:`_sigmoid_neg`."""
    L = np.log1p(np.exp(-np.abs(u)))
    return np.minimum(u, 0.0) - L, L


def _sigmoid_neg(u, L):
    """``sigmoid(-u) = d log_sigmoid(u) / du = exp(min(-u, 0) - L)`` in log space (no overflow,
    no cancellation for ``u`` near ``±∞``), reusing ``L`` of :func:`_log_sigmoid_parts`."""
    return np.exp(np.minimum(-u, 0.0) - L)


def _excl_cumsum_tokens(x):
    """``out_t = Σ_{s<t} x_s`` along axis 1 of ``(N, T)`` or ``(N, T, Dk)``; for the latter one
    vector add per token (``np.cumsum`` along a middle axis runs ``N·Dk`` strided loops)."""
    out = np.empty_like(x)
    out[:, 0] = 0.0
    if x.ndim == 2 or x.shape[0] * x.shape[2] < 64:
        np.cumsum(x[:, :-1], axis=1, out=out[:, 1:])
        return out
    for t in range(1, x.shape[1]):
        np.add(out[:, t - 1], x[:, t - 1], out=out[:, t])
    return out


def _last_layer(Z, p, spec):
    """Closed-form query output of the last layer and what its backward needs.

    ``ŷ_contrib = e_labᵀ o_{T-1} = q_{T-1} · Σ_t a_t (k_t ⊙ e_t)`` with ``a_t = (W_v z_t)_lab``
    and ``e_t = exp(s_t)`` the decay from token ``t`` to the query (query gate included);
    ``e: (N, T)`` for scalar/no gates, ``(N, T, Dk)`` for key gates.  Scalar and no gates
    never form the keys: ``k_t · q_{T-1} = z_t · (W_kᵀ q_{T-1})``, so ``a``, the scores and
    the gate logits are one per-prompt product ``Z M_n`` with ``M_n: (D, 3)``.
    """
    lab = spec.label_index
    N, _, D = Z.shape
    qT = Z[:, -1] @ p["W_q"].T  # (N, Dk)
    if spec.gate == "key":
        Dk = p["W_k"].shape[0]
        W = np.concatenate([p["W_k"], p["W_v"][lab][None, :], p["W_g"]], axis=0)
        P = tokens_matmul(Z, W.T)  # (N, T, 2 Dk + 1)
        k, a = P[..., :Dk], P[..., Dk]
        u = P[..., Dk + 1 :] + p["b_g"]
        lg, L = _log_sigmoid_parts(u)
        e = np.exp(_suffix_log_decay(lg))  # (N, T, Dk)
        ke = k * e
        out = np.einsum("nt,ntk,nk->n", a, ke, qT)
        return out, dict(qT=qT, k=k, ke=ke, a=a, u=u, L=L, e=e, W=W)
    gated = spec.gate == "scalar"
    M = np.empty((N, D, 3 if gated else 2))
    M[:, :, 0] = p["W_v"][lab]
    M[:, :, 1] = qT @ p["W_k"]  # r_n = W_kᵀ q_{T-1}
    if gated:
        M[:, :, 2] = p["w_g"]
    P = np.matmul(Z, M)  # (N, T, 2|3)
    a, kq = P[..., 0], P[..., 1]  # kq_t = k_t · q_{T-1}
    u = L = None
    if gated:
        u = P[..., 2] + p["b_g"]
        lg, L = _log_sigmoid_parts(u)
        e = np.exp(_suffix_log_decay(lg))
        out = np.einsum("nt,nt,nt->n", a, e, kq)
    else:
        e = None
        out = np.einsum("nt,nt->n", a, kq)
    return out, dict(qT=qT, a=a, kq=kq, u=u, L=L, e=e, M=M)


def _last_layer_backward(Z, p, spec, cache, dy, need_dZ=True):
    """Gradients of ``Σ_n dy_n · ŷ_contrib,n`` for the last layer; returns (grads, dZ).

    ``need_dZ=False`` skips the input gradient (``dZ = None``): a one-layer model does not
    need it for its parameter gradients.  With ``e_t = exp(s_t)``, ``s_t = Σ_{r>t} log g_r``,
    ``d log g_r = Σ_{t<r} ds_t`` (an exclusive running sum over tokens) with
    ``ds_t = e_t ∂/∂e_t``."""
    if spec.gate == "key":
        return _last_layer_backward_key(Z, p, spec, cache, dy, need_dZ)
    lab = spec.label_index
    qT, a, kq, u, L, e = (cache[key] for key in ("qT", "a", "kq", "u", "L", "e"))
    gated = u is not None
    dp = dy[:, None] * qT  # ∂/∂(Σ_t a_t k_t e_t), (N, Dk)
    kdp = dy[:, None] * kq  # k_t · dp
    N, T, D = Z.shape
    coef = np.empty((N, T, 3 if gated else 2))  # per-token coefficients of z_t
    if gated:
        ae = a * e
        np.multiply(e, kdp, out=coef[..., 0])  # da_t
        coef[..., 1] = ae  # k path: dk_t = ae_t dp
        dlg = _excl_cumsum_tokens(ae * kdp)  # ds_t = ae_t kdp_t
        np.multiply(dlg, _sigmoid_neg(u, L), out=coef[..., 2])  # du_t
    else:
        coef[..., 0] = kdp
        coef[..., 1] = a
    H = np.matmul(coef.transpose(0, 2, 1), Z)  # (N, 2|3, D): Σ_t coef_t z_t
    h = H[:, 1]  # Σ_t ae_t z_t
    g = {"W_q": None, "W_k": dp.T @ h, "W_v": np.zeros_like(p["W_v"])}
    g["W_v"][lab] = H[:, 0].sum(axis=0)
    dqT = dy[:, None] * (h @ p["W_k"].T)  # Σ_t ae_t k_t, times dy
    g["W_q"] = dqT.T @ Z[:, -1]
    if gated:
        g["w_g"] = H[:, 2].sum(axis=0)
        g["b_g"] = np.array(coef[..., 2].sum())
    dZ = None
    if need_dZ:
        M2 = np.empty((N, coef.shape[2], D))
        M2[:, 0] = p["W_v"][lab]
        M2[:, 1] = dp @ p["W_k"]
        if gated:
            M2[:, 2] = p["w_g"]
        dZ = np.matmul(coef, M2)
        dZ[:, -1] += dqT @ p["W_q"]
    return g, dZ


def _last_layer_backward_key(Z, p, spec, cache, dy, need_dZ):
    """Key gates: per-feature decays ``e: (N, T, Dk)``; the token coefficients of
    ``W_k, W_v[lab], W_g`` are written into one buffer and reduced by one batched product."""
    lab = spec.label_index
    qT, k, ke, a, u, L, e, W = (cache[key] for key in ("qT", "k", "ke", "a", "u", "L", "e", "W"))
    N, T, Dk = k.shape
    dp = dy[:, None] * qT
    dP = np.empty((N, T, 2 * Dk + 1))
    ae = a[..., None] * e  # (N, T, Dk)
    dk = np.multiply(ae, dp[:, None, :], out=dP[..., :Dk])
    dqT = dy[:, None] * np.einsum("ntk,ntk->nk", ae, k)
    np.einsum("ntk,nk->nt", ke, dp, out=dP[..., Dk])  # da_t
    dlg = _excl_cumsum_tokens(dk * k)  # ds_t = dk_t ⊙ k_t
    np.multiply(dlg, _sigmoid_neg(u, L), out=dP[..., Dk + 1 :])  # du_t
    dW = _wgrad(dP, Z)
    g = {
        "W_q": dqT.T @ Z[:, -1],
        "W_k": dW[:Dk],
        "W_v": np.zeros_like(p["W_v"]),
        "W_g": dW[Dk + 1 :],
        "b_g": dP[..., Dk + 1 :].sum(axis=(0, 1)),
    }
    g["W_v"][lab] = dW[Dk]
    dZ = None
    if need_dZ:
        dZ = tokens_matmul(dP, W)
        dZ[:, -1] += dqT @ p["W_q"]
    return g, dZ


def _forward_backward(params, spec, Z, dy_fn, need_dZ0=False):
    """Shared forward + backward. ``dy_fn(yhat) -> (value, dyhat)``; returns (value, grads, dZ_0, yhat)
    (``dZ_0`` is None unless ``need_dZ0``).  Inner layers keep their chunked reverse pass
    (forward states reused), the last layer is the closed-form query read-out."""
    N, T, D = Z.shape
    L = spec.num_layers
    C, Tp = None, T
    if L > 1:
        # The inner layers run on tokens padded (once, here) to a whole number of chunks:
        # padded tokens come last and have z = 0, hence q = k = v = 0, so they change no
        # real token's output and stay 0 through every layer, and their gradients are 0.
        C = gla.default_vjp_chunk_size(T, spec.Dk, D)
        Tp = -(-T // C) * C
        if Tp != T:
            Zp = np.zeros((N, Tp, D))
            Zp[:, :T] = Z
            Z = Zp
    Zs, layers = [Z], []
    for p in params["layers"][:-1]:
        layers.append(_Layer(Zs[-1], p, spec.gate, grad=True, chunk_size=C))
        Zs.append(Zs[-1] + layers[-1].O)
    last = params["layers"][-1]
    Zlast = Zs[-1][:, :T]
    contrib, cache = _last_layer(Zlast, last, spec)
    yhat = _check_prediction(Zlast[:, -1, spec.label_index] + contrib, Zlast)
    value, dy = dy_fn(yhat)
    grads = [None] * spec.num_layers
    grads[-1], dZ = _last_layer_backward(Zlast, last, spec, cache, dy, need_dZ=need_dZ0 or L > 1)
    if dZ is not None:
        dZ[:, -1, spec.label_index] += dy  # residual path of the read-out
        if Tp != T:
            dZp = np.zeros((N, Tp, D))
            dZp[:, :T] = dZ
            dZ = dZp
    for l in range(L - 2, -1, -1):
        # Z_{l+1} = Z_l + O_l: dO_l = dZ_{l+1}; dZ_l = dZ_{l+1} + (input path of layer l).
        grads[l], dZl = layers[l].backward(dZ, need_dZ=need_dZ0 or l > 0)
        layers[l] = None  # free its saved states
        if dZl is not None:
            dZ += dZl
    # Same key order as the parameters (callers may flatten both alike).
    grads = [{name: g[name] for name in p} for g, p in zip(grads, params["layers"])]
    return value, {"layers": grads}, (None if dZ is None else dZ[:, :T]), yhat


def loss_and_grad(params, Z, y_query, spec: GLASpec):
    """Mean squared error ``(1/N) Σ (ŷ − y_query)²`` and its exact gradient.

    ``Z: (N, T, D)`` prompt tokens (query last, its label slot 0), ``y_query: (N,)``.
    Returns ``(loss, grads)``; ``grads`` has the structure of ``params`` (all entries, frozen
    or not; :func:`train` applies ``spec.trainable``).  A prediction beyond the float64 range
    raises ``ValueError`` (``params, Z: ...``).

    >>> spec = GLASpec(D=3, Dk=2, num_layers=2, gate="key")
    >>> Z = np.random.default_rng(0).normal(size=(4, 5, 3)); Z[:, -1, -1] = 0.0
    >>> loss, grads = loss_and_grad(init_params(spec, 0), Z, np.zeros(4), spec)
    >>> sorted(grads["layers"][0]), grads["layers"][0]["W_g"].shape
    (['W_g', 'W_k', 'W_q', 'W_v', 'b_g'], (2, 3))
    """
    params = check_params(params, spec)
    Z = _check_tokens(Z, spec)
    y = _check_targets(y_query, Z.shape[0])
    N = Z.shape[0]

    def dy_fn(yhat):
        r = yhat - y
        return float(np.mean(r * r)), (2.0 / N) * r

    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
        loss, grads, _, _ = _forward_backward(params, spec, Z, dy_fn)
    if not all(np.all(np.isfinite(g)) for layer in grads["layers"] for g in layer.values()):
        raise _Overflow(
            f"params, Z: the gradient overflows float64 (max |Z| = {np.max(np.abs(Z)):.3g}); "
            "the weights or tokens are too large"
        )
    return loss, grads


def input_gradient(params, spec: GLASpec, Z) -> tuple[np.ndarray, np.ndarray]:
    """``(ŷ, ∂ŷ_n/∂Z_n)``: per-prompt gradient of the prediction wrt all its tokens, ``(N, T, D)``."""
    params = check_params(params, spec)
    Z = _check_tokens(Z, spec)
    _, _, dZ, yhat = _forward_backward(
        params, spec, Z, lambda yh: (0.0, np.ones_like(yh)), need_dZ0=True
    )
    return yhat, dZ


def predictor_gradient(params, spec: GLASpec, Z, d: int | None = None) -> np.ndarray:
    """``∂ŷ/∂x_query``: the gradient of each prompt's prediction wrt its query features.

    Features are coordinates ``0..d-1`` of the query token (docs/conventions.md); with
    ``d=None`` all coordinates except ``label_index`` (in order). Returns ``(N, d)``.
    Computed by the hand-written backward (every path, including through the gates: the
    query's own gate multiplies every weight, so gate-dependence on ``x`` contributes).
    For the WPGD predictor ``ŷ = xᵀ P Xᵀ(ω ⊙ y)`` with ``x``-independent ``ω`` this equals
    ``P Xᵀ(ω ⊙ y)``.
    """
    _, dZ = input_gradient(params, spec, Z)
    if d is None:
        cols = [i for i in range(spec.D) if i != spec.label_index]
    else:
        if not isinstance(d, (int, np.integer)) or not 1 <= d <= spec.D or spec.label_index < d:
            raise ValueError(
                f"d: must be an integer in [1, {spec.label_index}] (features precede the label), got {d!r}"
            )
        cols = list(range(d))
    return dZ[:, -1, cols].copy()


# --------------------------------------------------------------------------- reading the model


@dataclass
class WPGDReadout:
    """The WPGD reading of a one-layer model (see :func:`effective_wpgd`).

    P : (d, d) effective preconditioner ``W_v[lab, lab] · W_q[:, x]ᵀ W_k[:, x]``.
    omega : per-prompt weights, ``(N, T-1)`` (scalar/none) or ``(N, T-1, Dk)`` (key, key axis).
    omega_mean, omega_std : mean and standard deviation of ``omega`` across prompts.
    yhat : (N,) the model's prediction; yhat_wpgd : (N,) the WPGD part alone.
    other_rel : ``||ŷ − ŷ_wpgd|| / ||ŷ||`` over the batch (size of all other terms).
    """

    P: np.ndarray
    omega: np.ndarray
    omega_mean: np.ndarray
    omega_std: np.ndarray
    yhat: np.ndarray
    yhat_wpgd: np.ndarray
    other_rel: float

    def scaled(self) -> tuple[np.ndarray, np.ndarray]:
        """``(P·m, omega_mean/m)`` with ``m = mean(omega_mean)``: the scale-invariant pair
        (``(P, ω) → (P/s, sω)`` leaves the predictor unchanged), normalised so mean ω = 1."""
        m = float(np.mean(self.omega_mean))
        return self.P * m, self.omega_mean / m


def effective_wpgd(params, spec: GLASpec, d: int, Z) -> WPGDReadout:
    """Read a one-layer model as one WPGD step: ``ŷ ≈ xᵀ P_eff Σ_i ω_i y_i x_i``.

    Tokens ``z_t = [x_t; y_t; extras]`` with features in coordinates ``0..d-1`` and the label at
    ``spec.label_index``. Writing ``q_{T-1} = W_q z_{T-1}``, ``k_t = W_k z_t``,
    ``(v_t)_lab = W_v[lab] · z_t``, the label coordinate of the query output is
    ``Σ_t ω_t (W_v[lab]·z_t) (k_t·q_{T-1})`` (every token, incl. the query itself). The WPGD
    term keeps only ``W_v[lab,lab] y_t`` in the value and the feature blocks in ``q`` and
    ``k``, summed over the example positions ``t < T-1``:
    ``ŷ_wpgd = Σ_t ω_t y_t xᵀ P_eff x_t``, ``P_eff = W_v[lab,lab] W_q[:, :d]ᵀ W_k[:, :d]``.
    ``ω_t = Π_{r=t+1}^{T-1} g_r`` (gates of all later tokens, the query's own gate included),
    evaluated per prompt on ``Z`` (gates depend on tokens). For key gates the weights live on
    the key axis, ``ŷ_wpgd = W_v[lab,lab] Σ_t y_t Σ_j (W_q[:, :d] x)_j (W_k[:, :d] x_t)_j Ω_tj``,
    and ``P_eff`` is the preconditioner when ``Ω`` is constant over ``j``.
    Every token position before the query counts (delimiter tokens included: their ``y`` slot
    is whatever the prompt holds, usually 0).
    """
    if spec.num_layers != 1:
        raise ValueError(
            f"spec: effective_wpgd needs a one-layer model, got num_layers={spec.num_layers}"
        )
    if not isinstance(d, (int, np.integer)) or not 1 <= d <= spec.label_index:
        raise ValueError(
            f"d: must be an integer in [1, {spec.label_index}] (features precede the label), got {d!r}"
        )
    params = check_params(params, spec)
    Z = _check_tokens(Z, spec)
    if Z.shape[1] < 2:
        raise ValueError(
            f"Z: needs at least one example token before the query, got T={Z.shape[1]}"
        )
    p = params["layers"][0]
    lab = spec.label_index
    Qx, Kx, vy = p["W_q"][:, :d], p["W_k"][:, :d], p["W_v"][lab, lab]
    P = vy * (Qx.T @ Kx)
    u = _gate_logits(Z, p, spec.gate)
    if u is None:
        omega = np.ones(Z.shape[:2])[:, :-1]
    else:
        omega = np.exp(_suffix_log_decay(log_sigmoid(u)))[:, :-1]
    X, y, x = Z[:, :-1, :d], Z[:, :-1, lab], Z[:, -1, :d]
    if spec.gate == "key":
        qx = x @ Qx.T  # (N, Dk)
        kx = X @ Kx.T  # (N, T-1, Dk)
        yhat_wpgd = vy * np.einsum("nt,nk,ntk,ntk->n", y, qx, kx, omega)
    else:
        h = np.einsum("nt,nt,ntd->nd", omega, y, X)  # Xᵀ(ω ⊙ y)
        yhat_wpgd = np.einsum("nd,de,ne->n", x, P, h)
    yhat = predict(params, spec, Z)
    other = float(np.linalg.norm(yhat - yhat_wpgd) / max(float(np.linalg.norm(yhat)), 1e-300))
    return WPGDReadout(
        P=P,
        omega=omega,
        omega_mean=omega.mean(axis=0),
        omega_std=omega.std(axis=0),
        yhat=yhat,
        yhat_wpgd=yhat_wpgd,
        other_rel=other,
    )


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    params : final parameters.  step : (steps,) 1-based step numbers.
    loss : (steps,) training MSE of the fresh batch at each step (before that step's update).
    eval_step, eval_loss : steps at which the fixed evaluation set was scored (after the
        update of that step; step 0 = initial parameters) and the MSE there.
    seconds : wall time of the loop.
    """

    params: dict
    spec: GLASpec
    step: np.ndarray
    loss: np.ndarray
    eval_step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    eval_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0

    @property
    def final_eval_loss(self) -> float | None:
        return float(self.eval_loss[-1]) if self.eval_loss.size else None

    def curve_csv(self, path=None) -> str:
        """The curve as CSV ``step,train_loss,eval_loss`` (empty eval field when not evaluated);
        step-0 evaluation appears with an empty train field. Written to ``path`` if given."""
        ev = dict(zip(self.eval_step.tolist(), self.eval_loss.tolist()))
        lines = ["step,train_loss,eval_loss"]
        if 0 in ev:
            lines.append(f"0,,{ev[0]!r}")
        for s, l in zip(self.step.tolist(), self.loss.tolist()):
            lines.append(f"{s},{l!r}," + (repr(ev[s]) if s in ev else ""))
        text = "\n".join(lines) + "\n"
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text)
        return text


def _lr_factor(schedule, step: int, steps: int) -> float:
    if schedule is None or schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps))
    if schedule == "linear":
        return 1.0 - (step - 1) / steps
    return float(schedule(step))


def default_printer(
    total_steps: int | None = None, stream=None, every_seconds: float = 2.0
) -> Callable[[int, float, float], None]:
    """A progress callback printing ``step, loss, ETA`` at most every ``every_seconds`` (and at
    the first step and at ``total_steps``) to ``stream`` (standard error by default)."""
    state = {"last": -math.inf}

    def printer(step: int, loss: float, eta: float):
        now = time.perf_counter()
        if step == 1 or step == total_steps or now - state["last"] >= every_seconds:
            state["last"] = now
            print(
                f"step {step:6d}  loss {loss:.5g}  eta {eta:6.1f}s",
                file=stream or sys.stderr,
                flush=True,
            )

    return printer


def train(
    spec: GLASpec,
    sample_batch: Callable,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    init: dict | None = None,
    schedule=None,
    progress=None,
    eval_every: int = 0,
    eval_size: int = 4096,
    eval_batch=None,
    on_eval: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Adam on fresh prompts every step.

    sample_batch : ``sample_batch(rng, batch_size) -> (Z, y_query)`` with ``Z: (B, T, D)``.
    steps, batch_size : number of Adam steps, prompts per step.
    lr : base learning rate; ``schedule`` None/"constant" | "cosine" | "linear" (decay to 0)
        | callable ``step -> factor`` (1-based step) multiplies it.
    seed : fixes everything. Initial parameters ``init_params(spec, seed)`` (unless ``init``),
        training prompts from ``default_rng([seed, 1])``, the evaluation set from
        ``default_rng([seed, 2])``: the same seed gives the same curve, bit for bit.
    progress : ``None`` -> :func:`default_printer`; ``False`` -> silent; or a callable
        ``(step, loss, eta_seconds)``.
    eval_every : score a fixed evaluation set (``eval_batch = (Z, y_query)`` or ``eval_size``
        fresh prompts) at step 0, every ``eval_every`` steps and at the last step; 0 = never.
    on_eval : called as ``on_eval(step, params)`` at each of those evaluation steps, with the
        current parameters (read them, do not modify them), e.g. to record an exact risk.
    Frozen entries (``spec.trainable``) are never updated.
    """
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    if not isinstance(eval_every, (int, np.integer)) or eval_every < 0:
        raise ValueError(f"eval_every: must be a non-negative integer, got {eval_every!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: must be finite and > 0, got {lr!r}")
    if not (schedule is None or callable(schedule) or schedule in SCHEDULES):
        raise ValueError(
            f"schedule: must be None, one of {SCHEDULES} or a callable, got {schedule!r}"
        )
    if not callable(sample_batch):
        raise ValueError("sample_batch: must be callable (rng, batch_size) -> (Z, y_query)")
    if on_eval is not None and not callable(on_eval):
        raise ValueError(f"on_eval: must be None or a callable (step, params), got {on_eval!r}")
    seed = _check_seed(seed)
    if progress is None:
        progress = default_printer(steps)
    elif progress is not False and not callable(progress):
        raise ValueError(f"progress: must be None, False or a callable, got {progress!r}")
    params = init_params(spec, seed) if init is None else check_params(init, spec)
    params = {
        "layers": [
            {k: np.array(v, dtype=np.float64) for k, v in p.items()} for p in params["layers"]
        ]
    }
    masks = spec.trainable
    rng = np.random.default_rng([seed, 1])
    if eval_every:
        if eval_batch is None:
            if not isinstance(eval_size, (int, np.integer)) or eval_size < 1:
                raise ValueError(f"eval_size: must be a positive integer, got {eval_size!r}")
            eval_batch = sample_batch(np.random.default_rng([seed, 2]), int(eval_size))
        Ze = _check_tokens(eval_batch[0], spec, "eval_batch")
        ye = _check_targets(eval_batch[1], Ze.shape[0])
    m = [{k: np.zeros_like(v) for k, v in p.items()} for p in params["layers"]]
    v2 = [{k: np.zeros_like(v) for k, v in p.items()} for p in params["layers"]]
    losses = np.empty(steps)
    ev_steps, ev_losses = [], []
    if eval_every:
        ev_steps.append(0)
        ev_losses.append(mse(params, spec, Ze, ye))
        if on_eval is not None:
            on_eval(0, params)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        Z, y = sample_batch(rng, batch_size)
        try:
            loss, grads = loss_and_grad(params, Z, y, spec)
        except _Overflow as exc:
            raise FloatingPointError(
                f"training diverged at step {step} ({exc}); lower lr"
            ) from None
        if not np.isfinite(loss):
            raise FloatingPointError(f"training diverged at step {step} (loss {loss}); lower lr")
        losses[step - 1] = loss
        lr_t = lr * _lr_factor(schedule, step, steps)
        bc1 = 1.0 - ADAM_BETA1**step
        bc2 = 1.0 - ADAM_BETA2**step
        for l, p in enumerate(params["layers"]):
            for k in p:
                gk = grads["layers"][l][k]
                if masks is not None:
                    gk = np.where(masks[l][k], gk, 0.0)
                m[l][k] = ADAM_BETA1 * m[l][k] + (1 - ADAM_BETA1) * gk
                v2[l][k] = ADAM_BETA2 * v2[l][k] + (1 - ADAM_BETA2) * gk * gk
                upd = lr_t * (m[l][k] / bc1) / (np.sqrt(v2[l][k] / bc2) + ADAM_EPS)
                if masks is not None:
                    upd = np.where(masks[l][k], upd, 0.0)
                p[k] = p[k] - upd
        if eval_every and (step % eval_every == 0 or step == steps):
            ev_steps.append(step)
            ev_losses.append(mse(params, spec, Ze, ye))
            if on_eval is not None:
                on_eval(step, params)
        if progress is not False:
            elapsed = time.perf_counter() - t0
            eta = elapsed / step * (steps - step)
            progress(step, loss, eta)
    return TrainResult(
        params=params,
        spec=spec,
        step=np.arange(1, steps + 1),
        loss=losses,
        eval_step=np.array(ev_steps, dtype=int),
        eval_loss=np.array(ev_losses),
        seconds=time.perf_counter() - t0,
    )
