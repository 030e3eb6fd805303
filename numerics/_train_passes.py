r"""Forward and reverse passes of the residual GLA model of :mod:`numerics.train`.

Private to :mod:`numerics.train` (the model, its conventions and the public entry points are
documented there).  A model of ``L`` layers is run as three kinds of layer, chosen by what the
rest of the model reads from each:

* the **read-out layer** (the last one): only the query's label slot matters, a closed form
  over tokens (``ŷ = z_lab + q_{T-1} · Σ_t a_t (k_t ⊙ e_t)``, ``O(N T Dk)``, no state);
* the **feed layer** (the one below it, scalar or no gates): the read-out layer reads each
  token only through three per-prompt directions ``M_n = [W_v[lab], W_kᵀ q_{T-1}, w_g]``
  (:func:`_readout_rows`), so this layer runs its attention on the projected values
  ``V M_n = Y (W_vᵀ M_n)`` (3 columns instead of ``D``; ``V`` itself is never formed) and its
  reverse pass receives a gradient of rank 3 per prompt plus one dense row on the query
  token, which joins the query's row of the score gradient (dense and state forms) or is
  handled by a closed form over tokens (chunked engine) (:class:`_FeedLayer`); unpadded
  prompts of :data:`STATE_MIN_T` to :data:`DENSE_MAX_T` tokens run it in the state form, a
  recurrent ``(Dk, m)`` state per token kept token-major with the prompts innermost
  (:class:`_FeedState`, exact for any decay);
* **full layers** (all others, and the feed position for key gates, whose read-out reads
  ``2 Dk + 1 >= D`` directions): every token's output (:class:`_Layer`; prompts of at most
  :data:`DENSE_MAX_T` tokens within the dense form's range run feature-major in chunks of at
  most :data:`FM_CHUNK` tokens, :class:`_FullFM`, the residual stream then kept as
  ``(D, N, Tp)`` between such layers, padded to whole chunks).

Attention below the read-out runs per prompt in the dense form (:class:`_Dense`, short prompts
whose decays it can factorise; the score blocks on and below the diagonal only) or on the
chunked engine, whose reverse pass reuses the forward's chunk states
(:func:`numerics.gla.backward.gla_chunked_vjp_unchecked`: the training passes check their own
projections, predictions and gradients, so the engine's scans of its inputs and results are
skipped).  Every layer's projections ``q, k, v, u`` are one matmul, and so are their weight
and input gradients (:func:`_param_grads`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from . import gla
from ._blas import features_matmul, features_wgrad, tokens_matmul, tokens_wgrad
from ._validate import _finite_sum
from .gla._common import _exp_nonpos, _running_sum_tokens
from .gla.backward import gla_chunked_vjp_unchecked

__all__ = [
    "DENSE_BLOCK_BYTES",
    "FM_BLOCK_BYTES",
    "FM_CHUNK",
    "DENSE_MAX_LOG_DECAY",
    "DENSE_MAX_T",
    "forward_backward",
    "predict_layers",
]

Layer = dict[str, np.ndarray]
Grads = dict[str, np.ndarray]


class _Overflow(ValueError):
    """A prediction or loss beyond the float64 range (reported by ``loss_and_grad``)."""


# --------------------------------------------------------------------------- gate algebra


def _log_sigmoid_parts(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log_sigmoid(u), L)`` with ``L = log1p(exp(-|u|))``, kept for :func:`_sigmoid_neg`."""
    L = np.log1p(_exp_nonpos(-np.abs(u)))
    return np.minimum(u, 0.0) - L, L


def _sigmoid_neg(u: np.ndarray, L: np.ndarray) -> np.ndarray:
    """``sigmoid(-u) = d log_sigmoid(u) / du = exp(min(-u, 0) - L)`` in log space (no overflow,
    no cancellation for ``u`` near ``±∞``), reusing ``L`` of :func:`_log_sigmoid_parts`.
    In place in one buffer: the same operations in the same order as
    ``exp(minimum(-u, 0) - L)``, so the same bits, without three temporaries."""
    t = np.negative(u)
    np.minimum(t, 0.0, out=t)
    t -= L
    return _exp_nonpos(t, out=t)


def _prompt_invariant(u: np.ndarray) -> np.ndarray:
    """``u[:1]`` if every prompt's slice of ``u: (N, ...)`` equals the first's bit for bit, else
    ``u``.  Gate logits that read only channels every prompt shares (the WPGD restriction's
    structural channels) are the same for every prompt; the gate algebra (log-sigmoid, the
    suffix sums, ``exp``) then runs on one prompt and broadcasts, with the same bits as per
    prompt.  A NaN compares unequal, so it keeps the per-prompt path.

    >>> u = np.zeros((3, 2))
    >>> _prompt_invariant(u).shape, _prompt_invariant(u + [[0], [1], [0]]).shape
    ((1, 2), (3, 2))
    """
    if u.shape[0] > 1 and np.array_equal(u[1], u[0]) and bool((u == u[:1]).all()):
        return u[:1]
    return u


def _suffix_log_decay(lg: np.ndarray) -> np.ndarray:
    """``s_t = Σ_{r=t+1}^{T-1} lg_r`` along axis 1 (so ``exp(s_t) = Π_{r>t} g_r``, ``s_{T-1} = 0``),
    a reverse running sum (:func:`numerics.gla.suffix_log_decay`), not ``c_{T-1} − c_t``."""
    return gla.suffix_log_decay(lg)[0]


def _excl_cumsum_tokens(x: np.ndarray) -> np.ndarray:
    """``out_t = Σ_{s<t} x_s`` along axis 1 of ``(N, T)`` or ``(N, T, Dk)``
    (:func:`numerics.gla._common._running_sum_tokens`)."""
    return _running_sum_tokens(x, exclusive=True)


def _gate_logits(Z: np.ndarray, p: Layer, gate: str) -> np.ndarray | None:
    """Gate pre-activations ``u``: ``(N, T)`` (scalar) or ``(N, T, Dk)`` (key); None for "none"."""
    if gate == "scalar":
        return Z @ p["w_g"] + p["b_g"]
    if gate == "key":
        return Z @ p["W_g"].T + p["b_g"]
    return None


def _gate_rows(p: Layer, gate: str) -> np.ndarray | None:
    """The gate weights as rows of a projection (``(1, D)`` scalar, ``(Dk, D)`` key, or None)."""
    if gate == "scalar":
        return p["w_g"][None, :]
    if gate == "key":
        return p["W_g"]
    return None


def _projection(Z: np.ndarray, p: Layer, gate: str) -> tuple[np.ndarray, np.ndarray]:
    """``(W, P = Z Wᵀ)`` with ``W = [W_q; W_k; W_v; gate rows]``: every projection of a layer
    in one product.  Refuses (``_Overflow``) a product beyond the float64 range."""
    rows = [p["W_q"], p["W_k"], p["W_v"]]
    g = _gate_rows(p, gate)
    if g is not None:
        rows.append(g)
    W = np.concatenate(rows, axis=0)  # (2 Dk + D [+ gate rows], D)
    P = tokens_matmul(Z, W.T)
    if not (_finite_sum(P) or np.all(np.isfinite(P))):
        raise _Overflow(
            f"params, Z: a projection overflows float64 (max |Z| = {np.max(np.abs(Z)):.3g})"
        )
    return W, P


def _wgrad(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``Σ_{n,t} dA[n,t]ᵀ ⊗ Z[n,t]`` (weight gradient of ``A = Z Wᵀ``), ``(Dout, D)``.

    Summed over serial-sized row blocks (:func:`numerics._blas.tokens_wgrad`): a single tall
    ``(N·T, ·)`` GEMM goes through multithreaded BLAS, which is ~10x slower on a shared
    2-core machine."""
    return tokens_wgrad(dA, Z)


def _param_grads(
    dP: np.ndarray, Z: np.ndarray, W: np.ndarray, p: Layer, gate: str, need_dZ: bool
) -> tuple[Grads, np.ndarray | None]:
    """Weight gradients of ``P = Z Wᵀ`` (:func:`_projection`) split back into ``W_q, W_k,
    W_v`` and the gate weights and bias, and the input path ``dZ = dP W`` (None unless
    ``need_dZ``)."""
    dW = _wgrad(dP, Z)
    g, r = {}, 0
    for name in ("W_q", "W_k", "W_v"):
        n = p[name].shape[0]
        g[name] = dW[r : r + n]
        r += n
    if gate == "scalar":
        g["w_g"] = dW[r]
        g["b_g"] = np.array(dP[..., r].sum())
    elif gate == "key":
        g["W_g"] = dW[r:]
        # over contiguous rows of dP, then the gate columns: the same bits as summing the
        # strided column block, 0.8 ms against 6-7 ms at the seq shape of bench/train.py
        g["b_g"] = dP.reshape(-1, dP.shape[-1]).sum(axis=0)[r:]
    return g, (tokens_matmul(dP, W) if need_dZ else None)


def _engine_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, an engine call whose inputs are finite: a ``ValueError`` can
    then only be an overflow, reported as ``_Overflow`` naming the model's inputs."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise _Overflow(f"params, Z: {exc}") from None


# --------------------------------------------------------------------------- dense scores

#: Prompts of at most this many tokens run their full layers in the dense form
#: (:class:`_Dense`) instead of the chunked engine: for short prompts the whole ``(T, T)``
#: score matrix per prompt is a handful of batched products and elementwise passes, cheaper
#: than the engine's chunk bookkeeping (measured with ``bench/train.py`` and
#: ``/usr/bin/time``-free CPU-time ratios: ~2x at T = 41 and ~1.3x at T = 129).
DENSE_MAX_T = 256
#: Size of the score blocks of the dense form (prompts per block ``≈ this / (8 T²)``).
DENSE_BLOCK_BYTES = 1 << 22
#: The dense form factorises the decays, ``exp(c_t - c_s) = exp(c_t) · exp(-c_s)`` with ``c``
#: the running sums of the log-gates, so the decayed scores are one product
#: ``(Q ⊙ e^c)(K ⊙ e^-c)ᵀ``; the factors stay far inside the float64 range (``e^±100``) and
#: lose nothing to rounding (the absolute error ``<= T·eps·|c_{T-1}|`` of ``c`` is the
#: relative error of a decay: ``<= 1.5e-12`` here) when the prompt's total log-decay
#: ``|c_{T-1}| <= DENSE_MAX_LOG_DECAY``; prompts with stronger decay take the chunked engine,
#: whose exact path does not factorise.
DENSE_MAX_LOG_DECAY = 100.0


@lru_cache(maxsize=16)
def _tril(T: int) -> np.ndarray:
    """``(T, T)`` float mask: 1 on and below the diagonal, 0 above.  Cached, read-only."""
    m = np.tril(np.ones((T, T)))
    m.flags.writeable = False
    return m


def _dense_prompts(lg: np.ndarray | None, T: int) -> np.ndarray:
    """Per prompt, whether it may run in the dense form: ``T <= DENSE_MAX_T`` and a total
    log-decay ``<= DENSE_MAX_LOG_DECAY`` (per key coordinate for key gates)."""
    if lg is None:
        return np.full(1, T <= DENSE_MAX_T)
    if T > DENSE_MAX_T:
        return np.zeros(lg.shape[0], dtype=bool)
    tot = -lg.sum(axis=1)
    if tot.ndim == 2:
        tot = tot.max(axis=1)
    return tot <= DENSE_MAX_LOG_DECAY


#: Token blocks of the dense form: prompts longer than this are cut into about equal blocks
#: of at most this many tokens and only the score blocks on and below the diagonal are
#: formed (for two blocks 3 of 4, a quarter of the products saved, and only the diagonal
#: blocks need the causal mask); shorter ones are one block.  Blocks of ~64 tokens keep
#: each batched product large enough that its per-prompt BLAS calls cost little beside the
#: arithmetic (measured with ``bench/train.py`` at T = 129: 0.8x the one-block time).
DENSE_TOKEN_BLOCK = 64


def _token_blocks(T: int) -> list[slice]:
    """``T`` tokens as ``ceil(T / DENSE_TOKEN_BLOCK)`` consecutive slices of about equal length."""
    nb = -(-T // DENSE_TOKEN_BLOCK)
    edges = [(T * i) // nb for i in range(nb + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


class _Dense:
    """Causal decayed scores of short prompts in full: ``A_ts = Σ_d q_td k_sd exp(c_td - c_sd)``
    for ``s <= t`` (0 above the diagonal), ``c`` the running sums of the log-gates (scalar
    gates ``lg: (N, T)``, the same decay for every ``d``; key gates ``lg: (N, T, Dk)``, on the
    key axis; ``lg=None``: no gates), computed as ``tril(Q̃ K̃ᵀ)`` with ``Q̃ = Q ⊙ e^c``,
    ``K̃ = K ⊙ e^-c``; the layer output is ``O = A V`` (:meth:`apply`).  Kept in blocks of
    prompts of about :data:`DENSE_BLOCK_BYTES` each, so that the passes over a block run in
    cache, and, for long prompts, as the blocks ``A[i, j]`` (``j <= i``) of consecutive
    token blocks (:data:`DENSE_TOKEN_BLOCK`; the blocks above the diagonal are 0 and never
    formed).

    Reverse (:meth:`backward`): ``dQ̃ = tril(dA) K̃``, ``dK̃ = tril(dA)ᵀ Q̃`` and, since ``c_t``
    scales row ``t`` of ``Q̃`` and column ``t`` of ``K̃ᵀ``, ``∂/∂c_t = Q̃_t · dQ̃_t − K̃_t · dK̃_t``
    (per key coordinate for key gates: ``Q̃_td dQ̃_td − K̃_td dK̃_td``) and
    ``d log g_r = Σ_{t>=r} ∂/∂c_t``.  The diagonal pairs appear in both terms and cancel
    (as in the engine's factorised key path): the gate gradient carries an absolute error of
    ``~T·eps`` times the scale of ``dA ⊙ A``, far below the gradient's scale.
    """

    def __init__(self, q: np.ndarray, k: np.ndarray, lg: np.ndarray | None) -> None:
        N, T, _ = q.shape
        self.gated, self.key = lg is not None, False
        if lg is None:
            self.Qt, self.Kt = q, k
        else:
            c = np.cumsum(lg, axis=1)
            self.key = lg.ndim == 3
            if not self.key:
                c = c[..., None]
            self.ec = np.exp(c)  # (N, T, 1 | Dk); e^-c as 1 / e^c (half the time of exp)
            self.Qt = q * self.ec
            self.Kt = k / self.ec
        nb = max(1, min(N, DENSE_BLOCK_BYTES // (8 * T * T)))
        self.blocks = [slice(b, min(N, b + nb)) for b in range(0, N, nb)]
        self.tb = _token_blocks(T)
        self.A: list[dict[tuple[int, int], np.ndarray]] = []
        for sl in self.blocks:
            Ab = {}
            for i, ti in enumerate(self.tb):
                for j, tj in enumerate(self.tb[: i + 1]):
                    A = np.matmul(self.Qt[sl, ti], self.Kt[sl, tj].transpose(0, 2, 1))
                    if i == j:
                        A *= _tril(ti.stop - ti.start)
                    Ab[i, j] = A
            self.A.append(Ab)

    def _pairs(self):
        """``(i, j, ti, tj)`` for the formed score blocks (``j <= i``), row block by row block."""
        for i, ti in enumerate(self.tb):
            for j, tj in enumerate(self.tb[: i + 1]):
                yield i, j, ti, tj

    def apply(self, V: np.ndarray) -> np.ndarray:
        """``A V: (N, T, m)`` for ``V: (N, T, m)`` (kept for :meth:`vjp`)."""
        self.V = V
        out = np.empty(V.shape)
        for sl, Ab in zip(self.blocks, self.A):
            for i, j, ti, tj in self._pairs():
                if j == 0:
                    np.matmul(Ab[i, j], V[sl, tj], out=out[sl, ti])
                else:
                    out[sl, ti] += np.matmul(Ab[i, j], V[sl, tj])
        return out

    def apply_t(self, dO: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``Aᵀ dO: (N, T, m)`` for ``dO: (N, T, m)`` (into ``out`` if given)."""
        if out is None:
            out = np.empty(dO.shape)
        for b in range(len(self.blocks)):
            self._apply_t_block(b, dO, out)
        return out

    def _apply_t_block(self, b: int, dO: np.ndarray, out: np.ndarray) -> None:
        """:meth:`apply_t` on the prompts of block ``b`` (rows ``self.blocks[b]`` of both)."""
        sl, Ab = self.blocks[b], self.A[b]
        for i, j, ti, tj in self._pairs():
            if i == j:  # the first contribution to column block j (rows i >= j)
                np.matmul(Ab[i, j].transpose(0, 2, 1), dO[sl, ti], out=out[sl, tj])
        for i, j, ti, tj in self._pairs():
            if i != j:
                out[sl, tj] += np.matmul(Ab[i, j].transpose(0, 2, 1), dO[sl, ti])

    def backward(
        self,
        dO: np.ndarray,
        V: np.ndarray,
        dq: np.ndarray,
        dk: np.ndarray,
        dlg: np.ndarray | None,
        row_add: np.ndarray | None = None,
        dV: np.ndarray | None = None,
    ) -> None:
        """Gradients of ``Σ <dO, A V>`` (plus ``Σ_s row_add_s A_{T-1,s}`` if given) with
        respect to ``q, k`` and, with gates, the log-gates, written into ``dq, dk, dlg``
        (arrays or views of the shapes of ``q, k, lg``); with ``dV`` also ``Aᵀ dO`` into it
        (:meth:`apply_t`), block by block while the block's scores are in cache."""
        one = len(self.tb) == 1
        last = len(self.tb) - 1
        for b, sl in enumerate(self.blocks):
            if dV is not None:
                self._apply_t_block(b, dO, dV)
            n = sl.stop - sl.start
            if one and not self.gated:  # straight into the caller's (possibly strided) arrays
                dQt, dKt = dq[sl], dk[sl]
            else:
                dQt, dKt = np.empty((n,) + dq.shape[1:]), np.empty((n,) + dk.shape[1:])
            for i, j, ti, tj in self._pairs():
                dA = np.matmul(dO[sl, ti], V[sl, tj].transpose(0, 2, 1))
                if row_add is not None and i == last:
                    dA[:, -1] += row_add[sl, tj]
                if i == j:
                    dA *= _tril(ti.stop - ti.start)
                if j == 0:
                    np.matmul(dA, self.Kt[sl, tj], out=dQt[:, ti])
                else:
                    dQt[:, ti] += np.matmul(dA, self.Kt[sl, tj])
                if i == j:
                    np.matmul(dA.transpose(0, 2, 1), self.Qt[sl, ti], out=dKt[:, tj])
                else:  # rows i > j come after the diagonal block (i = j) of column block j
                    dKt[:, tj] += np.matmul(dA.transpose(0, 2, 1), self.Qt[sl, ti])
            if not self.gated:
                if not one:
                    dq[sl], dk[sl] = dQt, dKt
                continue
            if dlg is not None:
                if self.key:
                    dc = dQt * self.Qt[sl]
                    dc -= dKt * self.Kt[sl]
                else:
                    dc = np.einsum("ntd,ntd->nt", dQt, self.Qt[sl])
                    dc -= np.einsum("ntd,ntd->nt", dKt, self.Kt[sl])
                dlg[sl] = np.cumsum(dc[:, ::-1], axis=1)[:, ::-1]  # Σ_{t>=r} dc_t
            np.multiply(dQt, self.ec[sl], out=dq[sl])
            np.divide(dKt, self.ec[sl], out=dk[sl])


# --------------------------------------------------------------------------- full layers


class _Layer:
    """One full layer on its input ``Z: (N, T, D)``: ``O: (N, T, D)`` by the chunked engine.

    ``grad=True`` keeps the engine's reverse pass (:func:`numerics.gla.gla_chunked_vjp`, which
    reuses the forward's chunk states); otherwise the forward engine runs.
    """

    def __init__(
        self, Z: np.ndarray, p: Layer, gate: str, grad: bool, chunk_size: int | None = None
    ) -> None:
        self.Z, self.p, self.gate = Z, p, gate
        Dk, D = p["W_q"].shape[0], p["W_v"].shape[0]
        self.W, P = _projection(Z, p, gate)
        q, k, v = P[..., :Dk], P[..., Dk : 2 * Dk], P[..., 2 * Dk : 2 * Dk + D]
        self.u = self.L = lg = None
        if gate != "none":
            u = P[..., 2 * Dk + D :] + p["b_g"]
            self.u = u[..., 0] if gate == "scalar" else u
            lg, self.L = _log_sigmoid_parts(self.u)
        eg = "key" if gate == "key" else "scalar"
        self.v, self.dense, self.vjp = v, None, None
        # Prompts within the dense form's range run there, the others (strong decays) on the
        # chunked engine; ``sel`` is None when all prompts take one path.
        ok = _dense_prompts(lg, Z.shape[1])
        self.sel: tuple[np.ndarray, np.ndarray] | None = None
        if ok.all():
            self.dense = _Dense(q, k, lg)
            self.O = self.dense.apply(v)
            return
        if ok.any():
            self.sel = (np.flatnonzero(ok), np.flatnonzero(~ok))
            di, ei = self.sel
            self.dense = _Dense(q[di], k[di], None if lg is None else lg[di])
            self.O = np.empty(v.shape)
            self.O[di] = self.dense.apply(v[di])
            q, k, v, lg = q[ei], k[ei], v[ei], (None if lg is None else lg[ei])
        if grad:
            Oe, self.vjp = _engine_call(
                lambda: gla_chunked_vjp_unchecked(q, k, v, lg, gate=eg, chunk_size=chunk_size)
            )
        else:
            lg0 = np.zeros(q.shape[:2]) if lg is None else lg
            Oe = _engine_call(lambda: gla.gla_chunked(q, k, v, lg0, gate=eg, scale=1.0))
        if self.sel is None:
            self.O = Oe
        else:
            self.O[self.sel[1]] = Oe

    def backward(self, dO: np.ndarray, need_dZ: bool) -> tuple[Grads, np.ndarray | None]:
        """Gradients of ``Σ <dO, O>``: (parameter grads, input path ``dZ`` or None)."""
        N, T, D = self.Z.shape
        Dk = self.p["W_q"].shape[0]
        dP = np.empty((N, T, self.W.shape[0]))  # the gradients land in their columns
        parts: list[np.ndarray | None] = [
            dP[..., :Dk],
            dP[..., Dk : 2 * Dk],
            dP[..., 2 * Dk : 2 * Dk + D],
            None,
        ]
        if self.u is not None:
            parts[3] = dP[..., 2 * Dk + D] if self.gate == "scalar" else dP[..., 2 * Dk + D :]
        if self.sel is None:
            if self.dense is not None:
                self.dense.backward(
                    dO, self.v, dP[..., :Dk], dP[..., Dk : 2 * Dk], parts[3], dV=parts[2]
                )
            else:
                assert self.vjp is not None
                _engine_call(self.vjp, dO, out=parts)
        else:  # each group of prompts into its own rows of dP
            for idx, dense in zip(self.sel, (self.dense, None)):
                sub = np.empty((len(idx), T, dP.shape[2]))
                sq, sk, sv = sub[..., :Dk], sub[..., Dk : 2 * Dk], sub[..., 2 * Dk : 2 * Dk + D]
                slg = None
                if self.gate != "none":
                    slg = sub[..., 2 * Dk + D] if self.gate == "scalar" else sub[..., 2 * Dk + D :]
                sp = [sq, sk, sv, slg]
                if dense is not None:
                    dense.backward(dO[idx], self.v[idx], sq, sk, slg, dV=sv)
                else:
                    assert self.vjp is not None
                    _engine_call(self.vjp, dO[idx], out=sp)
                dP[idx] = sub
        du = parts[3]
        if du is not None and self.u is not None and self.L is not None:
            du *= _sigmoid_neg(self.u, self.L)  # d log g -> du
        return _param_grads(dP, self.Z, self.W, self.p, self.gate, need_dZ)


#: Prompt blocks of :class:`_FullFM`: prompts per block ``≈ this / (8 T C)`` (the block's
#: scores, ``C`` per token), so that a block's scores and their gradient stay in a core's
#: cache between the products that use them (measured on the icl shape of
#: ``bench/train.py``, N=256, T=41: loss_and_grad 0.96-0.99x of blocks of
#: :data:`DENSE_BLOCK_BYTES`, CPU time in one process, load 0.9).
FM_BLOCK_BYTES = 1 << 19
#: Chunk length of :class:`_FullFM`: prompts of more than this many tokens are cut into
#: ``ceil(T / FM_CHUNK)`` chunks of equal length ``C`` (the last padded with zero tokens).
FM_CHUNK = 64


def _fm_chunks(T: int) -> tuple[int, int]:
    """``(chunks, C)`` of :class:`_FullFM` for prompts of ``T`` tokens: ``ceil(T / FM_CHUNK)``
    chunks of ``C`` tokens, ``chunks · C >= T`` (the padded length)."""
    nc = max(1, -(-T // FM_CHUNK))
    return nc, -(-T // nc)


class _FullFM:
    """A full layer of prompts of at most :data:`DENSE_MAX_T` tokens in the factorised form,
    feature-major: the layer's input ``Zf: (D, N, Tp)`` (``Zf[:, n, t]`` is token ``t`` of prompt
    ``n``; ``Tp = chunks · C`` of :func:`_fm_chunks`, the tokens from ``T`` on zero), output
    ``O: (D, N, Tp)`` (zero on the padded tokens).

    The decays factorise over the whole prompt as in :class:`_Dense`, ``A_ts = q̃_t · k̃_s``
    with ``Q̃ = Q ⊙ e^c``, ``K̃ = K ⊙ e^-c``, ``c`` the running sums of the log-gates (0 on
    the padded tokens), within :data:`DENSE_MAX_LOG_DECAY`.  The tokens run in chunks of ``C``:
    within a chunk the causal scores in full, transposed (``Ãᵀ[s, t] = A_ts``, kept for the
    reverse pass), across chunks through the running state ``Sᵀ_m = Σ_{s before chunk m}
    v_s ⊗ k̃_s`` (``Dv × Dk``): ``Oᵀ_m = Vᵀ_m Ãᵀ_m + Sᵀ_m Q̃ᵀ_m``.  Against the whole
    lower triangle of scores this takes ``2 C (Dk + Dv) + 4 Dk Dv`` flops per token
    instead of about ``T (Dk + Dv)``, in batched products over prompts and chunks.  Reverse,
    with ``Rᵀ_m = Σ_{t after chunk m} dO_t ⊗ q̃_t``: ``dVᵀ = dOᵀ Ã + Rᵀ K̃ᵀ``,
    ``dÃᵀ = V dOᵀ`` (masked), ``dQ̃ᵀ = K̃ᵀ dÃᵀ + S dOᵀ``, ``dK̃ᵀ = Q̃ᵀ dÃ + R Vᵀ``, then
    the gates as in :class:`_Dense`.  Each feature's tokens are contiguous: the projections
    are one product ``P = W Zf`` (and their gradients ``dW = dP Zfᵀ``, ``dZ = Wᵀ dP``, no
    per-prompt calls), and every per-chunk result is written with unit stride.
    :meth:`build` returns None when a prompt's decay is beyond the dense form's range.
    """

    @classmethod
    def build(
        cls,
        Zf: np.ndarray,
        p: Layer,
        gate: str,
        T: int,
        input_free: bool = False,
        grad: bool = True,
    ) -> _FullFM | None:
        """The layer on ``Zf`` (prompts of ``T`` tokens, padded to ``Zf.shape[2]``), or None
        if a prompt's decay is beyond the dense form's range (:data:`DENSE_MAX_LOG_DECAY`;
        the caller then runs :class:`_Layer`).  ``input_free``: the reverse pass will not be
        asked for ``dZ`` (the model's first layer); ``grad=False``: the forward pass alone
        (nothing kept for :meth:`backward`)."""
        Dk, D = p["W_q"].shape[0], p["W_v"].shape[0]
        if T > DENSE_MAX_T:
            return None
        rows = [p["W_q"], p["W_k"], p["W_v"]]
        g = _gate_rows(p, gate)
        if g is not None:
            rows.append(g)
        W = np.concatenate(rows, axis=0)
        P = features_matmul(W, Zf)  # (2 Dk + D [+ gate rows], N, Tp)
        if not (_finite_sum(P) or np.all(np.isfinite(P))):
            raise _Overflow(
                f"params, Z: a projection overflows float64 (max |Z| = {np.max(np.abs(Zf)):.3g})"
            )
        gates = None
        if gate != "none":
            bg = p["b_g"]
            u = P[2 * Dk + D] + bg if gate == "scalar" else P[2 * Dk + D :] + bg[:, None, None]
            lg, L = _log_sigmoid_parts(u)
            lg[..., T:] = 0.0  # padded tokens: no decay (their q, k, v are 0)
            c = np.cumsum(lg, axis=-1)  # (N, Tp) scalar, (Dk, N, Tp) key
            if np.max(-c[..., -1]) > DENSE_MAX_LOG_DECAY:
                return None
            gates = (u, L, c)
        return cls(Zf, p, gate, W, P, gates, T, input_free, grad)

    def __init__(
        self,
        Zf: np.ndarray,
        p: Layer,
        gate: str,
        W: np.ndarray,
        P: np.ndarray,
        gates: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        T: int,
        input_free: bool = False,
        grad: bool = True,
    ) -> None:
        """The forward pass from :meth:`build`'s projections ``P = W Zf`` and, with gates,
        ``(u, log1p(exp(-|u|)), running sums of the log-gates)``.  With ``input_free`` the
        output is ``O = W_v X``, ``X_t = Σ_s A_ts z_s`` (the same products on the inputs
        instead of the values), so that the reverse pass gets ``dW_v = Σ dO_t ⊗ X_t`` by
        one token product instead of the per-chunk ``dVᵀ`` products (only ``dZ`` needs them)."""
        self.Z, self.p, self.gate, self.W = Zf, p, gate, W
        Dk, D = p["W_q"].shape[0], p["W_v"].shape[0]
        _, N, Tp = Zf.shape
        self.nc, self.C = _fm_chunks(T)
        assert self.nc * self.C == Tp
        q, k, self.v = P[:Dk], P[Dk : 2 * Dk], P[2 * Dk : 2 * Dk + D]
        self.gates = gates
        self.Qt, self.Kt = q, k
        if gates is not None:
            c = gates[2]
            self.ec = np.exp(c)  # e^-c as 1 / e^c (half the time of a second exp)
            self.Qt, self.Kt = q * self.ec, k / self.ec
        nb = max(1, min(N, FM_BLOCK_BYTES // (8 * Tp * self.C)))
        self.blocks = [slice(b, min(N, b + nb)) for b in range(0, N, nb)]
        self.X = np.empty((D, N, Tp)) if input_free else None
        self.O = np.empty((D, N, Tp)) if self.X is None else self.X
        O4, Q4, K4 = (self._chunks(x) for x in (self.O, self.Qt, self.Kt))
        V4 = self._chunks(self.v if self.X is None else Zf)
        triu = _tril(self.C).T  # Ãᵀ[s, t] = A_ts: s <= t
        self.At, self.St = [], []
        for sl in self.blocks:
            At = np.matmul(K4[sl].swapaxes(-1, -2), Q4[sl])  # (n, chunks, C, C)
            At *= triu
            np.matmul(V4[sl], At, out=O4[sl])
            St = None
            if self.nc > 1:  # Sᵀ before chunks 1..: running sums of Σ_s v_s ⊗ k̃_s
                St = np.matmul(V4[sl, :-1], K4[sl, :-1].swapaxes(-1, -2))
                for m in range(1, self.nc - 1):
                    St[:, m] += St[:, m - 1]
                O4[sl, 1:] += np.matmul(St, Q4[sl, 1:])
                if self.X is not None:  # the reverse pass needs the values' state
                    St = np.matmul(p["W_v"], St)
            if grad:
                self.At.append(At)
                self.St.append(St)
        if self.X is not None:
            self.O = features_matmul(p["W_v"], self.X)

    def _chunks(self, x: np.ndarray) -> np.ndarray:
        """``x: (R, N, Tp)`` as the view ``(N, chunks, R, C)``."""
        R, N = x.shape[:2]
        return x.reshape(R, N, self.nc, self.C).transpose(1, 2, 0, 3)

    def backward(self, dO: np.ndarray, need_dZ: bool) -> tuple[Grads, np.ndarray | None]:
        """Gradients of ``Σ <dO, O>`` for ``dO: (D, N, Tp)`` (zero on the padded tokens):
        (parameter grads, input path ``dZ: (D, N, Tp)`` or None)."""
        p, gate = self.p, self.gate
        Dk, D = p["W_q"].shape[0], p["W_v"].shape[0]
        _, N, Tp = dO.shape
        dP = np.empty((self.W.shape[0], N, Tp))
        dQ4, dK4 = self._chunks(dP[:Dk]), self._chunks(dP[Dk : 2 * Dk])
        dV4 = self._chunks(dP[2 * Dk : 2 * Dk + D])
        dO4, Q4, K4, V4 = (self._chunks(x) for x in (dO, self.Qt, self.Kt, self.v))
        triu = _tril(self.C).T
        if self.X is not None:
            assert not need_dZ
            dP[2 * Dk : 2 * Dk + D] = 0.0  # dW_v below, from X
        for sl, At, St in zip(self.blocks, self.At, self.St):
            Rt = None
            if St is not None:  # Rᵀ after chunks ..-2: reverse running sums of Σ_t dO_t ⊗ q̃_t
                Rt = np.matmul(dO4[sl, 1:], Q4[sl, 1:].swapaxes(-1, -2))
                for m in range(self.nc - 3, -1, -1):
                    Rt[:, m] += Rt[:, m + 1]
            if self.X is None:
                np.matmul(dO4[sl], At.swapaxes(-1, -2), out=dV4[sl])
                if Rt is not None:
                    dV4[sl, :-1] += np.matmul(Rt, K4[sl, :-1])
            dAt = np.matmul(V4[sl].swapaxes(-1, -2), dO4[sl])  # dÃᵀ[s, t] = dO_t · v_s
            dAt *= triu
            np.matmul(K4[sl], dAt, out=dQ4[sl])  # dQ̃ᵀ
            np.matmul(Q4[sl], dAt.swapaxes(-1, -2), out=dK4[sl])  # dK̃ᵀ
            if St is not None and Rt is not None:
                dQ4[sl, 1:] += np.matmul(St.swapaxes(-1, -2), dO4[sl, 1:])
                dK4[sl, :-1] += np.matmul(Rt.swapaxes(-1, -2), V4[sl, :-1])
        g: Grads = {}
        if self.gates is not None:
            u, L, _ = self.gates
            dQt, dKt = dP[:Dk], dP[Dk : 2 * Dk]
            # ∂/∂c_t = Q̃_t · dQ̃_t − K̃_t · dK̃_t (per key coordinate for key gates), then
            # d log g_r = Σ_{t>=r} ∂/∂c_t (as in _Dense.backward)
            dc = dQt * self.Qt
            dc -= dKt * self.Kt
            if gate == "scalar":
                dc = dc.sum(axis=0)
            du = dP[2 * Dk + D] if gate == "scalar" else dP[2 * Dk + D :]
            # reversed running sums straight into dP's rows (one pass less than a copy)
            np.cumsum(dc[..., ::-1], axis=-1, out=du[..., ::-1])
            du *= _sigmoid_neg(u, L)
            g["b_g"] = np.array(du.sum()) if gate == "scalar" else du.sum(axis=(1, 2))
            dQt *= self.ec
            dKt /= self.ec
        dW = features_wgrad(dP, self.Z)
        g["W_q"], g["W_k"], g["W_v"] = dW[:Dk], dW[Dk : 2 * Dk], dW[2 * Dk : 2 * Dk + D]
        if self.X is not None:
            g["W_v"] = features_wgrad(dO, self.X)
        if gate == "scalar":
            g["w_g"] = dW[2 * Dk + D]
        elif gate == "key":
            g["W_g"] = dW[2 * Dk + D :]
        return g, (features_matmul(self.W.T, dP) if need_dZ else None)


# --------------------------------------------------------------------------- read-out layer


def _readout_rows(zq: np.ndarray, p: Layer, gate: str, lab: int) -> tuple[np.ndarray, np.ndarray]:
    """``(q_{T-1}, M)`` of a scalar/no-gate read-out layer from its query input ``zq: (N, D)``.

    ``M: (N, D, 3)`` (``(N, D, 2)`` without gates) holds per prompt the directions the layer
    reads each token along: ``a_t = z_t · W_v[lab]``, ``k_t · q_{T-1} = z_t · (W_kᵀ q_{T-1})``
    and the gate logit ``z_t · w_g`` (bias added later)."""
    qT = zq @ p["W_q"].T  # (N, Dk)
    N, D = zq.shape
    M = np.empty((N, D, 3 if gate == "scalar" else 2))
    M[:, :, 0] = p["W_v"][lab]
    M[:, :, 1] = qT @ p["W_k"]
    if gate == "scalar":
        M[:, :, 2] = p["w_g"]
    return qT, M


class _Readout:
    """Closed-form query output of a scalar/no-gate read-out layer and its gradients.

    ``ŷ_contrib = e_labᵀ o_{T-1} = Σ_t a_t e_t (k_t · q_{T-1})`` with ``a_t = z_t · W_v[lab]``
    and ``e_t = exp(s_t)``, ``s_t = Σ_{r>t} log g_r`` the decay from token ``t`` to the query
    (its own gate included; ``e ≡ 1`` without gates).  The keys are never formed: the layer
    reads the tokens only through ``P = Z M`` (:func:`_readout_rows`), given here (the feed
    layer below computes it without the full tokens).  ``out: (N,)``.
    """

    def __init__(
        self,
        P: np.ndarray,
        qT: np.ndarray,
        M: np.ndarray,
        zq: np.ndarray,
        p: Layer,
        gate: str,
        lab: int,
    ) -> None:
        self.qT, self.M, self.zq, self.p, self.gate, self.lab = qT, M, zq, p, gate, lab
        self.a, self.kq = P[..., 0], P[..., 1]  # kq_t = k_t · q_{T-1}
        if gate == "scalar":
            self.u = P[..., 2] + p["b_g"]
            lg, self.L = _log_sigmoid_parts(self.u)
            self.e = _exp_nonpos(_suffix_log_decay(lg))
            self.ae = self.a * self.e
            self.out = np.einsum("nt,nt->n", self.ae, self.kq)
        else:
            self.out = np.einsum("nt,nt->n", self.a, self.kq)

    def coef(self, dy: np.ndarray) -> np.ndarray:
        """``c: (N, T, 3|2)``, the gradients of ``Σ_n dy_n ŷ_contrib,n`` with respect to the
        read directions ``(a_t, k_t · q_{T-1}, u_t)``.  With ``ds_t = ∂/∂s_t``, the gate
        gradient is ``d log g_r = Σ_{t<r} ds_t`` (an exclusive running sum over tokens)."""
        N, T = self.a.shape
        c = np.empty((N, T, self.M.shape[2]))
        dyc = dy[:, None]
        if self.gate == "scalar":
            kdp = dyc * self.kq
            np.multiply(self.e, kdp, out=c[..., 0])
            np.multiply(self.ae, dyc, out=c[..., 1])
            dlg = _excl_cumsum_tokens(self.ae * kdp)  # ds_t = a_t e_t kq_t dy
            np.multiply(dlg, _sigmoid_neg(self.u, self.L), out=c[..., 2])
        else:
            np.multiply(self.kq, dyc, out=c[..., 0])
            np.multiply(self.a, dyc, out=c[..., 1])
        return c

    def grads(self, H: np.ndarray, c: np.ndarray) -> tuple[Grads, np.ndarray]:
        """Parameter gradients from ``H_n = Σ_t c_t ⊗ z_t: (N, 3|2, D)`` (``c`` of :meth:`coef`)
        and ``dq_{T-1}: (N, Dk)``, the gradient reaching the query's ``q`` (the input path
        ``W_qᵀ dq_{T-1}`` of the query token is the caller's)."""
        p = self.p
        dqT = H[:, 1] @ p["W_k"].T  # W_k Σ_t c_t1 z_t
        g = {
            "W_q": tokens_wgrad(dqT, self.zq),
            "W_k": tokens_wgrad(self.qT, H[:, 1]),
            "W_v": np.zeros_like(p["W_v"]),
        }
        g["W_v"][self.lab] = H[:, 0].sum(axis=0)
        if self.gate == "scalar":
            g["w_g"] = H[:, 2].sum(axis=0)
            g["b_g"] = np.array(c[..., 2].sum())
        return g, dqT

    def backward(
        self, Z: np.ndarray, dy: np.ndarray, need_dZ: bool
    ) -> tuple[Grads, np.ndarray | None]:
        """Gradients of ``Σ_n dy_n ŷ_contrib,n`` when the layer's input ``Z: (N, T, D)`` is at
        hand: (parameter grads, ``dZ`` or None; the read-out's residual ``dy e_lab`` on the
        query is the caller's)."""
        c = self.coef(dy)
        H = np.matmul(c.transpose(0, 2, 1), Z)  # (N, 3|2, D): Σ_t c_t ⊗ z_t
        g, dqT = self.grads(H, c)
        if not need_dZ:
            return g, None
        dZ = np.matmul(c, self.M.transpose(0, 2, 1))
        dZ[:, -1] += dqT @ self.p["W_q"]
        return g, dZ


class _ReadoutKey:
    """Closed-form query output of a key-gated read-out layer on its input ``Z: (N, T, D)``.

    ``ŷ_contrib = Σ_t a_t Σ_j (q_{T-1})_j (k_t)_j e_tj`` with per-key decays
    ``e = exp(s): (N, T, Dk)`` (``(1, T, Dk)`` when the gate logits are the same for every
    prompt, :func:`_prompt_invariant`); the keys, ``a`` and the gate logits are one product
    ``Z Wᵀ`` with ``W = [W_k; W_v[lab]; W_g]``, and so are their gradients.
    """

    def __init__(self, Z: np.ndarray, p: Layer, lab: int) -> None:
        self.p, self.lab, self.zq = p, lab, Z[:, -1]
        Dk = p["W_k"].shape[0]
        self.qT = self.zq @ p["W_q"].T  # (N, Dk)
        self.W = np.concatenate([p["W_k"], p["W_v"][lab][None, :], p["W_g"]], axis=0)
        P = tokens_matmul(Z, self.W.T)  # (N, T, 2 Dk + 1)
        self.k, self.a = P[..., :Dk], P[..., Dk]
        # (1, T, Dk) where the gates are the same for every prompt, else (N, T, Dk)
        self.u = _prompt_invariant(P[..., Dk + 1 :] + p["b_g"])
        lg, self.L = _log_sigmoid_parts(self.u)
        self.e = _exp_nonpos(_suffix_log_decay(lg))
        self.ke = self.k * self.e
        self.out = np.einsum("nt,ntk,nk->n", self.a, self.ke, self.qT)

    def backward(
        self, Z: np.ndarray, dy: np.ndarray, need_dZ: bool
    ) -> tuple[Grads, np.ndarray | None]:
        """As :meth:`_Readout.backward`: the token coefficients of ``W_k, W_v[lab], W_g`` are
        written into one buffer and reduced by one product."""
        p, k, e = self.p, self.k, self.e
        N, T, Dk = k.shape
        dp = dy[:, None] * self.qT
        dP = np.empty((N, T, 2 * Dk + 1))
        ae = self.a[..., None] * e  # (N, T, Dk)
        dk = np.multiply(ae, dp[:, None, :], out=dP[..., :Dk])
        dqT = dy[:, None] * np.einsum("ntk,ntk->nk", ae, k)
        np.einsum("ntk,nk->nt", self.ke, dp, out=dP[..., Dk])  # da_t
        dlg = _excl_cumsum_tokens(dk * k)  # ds_t = dk_t ⊙ k_t
        np.multiply(dlg, _sigmoid_neg(self.u, self.L), out=dP[..., Dk + 1 :])  # du_t
        dW = _wgrad(dP, Z)
        g = {
            "W_q": tokens_wgrad(dqT, self.zq),
            "W_k": dW[:Dk],
            "W_v": np.zeros_like(p["W_v"]),
            "W_g": dW[Dk + 1 :],
            "b_g": dP[..., Dk + 1 :].sum(axis=(0, 1)),
        }
        g["W_v"][self.lab] = dW[Dk]
        if not need_dZ:
            return g, None
        dZ = tokens_matmul(dP, self.W)
        dZ[:, -1] += dqT @ p["W_q"]
        return g, dZ


def _readout(Z: np.ndarray, p: Layer, gate: str, lab: int) -> _Readout | _ReadoutKey:
    """The read-out layer on its full input ``Z: (N, T, D)``."""
    if gate == "key":
        return _ReadoutKey(Z, p, lab)
    zq = Z[:, -1]
    qT, M = _readout_rows(zq, p, gate, lab)
    return _Readout(np.matmul(Z, M), qT, M, zq, p, gate, lab)


def _last_layer(Z: np.ndarray, p: Layer, spec: Any) -> tuple[np.ndarray, Any]:
    """``(ŷ_contrib: (N,), state)`` of the read-out layer ``p`` on its input ``Z``
    (``ŷ = Z[:, -1, lab] + ŷ_contrib``)."""
    ro = _readout(Z, p, spec.gate, spec.label_index)
    return ro.out, ro


# --------------------------------------------------------------------------- feed layer


#: The feed layer runs its attention in the state form (:class:`_FeedState`) for prompts of
#: at least this many tokens, else per prompt in the dense form or on the engine
#: (:class:`_FeedLayer`): the state form costs ``O(T Dk m)`` elementwise work per prompt
#: against the dense form's ``O(T² (Dk + m))`` in batched products; measured with
#: ``bench/train.py``-shaped models (CPU-time ratios in one process), the two-layer step
#: takes 0.87-0.94x at T = 41 and 0.5-0.65x at T = 129.
STATE_MIN_T = 32


class _FeedState:
    """The feed layer of :class:`_FeedLayer` in the state form, for unpadded prompts (any
    decays).

    Same quantities as :class:`_FeedLayer`, token-major with the prompts innermost (every
    elementwise pass then runs over contiguous rows of ``N`` prompts): the projections
    ``q, k, u`` come as ``(T, ·, N)`` from one product per token; the attention on the ``m``
    projected value columns is ``O_t = Σ_d Q̃_td S_t[d]`` with the running state
    ``S_t = Σ_{s<=t} K̃_s ⊗ v_s: (Dk, m)``; in reverse, with ``R_s = Σ_{t>=s} Q̃_t ⊗ c_t``,
    ``dV_s = K̃_sᵀ R_s``, ``dQ̃_t = S_t c_t``, ``dK̃_s = R_s v_s``, and the query's row
    ``ρ · o_{T-1}`` adds ``b_s Q̃_{T-1}`` to ``dK̃_s`` and ``Σ_s b_s K̃_s`` to ``dQ̃_{T-1}``.
    When every prompt's decays fit the dense form's range (:data:`DENSE_MAX_LOG_DECAY`) the
    decays are factorised as there, ``Q̃ = Q ⊙ e^c``, ``K̃ = K ⊙ e^-c``, the states are plain
    running sums and ``∂/∂c_t = Q̃_t · dQ̃_t − K̃_t · dK̃_t`` (as in :class:`_Dense`);
    otherwise the state is recurrent, ``S_t = g_t S_{t-1} + k_t ⊗ v_t`` and
    ``R_s = q_s ⊗ c_s + g_{s+1} R_{s+1}`` (``Q̃ = Q``, ``K̃ = K``: the gates applied as they
    are, exact for any decay, two passes per token instead of one and a gate gradient
    ``d log g_t = g_t ⟨R_t, S_{t-1}⟩`` over the states, the pairs the gate separates, plus
    the query's row ``Σ_{s<r} w_s b_s`` with its decays ``e_s`` on ``b``).  ``O(T Dk m)``
    work per prompt instead of ``O(T² Dk)``.
    """

    def __init__(
        self, Y: np.ndarray, p: Layer, p_last: Layer, gate: str, lab: int, grad: bool
    ) -> None:
        self.Y, self.p, self.p_last, self.gate, self.lab = Y, p, p_last, gate, lab
        T = Y.shape[1]
        Dk = p["W_q"].shape[0]
        rows = [p["W_q"], p["W_k"]] + ([p["w_g"][None, :]] if gate == "scalar" else [])
        self.W = W = np.concatenate(rows, axis=0)
        # token-major copy of the input (each token's rows of prompts contiguous), read by
        # the projection, the weight gradient and the input path
        self.Yt = Yt = np.ascontiguousarray(Y.transpose(1, 0, 2))  # (T, N, D)
        Pt = np.matmul(W, Yt.transpose(0, 2, 1))  # (T, 2 Dk [+1], N), one product per token
        if not (_finite_sum(Pt) or np.all(np.isfinite(Pt))):
            raise _Overflow(
                f"params, Z: a projection overflows float64 (max |Z| = {np.max(np.abs(Y)):.3g})"
            )
        q, k = Pt[:, :Dk], Pt[:, Dk : 2 * Dk]
        self.u = self.L = self.g = self.e = self.ec = None
        self.w = np.einsum("tdn,dn->tn", k, q[T - 1])  # k_s · q_{T-1}: (T, N)
        self.Qt, self.Kt = q, k
        if gate == "scalar":
            self.u = Pt[:, 2 * Dk] + p["b_g"]  # (T, N)
            lg, self.L = _log_sigmoid_parts(self.u)
            self.e = _exp_nonpos(_suffix_log_decay(lg.T)).T  # decay from s to the query
            self.w *= self.e
            c = np.cumsum(lg, axis=0)
            if np.max(-c[-1]) <= DENSE_MAX_LOG_DECAY:  # factorised: Q̃ = Q e^c, K̃ = K e^-c
                self.ec = np.exp(c)[:, None]  # (T, 1, N)
                self.Qt, self.Kt = q * self.ec, k / self.ec
            else:  # recurrent
                self.g = _exp_nonpos(lg)
        self.wy = np.matmul(self.w.T[:, None, :], Y)[:, 0]  # Σ_s w_s y_s: (N, D)
        self.zq = Y[:, T - 1] + self.wy @ p["W_v"].T
        qT, M = _readout_rows(self.zq, p_last, gate, lab)
        self.M, m = M, M.shape[2]
        YM = np.matmul(Y, np.concatenate([M, np.matmul(p["W_v"].T, M)], axis=2))
        self.Vt = np.ascontiguousarray(YM[..., m:].transpose(1, 2, 0))  # V M: (T, m, N)
        # one block of all prompts: blocks of prompts (shorter inner loops) measured slower
        S = np.multiply(self.Kt[:, :, None, :], self.Vt[:, None, :, :])  # (T, Dk, m, N)
        _scan(S, self.g, reverse=False)
        Ot = np.einsum("tdn,tdjn->tjn", self.Qt, S)
        self.S = S if grad else None
        Pl = YM[..., :m] + Ot.transpose(2, 0, 1)
        self.readout = _Readout(Pl, qT, M, self.zq, p_last, gate, lab)
        self.yhat = self.zq[:, lab] + self.readout.out

    def backward(self, dy: np.ndarray, need_dY: bool) -> tuple[Grads, Grads, np.ndarray | None]:
        """As :meth:`_FeedLayer.backward`."""
        ro, Y, M, p, S, g = self.readout, self.Y, self.M, self.p, self.S, self.g
        assert S is not None
        N, T, D = Y.shape
        Dk = p["W_q"].shape[0]
        q, k = self.Qt, self.Kt  # Q̃, K̃ when factorised (then dq, dk below are dQ̃, dK̃)
        c = ro.coef(dy)  # (N, T, m)
        m = c.shape[2]
        ct = np.ascontiguousarray(c.transpose(1, 2, 0))  # (T, m, N)
        dPt = np.empty((T, self.W.shape[0], N))  # gradients of q, k, u, in place
        dq, dk = dPt[:, :Dk], dPt[:, Dk : 2 * Dk]
        R = np.multiply(q[:, :, None, :], ct[:, None, :, :])  # reverse state
        _scan(R, g, reverse=True)
        dVt = np.einsum("tdjn,tdn->tjn", R, k)
        np.einsum("tdjn,tjn->tdn", S, ct, out=dq)
        np.einsum("tdjn,tjn->tdn", R, self.Vt, out=dk)
        if g is not None:  # d log g_t = g_t ⟨R_t, S_{t-1}⟩ (token 0: no earlier state)
            dlg = dPt[:, 2 * Dk]
            dlg[0] = 0.0
            np.einsum(
                "tan,tan->tn",
                R[1:].reshape(T - 1, -1, N),
                S[:-1].reshape(T - 1, -1, N),
                out=dlg[1:],
            )
            dlg[1:] *= g[1:]
        del R
        CV = np.empty((N, T, 2 * m + 1))  # [c, dVp, w], as in _FeedLayer.backward
        CV[..., :m] = c
        CV[..., m : 2 * m] = dVt.transpose(2, 0, 1)
        CV[..., 2 * m] = self.w.T
        G = np.matmul(CV.transpose(0, 2, 1), Y)  # (N, 2m+1, D): [cᵀ Y; dVpᵀ Y; wᵀ Y]
        H = G[:, :m] + G[:, m : 2 * m] @ p["W_v"].T
        g_last, dqT = ro.grads(H, c)
        rho = dqT @ self.p_last["W_q"]
        rho[:, self.lab] += dy
        rv = rho @ p["W_v"]
        bt = np.einsum("tnd,nd->tn", self.Yt, rv)  # b_s = y_s · (W_vᵀ ρ): (T, N)
        if g is not None:  # the query's row: Σ_{s<r} w_s b_s, then e_s b_s
            assert self.u is not None and self.L is not None and self.e is not None
            dlg += _excl_cumsum_tokens((self.w * bt).T).T
            dlg *= _sigmoid_neg(self.u, self.L)  # -> du
            bt *= self.e
        dk += bt[:, None, :] * q[T - 1]  # the query's row of dA (of dÃ when factorised)
        dq[T - 1] += np.einsum("tn,tdn->dn", bt, k)
        if self.ec is not None:
            assert self.u is not None and self.L is not None
            # ∂/∂c_t = Q̃_t · dQ̃_t − K̃_t · dK̃_t, d log g_r = Σ_{t>=r} ∂/∂c_t (as _Dense)
            dc = np.einsum("tdn,tdn->tn", dq, q)
            dc -= np.einsum("tdn,tdn->tn", dk, k)
            dlg = np.cumsum(dc[::-1], axis=0)[::-1]
            np.multiply(dlg, _sigmoid_neg(self.u, self.L), out=dPt[:, 2 * Dk])
            dq *= self.ec  # -> dq, dk
            dk /= self.ec
        dW = np.matmul(dPt, self.Yt).sum(axis=0)  # Σ_t dP_t ⊗ y_t
        gr = {
            "W_q": dW[:Dk],
            "W_k": dW[Dk : 2 * Dk],
            "W_v": tokens_wgrad(M.transpose(0, 2, 1), G[:, m : 2 * m]) + tokens_wgrad(rho, self.wy),
        }
        if self.gate == "scalar":
            gr["w_g"] = dW[2 * Dk]
            gr["b_g"] = np.array(dPt[:, 2 * Dk].sum())
        if not need_dY:
            return g_last, gr, None
        dYl = np.empty((N, T, D))
        np.matmul(dPt.transpose(0, 2, 1), self.W, out=dYl.transpose(1, 0, 2))
        Mt = M.transpose(0, 2, 1)
        dYl += np.matmul(CV, np.concatenate([Mt, Mt @ p["W_v"], rv[:, None, :]], axis=1))
        dYl[:, T - 1] += rho
        return g_last, gr, dYl


def _scan(S: np.ndarray, g: np.ndarray | None, reverse: bool) -> None:
    """In place along axis 0: ``S_t += g_t S_{t-1}`` (``reverse``: ``S_t += g_{t+1} S_{t+1}``);
    ``g: (T, N)`` scales the last axis, ``g=None`` is ``g ≡ 1`` (a running sum)."""
    T = S.shape[0]
    order = range(T - 2, -1, -1) if reverse else range(1, T)
    d = 1 if reverse else -1
    if g is None:
        for t in order:
            np.add(S[t + d], S[t], out=S[t])
        return
    buf = np.empty(S.shape[1:])
    for t in order:
        np.multiply(S[t + d], g[t if not reverse else t + 1], out=buf)
        np.add(buf, S[t], out=S[t])


class _FeedLayer:
    """The layer below a scalar/no-gate read-out layer, run only along what the read-out reads.

    With ``Y: (N, Tp, D)`` this layer's input (tokens ``T..Tp-1`` zero padding), ``o_t`` its
    output and ``z_t = y_t + o_t`` the read-out's input, the read-out needs the query token
    ``z_{T-1}`` in full and every other token only as ``P = Z M`` (:func:`_readout_rows`, ``M``
    built from ``z_{T-1}``).  So: ``o_{T-1}`` by the closed form over tokens (``o_{T-1} =
    W_v Σ_s w_s y_s``, ``w_s = e_s (k_s · q_{T-1})``), then the causal decayed attention on
    the projected values ``V M = Y (W_vᵀ M)`` (``m = 3`` or 2 columns instead of ``D``) gives
    ``O M``, and ``P = Y M + O M``.  The values ``V`` themselves are never formed: every
    quantity that needs them is a product with ``Y`` and ``W_v`` (``V M``, ``o_{T-1}``, and in
    reverse ``dW_v``, ``H`` and the input path).  The attention runs per prompt in the dense
    form (:class:`_Dense`) where its range allows, else on the chunked engine.

    Reverse: the gradient reaching ``z`` is ``dZ_t = M c_t`` (``c`` of :meth:`_Readout.coef`)
    plus ``ρ`` on the query (its ``q_{T-1}``, its label slot), so the attention's reverse pass
    runs on ``c`` (``m`` columns) and gives ``dq, dk, d log g`` and ``dVp = Aᵀ c`` (``A`` the
    layer's causal decayed scores), which yields ``dV = dVp Mᵀ`` and the read-out's
    ``Σ_t c_t ⊗ z_t = cᵀ Y + (dVpᵀ Y) W_vᵀ``; ``ρ · o_{T-1}`` is differentiated by the closed
    form over tokens (``w``, ``e``).
    """

    def __init__(
        self,
        Y: np.ndarray,
        p: Layer,
        p_last: Layer,
        gate: str,
        lab: int,
        T: int,
        grad: bool,
        chunk_size: int | None = None,
    ) -> None:
        self.Y, self.p, self.p_last, self.gate, self.lab, self.T = Y, p, p_last, gate, lab, T
        Dk = p["W_q"].shape[0]
        # q, k and the gate logit in one product; the values only ever appear through W_v
        rows = [p["W_q"], p["W_k"]] + ([p["w_g"][None, :]] if gate == "scalar" else [])
        self.W = W = np.concatenate(rows, axis=0)
        P = tokens_matmul(Y, W.T)
        if not (_finite_sum(P) or np.all(np.isfinite(P))):
            raise _Overflow(
                f"params, Z: a projection overflows float64 (max |Z| = {np.max(np.abs(Y)):.3g})"
            )
        q, k = P[..., :Dk], P[..., Dk : 2 * Dk]
        self.q, self.k = q, k
        lg = self.u = self.L = None
        if gate == "scalar":
            self.u = P[..., 2 * Dk] + p["b_g"]
            lg, self.L = _log_sigmoid_parts(self.u)
        self.qq = q[:, T - 1]
        # the query's own output, closed form over the real tokens: w_s = e_s (k_s · q_{T-1})
        self.w = np.matmul(k[:, :T], self.qq[:, :, None])[..., 0]
        self.e = None
        if lg is not None:
            self.e = _exp_nonpos(_suffix_log_decay(lg[:, :T]))
            self.w *= self.e
        self.wy = np.matmul(self.w[:, None, :], Y[:, :T])[:, 0]  # Σ_s w_s y_s: (N, D)
        self.zq = Y[:, T - 1] + self.wy @ p["W_v"].T
        qT, M = _readout_rows(self.zq, p_last, gate, lab)
        self.M, m = M, M.shape[2]
        # one product for Y M (the read-out's direct path) and V M = Y (W_vᵀ M)
        YM = np.matmul(Y, np.concatenate([M, np.matmul(p["W_v"].T, M)], axis=2))
        self.Vp = Vp = YM[..., m:]
        # prompts within the dense form's range take it, the others the chunked engine
        ok = _dense_prompts(lg, T) if Y.shape[1] == T else np.zeros(1, dtype=bool)
        self.dense: _Dense | None = None
        self.vjp: Callable[..., Any] | None = None
        self.sel: tuple[np.ndarray, np.ndarray] | None = None
        if ok.all():
            self.dense = _Dense(q, k, lg)
            Op = self.dense.apply(Vp)
        else:
            Op = np.empty(Vp.shape)
            if ok.any():
                self.sel = (np.flatnonzero(ok), np.flatnonzero(~ok))
                di, ei = self.sel
                self.dense = _Dense(q[di], k[di], None if lg is None else lg[di])
                Op[di] = self.dense.apply(Vp[di])
                q, k, Vp, lg = q[ei], k[ei], Vp[ei], (None if lg is None else lg[ei])
            if grad:
                Oe, self.vjp = _engine_call(
                    lambda: gla_chunked_vjp_unchecked(
                        q, k, Vp, lg, gate="scalar", chunk_size=chunk_size
                    )
                )
            else:
                lg0 = np.zeros(q.shape[:2]) if lg is None else lg
                Oe = _engine_call(lambda: gla.gla_chunked(q, k, Vp, lg0, gate="scalar", scale=1.0))
            if self.sel is None:
                Op = Oe
            else:
                Op[self.sel[1]] = Oe
        Pl = YM[:, :T, :m] + Op[:, :T]
        self.readout = _Readout(Pl, qT, M, self.zq, p_last, gate, lab)
        self.yhat = self.zq[:, lab] + self.readout.out

    def _reverse_values(self, cp: np.ndarray, dq, dk, dVp, dlg) -> None:
        """The attention's reverse pass on ``cp``, first half: ``dVp = Aᵀ c`` for the dense
        form's prompts, everything (``dq, dk, dVp, dlg``) for the engine's."""
        di, ei = self.sel if self.sel is not None else (None, None)
        if self.dense is not None:
            if di is None:
                self.dense.apply_t(cp, out=dVp)
            else:
                dVp[di] = self.dense.apply_t(cp[di])
        if self.vjp is not None:
            if ei is None:
                _engine_call(self.vjp, cp, out=[dq, dk, dVp, dlg])
            else:
                eg = _engine_call(self.vjp, cp[ei])
                dq[ei], dk[ei], dVp[ei] = eg[0], eg[1], eg[2]
                if dlg is not None:
                    dlg[ei] = eg[3]

    def _reverse_scores(self, cp: np.ndarray, b: np.ndarray, dq, dk, dlg) -> tuple[Any, Any, Any]:
        """Second half, with ``b_s`` added to the query's row of the score gradient: the dense
        form's ``dq, dk, dlg``, and for the engine's prompts the closed form over tokens of
        ``Σ_s b_s A_{T-1,s}``.  Returns ``(idx, eb, dW_k)`` of the engine's prompts (all
        None without them): ``dk_s += eb_s q_{T-1}`` is rank one per prompt and goes to
        ``W_k``'s gradient (``dW_k``) and the input path directly, not through ``dk``."""
        T, Dk = self.T, self.p["W_q"].shape[0]
        di, ei = self.sel if self.sel is not None else (None, None)
        if self.dense is not None:  # b joins the query's row of dA
            if di is None:
                self.dense.backward(cp, self.Vp, dq, dk, dlg, row_add=b)
            else:
                sq, sk = np.empty((len(di), T, Dk)), np.empty((len(di), T, Dk))
                sg = None if dlg is None else np.empty((len(di), T))
                self.dense.backward(cp[di], self.Vp[di], sq, sk, sg, row_add=b[di])
                dq[di], dk[di] = sq, sk
                if dlg is not None:
                    dlg[di] = sg
        if self.vjp is None:
            return None, None, None
        idx = slice(None) if ei is None else ei
        eb = b[idx] if self.e is None else self.e[idx] * b[idx]
        dWk = tokens_wgrad(self.qq[idx], np.matmul(eb[:, None, :], self.Y[idx, :T])[:, 0])
        dq[idx, T - 1] += np.matmul(eb[:, None, :], self.k[idx, :T])[:, 0]
        if dlg is not None:  # d log g_r = Σ_{s<r} w_s b_s
            dlg[idx, :T] += _excl_cumsum_tokens(self.w[idx] * b[idx])
        return idx, eb, dWk

    def backward(self, dy: np.ndarray, need_dY: bool) -> tuple[Grads, Grads, np.ndarray | None]:
        """``(read-out grads, this layer's grads, dY or None)`` for ``Σ_n dy_n ŷ_n``;
        ``dY: (N, Tp, D)`` includes the residual path."""
        ro, T, Y, M, p = self.readout, self.T, self.Y, self.M, self.p
        N, Tp, _ = Y.shape
        Dk = p["W_q"].shape[0]
        c = ro.coef(dy)  # (N, T, m)
        m = c.shape[2]
        # [c, dVp, w]: all three are read against Y (G below) and give dY (B below)
        CV = np.zeros((N, Tp, 2 * m + 1)) if Tp != T else np.empty((N, Tp, 2 * m + 1))
        CV[:, :T, :m] = c
        CV[:, :T, 2 * m] = self.w
        cp, dVp = np.ascontiguousarray(CV[..., :m]), CV[..., m : 2 * m]
        dP = np.empty((N, Tp, self.W.shape[0]))  # gradients of q, k, u, in place
        dq, dk = dP[..., :Dk], dP[..., Dk : 2 * Dk]
        dlg = dP[..., 2 * Dk] if self.gate == "scalar" else None
        self._reverse_values(cp, dq, dk, dVp, dlg)
        G = np.matmul(CV.transpose(0, 2, 1), Y)  # (N, 2m+1, D): [cᵀ Y; dVpᵀ Y; wᵀ Y]
        H = G[:, :m] + G[:, m : 2 * m] @ p["W_v"].T  # Σ_t c_t ⊗ z_t = cᵀ Y + (Aᵀ c)ᵀ V
        g_last, dqT = ro.grads(H, c)
        rho = dqT @ self.p_last["W_q"]  # gradient reaching z_{T-1} outside P
        rho[:, self.lab] += dy
        # ρ · o_{T-1} = Σ_s w_s (ρ · v_s), v_s = W_v y_s: b_s = y_s · (W_vᵀ ρ), w_s = A_{T-1,s}
        rv = rho @ p["W_v"]
        b = np.matmul(Y[:, :T], rv[:, :, None])[..., 0]
        idx, eb, dWk = self._reverse_scores(cp, b, dq, dk, dlg)
        if dlg is not None:
            assert self.u is not None and self.L is not None
            dlg *= _sigmoid_neg(self.u, self.L)  # -> du
        dW = _wgrad(dP, Y)
        # dV = dVp Mᵀ + w ρᵀ (never formed): dW_v = Σ_n M_n (dVpᵀ Y)_n + ρᵀ (wᵀ Y)
        g = {
            "W_q": dW[:Dk],
            "W_k": dW[Dk : 2 * Dk] if dWk is None else dW[Dk : 2 * Dk] + dWk,
            "W_v": tokens_wgrad(M.transpose(0, 2, 1), G[:, m : 2 * m]) + tokens_wgrad(rho, self.wy),
        }
        if self.gate == "scalar":
            g["w_g"] = dW[2 * Dk]
            g["b_g"] = np.array(dP[..., 2 * Dk].sum())
        if not need_dY:
            return g_last, g, None
        dYl = tokens_matmul(dP, self.W)
        # residual M c_t, value path dVp Mᵀ W_v and w_s ρᵀ W_v: one product per prompt
        Mt = M.transpose(0, 2, 1)
        B = np.concatenate([Mt, Mt @ p["W_v"], rv[:, None, :]], axis=1)
        dYl += np.matmul(CV, B)
        dYl[:, T - 1] += rho
        if eb is not None:  # eb_s q_{T-1} on k_s = W_k y_s
            dYl[idx, :T] += eb[..., None] * (self.qq[idx] @ p["W_k"])[:, None, :]
        return g_last, g, dYl


# --------------------------------------------------------------------------- the model


def _check_prediction(yhat: np.ndarray, Z: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(yhat)):
        raise _Overflow(
            f"params, Z: the prediction overflows float64 (max |Z| = {np.max(np.abs(Z)):.3g}); "
            "the weights or tokens are too large"
        )
    return yhat


def _feed_layer(
    Y: np.ndarray,
    p: Layer,
    p_last: Layer,
    gate: str,
    lab: int,
    T: int,
    grad: bool,
    chunk_size: int | None = None,
) -> _FeedLayer | _FeedState:
    """The feed layer on its input ``Y``: the state form (:class:`_FeedState`) for unpadded
    prompts of :data:`STATE_MIN_T` to :data:`DENSE_MAX_T` tokens, else :class:`_FeedLayer`
    (dense form per prompt where it fits, chunked engine else)."""
    if STATE_MIN_T <= T == Y.shape[1] and T <= DENSE_MAX_T:
        return _FeedState(Y, p, p_last, gate, lab, grad)
    return _FeedLayer(Y, p, p_last, gate, lab, T, grad, chunk_size)


def _plan(L: int, gate: str) -> tuple[int, bool]:
    """``(number of full layers, whether a feed layer runs)`` for ``L`` layers."""
    feed = L >= 2 and gate != "key"
    return L - 1 - int(feed), feed


def _to_features(Z: np.ndarray, Tp: int | None = None) -> np.ndarray:
    """``(N, T, D)`` -> feature-major ``(D, N, Tp)`` (a copy; tokens ``T..Tp-1`` zero)."""
    N, T, D = Z.shape
    if Tp is None or Tp == T:
        return np.ascontiguousarray(Z.transpose(2, 0, 1))
    Zf = np.empty((D, N, Tp))
    Zf[..., :T] = Z.transpose(2, 0, 1)
    Zf[..., T:] = 0.0
    return Zf


def _to_tokens(Zf: np.ndarray, T: int | None = None) -> np.ndarray:
    """Feature-major ``(D, N, Tp)`` -> ``(N, T, D)``, the first ``T`` tokens (a copy)."""
    return np.ascontiguousarray(Zf[..., :T].transpose(1, 2, 0))


def _full_layers(
    Z: np.ndarray,
    layers: list[Layer],
    gate: str,
    grad: bool,
    chunk_size: int | None = None,
    need_dZ0: bool = True,
) -> tuple[np.ndarray, list[_Layer | _FullFM | None]]:
    """``(Z after the full layers, the layers)``: each layer feature-major
    (:class:`_FullFM`) where its prompts allow it, else :class:`_Layer`; the residual stream
    changes layout only where consecutive layers differ.  ``need_dZ0=False``: the first
    layer's reverse pass will not be asked for its input path.  A forward pass alone
    (``predict``) through one full layer runs feature-major too: with the two layout
    changes it took 0.84-0.90x the token-major time at the long shape of ``bench/train.py``
    with gates (T = 129, three chunks), 0.94-1.03x elsewhere (icl, no gates; CPU time, same
    process, 9 rounds, load 1.9-2.9)."""
    full: list[_Layer | _FullFM | None] = []
    Zf: np.ndarray | None = None  # the residual stream, feature-major, while current
    T = Z.shape[1]
    nc, C = _fm_chunks(T)
    Tp = nc * C  # feature-major layers pad the prompts to whole chunks
    for i, p in enumerate(layers):
        fm = None
        if T <= DENSE_MAX_T:
            if Zf is None:
                Zf = _to_features(Z, Tp)
            fm = _FullFM.build(Zf, p, gate, T, grad and i == 0 and not need_dZ0, grad)
        if fm is not None:
            assert Zf is not None
            Zf = Zf + fm.O
            full.append(fm if grad else None)
            continue
        if Zf is not None:
            Z, Zf = _to_tokens(Zf, T), None
        lay = _Layer(Z, p, gate, grad=grad, chunk_size=chunk_size)
        Z = Z + lay.O
        full.append(lay if grad else None)
    if Zf is not None:
        Z = _to_tokens(Zf, T)
    return Z, full


def predict_layers(layers: list[Layer], gate: str, lab: int, Z: np.ndarray) -> np.ndarray:
    """``ŷ: (N,)`` of the model ``layers`` on validated tokens ``Z: (N, T, D)``."""
    n_full, feed = _plan(len(layers), gate)
    Z0 = Z
    Z = _full_layers(Z, layers[:n_full], gate, grad=False)[0]
    if feed:
        fl = _feed_layer(Z, layers[-2], layers[-1], gate, lab, Z.shape[1], grad=False)
        return _check_prediction(fl.yhat, Z0)
    ro = _readout(Z, layers[-1], gate, lab)
    return _check_prediction(Z[:, -1, lab] + ro.out, Z0)


def forward_backward(
    layers: list[Layer],
    gate: str,
    lab: int,
    Z: np.ndarray,
    dy_fn: Callable[[np.ndarray], tuple[float, np.ndarray]],
    need_dZ0: bool = False,
) -> tuple[float, list[Grads], np.ndarray | None, np.ndarray]:
    """Forward and reverse pass: ``dy_fn(ŷ) -> (value, dvalue/dŷ)``; returns ``(value, grads
    per layer, dvalue/dZ or None, ŷ)`` (``dZ`` only with ``need_dZ0``)."""
    N, T, D = Z.shape
    L = len(layers)
    n_full, feed = _plan(L, gate)
    Z0, C, Tp = Z, None, T
    if L > 1 and T > DENSE_MAX_T:
        # Layers below the read-out run the chunked engine on tokens padded (once, here) to a
        # whole number of chunks: padded tokens come last and have z = 0, hence q = k = v = 0,
        # so they change no real token's output and stay 0 through every layer, and their
        # gradients are 0.  (Short prompts run in the dense form, unpadded.)
        C = gla.default_vjp_chunk_size(T, layers[0]["W_q"].shape[0], D)
        Tp = -(-T // C) * C
        if Tp != T:
            Z = np.zeros((N, Tp, D))
            Z[:, :T] = Z0
    Z, full = _full_layers(Z, layers[:n_full], gate, grad=True, chunk_size=C, need_dZ0=need_dZ0)
    grads: list[Grads] = [{} for _ in layers]
    dZ: np.ndarray | None
    if feed:
        fl = _feed_layer(Z, layers[-2], layers[-1], gate, lab, T, grad=True, chunk_size=C)
        yhat = _check_prediction(fl.yhat, Z0)
        value, dy = dy_fn(yhat)
        grads[-1], grads[-2], dZ = fl.backward(dy, need_dY=need_dZ0 or n_full > 0)
    else:
        Zl = Z[:, :T]
        ro = _readout(Zl, layers[-1], gate, lab)
        yhat = _check_prediction(Zl[:, -1, lab] + ro.out, Z0)
        value, dy = dy_fn(yhat)
        grads[-1], dZl = ro.backward(Zl, dy, need_dZ=need_dZ0 or L > 1)
        dZ = dZl
        if dZl is not None:
            dZl[:, -1, lab] += dy  # residual path of the read-out
            if Tp != T:
                dZ = np.zeros((N, Tp, D))
                dZ[:, :T] = dZl
    dZf: np.ndarray | None = None  # dZ feature-major while the layers run so (_FullFM)
    for l in range(n_full - 1, -1, -1):
        # Z_{l+1} = Z_l + O_l: dO_l = dZ_{l+1}; dZ_l = dZ_{l+1} + (input path of layer l).
        layer = full[l]
        assert layer is not None
        # the gradient in the layout of this layer, changed only where the layout changes
        if isinstance(layer, _FullFM):
            if dZf is None:
                assert dZ is not None
                dZf, dZ = _to_features(dZ, layer.Z.shape[2]), None
            dcur = dZf
        else:
            if dZ is None:
                assert dZf is not None
                dZ, dZf = _to_tokens(dZf, Tp), None
            dcur = dZ
        grads[l], dZin = layer.backward(dcur, need_dZ=need_dZ0 or l > 0)
        if dZin is not None:
            dcur += dZin  # in place: dcur is dZ or dZf
        full[l] = None  # free its saved states
    if dZf is not None:
        dZ = _to_tokens(dZf, Tp)
    if need_dZ0:
        assert dZ is not None
        dZ = dZ[:, :T]
        # the engines' reverse passes do not scan their results (unchecked): an overflow
        # shows here as inf/NaN (the parameter gradients are checked by the caller)
        if not (_finite_sum(dZ) or np.all(np.isfinite(dZ))):
            raise _Overflow(
                f"params, Z: the input gradient overflows float64 (max |Z| = "
                f"{np.max(np.abs(Z0)):.3g}); the weights or tokens are too large"
            )
        return value, grads, dZ, yhat
    return value, grads, None, yhat
