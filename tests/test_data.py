"""The multitask data model: sampling moments (Monte Carlo, 4 standard errors), constructors,
random instances and argument validation."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from numerics.data import MultitaskModel, random_correlation, random_covariance

Z = 4.0  # Monte Carlo acceptance: |estimate - truth| <= 4 standard errors


def _model(seed=0, n=5, d=3, sigma=0.7, cond=10.0):
    rng = np.random.default_rng(seed)
    return MultitaskModel(
        random_correlation(n + 1, rng, common=0.3), random_covariance(d, rng, cond=cond), sigma
    )


def test_sample_shapes_and_determinism():
    m = _model()
    p1 = m.sample(7, np.random.default_rng(3))
    p2 = m.sample(7, np.random.default_rng(3))
    assert (
        p1.X.shape == (7, 5, 3)
        and p1.y.shape == (7, 5)
        and p1.x.shape == (7, 3)
        and p1.y_query.shape == (7,)
    )
    for f in ("X", "y", "x", "y_query"):
        np.testing.assert_array_equal(getattr(p1, f), getattr(p2, f))


def test_label_feature_moments_match_closed_form():
    # u_i = y_i x_i (query: y x). Independent of the sampler's factorisation of R:
    # E[u_iᵀu_j] = R_ij tr Σ² (i ≠ j), E[u_iᵀu_i] = R_ii (2 tr Σ² + (tr Σ)²) + σ² tr Σ
    # (Isserlis); E[x xᵀ] = Σ.
    m = _model(seed=1, sigma=0.7)
    N = 40000
    p = m.sample(N, np.random.default_rng(11))
    U = np.concatenate([p.y[:, :, None] * p.X, (p.y_query[:, None] * p.x)[:, None, :]], axis=1)
    prod = np.einsum("Nid,Njd->Nij", U, U)
    est = prod.mean(0)
    se = prod.std(0, ddof=1) / np.sqrt(N)
    S = m.Sigma
    trS, trS2 = np.trace(S), np.trace(S @ S)
    truth = m.R * trS2
    truth[np.diag_indices_from(truth)] = np.diag(m.R) * (2 * trS2 + trS**2) + m.sigma**2 * trS
    assert np.all(np.abs(est - truth) <= Z * se), np.max(np.abs(est - truth) / se)
    xx = p.x[:, :, None] * p.x[:, None, :]
    assert np.all(np.abs(xx.mean(0) - m.Sigma) <= Z * xx.std(0, ddof=1) / np.sqrt(N))


def test_singular_R_single_task_all_tasks_equal():
    # R = 11ᵀ is singular: the eigen-factor must still give identical β for every token,
    # so with σ = 0 and d = 1 all ratios y_i / x_i coincide.
    m = MultitaskModel.single_task(4, np.eye(1), sigma=0.0)
    p = m.sample(50, np.random.default_rng(0))
    ratios = np.column_stack([p.y / p.X[:, :, 0], p.y_query / p.x[:, 0]])
    np.testing.assert_allclose(ratios, ratios[:, :1] * np.ones((1, 5)), rtol=1e-8, atol=1e-8)


def test_derived_quantities():
    m = _model(seed=2)
    R = m.R
    n = m.n
    np.testing.assert_array_equal(m.r, R[:n, n])
    np.testing.assert_allclose(m.A, R[:n, :n] + np.diag(np.diag(R)[:n]), rtol=0, atol=0)
    np.testing.assert_allclose(m.B, np.diag(np.diag(R)[:n] * np.trace(m.Sigma) + m.sigma**2))
    np.testing.assert_allclose(np.sort(m.eigvals), np.linalg.eigvalsh(m.Sigma))
    assert m.R_query == R[n, n] and m.d == 3 and m.n == 5


def test_single_task_and_k_task_constructors():
    m = MultitaskModel.single_task(3, np.eye(2), 0.1)
    np.testing.assert_array_equal(m.R, np.ones((4, 4)))
    Gamma = np.array([[1.0, 0.2], [0.2, 1.0]])
    rho = np.array([0.3, 0.6])
    m = MultitaskModel.k_task([2, 3], Gamma, rho, np.eye(2), sigma=0.5, query_var=1.0)
    seg = [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(m.segments, seg)
    for i in range(5):
        for j in range(5):
            assert m.R[i, j] == Gamma[seg[i], seg[j]]
        assert m.R[i, 5] == rho[seg[i]] and m.R[5, i] == rho[seg[i]]
    assert m.R[5, 5] == 1.0


def test_k_task_validation_names_the_argument():
    with pytest.raises(ValueError, match="^rho"):
        MultitaskModel.k_task([2, 2], np.eye(2), [0.9, 0.9], np.eye(2))  # 0.81 + 0.81 > 1
    with pytest.raises(ValueError, match="^Gamma"):
        MultitaskModel.k_task([2, 2], np.array([[1.0, 2.0], [2.0, 1.0]]), [0.1, 0.1], np.eye(2))
    with pytest.raises(ValueError, match="^m"):
        MultitaskModel.k_task([2, 0], np.eye(2), [0.1, 0.1], np.eye(2))
    with pytest.raises(ValueError, match="^rho"):
        MultitaskModel.k_task([2, 2], np.eye(2), [0.1], np.eye(2))
    with pytest.raises(ValueError, match="^query_var"):
        MultitaskModel.k_task([2, 2], np.eye(2), [0.1, 0.1], np.eye(2), query_var=-1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(R=np.array([[1.0, 0.5], [0.4, 1.0]])), "R"),  # not symmetric
        (dict(R=np.array([[1.0, 2.0], [2.0, 1.0]])), "R"),  # indefinite
        (dict(R=np.array([[np.nan, 0.0], [0.0, 1.0]])), "R"),  # NaN
        (dict(R=np.ones((1, 1))), "R"),  # no examples
        (dict(Sigma=np.diag([1.0, 0.0])), "Sigma"),  # singular
        (dict(Sigma=np.diag([1.0, -1.0])), "Sigma"),
        (dict(Sigma=np.ones((2, 3))), "Sigma"),
        (dict(sigma=-0.1), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(sigma="x"), "sigma"),
    ],
)
def test_model_validation(kwargs, name):
    args = dict(R=np.eye(3), Sigma=np.eye(2), sigma=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}"):
        MultitaskModel(**args)


def test_large_R_psd_check_uses_same_tolerance():
    # Above 512 the check is a shifted Cholesky; it must still reject an indefinite R
    # and accept a singular PSD one.
    rng = np.random.default_rng(0)
    n = 600
    R = random_correlation(n, rng, rank=20)  # singular PSD
    MultitaskModel(R, np.eye(2))
    bad = R.copy()
    bad[0, 1] = bad[1, 0] = 1.5  # |R_01| > 1 with unit diagonal: indefinite
    with pytest.raises(ValueError, match="^R"):
        MultitaskModel(bad, np.eye(2))


def test_sample_validation():
    m = _model()
    with pytest.raises(ValueError, match="^num_prompts"):
        m.sample(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^rng"):
        m.sample(3, 0)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    rank=st.integers(1, 30),
    common=st.floats(0, 2),
    logcond=st.floats(0, 3),
)
def test_random_instances_are_valid(n, seed, rank, common, logcond):
    rng = np.random.default_rng(seed)
    C = random_correlation(n, rng, rank=rank, common=common)
    np.testing.assert_allclose(np.diag(C), 1.0)
    assert np.linalg.eigvalsh(C)[0] >= -1e-10
    d = max(n // 3, 2)
    S = random_covariance(d, rng, cond=10**logcond)
    lam = np.linalg.eigvalsh(S)
    np.testing.assert_allclose(lam[-1] / lam[0], 10**logcond, rtol=1e-8)
    np.testing.assert_allclose(np.trace(S), d, rtol=1e-12)
