import numpy as np
import pytest

from course import losses, nn, optim
from course.gradcheck import check_gradients, check_module


def torch_weight_to_ours(w):
    """PyTorch's nn.Linear stores W as (n_out, n_in); ours is (n_in, n_out)."""
    return np.asarray(w, dtype=np.float64).T.copy()


def test_cs549_dense_4_3_maps_ones_to_11_27_43():
    layer = nn.Dense(4, 3)
    layer.W.data[...] = torch_weight_to_ours(np.arange(1, 13).reshape(3, 4))
    layer.b.data[...] = 1.0
    np.testing.assert_array_equal(layer(np.ones((1, 4))), [[11, 27, 43]])


def test_cs549_layer1_backprop():
    linear1 = nn.Dense(3, 4)
    linear1.W.data[...] = torch_weight_to_ours(np.arange(1, 13).reshape(4, 3))
    linear1.b.data[...] = 0.0
    relu = nn.ReLU()
    x = np.array([[1.0, 2.0, 3.0]])
    a1 = relu(linear1(x))
    np.testing.assert_array_equal(a1, [[14, 32, 50, 68]])
    dx = linear1.backward(relu.backward(np.full((1, 4), 0.5)))
    np.testing.assert_array_equal(dx, [[11, 13, 15]])
    np.testing.assert_array_equal(linear1.W.grad, 0.5 * np.array([[1, 2, 3]]).T @ np.ones((1, 4)))
    np.testing.assert_array_equal(linear1.b.grad, [0.5] * 4)


def test_cs549_layer2_backprop():
    linear1 = nn.Dense(3, 4)
    linear1.W.data[...] = torch_weight_to_ours(np.arange(1, 13).reshape(4, 3))
    linear1.b.data[...] = 0.0
    model = nn.Sequential(linear1, nn.ReLU(), nn.Dense(4, 2, init="zeros"), nn.Sigmoid())
    a2 = model(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(a2, [[0.5, 0.5]])
    model.backward(np.full((1, 2), 0.5))
    # dz2 = 0.5 * sigma'(0) = 0.125; dW2 rows (PyTorch layout) = 0.125 * [14, 32, 50, 68]
    expected_rows = 0.125 * np.array([[14, 32, 50, 68]] * 2)
    np.testing.assert_allclose(model[2].W.grad.T, expected_rows)
    np.testing.assert_allclose(model[2].W.grad.T[0], [1.75, 4.0, 6.25, 8.5])
    np.testing.assert_allclose(model[2].b.grad, [0.125, 0.125])


def mazur_network():
    """LAPENNA lecture 4's two-input, two-hidden, two-output sigmoid network (mattmazur's example)."""
    w1, w2, w3, w4, w5, w6, w7, w8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55
    model = nn.Sequential(nn.Dense(2, 2), nn.Sigmoid(), nn.Dense(2, 2), nn.Sigmoid())
    # h1 = s(w1 i1 + w2 i2 + b1), h2 = s(w3 i1 + w4 i2 + b1): column j holds unit j's weights
    model[0].W.data[...] = [[w1, w3], [w2, w4]]
    model[0].b.data[...] = 0.35
    model[2].W.data[...] = [[w5, w7], [w6, w8]]
    model[2].b.data[...] = 0.60
    return model


def test_lapenna_mazur_forward_error_and_one_sgd_step():
    model = mazur_network()
    X, y = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    out = model(X)
    np.testing.assert_allclose(out, [[0.7513650695475076, 0.772928465316421]], rtol=0, atol=1e-8)
    E, dy = losses.half_sse(out, y)
    assert pytest.approx(0.29837110875753253, abs=1e-10) == E
    model.backward(dy)
    optim.SGD(model.parameters(), lr=0.5).step()
    W1, W2 = model[0].W.data, model[2].W.data
    new = [W1[0, 0], W1[1, 0], W1[0, 1], W1[1, 1], W2[0, 0], W2[1, 0], W2[0, 1], W2[1, 1]]
    # The slide's code computes w2+ with i1 instead of i2 and prints 0.19978071613276482;
    # the correct update uses i2 = 0.10, giving 0.19956143 (the slide's own formula
    # text says 0.19950143, a typo).
    expected = [0.149780716, 0.19956143, 0.24975114, 0.29950229,
                0.35891648, 0.40866619, 0.51130127, 0.56137012]
    np.testing.assert_allclose(new, expected, rtol=0, atol=1e-8)


def test_bmb3015_xnor_with_step_units():
    hidden = nn.Dense(2, 2)
    hidden.W.data[...] = [[0.2, -0.2], [0.2, -0.2]]  # unit 1: (-0.3, 0.2, 0.2); unit 2: (0.2, -0.2, -0.2)
    hidden.b.data[...] = [-0.3, 0.2]
    out = nn.Dense(2, 1)
    out.W.data[...] = [[0.2], [0.2]]  # (-0.1, 0.2, 0.2)
    out.b.data[...] = -0.1
    model = nn.Sequential(hidden, nn.Step(), out, nn.Step())
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    np.testing.assert_array_equal(model[:2](X), [[0, 1], [0, 0], [0, 0], [1, 0]])  # a1, a2 columns
    np.testing.assert_array_equal(model(X), [[1], [0], [0], [1]])


def test_step_layer_backward_explains():
    layer = nn.Step()
    layer(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="no usable derivative"):
        layer.backward(np.ones((1, 2)))


LAYERS = [
    lambda: nn.Dense(4, 3, rng=1),
    nn.Sigmoid, nn.Tanh, nn.ReLU, lambda: nn.LeakyReLU(0.1), nn.Identity, nn.Softmax,
    lambda: nn.mlp([4, 5, 3], activation="tanh", rng=2),
]


@pytest.mark.parametrize("rows", [5, 1])  # one row: per-sample SGD, where Dense skips a reduction
@pytest.mark.parametrize("make", LAYERS)
def test_every_backward_matches_finite_differences(make, rows, rng):
    x = rng.standard_normal((rows, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the ReLU kink
    assert check_module(make(), x) < 1e-7


@pytest.mark.parametrize("loss_fn, make_y", [
    (losses.softmax_cross_entropy, lambda r: r.integers(0, 3, 6)),
    (losses.mse, lambda r: r.standard_normal((6, 3))),
    (losses.half_sse, lambda r: r.standard_normal((6, 3))),
])
def test_whole_model_gradient_check(loss_fn, make_y, rng):
    model = nn.mlp([4, 8, 8, 3], activation="sigmoid", rng=3)
    assert check_gradients(model, loss_fn, rng.standard_normal((6, 4)), make_y(rng)) < 1e-7
    y_one = make_y(rng)[:1]  # a single example, as in per-sample SGD
    assert check_gradients(model, loss_fn, rng.standard_normal((1, 4)), y_one) < 1e-7


def test_binary_model_gradient_check(rng):
    model = nn.Sequential(nn.Dense(2, 3, rng=0), nn.Tanh(), nn.Dense(3, 1, rng=1), nn.Sigmoid())
    y = (rng.uniform(size=(8, 1)) > 0.5).astype(float)
    assert check_gradients(model, losses.binary_cross_entropy, rng.standard_normal((8, 2)), y) < 1e-7


def test_shape_mismatch_names_layer_and_shapes():
    model = nn.Sequential(nn.Dense(3, 4), nn.ReLU(), nn.Dense(5, 2))
    with pytest.raises(ValueError, match=r"layer 2.*Dense\(5, 2\).*\(N, 5\).*\(7, 4\)"):
        model(np.zeros((7, 3)))
    with pytest.raises(ValueError, match=r"Dense\(3, 4\).*\(N, 3\).*\(3,\)"):
        nn.Dense(3, 4)(np.zeros(3))


def test_dtype_mismatch_is_explained():
    with pytest.raises(TypeError, match="float32 weights but the input is float64"):
        nn.Dense(2, 2, dtype=np.float32)(np.zeros((1, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_end_to_end(dtype):
    model = nn.mlp([3, 4, 2], rng=0, dtype=dtype)
    X = np.ones((5, 3), dtype=dtype)
    out = model(X)
    _, dy = losses.softmax_cross_entropy(out, np.array([0, 1, 0, 1, 1]))
    dx = model.backward(dy)
    opt = optim.Adam(model.parameters())
    opt.step()
    assert out.dtype == dx.dtype == dtype
    assert all(p.data.dtype == p.grad.dtype == dtype for p in model.parameters())


def test_gradients_accumulate_until_zero_grad(rng):
    layer = nn.Dense(2, 2, rng=0)
    x = rng.standard_normal((3, 2))
    layer(x)
    layer.backward(np.ones((3, 2)))
    once = layer.W.grad.copy()
    layer.backward(np.ones((3, 2)))
    np.testing.assert_allclose(layer.W.grad, 2 * once)
    layer.zero_grad()
    assert not layer.W.grad.any()


def test_same_seed_gives_bit_identical_training():
    def run():
        rng = np.random.default_rng(5)
        X, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
        model = nn.mlp([3, 6, 2], rng=11)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(20):
            opt.zero_grad()
            model.backward(losses.softmax_cross_entropy(model(X), y)[1])
            opt.step()
        return [p.data.copy() for p in model.parameters()]

    for a, b in zip(run(), run()):
        assert np.array_equal(a, b)


def test_sequential_is_indexable_and_rejects_non_modules():
    model = nn.mlp([2, 3, 1], activation="tanh")
    assert len(model) == 3 and isinstance(model[1], nn.Tanh) and len(model.parameters()) == 4
    with pytest.raises(TypeError, match="layer 1"):
        nn.Sequential(nn.Dense(1, 1), "relu")


def test_unknown_init_and_activation_are_named():
    with pytest.raises(ValueError, match="unknown init 'glorot'"):
        nn.Dense(2, 2, init="glorot")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.mlp([2, 2], activation="swish")


@pytest.mark.parametrize("ours, theirs", [
    (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"), (nn.ReLU, "relu"), (nn.Identity, None),
    (lambda: nn.LeakyReLU(0.1), "leaky_relu"), (nn.Softmax, "softmax"),
    (lambda: nn.Dense(4, 3, rng=1), "linear"),
])
def test_layers_match_pytorch(ours, theirs, rng, torch):
    F = torch.nn.functional
    layer = ours()
    x = rng.standard_normal((5, 4))
    x[np.abs(x) < 1e-3] = 0.5
    G = rng.standard_normal((5, 4 if theirs != "linear" else 3))
    t = torch.tensor(x, requires_grad=True)
    if theirs == "linear":
        W = torch.tensor(layer.W.data.T.copy(), requires_grad=True)  # PyTorch's (n_out, n_in)
        b = torch.tensor(layer.b.data.copy(), requires_grad=True)
        t_out = F.linear(t, W, b)
    elif theirs == "leaky_relu":
        t_out = F.leaky_relu(t, 0.1)
    elif theirs == "softmax":
        t_out = F.softmax(t, dim=1)
    else:
        t_out = getattr(torch, theirs)(t) if theirs else t * 1
    (t_out * torch.tensor(G)).sum().backward()
    out = layer(x)
    dx = layer.backward(G)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    if theirs == "linear":
        np.testing.assert_allclose(layer.W.grad, W.grad.numpy().T, rtol=1e-12)
        np.testing.assert_allclose(layer.b.grad, b.grad.numpy(), rtol=1e-12)


def test_sequential_needs_a_layer_and_slices_to_a_sequential():
    with pytest.raises(ValueError, match="at least one layer"):
        nn.Sequential()
    model = nn.mlp([2, 3, 4, 1])
    head = model[:2]
    assert isinstance(head, nn.Sequential) and head[0] is model[0] and len(head) == 2
