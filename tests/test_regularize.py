"""Tests for course.regularize: Dropout and BatchNorm1d (exported as nn.Dropout, nn.BatchNorm1d).

Each backward is checked against finite differences (course.gradcheck, float64), and
PyTorch, where installed, is the second reference.
"""
import numpy as np
import pytest

from course import backend, losses, nn, optim, train
from course.gradcheck import check_module


class SameMaskDropout(nn.Dropout):
    """Dropout that reseeds before every forward, so each forward draws the same mask.

    check_module runs the forward many times; with a fresh mask each time the
    finite differences would measure a different function.
    """

    def forward(self, x):
        self.rng = np.random.default_rng(7)
        return super().forward(x)


# ------------------------------------------------------------------ Dropout

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_a_fraction_one_minus_p_and_preserves_the_mean(p):
    layer = nn.Dropout(p, rng=0)
    x = np.ones((400, 250))
    out = layer(x)
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(out[kept], 1 / (1 - p))  # the survivors are scaled up
    assert abs(out.mean() - 1.0) < 0.03
    np.testing.assert_array_equal(layer.mask, kept)


def test_dropout_p_zero_is_the_identity_in_training():
    x = np.random.default_rng(1).standard_normal((5, 4))
    np.testing.assert_array_equal(nn.Dropout(0.0, rng=0)(x), x)


def test_dropout_in_evaluation_mode_is_the_identity_both_ways(rng):
    layer = nn.Dropout(0.5, rng=0).eval()
    x, dout = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    assert layer(x) is x and layer.mask is None
    assert layer.backward(dout) is dout
    layer.train()
    assert np.count_nonzero(layer(x) == 0) > 0


def test_dropout_masks_repeat_from_the_seed_and_change_between_forwards(rng):
    x = rng.standard_normal((20, 10))
    a, b = nn.Dropout(0.5, rng=3), nn.Dropout(0.5, rng=np.random.default_rng(3))
    first = a(x)
    np.testing.assert_array_equal(first, b(x))
    assert not np.array_equal(first, a(x))  # a new mask for every forward


def test_dropout_backward_uses_the_mask_of_the_last_forward(rng):
    layer = nn.Dropout(0.4, rng=5)
    x, dout = rng.standard_normal((8, 6)), rng.standard_normal((8, 6))
    layer(x)
    mask = layer.mask.copy()
    np.testing.assert_allclose(layer.backward(dout), dout * mask / 0.6, rtol=1e-15)
    np.testing.assert_array_equal(layer.backward(dout)[mask == 0], 0)


def test_dropout_gradient_check_with_a_fixed_mask_and_in_eval_mode(rng):
    x = rng.standard_normal((6, 5))
    layer = SameMaskDropout(0.5)
    assert 0 < np.count_nonzero(layer(x) == 0) < x.size
    assert check_module(layer, x) < 1e-9
    assert check_module(nn.Dropout(0.5, rng=0).eval(), x) < 1e-9


def test_dropout_in_a_network_passes_a_whole_model_gradient_check(rng):
    model = nn.Sequential(nn.Dense(4, 8, rng=1), nn.Tanh(), SameMaskDropout(0.3), nn.Dense(8, 3, rng=2))
    assert check_module(model, rng.standard_normal((5, 4))) < 1e-7


def test_dropout_matches_torch_with_the_same_mask(torch, rng):
    p = 0.3
    x = rng.uniform(0.5, 1.5, (50, 40))  # no zeros, so torch's output shows its mask
    xt = torch.tensor(x, requires_grad=True)
    torch.manual_seed(0)
    yt = torch.nn.functional.dropout(xt, p=p, training=True)
    G = rng.standard_normal(x.shape)
    yt.backward(torch.tensor(G))
    mask = (yt.detach().numpy() != 0).astype(np.float64)
    layer = nn.Dropout(p, rng=0)
    layer(x)
    layer.mask = mask  # the same mask as torch's: forward formula and backward must agree
    np.testing.assert_allclose(x * mask / (1 - p), yt.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(layer.backward(G), xt.grad.numpy(), rtol=1e-15)
    torch_eval = torch.nn.Dropout(p).eval()(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(nn.Dropout(p, rng=0).eval()(x), torch_eval)


@pytest.mark.parametrize("p", [1, 1.0, -0.1, 2])
def test_dropout_refuses_p_outside_zero_one(p):
    with pytest.raises(ValueError, match=r"p in \[0, 1\)") as info:
        nn.Dropout(p)
    if p == 1:
        assert "divide" in str(info.value)


def test_dropout_follows_the_module_contract(rng):
    layer = nn.Dropout(0.5, rng=0)
    assert repr(layer) == "Dropout(p=0.5)" and layer.parameters() == []
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        layer.backward(np.ones((2, 3)))
    layer(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match=r"expects dout of shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
    layer.input_grad = False
    assert layer.backward(np.ones((2, 3))) is None


def test_dropout_keeps_float32(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer = nn.Dropout(0.5, rng=0)
    assert layer(x).dtype == np.float32 and layer.backward(x).dtype == np.float32


def test_dropout_on_array_api_strict_gives_numpy_s_numbers(xps, rng):
    x = rng.standard_normal((6, 4))
    xs = xps.asarray(x, device=xps.Device("device1"))
    out = nn.Dropout(0.5, rng=2)(xs)
    assert out.device == xs.device and out.dtype == xps.float64
    np.testing.assert_array_equal(backend.to_numpy(out), nn.Dropout(0.5, rng=2)(x))


# -------------------------------------------------------------- BatchNorm1d

def _bn(num_features=5, rng=None, **kwargs):
    """A BatchNorm1d whose gamma and beta are not the trivial 1 and 0."""
    layer = nn.BatchNorm1d(num_features, **kwargs)
    rng = np.random.default_rng(3) if rng is None else rng
    layer.gamma.data[...] = rng.uniform(0.5, 2.0, num_features)
    layer.beta.data[...] = rng.standard_normal(num_features)
    return layer


def test_batchnorm_training_output_has_zero_mean_and_unit_variance(rng):
    layer = nn.BatchNorm1d(4)
    x = 3.0 + 5.0 * rng.standard_normal((200, 4))
    out = layer(x)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1, rtol=1e-5)  # eps = 1e-5 shrinks it a little


def test_batchnorm_running_statistics_use_the_unbiased_variance(rng):
    layer = nn.BatchNorm1d(3, momentum=0.25)
    x = rng.standard_normal((6, 3))
    layer(x)
    np.testing.assert_allclose(layer.running_mean, 0.25 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(layer.running_var, 0.75 + 0.25 * x.var(axis=0, ddof=1), rtol=1e-14)
    out = layer.eval()(x)  # evaluation mode: the running statistics, not the batch's
    expected = (x - layer.running_mean) / np.sqrt(layer.running_var + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    before = layer.running_mean.copy()
    layer(x)
    np.testing.assert_array_equal(layer.running_mean, before)  # eval does not update them


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_gradient_check(mode, rng):
    layer = _bn(5)
    for _ in range(3):  # running statistics away from their starting values
        layer(2.0 + rng.standard_normal((8, 5)))
    getattr(layer, mode)()
    assert check_module(layer, rng.standard_normal((7, 5))) < 1e-7


def test_batchnorm_in_a_network_passes_a_whole_model_gradient_check(rng):
    model = nn.Sequential(nn.Dense(4, 6, rng=1), nn.Tanh(), _bn(6), nn.Dense(6, 3, rng=2))
    assert check_module(model, rng.standard_normal((9, 4))) < 1e-7


def test_a_bias_just_before_batchnorm_gets_no_gradient(rng):
    """Training-mode batch norm subtracts the batch mean, so a constant added before it cancels."""
    model = nn.Sequential(nn.Dense(4, 6, rng=1), nn.BatchNorm1d(6))
    model(rng.standard_normal((9, 4)))
    model.backward(rng.standard_normal((9, 6)))
    np.testing.assert_allclose(model[0].b.grad, 0, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_batchnorm_matches_torch_over_training_steps_and_in_eval(torch, momentum, rng):
    D = 6
    ours = _bn(D, momentum=momentum)
    ref = torch.nn.BatchNorm1d(D, momentum=momentum).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ours.gamma.data))
        ref.bias.copy_(torch.tensor(ours.beta.data))
    worst = 0.0

    def compare(a, b):
        nonlocal worst
        b = b.detach().numpy()
        worst = max(worst, float(np.max(np.abs(a - b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)

    for step, mode in enumerate(["train"] * 4 + ["eval"] * 2):
        getattr(ours, mode)(), getattr(ref, mode)()
        x = 1.5 + 2.0 * rng.standard_normal((10 + step, D))
        G = rng.standard_normal(x.shape)
        xt = torch.tensor(x, requires_grad=True)
        ref.zero_grad()
        out_t = ref(xt)
        out_t.backward(torch.tensor(G))
        ours.zero_grad()
        compare(ours(x), out_t)
        compare(ours.backward(G), xt.grad)
        compare(ours.gamma.grad, ref.weight.grad)
        compare(ours.beta.grad, ref.bias.grad)
        compare(ours.running_mean, ref.running_mean)
        compare(ours.running_var, ref.running_var)
    print(f"largest difference from torch.nn.BatchNorm1d: {worst:.2e}")
    assert worst < 1e-10


def test_batchnorm_refuses_one_example_in_training_but_not_in_eval(rng):
    layer = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel.*model.eval()"):
        layer(rng.standard_normal((1, 3)))
    assert layer.eval()(rng.standard_normal((1, 3))).shape == (1, 3)


def test_batchnorm_parameters_are_gamma_and_beta_only():
    layer = nn.BatchNorm1d(4)
    assert layer.parameters() == [layer.gamma, layer.beta]
    np.testing.assert_array_equal(layer.gamma.data, np.ones(4))
    np.testing.assert_array_equal(layer.beta.data, np.zeros(4))
    assert not isinstance(layer.running_mean, nn.Parameter)
    model = nn.Sequential(nn.Dense(3, 4), layer)
    assert len(model.parameters()) == 4


def test_batchnorm_follows_the_module_contract(rng):
    layer = nn.BatchNorm1d(3)
    assert repr(layer) == "BatchNorm1d(3)"
    assert repr(nn.BatchNorm1d(64, momentum=0.2)) == "BatchNorm1d(64, momentum=0.2)"
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        layer.backward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 3\) but got \(4, 2\)"):
        layer(np.ones((4, 2)))
    with pytest.raises(TypeError, match="float32"):
        layer(np.ones((4, 3), dtype=np.float32))
    out = layer(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match=r"expects dout of shape \(4, 3\)"):
        layer.backward(np.ones((3, 3)))
    full = layer.backward(np.ones_like(out) + out)
    grads = [p.grad.copy() for p in layer.parameters()]
    layer.zero_grad()
    layer.input_grad = False
    assert full is not None and layer.backward(np.ones_like(out) + out) is None
    for p, g in zip(layer.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("kwargs", [{"num_features": 0}, {"num_features": 3, "momentum": 1.5},
                                    {"num_features": 3, "eps": 0}])
def test_batchnorm_refuses_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="BatchNorm1d needs"):
        nn.BatchNorm1d(**kwargs)


def test_batchnorm_keeps_float32(rng):
    layer = nn.BatchNorm1d(3, dtype=np.float32)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    assert layer(x).dtype == np.float32 and layer.backward(x).dtype == np.float32
    assert layer.running_var.dtype == np.float32


def test_batchnorm_on_array_api_strict_equals_numpy(xps, rng):
    x, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    ref, layer = _bn(4), _bn(4).to(xps)
    device = xps.Device("CPU_DEVICE")
    for mode in ("train", "eval"):
        getattr(ref, mode)(), getattr(layer, mode)()
        out, dx = layer(xps.asarray(x)), layer.backward(xps.asarray(G))
        assert out.device == dx.device == layer.running_var.device == device
        np.testing.assert_allclose(backend.to_numpy(out), ref(x), rtol=1e-13)
        np.testing.assert_allclose(backend.to_numpy(dx), ref.backward(G), rtol=1e-13)
    np.testing.assert_allclose(backend.to_numpy(layer.running_var), ref.running_var, rtol=1e-14)


def test_fit_trains_a_network_with_dropout_and_batchnorm(rng):
    X = rng.standard_normal((120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Dense(4, 16, rng=1), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Dropout(0.2, rng=2), nn.Dense(16, 2, rng=3))
    history = train.fit(model, losses.softmax_cross_entropy, optim.Adam(model.parameters(), lr=0.02),
                        X, y, epochs=30, batch_size=16, validation=(X, y), progress=False)
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert model.training and model[3].training
