r"""Weighted preconditioned gradient descent (WPGD) predictors.

Conventions (docs/conventions.md): batch-first arrays, ``X: (N, n, d)`` features of
the ``n`` in-context examples, ``y: (N, n)`` their labels, ``x: (N, d)`` the query,
``P: (d, d)`` a preconditioner (not necessarily symmetric), float64 throughout.

* One WPGD step from ``w_0 = 0``: ``ŷ = xᵀ P Xᵀ(ω ⊙ y) = xᵀ P Σ_i ω_i y_i x_i``.
* Feature-wise weights: ``ŷ = xᵀ P Σ_i y_i (Ω_i ⊙ x_i)``.
* Gate-induced weights: ``ω_i = Π_{j=i+1}^{n+1} g_j`` from the log-gates of all ``n+1``
  tokens (the query's own gate multiplies every weight).
* :func:`causal_wpgd`: the ``L``-step *causal* WPGD that the residual GLA stack
  implements (token ``i`` carries its own iterate ``w^{(i)}``; the query attends to
  itself, which adds a self-term once its iterate is non-zero).
* :func:`wpgd_multistep`: ordinary multi-step WPGD with one shared iterate.

This module is independent of :mod:`numerics.gla`: it evaluates the WPGD formulas
directly, so comparing it with the GLA engines is a genuine check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_float_array, as_log_gates, check_finite_output, check_prompt

__all__ = [
    "wpgd_predict",
    "wpgd_predict_featurewise",
    "weights_from_log_gates",
    "causal_wpgd",
    "wpgd_multistep",
]

GATES = ("scalar", "key")


# ----------------------------------------------------------------------------- validation


def _check_P(P, d: int, name: str = "P") -> np.ndarray:
    P = as_float_array(P, name, ndim=2)
    if P.shape != (d, d):
        raise ValueError(f"{name}: expected shape {(d, d)}, got {P.shape}")
    return P


def _check_weights(w, shape_single, N: int, name: str) -> np.ndarray:
    """Weights given once for all prompts (``shape_single``) or per prompt (``(N,) + shape_single``);
    returned with the batch axis. Weights may be any finite reals (WPGD allows negative ones)."""
    return _with_batch_axis(as_float_array(w, name), shape_single, N, name)


def _with_batch_axis(a: np.ndarray, shape_single, N: int, name: str) -> np.ndarray:
    """``a`` of shape ``shape_single`` broadcast to ``(N,) + shape_single``, or ``a`` itself if it
    has that shape already; else ``ValueError`` naming ``name``."""
    if a.shape == tuple(shape_single):
        return np.broadcast_to(a, (N,) + tuple(shape_single))
    if a.shape == (N,) + tuple(shape_single):
        return a
    raise ValueError(
        f"{name}: expected shape {tuple(shape_single)} or {(N,) + tuple(shape_single)}, got {a.shape}"
    )


def _check_gate(gate: str) -> None:
    if gate not in GATES:
        raise ValueError(f"gate: must be one of {GATES}, got {gate!r}")


def _as_list(seq, name: str) -> list:
    if isinstance(seq, np.ndarray):
        seq = list(seq)
    if not isinstance(seq, (list, tuple)) or len(seq) == 0:
        raise ValueError(f"{name}: expected a non-empty list (one entry per step/layer)")
    return list(seq)


# ----------------------------------------------------------------------------- one step
def wpgd_predict(
    X: ArrayLike, y: ArrayLike, x: ArrayLike, P: ArrayLike, omega: ArrayLike
) -> np.ndarray:
    """One WPGD step from zero: ``ŷ = xᵀ P Xᵀ(ω ⊙ y)``.

    Parameters
    ----------
    X : (N, n, d).  y : (N, n).  x : (N, d).  P : (d, d) (applied as ``xᵀ P``, no transpose).
    omega : (n,) shared by all prompts, or (N, n) per prompt.

    Returns
    -------
    yhat : (N,)

    >>> X = np.array([[[1.0], [2.0]]]); y = np.array([[1.0, 1.0]]); x = np.array([[1.0]])
    >>> wpgd_predict(X, y, x, np.eye(1), np.array([1.0, 0.5]))
    array([2.])
    """
    X, y, x = check_prompt(X, y, x)
    N, n, d = X.shape
    P = _check_P(P, d)
    omega = _check_weights(omega, (n,), N, "omega")
    with np.errstate(over="ignore", invalid="ignore"):
        u = np.einsum("bi,bid->bd", omega * y, X)  # Xᵀ(ω ⊙ y), (N, d)
        return check_finite_output(np.einsum("bd,de,be->b", x, P, u), "yhat", "X, y, x, P, omega")


def wpgd_predict_featurewise(
    X: ArrayLike, y: ArrayLike, x: ArrayLike, P: ArrayLike, Omega: ArrayLike
) -> np.ndarray:
    """One WPGD step with feature-wise weights: ``ŷ = xᵀ P Σ_i y_i (Ω_i ⊙ x_i)``.

    Parameters
    ----------
    X : (N, n, d).  y : (N, n).  x : (N, d).  P : (d, d).
    Omega : (n, d) shared, or (N, n, d) per prompt; ``Ω_{i,a}`` weights feature ``a`` of example ``i``.

    Returns
    -------
    yhat : (N,)
    """
    X, y, x = check_prompt(X, y, x)
    N, n, d = X.shape
    P = _check_P(P, d)
    Omega = _check_weights(Omega, (n, d), N, "Omega")
    with np.errstate(over="ignore", invalid="ignore"):
        u = np.einsum("bi,bid->bd", y, Omega * X)
        return check_finite_output(np.einsum("bd,de,be->b", x, P, u), "yhat", "X, y, x, P, Omega")


def weights_from_log_gates(log_g: ArrayLike, *, gate: str = "scalar") -> np.ndarray:
    """WPGD weights induced by the gates of all ``n+1`` tokens (examples then query).

    ``ω_i = Π_{j=i+1}^{n+1} g_j`` for ``i = 1..n``, evaluated in log space as
    ``exp(Σ_{j>i} log g_j)``.

    Parameters
    ----------
    log_g : log-gates ``<= 0`` (``-inf`` = gate 0).
        ``gate="scalar"``: shape ``(..., n+1)``, tokens on the **last** axis → ω ``(..., n)``.
        ``gate="key"``: shape ``(..., n+1, d)``, tokens on axis ``-2``, one gate per key
        feature → Ω ``(..., n, d)`` with ``Ω_{i,a} = Π_{j>i} γ_{j,a}``.

    Notes
    -----
    Suffix sums ``Σ_{j>i} log g_j`` are accumulated directly rather than as the
    difference ``c_{n+1} - c_i`` of cumulative log-gates: with a gate of exactly 0 the
    difference would be ``-inf - (-inf) = nan``, and for long prompts it cancels
    catastrophically, while the suffix sum stays exact (``-inf`` propagates to weight 0).

    >>> weights_from_log_gates(np.log(np.array([[0.5, 0.5, 1.0]])))
    array([[0.5, 1. ]])
    """
    _check_gate(gate)
    a = as_log_gates(log_g, "log_g")
    axis = -1 if gate == "scalar" else -2
    if a.ndim < (1 if gate == "scalar" else 2):
        raise ValueError(
            f"log_g: gate={gate!r} needs at least {1 if gate == 'scalar' else 2} dimensions, "
            f"got shape {a.shape}"
        )
    if a.shape[axis] < 1:
        raise ValueError("log_g: needs at least one token (the query)")
    a = np.moveaxis(a, axis, -1)
    # suffix[..., i] = Σ_{j >= i} log g_j ; weights use Σ_{j > i} = suffix[..., i+1]
    suffix = np.flip(np.cumsum(np.flip(a, -1), axis=-1), -1)
    w = np.exp(suffix[..., 1:])
    return np.moveaxis(w, -1, axis)


# ----------------------------------------------------------------------------- multi-step
def _causal_weights(log_g_tokens: np.ndarray) -> np.ndarray:
    """Lower-triangular weights ``W[..., i, j] = Π_{k=j+1}^{i} g_k`` (``j <= i``; 1 on the diagonal).

    ``log_g_tokens``: ``(N, T)`` or ``(N, T, d)`` with tokens on axis 1. Built prefix by
    prefix with :func:`weights_from_log_gates` (O(T²), no cancellation, gate 0 safe).
    Returns ``(N, T, T)`` or ``(N, T, T, d)``.
    """
    N, T = log_g_tokens.shape[:2]
    gate = "scalar" if log_g_tokens.ndim == 2 else "key"
    W = np.zeros((N, T, T) + log_g_tokens.shape[2:])
    for i in range(T):
        prefix = log_g_tokens[:, : i + 1]
        W[:, i, :i] = weights_from_log_gates(prefix, gate=gate)
        W[:, i, i] = 1.0
    return W


def _check_steps(P_list, per_step, name: str, d: int) -> tuple[list[np.ndarray], list]:
    """One preconditioner per step and one ``name`` entry per step, as lists (errors name the argument)."""
    P_list = _as_list(P_list, "P_list")
    per_step = _as_list(per_step, name)
    if len(P_list) != len(per_step):
        raise ValueError(f"{name}: has {len(per_step)} entries but P_list has {len(P_list)}")
    return [_check_P(P, d, f"P_list[{l}]") for l, P in enumerate(P_list)], per_step


def causal_wpgd(
    X: ArrayLike,
    y: ArrayLike,
    x: ArrayLike,
    P_list: ArrayLike | Sequence[ArrayLike],
    log_g_list: ArrayLike | Sequence[ArrayLike],
    *,
    gate: str = "scalar",
    return_iterates: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""``L``-step causal WPGD, the algorithm implemented by the residual GLA stack (claim C3).

    Tokens ``1..n`` are the examples, token ``n+1`` the query with label ``y_{n+1} = 0``.
    Every token carries its own iterate, ``w^{(i)}_0 = 0``, and for ``ℓ = 0..L-1``

    ``w^{(i)}_{ℓ+1} = w^{(i)}_ℓ + P_ℓ Σ_{j<=i} ω^{(ℓ)}_{ij} x_j (y_j − x_jᵀ w^{(j)}_ℓ)``,
    ``ω^{(ℓ)}_{ij} = Π_{k=j+1}^{i} g^{(ℓ)}_k`` (``ω_{ii} = 1``).

    The sum for the query includes ``j = n+1`` itself: its contribution is the
    self-term ``−P_ℓ x xᵀ w^{(n+1)}_ℓ`` (zero at ``ℓ = 0``). With ``gate="key"`` the
    scalar ``ω_{ij} x_j`` is replaced by the feature-wise ``Ω^{(ℓ)}_{ij} ⊙ x_j`` with
    ``Ω_{ij} = Π_{k=j+1}^{i} γ_k`` (entrywise).

    Parameters
    ----------
    X : (N, n, d).  y : (N, n).  x : (N, d).
    P_list : L matrices (d, d).
    log_g_list : L arrays of log-gates of all ``n+1`` tokens; ``gate="scalar"``: ``(n+1,)``
        or ``(N, n+1)``; ``gate="key"``: ``(n+1, d)`` or ``(N, n+1, d)``.
    return_iterates : also return the iterates ``W: (N, L+1, n+1, d)``, ``W[:, ℓ, i] = w^{(i+1)}_ℓ``.

    Returns
    -------
    yhat : (N,) the prediction ``xᵀ w^{(n+1)}_L`` (and ``W`` if ``return_iterates``).

    >>> X = np.array([[[1.0], [2.0]]]); y = np.array([[1.0, 2.0]]); x = np.array([[1.0]])
    >>> lg = np.zeros((1, 3))
    >>> P = [0.1 * np.eye(1)]
    >>> bool(np.allclose(causal_wpgd(X, y, x, P, [lg]), wpgd_multistep(X, y, x, P, [np.ones(2)])))   # L = 1
    True
    """
    _check_gate(gate)
    X, y, x = check_prompt(X, y, x)
    N, n, d = X.shape
    Ps, log_g_list = _check_steps(P_list, log_g_list, "log_g_list", d)
    single = (n + 1,) if gate == "scalar" else (n + 1, d)
    lgs = []
    for l, lg in enumerate(log_g_list):
        lg = as_log_gates(lg, f"log_g_list[{l}]")
        lgs.append(_with_batch_axis(lg, single, N, f"log_g_list[{l}]"))
    Xt = np.concatenate([X, x[:, None, :]], axis=1)  # (N, T, d), T = n+1
    yt = np.concatenate([y, np.zeros((N, 1))], axis=1)  # query label slot is 0
    L = len(Ps)
    Wit = np.zeros((N, L + 1, n + 1, d))
    for l in range(L):
        w = Wit[:, l]
        resid = yt - np.einsum("btd,btd->bt", Xt, w)  # y_j − x_jᵀ w^{(j)}_ℓ
        Om = _causal_weights(lgs[l])
        if gate == "scalar":
            u = np.einsum("bij,bjd,bj->bid", Om, Xt, resid)
        else:
            u = np.einsum("bijd,bjd,bj->bid", Om, Xt, resid)
        Wit[:, l + 1] = w + np.einsum("de,bie->bid", Ps[l], u)
    yhat = check_finite_output(
        np.einsum("bd,bd->b", x, Wit[:, L, n]), "yhat", "X, y, x, P_list, log_g_list"
    )
    return (yhat, Wit) if return_iterates else yhat


def wpgd_multistep(
    X: ArrayLike,
    y: ArrayLike,
    x: ArrayLike,
    P_list: ArrayLike | Sequence[ArrayLike],
    omega_list: ArrayLike | Sequence[ArrayLike],
    *,
    return_iterates: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""Ordinary (non-causal) ``L``-step WPGD with one shared iterate, ``w_0 = 0``:

    ``w_{ℓ+1} = w_ℓ + P_ℓ Σ_{j<=n} ω^{(ℓ)}_j x_j (y_j − x_jᵀ w_ℓ)``; prediction ``xᵀ w_L``.
    The query does not enter the updates. For ``L = 1`` this is :func:`wpgd_predict`.

    Parameters
    ----------
    X : (N, n, d).  y : (N, n).  x : (N, d).  P_list : L matrices (d, d).
    omega_list : L weight vectors, each (n,) or (N, n).
    return_iterates : also return ``W: (N, L+1, d)``.

    Returns
    -------
    yhat : (N,) (and ``W`` if ``return_iterates``).

    >>> X = np.array([[[1.0], [2.0]]]); y = np.array([[1.0, 2.0]]); x = np.array([[1.0]])
    >>> wpgd_multistep(X, y, x, [0.1 * np.eye(1)], [np.ones(2)])
    array([0.5])
    """
    X, y, x = check_prompt(X, y, x)
    N, n, d = X.shape
    Ps, omega_list = _check_steps(P_list, omega_list, "omega_list", d)
    oms = [_check_weights(o, (n,), N, f"omega_list[{l}]") for l, o in enumerate(omega_list)]
    L = len(Ps)
    W = np.zeros((N, L + 1, d))
    for l in range(L):
        resid = y - np.einsum("bjd,bd->bj", X, W[:, l])
        u = np.einsum("bj,bjd->bd", oms[l] * resid, X)
        W[:, l + 1] = W[:, l] + u @ Ps[l].T
    yhat = check_finite_output(
        np.einsum("bd,bd->b", x, W[:, L]), "yhat", "X, y, x, P_list, omega_list"
    )
    return (yhat, W) if return_iterates else yhat
