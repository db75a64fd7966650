import numpy as np
import pytest

from course import init, nn


@pytest.mark.parametrize("name", sorted(init.INITIALIZERS))
def test_reproducible_shape_and_dtype(name):
    a = init.get(name)((300, 200), 7, np.float32)
    b = init.get(name)((300, 200), np.random.default_rng(7), np.float32)
    assert a.shape == (300, 200) and a.dtype == np.float32
    assert np.array_equal(a, b)


def test_scales():
    rng = np.random.default_rng(0)
    n_in, n_out = 400, 200
    assert np.std(init.xavier((n_in, n_out), rng)) == pytest.approx(np.sqrt(2 / (n_in + n_out)), rel=0.02)
    assert np.std(init.xavier_normal((n_in, n_out), rng)) == pytest.approx(
        np.sqrt(2 / (n_in + n_out)), rel=0.02)
    assert np.std(init.he((n_in, n_out), rng)) == pytest.approx(np.sqrt(2 / n_in), rel=0.02)
    assert np.std(init.he_uniform((n_in, n_out), rng)) == pytest.approx(np.sqrt(2 / n_in), rel=0.02)
    w = init.uniform((n_in, n_out), rng, a=0.3)
    assert w.min() >= -0.3 and w.max() < 0.3
    assert not init.zeros((3, 2)).any()


def test_zero_init_keeps_hidden_units_identical():
    """The symmetry problem: with all-zero weights every hidden unit gets the same gradient."""
    from course import losses, optim

    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    model = nn.Sequential(nn.Dense(3, 4, init="zeros"), nn.Sigmoid(), nn.Dense(4, 2, init="zeros"))
    opt = optim.SGD(model.parameters(), lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        model.backward(losses.softmax_cross_entropy(model(X), y)[1])
        opt.step()
    W = model[0].W.data
    assert np.abs(W).max() > 1e-3  # the weights did move...
    assert np.allclose(W, W[:, :1])  # ...but every column (hidden unit) is still the same


def test_bad_arguments():
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal((2, 2), std=-1)
    with pytest.raises(ValueError, match=r"\(n_in, n_out\)"):
        init.xavier((2, 2, 2))
