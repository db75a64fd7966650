import numpy as np
import pytest

from course import nn, optim


def make_param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def run(opt_class, grads, **kwargs):
    """Apply opt_class to one parameter starting at [1, -2] with the given gradient sequence."""
    p = make_param([1.0, -2.0])
    opt = opt_class([p], **kwargs)
    for g in grads:
        p.grad[...] = g
        opt.step()
    return p.data


GRADS = [[0.5, -1.0], [0.2, 0.3], [-0.4, 0.1], [1.0, 1.0]]


def test_plain_sgd():
    np.testing.assert_allclose(run(optim.SGD, GRADS[:1], lr=0.1), [0.95, -1.9])


def test_momentum_matches_the_two_seed_conventions():
    lr, mu = 0.1, 0.9
    ours = run(optim.SGD, GRADS, lr=lr, momentum=mu)
    # LAPENNA lecture 4 (Goodfellow et al.): v <- a v - e g; p <- p + v
    p, v = np.array([1.0, -2.0]), np.zeros(2)
    for g in np.array(GRADS):
        v = mu * v - lr * g
        p = p + v
    np.testing.assert_allclose(ours, p, rtol=1e-14)
    # LAPENNA lecture 4 (Ruder): v <- gamma v + alpha g; p <- p - v
    p, v = np.array([1.0, -2.0]), np.zeros(2)
    for g in np.array(GRADS):
        v = mu * v + lr * g
        p = p - v
    np.testing.assert_allclose(ours, p, rtol=1e-14)


def test_nesterov_and_weight_decay_by_hand():
    lr, mu, wd = 0.1, 0.9, 0.01
    p, v = np.array([1.0, -2.0]), None
    for g in np.array(GRADS):
        g = g + wd * p
        v = g.copy() if v is None else mu * v + g
        p = p - lr * (g + mu * v)
    np.testing.assert_allclose(run(optim.SGD, GRADS, lr=lr, momentum=mu, nesterov=True, weight_decay=wd), p)


def test_adam_first_step_is_lr_times_sign():
    # with bias correction the first step is lr * g / (|g| + eps) = lr * sign(g)
    np.testing.assert_allclose(run(optim.Adam, GRADS[:1], lr=0.01), [0.99, -1.99], rtol=1e-9)


def test_adam_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-8
    p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(np.array(GRADS), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(run(optim.Adam, GRADS, lr=lr, betas=(b1, b2), eps=eps), p, rtol=1e-12)


def test_adam_weight_decay_by_hand():
    """L2 weight decay as PyTorch's Adam adds it: g + wd * p, before the moments."""
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.99, 1e-8, 0.1
    p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(np.array(GRADS), start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    ours = run(optim.Adam, GRADS, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    np.testing.assert_allclose(ours, p, rtol=1e-12)
    assert not np.allclose(ours, run(optim.Adam, GRADS, lr=lr, betas=(b1, b2), eps=eps))


def test_nadam_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(np.array(GRADS), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr / (np.sqrt(v_hat) + eps) * (b1 * m_hat + (1 - b1) * g / (1 - b1**t))
    np.testing.assert_allclose(run(optim.NAdam, GRADS, lr=lr), p, rtol=1e-12)


@pytest.mark.parametrize("kwargs, opt_name", [
    ({"lr": 0.1}, "SGD"),
    ({"lr": 0.1, "momentum": 0.9}, "SGD"),
    ({"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, "SGD"),
    ({"lr": 0.01, "betas": (0.8, 0.99)}, "Adam"),
    ({"lr": 0.01, "weight_decay": 0.1}, "Adam"),
])
def test_matches_torch_optim(kwargs, opt_name, torch):
    ours = run(getattr(optim, opt_name), GRADS, **kwargs)
    t = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, opt_name)([t], **kwargs)
    for g in GRADS:
        t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(ours, t.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "invalid learning rate lr: -0.1"),
    (lambda p: optim.SGD(p, lr=float("nan")), "invalid learning rate lr: nan"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=1.5), "invalid momentum: 1.5"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.1), "invalid momentum: -0.1"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "invalid weight_decay: -1"),
    (lambda p: optim.Adam(p, lr=-1), "invalid learning rate lr: -1"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "invalid beta2: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9,)), r"betas must be a pair \(beta1, beta2\)"),
    (lambda p: optim.Adam(p, eps=-1e-8), "invalid eps: -1e-08"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
])
def test_invalid_hyperparameters_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make([make_param([1.0])])


def test_non_parameters_are_refused():
    with pytest.raises(TypeError, match="Parameter"):
        optim.SGD([np.zeros(2)], lr=0.1)


def test_updates_are_in_place_and_zero_grad_clears():
    p = make_param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    data = p.data
    p.grad[...] = 1.0
    opt.step()
    assert p.data is data
    opt.zero_grad()
    assert not p.grad.any()


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=0.1),
    lambda ps: optim.NAdam(ps, lr=0.1),
])
def test_the_arrays_a_student_holds_stay_the_parameters(make):
    """Creating an optimizer or stepping never rebinds p.data or p.grad: a held array sees the updates."""
    model = nn.mlp([3, 4, 2], rng=0)
    held = [(p.data, p.grad) for p in model.parameters()]
    W = model[0].W.data
    before = W.copy()
    opt = make(model.parameters())
    assert all(p.data is d and p.grad is g for p, (d, g) in zip(model.parameters(), held))
    assert W.base is None or W.base is not None and W.base.size == W.size  # not a view of a flat buffer
    model(np.ones((2, 3)))
    model.backward(np.ones((2, 2)))
    opt.step()
    opt.zero_grad()
    assert all(p.data is d and p.grad is g for p, (d, g) in zip(model.parameters(), held))
    assert not np.array_equal(W, before) and W is model[0].W.data
    assert not model[0].W.grad.any()


def test_a_parameter_given_a_new_array_is_updated_there():
    a, b = make_param([1.0, 2.0]), make_param([[3.0], [4.0]])
    opt = optim.SGD([a, b, a], lr=0.5)  # a duplicate is updated once
    a.data = np.array([10.0, 20.0])
    b.grad = np.array([[2.0], [4.0]])
    opt.step()
    np.testing.assert_array_equal(a.data, [10.0, 20.0])
    np.testing.assert_array_equal(b.data, [[2.0], [2.0]])


def test_mixed_dtypes_update_each_parameter():
    a = nn.Parameter(np.array([1.0], dtype=np.float32))
    b = make_param([1.0])
    opt = optim.Adam([a, b], lr=0.1)
    a.grad[...] = 1.0
    b.grad[...] = -1.0
    opt.step()
    assert a.data.dtype == np.float32
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 1.1], rtol=1e-6)


@pytest.mark.parametrize("make, steps", [
    (lambda ps: optim.SGD(ps, lr=0.1), 50),
    (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9), 200),
    (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 200),
    (lambda ps: optim.Adam(ps, lr=0.1), 500),
    (lambda ps: optim.NAdam(ps, lr=0.1), 500),
])
def test_each_optimizer_minimises_a_quadratic(make, steps):
    p = make_param([3.0, -4.0])
    opt = make([p])
    for _ in range(steps):
        p.grad[...] = 2 * p.data  # d/dp ||p||^2
        opt.step()
    assert np.linalg.norm(p.data) < 1e-2


def test_plain_sgd_on_a_quadratic_is_the_closed_form():
    """p_k = (1 - 2 lr)^k p_0 for f(p) = ||p||^2: the SGD test above is not luck."""
    p = make_param([3.0, -4.0])
    opt = optim.SGD([p], lr=0.1)
    for _ in range(10):
        p.grad[...] = 2 * p.data
        opt.step()
    np.testing.assert_allclose(p.data, 0.8**10 * np.array([3.0, -4.0]), rtol=1e-14)


@pytest.mark.parametrize("value", [np.float32(0.1), np.float64(0.1), np.int64(1), 1, 0.1])
def test_hyperparameters_accept_any_real_number(value):
    opt = optim.SGD([make_param([1.0])], lr=value, momentum=value * 0.5, weight_decay=value)
    assert opt.lr == float(value) and opt.momentum == float(value) * 0.5
    adam = optim.Adam([make_param([1.0])], lr=value, betas=(np.float32(0.5), 0.9), eps=value)
    assert adam.betas == (0.5, 0.9) and adam.eps == float(value)


@pytest.mark.parametrize("value", [True, np.bool_(True), float("inf"), np.float32("nan"), "0.1", None,
                                   1 + 2j])
def test_bools_non_finite_and_non_numbers_are_refused(value):
    with pytest.raises(ValueError, match="invalid learning rate lr"):
        optim.SGD([make_param([1.0])], lr=value)
    with pytest.raises(ValueError, match="invalid eps"):
        optim.Adam([make_param([1.0])], eps=value)


def test_adam_and_nadam_share_their_step():
    """NAdam changes only the update direction; the moments and the loop are Adam's."""
    assert "step" not in vars(optim.NAdam) and "_update" in vars(optim.NAdam)
    p, q = make_param([1.0, -2.0]), make_param([1.0, -2.0])
    adam, nadam = optim.Adam([p], lr=0.1), optim.NAdam([q], lr=0.1)
    for g in GRADS:
        p.grad[...] = q.grad[...] = g
        adam.step()
        nadam.step()
    for key in ("m", "v", "t"):
        np.testing.assert_array_equal(adam.state[p][key], nadam.state[q][key])
    assert not np.allclose(p.data, q.data)
