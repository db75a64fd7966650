import numpy as np
import pytest

from course import losses, nn
from course.gradcheck import check_gradients, check_module, numerical_gradient, rel_error


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 0.5])
    grad = numerical_gradient(lambda: np.sum(x**3), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, [1.0, -2.0, 0.5])  # restored


def test_rel_error_properties():
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.array([1.0]), np.array([-1.0])) == 1.0
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9])) < 1e-9
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


def test_float32_is_refused_with_advice():
    x = np.zeros(2, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: float(x.sum()), x)


class BrokenDense(nn.Dense):
    """A dense layer whose weight gradient forgets a transpose-free factor of 2."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.W.grad *= 2
        return dx


def test_a_wrong_backward_is_caught(rng):
    x = rng.standard_normal((4, 3))
    assert check_module(nn.Dense(3, 2, rng=0), x) < 1e-7
    assert check_module(BrokenDense(3, 2, rng=0), x) > 0.1
    model = nn.Sequential(BrokenDense(3, 2, rng=0), nn.Tanh())
    assert check_gradients(model, losses.mse, x, rng.standard_normal((4, 2))) > 0.1
