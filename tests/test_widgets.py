"""Tests for course.widgets: the explorers build without a browser and redraw on every change."""
import base64

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg", force=True)
ipywidgets = pytest.importorskip("ipywidgets")

from course import data, losses, nn, widgets  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(box):
    """The bytes of the one PNG the explorer's Output shows."""
    (shown,) = box.output.outputs
    assert shown["output_type"] == "display_data"
    return base64.b64decode(shown["data"]["image/png"])


def _line(box):
    (line,) = [line for line in box.figure.axes[0].lines if line.get_gid() == "decision_line"]
    return np.column_stack(line.get_data())


def _sliders(box):
    found = []

    def walk(widget):
        if isinstance(widget, ipywidgets.FloatSlider):
            found.append(widget)
        for child in getattr(widget, "children", ()):
            walk(child)

    walk(box)
    return {s.description: s for s in found}


# ------------------------------------------------------------------ perceptron_explorer


def test_perceptron_explorer_has_three_real_sliders_in_the_page():
    X, y = data.logic_gate("and")
    box = widgets.perceptron_explorer(X, y)
    assert isinstance(box, ipywidgets.VBox)
    sliders = _sliders(box)
    assert set(sliders) == {"w1", "w2", "b"}
    assert (sliders["w1"].value, sliders["w2"].value, sliders["b"].value) == (1.0, 1.0, -1.5)
    assert box.output in box.children
    assert _png(box).startswith(PNG_SIGNATURE)
    assert "4 of 4" in box.status.value  # x1 + x2 - 1.5 separates AND


def test_moving_a_slider_redraws_the_line_the_count_and_the_image():
    X, y = data.logic_gate("and")
    box = widgets.perceptron_explorer(X, y)
    before_png, before_line = _png(box), _line(box)
    _sliders(box)["b"].value = -0.5  # now the OR line: (0,1) and (1,0) turn to 1
    after_line = _line(box)
    assert not np.allclose(before_line, after_line)
    np.testing.assert_allclose(after_line @ [1.0, 1.0] - 0.5, 0.0, atol=1e-12)
    assert "2 of 4" in box.status.value
    assert _png(box) != before_png
    assert len(box.output.outputs) == 1  # replaced, not appended


def test_perceptron_explorer_counts_xor_mistakes_and_validates_shapes():
    X, y = data.logic_gate("xor")
    box = widgets.perceptron_explorer(X, y, w=(1.0, 1.0), b=-0.5)
    assert "3 of 4" in box.status.value
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        widgets.perceptron_explorer(np.zeros((4, 3)), y)


# ------------------------------------------------------------------ learning_rate_explorer


def _xor_explorer(**kwargs):
    X, y = data.logic_gate("xor")

    def make_model():
        return nn.Sequential(nn.Dense(2, 4, rng=0), nn.Tanh(), nn.Dense(4, 1, rng=1),
                             nn.Sigmoid())

    return widgets.learning_rate_explorer(X, y, make_model, losses.half_sse, epochs=20,
                                          **kwargs)


def test_learning_rate_explorer_has_a_log_slider_and_three_optimizers():
    box = _xor_explorer(lr=0.5)
    lr, choice = box.controls["lr"], box.controls["optimizer"]
    assert isinstance(lr, ipywidgets.FloatLogSlider) and lr.description == "lr"
    assert lr.value == pytest.approx(0.5)
    assert isinstance(choice, ipywidgets.Dropdown)
    assert list(choice.options) == ["SGD", "momentum", "Adam"]
    (curve,) = box.figure.axes[0].lines
    assert len(curve.get_ydata()) == 20
    assert "final loss" in box.status.value
    assert _png(box).startswith(PNG_SIGNATURE)


def test_changing_lr_or_optimizer_retrains_and_keeps_earlier_runs_in_grey():
    box = _xor_explorer(lr=0.5)
    first = box.figure.axes[0].lines[-1].get_ydata().copy()
    png = _png(box)
    box.controls["optimizer"].value = "Adam"
    lines = box.figure.axes[0].lines
    assert [line.get_label() for line in lines] == ["SGD, lr=0.5", "Adam, lr=0.5"]
    np.testing.assert_allclose(lines[0].get_ydata(), first)  # the earlier run, unchanged
    assert lines[0].get_color() == "0.75" and lines[1].get_color() != "0.75"  # earlier in grey
    assert not np.allclose(lines[1].get_ydata(), first)
    assert _png(box) != png
    box.controls["lr"].value = 0.01
    assert box.figure.axes[0].lines[-1].get_label() == "Adam, lr=0.01"
    assert "Adam, lr=0.01" in box.status.value


def test_a_diverging_learning_rate_is_reported_not_raised():
    X = np.array([[1.0], [2.0], [3.0]])
    y = np.array([[2.0], [4.0], [6.0]])
    box = widgets.learning_rate_explorer(X, y, lambda: nn.Dense(1, 1, rng=0), losses.half_sse,
                                         epochs=100, lr=0.01)
    assert "final loss" in box.status.value
    box.controls["lr"].value = 10.0
    assert "diverged" in box.status.value
    assert len(box.figure.axes[0].lines[-1].get_ydata()) < 100
