"""Matrix products kept on OpenBLAS's serial path.

OpenBLAS (the BLAS numpy ships with) runs a gemm multi-threaded once ``M·N·K`` exceeds
``4·65536``; on the shared 2-core machine that path was measured 5-100x slower than the
serial one for the thin products of the engines.  :func:`tokens_matmul` applies a small
weight matrix to every token of a batch in serial-sized row blocks: far fewer BLAS calls
than numpy's batched ``(N, T, D) @ (D, M)`` (one call per prompt), none of them threaded.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SERIAL_MNK", "features_matmul", "features_wgrad", "tokens_matmul", "tokens_wgrad"]

SERIAL_MNK = 4 * 65536


def tokens_matmul(X: np.ndarray, W: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``X @ W`` for ``X: (..., K)`` and a 2-D ``W: (K, M)``, as row blocks of a 2-D product.

    >>> X = np.arange(12.0).reshape(2, 3, 2); W = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])
    >>> bool(np.array_equal(tokens_matmul(X, W), X @ W))
    True
    """
    K, M = W.shape
    lead = X.shape[:-1]
    X2 = X.reshape(-1, K)  # a copy only if X is not contiguous
    if out is None:
        out = np.empty(lead + (M,))
    O2 = out.reshape(-1, M)
    rows = max(1, SERIAL_MNK // max(K * M, 1))
    for r in range(0, X2.shape[0], rows):
        np.matmul(X2[r : r + rows], W, out=O2[r : r + rows])
    return out


def tokens_wgrad(dA: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``Σ_rows dA_rowᵀ ⊗ X_row`` for ``dA: (..., M)``, ``X: (..., K)`` with the same leading
    shape: the weight gradient ``(M, K)`` of ``A = X Wᵀ``, summed over serial-sized blocks of
    rows (a single product with the ``N·T`` rows as inner dimension would run threaded).

    >>> dA = np.ones((2, 3, 1)); X = np.arange(12.0).reshape(2, 3, 2)
    >>> tokens_wgrad(dA, X)
    array([[30., 36.]])
    """
    M, K = dA.shape[-1], X.shape[-1]
    A2, X2 = dA.reshape(-1, M), X.reshape(-1, K)
    rows = max(1, SERIAL_MNK // max(K * M, 1))
    out = A2[:rows].T @ X2[:rows]
    for r in range(rows, A2.shape[0], rows):
        out += A2[r : r + rows].T @ X2[r : r + rows]
    return out


def features_matmul(W: np.ndarray, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``W @ X`` for a 2-D ``W: (M, K)`` and feature-major ``X: (K, ...)`` (the tokens on
    the trailing axes), as column blocks of a 2-D product: ``(M, ...)``.

    >>> X = np.arange(12.0).reshape(2, 3, 2); W = np.array([[1.0, 0.0], [2.0, 1.0]])
    >>> bool(np.array_equal(features_matmul(W, X), np.einsum("mk,kab->mab", W, X)))
    True
    """
    M, K = W.shape
    X2 = X.reshape(K, -1)  # a copy only if X is not contiguous
    if out is None:
        out = np.empty((M,) + X.shape[1:])
    O2 = out.reshape(M, -1)
    cols = max(1, SERIAL_MNK // max(K * M, 1))
    for c in range(0, X2.shape[1], cols):
        np.matmul(W, X2[:, c : c + cols], out=O2[:, c : c + cols])
    return out


def features_wgrad(dA: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``Σ_tokens dA[:, tok] ⊗ X[:, tok]`` for feature-major ``dA: (M, ...)``, ``X: (K, ...)``
    with the same trailing shape: the weight gradient ``(M, K)`` of ``A = W X``, summed over
    serial-sized blocks of tokens.

    >>> dA = np.ones((1, 2, 3)); X = np.arange(12.0).reshape(2, 2, 3)
    >>> features_wgrad(dA, X)
    array([[15., 51.]])
    """
    M, K = dA.shape[0], X.shape[0]
    A2, X2 = dA.reshape(M, -1), X.reshape(K, -1)
    cols = max(1, SERIAL_MNK // max(K * M, 1))
    out = A2[:, :cols] @ X2[:, :cols].T
    for c in range(cols, A2.shape[1], cols):
        out += A2[:, c : c + cols] @ X2[:, c : c + cols].T
    return out
