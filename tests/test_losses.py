import warnings

import numpy as np
import pytest

from course import losses
from course.gradcheck import numerical_gradient, rel_error


def _check_grad(loss_fn, y_hat, y):
    _, dy = loss_fn(y_hat, y)
    numeric = numerical_gradient(lambda: loss_fn(y_hat, y)[0], y_hat)
    return rel_error(dy, numeric)


def test_half_sse_ann_notes_and_gradient(rng):
    # "Artificial Neural Networks from Scratch": target 0, output 0.5 -> E = 0.125, dE/dO = 0.5
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


def test_softmax_cross_entropy_lapenna_batch_losses():
    # LAPENNA lecture 4: the loss of an image is -log(probability given to its true class).
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


# ------------------------------------------------------------ extreme logits

EXTREMES = [(np.float64, 1e308), (np.float32, 3e38), (np.float16, 6e4)]  # about the largest of each


@pytest.mark.parametrize("dtype, big", EXTREMES)
def test_logits_spanning_the_whole_range_give_the_right_loss_silently(dtype, big):
    """logits [big, -big, 0]: max - (-big) overflows, so the loss must not compute it.

    Class 0 costs 0 and class 2 costs big - 0 = big exactly; class 1 costs 2 big, more than
    the dtype holds, so its loss is inf (as in PyTorch). Every gradient is finite and exact.
    """
    logits = np.array([[big, -big, 0.0]], dtype=dtype)
    big = float(dtype(big))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = [losses.softmax_cross_entropy(logits, np.array([c])) for c in range(3)]
        batch, _ = losses.softmax_cross_entropy(np.repeat(logits, 4, axis=0), np.full(4, 2))
    expected = [(0.0, [[0, 0, 0]]), (np.inf, [[1, -1, 0]]), (big, [[1, 0, -1]])]
    for (loss, grad), (want_loss, want_grad) in zip(results, expected):
        assert type(loss) is float and loss == want_loss
        assert grad.dtype == dtype
        np.testing.assert_array_equal(grad, want_grad)
    assert batch == big  # the mean of four such losses, although their sum overflows


def test_minus_infinity_logits_are_classes_with_probability_zero():
    loss, grad = losses.softmax_cross_entropy(np.array([[0.0, -np.inf, 0.0]]), np.array([0]))
    assert loss == pytest.approx(np.log(2))
    np.testing.assert_allclose(grad, [[-0.5, 0.0, 0.5]])
    assert losses.softmax_cross_entropy(np.array([[0.0, -np.inf]]), np.array([1]))[0] == np.inf


def test_nan_logits_give_a_nan_loss_for_train_fit_to_report():
    loss, grad = losses.softmax_cross_entropy(np.array([[np.nan, 0.0]]), np.array([1]))
    assert np.isnan(loss) and np.all(np.isnan(grad))


# ------------------------------------------------------------ probability targets

def test_soft_targets_value_and_gradient(rng):
    logits = rng.standard_normal((5, 4))
    smooth = 0.9 * losses.one_hot(rng.integers(0, 4, 5), 4) + 0.1 / 4  # label smoothing
    loss, _ = losses.softmax_cross_entropy(logits, smooth)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-np.sum(smooth * log_p) / 5)
    assert _check_grad(losses.softmax_cross_entropy, logits, smooth) < 1e-7


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.bool_, np.float32])
def test_one_hot_rows_of_any_dtype_equal_the_labels(rng, dtype):
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([2, 0, 1, 1])
    Y = np.eye(3, dtype=dtype)[labels]
    loss, grad = losses.softmax_cross_entropy(logits, Y)
    want_loss, want_grad = losses.softmax_cross_entropy(logits, labels)
    assert loss == want_loss and grad.dtype == np.float32
    np.testing.assert_array_equal(grad, want_grad)


def test_targets_are_converted_to_the_logits_dtype():
    _, grad = losses.softmax_cross_entropy(np.zeros((1, 2), np.float32), np.array([[0.25, 0.75]]))
    assert grad.dtype == np.float32


@pytest.mark.parametrize("Y, match", [
    ([[0.0, 1.0, 0.0], [0.5, -0.5, 1.0]], r"target row 1 .* negative entry, -0\.5"),
    ([[0.2, 0.3, 0.4], [0.0, 0.0, 1.0]], r"target row 0 .* sums to 0\.9"),
    ([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], r"target row 1 .* sums to 0\.0, not 1"),
    ([[np.nan, 0.0, 1.0]], r"target row 0 .* sums to nan"),
    ([[2, 0, 0]], r"target row 0 .* sums to 2"),
    ([[1, 1, -1]], r"target row 0 .* negative entry, -1"),
])
def test_target_rows_that_are_not_distributions_are_named(Y, match):
    Y = np.array(Y)
    with pytest.raises(ValueError, match=match):
        losses.softmax_cross_entropy(np.zeros(Y.shape), Y)


@pytest.mark.parametrize("dtype, ok, too_far", [(np.float64, 1e-10, 1e-6), (np.float32, 1e-5, 1e-3)])
def test_row_sums_are_checked_within_the_rounding_of_their_dtype(dtype, ok, too_far):
    logits = np.zeros((1, 2), dtype)
    losses.softmax_cross_entropy(logits, np.array([[0.5, 0.5 + ok]], dtype))
    with pytest.raises(ValueError, match="sums to"):
        losses.softmax_cross_entropy(logits, np.array([[0.5, 0.5 + too_far]], dtype))


# ------------------------------------------------------------ empty batches and bad probabilities

@pytest.mark.parametrize("fn, y_hat, y", [
    (losses.half_sse, np.zeros((0, 3)), np.zeros((0, 3))),
    (losses.mse, np.zeros((0, 3)), np.zeros((0, 3))),
    (losses.mse, np.zeros((2, 0)), np.zeros((2, 0))),
    (losses.binary_cross_entropy, np.zeros((0, 1)), np.zeros((0, 1))),
    (losses.binary_cross_entropy, np.zeros(0), np.zeros(0)),
    (losses.softmax_cross_entropy, np.zeros((0, 3)), np.zeros(0, dtype=int)),
    (losses.softmax_cross_entropy, np.zeros((0, 3)), np.zeros((0, 3))),
])
def test_an_empty_batch_is_refused_by_every_loss(fn, y_hat, y):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: got an empty batch \(.* of shape \("):
        fn(y_hat, y)


@pytest.mark.parametrize("p, match", [
    ([[1.5], [0.5], [2.0]], r"entry of p must lie in \[0, 1\], but 2 entries do not \(the first is 1\.5\)"),
    ([[0.5], [-0.25]], r"but 1 entry does not \(the first is -0\.25\)"),
])
def test_probabilities_outside_zero_one_are_refused(p, match):
    p = np.array(p)
    with pytest.raises(ValueError, match=match):
        losses.binary_cross_entropy(p, np.ones_like(p))


def test_binary_targets_outside_zero_one_are_refused_and_integer_targets_work():
    p = np.array([[0.25], [0.75]])
    with pytest.raises(ValueError, match=r"entry of y must lie in \[0, 1\].*\(the first is 2\.0\)"):
        losses.binary_cross_entropy(p, np.array([[2.0], [1.0]]))
    loss, dp = losses.binary_cross_entropy(p, np.array([[0], [1]]))
    assert loss == pytest.approx(-np.log(0.75)) and dp.dtype == p.dtype


def test_integer_probabilities_are_explained():
    with pytest.raises(TypeError, match="floating-point probabilities .* sigmoid"):
        losses.binary_cross_entropy(np.array([[1], [0]]), np.array([[1], [0]]))


def test_nan_probability_gives_a_nan_loss_silently():
    loss, dp = losses.binary_cross_entropy(np.array([[np.nan], [0.5]]), np.array([[1.0], [0.0]]))
    assert np.isnan(loss) and np.isnan(dp[0, 0]) and dp[1, 0] == 1.0


def test_one_hot_checks_its_labels():
    np.testing.assert_array_equal(losses.one_hot(np.array([1.0, 0.0]), 2), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="whole class numbers, got 0.5"):
        losses.one_hot(np.array([1.0, 0.5]), 2)
    with pytest.raises(ValueError,
                       match="softmax_cross_entropy: labels must be whole class numbers, got nan"):
        losses.softmax_cross_entropy(np.zeros((1, 2)), np.array([np.nan]))
    with pytest.raises(TypeError, match="integer class numbers"):
        losses.one_hot(np.array([True, False]), 2)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        losses.one_hot(np.zeros((2, 1), dtype=int), 2)
    assert losses.one_hot(np.zeros(0, dtype=int), 3).shape == (0, 3)


# ------------------------------------------------------------ any namespace, any device

@pytest.fixture
def strict():
    """array_api_strict and a device other than its default one."""
    xps = pytest.importorskip("array_api_strict", reason="installed with the test extras")
    return xps, xps.Device("device1")


def _on(xps, device, a):
    return xps.asarray(np.asarray(a), device=device)


def _stays(xps, device, out):
    assert type(out).__module__.startswith("array_api_strict") and out.device == device
    return np.from_dlpack(out)


def test_one_hot_is_made_on_the_labels_device(strict):
    xps, device = strict
    for labels in ([2, 0, 1], [2.0, 0.0, 1.0]):
        rows = losses.one_hot(_on(xps, device, labels), 3, dtype=xps.float32)
        assert rows.dtype == xps.float32
        np.testing.assert_array_equal(_stays(xps, device, rows), np.eye(3)[[2, 0, 1]])
    with pytest.raises(ValueError, match="label 3 is out of range"):
        losses.one_hot(_on(xps, device, [0, 3]), 3)


@pytest.mark.parametrize("as_rows", [False, True])
def test_softmax_cross_entropy_on_another_device(strict, rng, as_rows):
    xps, device = strict
    logits = np.vstack([[1e308, -1e308, 0.0], rng.standard_normal((3, 3))])
    labels = np.array([2, 0, 1, 2])
    target = np.eye(3, dtype=np.int64)[labels] if as_rows else labels
    loss, grad = losses.softmax_cross_entropy(_on(xps, device, logits), _on(xps, device, target))
    want_loss, want_grad = losses.softmax_cross_entropy(logits, labels)
    assert type(loss) is float and loss == pytest.approx(want_loss, rel=1e-15)
    np.testing.assert_allclose(_stays(xps, device, grad), want_grad, rtol=1e-15)


def test_other_losses_on_another_device(strict):
    xps, device = strict
    p, y = np.array([[0.2], [0.9], [1.0]]), np.array([[0.0], [1.0], [1.0]])
    for fn in (losses.half_sse, losses.mse, losses.binary_cross_entropy):
        loss, grad = fn(_on(xps, device, p), _on(xps, device, y))
        want_loss, want_grad = fn(p, y)
        assert type(loss) is float and loss == pytest.approx(want_loss, rel=1e-15)
        np.testing.assert_allclose(_stays(xps, device, grad), want_grad, rtol=1e-15)
    with pytest.raises(ValueError, match="entry of p must lie in"):
        losses.binary_cross_entropy(_on(xps, device, [[1.5]]), _on(xps, device, [[1.0]]))
    with pytest.raises(ValueError, match="got an empty batch"):
        losses.mse(_on(xps, device, np.zeros((0, 2))), _on(xps, device, np.zeros((0, 2))))
    with pytest.raises(ValueError, match="target row 0"):
        losses.softmax_cross_entropy(_on(xps, device, [[0.0, 0.0]]), _on(xps, device, [[0.5, 0.6]]))


def test_valid_targets_cost_no_transfer_beyond_the_loss(monkeypatch, rng):
    """The host-side checks (which copy arrays to the host) run only when a batch fails.

    A valid batch makes one transfer, the loss itself: the checks stay on the device and fold
    into the loss, so a training step on a GPU waits for the host once.
    """
    def host_check(*args):
        raise AssertionError("a host-side check ran on a valid batch")

    for helper in ("_flagged", "_check_distributions", "_check_label_values",
                   "_check_in_unit_interval"):
        monkeypatch.setattr(losses, helper, host_check)
    logits = rng.standard_normal((6, 4))
    losses.softmax_cross_entropy(logits, rng.integers(0, 4, 6))
    losses.softmax_cross_entropy(logits, np.full((6, 4), 0.25))
    losses.binary_cross_entropy(rng.uniform(size=(6, 1)), np.ones((6, 1)))
    with pytest.raises(AssertionError, match="host-side check"):  # a bad batch is explained
        losses.softmax_cross_entropy(logits, np.array([0, 1, 2, 3, 4, 0]))


def test_a_nan_prediction_is_a_nan_loss_not_an_error():
    loss, _ = losses.softmax_cross_entropy(np.array([[np.nan, 0.0]]), np.array([1]))
    assert np.isnan(loss)
    loss, _ = losses.binary_cross_entropy(np.array([np.nan, 0.5]), np.array([1.0, 0.0]))
    assert np.isnan(loss)
