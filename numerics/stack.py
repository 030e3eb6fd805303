r"""Prompt tokens, residual GLA stacks, and the weights that make GLA run WPGD.

Conventions (docs/conventions.md, docs/construction.md):

* Tokens ``z_i = [x_i; y_i]`` (``i <= n``), query ``z_{n+1} = [x; 0]``; ``Z: (N, n+1, D)``
  with ``D = d+1`` and the label in the **last** coordinate (index ``d``).
* One GLA layer: ``q_t = W_q z_t``, ``k_t = W_k z_t``, ``v_t = W_v z_t`` (row-vector form
  ``Z W^T``), state ``S_t = G_t ⊙ S_{t-1} + v_t k_tᵀ``, ``o_t = S_t q_t`` (scale 1, the
  token attends to itself), computed by the engines of :mod:`numerics.gla`.
  ``gate="scalar"``: per-layer log-gates ``(N, n+1)``; ``gate="key"``: ``(N, n+1, D)``
  acting on the key axis. Gates are given explicitly (not computed from tokens).
* Residual stack: ``Z_{ℓ+1} = Z_ℓ + GLA_ℓ(Z_ℓ)``.
* Construction: one layer ``W_q = [P_q 0; 0 0]``, ``W_k = [P_k 0; 0 0]``,
  ``W_v = [0 0; 0 +1]``, read-out ``ŷ = e_{d+1}ᵀ o_{n+1}`` (= ``xᵀ P_qᵀP_k Σ_i ω_i y_i x_i``).
  Residual stack: ``W_v = [0 0; 0 −1]`` in every layer, read-out ``ŷ = −e_{d+1}ᵀ z^{(L)}_{n+1}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike

from . import gla
from ._validate import as_float_array, as_log_gates, check_prompt

__all__ = [
    "ENGINES",
    "READOUTS",
    "prompt_tokens",
    "engine_used",
    "gla_layer",
    "gla_stack",
    "stack_predict",
    "construct_wpgd_layer",
    "construct_wpgd_stack",
]

ENGINES = ("recurrent", "chunked", "parallel", "final")
READOUTS = ("residual", "output")


def prompt_tokens(X: ArrayLike, y: ArrayLike, x: ArrayLike) -> np.ndarray:
    """Stack a prompt into tokens ``Z: (N, n+1, d+1)``: rows ``[x_i; y_i]`` then ``[x; 0]``."""
    X, y, x = check_prompt(X, y, x)
    N, n, d = X.shape
    Z = np.zeros((N, n + 1, d + 1))
    Z[:, :n, :d] = X
    Z[:, :n, d] = y
    Z[:, n, :d] = x
    return Z


@dataclass
class GLALayer:
    """Weights of one GLA layer acting on tokens of width ``D``.

    ``W_q, W_k, W_v: (D, D)``; ``q_t = W_q z_t`` etc. ``gate`` selects the gate shape
    ("scalar": one gate per token; "key": one gate per key coordinate, on the columns of ``S``).
    """

    W_q: np.ndarray
    W_k: np.ndarray
    W_v: np.ndarray
    gate: str = "scalar"

    def __post_init__(self) -> None:
        if self.gate not in gla.GATES:
            raise ValueError(f"gate: must be one of {gla.GATES}, got {self.gate!r}")
        self.W_q = as_float_array(self.W_q, "W_q", ndim=2)
        D = self.W_q.shape[0]
        for name in ("W_q", "W_k", "W_v"):
            W = as_float_array(getattr(self, name), name, ndim=2)
            if W.shape != (D, D):
                raise ValueError(f"{name}: expected shape {(D, D)}, got {W.shape}")
            setattr(self, name, W)

    @property
    def D(self) -> int:
        return self.W_q.shape[0]


# Annotated: the engines' overloads (return_state) have no common inferred type.
_FULL_ENGINES: dict[str, Callable[..., np.ndarray]] = {
    "recurrent": gla.gla_recurrent,
    "chunked": gla.gla_chunked,
    "parallel": gla.gla_parallel,
    "final": gla.gla_chunked,
}


def _check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {ENGINES}, got {engine!r}")
    return engine


def engine_used(engine: str) -> str:
    """The engine function(s) that run for ``engine``: ``"final"`` runs ``gla_chunked`` for
    the full outputs of the inner layers and ``gla_final`` for the query of the last layer.

    >>> engine_used("final")
    'chunked+final'
    """
    _check_engine(engine)
    return "chunked+final" if engine == "final" else engine


def _check_layer_gates(log_g: ArrayLike, layer: GLALayer, N: int, T: int, name: str) -> np.ndarray:
    lg = as_log_gates(log_g, name)
    expected = (N, T) if layer.gate == "scalar" else (N, T, layer.D)
    if lg.shape != expected:
        raise ValueError(
            f"{name}: layer gate={layer.gate!r} needs shape {expected}, got {lg.shape}"
        )
    return lg


def gla_layer(
    Z: ArrayLike,
    layer: GLALayer,
    log_g: ArrayLike,
    *,
    engine: str = "chunked",
    last_only: bool = False,
) -> np.ndarray:
    """One GLA layer on tokens ``Z: (N, T, D)``: returns ``O: (N, T, D)`` with ``o_t = S_t q_t``.

    ``last_only=True`` returns only ``o_T: (N, D)`` (uses ``gla_final`` when ``engine="final"``).
    """
    Z = as_float_array(Z, "Z", ndim=3)
    N, T, D = Z.shape
    if D != layer.D:
        raise ValueError(f"Z: token width {D} does not match layer width {layer.D}")
    lg = _check_layer_gates(log_g, layer, N, T, "log_g")
    _check_engine(engine)
    q, k, v = Z @ layer.W_q.T, Z @ layer.W_k.T, Z @ layer.W_v.T
    if last_only and engine == "final":
        return gla.gla_final(q, k, v, lg, gate=layer.gate, scale=1.0)
    o = _FULL_ENGINES[engine](q, k, v, lg, gate=layer.gate, scale=1.0)
    return o[:, -1] if last_only else o


def _check_stack_args(
    layers: GLALayer | Sequence[GLALayer], log_g_list: object
) -> tuple[list[GLALayer], list[ArrayLike]]:
    layer_list = [layers] if isinstance(layers, GLALayer) else list(layers)
    if not layer_list or not all(isinstance(l, GLALayer) for l in layer_list):
        raise ValueError("layers: expected a non-empty list of GLALayer")
    if not isinstance(log_g_list, (list, tuple)):
        raise ValueError("log_g_list: expected a list with one log-gate array per layer")
    gates = list(log_g_list)
    if len(gates) != len(layer_list):
        raise ValueError(
            f"log_g_list: has {len(gates)} entries but there are {len(layer_list)} layers"
        )
    return layer_list, gates


def gla_stack(
    Z: ArrayLike,
    layers: Sequence[GLALayer],
    log_g_list: Sequence[ArrayLike],
    *,
    engine: str = "chunked",
    return_all: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """Residual GLA stack ``Z_{ℓ+1} = Z_ℓ + GLA_ℓ(Z_ℓ)``, ``ℓ = 0..L-1``.

    Parameters
    ----------
    Z : (N, T, D) input tokens.
    layers : list of L :class:`GLALayer`.
    log_g_list : L log-gate arrays, ``(N, T)`` (scalar layers) or ``(N, T, D)`` (key layers).
    engine : "recurrent" | "chunked" | "parallel" | "final" (``final`` uses ``gla_chunked`` for
        full outputs).
    return_all : return the list ``[Z_0, ..., Z_L]`` instead of ``Z_L``.
    """
    Z = as_float_array(Z, "Z", ndim=3)
    layers, log_g_list = _check_stack_args(layers, log_g_list)
    _check_engine(engine)
    out = [Z]
    for l, (layer, lg) in enumerate(zip(layers, log_g_list)):
        try:
            O = gla_layer(out[-1], layer, lg, engine=engine)
        except ValueError as exc:
            raise ValueError(f"log_g_list[{l}] / layers[{l}]: {exc}") from None
        out.append(out[-1] + O)
    return out if return_all else out[-1]


def stack_predict(
    X: ArrayLike,
    y: ArrayLike,
    x: ArrayLike,
    layers: Sequence[GLALayer],
    log_g_list: Sequence[ArrayLike],
    *,
    engine: str = "chunked",
    readout: str = "residual",
) -> np.ndarray:
    """The prediction ``ŷ: (N,)`` of a GLA stack on the prompt ``(X, y, x)``.

    ``readout="residual"``: ``ŷ = −e_{d+1}ᵀ z^{(L)}_{n+1}``, minus the query's label slot after
    the residual stack (the convention of :func:`construct_wpgd_stack`, ``W_v = [0 0; 0 −1]``).
    ``readout="output"``: a single layer only, ``ŷ = +e_{d+1}ᵀ o_{n+1}``, the label coordinate of
    the query's GLA output (no residual; :func:`construct_wpgd_layer` with ``sign=+1``).
    With ``engine="final"`` the last layer computes only the query's output (``gla_final``).
    """
    if readout not in READOUTS:
        raise ValueError(f"readout: must be one of {READOUTS}, got {readout!r}")
    Z = prompt_tokens(X, y, x)
    layers, log_g_list = _check_stack_args(layers, log_g_list)
    _check_engine(engine)
    if readout == "output" and len(layers) != 1:
        raise ValueError(f"readout: 'output' needs exactly one layer, got {len(layers)}")
    d = Z.shape[2] - 1
    # return_all=False: gla_stack returns the last tokens, an array
    Zl = (
        cast(np.ndarray, gla_stack(Z, layers[:-1], log_g_list[:-1], engine=engine))
        if len(layers) > 1
        else Z
    )
    o_last = gla_layer(Zl, layers[-1], log_g_list[-1], engine=engine, last_only=True)
    if readout == "output":
        return o_last[:, d].copy()
    return -(Zl[:, -1, d] + o_last[:, d])


def construct_wpgd_layer(
    P_q: ArrayLike, P_k: ArrayLike | None = None, sign: int = +1, *, gate: str = "scalar"
) -> GLALayer:
    """The layer of claim C1/C2: ``W_q = [P_q 0; 0 0]``, ``W_k = [P_k 0; 0 0]``, ``W_v = [0 0; 0 sign]``.

    ``P_q, P_k: (d, d)`` (``P_k`` defaults to the identity); the implemented preconditioner
    is ``P = P_qᵀ P_k``. ``sign = +1`` for the single-layer read-out ``e_{d+1}ᵀ o_{n+1}``,
    ``sign = −1`` inside the residual stack.
    """
    P_q = as_float_array(P_q, "P_q", ndim=2)
    d = P_q.shape[0]
    if P_q.shape != (d, d):
        raise ValueError(f"P_q: must be square, got shape {P_q.shape}")
    P_k = np.eye(d) if P_k is None else as_float_array(P_k, "P_k", ndim=2)
    if P_k.shape != (d, d):
        raise ValueError(f"P_k: expected shape {(d, d)}, got {P_k.shape}")
    if sign not in (1, -1):
        raise ValueError(f"sign: must be +1 or -1, got {sign!r}")
    D = d + 1
    W_q = np.zeros((D, D))
    W_q[:d, :d] = P_q
    W_k = np.zeros((D, D))
    W_k[:d, :d] = P_k
    W_v = np.zeros((D, D))
    W_v[d, d] = float(sign)
    return GLALayer(W_q, W_k, W_v, gate=gate)


def construct_wpgd_stack(P_list: Sequence[ArrayLike], *, gate: str = "scalar") -> list[GLALayer]:
    """Residual stack implementing ``L``-step causal WPGD with preconditioners ``P_list``.

    Each entry is either a ``(d, d)`` matrix ``P`` (realised as ``P_q = Pᵀ``, ``P_k = I``) or a
    pair ``(P_q, P_k)`` (realising ``P = P_qᵀ P_k``). Every layer has ``W_v = [0 0; 0 −1]``.
    """
    if isinstance(P_list, np.ndarray) and P_list.ndim == 2:
        P_list = [P_list]
    P_list = list(P_list)
    if not P_list:
        raise ValueError("P_list: must be non-empty")
    layers = []
    for l, P in enumerate(P_list):
        try:
            if isinstance(P, tuple):
                layers.append(construct_wpgd_layer(P[0], P[1], sign=-1, gate=gate))
            else:
                P = as_float_array(P, f"P_list[{l}]", ndim=2)
                layers.append(construct_wpgd_layer(P.T, None, sign=-1, gate=gate))
        except ValueError as exc:
            raise ValueError(f"P_list[{l}]: {exc}") from None
    return layers
