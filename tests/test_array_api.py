"""The library end to end on array_api_strict, the array-API reference, on its default device
and on a second one: training, evaluation, batches, losses with integer labels, gradient checks.

Every output, parameter, gradient and optimizer state must stay in the namespace and on the
device of the model, and the numbers must equal those of the same run in NumPy. This is what
keeps the CuPy path honest on a machine without a GPU.
"""
import numpy as np
import pytest

from course import backend, data, gradcheck, losses, nn, optim, train

xps = pytest.importorskip("array_api_strict", reason="installed with the test extras")
DEVICES = [None, "device1"]


def _in(xp_array, device):
    """Is this an array_api_strict array on ``device`` (None: the default device)?"""
    expected = xps.Device(device) if device else xps.Device("CPU_DEVICE")
    return backend.namespace(xp_array) is not np and type(xp_array).__module__.startswith(
        "array_api_strict") and xp_array.device == expected


def _model(device, dtype=np.float64):
    backend.use(xps, array_device=xps.Device(device) if device else None)
    try:
        return nn.Sequential(nn.Dense(4, 6, rng=1, dtype=dtype), nn.Tanh(),
                             nn.Dense(6, 3, rng=2, dtype=dtype))
    finally:
        backend.use("cpu")


def _put(a, device):
    return xps.asarray(a, device=xps.Device(device) if device else None)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
    lambda ps: optim.NAdam(ps, lr=0.01),
])
def test_fit_and_evaluate_stay_in_the_namespace_and_equal_numpy(device, make_opt):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((21, 4)), rng.integers(0, 3, 21)
    reference = nn.Sequential(nn.Dense(4, 6, rng=1), nn.Tanh(), nn.Dense(6, 3, rng=2))
    model = _model(device)
    ref_opt, opt = make_opt(reference.parameters()), make_opt(model.parameters())
    kwargs = {"epochs": 3, "batch_size": 5, "progress": False, "seed": 4}
    ref_history = train.fit(reference, losses.softmax_cross_entropy, ref_opt, X, y,
                            validation=(X[:7], y[:7]), **kwargs)
    history = train.fit(model, losses.softmax_cross_entropy, opt, _put(X, device), _put(y, device),
                        validation=(_put(X[:7], device), _put(y[:7], device)), **kwargs)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history[key], ref_history[key], rtol=1e-12)
    for p, q in zip(reference.parameters(), model.parameters()):
        assert _in(q.data, device) and _in(q.grad, device)
        np.testing.assert_allclose(backend.to_numpy(q.data), p.data, rtol=1e-12, atol=1e-15)
    for state in opt.state.values():
        for value in state.values():
            assert isinstance(value, int) or _in(value, device)
    scores = train.evaluate(model, losses.softmax_cross_entropy, _put(X, device), _put(y, device),
                            batch_size=8)
    assert scores == pytest.approx(train.evaluate(reference, losses.softmax_cross_entropy, X, y))
    assert _in(model(_put(X, device)), device)


@pytest.mark.parametrize("device", DEVICES)
def test_batches_stay_on_the_device_in_the_same_order(device):
    X, y = np.arange(14.0).reshape(7, 2), np.arange(7)
    got = list(data.batches(_put(X, device), _put(y, device), 3, rng=2))
    want = list(data.batches(X, y, 3, rng=2))
    assert [b[0].shape for b in got] == [(3, 2), (3, 2), (1, 2)]
    for (Xb, yb), (Xw, yw) in zip(got, want):
        assert _in(Xb, device) and _in(yb, device)
        np.testing.assert_array_equal(backend.to_numpy(Xb), Xw)
        np.testing.assert_array_equal(backend.to_numpy(yb), yw)


@pytest.mark.parametrize("device", DEVICES)
def test_one_hot_and_cross_entropy_with_integer_labels(device):
    labels = _put(np.array([2, 0, 1]), device)
    Y = losses.one_hot(labels, 3)
    assert _in(Y, device) and Y.dtype == xps.float64
    np.testing.assert_array_equal(backend.to_numpy(Y), np.eye(3)[[2, 0, 1]])
    logits = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0], [0.0, 0.0, 0.0]])
    loss, grad = losses.softmax_cross_entropy(_put(logits, device), labels)
    ref_loss, ref_grad = losses.softmax_cross_entropy(logits, np.array([2, 0, 1]))
    assert isinstance(loss, float) and loss == pytest.approx(ref_loss, rel=1e-14)
    assert _in(grad, device)
    np.testing.assert_allclose(backend.to_numpy(grad), ref_grad, rtol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_checks_run_in_the_namespace(device):
    model = _model(device)
    rng = np.random.default_rng(1)
    X, y = _put(rng.standard_normal((5, 4)), device), _put(rng.integers(0, 3, 5), device)
    assert gradcheck.check_gradients(model, losses.softmax_cross_entropy, X, y) < 1e-7
    assert gradcheck.check_module(model, X) < 1e-7
    x = _put(np.array([1.0, -2.0, 0.5]), device)
    grad = gradcheck.numerical_gradient(lambda: xps.sum(x**3), x)
    assert _in(grad, device)
    np.testing.assert_allclose(backend.to_numpy(grad), [3.0, 12.0, 0.75], rtol=1e-8)
    with pytest.raises(TypeError, match="float64"):
        gradcheck.numerical_gradient(lambda: 0.0, _put(np.zeros(2, dtype=np.float32), device))


def test_float32_training_keeps_the_dtype():
    model = _model("device1", dtype=np.float32)
    X = _put(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "device1")
    y = _put(np.arange(8) % 3, "device1")
    history = train.fit(model, losses.softmax_cross_entropy, optim.Adam(model.parameters()), X, y,
                        epochs=2, batch_size=4, progress=False)
    assert len(history) == 2
    assert all(p.data.dtype == p.grad.dtype == xps.float32 for p in model.parameters())
    assert model(X).dtype == xps.float32


def _cnn(dtype=np.float64):
    return nn.Sequential(nn.Conv2D(2, 3, 3, padding=1, rng=1, dtype=dtype), nn.ReLU(),
                         nn.MaxPool2D(2), nn.Conv2D(3, 4, (2, 3), stride=2, rng=2, dtype=dtype),
                         nn.ReLU(), nn.MaxPool2D(2, stride=1), nn.Flatten(),
                         nn.Dense(4, 3, rng=3, dtype=dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_convolutions_stay_in_the_namespace_and_equal_numpy(device):
    """Conv2D, MaxPool2D (ties included) and Flatten, forward and backward, then a step."""
    rng = np.random.default_rng(0)
    X = np.round(rng.standard_normal((5, 2, 10, 10)), 1)  # rounded: tied maxima in the pools
    y = rng.integers(0, 3, 5)
    reference = _cnn()
    backend.use(xps, array_device=xps.Device(device) if device else None)
    try:
        model = _cnn()
    finally:
        backend.use("cpu")
    for net, X_, y_ in ((reference, X, y), (model, _put(X, device), _put(y, device))):
        opt = optim.Adam(net.parameters(), lr=0.01)
        train.fit(net, losses.softmax_cross_entropy, opt, X_, y_, epochs=2, batch_size=3,
                  progress=False, seed=1)
        out = net(X_)
        net.backward(out)
    x = _put(X, device)
    for layer in model.layers:  # every layer's output stays there too
        x = layer(x)
        assert _in(x, device), layer
    for p, q in zip(reference.parameters(), model.parameters()):
        assert _in(q.data, device) and _in(q.grad, device)
        np.testing.assert_allclose(backend.to_numpy(q.data), p.data, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(backend.to_numpy(q.grad), p.grad, rtol=1e-12, atol=1e-15)
