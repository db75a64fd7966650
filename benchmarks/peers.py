"""Benchmarks against peers: what ``python benchmarks/run.py`` measures.

1. MNIST: the same 784-256-128-10 ReLU network, softmax cross-entropy, Adam
   (lr 1e-3), batches of 128, float32, trained with ``course``, PyTorch on the
   CPU and scikit-learn's ``MLPClassifier``. Epochs alternate between the peers
   so that each sees the same machine load; ``compare`` reports the median
   seconds per epoch and the test accuracy after the last epoch.
2. Higham & Higham (2019): the 2-2-3-2 sigmoid network on ten points,
   per-sample SGD with eta = 0.05 for 10^6 steps (148.6 s for one run of
   netbpfull.m in MATLAB, in Bueler's MATH 692 notes), with ``course.train.fit``,
   with a plain NumPy loop and with PyTorch.

PyTorch and scikit-learn are optional (``pip install -e ".[bench]"``); a peer
that is not installed is left out of the table.

Each MNIST peer is a *trainer*: ``make(X, y)`` with X: (N, 784) float32 and
y: (N,) int64 returns ``(epoch, accuracy)``, where ``epoch(seed)`` runs one
epoch and ``accuracy(X_test, y_test)`` returns a float, or None for a
measurement that trains no model. A new row of the MNIST table is one more
entry in ``TRAINERS``.
"""
import itertools
import statistics
import time

import numpy as np

from course import data, losses, nn, optim, train

SIZES = [784, 256, 128, 10]
BATCH = 128


# ---------------------------------------------------------------- MNIST


def _course_trainer(X, y):
    """``course``: nn.mlp, Adam, train.fit one epoch at a time. X: (N, 784) float32, y: (N,)."""
    model = nn.mlp(SIZES, rng=0, dtype=np.float32)
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def epoch(seed):
        train.fit(model, losses.softmax_cross_entropy, opt, X, y, epochs=1, batch_size=BATCH,
                  progress=False, seed=seed, metrics=())

    def accuracy(X_test, y_test):
        return train.evaluate(model, losses.softmax_cross_entropy, X_test, y_test)["accuracy"]

    return epoch, accuracy


def _torch_trainer(X, y):
    """PyTorch on the CPU, 2 threads: the usual zero_grad / forward / backward / step loop."""
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(SIZES)):
        layers += [torch.nn.Linear(n_in, n_out)] + ([torch.nn.ReLU()] if i < len(SIZES) - 2 else [])
    model = torch.nn.Sequential(*layers)
    epoch = torch_epochs(model, X, y)

    def accuracy(X_test, y_test):
        with torch.no_grad():
            return float((model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean())

    return epoch, accuracy


def torch_epochs(model, X, y, batch=BATCH):
    """``epoch(seed)``: one epoch of Adam (lr 1e-3) and cross-entropy on a PyTorch ``model``,
    the usual zero_grad / forward / backward / step loop over a seeded random order."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def epoch(seed):
        order = torch.randperm(len(X_t), generator=torch.Generator().manual_seed(seed))
        for start in range(0, len(X_t), batch):
            idx = order[start:start + batch]
            opt.zero_grad()
            loss_fn(model(X_t[idx]), y_t[idx]).backward()
            opt.step()

    return epoch


def _sklearn_trainer(X, y):
    """scikit-learn's MLPClassifier, one ``partial_fit`` pass per epoch."""
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=tuple(SIZES[1:-1]), solver="adam", alpha=0.0,
                          learning_rate_init=1e-3, batch_size=BATCH, random_state=0)
    classes = np.arange(10)

    def epoch(seed):
        model.partial_fit(X, y, classes=classes)

    def accuracy(X_test, y_test):
        return float((model.predict(X_test) == y_test).mean())

    return epoch, accuracy


def _matmul_floor(X, y):
    """The epoch's matrix products alone, in NumPy: the floor under any NumPy implementation.

    Per batch of 128: the three forward products and the five backward ones of
    ``course``'s training step (dW for every layer, dX for all but the first),
    on arrays of the right shapes, with nothing else: no activation, loss,
    gathering or update. X: (N, 784) float32.
    """
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((n_in, n_out)).astype(np.float32) * 0.05
          for n_in, n_out in itertools.pairwise(SIZES)]

    def epoch(seed):
        for start in range(0, len(X), BATCH):
            inputs = [X[start:start + BATCH]]
            for W in Ws:  # forward: X @ W1, H1 @ W2, H2 @ W3
                inputs.append(inputs[-1] @ W)
            dout = inputs.pop()
            for i in range(len(Ws) - 1, -1, -1):  # backward: dW = H^T dout, dH = dout W^T
                inputs[i].T @ dout
                if i > 0:
                    dout = dout @ Ws[i].T

    return epoch, lambda X_test, y_test: None


TRAINERS = {"course": _course_trainer, "pytorch": _torch_trainer,
            "scikit-learn": _sklearn_trainer, "matrix products alone": _matmul_floor}


def load(data_dir=None):
    """MNIST ready for the trainers: ``(X_train, y_train), (X_test, y_test)``.

    X_train: (60000, 784) float32 in [0, 1], y_train: (60000,) int64;
    X_test: (10000, 784), y_test: (10000,).
    """
    (X_train, y_train), (X_test, y_test) = data.load_mnist(data_dir)
    return data.prepare(X_train, y_train), data.prepare(X_test, y_test)


def compare(train_set, test_set, epochs=5, peers=tuple(TRAINERS)):
    """Time ``epochs`` epochs of each peer, the peers taking turns epoch by epoch.

    train_set: (X: (N, 784) float32, y: (N,) int64); test_set likewise.
    A peer that is not installed is left out, with a line saying so.

    Returns:
        one dict per peer: ``peer``, ``seconds_per_epoch`` (the median),
        ``epoch_times`` (seconds, one per epoch), ``test_accuracy`` (float or None).
    """
    trainers = {}
    for name in peers:
        try:
            trainers[name] = TRAINERS[name](*train_set)
        except ImportError:
            print(f"({name} is not installed: left out; pip install -e \".[bench]\")")
    times = {name: [] for name in trainers}
    for e in range(epochs):
        for name, (epoch, _) in trainers.items():
            start = time.perf_counter()
            epoch(e)
            times[name].append(time.perf_counter() - start)
    return [{"peer": name, "seconds_per_epoch": statistics.median(times[name]),
             "epoch_times": times[name], "test_accuracy": accuracy(*test_set)}
            for name, (_, accuracy) in trainers.items()]


def mnist(epochs=5, data_dir=None, peers=tuple(TRAINERS)):
    """Load MNIST and ``compare`` the peers on it; returns ``compare``'s list of dicts."""
    train_set, test_set = load(data_dir)
    return compare(train_set, test_set, epochs, peers)


# ---------------------------------------------------------------- Higham & Higham 2019


def hh19_course(steps=10**6):
    """Seconds for ``steps`` per-sample SGD steps of Higham & Higham's network with ``train.fit``."""
    X, y = data.hh19()
    model = nn.Sequential(nn.Dense(2, 2), nn.Sigmoid(), nn.Dense(2, 3), nn.Sigmoid(),
                          nn.Dense(3, 2), nn.Sigmoid())
    rng = np.random.default_rng(5000)
    for p in model.parameters():  # weights and biases drawn as 0.5 * randn, as in HH19
        p.data[...] = 0.5 * rng.standard_normal(p.shape)
    opt = optim.SGD(model.parameters(), lr=0.05)
    start = time.perf_counter()
    history = train.fit(model, losses.half_sse, opt, X, y, epochs=steps // len(X), batch_size=1,
                        progress=False, metrics=())
    return time.perf_counter() - start, history["loss"][-1]


def hh19_torch(steps=10**5):
    """Seconds for ``steps`` steps of the same experiment in PyTorch (float64, one thread).

    The usual PyTorch loop: zero_grad, forward, half the squared error, backward, step.
    Returns (seconds, the final mean cost per point).
    """
    import torch

    torch.set_num_threads(1)  # tensors of two or three numbers: threads would only add overhead
    X, Y = (torch.from_numpy(a) for a in data.hh19())
    rng = np.random.default_rng(5000)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 3),
                                torch.nn.Sigmoid(), torch.nn.Linear(3, 2), torch.nn.Sigmoid()).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(0.5 * rng.standard_normal(tuple(p.shape))))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    start = time.perf_counter()
    for k in rng.integers(0, len(X), steps).tolist():
        opt.zero_grad()
        (0.5 * ((model(X[k:k + 1]) - Y[k:k + 1]) ** 2).sum()).backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds, 0.5 * float(((model(X) - Y) ** 2).sum()) / len(X)


def hh19_plain_numpy(steps=10**6, record_cost=False):
    """The same experiment as a straightforward NumPy loop with column vectors, as in HH19's netbp.m.

    ``record_cost=True`` also computes the cost over all ten points after every step, as
    HH19's netbp.m does (its ``savecost``, which its MATLAB timing includes). Returns
    (seconds, the final mean cost per point).
    """
    X, Y = data.hh19()
    costs = np.zeros(steps) if record_cost else None
    rng = np.random.default_rng(5000)
    W2, W3, W4 = (0.5 * rng.standard_normal(s) for s in ((2, 2), (3, 2), (2, 3)))
    b2, b3, b4 = (0.5 * rng.standard_normal((n, 1)) for n in (2, 3, 2))

    def sigma(z):
        return 1.0 / (1.0 + np.exp(-z))

    start = time.perf_counter()
    for i, k in enumerate(rng.integers(0, len(X), steps)):
        x, y = X[k].reshape(2, 1), Y[k].reshape(2, 1)
        a2 = sigma(W2 @ x + b2)
        a3 = sigma(W3 @ a2 + b3)
        a4 = sigma(W4 @ a3 + b4)
        d4 = a4 * (1 - a4) * (a4 - y)
        d3 = a3 * (1 - a3) * (W4.T @ d4)
        d2 = a2 * (1 - a2) * (W3.T @ d3)
        W2 -= 0.05 * d2 @ x.T
        W3 -= 0.05 * d3 @ a2.T
        W4 -= 0.05 * d4 @ a3.T
        b2 -= 0.05 * d2
        b3 -= 0.05 * d3
        b4 -= 0.05 * d4
        if record_cost:  # all ten points at once, as columns: A: (2, 10)
            A = sigma(W4 @ sigma(W3 @ sigma(W2 @ X.T + b2) + b3) + b4)
            costs[i] = 0.5 * np.sum((A - Y.T) ** 2) / len(X)
    seconds = time.perf_counter() - start
    A = sigma(W4 @ sigma(W3 @ sigma(W2 @ X.T + b2) + b3) + b4)
    return seconds, 0.5 * float(np.sum((A - Y.T) ** 2)) / len(X)
