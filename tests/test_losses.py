import warnings

import numpy as np
import pytest

from course import losses
from course.gradcheck import numerical_gradient, rel_error


def _check_grad(loss_fn, y_hat, y):
    _, dy = loss_fn(y_hat, y)
    numeric = numerical_gradient(lambda: loss_fn(y_hat, y)[0], y_hat)
    return rel_error(dy, numeric)


def test_half_sse_seed000_and_gradient(rng):
    # seed 000: target 0, output 0.5 -> E = 1/2 (0 - 0.5)^2 = 0.125, dE/dO = 0.5
    E, dO = losses.half_sse(np.array([[0.5]]), np.array([[0.0]]))
    assert E == 0.125 and dO[0, 0] == 0.5
    assert _check_grad(losses.half_sse, rng.standard_normal((4, 3)), rng.standard_normal((4, 3))) < 1e-7


def test_mse_is_a_mean_over_all_entries(rng):
    loss, _ = losses.mse(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2)))
    assert loss == pytest.approx(30 / 4)
    assert _check_grad(losses.mse, rng.standard_normal((4, 3)), rng.standard_normal((4, 3))) < 1e-7


def test_sum_of_squares_is_the_sum_in_every_layout_and_dtype(rng):
    """float64 goes through a dot product (equal to the sum up to rounding), float32 keeps
    NumPy's pairwise sum exactly, and any layout of the array gives the same value."""
    for shape in [(1, 2), (1, 3), (10, 2), (64, 10), (3,), ()]:
        d = rng.standard_normal(shape)
        assert losses._sum_of_squares(d) == pytest.approx(float(np.sum(d * d)), rel=1e-14, abs=0)
        assert isinstance(losses._sum_of_squares(d), float)
    d = rng.standard_normal((6, 4))
    for view in (np.asfortranarray(d), d.T, d[::2], d[:, 1:3]):
        assert losses._sum_of_squares(view) == pytest.approx(float(np.sum(view * view)), rel=1e-14)
    long32 = rng.standard_normal(2_000_000).astype(np.float32)
    assert losses._sum_of_squares(long32) == float(np.sum(long32 * long32))
    assert losses._sum_of_squares(np.zeros((0, 3))) == 0.0


def test_binary_cross_entropy_value_and_gradient(rng):
    p = np.array([[0.9], [0.2]])
    y = np.array([[1.0], [0.0]])
    loss, _ = losses.binary_cross_entropy(p, y)
    assert loss == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2)
    p = rng.uniform(0.05, 0.95, (5, 2))
    y = (rng.uniform(size=(5, 2)) > 0.5).astype(float)
    assert _check_grad(losses.binary_cross_entropy, p, y) < 1e-7


def test_softmax_cross_entropy_seed004_batch_losses():
    # seed 004: the loss of an image is -log(probability given to its true class).
    # The slide prints -log 0.7 = 0.356; the value is 0.35667, which rounds to 0.357.
    for p_true, expected, places in [(0.2, 1.61, 2), (0.7, 0.357, 3), (0.9, 0.105, 3), (1.0, 0.0, 3)]:
        logits = np.log(np.array([[p_true, 1 - p_true + 1e-300]]))
        loss, _ = losses.softmax_cross_entropy(logits, np.array([0]))
        assert round(loss, places) == expected


@pytest.mark.parametrize("as_one_hot", [False, True])
def test_softmax_cross_entropy_gradient(rng, as_one_hot):
    logits = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    target = losses.one_hot(labels, 4) if as_one_hot else labels
    loss, _ = losses.softmax_cross_entropy(logits, target)
    expected = -np.mean(np.log(np.exp(logits[np.arange(6), labels]) / np.exp(logits).sum(1)))
    assert loss == pytest.approx(expected)
    assert _check_grad(losses.softmax_cross_entropy, logits, target) < 1e-7


def test_extreme_inputs_are_finite_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big, dbig = losses.softmax_cross_entropy(np.array([[1e4, 0.0, -1e4]]), np.array([1]))
        bce, dbce = losses.binary_cross_entropy(np.array([[0.0], [1.0], [0.0]]),
                                                np.array([[1.0], [0.0], [0.0]]))
    assert big == pytest.approx(1e4) and np.all(np.isfinite(dbig))
    assert np.isfinite(bce) and bce > 10 and np.all(np.isfinite(dbce))


def test_out_of_range_label_is_named():
    with pytest.raises(ValueError, match="label 7 is out of range for 3 classes"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 7]))
    with pytest.raises(ValueError, match="label -1"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 0]))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        losses.half_sse(np.zeros((4, 1)), np.zeros(4))
    with pytest.raises(ValueError, match="3 rows of logits but 2 labels"):
        losses.softmax_cross_entropy(np.zeros((3, 2)), np.array([0, 1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_keep_dtype(dtype):
    y_hat = np.full((3, 2), 0.3, dtype=dtype)
    y = np.ones((3, 2), dtype=dtype)
    for fn in (losses.half_sse, losses.mse, losses.binary_cross_entropy):
        assert fn(y_hat, y)[1].dtype == dtype
    assert losses.softmax_cross_entropy(y_hat, np.array([0, 1, 1]))[1].dtype == dtype


def test_one_hot_rows_and_range():
    np.testing.assert_array_equal(losses.one_hot(np.asarray([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert losses.one_hot(np.asarray([1]), 2, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        losses.one_hot(np.asarray([0, 3]), 3)
