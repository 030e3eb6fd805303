r"""Depth: ``L`` residual GLA layers = ``L`` causal WPGD steps, optimised on sampled prompts (claim G5).

The model (claim C3 in ``docs/theory.md``, conventions in ``docs/conventions.md``)
---------------------------------------------------------------------------------
Tokens ``1..n`` are the examples ``(x_i, y_i)``, token ``n+1`` the query ``(x, 0)``. Every
token carries an iterate, ``w^{(i)}_0 = 0``, and layer ``ℓ = 0..L-1`` updates all of them:

``w^{(i)}_{ℓ+1} = w^{(i)}_ℓ + P_ℓ Σ_{j<=i} ω^{(ℓ)}_{ij} x_j (y_j − x_jᵀ w^{(j)}_ℓ)``,
``ω^{(ℓ)}_{ij} = Π_{k=j+1}^{i} g^{(ℓ)}_k`` (``ω_{ii} = 1``),

with ``y_{n+1} = 0``. The prediction is ``ŷ = xᵀ w^{(n+1)}_L`` (sign +, scale 1). The sum for
the query includes ``j = n+1``: the **self-term** ``−P_ℓ x xᵀ w^{(n+1)}_ℓ`` (zero in layer 0,
non-zero from layer 1 on). This is exactly what the residual GLA stack of
:func:`numerics.stack.construct_wpgd_stack` computes (read-out ``−e_{d+1}ᵀ z^{(L)}_{n+1}``),
and what :func:`numerics.wpgd.causal_wpgd` evaluates; this module has its own vectorised
implementation (gates shared by all prompts, so the ``(n+1)×(n+1)`` weight matrix is built
once per layer) with a hand-written reverse-mode gradient.

Gate-reachable weights (delimiter parametrisation)
--------------------------------------------------
The examples form ``K`` consecutive segments (``model.segments``, from
:meth:`MultitaskModel.k_task`; a model without segments is one segment). A delimiter token
follows every segment; its features live in extra coordinates that ``W_q, W_k`` ignore and
its label slot is 0, so it contributes nothing to any update and receives nothing — its only
effect is its gate. Folding it into the next token, layer ``ℓ`` has per-token log-gates

* ``log g^{(ℓ)}_i = log σ(θ_{ℓ,k})`` if token ``i`` is the first example of segment ``k+1``
  or (for ``k = K``) the query: the delimiter after segment ``k``;
* ``log g^{(ℓ)}_i = 0`` for every other example (gate 1 inside a segment),

with ``σ`` the logistic sigmoid (``log σ(θ) = −log(1 + e^{−θ}) < 0``). The query's weights are
then block-constant, ``ω^{(ℓ)}_{n+1, i} = Π_{k'=k(i)}^{K} σ(θ_{ℓ,k'})``: positive and
non-decreasing towards the query, i.e. the open monotone cone ``0 < ω_1 <= … <= ω_K <= 1``
(its closure is reached as ``θ → ±∞``). ``architecture="linear"`` is linear attention: all
gates 1 (``ω ≡ 1``), no gate parameters.

Preconditioners: ``precond="scalar"`` ``P_ℓ = p_ℓ I``; ``precond="full"`` a general
``(d, d)`` matrix per layer (use it when ``Σ`` is not isotropic).

Training (sample-average approximation)
---------------------------------------
:func:`optimise_depth` fixes ``num_train`` prompts (seed ``seed``) and minimises the empirical
risk ``(1/N) Σ (y − ŷ)²`` over all ``(P_ℓ, θ_ℓ)`` with L-BFGS-B and the exact gradient. Depth
``L`` is warm-started from the depth-``(L−1)`` optimum with the new (last) layer switched off
(``P_{L−1} = 0``; its gates copied from the previous layer). A layer with ``P = 0`` is the
identity on the residual stream, so the start has exactly the ``(L−1)``-layer training risk and
the L-BFGS line search never accepts an increase: the training risk is non-increasing in ``L``
by construction. :func:`evaluate_depth` estimates the population risk of the trained models on
fresh prompts (separate seed), all models on the **same** prompts, so risk differences come
with a paired standard error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize

from ._heap import keep_heap
from ._validate import as_float_array, as_log_gates, check_instance, check_int, check_prompt
from .data import MultitaskModel, Prompts, check_model as _check_model
from .gla_landscape import solve_gla
from .risk import optimal_P, profile_risk, wpgd_risk

__all__ = [
    "ARCHITECTURES",
    "PRECONDS",
    "DepthSolution",
    "DepthEvaluation",
    "segment_starts",
    "token_log_gates",
    "causal_weight_matrix",
    "depth_predict",
    "empirical_risk_and_grad",
    "optimise_depth",
    "evaluate_depth",
    "one_layer_optimum",
    "one_layer_population_risk",
    "block_weights",
]

ARCHITECTURES = ("gla", "linear")

#: Box for the delimiter logits, ``|θ| <= 30``: gates within ``σ(−30) ≈ 9.4e-14`` of 0 or 1.
#: Optimal gates often sit on the boundary of the cone (exactly 0 or 1), which an open
#: parametrisation only approaches as ``θ → ±∞``; unboxed, L-BFGS spends hundreds of
#: iterations on that crawl for risk changes ~1e-12. The box stops it at a point whose
#: weights differ from the boundary limit by < 1e-13.
THETA_MAX = 30.0
PRECONDS = ("scalar", "full")

# L-BFGS-B stopping rule. The objective is an average of O(1) squared errors; a relative
# decrease below ftol = 1e-10 per iteration, or a gradient below gtol = 1e-9, is far below
# the Monte Carlo noise of the test risk (~1e-3 relative). Tighter values mostly buy long
# crawls along directions where the infimum is only approached at infinity (docs/depth.md).
_FTOL = 1e-10
_GTOL = 1e-9


# ----------------------------------------------------------------------------- validation
def _pos_int(v, name: str, minimum: int = 1) -> int:
    return check_int(v, name, min_value=minimum)


def _check_choice(v, name: str, choices) -> str:
    if v not in choices:
        raise ValueError(f"{name}: must be one of {choices}, got {v!r}")
    return v


def segment_starts(model: MultitaskModel) -> tuple[np.ndarray, int]:
    """``(owner, K)``: ``owner: (n+1,)`` integer array, ``owner[i] = k`` if token ``i`` (0-based;
    ``n`` = the query) carries the delimiter gate of segment ``k`` (0-based), else ``-1``;
    ``K`` the number of segments. Segments must be consecutive runs ``0, 0, …, 1, 1, …``.

    >>> m = MultitaskModel.k_task([2, 1], np.eye(2), [0.1, 0.2], np.eye(1), 0.5)
    >>> owner, K = segment_starts(m)   # token 2 follows the delimiter of segment 0
    >>> owner.tolist(), K
    ([-1, -1, 0, 1], 2)
    """
    model = _check_model(model)
    n = model.n
    seg = np.zeros(n, dtype=np.int64) if model.segments is None else np.asarray(model.segments)
    if seg[0] != 0 or np.any(np.diff(seg) < 0) or np.any(np.diff(seg) > 1):
        raise ValueError(
            "model: segments must be consecutive runs 0, 0, ..., 1, 1, ... (as from k_task)"
        )
    K = int(seg[-1]) + 1
    owner = -np.ones(n + 1, dtype=np.int64)
    starts = np.flatnonzero(np.diff(seg)) + 1  # first example of segments 1..K-1
    owner[starts] = seg[starts - 1]
    owner[n] = K - 1
    return owner, K


def _log_sigmoid(theta):
    return -np.logaddexp(0.0, -theta)


def token_log_gates(theta: ArrayLike, owner: ArrayLike) -> np.ndarray:
    """Per-token log-gates ``(L, n+1)`` from delimiter logits ``theta: (L, K)``:
    ``log σ(θ_{ℓ, owner[i]})`` where ``owner[i] >= 0``, else 0 (see the module docstring).

    >>> lg = token_log_gates(np.array([[0.0, 30.0]]), np.array([-1, -1, 0, 1]))
    >>> np.round(np.exp(lg), 6).tolist()    # σ(0) = 1/2 after segment 0, σ(30) ≈ 1
    [[1.0, 1.0, 0.5, 1.0]]
    """
    theta = as_float_array(theta, "theta", ndim=2)
    owner = _check_owner(owner)
    lg = np.zeros((theta.shape[0], owner.size))
    m = owner >= 0
    if m.any() and owner[m].max() >= theta.shape[1]:
        raise ValueError(
            f"theta: has {theta.shape[1]} columns but owner refers to segment {owner[m].max()}"
        )
    lg[:, m] = _log_sigmoid(theta[:, owner[m]])
    return lg


def _check_owner(owner: ArrayLike) -> np.ndarray:
    """``owner`` as from :func:`segment_starts`: a 1-D integer array with entries ``>= -1``."""
    a = np.asarray(owner)
    if a.ndim != 1 or not (a.dtype.kind in "iu" or (a.size == 0 and a.dtype.kind == "f")):
        raise ValueError(f"owner: expected a 1-D integer array, got {a.dtype} of shape {a.shape}")
    if a.size and a.min() < -1:
        raise ValueError(f"owner: entries must be >= -1 (-1: no delimiter gate), got {a.min()}")
    return a.astype(np.int64)


def causal_weight_matrix(log_g: ArrayLike) -> np.ndarray:
    """``Ω: (T, T)`` with ``Ω_{ij} = Π_{k=j+1}^{i} g_k = exp(Σ_{k=j+1}^{i} log g_k)`` for ``j <= i``
    (1 on the diagonal) and 0 above it, from token log-gates ``log_g: (T,)`` (``<= 0``,
    ``-inf`` allowed). The exponent of each entry is accumulated down its column (no
    difference of prefix sums: no cancellation, ``-inf`` gives exactly 0).

    >>> causal_weight_matrix(np.log([1.0, 0.5, 0.25])).round(12).tolist()
    [[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.125, 0.25, 1.0]]
    """
    lg = as_log_gates(log_g, "log_g", ndim=1)
    T = lg.size
    M = np.zeros((T, T))
    i, j = np.tril_indices(T, -1)
    M[i, j] = lg[i]
    E = np.cumsum(M, axis=0)
    E[np.triu_indices(T, 1)] = -np.inf
    return np.exp(E)


# OpenBLAS runs a gemm multi-threaded once M·N·K exceeds 4·65536; on the shared 2-core
# machine that path was measured 5-15x slower than the serial one for these thin products
# (same observation as numerics/gla.py). _mm splits products into serial-sized pieces.
_BLAS_SERIAL_MNK = 4 * 65536


def _mm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for 2-D arrays, computed in pieces with ``M·N·K <= _BLAS_SERIAL_MNK`` each
    (rows of ``A``, columns of ``B``, or the inner dimension, whichever is largest)."""
    M, K = A.shape
    N = B.shape[1]
    if M * N * K <= _BLAS_SERIAL_MNK:
        return A @ B
    if K >= M and K >= N:
        step = max(1, _BLAS_SERIAL_MNK // max(M * N, 1))
        out = A[:, :step] @ B[:step]
        for s in range(step, K, step):
            out += A[:, s : s + step] @ B[s : s + step]
        return out
    out = np.empty((M, N))
    if N >= M:
        step = max(1, _BLAS_SERIAL_MNK // max(M * K, 1))
        for s in range(0, N, step):
            out[:, s : s + step] = A @ B[:, s : s + step]
    else:
        step = max(1, _BLAS_SERIAL_MNK // max(N * K, 1))
        for s in range(0, M, step):
            out[s : s + step] = A[s : s + step] @ B
    return out


# ----------------------------------------------------------------------------- forward / backward
def _tokens(X, y, x):
    """Token-major, feature-major layout: ``Xt: (T, d, N)``, ``yt: (T, N)`` with the query last
    and label 0 (``T = n + 1``).

    Token-major arrays turn every per-layer contraction (``Ω V``, ``Ωᵀ ∂U``, ``∂U Vᵀ``) into one
    matrix product over ``d·N`` columns instead of ``N`` small batched products; with the
    prompts innermost, the elementwise passes (residuals, ``X ⊙ r``) run along rows of ``N``
    contiguous entries instead of rows of ``d`` (``d = 3`` in the depth study)."""
    N = X.shape[0]
    Xt = np.concatenate([X, x[:, None, :]], axis=1).transpose(1, 2, 0).copy()
    yt = np.concatenate([y, np.zeros((N, 1))], axis=1).T.copy()
    return Xt, yt


def _inner(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``Σ_f A[t, f, b] B[t, f, b]: (T, N)`` for ``(T, d, N)`` arrays (one contiguous pass per
    feature; einsum's reduction over the middle axis was measured ~2x slower here)."""
    out = A[:, 0] * B[:, 0]
    for f in range(1, A.shape[1]):
        out += A[:, f] * B[:, f]
    return out


def _apply(P: np.ndarray, U: np.ndarray, scalar: bool) -> np.ndarray:
    """``P u`` for every column ``u = U[t, :, b]`` of ``U: (T, d, N)``. ``scalar``: ``P = pI``, and
    ``p·U`` is the same number in every entry (the product adds exact zeros to ``p·U``) at a
    fraction of the cost of ``T`` products ``(d, d) @ (d, N)``."""
    if scalar:
        return U * P[0, 0]
    return np.matmul(P, U)


def _forward(Xt, yt, Ps, Oms, keep: bool, scalar: bool = False):
    """Iterates ``W_ℓ: (T, d, N)``; returns the final iterates and (if ``keep``) the caches.
    ``scalar``: every ``P`` is a multiple of the identity (see :func:`_apply`)."""
    T, d, N = Xt.shape
    W = None  # W_0 = 0: layer 0's residuals are the labels, its update is the first W (exactly)
    cache = []
    for P, Om in zip(Ps, Oms):
        resid = yt if W is None else yt - _inner(Xt, W)
        V = Xt * resid[:, None, :]
        U = _mm(Om, V.reshape(T, d * N)).reshape(T, d, N)  # Σ_j ω_ij x_j r_j
        if keep:
            cache.append((V, U))
        if W is None:
            W = _apply(P, U, scalar)
        else:
            W += _apply(P, U, scalar)
    return W, cache


def depth_predict(
    X: ArrayLike,
    y: ArrayLike,
    x: ArrayLike,
    P_list: np.ndarray | Sequence[ArrayLike],
    log_g_list: np.ndarray | Sequence[ArrayLike],
) -> np.ndarray:
    r"""Prediction ``ŷ = xᵀ w^{(n+1)}_L: (N,)`` of ``L``-step causal WPGD (the residual GLA stack).

    Parameters
    ----------
    X : (N, n, d).  y : (N, n).  x : (N, d).
    P_list : ``L`` preconditioners ``(d, d)``; layer ``ℓ`` adds ``P_ℓ u`` (no transpose).
    log_g_list : ``L`` token log-gate vectors ``(n+1,)`` (examples then the query), shared by
        all prompts, entries ``<= 0``; ``ω^{(ℓ)}_{ij} = exp(Σ_{k=j+1}^{i} log g^{(ℓ)}_k)``.

    The query attends to itself (self-term ``−P_ℓ x xᵀ w^{(n+1)}_ℓ``); see the module docstring.
    """
    keep_heap()  # see numerics._heap
    X, y, x = check_prompt(X, y, x)
    _, n, d = X.shape
    if isinstance(P_list, np.ndarray) and P_list.ndim == 2:
        P_list = [P_list]
    P_list, log_g_list = list(P_list), list(log_g_list)
    if not P_list:
        raise ValueError("P_list: must be non-empty (one matrix per layer)")
    if len(log_g_list) != len(P_list):
        raise ValueError(f"log_g_list: has {len(log_g_list)} entries but P_list has {len(P_list)}")
    Ps = []
    for l, P in enumerate(P_list):
        P = as_float_array(P, f"P_list[{l}]", ndim=2)
        if P.shape != (d, d):
            raise ValueError(f"P_list[{l}]: expected shape {(d, d)}, got {P.shape}")
        Ps.append(P)
    Oms = []
    for l, lg in enumerate(log_g_list):
        lg = as_log_gates(lg, f"log_g_list[{l}]", ndim=1)
        if lg.shape != (n + 1,):
            raise ValueError(f"log_g_list[{l}]: expected shape {(n + 1,)}, got {lg.shape}")
        Oms.append(causal_weight_matrix(lg))
    Xt, yt = _tokens(X, y, x)
    W, _ = _forward(Xt, yt, Ps, Oms, keep=False)
    return np.einsum("bd,db->b", x, W[n])


@dataclass
class _Spec:
    """Parameter layout: per layer ``np`` preconditioner entries then ``K`` gate logits."""

    L: int
    d: int
    K: int
    architecture: str
    precond: str
    owner: np.ndarray

    @property
    def n_P(self) -> int:
        return 1 if self.precond == "scalar" else self.d * self.d

    @property
    def n_theta(self) -> int:
        return self.K if self.architecture == "gla" else 0

    @property
    def size(self) -> int:
        return self.L * (self.n_P + self.n_theta)

    def unpack(self, v):
        v = np.asarray(v, dtype=np.float64).reshape(self.L, self.n_P + self.n_theta)
        if self.precond == "scalar":
            Ps = [v[l, 0] * np.eye(self.d) for l in range(self.L)]
        else:
            Ps = [v[l, : self.n_P].reshape(self.d, self.d) for l in range(self.L)]
        theta = v[:, self.n_P :]
        return Ps, theta

    def pack(self, Ps, theta) -> np.ndarray:
        rows = []
        for l in range(self.L):
            pP = np.array([Ps[l][0, 0]]) if self.precond == "scalar" else np.asarray(Ps[l]).ravel()
            rows.append(np.concatenate([pP, np.asarray(theta[l], dtype=np.float64).ravel()]))
        return np.concatenate(rows)

    def log_gates(self, theta) -> np.ndarray:
        if self.architecture == "linear":
            return np.zeros((self.L, self.owner.size))
        return token_log_gates(theta, self.owner)


def empirical_risk_and_grad(
    v: ArrayLike, spec: _Spec, Xt: ArrayLike, yt: ArrayLike, x: ArrayLike, y_query: ArrayLike
) -> tuple[float, np.ndarray]:
    """Empirical risk ``(1/N) Σ (y − ŷ)²`` and its exact gradient in the packed parameters ``v``
    (layout of ``spec``: per layer the preconditioner entries, then ``K`` gate logits).
    ``Xt: (T, d, N)``, ``yt: (T, N)`` token-major with the prompts innermost, from
    :func:`_tokens` (``T = n + 1``, query last); ``x: (N, d)``, ``y_query: (N,)``.

    Reverse mode through the causal WPGD recursion, per token ``t`` and prompt ``b`` on the
    columns ``W_ℓ[t, :, b]`` (``w_{ℓ+1} = w_ℓ + P_ℓ u_ℓ``, ``U_ℓ = Ω_ℓ V_ℓ`` over tokens,
    ``V_ℓ = X ⊙ (y − ⟨X, W_ℓ⟩)``). With ``Γ_ℓ = ∂loss/∂W_ℓ``: ``∂P_ℓ = Σ_{t,b} γ_{ℓ+1} u_ℓᵀ``,
    ``∂U = P_ℓᵀ Γ_{ℓ+1}`` (per column), ``∂Ω_ℓ = Σ_{f,b} ∂U V_ℓᵀ``, ``∂V = Ω_ℓᵀ ∂U``,
    ``Γ_ℓ = Γ_{ℓ+1} − X ⊙ ⟨∂V, X⟩``; and ``∂ log g_k = Σ_{i>=k>j} ∂Ω_{ij} Ω_{ij}``,
    ``∂θ = (1 − σ(θ)) ∂ log g`` summed over the tokens a delimiter gates.

    Raises ``ValueError`` naming the argument whose type or shape does not fit ``spec``
    (``v: (spec.size,)``, ``Xt: (n+1, spec.d, N)``).
    """
    keep_heap()  # see numerics._heap
    spec = check_instance(spec, _Spec, "spec")
    v = as_float_array(v, "v", ndim=1)
    if v.size != spec.size:
        raise ValueError(f"v: expected {spec.size} parameters for this spec, got {v.size}")
    Xt = as_float_array(Xt, "Xt", ndim=3)
    T, d, N = Xt.shape
    if (T, d) != (spec.owner.size, spec.d):
        raise ValueError(
            f"Xt: expected shape ({spec.owner.size}, {spec.d}, N) (tokens, features, prompts), "
            f"got {Xt.shape}"
        )
    for name, arr, shape in (("yt", yt, (T, N)), ("x", x, (N, d)), ("y_query", y_query, (N,))):
        a = as_float_array(arr, name, ndim=len(shape))
        if a.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    yt, x, y_query = (np.asarray(a, dtype=np.float64) for a in (yt, x, y_query))
    return _risk_and_grad(v, spec, Xt, yt, x, y_query)


def _risk_and_grad(
    v: np.ndarray, spec: _Spec, Xt: np.ndarray, yt: np.ndarray, x: np.ndarray, y_query: np.ndarray
) -> tuple[float, np.ndarray]:
    """:func:`empirical_risk_and_grad` without the argument checks: the optimiser's inner loop
    calls it on arrays built here, once per L-BFGS evaluation."""
    Ps, theta = spec.unpack(v)
    lgs = spec.log_gates(theta)
    Oms = [causal_weight_matrix(lg) for lg in lgs]
    scalar = spec.precond == "scalar"
    W, cache = _forward(Xt, yt, Ps, Oms, keep=True, scalar=scalar)
    T, d, N = Xt.shape
    e = y_query - np.einsum("bd,db->b", x, W[T - 1])
    loss = float(np.mean(e * e))
    G = np.zeros_like(Xt)
    G[T - 1] = (-2.0 / N) * (x.T * e)
    grad = np.zeros((spec.L, spec.n_P + spec.n_theta))
    m = spec.owner >= 0
    for l in range(spec.L - 1, -1, -1):
        V, U = cache[l]
        if scalar:
            # the trace of ∂P; einsum, not np.vdot: OpenBLAS runs a ddot this long on its
            # threads where the caller has not limited them (2x the CPU time, same wall time)
            grad[l, 0] = np.einsum("tfb,tfb->", G, U)
        else:
            # ∂P = Σ_t G_t U_tᵀ: one (d, d) product per token over the N prompts
            grad[l, : spec.n_P] = np.matmul(G, U.transpose(0, 2, 1)).sum(axis=0).ravel()
        G2, V2 = G.reshape(T, d * N), V.reshape(T, d * N)
        if scalar:
            # ∂U = p G is never formed: p scales the (T, T) factors instead (one pass less)
            p = Ps[l][0, 0]
            dOm = _mm(G2, V2.T) * p if spec.n_theta else None
            dV = _mm(p * Oms[l].T, G2) if l > 0 else None
        elif spec.n_theta or l > 0:  # (linear attention's layer 0 needs only ∂P)
            dU = np.matmul(Ps[l].T, G).reshape(T, d * N)
            dOm = _mm(dU, V2.T) if spec.n_theta else None
            dV = _mm(Oms[l].T, dU) if l > 0 else None
        else:
            dOm = dV = None
        if dOm is not None:
            Mt = np.tril(dOm * Oms[l])
            # Σ_{i>=k} Σ_{j<k} Mt_ij via a 2-D cumulative sum (suffix over rows, prefix over columns)
            C = np.cumsum(np.cumsum(Mt[::-1], axis=0)[::-1], axis=1)
            dlg = np.zeros(T)
            dlg[1:] = C[np.arange(1, T), np.arange(T - 1)]
            g_theta = np.zeros(spec.K)
            # d log σ(θ)/dθ = 1 − σ(θ) = σ(−θ)
            np.add.at(
                g_theta, spec.owner[m], dlg[m] * np.exp(_log_sigmoid(-theta[l, spec.owner[m]]))
            )
            grad[l, spec.n_P :] = g_theta
        if dV is not None:
            G -= Xt * _inner(dV.reshape(T, d, N), Xt)[:, None, :]
    return loss, grad.ravel()


# ----------------------------------------------------------------------------- optimisation
@dataclass
class DepthSolution:
    """A trained depth-``L`` model.

    ``P``: ``L`` matrices ``(d, d)``; ``theta: (L, K)`` delimiter logits (``(L, 0)`` for linear
    attention); ``log_g: (L, n+1)`` the induced token log-gates; ``omega_query: (L, n)`` the
    query's weights on the examples in each layer; ``train_risk`` the empirical risk on the
    ``num_train`` training prompts; ``info`` optimiser diagnostics.
    """

    L: int
    architecture: str
    precond: str
    P: list
    theta: np.ndarray
    log_g: np.ndarray
    train_risk: float
    num_train: int
    seed: int
    info: dict = field(default_factory=dict)

    @property
    def omega_query(self) -> np.ndarray:
        return np.stack([causal_weight_matrix(lg)[-1, :-1] for lg in self.log_g])

    def predict(self, X: ArrayLike, y: ArrayLike, x: ArrayLike) -> np.ndarray:
        """``ŷ: (N,)`` of this model (see :func:`depth_predict`)."""
        return depth_predict(X, y, x, self.P, list(self.log_g))

    def predictor(self) -> Callable[[Prompts], np.ndarray]:
        return lambda p: self.predict(p.X, p.y, p.x)


def _resolve_precond(model: MultitaskModel, precond: str) -> str:
    if precond == "auto":
        S = model.Sigma
        iso = np.allclose(S, S[0, 0] * np.eye(model.d), rtol=0, atol=1e-12 * max(1.0, abs(S[0, 0])))
        return "scalar" if iso else "full"
    return _check_choice(precond, "precond", PRECONDS + ("auto",))


def optimise_depth(
    model: MultitaskModel,
    L: int,
    *,
    num_train: int,
    seed: int,
    architecture: str = "gla",
    precond: str = "auto",
    insert: str = "all",
    maxiter: int = 300,
    train: Prompts | None = None,
) -> list[DepthSolution]:
    r"""Train depths ``1..L`` by sample-average approximation; returns ``L`` solutions (depth 1 first).

    Parameters
    ----------
    model : the multitask model (segments give the delimiter positions).
    L : maximal depth (>= 1).
    num_train : number of fixed training prompts (>= 2), drawn with ``np.random.default_rng(seed)``
        (common random numbers: every depth and, for equal seeds, every architecture sees the
        same prompts).
    seed : training seed.
    architecture : ``"gla"`` (delimiter-gated, monotone block weights) or ``"linear"`` (gates 1).
    precond : ``"scalar"`` (``P_ℓ = p_ℓ I``), ``"full"`` or ``"auto"`` (scalar iff ``Σ ∝ I``).
    insert : where the switched-off layer of a warm start goes: ``"all"`` tries every position
        ``0..L−1`` (a ``P = 0`` layer is the identity wherever it sits) and keeps the best run,
        ``"last"`` only appends it.
    maxiter : L-BFGS-B iteration cap per run.
    train : optional pre-drawn training prompts (overrides ``num_train``/``seed`` sampling).

    Depth 1 starts from ``P = I/(n + d + 1)`` (the single-task optimum's scale, L6) and
    ``θ = 0`` (gates 1/2). Depth ``ℓ+1`` starts from the depth-``ℓ`` optimum with a layer with
    ``P = 0`` inserted: every start has exactly the depth-``ℓ`` training risk, and a run's result
    is kept only if it is not above its start, so ``train_risk`` is non-increasing in depth.
    """
    keep_heap()  # see numerics._heap: every L-BFGS evaluation reuses the same temporaries
    model = _check_model(model)
    L = _pos_int(L, "L")
    architecture = _check_choice(architecture, "architecture", ARCHITECTURES)
    precond = _resolve_precond(model, precond)
    maxiter = _pos_int(maxiter, "maxiter")
    insert = _check_choice(insert, "insert", ("all", "last"))
    train = _training_prompts(model, train, num_train, seed)
    owner, K = segment_starts(model)
    d = model.d
    Xt, yt = _tokens(train.X, train.y, train.x)
    args_tail = (Xt, yt, train.x, train.y_query)
    opts = {"maxiter": maxiter, "ftol": _FTOL, "gtol": _GTOL, "maxcor": 30}
    out: list[DepthSolution] = []
    v_prev = None
    for depth in range(1, L + 1):
        spec = _Spec(depth, d, K, architecture, precond, owner)
        prev = None if v_prev is None else _Spec(depth - 1, d, K, architecture, precond, owner)
        sol, v_prev = _train_depth(spec, prev, v_prev, model.n, insert, args_tail, opts)
        out.append(replace(sol, num_train=train.N, seed=_seed_tag(seed)))
    return out


def _seed_tag(seed) -> int:
    """The seed recorded on a solution: the training seed, or -1 for given prompts."""
    return int(seed) if isinstance(seed, (int, np.integer)) else -1


def _train_depth(
    spec: _Spec,
    prev: _Spec | None,
    v_prev: np.ndarray | None,
    n: int,
    insert: str,
    args_tail: tuple,
    opts: dict,
) -> tuple[DepthSolution, np.ndarray]:
    """One depth of :func:`optimise_depth`: an L-BFGS-B run from every warm start, the best kept
    (the first of equal risks, as a strict ``<`` scan would). Returns the solution (its
    ``num_train`` and ``seed`` filled in by the caller) and its packed parameters."""
    depth = spec.L
    bounds = ([(None, None)] * spec.n_P + [(-THETA_MAX, THETA_MAX)] * spec.n_theta) * depth
    starts = _warm_starts(spec, prev, v_prev, n, insert)
    t0 = time.perf_counter()
    runs = [_run_from(spec, pos, v0, args_tail, bounds, opts) for pos, v0 in starts]
    best = min(runs, key=lambda r: r["risk"])
    Ps, theta = spec.unpack(best["v"])
    sol = DepthSolution(
        L=depth,
        architecture=spec.architecture,
        precond=spec.precond,
        P=[P.copy() for P in Ps],
        theta=np.array(theta, dtype=np.float64),
        log_g=spec.log_gates(theta),
        train_risk=best["risk"],
        num_train=0,
        seed=-1,
        info={
            "start_risk": runs[0]["start_risk"],
            "insert_at": best["insert_at"],
            "runs": [{k: v for k, v in r.items() if k != "v"} for r in runs],
            "seconds": time.perf_counter() - t0,
        },
    )
    return sol, best["v"]


def _training_prompts(model, train, num_train, seed) -> Prompts:
    """The given training prompts, or ``num_train`` prompts drawn with ``default_rng(seed)``."""
    if train is None:
        num_train = _pos_int(num_train, "num_train", 2)
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed: must be an integer, got {seed!r}")
        return model.sample(num_train, np.random.default_rng(seed))
    if not isinstance(train, Prompts):
        raise ValueError(f"train: expected Prompts, got {type(train).__name__}")
    return train


def _warm_starts(spec: _Spec, prev: _Spec | None, v_prev, n: int, insert: str) -> list:
    """``(insert position, start vector)`` for one depth: ``P = I/(n + d + 1)``, gates 1/2 at depth
    1; otherwise the previous optimum with a ``P = 0`` layer inserted (at every position or last)."""
    d = spec.d
    if prev is None:
        return [(None, spec.pack([np.eye(d) / (n + d + 1)], np.zeros((1, spec.n_theta))))]
    depth = spec.L
    Ps_prev, th_prev = prev.unpack(v_prev)
    starts = []
    for pos in range(depth) if insert == "all" else [depth - 1]:
        # the switched-off layer copies the gates of a neighbour (irrelevant while P = 0)
        src_row = th_prev[min(pos, depth - 2)]
        th0 = np.vstack([th_prev[:pos], src_row[None, :], th_prev[pos:]])
        starts.append((pos, spec.pack(Ps_prev[:pos] + [np.zeros((d, d))] + Ps_prev[pos:], th0)))
    return starts


def _run_from(spec, pos, v0, args_tail, bounds, opts) -> dict:
    """One L-BFGS-B run; its result is kept only if not above its start (never worse)."""
    f0 = _risk_and_grad(v0, spec, *args_tail)[0]
    res = minimize(
        _risk_and_grad,
        v0,
        args=(spec,) + args_tail,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options=opts,
    )
    f, v = (float(res.fun), res.x) if res.fun <= f0 else (float(f0), v0)
    return {
        "insert_at": pos,
        "start_risk": float(f0),
        "risk": f,
        "nit": int(res.nit),
        "message": str(res.message),
        "grad_norm": float(np.linalg.norm(res.jac)),
        "v": v,
    }


# ----------------------------------------------------------------------------- evaluation
@dataclass
class DepthEvaluation:
    """Test risks of several models on the same ``num_test`` fresh prompts.

    ``risk, stderr: (M,)`` mean squared error and its standard error (std ddof=1 / √N);
    ``diff_stderr: (M, M)`` the paired standard error of ``risk[i] − risk[j]`` (same prompts).
    """

    risk: np.ndarray
    stderr: np.ndarray
    diff_stderr: np.ndarray
    num_test: int
    seed: int


def evaluate_depth(
    model: MultitaskModel, solutions: Sequence, *, num_test: int, seed: int, batch_size: int = 8192
) -> DepthEvaluation:
    """Monte Carlo risks ``E(y − ŷ)²`` of ``solutions`` (anything with ``predictor()``, or callables
    ``Prompts -> ŷ``) on ``num_test`` prompts from ``np.random.default_rng(seed)``, drawn in
    batches of ``batch_size``; every model sees the same prompts (paired differences)."""
    keep_heap()  # see numerics._heap
    model = _check_model(model)
    num_test = _pos_int(num_test, "num_test", 2)
    batch_size = _pos_int(batch_size, "batch_size")
    seed = check_int(seed, "seed", min_value=0)
    preds = [s.predictor() if hasattr(s, "predictor") else s for s in solutions]
    if not preds or not all(callable(p) for p in preds):
        raise ValueError("solutions: expected a non-empty list of DepthSolution or callables")
    rng = np.random.default_rng(seed)
    M = len(preds)
    # Shifted streaming sums of the losses and of their pairwise products (for the paired
    # standard errors); the shift (first batch mean) keeps the variances accurate.
    s1 = np.zeros(M)
    s2 = np.zeros((M, M))
    shift: np.ndarray | None = None
    done = 0
    while done < num_test:
        k = min(batch_size, num_test - done)
        p = model.sample(k, rng)
        E = np.stack(
            [(p.y_query - np.asarray(f(p), dtype=np.float64)) ** 2 for f in preds]
        )  # (M, k)
        if shift is None:
            shift = E.mean(axis=1)
        E = E - shift[:, None]
        s1 += E.sum(axis=1)
        s2 += _mm(E, E.T)  # (a single product this long runs on OpenBLAS's threads)
        done += k
    assert shift is not None  # num_test >= 2, so at least one batch ran
    N = num_test
    mean_c = s1 / N
    cov = (s2 - N * np.outer(mean_c, mean_c)) / (N - 1)
    var = np.diag(cov)
    dvar = var[:, None] + var[None, :] - 2 * cov
    return DepthEvaluation(
        risk=shift + mean_c,
        stderr=np.sqrt(np.maximum(var, 0) / N),
        diff_stderr=np.sqrt(np.maximum(dvar, 0) / N),
        num_test=N,
        seed=int(seed),
    )


# ----------------------------------------------------------------------------- 1-layer reference
def one_layer_population_risk(model: MultitaskModel, sol: DepthSolution) -> float:
    """Exact population risk of a depth-1 solution: one WPGD step with ``ω = ω_{n+1, 1..n}``
    (the query's self-term vanishes in layer 0), by the closed form :func:`numerics.risk.wpgd_risk`."""
    model = _check_model(model)
    sol = check_instance(sol, DepthSolution, "sol")
    if sol.L != 1:
        raise ValueError(f"sol: needs a depth-1 solution, got L = {sol.L}")
    if sol.P[0].shape != (model.d, model.d) or sol.log_g.shape[1] != model.n + 1:
        raise ValueError(
            f"sol: was trained for d = {sol.P[0].shape[0]}, n = {sol.log_g.shape[1] - 1}; "
            f"model has d = {model.d}, n = {model.n}"
        )
    return wpgd_risk(model, sol.P[0], sol.omega_query[0])


def block_weights(model: MultitaskModel, omega: ArrayLike) -> np.ndarray:
    """Per-segment means of ``omega`` (one segment when the model has none).

    >>> from numerics.data import MultitaskModel
    >>> m = MultitaskModel.k_task([2, 1], np.eye(2), [0.1, 0.2], np.eye(1), 0.5)
    >>> block_weights(m, np.array([1.0, 3.0, 5.0])).tolist()
    [2.0, 5.0]
    """
    _, K = segment_starts(model)  # validates model
    omega = as_float_array(omega, "omega", ndim=1)
    if omega.shape != (model.n,):
        raise ValueError(
            f"omega: expected shape ({model.n},) (one weight per example), got {omega.shape}"
        )
    seg = (
        np.zeros(model.n, dtype=np.int64) if model.segments is None else np.asarray(model.segments)
    )
    return np.array([omega[seg == k].mean() for k in range(K)])


def one_layer_optimum(model: MultitaskModel, architecture: str = "gla") -> dict:
    r"""The optimal 1-layer population risk (closed form / certified), as a dict.

    * ``"linear"``: ``ω = 1``, ``P* = a(bΣ + cI)^{-1}``; risk = :func:`profile_risk` at ``ω = 1``.
    * ``"gla"``: the optimum over the monotone cone of block weights, certified by
      :func:`numerics.gla_landscape.solve_gla` (``source = "solve_gla"``).

    Keys: ``risk``, ``omega`` (n,), ``P`` (d, d), ``source``, ``block_weights`` (K,).
    """
    model = _check_model(model)
    architecture = _check_choice(architecture, "architecture", ARCHITECTURES)
    if architecture == "linear":
        om = np.ones(model.n)
        return {
            "risk": profile_risk(model, om),
            "omega": om,
            "P": optimal_P(model, om),
            "source": "omega = 1",
            "block_weights": block_weights(model, om),
        }
    # A solver error propagates: an earlier version caught every exception here and silently
    # fell back to another optimum, which could hide a broken solver.
    sol = solve_gla(model)
    om = np.asarray(sol.omega)
    return {
        "risk": float(sol.risk),
        "omega": om,
        "P": np.asarray(sol.P),
        "source": "solve_gla",
        "block_weights": block_weights(model, om),
    }
