"""Training loop: ``fit`` a model with a progress bar, get a ``History`` back.

    history = fit(model, losses.softmax_cross_entropy, optim.Adam(model.parameters()),
                  X_train, y_train, epochs=5, batch_size=128, validation=(X_val, y_val))
    history.plot()

Every step is the one the lessons write by hand:

    for each epoch:
        for each mini-batch (X_b, y_b) in a fresh random order:
            y_hat = model(X_b)                 # forward
            loss, dy = loss_fn(y_hat, y_b)     # loss and its gradient
            optimizer.zero_grad()
            model.backward(dy)                 # backward
            optimizer.step()                   # update

``fit`` adds what a class needs around it: a progress bar, per-epoch loss,
accuracy and time, a clear stop when the loss becomes NaN or infinite, and a
clean stop on Ctrl-C that keeps the history and the weights reached so far.
"""
import math
import time

import numpy as np

from course import backend, data
from course.backend import namespace
from course.module import training


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the weights are those of the last good step."""


class History:
    """What happened in each epoch of ``fit``.

    ``history["loss"]`` is the training loss per epoch (the batch losses averaged, weighted
    by batch size), ``history["accuracy"]`` the training accuracy when it applies,
    ``history["val_loss"]``/``["val_accuracy"]`` the same on the validation set,
    ``history["time"]`` seconds per epoch. ``interrupted`` is True when Ctrl-C stopped the
    run. When a callback stopped it, ``stopped_epoch`` is that epoch and ``stop_reason``
    says why (both None when every epoch ran).
    """

    def __init__(self):
        self.epoch, self.metrics = [], {}
        self.interrupted, self.stopped_epoch, self.stop_reason = False, None, None

    def append(self, epoch, **values):
        """Record one epoch: ``append(3, loss=0.1, accuracy=0.97, time=1.2)``."""
        self.epoch.append(epoch)
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.metrics[key]

    def __contains__(self, key):
        return key in self.metrics

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        if not self.epoch:
            return "History(no epochs)"
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.metrics.items() if k != "time")
        stop = f"; stopped at epoch {self.stopped_epoch}" if self.stopped_epoch else ""
        return f"History({len(self.epoch)} epochs; last: {last}{stop})"

    def plot(self, log_scale=False, ax=None):
        """Loss (and accuracy) curves per epoch; returns the matplotlib Figure."""
        import matplotlib.pyplot as plt

        accuracy = [k for k in ("accuracy", "val_accuracy") if k in self.metrics]
        if ax is None:
            fig, axes = plt.subplots(1, 1 + bool(accuracy), figsize=(5 + 4 * bool(accuracy), 3.5),
                                     squeeze=False)
            axes = list(axes[0])
        else:
            fig, axes = ax.figure, [ax]
        for key in ("loss", "val_loss"):
            if key in self.metrics:
                axes[0].plot(self.epoch, self.metrics[key], label=key)
        axes[0].set(xlabel="epoch", ylabel="loss", yscale="log" if log_scale else "linear")
        axes[0].legend()
        if accuracy and len(axes) > 1:
            for key in accuracy:
                axes[1].plot(self.epoch, self.metrics[key], label=key)
            axes[1].set(xlabel="epoch", ylabel="accuracy")
            axes[1].legend()
        fig.tight_layout()
        return fig


def _correct(y_hat, labels):
    """Number of right predictions (an array scalar).  y_hat: (N, K) or (N, 1); labels: (N,) or (N, 1)."""
    xp = namespace(y_hat)
    if y_hat.shape[1] == 1:
        return xp.count_nonzero((y_hat[:, 0] > 0.5) == (xp.reshape(labels, (-1,)) > 0.5))
    return xp.count_nonzero(xp.argmax(y_hat, axis=1) == labels)


def _labels(y):
    """Targets in the form ``_correct`` compares with: class ids (N,), or (N, 1) for one output."""
    xp = namespace(y)
    return y if y.ndim == 1 or y.shape[1] == 1 else xp.argmax(y, axis=1)


def accuracy(y_hat, y):
    """Fraction of correct predictions (a float).

    y_hat: (N, K) scores or probabilities; y: (N,) class ids or (N, K) one-hot,
    compared by argmax. For one output, y_hat: (N, 1) probabilities and
    y: (N, 1) or (N,) of 0/1, a prediction is y_hat > 0.5.
    """
    return int(_correct(y_hat, _labels(y))) / y_hat.shape[0]


def _accuracy_applies(y):
    """Accuracy makes sense for class ids, one-hot rows, or 0/1 targets."""
    y = backend.to_numpy(y)
    if y.ndim == 1:
        return np.issubdtype(y.dtype, np.integer)
    return y.ndim == 2 and bool(np.all((y == 0) | (y == 1)))


def _on_device(arrays, like):
    """Move arrays (once) to the namespace and device of the array ``like`` (e.g. a weight)."""
    xp = namespace(like)
    if xp is np:
        return [backend.to_numpy(a) for a in arrays]
    return [xp.asarray(a, device=like.device) for a in arrays]


def evaluate(model, loss_fn, X, y, batch_size=1024, metrics=("accuracy",)):
    """Loss and metrics of ``model`` on (X, y), in batches to bound memory.

    X: (N, D); y: as ``loss_fn`` expects. Returns a dict such as
    ``{"loss": 0.08, "accuracy": 0.976}`` (accuracy only where it applies).
    The model runs in evaluation mode (``model.eval()``), and is put back in
    the mode it was in.
    """
    X, y = _on_device([X, y], model.parameters()[0].data)
    n = X.shape[0]
    if n == 0:
        raise ValueError("evaluate: got an empty batch (X has no rows)")
    total, correct = 0.0, 0  # correct stays on the device until the end
    want_accuracy = "accuracy" in metrics and _accuracy_applies(y)
    was_training = model.training
    model.eval()  # dropout off, batch normalisation on its running statistics
    try:
        for X_b, y_b in data.batches(X, y, batch_size, shuffle=False):
            y_hat = model(X_b)
            total += loss_fn(y_hat, y_b)[0] * X_b.shape[0]
            if want_accuracy:
                correct += _correct(y_hat, _labels(y_b))
    finally:
        model.train(was_training)
    result = {"loss": total / n}
    if want_accuracy:
        result["accuracy"] = int(correct) / n
    return result


def _progress_bar(total, enabled, epochs):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # imported only when a bar is wanted

    return tqdm(total=total, unit="batch", desc=f"{epochs} epoch{'s' * (epochs != 1)}",
                leave=True, mininterval=0.25)


def run_epochs(model, epochs, run_epoch, history, bar=None, callbacks=None):
    """The epoch loop that ``fit`` and ``course.parallel.fit`` share.

    For epoch = 1 .. ``epochs``: ``record = run_epoch(epoch)`` (a dict of numbers) goes into
    ``history`` and the progress ``bar``; training stops early when a callback
    ``cb(epoch, history, model)`` returns True. The model is in training mode without its
    input gradient meanwhile (``course.module.training``), and the bar is closed at the end.
    """
    # Overflow on the way to a NaN loss is reported once, by the loss check, not as warnings.
    with training(model), np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(1, epochs + 1):
                record = run_epoch(epoch)
                history.append(epoch, **record)
                if bar is not None:
                    bar.set_description(f"epoch {epoch}/{epochs}", refresh=False)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if "time" not in k})
                if callbacks and any(cb(epoch, history, model) for cb in callbacks):
                    history.stopped_epoch = epoch
                    history.stop_reason = history.stop_reason or "a callback returned True"
                    break
        finally:
            if bar is not None:
                bar.close()


def fit(model, loss_fn, optimizer, X, y, epochs=1, batch_size=None, validation=None,
        metrics=("accuracy",), progress=True, seed=0, callbacks=None):
    """Train ``model`` by mini-batch gradient descent and return a ``History``.

    Args:
        model: a ``course.nn`` Module (e.g. ``nn.Sequential``).
        loss_fn: ``(loss, dy) = loss_fn(y_hat, y)``, e.g. ``losses.softmax_cross_entropy``.
        optimizer: e.g. ``optim.SGD(model.parameters(), lr=0.1)``.
        X: (N, D) inputs, in the model's dtype.  y: (N,) labels or (N, K) targets.
        epochs: passes over the data.
        batch_size: ``None`` for full-batch gradient descent, 1 for per-sample
            SGD, k for mini-batches of k (the last one smaller if k does not divide N).
        validation: optional ``(X_val, y_val)`` evaluated after every epoch.
        metrics: ``("accuracy",)`` records accuracy when the targets are classes.
        progress: show a progress bar (a widget in JupyterLab, text in a terminal).
        seed: seeds the shuffling, so a run repeats exactly.
        callbacks: functions ``f(epoch, history, model)`` called after each
            epoch; one returning True stops training.

    The model trains in training mode (``model.train()``) and is validated in
    evaluation mode; when ``fit`` returns, it is in the mode it was in before.
    While training, ``model.input_grad`` is False: the gradient with respect
    to X is never used, so the first layer skips it.

    Raises ``TrainingDiverged`` (naming the epoch and batch) when the loss
    becomes NaN or infinite; training stops before that batch updates the weights.
    """
    if epochs < 1 or int(epochs) != epochs:
        raise ValueError(f"epochs must be a positive whole number, got {epochs!r}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} examples but y has {y.shape[0]}")
    X, y = _on_device([X, y], model.parameters()[0].data)
    n = X.shape[0]
    size = n if batch_size is None else batch_size
    n_batches = -(-n // size) if size > 0 else 0
    want_accuracy = "accuracy" in metrics and _accuracy_applies(y)
    rng = np.random.default_rng(seed)
    history = History()
    bar = _progress_bar(epochs * n_batches, progress, epochs)
    where = {"epoch": 0, "batch": 0}

    def run_epoch(epoch):
        """One pass over the data; returns the epoch's record for the history."""
        start, total, correct = time.perf_counter(), 0.0, 0
        where.update(epoch=epoch, batch=0)
        for batch, (X_b, y_b) in enumerate(data.batches(X, y, batch_size, rng=rng), 1):
            where["batch"] = batch
            y_hat = model(X_b)
            loss, dy = loss_fn(y_hat, y_b)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss} at epoch {epoch}, batch {batch} of {n_batches}; "
                    f"the learning rate (lr={optimizer.lr}) is probably too large: try a "
                    "smaller one (e.g. a tenth)"
                )
            optimizer.zero_grad()
            model.backward(dy)
            optimizer.step()
            total += loss * X_b.shape[0]
            if want_accuracy:
                correct += _correct(y_hat, _labels(y_b))
            if bar is not None:
                bar.update()
        record = {"loss": total / n}
        if want_accuracy:
            record["accuracy"] = int(correct) / n
        if validation is not None:
            scores = evaluate(model, loss_fn, *validation, metrics=metrics)
            record.update({f"val_{k}": v for k, v in scores.items()})
        record["time"] = time.perf_counter() - start
        return record

    try:
        run_epochs(model, epochs, run_epoch, history, bar, callbacks)
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"Training interrupted at epoch {where['epoch']}, batch {where['batch']}: "
              f"the history of the {len(history)} finished epochs and the current weights "
              "are kept.")
    return history


class EarlyStopping:
    """A ``fit`` callback that stops training when ``monitor`` stops improving.

        stop = EarlyStopping(patience=5, monitor="val_loss")
        history = fit(..., validation=(X_val, y_val), callbacks=[stop])

    An epoch improves when its value beats the best so far by more than
    ``min_delta``. Names containing "accuracy" are better higher; every other
    name ("loss", "val_loss", ...) is better lower. After ``patience`` epochs
    in a row without improvement, the callback returns True and ``fit`` stops.
    With ``restore_best`` the model then gets the best epoch's weights back,
    copied into each ``p.data`` in place (arrays you hold stay the parameters).

    After the run: ``best_epoch``, ``best_value``, ``stopped_epoch`` (None if every
    epoch ran), ``reason`` (also the History's ``stop_reason``). A new ``fit`` starts afresh.
    """

    def __init__(self, patience=5, monitor="val_loss", min_delta=0.0, restore_best=True):
        if isinstance(patience, bool) or int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a whole number of epochs >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.patience, self.monitor = int(patience), monitor
        self.min_delta, self.restore_best = float(min_delta), restore_best
        self.higher_is_better = "accuracy" in monitor
        self._start(None)

    def _start(self, history):  # forget the last run; history is the new run's History
        self._history, self.wait, self._weights = history, 0, None
        self.best_epoch = self.best_value = self.stopped_epoch = self.reason = None

    def __call__(self, epoch, history, model):
        """After ``epoch`` of ``fit``: record the monitored value; True means stop."""
        if history is not self._history:  # a new run
            self._start(history)
        if self.monitor not in history:
            hint = " (pass validation=(X_val, y_val) to fit)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which the history does not "
                             f"record{hint}; it records {sorted(history.metrics)}")
        value = history[self.monitor][-1]
        sign = 1 if self.higher_is_better else -1
        if self.best_value is None or sign * (value - self.best_value) > self.min_delta:
            self.best_epoch, self.best_value, self.wait = epoch, value, 0
            if self.restore_best:
                self._weights = [namespace(p.data).asarray(p.data, copy=True)
                                 for p in model.parameters()]
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        self.stopped_epoch = epoch
        self.reason = (f"{self.monitor} did not improve by more than {self.min_delta:g} for "
                       f"{self.patience} epochs; the best was {self.best_value:.4g} at epoch "
                       f"{self.best_epoch}")
        if self.restore_best:
            self.restore(model)
            self.reason += ", whose weights were restored"
        history.stopped_epoch, history.stop_reason = epoch, self.reason
        return True

    def restore(self, model):
        """Copy the best epoch's weights into ``model``'s parameters, in place (each p.data[...])."""
        if self._weights is None:
            raise RuntimeError("EarlyStopping has no weights to restore: it keeps them, with "
                               "restore_best=True, during a fit that it is a callback of")
        for p, best in zip(model.parameters(), self._weights):
            p.data[...] = best
