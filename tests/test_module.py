"""The module contract (course.module), on the library's layers and on a student's own module."""
import numpy as np
import pytest
from test_nn import LAYERS

from course import losses, nn, optim, train
from course.gradcheck import check_gradients

ALL_MODULES = LAYERS + [nn.Step, lambda: nn.Sequential(nn.Dense(4, 3, rng=0))]


class TwoLayers(nn.Module):
    """A student's own module: no registration, just attributes."""

    def __init__(self):
        self.first = nn.Dense(2, 3, rng=0)
        self.act = nn.Tanh()
        self.heads = [nn.Dense(3, 1, rng=1), nn.Dense(3, 2, rng=2)]
        self.pair = (self.first, nn.Sigmoid())  # the same Dense again: its parameters once
        self.scale = 2.0

    def forward(self, x):
        return self.heads[1](self.act(self.first(x))) * self.scale

    def backward(self, dout):
        return self.first.backward(self.act.backward(self.heads[1].backward(dout * self.scale)))


def test_parameters_recurse_into_attributes_lists_and_tuples_once_in_order():
    model = TwoLayers()
    params = model.parameters()
    expected = [model.first.W, model.first.b, model.heads[0].W, model.heads[0].b,
                model.heads[1].W, model.heads[1].b]
    assert [id(p) for p in params] == [id(p) for p in expected]
    assert model.parameters() == params  # stable
    nested = nn.Sequential(model, nn.Sequential(nn.ReLU(), nn.Dense(2, 2)))
    assert len(nested.parameters()) == 8
    shared = nn.Dense(2, 2)
    assert len(nn.Sequential(shared, nn.Tanh(), shared).parameters()) == 2


def test_a_custom_module_trains_with_fit_and_an_optimizer(rng):
    model = TwoLayers()
    X, y = rng.standard_normal((20, 2)), rng.integers(0, 2, 20)
    before = model.first.W.data.copy()
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1), X, y,
              epochs=2, batch_size=5, progress=False)
    assert not np.array_equal(before, model.first.W.data)
    assert check_gradients(model, losses.softmax_cross_entropy, X[:4], y[:4]) < 1e-7


@pytest.mark.parametrize("make", ALL_MODULES)
def test_backward_before_forward_is_the_same_runtime_error(make):
    with pytest.raises(RuntimeError, match=r"backward was called before forward: run the forward"):
        make().backward(np.ones((4, 3)))


@pytest.mark.parametrize("bad", [(1, 3), (4, 1), (3,), (4, 3, 1), (8, 3)])
@pytest.mark.parametrize("make", ALL_MODULES)
def test_backward_refuses_dout_of_another_shape(make, bad, rng):
    module = make()
    x = rng.standard_normal((4, 4))
    out = module(x)
    assert out.shape in ((4, 3), (4, 4))
    if out.shape == (4, 4):  # the same wrong shapes for an output of 4 columns
        bad = tuple(4 if d == 3 else d for d in bad)
    assert bad != out.shape
    with pytest.raises(ValueError, match=r"backward expects dout of shape \(4, [34]\)"):
        module.backward(np.ones(bad))


def test_train_and_eval_recurse_into_every_module():
    model = nn.Sequential(TwoLayers(), nn.Sequential(nn.ReLU(), nn.Dense(2, 2)))
    every = [model, model[0], model[0].first, model[0].act, *model[0].heads, model[0].pair[1],
             model[1], model[1][0], model[1][1]]
    assert all(m.training for m in every)
    assert model.eval() is model
    assert not any(m.training for m in every)
    model.train()
    assert all(m.training for m in every)
    model[1].train(False)
    assert model.training and not model[1][1].training


def test_input_grad_flag_skips_the_data_gradient_in_every_module(rng):
    x = rng.standard_normal((3, 4))
    for make in ALL_MODULES:
        module = make()
        if isinstance(module, nn.Step):
            continue
        out = module(x)
        full = module.backward(np.ones(out.shape))
        grads = [p.grad.copy() for p in module.parameters()]
        module.zero_grad()
        module.input_grad = False
        assert module.backward(np.ones(out.shape)) is None and full is not None
        for p, g in zip(module.parameters(), grads):  # parameter gradients are unchanged
            np.testing.assert_array_equal(p.grad, g)
    model = nn.mlp([4, 5, 2])
    model.input_grad = False
    assert model[0].input_grad is False and model[2].input_grad is True


def test_repr_of_every_module():
    assert repr(nn.Dense(3, 4)) == "Dense(3, 4)"
    assert repr(nn.ReLU()) == "ReLU()" and repr(nn.Softmax()) == "Softmax()"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(alpha=0.2)"
    assert repr(nn.mlp([2, 3, 1])) == "Sequential(\n  (0): Dense(2, 3)\n  (1): ReLU()\n  (2): Dense(3, 1)\n)"
    text = repr(TwoLayers())
    for line in ("TwoLayers(", "(first): Dense(2, 3)", "(act): Tanh()", "(heads[0]): Dense(3, 1)",
                 "(heads[1]): Dense(3, 2)", "(pair[1]): Sigmoid()"):
        assert line in text
    nested = "Sequential(\n  (0): Sequential(\n    (0): Dense(1, 1)\n  )\n)"
    assert repr(nn.Sequential(nn.mlp([1, 1]))) == nested


def test_activation_layers_define_what_they_use():
    """Each elementwise layer defines its own function and derivative; none inherits an unused one."""
    for cls in (nn.Identity, nn.Step, nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU):
        assert "function" in vars(cls) and "derivative" in vars(cls), cls
    assert nn.Activation.derivative.__qualname__ == "Activation.derivative"  # the abstract one
    with pytest.raises(NotImplementedError, match="function"):
        nn.Activation()(np.ones(2))


