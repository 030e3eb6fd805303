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

Gradients (no autodiff library, :mod:`numerics._train_passes`): each layer runs only along
what the layers above it read.  The last layer influences ``ŷ`` only through the query's
output, so its forward and backward are a closed form over tokens (``O(N T Dk)``, also used
by :func:`predict`).  For scalar and no gates the last layer reads every other token only
along three per-prompt directions, so the layer below it runs the chunked engine on values
projected onto them (3 columns instead of ``D``) and its reverse pass on a gradient of the
same width (plus a closed form for the query token).  Layers run in a dense factorised form
for prompts of at most 256 tokens with moderate total decay (the decayed scores of a prompt
are one product ``tril((Q ⊙ e^c)(K ⊙ e^-c)ᵀ)``, ``c`` the running sums of the log-gates), and
otherwise the chunked engine with its reverse pass
(:func:`numerics.gla.gla_chunked_vjp`: chunk states kept from
the forward, reverse state scan ``dS_m = Q̃_mᵀ dO_m + γ_m ⊙ dS_{m+1}`` over chunks, gate
gradients in log-gate space from the pairs of tokens each gate separates); then everything
is chained to the weights and to the layer input (including the path through the gate) and
back through the residual stream.  Each layer's projections ``q, k, v, u`` are one matmul,
and so are their weight and input gradients.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
from numpy.typing import ArrayLike

from ._heap import keep_heap
from ._train_passes import (
    _gate_logits,
    _last_layer,  # noqa: F401  (the one-layer read-out, used by proofs_check.experiments)
    _Layer,
    _Overflow,
    _suffix_log_decay,
    forward_backward,
    predict_layers,
)
from ._validate import as_float_array

__all__ = [
    "ADAM_BETA1",
    "ADAM_BETA2",
    "ADAM_EPS",
    "GATE_KINDS",
    "GLASpec",
    "Params",
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
    "train_shared",
    "wpgd_mask",
]

GATE_KINDS = ("scalar", "key", "none")
SCHEDULES = ("constant", "cosine", "linear")

#: Model parameters (and their gradients): ``{"layers": [layer_0, ..., layer_{L-1}]}``, each
#: layer a dict name -> float64 array (:meth:`GLASpec.param_shapes`).
Params = dict[str, list[dict[str, np.ndarray]]]
#: A learning-rate schedule: a name from :data:`SCHEDULES`, None (constant) or a callable
#: ``step -> factor`` (1-based step).
Schedule = str | Callable[[int], float] | None
#: A progress callback ``(step, loss, eta_seconds)``.
Progress = Callable[[int, float, float], None]

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
    #: On input a dict ``name -> bool | mask | list``; after construction the normalised
    #: per-layer masks (a list of dicts ``name -> bool array``), or None.
    trainable: dict[str, Any] | list[dict[str, np.ndarray]] | None = None

    def __post_init__(self) -> None:
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


def _real(name: str, value: object) -> float:
    """``value`` as a float; ``TypeError`` naming the argument for anything that is not a
    real number (strings, complex numbers, arrays, bools)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def _check_seed(seed: object) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    return int(seed)


def _normalise_trainable(trainable: object, spec: GLASpec) -> list[dict[str, np.ndarray]]:
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
        for l, entry_l in enumerate(per_layer):
            m = np.asarray(entry_l)
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


def _masks(spec: GLASpec) -> list[dict[str, np.ndarray]] | None:
    """The per-layer masks of ``spec.trainable`` (normalised by :class:`GLASpec`), or None."""
    t = spec.trainable
    return t if isinstance(t, list) else None


def init_params(spec: GLASpec, seed: int, *, zero_frozen: bool = False) -> Params:
    """Random initial parameters from ``np.random.default_rng(seed)``.

    Projections ``N(0, init_scale²/D)``; gate weights ``N(0, gate_weight_scale²/D)``; gate
    biases ``logit(init_gate)``. ``zero_frozen=True`` sets entries frozen by
    ``spec.trainable`` to 0 (except gate biases, which keep their initial value).
    """
    rng = np.random.default_rng(_check_seed(seed))
    std = spec.init_scale / math.sqrt(spec.D)
    gstd = spec.gate_weight_scale / math.sqrt(spec.D)
    bias = math.log(spec.init_gate) - math.log1p(-spec.init_gate)
    masks = _masks(spec)
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
        if zero_frozen and masks is not None:
            for name, m in masks[l].items():
                if name != "b_g":
                    p[name] = np.where(m, p[name], 0.0)
        layers.append(p)
    return {"layers": layers}


def check_params(params: object, spec: GLASpec) -> Params:
    """Validate the structure, shapes and finiteness of ``params``; returns float64 arrays
    (the given arrays themselves where they already are float64)."""
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
        q: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            a = as_float_array(p[name], f"params: layer {l} {name}")
            if a.shape != shape:
                raise ValueError(f"params: layer {l} {name} must have shape {shape}, got {a.shape}")
            q[name] = a
        out.append(q)
    return {"layers": out}


def _check_tokens(Z_in: ArrayLike, spec: GLASpec, name: str = "Z") -> np.ndarray:
    Z = as_float_array(Z_in, name, ndim=3)
    if Z.shape[2] != spec.D:
        raise ValueError(f"{name}: token width {Z.shape[2]} does not match spec.D = {spec.D}")
    if Z.shape[0] < 1 or Z.shape[1] < 1:
        raise ValueError(f"{name}: needs at least one prompt and one token, got shape {Z.shape}")
    if np.any(Z[:, -1, spec.label_index] != 0):
        raise ValueError(
            f"{name}: the query token's label slot (index {spec.label_index}) must be 0"
        )
    return Z


def _check_targets(y_query: ArrayLike, N: int) -> np.ndarray:
    y = as_float_array(y_query, "y_query", ndim=1)
    if y.shape != (N,):
        raise ValueError(f"y_query: expected shape {(N,)}, got {y.shape}")
    return y


# --------------------------------------------------------------------------- forward pieces


def log_sigmoid(u: ArrayLike) -> np.ndarray:
    """``log sigmoid(u) = -logaddexp(0, -u)``, evaluated as ``min(u, 0) − log1p(exp(−|u|))``.

    Same value as ``-np.logaddexp(0, -u)`` (to rounding) but ~3x faster; ``exp`` never
    overflows (its argument is <= 0), no cancellation, and the result is always ``<= 0``.
    """
    a = np.asarray(u, dtype=np.float64)
    return np.minimum(a, 0.0) - np.log1p(np.exp(-np.abs(a)))


def layer_log_gates(params: Params, spec: GLASpec, Z: ArrayLike, layer: int = 0) -> np.ndarray:
    """Log-gates of layer ``layer`` evaluated on that layer's input tokens ``Z``.

    Returns ``(N, T)`` for scalar gates and for ``gate="none"`` (zeros), ``(N, T, Dk)`` for
    key gates. Only meaningful for ``layer = 0`` when ``Z`` are the prompt tokens; use
    :func:`forward` to get the inputs of deeper layers.
    """
    checked = check_params(params, spec)
    Za = as_float_array(Z, "Z", ndim=3)
    if Za.shape[2] != spec.D:
        raise ValueError(f"Z: token width {Za.shape[2]} does not match spec.D = {spec.D}")
    if not 0 <= layer < spec.num_layers:
        raise ValueError(f"layer: must be in [0, {spec.num_layers}), got {layer!r}")
    u = _gate_logits(Za, checked["layers"][layer], spec.gate)
    return np.zeros(Za.shape[:2]) if u is None else log_sigmoid(u)


def forward(
    params: Params, spec: GLASpec, Z: ArrayLike, *, return_all: bool = False
) -> np.ndarray | list[np.ndarray]:
    """Residual forward pass: ``Z_L: (N, T, D)`` (or ``[Z_0..Z_L]``), every token of every
    layer (the dense form for short prompts, else the chunked engine; see the module
    docstring).  Use :func:`predict` when only the query's label is needed."""
    checked = check_params(params, spec)
    out = [_check_tokens(Z, spec)]
    for p in checked["layers"]:
        out.append(out[-1] + _Layer(out[-1], p, spec.gate, grad=False).O)
    return out if return_all else out[-1]


def predict(params: Params, spec: GLASpec, Z: ArrayLike) -> np.ndarray:
    """``ŷ = Z_L[:, T-1, label_index]``, shape ``(N,)``.

    The last layer only reads out the query, by a closed form over tokens (``O(N·T·Dk)``,
    no state); for scalar and no gates the layer below it runs only along the three
    directions the last layer reads, every other layer on every token (module docstring).
    Equals ``forward(...)[:, -1, label_index]`` to rounding.

    >>> spec = GLASpec(D=3, Dk=2, num_layers=2)
    >>> Z = np.random.default_rng(0).normal(size=(4, 5, 3)); Z[:, -1, -1] = 0.0
    >>> params = init_params(spec, 0)
    >>> bool(np.allclose(predict(params, spec, Z), forward(params, spec, Z)[:, -1, -1], rtol=1e-12))
    True
    """
    checked = check_params(params, spec)
    Za = _check_tokens(Z, spec)
    keep_heap()  # see numerics._heap
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
        return predict_layers(checked["layers"], spec.gate, spec.label_index, Za)


def mse(params: Params, spec: GLASpec, Z: ArrayLike, y_query: ArrayLike) -> float:
    """``(1/N) Σ (ŷ − y_query)²`` with :func:`predict` (no gradient)."""
    yhat = predict(params, spec, Z)
    y = _check_targets(y_query, yhat.shape[0])
    return float(np.mean((yhat - y) ** 2))


# --------------------------------------------------------------------------- gradients


def _forward_backward(
    params: Params,
    spec: GLASpec,
    Z: np.ndarray,
    dy_fn: Callable[[np.ndarray], tuple[float, np.ndarray]],
    need_dZ0: bool = False,
) -> tuple[float, Params, np.ndarray | None, np.ndarray]:
    """:func:`numerics._train_passes.forward_backward` on validated ``params``; the gradients
    in the structure (and key order) of ``params``: callers may flatten both alike."""
    keep_heap()  # see numerics._heap
    value, grads, dZ, yhat = forward_backward(
        params["layers"], spec.gate, spec.label_index, Z, dy_fn, need_dZ0
    )
    ordered = [{name: g[name] for name in p} for g, p in zip(grads, params["layers"])]
    return value, {"layers": ordered}, dZ, yhat


def loss_and_grad(
    params: Params, Z: ArrayLike, y_query: ArrayLike, spec: GLASpec
) -> tuple[float, Params]:
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
    checked = check_params(params, spec)
    Za = _check_tokens(Z, spec)
    return _loss_and_grad(checked, Za, _check_targets(y_query, Za.shape[0]), spec)


def _loss_and_grad(
    checked: Params, Za: np.ndarray, y: np.ndarray, spec: GLASpec
) -> tuple[float, Params]:
    """:func:`loss_and_grad` on validated arguments (``check_params``, ``_check_tokens``,
    ``_check_targets``): what :func:`train_shared` calls on the parameters it owns and a
    batch it validated once for every model."""
    N = Za.shape[0]

    def dy_fn(yhat: np.ndarray) -> tuple[float, np.ndarray]:
        r = yhat - y
        return float(np.mean(r * r)), (2.0 / N) * r

    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
        loss, grads, _, _ = _forward_backward(checked, spec, Za, dy_fn)
    if not all(np.all(np.isfinite(g)) for layer in grads["layers"] for g in layer.values()):
        raise _Overflow(
            f"params, Z: the gradient overflows float64 (max |Z| = {np.max(np.abs(Za)):.3g}); "
            "the weights or tokens are too large"
        )
    return loss, grads


def input_gradient(params: Params, spec: GLASpec, Z: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(ŷ, ∂ŷ_n/∂Z_n)``: per-prompt gradient of the prediction wrt all its tokens, ``(N, T, D)``."""
    checked = check_params(params, spec)
    Za = _check_tokens(Z, spec)
    _, _, dZ, yhat = _forward_backward(
        checked, spec, Za, lambda yh: (0.0, np.ones_like(yh)), need_dZ0=True
    )
    assert dZ is not None  # need_dZ0
    return yhat, dZ


def predictor_gradient(
    params: Params, spec: GLASpec, Z: ArrayLike, d: int | None = None
) -> np.ndarray:
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


def effective_wpgd(params: Params, spec: GLASpec, d: int, Z: ArrayLike) -> WPGDReadout:
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
    checked = check_params(params, spec)
    Za = _check_tokens(Z, spec)
    if Za.shape[1] < 2:
        raise ValueError(
            f"Z: needs at least one example token before the query, got T={Za.shape[1]}"
        )
    p = checked["layers"][0]
    lab = spec.label_index
    Qx, Kx, vy = p["W_q"][:, :d], p["W_k"][:, :d], p["W_v"][lab, lab]
    P = vy * (Qx.T @ Kx)
    u = _gate_logits(Za, p, spec.gate)
    if u is None:
        omega = np.ones(Za.shape[:2])[:, :-1]
    else:
        omega = np.exp(_suffix_log_decay(log_sigmoid(u)))[:, :-1]
    X, y, x = Za[:, :-1, :d], Za[:, :-1, lab], Za[:, -1, :d]
    if spec.gate == "key":
        qx = x @ Qx.T  # (N, Dk)
        kx = X @ Kx.T  # (N, T-1, Dk)
        yhat_wpgd = vy * np.einsum("nt,nk,ntk,ntk->n", y, qx, kx, omega)
    else:
        h = np.einsum("nt,nt,ntd->nd", omega, y, X)  # Xᵀ(ω ⊙ y)
        yhat_wpgd = np.einsum("nd,de,ne->n", x, P, h)
    yhat = predict(checked, spec, Za)
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
    """Outcome of :func:`train` (or one model's of :func:`train_shared`).

    params : final parameters.  step : (steps,) 1-based step numbers.
    loss : (steps,) training MSE of the fresh batch at each step (before that step's update).
    eval_step, eval_loss : steps at which the fixed evaluation set was scored (after the
        update of that step; step 0 = initial parameters) and the MSE there.
    seconds : wall time of this model's steps and evaluations, plus its share of the sampling
        (all of it for :func:`train`).
    """

    params: Params
    spec: GLASpec
    step: np.ndarray
    loss: np.ndarray
    eval_step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    eval_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0

    @property
    def final_eval_loss(self) -> float | None:
        return float(self.eval_loss[-1]) if self.eval_loss.size else None

    def curve_csv(self, path: str | os.PathLike[str] | None = None) -> str:
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


def _lr_factor(schedule: Schedule, step: int, steps: int) -> float:
    if schedule is None or schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps))
    if schedule == "linear":
        return 1.0 - (step - 1) / steps
    assert callable(schedule)  # validated by train()
    return float(schedule(step))


def default_printer(
    total_steps: int | None = None, stream: TextIO | None = None, every_seconds: float = 2.0
) -> Progress:
    """A progress callback printing ``step, loss, ETA`` at most every ``every_seconds`` (and at
    the first step and at ``total_steps``) to ``stream`` (standard error by default)."""
    state = {"last": -math.inf}

    def printer(step: int, loss: float, eta: float) -> None:
        now = time.perf_counter()
        if step == 1 or step == total_steps or now - state["last"] >= every_seconds:
            state["last"] = now
            print(
                f"step {step:6d}  loss {loss:.5g}  eta {eta:6.1f}s",
                file=stream or sys.stderr,
                flush=True,
            )

    return printer


def _check_train_args(
    steps: object,
    batch_size: object,
    lr: float,
    schedule: object,
    sample_batch: object,
    eval_every: object,
    progress: object,
) -> None:
    """Refuse bad arguments of :func:`train` before any work starts (``ValueError`` naming
    the argument)."""
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
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise ValueError(f"progress: must be None, a bool or a callable, got {progress!r}")


def _eval_set(
    spec: GLASpec,
    sample_batch: Callable[[np.random.Generator, int], tuple[ArrayLike, ArrayLike]],
    seed: int,
    eval_size: object,
    eval_batch: tuple[ArrayLike, ArrayLike] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed evaluation set: ``eval_batch`` or ``eval_size`` prompts from
    ``default_rng([seed, 2])``, validated."""
    if eval_batch is None:
        if not isinstance(eval_size, (int, np.integer)) or eval_size < 1:
            raise ValueError(f"eval_size: must be a positive integer, got {eval_size!r}")
        eval_batch = sample_batch(np.random.default_rng([seed, 2]), int(eval_size))
    Ze = _check_tokens(eval_batch[0], spec, "eval_batch")
    return Ze, _check_targets(eval_batch[1], Ze.shape[0])


class _Adam:
    """Adam (Kingma & Ba) on every array of ``params``, in place; entries frozen by ``masks``
    get neither gradient nor update."""

    def __init__(self, params: Params, masks: list[dict[str, np.ndarray]] | None) -> None:
        self.params, self.masks = params, masks
        self.m = [{k: np.zeros_like(v) for k, v in p.items()} for p in params["layers"]]
        self.v2 = [{k: np.zeros_like(v) for k, v in p.items()} for p in params["layers"]]

    def step(self, grads: Params, lr_t: float, step: int) -> None:
        bc1 = 1.0 - ADAM_BETA1**step
        bc2 = 1.0 - ADAM_BETA2**step
        masks, m, v2 = self.masks, self.m, self.v2
        for l, p in enumerate(self.params["layers"]):
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


def _checked_step(
    params: Params, Z: np.ndarray, y: np.ndarray, spec: GLASpec, step: int
) -> tuple[float, Params]:
    """``loss_and_grad`` of one training step on parameters the loop owns (float64 arrays of
    the spec's shapes) and a validated batch; divergence (a non-finite loss, or an overflow,
    which non-finite parameters also give) is a ``FloatingPointError``."""
    try:
        loss, grads = _loss_and_grad(params, Z, y, spec)
    except _Overflow as exc:
        raise FloatingPointError(f"training diverged at step {step} ({exc}); lower lr") from None
    if not np.isfinite(loss):
        raise FloatingPointError(f"training diverged at step {step} (loss {loss}); lower lr")
    return loss, grads


def train(
    spec: GLASpec,
    sample_batch: Callable[[np.random.Generator, int], tuple[ArrayLike, ArrayLike]],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    init: Params | None = None,
    schedule: Schedule = None,
    progress: Progress | bool | None = None,
    eval_every: int = 0,
    eval_size: int = 4096,
    eval_batch: tuple[ArrayLike, ArrayLike] | None = None,
    on_eval: Callable[[int, Params], None] | None = None,
) -> TrainResult:
    """Adam on fresh prompts every step.

    sample_batch : ``sample_batch(rng, batch_size) -> (Z, y_query)`` with ``Z: (B, T, D)``.
    steps, batch_size : number of Adam steps, prompts per step.
    lr : base learning rate; ``schedule`` None/"constant" | "cosine" | "linear" (decay to 0)
        | callable ``step -> factor`` (1-based step) multiplies it.
    seed : fixes everything. Initial parameters ``init_params(spec, seed)`` (unless ``init``),
        training prompts from ``default_rng([seed, 1])``, the evaluation set from
        ``default_rng([seed, 2])``: the same seed gives the same curve, bit for bit.
    progress : ``None`` or ``True`` -> :func:`default_printer`; ``False`` -> silent; or a
        callable ``(step, loss, eta_seconds)``.
    eval_every : score a fixed evaluation set (``eval_batch = (Z, y_query)`` or ``eval_size``
        fresh prompts) at step 0, every ``eval_every`` steps and at the last step; 0 = never.
    on_eval : called as ``on_eval(step, params)`` at each of those evaluation steps, with the
        current parameters (read them, do not modify them), e.g. to record an exact risk.
    Frozen entries (``spec.trainable``) are never updated.
    """
    if on_eval is not None and not callable(on_eval):
        raise ValueError(f"on_eval: must be None or a callable (step, params), got {on_eval!r}")
    return train_shared(
        [spec],
        sample_batch,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        inits=[init],
        schedule=schedule,
        progress=progress,
        eval_every=eval_every,
        eval_size=eval_size,
        eval_batch=eval_batch,
        on_evals=[on_eval],
    )[0]


def _checked_batch(
    batch: tuple[ArrayLike, ArrayLike], specs: Sequence[GLASpec]
) -> tuple[np.ndarray, np.ndarray]:
    """A training batch ``(Z, y_query)`` validated once for every spec (token width, label slot
    and finiteness, as :func:`loss_and_grad` checks them)."""
    Z = _check_tokens(batch[0], specs[0])
    for spec in {(s.D, s.label_index): s for s in specs[1:]}.values():
        _check_tokens(Z, spec)
    return Z, _check_targets(batch[1], Z.shape[0])


class _Run:
    """One model of :func:`train_shared`: its parameters, Adam state and curves."""

    def __init__(
        self,
        spec: GLASpec,
        init: Params | None,
        seed: int,
        steps: int,
        evalset: tuple[np.ndarray, np.ndarray] | None,
        on_eval: Callable[[int, Params], None] | None,
    ) -> None:
        start = init_params(spec, seed) if init is None else check_params(init, spec)
        self.spec, self.evalset, self.on_eval = spec, evalset, on_eval
        self.params: Params = {
            "layers": [
                {k: np.array(v, dtype=np.float64) for k, v in p.items()} for p in start["layers"]
            ]
        }
        self.adam = _Adam(self.params, _masks(spec))
        self.losses = np.empty(steps)
        self.ev_steps: list[int] = []
        self.ev_losses: list[float] = []
        self.seconds = 0.0

    def step(self, Z: np.ndarray, y: np.ndarray, step: int, lr_t: float) -> None:
        t0 = time.perf_counter()
        self.losses[step - 1], grads = _checked_step(self.params, Z, y, self.spec, step)
        self.adam.step(grads, lr_t, step)
        self.seconds += time.perf_counter() - t0

    def evaluate(self, step: int) -> None:
        if self.evalset is None:
            return
        t0 = time.perf_counter()
        self.ev_steps.append(step)
        self.ev_losses.append(mse(self.params, self.spec, *self.evalset))
        if self.on_eval is not None:
            self.on_eval(step, self.params)
        self.seconds += time.perf_counter() - t0

    def result(self, shared_seconds: float) -> TrainResult:
        steps = self.losses.size
        return TrainResult(
            params=self.params,
            spec=self.spec,
            step=np.arange(1, steps + 1),
            loss=self.losses,
            eval_step=np.array(self.ev_steps, dtype=int),
            eval_loss=np.array(self.ev_losses),
            seconds=self.seconds + shared_seconds,
        )


def train_shared(
    specs: Sequence[GLASpec],
    sample_batch: Callable[[np.random.Generator, int], tuple[ArrayLike, ArrayLike]],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    inits: Sequence[Params | None] | None = None,
    schedule: Schedule = None,
    progress: Progress | bool | None = False,
    eval_every: int = 0,
    eval_size: int = 4096,
    eval_batch: tuple[ArrayLike, ArrayLike] | None = None,
    on_evals: Sequence[Callable[[int, Params], None] | None] | None = None,
) -> list[TrainResult]:
    """Several models trained side by side on the same prompts: one batch per step, drawn once
    and used by every model. ``train_shared(specs, ...)[i]`` is, bit for bit,
    ``train(specs[i], ..., init=inits[i], on_eval=on_evals[i])`` with the same other
    arguments (the same seed draws the same training batches and evaluation set for every
    model); only the sampling is done once instead of ``len(specs)`` times. Every spec must
    take the same tokens (the same ``D``). ``progress`` reports the mean batch loss of the
    models; each result's ``seconds`` is its own steps and evaluations plus an equal share of
    the sampling.

    >>> spec = GLASpec(D=4, Dk=2, num_layers=1, gate="scalar", label_index=2)
    >>> def batch(rng, B):
    ...     Z = rng.standard_normal((B, 5, 4))
    ...     Z[:, -1, 2] = 0.0  # the query's label slot
    ...     return Z, Z[:, :-1, 2].mean(axis=1)
    >>> a, b = train_shared([spec, spec], batch, steps=3, batch_size=8, lr=0.1, seed=0,
    ...                     inits=[None, init_params(spec, 1)])
    >>> bool(np.array_equal(a.loss, train(spec, batch, steps=3, batch_size=8, lr=0.1,
    ...                                   seed=0, progress=False).loss))
    True
    """
    _check_train_args(steps, batch_size, lr, schedule, sample_batch, eval_every, progress)
    specs = list(specs)
    if not specs or not all(isinstance(s, GLASpec) for s in specs):
        raise ValueError("specs: must be a non-empty sequence of GLASpec")
    inits = [None] * len(specs) if inits is None else list(inits)
    on_evals = [None] * len(specs) if on_evals is None else list(on_evals)
    for name, seq in (("inits", inits), ("on_evals", on_evals)):
        if len(seq) != len(specs):
            raise ValueError(f"{name}: needs one entry per spec ({len(specs)}), got {len(seq)}")
    for f in on_evals:
        if f is not None and not callable(f):
            raise ValueError(f"on_evals: entries must be None or callables, got {f!r}")
    seed_ = _check_seed(seed)
    report: Progress | None = None
    if progress is None or progress is True:
        report = default_printer(steps)
    elif callable(progress):
        report = progress
    evalset = None
    if eval_every:
        evalset = _eval_set(specs[0], sample_batch, seed_, eval_size, eval_batch)
        for spec in specs[1:]:
            _check_tokens(evalset[0], spec, "eval_batch")
    runs = [_Run(sp, i, seed_, steps, evalset, f) for sp, i, f in zip(specs, inits, on_evals)]
    rng = np.random.default_rng([seed_, 1])
    for r in runs:
        r.evaluate(0)
    t0 = time.perf_counter()
    sampling = 0.0
    for step in range(1, steps + 1):
        ts = time.perf_counter()
        Z, y = _checked_batch(sample_batch(rng, batch_size), specs)
        sampling += time.perf_counter() - ts
        lr_t = lr * _lr_factor(schedule, step, steps)
        for r in runs:
            r.step(Z, y, step, lr_t)
        if evalset is not None and (step % eval_every == 0 or step == steps):
            for r in runs:
                r.evaluate(step)
        if report is not None:
            elapsed = time.perf_counter() - t0
            loss = float(np.mean([r.losses[step - 1] for r in runs]))
            report(step, loss, elapsed / step * (steps - step))
    return [r.result(sampling / len(runs)) for r in runs]
