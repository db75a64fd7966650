import subprocess
import sys

import numpy as np
import pytest

from course import backend, losses, nn, optim


def test_default_is_numpy_on_the_cpu():
    assert backend.use("cpu") == "cpu"
    assert backend.device() == "cpu" and backend.xp() is np
    assert isinstance(backend.asarray([1.0, 2.0]), np.ndarray)
    assert backend.asarray([1, 2], dtype=np.float32).dtype == np.float32


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="'cpu', 'gpu', 'auto' or an array namespace"):
        backend.use("tpu")


def test_gpu_without_gpu_says_how_to_get_one(capsys, no_gpu):
    with pytest.raises(RuntimeError, match=r"No GPU is available.*pip install.*Binder has no GPU"):
        backend.use("gpu")
    assert backend.device() == "cpu"
    assert backend.use("auto") == "cpu"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "using the CPU" in out
    assert backend.info()["gpu"] is None and "CuPy" in backend.info()["gpu_error"]


def test_gpu_forward_backward_step_match_cpu(cupy):
    X, y = np.random.default_rng(0).standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    results = []
    for device in ("cpu", "gpu"):
        backend.use(device)
        model = nn.mlp([4, 5, 3], rng=0)
        out = model(backend.asarray(X))
        _, dy = losses.softmax_cross_entropy(out, backend.asarray(y))
        model.backward(dy)
        record = [backend.to_numpy(out), backend.to_numpy(dy)]
        record += [backend.to_numpy(p.grad) for p in model.parameters()]
        optim.Adam(model.parameters()).step()
        record += [backend.to_numpy(p.data) for p in model.parameters()]
        results.append(record)
    assert type(model[0].W.data).__module__.startswith("cupy")
    for a, b in zip(*results):  # the output, dy, every gradient, every parameter after the step
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


def test_library_runs_on_array_api_strict(xps):
    """The same layers, losses and optimizers run on the strict array-API reference."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    reference = nn.Sequential(nn.Dense(4, 6, rng=1), nn.Tanh(), nn.Dense(6, 5, rng=2), nn.ReLU(),
                              nn.Dense(5, 3, rng=3), nn.Sigmoid(), nn.LeakyReLU(0.1), nn.Softmax())
    strict = nn.Sequential(nn.Dense(4, 6, rng=1), nn.Tanh(), nn.Dense(6, 5, rng=2), nn.ReLU(),
                           nn.Dense(5, 3, rng=3), nn.Sigmoid(), nn.LeakyReLU(0.1), nn.Softmax())
    strict.to(xps)
    assert all(type(p.data).__module__.startswith("array_api_strict") for p in strict.parameters())
    for model, xp, opt_class in ((reference, np, optim.Adam), (strict, xps, optim.Adam)):
        Xa, ya = xp.asarray(X), xp.asarray(y)
        opt = opt_class(model.parameters(), lr=0.01)
        opt2 = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)
        for _ in range(2):
            opt.zero_grad()
            out = model(Xa)
            loss, dy = losses.softmax_cross_entropy(out, ya)
            loss2, dy2 = losses.mse(out, losses.one_hot(ya, 3, dtype=out.dtype))
            model.backward(dy + dy2)
            opt.step()
            opt2.step()
        model.last = (out, loss + loss2)
    out_ref, loss_ref = reference.last
    out_strict, loss_strict = strict.last
    assert loss_strict == pytest.approx(loss_ref, rel=1e-12)
    np.testing.assert_allclose(backend.to_numpy(out_strict), out_ref, rtol=1e-12)
    for p, q in zip(reference.parameters(), strict.parameters()):
        np.testing.assert_allclose(backend.to_numpy(q.data), p.data, rtol=1e-12)


def test_losses_run_on_array_api_strict(xps):
    p = xps.asarray([[0.2], [0.9]])
    y = xps.asarray([[0.0], [1.0]])
    for fn in (losses.half_sse, losses.binary_cross_entropy):
        loss, grad = fn(p, y)
        ref, ref_grad = fn(np.asarray([[0.2], [0.9]]), np.asarray([[0.0], [1.0]]))
        assert loss == pytest.approx(ref) and np.allclose(backend.to_numpy(grad), ref_grad)
    with pytest.raises(ValueError, match="label 5"):
        losses.softmax_cross_entropy(xps.zeros((2, 3)), xps.asarray([0, 5]))


def test_to_numpy_passes_numpy_through():
    a = np.arange(3.0)
    assert backend.to_numpy(a) is a


def test_import_course_stays_light():
    code = ("import sys, course; from course import nn, losses, optim, neuron, gradcheck, init, backend; "
            "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'cupy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_namespace_of_numpy_arrays_scalars_and_numbers_is_numpy_itself():
    a = np.zeros((2, 3))
    for args in [(a,), (a, a), (a, np.float64(1.0)), (np.float32(2.0),), (0.5,), ([1.0, 2.0],),
                 (np.ma.masked_array(a),)]:
        assert backend.namespace(*args) is np, args
    xp = backend.namespace(np.ones(3, dtype=np.float32))
    assert xp.sum(np.ones(3, dtype=np.float32), dtype=np.float64).dtype == np.float64


def test_import_course_nn_adds_only_course_modules_to_numpy():
    """No namespace copying or optional packages at import: course.nn costs numpy plus its own files."""
    code = ("import sys, numpy; before = set(sys.modules); import course.nn; "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    added = eval(out)
    assert added and all(name == "course" or name.startswith("course.") for name in added), added


def test_use_accepts_an_array_namespace_and_its_device(xps):
    device1 = xps.Device("device1")
    assert backend.use(xps, array_device=device1) == "array_api_strict"
    layer = nn.Dense(3, 2, rng=0, dtype=np.float32)
    assert backend.namespace(layer.W.data) is not np and layer.W.data.device == device1
    assert layer.W.data.dtype == xps.float32 and layer.b.grad.device == device1
    assert backend.xp() is xps and backend.device() == "array_api_strict"
    with pytest.raises(ValueError, match="array namespace"):
        backend.use(object())
    with pytest.raises(ValueError, match="array_device goes with an array namespace"):
        backend.use("cpu", array_device=device1)
    assert backend.use(np) == "cpu" and backend.xp() is np
    assert isinstance(nn.Dense(1, 1).W.data, np.ndarray)
