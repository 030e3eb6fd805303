"""The matrix-level expectation engine (theory.matrix_engine): algebra, rules, canonical form."""

import pytest
import sympy as sp

from theory import matrix_engine as me
from theory.matrix_engine import (
    IDENTITY,
    LAM,
    OMEGA,
    SIGMA,
    XI,
    Expr,
    Q,
    canonical,
    equal,
    expectation,
    fn,
    idx,
    mat,
    scalar,
    split_sums,
    sum_over,
    vec,
)


def test_products_shapes_and_transposes():
    x, u = vec("x", Q), vec("u", 1)
    P = mat("P")
    assert (x.T @ P @ u).terms[0].open_ends() == set()
    assert (x @ u.T).terms[0].open_ends() == {"row", "col"}
    assert equal((x.T @ P @ u), (u.T @ P.T @ x))
    assert equal((P @ P.T).T, P @ P.T)
    with pytest.raises(ValueError, match="shape mismatch"):
        _ = P @ x.T
    with pytest.raises(ValueError, match="not matrix-valued"):
        _ = x.tr()


def test_trace_cyclicity_and_functions_of_sigma():
    P, M = mat("P"), mat("M")
    assert equal((P @ M @ SIGMA).tr(), (SIGMA @ P @ M).tr())
    assert equal((P @ M).tr(), (M.T @ P.T).tr())
    assert not equal((P @ M).tr(), (M @ P.T).tr())
    b, c = sp.symbols("b c", positive=True)
    assert equal(fn(b * LAM + c) @ fn(1 / (b * LAM + c)), IDENTITY)
    assert equal(IDENTITY.tr(), scalar(me.D))
    assert equal(fn(LAM**2 + LAM) @ P, SIGMA @ SIGMA @ P + SIGMA @ P)


def test_index_split_and_free_index():
    i, j = idx("i"), idx("j")
    e = sum_over(scalar(OMEGA[i] * OMEGA[j]), i, j)
    split, count = split_sums(e)
    assert count == 1 and len(split) == 2
    # (Σ_i ω_i)^2 = Σ_{i,j} ω_i ω_j, and n Σ_i 1 = n^2 through the free-index rule
    a = sum_over(scalar(OMEGA[i]), i)
    assert equal(a @ a, e)
    assert equal(sum_over(scalar(1), i) @ sum_over(scalar(1), j), scalar(me.N**2))


def test_dummies_are_renamed_in_products():
    i = idx("i")
    h = sum_over(OMEGA[i] * vec("x", i), i)
    hh = h.T @ h
    t = hh.terms[0]
    assert len(set(t.dummies)) == 2


def test_expectation_second_fourth_and_independence():
    x = vec("x", Q)
    i = idx("i")
    M = mat("M")
    assert equal(expectation(x @ x.T), SIGMA)
    assert equal(
        expectation(x @ x.T @ M @ x @ x.T),
        SIGMA @ M @ SIGMA + SIGMA @ M.T @ SIGMA + (M @ SIGMA).tr() @ SIGMA,
    )
    assert len(expectation(x.T @ M @ x @ (x.T @ vec("u", 1)))) == 0  # odd
    xi = vec("x", i)
    # x_i independent of x: E[x x^T M x_i x_i^T] = Σ M Σ
    assert equal(
        expectation(sum_over(x @ x.T @ M @ xi @ xi.T * OMEGA[i], i)),
        sum_over(OMEGA[i] * (SIGMA @ M @ SIGMA), i),
    )


def test_noise_and_tasks():
    i = idx("i")
    e = sum_over(scalar(XI[i] ** 2 * OMEGA[i]), i)
    assert equal(expectation(e), sum_over(scalar(me.SIGMA_NOISE**2 * OMEGA[i]), i))
    b = vec("beta", i)
    assert equal(
        expectation(sum_over(b.T @ vec("beta", Q) * OMEGA[i], i)),
        sum_over(me.Rij(i, Q) * OMEGA[i] * IDENTITY.tr(), i),
    )


def test_orders_above_four_are_refused():
    x = vec("x", Q)
    with pytest.raises(NotImplementedError, match="order 6"):
        expectation(x @ x.T @ x @ x.T @ x @ x.T)


def test_spectral_rule_and_latex():
    b, c = sp.symbols("b c", positive=True)
    e = fn(LAM**2 / (b * LAM + c)).tr()
    out = canonical(e, spectral=True)
    assert out.terms[0].eig and "lambda" in out.latex()
    assert isinstance(Expr([]).latex(), str) and Expr([]).latex() == "0"


def test_free_example_index_is_refused():
    i = idx("i")
    with pytest.raises(ValueError, match="neither summed"):
        expectation(vec("x", i) @ vec("x", i).T)
