import _thread
import threading

import numpy as np
import pytest

from course import data, losses, nn, optim, train


def xor_setup(seed=0):
    X, y = data.logic_gate("xor")
    model = nn.Sequential(nn.Dense(2, 4, rng=seed), nn.Tanh(), nn.Dense(4, 1, rng=seed + 1), nn.Sigmoid())
    return model, X, y


def test_fit_learns_xor_and_records_history():
    model, X, y = xor_setup()
    history = train.fit(model, losses.binary_cross_entropy, optim.Adam(model.parameters(), lr=0.05),
                        X, y, epochs=300, progress=False)
    assert len(history) == 300 and history.epoch[-1] == 300
    assert history["loss"][-1] < 0.05 < history["loss"][0]
    assert history["accuracy"][-1] == 1.0
    assert all(t >= 0 for t in history["time"])
    np.testing.assert_array_equal(model(X) > 0.5, y == 1)
    assert "300 epochs" in repr(history)


class CountingSGD(optim.SGD):
    """SGD that counts its steps."""

    steps = 0

    def step(self):
        self.steps += 1
        super().step()


def test_batch_sizes_full_single_and_mini(rng):
    X, y = data.blobs(n=50, centers=2, rng=1)
    for batch_size, steps in ((None, 1), (1, 50), (16, 4)):
        model = nn.mlp([2, 3, 2], rng=0)
        opt = CountingSGD(model.parameters(), lr=0.1)
        train.fit(model, losses.softmax_cross_entropy, opt, X, y, epochs=2, batch_size=batch_size,
                  progress=False)
        assert opt.steps == 2 * steps


def test_full_batch_fit_equals_hand_written_gradient_descent():
    X, y = data.logic_gate("and")
    model = nn.Sequential(nn.Dense(2, 1, rng=3), nn.Sigmoid())
    W, b = model[0].W.data.copy(), model[0].b.data.copy()
    train.fit(model, losses.half_sse, optim.SGD(model.parameters(), lr=0.5), X, y, epochs=5,
              progress=False)
    for _ in range(5):
        out = 1 / (1 + np.exp(-(X @ W + b)))
        dz = (out - y) * out * (1 - out)
        W, b = W - 0.5 * X.T @ dz, b - 0.5 * dz.sum(axis=0)
    np.testing.assert_allclose(model[0].W.data, W, rtol=1e-12)
    np.testing.assert_allclose(model[0].b.data, b, rtol=1e-12)


def test_same_seed_repeats_bit_for_bit():
    def run(seed):
        X, y = data.spirals(n=60, rng=0)
        model = nn.mlp([2, 8, 3], rng=1)
        train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1,
                  momentum=0.9), X, y, epochs=3, batch_size=8, seed=seed, progress=False)
        return model[0].W.data.copy()

    assert np.array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


def test_validation_and_evaluate():
    X, y = data.moons(n=200, rng=0)
    model = nn.mlp([2, 16, 2], rng=0)
    history = train.fit(model, losses.softmax_cross_entropy, optim.Adam(model.parameters(), lr=0.02),
                        X[:150], y[:150], epochs=40, batch_size=32, validation=(X[150:], y[150:]),
                        progress=False)
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "time"} <= set(history.metrics)
    scores = train.evaluate(model, losses.softmax_cross_entropy, X[150:], y[150:], batch_size=7)
    assert scores["loss"] == pytest.approx(history["val_loss"][-1])
    assert scores["accuracy"] == history["val_accuracy"][-1] > 0.8


def test_accuracy_kinds():
    assert train.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5
    assert train.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[0, 1], [1, 0]])) == 1.0
    assert train.accuracy(np.array([[0.7], [0.2], [0.6]]), np.array([[1.0], [0.0], [0.0]])) == 2 / 3
    # one output against labels of shape (N,): compared row by row, not broadcast to (N, N)
    assert train.accuracy(np.array([[0.9], [0.1], [0.2]]), np.array([1, 0, 1])) == 2 / 3


def test_no_accuracy_for_regression():
    X = np.linspace(-1, 1, 20).reshape(-1, 1)
    model = nn.mlp([1, 4, 1], activation="tanh", rng=0)
    history = train.fit(model, losses.mse, optim.SGD(model.parameters(), lr=0.1), X, X**2,
                        epochs=2, progress=False)
    assert "accuracy" not in history


def test_divergence_stops_with_epoch_and_batch_named():
    X, y = data.blobs(n=40, centers=2, rng=0)
    X = X * 1e3
    model = nn.mlp([2, 8, 2], rng=0)
    with pytest.raises(train.TrainingDiverged, match=r"epoch \d+, batch \d+ of 5.*smaller"):
        train.fit(model, losses.mse, optim.SGD(model.parameters(), lr=1e3), X,
                  losses.one_hot(y, 2), epochs=50, batch_size=8, progress=False)
    assert all(np.all(np.isfinite(p.data)) for p in model.parameters())


def test_ctrl_c_keeps_history_and_weights(capsys):
    X, y = data.blobs(n=64, centers=2, rng=0)
    model = nn.mlp([2, 8, 2], rng=0)

    def interrupt_after_three(epoch, history, model):
        if epoch == 3:
            _thread.interrupt_main()  # what Ctrl-C does, delivered in the main thread
        return False

    assert threading.current_thread() is threading.main_thread()
    history = train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1),
                        X, y, epochs=100, batch_size=8, progress=False,
                        callbacks=[interrupt_after_three])
    assert history.interrupted and 3 <= len(history) < 100
    assert "interrupted" in capsys.readouterr().out
    before = model[0].W.data.copy()
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1), X, y,
              epochs=1, progress=False)
    assert not np.array_equal(before, model[0].W.data)  # the model can go on training


def test_callback_can_stop_early():
    X, y = data.blobs(n=20, centers=2, rng=0)
    model = nn.mlp([2, 4, 2], rng=0)
    history = train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1),
                        X, y, epochs=50, progress=False, callbacks=[lambda e, h, m: e == 4])
    assert len(history) == 4


def test_progress_bar_reports_loss(capsys):
    X, y = data.blobs(n=20, centers=2, rng=0)
    model = nn.mlp([2, 4, 2], rng=0)
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1), X, y,
              epochs=2, batch_size=5, progress=True)
    err = capsys.readouterr().err
    assert "8/8" in err and "loss=" in err and "accuracy=" in err


def test_bad_arguments_are_named():
    model, X, y = xor_setup()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(model, losses.mse, opt, X, y, epochs=0, progress=False)
    with pytest.raises(ValueError, match="X has 4 examples but y has 3"):
        train.fit(model, losses.mse, opt, X, y[:3], progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(model, losses.mse, opt, X, y, batch_size=0, progress=False)


def test_float32_kept_through_training():
    X, y = data.blobs(n=32, centers=3, rng=0)
    model = nn.mlp([2, 8, 3], rng=0, dtype=np.float32)
    train.fit(model, losses.softmax_cross_entropy, optim.Adam(model.parameters()),
              X.astype(np.float32), y, epochs=2, batch_size=8, progress=False)
    assert all(p.data.dtype == np.float32 for p in model.parameters())


def test_history_plot_draws_curves():
    import matplotlib

    matplotlib.use("Agg")
    model, X, y = xor_setup()
    history = train.fit(model, losses.binary_cross_entropy, optim.Adam(model.parameters(), lr=0.05),
                        X, y, epochs=5, progress=False, validation=(X, y))
    fig = history.plot(log_scale=True)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["loss", "val_loss"]
    assert loss_ax.get_yscale() == "log" and len(acc_ax.lines) == 2


class ModeProbe(nn.Module):
    """A module that records, at every forward, whether it is in training mode."""

    def __init__(self):
        self.dense = nn.Dense(2, 2, rng=0)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, self.dense.training, x.shape[0]))
        return self.dense(x)

    def backward(self, dout):
        return self.dense.backward(dout)


@pytest.mark.parametrize("start_in_eval", [False, True])
def test_fit_trains_in_training_mode_validates_in_eval_mode_and_restores_both(start_in_eval):
    X, y = data.blobs(n=12, centers=2, rng=0)
    model = ModeProbe()
    if start_in_eval:
        model.eval()
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1), X, y,
              epochs=2, batch_size=4, validation=(X[:5], y[:5]), progress=False)
    assert [(m, inner) for m, inner, n in model.seen if n == 4] == [(True, True)] * 6
    assert [(m, inner) for m, inner, n in model.seen if n == 5] == [(False, False)] * 2
    assert model.training is not start_in_eval and model.dense.training is not start_in_eval
    assert model.input_grad is True and model.dense.input_grad is True
    scores = train.evaluate(model, losses.softmax_cross_entropy, X, y)
    assert model.seen[-1][:2] == (False, False) and model.training is not start_in_eval
    assert 0 <= scores["accuracy"] <= 1


def test_fit_skips_the_data_gradient_and_restores_the_flag_after_an_error():
    X, y = data.logic_gate("and")
    model = nn.Sequential(nn.Dense(2, 1, rng=0), nn.Sigmoid())
    seen = []
    backward = model[0].backward

    def spy(dout):
        dx = backward(dout)
        seen.append(dx)
        return dx

    model[0].backward = spy
    train.fit(model, losses.half_sse, optim.SGD(model.parameters(), lr=0.1), X, y, epochs=2,
              progress=False)
    assert seen == [None, None] and model.input_grad is True
    with pytest.raises(train.TrainingDiverged):
        train.fit(model, losses.half_sse, optim.SGD(model.parameters(), lr=1e300), X, y * 1e300,
                  epochs=3, progress=False)
    assert model.input_grad is True and model.training is True
