"""Tests for train.EarlyStopping, the fit callback that stops when a metric stops improving."""
import numpy as np
import pytest

from course import data, losses, nn, optim, train


def overfitting_setup():
    """40 noisy training points, a large network and 200 validation points: val_loss turns up."""
    X, y = data.blobs(n=240, centers=2, std=2.0, rng=1)
    return nn.mlp([2, 64, 64, 2], rng=0), (X[:40], y[:40]), (X[40:], y[40:])


def run(model, train_set, val_set, epochs, callbacks):
    return train.fit(model, losses.softmax_cross_entropy, optim.Adam(model.parameters(), lr=0.01),
                     *train_set, epochs=epochs, batch_size=10, validation=val_set, progress=False,
                     callbacks=callbacks)


def test_an_overfitting_run_stops_at_the_right_epoch_and_gets_the_best_weights_back():
    # The reference: the same run without stopping, keeping a copy of the weights after every epoch.
    model, train_set, val_set = overfitting_setup()
    copies = {}
    reference = run(model, train_set, val_set, 60, [
        lambda epoch, history, m: copies.update({epoch: [p.data.copy() for p in m.parameters()]})])
    val_loss = np.array(reference["val_loss"])

    model, train_set, val_set = overfitting_setup()
    held = model[0].W.data  # an array a student holds
    stop = train.EarlyStopping(patience=5)
    history = run(model, train_set, val_set, 60, [stop])

    best = int(np.argmin(val_loss[:stop.stopped_epoch])) + 1
    assert stop.best_epoch == best and stop.stopped_epoch == best + 5 < 60
    assert stop.best_value == val_loss[best - 1]
    for epoch in range(1, stop.stopped_epoch):  # no earlier epoch had 5 without improvement
        assert epoch - (int(np.argmin(val_loss[:epoch])) + 1) < 5
    assert val_loss[best:stop.stopped_epoch].min() > stop.best_value  # it really got worse
    np.testing.assert_array_equal(history["val_loss"], val_loss[:stop.stopped_epoch])
    assert len(history) == history.stopped_epoch == stop.stopped_epoch
    assert model[0].W.data is held  # restored in place
    for p, saved in zip(model.parameters(), copies[best]):
        np.testing.assert_array_equal(p.data, saved)
    assert f"best was {stop.best_value:.4g} at epoch {best}" in history.stop_reason
    assert history.stop_reason == stop.reason and "val_loss" in stop.reason
    assert f"stopped at epoch {stop.stopped_epoch}" in repr(history)


def feed(stop, values, key="val_loss"):
    """Call ``stop`` as fit would, with ``values`` one epoch at a time; the epoch it stopped, or None.

    The model is a Dense(1, 1) whose weight is set to the epoch number before each call,
    so the restored weight tells which epoch it came from.
    """
    model, history = nn.Dense(1, 1), train.History()
    for epoch, value in enumerate(values, 1):
        model.W.data[...] = epoch
        history.append(epoch, **{key: value})
        if stop(epoch, history, model):
            return epoch, model
    return None, model


def test_patience_counts_epochs_in_a_row_without_improvement():
    values = [1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.9, 0.6]
    assert feed(train.EarlyStopping(patience=1), values)[0] == 3
    assert feed(train.EarlyStopping(patience=2), values)[0] == 6  # the improvement at 4 resets the count
    assert feed(train.EarlyStopping(patience=3), values)[0] == 7
    stop = train.EarlyStopping(patience=4)
    assert feed(stop, values)[0] is None  # every epoch ran
    assert stop.stopped_epoch is None and stop.best_epoch == 8 and stop.best_value == 0.6


def test_an_equal_value_is_no_improvement():
    assert feed(train.EarlyStopping(patience=2), [1.0, 1.0, 1.0])[0] == 3


def test_min_delta_is_measured_from_the_best_value_and_must_be_exceeded():
    stop = train.EarlyStopping(patience=2, min_delta=0.25)
    # 0.75 improves by exactly 0.25 (not more); 0.5 improves on the best, 1.0, by 0.5
    assert feed(stop, [1.0, 0.75, 0.5, 0.375, 0.3125])[0] == 5
    assert stop.best_epoch == 3 and stop.best_value == 0.5
    assert "by more than 0.25 for 2 epochs" in stop.reason


def test_restore_best_copies_the_best_epoch_weights_in_place():
    stop = train.EarlyStopping(patience=2)
    epoch, model = feed(stop, [3.0, 2.0, 2.5, 2.2])
    assert epoch == 4 and model.W.data[0, 0] == 2  # the weights of epoch 2
    stop = train.EarlyStopping(patience=2, restore_best=False)
    epoch, model = feed(stop, [3.0, 2.0, 2.5, 2.2])
    assert model.W.data[0, 0] == 4 and "restored" not in stop.reason
    with pytest.raises(RuntimeError, match="no weights to restore"):
        stop.restore(model)


def test_accuracy_is_better_higher():
    stop = train.EarlyStopping(patience=2, monitor="val_accuracy")
    epoch, model = feed(stop, [0.5, 0.6, 0.55, 0.58, 0.9], key="val_accuracy")
    assert epoch == 4 and stop.best_epoch == 2 and model.W.data[0, 0] == 2
    assert stop.higher_is_better and not train.EarlyStopping(monitor="loss").higher_is_better


def test_training_accuracy_monitor_in_fit_without_validation():
    X, y = data.blobs(n=60, centers=2, rng=3)
    model = nn.mlp([2, 8, 2], rng=0)
    stop = train.EarlyStopping(patience=3, monitor="accuracy")
    history = train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1),
                        X, y, epochs=200, batch_size=20, progress=False, callbacks=[stop])
    assert stop.stopped_epoch == len(history) < 200
    assert stop.best_value == max(history["accuracy"])


def test_a_missing_key_says_to_pass_validation_data():
    X, y = data.blobs(n=30, centers=2, rng=3)
    model = nn.mlp([2, 4, 2], rng=0)
    with pytest.raises(ValueError, match=r"'val_loss'.*validation=\(X_val, y_val\).*'accuracy', 'loss'"):
        train.fit(model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1), X, y,
                  epochs=3, progress=False, callbacks=[train.EarlyStopping()])
    assert model.training and model.input_grad  # fit cleaned up after the error
    with pytest.raises(ValueError, match="'val_acc'"):
        feed(train.EarlyStopping(monitor="val_acc"), [0.5], key="val_accuracy")


@pytest.mark.parametrize("kwargs, message", [
    ({"patience": 0}, "patience"), ({"patience": 1.5}, "patience"), ({"patience": True}, "patience"),
    ({"min_delta": -0.1}, "min_delta"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.EarlyStopping(**kwargs)


def test_a_new_fit_starts_afresh():
    stop = train.EarlyStopping(patience=1)
    assert feed(stop, [1.0, 2.0])[0] == 2
    assert feed(stop, [5.0, 4.0, 3.0])[0] is None and stop.best_epoch == 3 and stop.reason is None


def test_history_says_when_any_callback_stopped_the_run():
    X, y = data.blobs(n=30, centers=2, rng=3)
    model = nn.mlp([2, 4, 2], rng=0)
    fit_args = (model, losses.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.1), X, y)
    history = train.fit(*fit_args, epochs=10, progress=False, callbacks=[lambda e, h, m: e == 4])
    assert history.stopped_epoch == 4 and history.stop_reason == "a callback returned True"
    history = train.fit(*fit_args, epochs=2, progress=False)
    assert history.stopped_epoch is None and history.stop_reason is None
