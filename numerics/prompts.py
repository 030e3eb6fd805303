r"""Structured multitask prompts: segments, delimiter tokens, contextual features, and the
WPGD weights that gates reading only those structural channels can induce (``docs/theory.md``, claims G1-G4).

Token layout (float64, batch-first, docs/conventions.md extended by appended channels)::

    z = [x ; y ; c ; δ] ∈ R^{d + 1 + Dc + Dδ}

* ``x`` (indices ``0..d-1``) features, ``y`` (index ``d``) the label — the label stays at index
  ``d`` as in the plain layout; the structural channels are appended **after** it.
* ``c`` (``Dc = K + 1`` channels, present iff ``contextual``): one-hot contextual feature of
  the token's segment, ``c = e_k`` on every token of segment ``k`` **and on the delimiter that
  closes segment k**; the query carries its own feature ``e_{K}`` (0-based slot ``K``), or that of
  segment ``query_segment`` if one is stated.
* ``δ`` (present iff ``delimiters != "none"``): ``Dδ = 1`` flag (``"shared"``: every delimiter
  is the same vector ``p = 1``) or ``Dδ = K`` one-hot ``p_k = e_k`` (``"distinct"``).

Token order: segment 1's ``m_1`` examples, [delimiter 1], segment 2's examples, [delimiter 2],
…, segment K's examples, [delimiter K], query. So ``T = n + K·[delimiters] + 1`` tokens; a
delimiter sits after **every** segment, including the last one (just before the query).
Delimiter tokens have ``x = 0``, ``y = 0``. The query token is ``[x; 0; c_q; 0]``.

Gates. A gate may read only the *structural* channels ``(c, δ)`` of the current token, never
``x`` or ``y`` (a gate reading ``x_i, y_i`` makes ω data-dependent, outside fixed-weight
WPGD). Tokens with equal structural channels therefore share a gate: a gate is a function
of the **token type** (:func:`token_types`):

* ``"example"`` (no context) or ``"example[k]"`` (contextual, segment ``k``, 0-based);
* ``"delimiter"`` (shared, no context) or ``"delimiter[k]"`` (distinct, or shared with
  context: the delimiter then carries ``c_k`` and is distinguishable);
* the query has type ``"query"`` if contextual with its own feature, ``"example[k]"`` if
  ``query_segment = k``, and ``"example"`` without context (its structural channels are then
  all zero, exactly like an example's).

Scalar GLA with one gate per token then implements WPGD with weights
``ω_i = Π_{j > pos(i)} g_j`` over *all* later tokens (examples, delimiters and the query), see
:func:`induced_weights`. Delimiter tokens add ``v kᵀ = 0`` to the state but their gate
multiplies every earlier weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_float_array, as_log_gates, check_prompt
from .data import MultitaskModel, Prompts
from .stack import GLALayer, gla_layer

__all__ = [
    "DELIMITERS",
    "StructuredPrompt",
    "tokens",
    "token_types",
    "token_log_gates",
    "induced_weights",
    "example_positions",
    "construction_layer",
    "gla_predict",
    "structural_log_gates",
    "key_copies_predict",
]

DELIMITERS = ("none", "shared", "distinct")


@dataclass(frozen=True)
class StructuredPrompt:
    """Specification of a structured ``K``-segment prompt.

    ``m``: segment lengths (``K`` positive ints, ``n = Σ m_k``); ``delimiters`` ∈
    ``{"none", "shared", "distinct"}``; ``contextual``: append one-hot context channels;
    ``query_segment``: ``None`` (the query has its own context feature) or a 0-based segment
    index whose feature (and hence gate) the query shares. Validation raises ValueError
    naming the argument.
    """

    m: tuple
    delimiters: str = "none"
    contextual: bool = False
    query_segment: int | None = None

    def __post_init__(self):
        m = np.asarray(self.m)
        if m.ndim != 1 or m.size < 1 or not np.issubdtype(m.dtype, np.integer) or np.any(m < 1):
            raise ValueError(
                f"m: must be a non-empty 1-D sequence of positive integers, got {self.m!r}"
            )
        object.__setattr__(self, "m", tuple(int(v) for v in m))
        if self.delimiters not in DELIMITERS:
            raise ValueError(f"delimiters: must be one of {DELIMITERS}, got {self.delimiters!r}")
        if not isinstance(self.contextual, (bool, np.bool_)):
            raise ValueError(f"contextual: must be a bool, got {self.contextual!r}")
        qs = self.query_segment
        if qs is not None:
            if (
                isinstance(qs, bool)
                or not isinstance(qs, (int, np.integer))
                or not 0 <= qs < len(self.m)
            ):
                raise ValueError(
                    f"query_segment: must be None or an int in [0, {len(self.m)}), got {qs!r}"
                )
            if not self.contextual:
                raise ValueError("query_segment: only meaningful with contextual=True")

    # ------------------------------------------------------------------ sizes
    @property
    def K(self) -> int:
        return len(self.m)

    @property
    def n(self) -> int:
        return int(sum(self.m))

    @property
    def num_delimiters(self) -> int:
        return 0 if self.delimiters == "none" else self.K

    @property
    def T(self) -> int:
        """Number of tokens: ``n`` examples + delimiters + 1 query."""
        return self.n + self.num_delimiters + 1

    @property
    def Dc(self) -> int:
        return self.K + 1 if self.contextual else 0

    @property
    def Ddelim(self) -> int:
        return {"none": 0, "shared": 1, "distinct": self.K}[self.delimiters]

    def width(self, d: int) -> int:
        """Token width ``D = d + 1 + Dc + Dδ``."""
        return int(d) + 1 + self.Dc + self.Ddelim

    @property
    def segments(self) -> np.ndarray:
        """``(n,)`` 0-based segment of each example (same as ``MultitaskModel.k_task``)."""
        return np.repeat(np.arange(self.K), self.m)

    def model(
        self,
        Gamma: ArrayLike,
        rho: ArrayLike,
        Sigma: ArrayLike,
        sigma: float = 0.0,
        query_var: float = 1.0,
    ) -> MultitaskModel:
        """The matching multitask model ``MultitaskModel.k_task(m, Γ, ρ, Σ, σ, query_var)``
        (delimiters and context channels carry no label information, so the model only
        depends on the segment lengths)."""
        return MultitaskModel.k_task(np.array(self.m), Gamma, rho, Sigma, sigma, query_var)


def _check_spec(spec) -> StructuredPrompt:
    if not isinstance(spec, StructuredPrompt):
        raise ValueError(f"spec: expected a StructuredPrompt, got {type(spec).__name__}")
    return spec


def example_positions(spec: StructuredPrompt) -> np.ndarray:
    """``(n,)`` token positions (0-based) of the examples; delimiters sit at the gaps.

    >>> example_positions(StructuredPrompt((2, 1), 'distinct'))
    array([0, 1, 3])
    """
    spec = _check_spec(spec)
    pos: list[int] = []
    t = 0
    for mk in spec.m:
        pos.extend(range(t, t + mk))
        t += mk + (1 if spec.delimiters != "none" else 0)
    return np.array(pos, dtype=np.int64)


def token_types(spec: StructuredPrompt) -> tuple[np.ndarray, list[str]]:
    """Gate type of every token: ``(type_id (T,), names)``; tokens of one type have identical
    structural channels, so any gate function of those channels gives them the same gate."""
    spec = _check_spec(spec)
    names: list[str] = []

    def tid(name):
        if name not in names:
            names.append(name)
        return names.index(name)

    ids = []
    for k, mk in enumerate(spec.m):
        ex = f"example[{k}]" if spec.contextual else "example"
        ids += [tid(ex)] * mk
        if spec.delimiters == "distinct" or (spec.delimiters == "shared" and spec.contextual):
            ids.append(tid(f"delimiter[{k}]"))
        elif spec.delimiters == "shared":
            ids.append(tid("delimiter"))
    if spec.contextual:
        ids.append(tid("query" if spec.query_segment is None else f"example[{spec.query_segment}]"))
    else:
        ids.append(tid("example"))
    return np.array(ids, dtype=np.int64), names


def tokens(spec: StructuredPrompt, prompts: Prompts) -> np.ndarray:
    """Tokens ``Z: (N, T, D)`` of a batch of prompts laid out as ``spec`` describes.

    ``prompts`` is a :class:`numerics.data.Prompts` (or a tuple ``(X, y, x)``) with
    ``X: (N, n, d)``, ``y: (N, n)``, ``x: (N, d)``; ``n`` must equal ``spec.n``.
    Rows: ``[x_i; y_i; c_{k(i)}; 0]`` for examples, ``[0; 0; c_k; p_k]`` for the delimiter
    after segment ``k``, ``[x; 0; c_q; 0]`` for the query (see the module docstring).
    """
    spec = _check_spec(spec)
    if isinstance(prompts, Prompts):  # checked when it was made
        X, y, x = prompts.X, prompts.y, prompts.x
    else:
        try:
            X, y, x = prompts
        except (TypeError, ValueError):
            raise ValueError("prompts: expected a Prompts or a tuple (X, y, x)") from None
        X, y, x = check_prompt(X, y, x)
    N, n, d = X.shape
    if n != spec.n:
        raise ValueError(f"X: has n={n} examples but spec.m sums to {spec.n}")
    D = spec.width(d)
    c0, p0 = d + 1, d + 1 + spec.Dc
    Z = np.zeros((N, spec.T, D))
    pos = example_positions(spec)
    Z[:, pos, :d] = X
    Z[:, pos, d] = y
    seg = spec.segments
    if spec.contextual:
        Z[:, pos, c0 + seg] = 1.0
    if spec.delimiters != "none":
        for k in range(spec.K):
            t = pos[np.flatnonzero(seg == k)[-1]] + 1
            if spec.contextual:
                Z[:, t, c0 + k] = 1.0
            Z[:, t, p0 + (k if spec.delimiters == "distinct" else 0)] = 1.0
    Z[:, -1, :d] = x
    if spec.contextual:
        Z[:, -1, c0 + (spec.K if spec.query_segment is None else spec.query_segment)] = 1.0
    return Z


def token_log_gates(
    spec: StructuredPrompt, type_log_gates: dict[str, float] | ArrayLike
) -> np.ndarray:
    """Per-token log-gates ``(T,)`` from one log-gate per type (``dict name -> value`` or an
    array ordered like ``token_types(spec)[1]``); entries ``<= 0`` (``-inf`` = gate 0)."""
    ids, names = token_types(spec)
    if isinstance(type_log_gates, dict):
        unknown = set(type_log_gates) - set(names)
        if unknown:
            raise ValueError(
                f"type_log_gates: unknown token types {sorted(unknown)}; known {names}"
            )
        missing = [k for k in names if k not in type_log_gates]
        if missing:
            raise ValueError(f"type_log_gates: missing token types {missing}")
        vals = np.array([float(type_log_gates[k]) for k in names])
    else:
        vals = np.asarray(type_log_gates, dtype=np.float64)
        if vals.shape != (len(names),):
            raise ValueError(
                f"type_log_gates: expected shape {(len(names),)} (types {names}), got {vals.shape}"
            )
    as_log_gates(vals, "type_log_gates")
    return vals[ids]


def induced_weights(spec: StructuredPrompt, token_log_g: ArrayLike) -> np.ndarray:
    """WPGD weights ``ω (…, n)`` of the examples induced by per-token log-gates ``(…, T)``:
    ``ω_i = Π_{j > pos(i)} g_j`` over all later tokens (delimiters and the query included),
    accumulated as suffix sums of log-gates (exact, ``-inf`` → weight 0, no NaN)."""
    spec = _check_spec(spec)
    lg = as_log_gates(token_log_g, "token_log_g")
    if lg.ndim < 1 or lg.shape[-1] != spec.T:
        raise ValueError(
            f"token_log_g: last axis must have length T={spec.T}, got shape {lg.shape}"
        )
    suffix = np.flip(np.cumsum(np.flip(lg, -1), axis=-1), -1)  # Σ_{j >= t}
    after = np.concatenate([suffix[..., 1:], np.zeros(lg.shape[:-1] + (1,))], axis=-1)  # Σ_{j > t}
    return np.exp(after[..., example_positions(spec)])


def structural_log_gates(
    spec: StructuredPrompt, Z: ArrayLike, w: ArrayLike, b: float
) -> np.ndarray:
    """A gating function that reads only the structural channels: per token
    ``log g = log sigmoid(wᵀ s + b) = −softplus(−(wᵀ s + b))`` with ``s = z[d+1:]`` the
    ``(c; δ)`` channels; ``Z: (N, T, D)``, ``w: (Dc + Dδ,)``. Returns ``(N, T)``.
    (Exact gates 0 and 1 are limits ``b, w → ±∞``; the closure is what risk infima see.)"""
    spec = _check_spec(spec)
    Z = as_float_array(Z, "Z", ndim=3)
    S = spec.Dc + spec.Ddelim
    if Z.shape[1] != spec.T or Z.shape[2] < S + 1:
        raise ValueError(f"Z: expected (N, {spec.T}, d+1+{S}), got {Z.shape}")
    w = as_float_array(w, "w", ndim=1)
    if w.shape != (S,):
        raise ValueError(f"w: expected shape {(S,)}, got {w.shape}")
    z = Z[:, :, Z.shape[2] - S :] @ w + float(b)
    return -np.logaddexp(0.0, -z)


def construction_layer(
    spec: StructuredPrompt, P: ArrayLike, *, P_k: ArrayLike | None = None
) -> GLALayer:
    """Scalar-gated GLA layer of the construction on structured tokens of width ``D``:
    ``W_q`` reads ``x`` through ``P_q = Pᵀ`` (or ``P_q`` with ``P = P_qᵀ P_k`` if ``P_k`` given),
    ``W_k`` reads ``x`` through ``P_k`` (identity by default), ``W_v`` copies ``y`` into the label
    coordinate ``d``; every structural channel is ignored by ``q, k, v``. Prediction
    ``ŷ = +e_{d}ᵀ o_T`` (label coordinate of the query's output, scale 1)."""
    spec = _check_spec(spec)
    P = as_float_array(P, "P", ndim=2)
    d = P.shape[0]
    if P.shape != (d, d):
        raise ValueError(f"P: must be square, got {P.shape}")
    D = spec.width(d)
    W_q = np.zeros((D, D))
    W_k = np.zeros((D, D))
    W_v = np.zeros((D, D))
    if P_k is None:
        W_q[:d, :d], W_k[:d, :d] = P.T, np.eye(d)
    else:
        P_k = as_float_array(P_k, "P_k", ndim=2)
        if P_k.shape != (d, d):
            raise ValueError(f"P_k: expected {(d, d)}, got {P_k.shape}")
        W_q[:d, :d], W_k[:d, :d] = P, P_k
    W_v[d, d] = 1.0
    return GLALayer(W_q, W_k, W_v, gate="scalar")


def gla_predict(
    spec: StructuredPrompt,
    Z: ArrayLike,
    layer: GLALayer,
    token_log_g: ArrayLike,
    *,
    engine: str = "final",
) -> np.ndarray:
    """Prediction ``ŷ (N,)`` = label coordinate of the query's output of one scalar GLA layer on
    structured tokens ``Z`` with per-token log-gates ``(T,)`` (shared) or ``(N, T)``."""
    spec = _check_spec(spec)
    Z = as_float_array(Z, "Z", ndim=3)
    N, T, D = Z.shape
    if T != spec.T:
        raise ValueError(f"Z: has {T} tokens, spec needs {spec.T}")
    lg = as_log_gates(token_log_g, "token_log_g")
    if lg.shape == (T,):
        lg = np.broadcast_to(lg, (N, T))
    d = D - 1 - spec.Dc - spec.Ddelim
    return gla_layer(Z, layer, lg, engine=engine, last_only=True)[:, d].copy()


def key_copies_predict(
    spec: StructuredPrompt,
    Z: ArrayLike,
    P: ArrayLike,
    token_log_g_u: ArrayLike,
    token_log_g_v: ArrayLike,
    *,
    scale: float = 1.0,
    engine: str = "chunked",
) -> np.ndarray:
    """Key-gated GLA with two key copies (``D_k = 2d``) on structured tokens ``Z (N, T, D)``.

    ``q_t = scale·[Pᵀx_t; −Pᵀx_t]``, ``k_t = [x_t; x_t]``, ``v_t = y_t`` (``D_v = 1``; structural
    channels ignored), key log-gates ``[log g^u_t 1_d; log g^v_t 1_d]`` from per-token log-gates
    ``(T,)`` of each copy. Prediction = ``o_T`` (query's output, current token included; its
    ``v = 0``), i.e. ``scale · xᵀ P Σ_i (u_i − v_i) y_i x_i`` with ``u = induced_weights(·, log g^u)``.
    ``engine``: ``"chunked"`` (full outputs, last token read) or ``"final"`` (``gla_final``)."""
    from . import gla

    spec = _check_spec(spec)
    Z = as_float_array(Z, "Z", ndim=3)
    N, T, D = Z.shape
    if T != spec.T:
        raise ValueError(f"Z: has {T} tokens, spec needs {spec.T}")
    d = D - 1 - spec.Dc - spec.Ddelim
    P = as_float_array(P, "P", ndim=2)
    if P.shape != (d, d):
        raise ValueError(f"P: expected shape {(d, d)}, got {P.shape}")
    lu = as_log_gates(token_log_g_u, "token_log_g_u")
    lv = as_log_gates(token_log_g_v, "token_log_g_v")
    if lu.shape != (T,) or lv.shape != (T,):
        raise ValueError(
            f"token_log_g_u: both copies need shape {(T,)}, got {lu.shape} and {lv.shape}"
        )
    X = Z[:, :, :d]
    qx = X @ P  # rows x_tᵀ P = (Pᵀ x_t)ᵀ
    q = float(scale) * np.concatenate([qx, -qx], axis=2)
    k = np.concatenate([X, X], axis=2)
    v = Z[:, :, d : d + 1]
    lg = np.broadcast_to(
        np.concatenate([np.repeat(lu[:, None], d, 1), np.repeat(lv[:, None], d, 1)], axis=1),
        (N, T, 2 * d),
    )
    if engine == "final":
        return gla.gla_final(q, k, v, lg, gate="key")[:, 0]
    if engine == "chunked":
        return gla.gla_chunked(q, k, v, lg, gate="key")[:, -1, 0]
    raise ValueError(f"engine: must be 'chunked' or 'final', got {engine!r}")
