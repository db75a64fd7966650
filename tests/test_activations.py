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
    numeric = np.array([numerical_gradient(lambda i=i: g(z)[i, 0], z)[i, 0] for i in range(len(z))])
    assert rel_error(dg(z)[:, 0], numeric) < 1e-7


def test_known_values():
    assert A.sigmoid(np.array(0.0)) == 0.5
    assert A.sigmoid_derivative(np.array(0.0)) == 0.25  # ANN-from-scratch notes: dO/dS = 0.25 at S = 0
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


@pytest.mark.parametrize("shape, axis", [((4, 3), 0), ((2, 4, 3), 1), ((3, 4, 2), -3)])
def test_softmax_backward_along_a_non_last_axis_matches_finite_differences(shape, axis, rng):
    """softmax_backward(s, dout, axis) is the gradient of sum(softmax(z, axis) * dout) along that axis."""
    z = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    s = A.softmax(z, axis=axis)
    np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-14)
    numeric = numerical_gradient(lambda: np.sum(A.softmax(z, axis=axis) * dout), z)
    analytic = A.softmax_backward(s, dout, axis=axis)
    assert analytic.shape == shape
    assert rel_error(analytic, numeric) < 1e-7
    assert rel_error(A.softmax_backward(s, dout), numeric) > 1e-2  # the axis matters here


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


EXTREMES = [(np.float64, 1e308), (np.float32, 3e38), (np.float16, 6e4)]  # about the largest of each


@pytest.mark.parametrize("dtype, big", EXTREMES)
def test_softmax_of_scores_spanning_the_whole_range(dtype, big):
    """big - (-big) overflows; softmax must not compute it, so there is no warning and no NaN."""
    z = np.array([[big, -big, 0.0], [-big, 0.0, big]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.softmax(z)
        log_s = A.log_softmax(z)
    assert s.dtype == log_s.dtype == dtype
    np.testing.assert_array_equal(s, [[1, 0, 0], [0, 0, 1]])
    big = dtype(big)  # as stored: float32(3e38) is 3.0000000054977558e+38
    np.testing.assert_array_equal(log_s, np.array([[0, -np.inf, -big], [-np.inf, -big, 0]], dtype))


def test_log_softmax_is_the_log_of_softmax_and_stays_finite(rng):
    z = 3 * rng.standard_normal((4, 5))
    np.testing.assert_allclose(A.log_softmax(z), np.log(A.softmax(z)), rtol=1e-13)
    np.testing.assert_allclose(A.log_softmax(z.T, axis=0), np.log(A.softmax(z.T, axis=0)), rtol=1e-13)
    np.testing.assert_array_equal(A.log_softmax(np.array([[1e4, 0.0]])), [[0.0, -1e4]])  # softmax gives 0


def test_softmax_takes_minus_infinity_as_probability_zero():
    np.testing.assert_array_equal(A.softmax(np.array([[0.0, -np.inf, 0.0]])), [[0.5, 0.0, 0.5]])


def test_softmax_of_integer_scores_is_float():
    np.testing.assert_allclose(A.softmax(np.array([[1, 2, 3]])), A.softmax(np.array([[1.0, 2.0, 3.0]])))


NAN_IN_NAN_OUT = [A.identity, A.identity_derivative, A.step, A.sigmoid, A.sigmoid_derivative, A.tanh,
                  A.tanh_derivative, A.relu, A.relu_derivative, A.leaky_relu, A.leaky_relu_derivative]


@pytest.mark.parametrize("g", NAN_IN_NAN_OUT)
def test_nan_gives_nan_silently(g):
    """A NaN must stay visible: no 0 (z > 0 is False for NaN) and no warning."""
    z = np.array([np.nan, -2.0, 0.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = g(z)
        scalar = g(float("nan"))
    assert np.isnan(out[0]) and np.all(np.isfinite(out[1:]))
    assert np.isnan(scalar)
    np.testing.assert_array_equal(out[1:], g(z[1:]))  # the other entries are untouched


def test_nan_in_softmax_stays_in_its_row():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.softmax(np.array([[np.nan, 0.0], [0.0, 0.0]]))
    assert np.all(np.isnan(s[0])) and np.all(s[1] == 0.5)


def test_relu_derivative_is_the_step_and_keeps_integer_dtype():
    z = np.array([-2, 0, 3])
    np.testing.assert_array_equal(A.relu_derivative(z), [0, 0, 1])
    assert A.step(z).dtype == A.relu_derivative(z).dtype == z.dtype


def test_sigmoid_is_unchanged_on_ordinary_inputs():
    """The max/log1p form gives NumPy's logaddexp form's values, within a few units in the last place."""
    z = np.linspace(-40, 40, 80001)
    np.testing.assert_allclose(A.sigmoid(z), np.exp(-np.logaddexp(0.0, -z)), rtol=2e-15, atol=0)
    assert A.sigmoid(np.float32(-3.0)).dtype == np.float32


@pytest.mark.parametrize("g", NAN_IN_NAN_OUT + [A.softmax, A.log_softmax])
def test_every_function_stays_in_the_namespace_and_on_the_device(g):
    """array_api_strict refuses hidden NumPy conversions and mixing arrays of two devices."""
    xps = pytest.importorskip("array_api_strict", reason="installed with the test extras")
    device = xps.Device("device1")
    z_np = np.array([[np.nan, -2.0, 0.5], [1e308, -1e308, 0.0]])
    if g in (A.softmax, A.log_softmax):
        z_np = z_np[1:]
    out = g(xps.asarray(z_np, device=device))
    assert type(out).__module__.startswith("array_api_strict") and out.device == device
    np.testing.assert_array_equal(np.from_dlpack(out), g(z_np))
