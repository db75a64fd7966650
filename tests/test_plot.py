"""Tests for course.plot: each picture holds the artists and numbers it should."""
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402

from course import data, plot, train  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _points(ax):
    """All scatter offsets on ax, stacked: (N, 2)."""
    offsets = [c.get_offsets() for c in ax.collections if hasattr(c, "get_offsets")
               and c.__class__.__name__ == "PathCollection"]
    return np.concatenate(offsets) if offsets else np.empty((0, 2))


def test_importing_plot_and_widgets_does_not_import_matplotlib():
    code = ("import sys, course.plot, course.widgets; "
            "print(sorted(m for m in ('matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ decision_boundary


def test_decision_boundary_with_labels_draws_the_predicted_regions_and_the_points():
    X, y = data.blobs(60, centers=[[-2, 0], [2, 0]], std=0.5, rng=1)
    fig = plot.decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, y, resolution=50,
                                 title="split at x1 = 0")
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    regions = np.asarray(ax.images[0].get_array())
    assert regions.shape == (50, 50)
    # origin="lower": column index grows with x1; left half class 0, right half class 1
    assert np.all(regions[:, 0] == 0) and np.all(regions[:, -1] == 1)
    np.testing.assert_allclose(np.sort(_points(ax), axis=0), np.sort(X, axis=0))
    assert ax.get_title() == "split at x1 = 0"


def test_decision_boundary_takes_class_scores_by_argmax():
    X, y = data.blobs(30, centers=3, rng=0)

    def scores(P):  # (M, 3): class 2 wins when x2 > 0, else class 0
        s = np.zeros((len(P), 3))
        s[:, 2] = P[:, 1]
        return s

    fig = plot.decision_boundary(scores, X, y, resolution=40)
    regions = np.asarray(fig.axes[0].images[0].get_array())
    assert set(np.unique(regions)) == {0, 2}
    assert np.all(regions[0] == 0) and np.all(regions[-1] == 2)


def test_decision_boundary_with_probabilities_draws_the_half_contour():
    X, y = data.logic_gate("and")
    fig = plot.decision_boundary(lambda P: 1 / (1 + np.exp(-(P.sum(axis=1) - 1.5) * 4)), X, y,
                                 resolution=60)
    ax = fig.axes[0]
    contours = [c for c in ax.collections if hasattr(c, "levels")]
    assert len(contours) == 1 and list(contours[0].levels) == [0.5]
    assert len(_points(ax)) == 4


def test_decision_boundary_rejects_points_that_are_not_2d():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot.decision_boundary(lambda P: P[:, 0], np.zeros((5, 3)), np.zeros(5))


# ------------------------------------------------------------------ decision_line


def _the_line(ax):
    lines = [line for line in ax.lines if line.get_gid() == "decision_line"]
    assert len(lines) == 1
    return np.column_stack(lines[0].get_data())


def test_decision_line_for_and_passes_through_the_right_points():
    X, y = data.logic_gate("and")
    fig = plot.decision_line(np.array([1.0, 1.0]), -1.5, X, y)
    ax = fig.axes[0]
    line = _the_line(ax)
    np.testing.assert_allclose(line @ [1.0, 1.0] - 1.5, 0.0, atol=1e-12)
    # (0.5, 1) and (1, 0.5) are on it: x2 = 1.5 - x1
    x1 = line[:, 0]
    np.testing.assert_allclose(line[:, 1], 1.5 - x1)
    points = _points(ax)
    assert points.shape == (4, 2)
    assert len([c for c in ax.collections if c.__class__.__name__ == "PathCollection"]) == 2


def test_decision_line_accepts_a_dense_column_and_draws_vertical_lines():
    fig = plot.decision_line(np.array([[2.0], [0.0]]), -1.0)
    line = _the_line(fig.axes[0])
    np.testing.assert_allclose(line[:, 0], 0.5)
    assert line[0, 1] != line[1, 1]


def test_decision_line_with_zero_weights_draws_no_line():
    fig = plot.decision_line([0.0, 0.0], 1.0)
    assert not [line for line in fig.axes[0].lines if line.get_gid() == "decision_line"]


def test_decision_line_rejects_three_weights():
    with pytest.raises(ValueError, match="2 weights"):
        plot.decision_line([1.0, 1.0, 1.0], 0.0)


# ------------------------------------------------------------------ loss_curves


def test_loss_curves_one_line_per_list_and_dashed_validation_from_a_history():
    history = train.History()
    for epoch, (loss, val) in enumerate([(1.0, 1.2), (0.5, 0.7), (0.25, 0.6)], 1):
        history.append(epoch, loss=loss, val_loss=val)
    fig = plot.loss_curves({"sgd": [1.0, 0.1, 0.01], "adam": history}, log_scale=True)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["sgd", "adam", "adam (validation)"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.1, 0.01])
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax.lines[2].get_ydata(), [1.2, 0.7, 0.6])
    assert ax.lines[2].get_linestyle() == "--"
    assert ax.get_yscale() == "log"
    assert plot.loss_curves({"a": [1, 2]}).axes[0].get_yscale() == "linear"


def test_loss_curves_draws_into_a_given_axes():
    fig, axes = plt.subplots(1, 2)
    returned = plot.loss_curves({"run": [3.0, 2.0]}, ax=axes[1])
    assert returned is fig
    assert len(axes[1].lines) == 1 and len(axes[0].lines) == 0


# ------------------------------------------------------------------ digits


def test_digits_one_image_per_digit_and_wrong_predictions_in_red():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = np.arange(12) % 10
    predictions = labels.copy()
    predictions[[3, 7]] = [8, 1]
    fig = plot.digits(images, labels, predictions, n_cols=5)
    assert len(fig.axes) == 12  # 3 rows of 5, the 3 empty places removed
    np.testing.assert_array_equal(fig.axes[4].images[0].get_array(), images[4])
    red = [i for i, ax in enumerate(fig.axes)
           if matplotlib.colors.same_color(ax.title.get_color(), "red")]
    assert red == [3, 7]
    assert fig.axes[3].get_title() == "8 (3)" and fig.axes[4].get_title() == "4"


def test_digits_accepts_flat_rows_and_labels_only():
    images = np.zeros((3, 784), dtype=np.float32)
    fig = plot.digits(images, labels=[7, 2, 1])
    assert [ax.get_title() for ax in fig.axes] == ["7", "2", "1"]
    assert fig.axes[0].images[0].get_array().shape == (28, 28)


# ------------------------------------------------------------------ confusion_matrix


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    y_true = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2, 2, 0, 2])
    matrix, fig = plot.confusion_matrix(y_true, y_pred, num_classes=3)
    expected = np.array([[1, 1, 0], [0, 2, 1], [1, 0, 3]])
    np.testing.assert_array_equal(matrix, expected)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    assert sorted(t.get_text() for t in ax.texts) == sorted(["1", "1", "2", "1", "1", "3"])
    assert ax.get_title() == "accuracy 66.67%"


def test_confusion_matrix_takes_scores_and_rejects_out_of_range_labels():
    scores = np.eye(10)[[3, 3, 5]]
    matrix, _ = plot.confusion_matrix([3, 4, 5], scores)
    assert matrix.shape == (10, 10) and matrix[3, 3] == 1 and matrix[4, 3] == 1
    assert matrix.sum() == 3
    with pytest.raises(ValueError, match="outside"):
        plot.confusion_matrix([0, 12], [0, 1])


# ------------------------------------------------------------------ weights_as_images


def test_weights_as_images_shows_one_column_per_unit():
    W = np.random.default_rng(0).standard_normal((784, 20))
    fig = plot.weights_as_images(W, n=16)
    assert len(fig.axes) == 16
    np.testing.assert_allclose(fig.axes[5].images[0].get_array(), W[:, 5].reshape(28, 28))
    vmin, vmax = fig.axes[5].images[0].get_clim()
    assert vmin == -vmax  # symmetric about 0
    # PyTorch's (H, D) layout gives the same pictures
    fig_t = plot.weights_as_images(W.T, n=3)
    np.testing.assert_allclose(fig_t.axes[2].images[0].get_array(), W[:, 2].reshape(28, 28))
    with pytest.raises(ValueError, match="784"):
        plot.weights_as_images(np.zeros((100, 5)))


# ------------------------------------------------------------------ roofline


def test_roofline_roof_is_min_of_peak_and_bandwidth_times_intensity():
    points = [("axpy", 1 / 12, 0.9), ("gemm", 40.0, 150.0)]
    fig = plot.roofline(200.0, 20.0, points)
    ax = fig.axes[0]
    roof = [line for line in ax.lines if line.get_gid() == "roof"][0]
    q, gflops = roof.get_data()
    np.testing.assert_allclose(gflops, np.minimum(200.0, 20.0 * q))
    assert q.min() < 1 / 12 and q.max() > 40.0
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.texts] == ["axpy", "gemm"]
    markers = [line for line in ax.lines if line.get_label() in ("axpy", "gemm")]
    assert [tuple(np.ravel(m.get_data())) for m in markers] == [(1 / 12, 0.9), (40.0, 150.0)]


def test_decision_boundary_feeds_the_model_points_in_the_data_dtype():
    from course import nn

    model = nn.Sequential(nn.Dense(2, 3, rng=0, dtype=np.float32))  # refuses float64 input
    X, y = data.blobs(20, centers=3, rng=2)
    fig = plot.decision_boundary(model, X.astype(np.float32), y, resolution=30)
    regions = np.asarray(fig.axes[0].images[0].get_array())
    assert regions.shape == (30, 30) and set(np.unique(regions)) <= {0, 1, 2}
