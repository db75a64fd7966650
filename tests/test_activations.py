import warnings

import numpy as np
import pytest

from course import activations as A
from course.gradcheck import numerical_gradient, rel_error

Z = np.linspace(-3, 3, 13).reshape(13, 1) + np.array([[0.0, 0.37]])  # avoids the kink at 0 in column 2

PAIRS = [
    (A.identity, A.identity_derivative),
    (A.sigmoid, A.sigmoid_derivative),
    (A.tanh, A.tanh_derivative),
    (A.relu, A.relu_derivative),
    (lambda z: A.leaky_relu(z, 0.1), lambda z: A.leaky_relu_derivative(z, 0.1)),
]


@pytest.mark.parametrize("g, dg", PAIRS)
def test_derivative_matches_finite_differences(g, dg):
    z = Z[:, 1:].copy()  # no entry at exactly 0
    numeric = np.array([numerical_gradient(lambda: g(z)[i, 0], z)[i, 0] for i in range(len(z))])
    assert rel_error(dg(z)[:, 0], numeric) < 1e-7


def test_known_values():
    assert A.sigmoid(np.array(0.0)) == 0.5
    assert A.sigmoid_derivative(np.array(0.0)) == 0.25  # seed 000: dO/dS = 0.25 at S = 0
    np.testing.assert_allclose(A.tanh(np.array([1.0])), [np.tanh(1.0)])
    np.testing.assert_array_equal(A.relu(np.array([-2.0, 0.0, 3.0])), [0, 0, 3])
    np.testing.assert_array_equal(A.leaky_relu(np.array([-2.0, 3.0]), 0.1), [-0.2, 3])
    np.testing.assert_array_equal(A.step(np.array([-0.1, 0.0, 0.1])), [0, 0, 1])


def test_step_derivative_refuses_with_a_reason():
    with pytest.raises(ValueError, match="no usable derivative"):
        A.step_derivative(np.zeros(3))


def test_extremes_are_finite_and_silent():
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.sigmoid(z)
        ds = A.sigmoid_derivative(z)
        sm = A.softmax(np.array([[1e4, 0.0, -1e4]]))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert np.all(np.isfinite(ds))
    np.testing.assert_allclose(sm, [[1.0, 0.0, 0.0]])


def test_softmax_rows_sum_to_one_and_shift_invariant(rng):
    z = rng.standard_normal((5, 4))
    s = A.softmax(z)
    np.testing.assert_allclose(s.sum(axis=1), np.ones(5))
    np.testing.assert_allclose(A.softmax(z + 100.0), s)


def test_softmax_backward_matches_finite_differences(rng):
    z = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    numeric = numerical_gradient(lambda: np.sum(A.softmax(z) * dout), z)
    assert rel_error(A.softmax_backward(A.softmax(z), dout), numeric) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("g", [A.sigmoid, A.tanh, A.relu, A.leaky_relu, A.softmax, A.step,
                               A.sigmoid_derivative, A.tanh_derivative, A.relu_derivative,
                               A.leaky_relu_derivative, A.identity_derivative])
def test_dtype_is_kept(g, dtype):
    assert g(np.ones((2, 3), dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("g", [A.identity_derivative, A.step, A.sigmoid, A.sigmoid_derivative,
                               A.tanh, A.tanh_derivative, A.relu, A.relu_derivative,
                               A.leaky_relu, A.leaky_relu_derivative])
def test_plain_python_numbers_work(g):
    assert float(g(0.5)) == pytest.approx(float(g(np.array(0.5))))
    np.testing.assert_allclose(g([-1.0, 2.0]), g(np.array([-1.0, 2.0])))


def test_sigmoid_accuracy_is_what_its_docstring_says():
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("long double is no wider than float64 here: no exact reference")
    z = np.linspace(-40, 40, 160001)
    exact = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    ulps = np.abs((A.sigmoid(z) - exact) / exact) / np.finfo(np.float64).eps
    assert ulps[z > -5].max() <= 2.5
    assert ulps.max() <= 20
