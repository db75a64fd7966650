"""Tests for course.conv: Conv2D, MaxPool2D, Flatten, im2col/col2im and conv2d_flops.

Every backward is checked against finite differences (course.gradcheck, float64), and
PyTorch, where installed, is the second reference (same weight layout, copied directly).
"""
import numpy as np
import pytest

from course import flops, losses, nn, optim, train
from course.conv import Conv2D, Flatten, MaxPool2D, col2im, conv2d_flops, im2col
from course.gradcheck import check_gradients, check_module

# (in_channels, out_channels, kernel_size, stride, padding, input (N, C, H, W) without C)
CONV_CASES = [
    (1, 1, 3, 1, 0, (2, 5, 5)),
    (1, 4, 3, 1, 1, (3, 6, 6)),
    (3, 2, (3, 2), 2, 0, (2, 7, 6)),
    (2, 5, (3, 2), 2, 1, (2, 7, 8)),
    (4, 3, (2, 3), 1, 1, (1, 5, 4)),
    (3, 6, 1, 2, 0, (2, 5, 5)),
    (2, 3, 5, 2, 1, (2, 9, 8)),
]


def conv_ids(case):
    C, F, k, s, p, _ = case
    return f"C{C}-F{F}-k{k}-s{s}-p{p}".replace(" ", "")


def with_bias(layer, rng):
    layer.b.data[...] = rng.standard_normal(layer.b.shape)
    return layer


# ------------------------------------------------------------------ Conv2D


@pytest.mark.parametrize("case", CONV_CASES, ids=conv_ids)
def test_conv2d_forward_and_all_gradients_match_torch(case, rng, torch):
    C, F, k, s, p, (N, H, W) = case
    layer = with_bias(Conv2D(C, F, k, stride=s, padding=p, rng=0), rng)
    x = rng.standard_normal((N, C, H, W))
    out = layer(x)
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(layer.W.data, requires_grad=True)
    bt = torch.tensor(layer.b.data, requires_grad=True)
    out_t = torch.nn.functional.conv2d(xt, Wt, bt, stride=s, padding=p)
    assert out.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=0, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(dout))
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.W.grad, Wt.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.b.grad, bt.grad.numpy(), rtol=0, atol=1e-10)


def naive_conv2d(images, W, b, stride, padding):
    """out[n, f, y, x] = b[f] + sum(W[f] * window of the zero-padded images), by explicit loops.

    Cross-correlation, as PyTorch's conv2d: the kernel is not flipped. The windows are counted
    directly (every top-left corner from which the kernel fits), not from the output-size formula.
    """
    N, C, H, Wd = images.shape
    F, _, kh, kw = W.shape
    padded = np.zeros((N, C, H + 2 * padding, Wd + 2 * padding))
    padded[:, :, padding:padding + H, padding:padding + Wd] = images
    tops = range(0, padded.shape[2] - kh + 1, stride)
    lefts = range(0, padded.shape[3] - kw + 1, stride)
    out = np.empty((N, F, len(tops), len(lefts)))
    for n in range(N):
        for f in range(F):
            for y, top in enumerate(tops):
                for x, left in enumerate(lefts):
                    window = padded[n, :, top:top + kh, left:left + kw]
                    out[n, f, y, x] = b[f] + np.sum(W[f] * window)
    return out


@pytest.mark.parametrize("case", CONV_CASES, ids=conv_ids)
def test_conv2d_forward_matches_a_naive_loop_reference(case, rng):
    """Conv2D's forward equals explicit loops over n, f, y, x (cross-correlation), without torch."""
    C, F, k, s, p, (N, H, W) = case
    layer = with_bias(Conv2D(C, F, k, stride=s, padding=p, rng=0), rng)
    x = rng.standard_normal((N, C, H, W))
    expected = naive_conv2d(x, layer.W.data, layer.b.data, s, p)
    out = layer(x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=conv_ids)
def test_conv2d_backward_passes_the_gradient_check(case, rng):
    """dx, dW and db of Conv2D equal centred finite differences, for every case of CONV_CASES."""
    C, F, k, s, p, (N, H, W) = case
    layer = with_bias(Conv2D(C, F, k, stride=s, padding=p, rng=1), rng)
    assert check_module(layer, rng.standard_normal((N, C, H, W))) < 1e-8


def test_conv2d_layout_parameters_and_repr():
    layer = Conv2D(1, 16, 3, padding=1, rng=0)
    assert layer.W.shape == (16, 1, 3, 3) and layer.b.shape == (16,)
    assert [p.name for p in layer.parameters()] == ["W", "b"]
    assert repr(layer) == "Conv2D(1, 16, kernel_size=(3, 3), stride=1, padding=1)"
    assert Conv2D(2, 3, (3, 2)).W.shape == (3, 2, 3, 2)
    assert layer(np.zeros((2, 1, 28, 28))).shape == (2, 16, 28, 28)
    assert Conv2D(1, 4, 3, stride=2)(np.zeros((1, 1, 28, 28))).shape == (1, 4, 13, 13)


def test_conv2d_he_init_has_std_sqrt_2_over_fan_in_and_repeats_from_the_seed():
    layer = Conv2D(8, 64, (3, 2), rng=0)
    fan_in = 8 * 3 * 2
    assert abs(layer.W.data.std() / np.sqrt(2 / fan_in) - 1) < 0.05
    np.testing.assert_array_equal(layer.W.data, Conv2D(8, 64, (3, 2), rng=0).W.data)
    assert not layer.b.data.any()
    assert not Conv2D(2, 3, 3, init="zeros").W.data.any()


def test_conv2d_keeps_float32_end_to_end(rng):
    layer = Conv2D(2, 3, 3, stride=2, padding=1, rng=0, dtype=np.float32)
    x = rng.standard_normal((2, 2, 7, 7)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32 and layer.cache[1].dtype == np.float32
    dx = layer.backward(np.ones(out.shape, dtype=np.float32))
    assert dx.dtype == layer.W.grad.dtype == layer.b.grad.dtype == np.float32


def test_conv2d_errors_name_the_layer_and_the_shapes(rng):
    layer = Conv2D(3, 2, 3)
    with pytest.raises(ValueError, match=r"Conv2D\(3, 2.*\(N, 3, H, W\).*\(2, 1, 5, 5\)"):
        layer(np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(5, 5\)"):
        layer(np.zeros((5, 5)))
    with pytest.raises(TypeError, match=r"float64 weights.*float32.*astype"):
        layer(np.zeros((1, 3, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"smaller than the kernel"):
        layer(np.zeros((1, 3, 2, 5)))
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        layer.backward(np.zeros((1, 2, 3, 3)))
    layer(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"dout of shape \(1, 2, 3, 3\).*got \(1, 2, 3, 4\)"):
        layer.backward(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"kernel_size"):
        Conv2D(1, 1, (3, 0))
    with pytest.raises(ValueError, match=r"padding >= 0"):
        Conv2D(1, 1, 3, padding=-1)


def test_conv2d_without_input_grad_returns_none_but_still_accumulates(rng):
    layer = Conv2D(2, 3, 3, padding=1, rng=0)
    layer.input_grad = False
    x = rng.standard_normal((2, 2, 4, 4))
    assert layer.backward(np.ones(layer(x).shape)) is None
    assert np.abs(layer.W.grad).sum() > 0 and np.all(layer.b.grad == 2 * 4 * 4)


# ------------------------------------------------------------------ im2col / col2im


@pytest.mark.parametrize("kh, kw, stride, padding", [(3, 3, 1, 0), (3, 2, 2, 1), (2, 2, 2, 0), (1, 3, 1, 2)])
def test_im2col_shape_round_trip_and_adjoint(kh, kw, stride, padding, rng):
    x = rng.standard_normal((2, 3, 6, 7))
    cols = im2col(x, kh, kw, stride, padding)
    H_out, W_out = (6 + 2 * padding - kh) // stride + 1, (7 + 2 * padding - kw) // stride + 1
    assert cols.shape == (3 * kh * kw, 2 * H_out * W_out)
    coverage = col2im(np.ones_like(cols), x.shape, kh, kw, stride, padding)  # windows per pixel
    np.testing.assert_allclose(col2im(cols, x.shape, kh, kw, stride, padding), x * coverage)
    c = rng.standard_normal(cols.shape)
    assert np.isclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, kh, kw, stride, padding)))


def test_im2col_column_is_the_flattened_window():
    x = np.arange(2 * 2 * 4 * 4, dtype=np.float64).reshape(2, 2, 4, 4)
    cols = im2col(x, 2, 3, 1, 0)  # windows per example: 3 x 2
    np.testing.assert_array_equal(cols[:, 1 * 6 + 2 * 2 + 1], x[1, :, 2:4, 1:4].ravel())


# ------------------------------------------------------------------ MaxPool2D


def distinct(rng, shape):
    """Random values with no ties, so every window has a single maximum."""
    return rng.permutation(np.prod(shape)).reshape(shape) / 10.0


@pytest.mark.parametrize("kernel, stride, shape", [(2, None, (2, 3, 4, 6)), (3, 2, (2, 2, 7, 7)),
                                                   ((2, 3), 1, (1, 2, 5, 6))])
def test_maxpool_passes_the_gradient_check(kernel, stride, shape, rng):
    assert check_module(MaxPool2D(kernel, stride), distinct(rng, shape)) < 1e-8


@pytest.mark.parametrize("kernel, stride, shape", [(2, 2, (2, 2, 5, 5)), (3, 2, (2, 2, 6, 6)),
                                                   ((2, 3), 2, (1, 2, 5, 8))])
def test_maxpool_with_an_uncovered_border_passes_the_gradient_check(kernel, stride, shape, rng):
    """MaxPool2D's backward equals finite differences, and is 0 on the border no window covers."""
    layer = MaxPool2D(kernel, stride)
    x = distinct(rng, shape)
    kh, kw = layer.kernel_size
    H_out, W_out = (shape[2] - kh) // stride + 1, (shape[3] - kw) // stride + 1
    end_row, end_col = stride * (H_out - 1) + kh, stride * (W_out - 1) + kw  # first row, column outside
    assert end_row < shape[2] and end_col < shape[3]  # the case really leaves a border
    assert check_module(layer, x) < 1e-8
    out = layer(x)
    assert out.shape == (*shape[:2], H_out, W_out)
    last_window = x[:, :, end_row - kh:end_row, end_col - kw:end_col]
    np.testing.assert_array_equal(out[:, :, -1, -1], last_window.max(axis=(2, 3)))
    dx = layer.backward(rng.standard_normal(out.shape))
    assert not dx[:, :, end_row:, :].any() and not dx[:, :, :, end_col:].any()
    assert np.count_nonzero(dx) > 0


@pytest.mark.parametrize("kernel, stride, shape", [(2, None, (2, 3, 4, 6)), (3, 2, (2, 2, 7, 7)),
                                                   ((2, 3), 1, (1, 2, 5, 6))])
def test_maxpool_matches_torch(kernel, stride, shape, rng, torch):
    assert_maxpool_as_torch(MaxPool2D(kernel, stride), distinct(rng, shape), kernel, stride, rng, torch)


def assert_maxpool_as_torch(layer, x, kernel, stride, rng, torch):
    """``layer``'s forward and backward on ``x`` equal torch's max_pool2d, ties included."""
    out = layer(x)
    xt = torch.tensor(x, requires_grad=True)
    out_t = torch.nn.functional.max_pool2d(xt, kernel, stride)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(dout))
    np.testing.assert_allclose(layer.backward(dout), xt.grad.numpy(), rtol=0, atol=1e-12)


def test_maxpool_ties_go_to_the_first_maximum():
    layer = MaxPool2D(2)
    layer(np.array([[[[1.0, 2.0], [2.0, 2.0]]]]))  # three tied maxima: the first in row-major order
    np.testing.assert_array_equal(layer.backward(np.full((1, 1, 1, 1), 5.0)), [[[[0, 5.0], [0, 0]]]])
    layer = MaxPool2D(2, stride=1)  # overlapping windows: a pixel collects from each
    layer(np.array([[[[3.0, 3.0, 3.0]] * 2]]))  # both windows are all ties
    np.testing.assert_array_equal(layer.backward(np.array([[[[5.0, 7.0]]]])), [[[[5.0, 7.0, 0], [0] * 3]]])


def test_maxpool_ties_go_to_the_first_maximum_as_in_torch(rng, torch):
    x = rng.integers(0, 3, (2, 3, 6, 6)).astype(np.float64)  # many ties
    x[0, 0] = 1.0  # a whole channel tied
    for kernel, stride in [(2, 2), (3, 1), ((2, 3), 2)]:
        assert_maxpool_as_torch(MaxPool2D(kernel, stride), x, kernel, stride, rng, torch)


def test_maxpool_contract_repr_float32_and_errors(rng):
    layer = MaxPool2D(2)
    assert repr(layer) == "MaxPool2D(kernel_size=(2, 2), stride=2)" and layer.parameters() == []
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        layer.backward(np.zeros((1, 1, 2, 2)))
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    out = layer(x)
    assert out.shape == (2, 3, 2, 2) and out.dtype == np.float32
    assert layer.backward(np.ones(out.shape, dtype=np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"dout of shape \(2, 3, 2, 2\)"):
        layer.backward(np.ones((2, 3, 2, 3)))
    with pytest.raises(ValueError, match=r"MaxPool2D.*\(N, C, H, W\).*\(5, 5\)"):
        layer(np.zeros((5, 5)))
    layer.input_grad = False
    assert layer.backward(np.ones(out.shape)) is None


# ------------------------------------------------------------------ Flatten


def test_flatten_reshapes_both_ways_and_passes_the_gradient_check(rng):
    layer = Flatten()
    x = rng.standard_normal((3, 2, 4, 5))
    out = layer(x)
    assert out.shape == (3, 40)
    np.testing.assert_array_equal(out[1], x[1].ravel())
    np.testing.assert_array_equal(layer.backward(out), x)
    assert check_module(layer, x) < 1e-9
    with pytest.raises(ValueError, match=r"dout of shape \(3, 40\)"):
        layer.backward(np.ones((3, 41)))
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        Flatten().backward(np.ones((3, 40)))
    layer.input_grad = False
    assert layer.backward(out) is None


# ------------------------------------------------------------------ FLOPs


def test_conv2d_flops_by_hand_and_as_the_im2col_gemm():
    # 1 image, 1 -> 2 channels, 4x4 input, 3x3 kernel: 2x2 outputs per channel, 8 outputs,
    # each a dot product of 9 multiply-adds: 8 * 9 * 2 = 144 FLOPs, plus 8 bias additions.
    assert conv2d_flops(1, 1, 4, 4, 2, 3, 3, bias=False) == 144
    assert conv2d_flops(1, 1, 4, 4, 2, 3, 3) == 152
    N, C, H, W, F, kh, kw, s, p = 128, 16, 14, 14, 32, 3, 2, 2, 1
    x = np.zeros((2, C, H, W))  # the GEMM's dimensions, read off a real im2col
    K, cols_n = im2col(x, kh, kw, s, p).shape
    expected = flops.gemm_flops(F, cols_n // 2 * N, K)
    assert conv2d_flops(N, C, H, W, F, kh, kw, s, p, bias=False) == expected
    assert conv2d_flops(N, C, H, W, F, kh, kw, s, p) == expected + F * cols_n // 2 * N


# ------------------------------------------------------------------ a small CNN


def tiny_cnn(dtype=np.float64):
    return nn.Sequential(Conv2D(1, 3, 3, padding=1, rng=0, dtype=dtype), nn.ReLU(), MaxPool2D(2),
                         Flatten(), nn.Dense(3 * 3 * 3, 4, rng=1, dtype=dtype))


def test_a_tiny_cnn_trains_with_fit_and_passes_the_whole_model_gradient_check(rng):
    X, y = rng.standard_normal((24, 1, 6, 6)), rng.integers(0, 4, 24)
    model = tiny_cnn()
    before = model[0].W.data.copy()
    history = train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.05),
                        X, y, epochs=3, batch_size=8, progress=False)
    assert len(history["loss"]) == 3 and np.isfinite(history["loss"]).all()
    assert not np.array_equal(before, model[0].W.data)
    assert model.input_grad  # fit restores it
    assert check_gradients(model, losses.softmax_cross_entropy, X[:3], y[:3]) < 1e-7


def test_a_tiny_cnn_trains_in_float32(rng):
    X, y = rng.standard_normal((16, 1, 6, 6)).astype(np.float32), rng.integers(0, 4, 16)
    model = tiny_cnn(np.float32)
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.05),
              X, y, epochs=1, batch_size=8, progress=False)
    assert all(p.data.dtype == p.grad.dtype == np.float32 for p in model.parameters())


def test_the_cnn_layers_on_array_api_strict_give_numpy_s_numbers(xps, rng):
    ref, model = tiny_cnn(), tiny_cnn().to(xps)
    x, G = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((2, 4))
    expected_out, expected_dx = ref(x), ref.backward(G)
    out = model(xps.asarray(x))
    dx = model.backward(xps.asarray(G))
    np.testing.assert_allclose(np.asarray(out), expected_out, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dx), expected_dx, rtol=1e-12)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(np.asarray(p.grad), q.grad, rtol=1e-12)
