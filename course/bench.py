"""Benchmarks against peers, run by ``course bench`` (and ``benchmarks/run.py``).

1. MNIST: the same 784-256-128-10 ReLU network, softmax cross-entropy, Adam
   (lr 1e-3), batches of 128, float32, trained with ``course``, PyTorch on the
   CPU and scikit-learn's ``MLPClassifier``. Epochs alternate between the three
   so that each sees the same machine load; we report the median seconds per
   epoch, the ratio to PyTorch, and test accuracy after the last epoch.
2. Seed 002 (Higham & Higham 2019): the 2-2-3-2 sigmoid network on ten points,
   per-sample SGD with eta = 0.05 for 10^6 steps (148.6 s in MATLAB per the
   seed), with ``course.train.fit``, with a plain NumPy loop and with PyTorch.

PyTorch and scikit-learn are optional (``pip install -e ".[bench]"``); a peer
that is not installed is left out of the table.
"""
import statistics
import time

import numpy as np

from course import data, losses, nn, optim, train

SIZES = [784, 256, 128, 10]


def _course_trainer(X, y):
    model = nn.mlp(SIZES, rng=0, dtype=np.float32)
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def epoch(seed):
        train.fit(model, losses.softmax_cross_entropy, opt, X, y, epochs=1, batch_size=128,
                  progress=False, seed=seed, metrics=())

    def accuracy(X_test, y_test):
        return train.evaluate(model, losses.softmax_cross_entropy, X_test, y_test)["accuracy"]

    return epoch, accuracy


def _torch_trainer(X, y):
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers += [torch.nn.Linear(n_in, n_out)] + ([torch.nn.ReLU()] if i < len(SIZES) - 2 else [])
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def epoch(seed):
        order = torch.randperm(len(X_t), generator=torch.Generator().manual_seed(seed))
        for start in range(0, len(X_t), 128):
            idx = order[start:start + 128]
            opt.zero_grad()
            loss_fn(model(X_t[idx]), y_t[idx]).backward()
            opt.step()

    def accuracy(X_test, y_test):
        with torch.no_grad():
            return float((model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean())

    return epoch, accuracy


def _sklearn_trainer(X, y):
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=tuple(SIZES[1:-1]), solver="adam", alpha=0.0,
                          learning_rate_init=1e-3, batch_size=128, random_state=0)
    classes = np.arange(10)

    def epoch(seed):
        model.partial_fit(X, y, classes=classes)

    def accuracy(X_test, y_test):
        return float((model.predict(X_test) == y_test).mean())

    return epoch, accuracy


def mnist(epochs=5, data_dir=None, peers=("course", "pytorch", "scikit-learn")):
    """Time ``epochs`` epochs of each peer, alternating; returns a list of result dicts."""
    (X_train, y_train), (X_test, y_test) = data.load_mnist(data_dir)
    X_train, y_train = data.prepare(X_train, y_train)
    X_test, y_test = data.prepare(X_test, y_test)
    makers = {"course": _course_trainer, "pytorch": _torch_trainer,
              "scikit-learn": _sklearn_trainer}
    trainers = {}
    for name in peers:
        try:
            trainers[name] = makers[name](X_train, y_train)
        except ImportError:
            print(f"({name} is not installed: left out; pip install -e \".[bench]\")")
    times = {name: [] for name in trainers}
    for e in range(epochs):
        for name, (epoch, _) in trainers.items():
            start = time.perf_counter()
            epoch(e)
            times[name].append(time.perf_counter() - start)
    return [{"peer": name, "seconds_per_epoch": statistics.median(times[name]),
             "epoch_times": times[name], "test_accuracy": accuracy(X_test, y_test)}
            for name, (_, accuracy) in trainers.items()]


def hh19_course(steps=10**6):
    """Seconds for ``steps`` per-sample SGD steps of seed 002's network with ``train.fit``."""
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
    """The same experiment as a straightforward NumPy loop with column vectors, as in the seed.

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


def main(quick=False, data_dir=None):
    """Run both benchmarks and print tables; returns 0."""
    epochs, steps = (2, 10**5) if quick else (5, 10**6)
    print(f"MNIST 784-256-128-10 ReLU, Adam lr 1e-3, batch 128, float32, {epochs} epochs "
          "(median s/epoch; epochs alternate between peers)", flush=True)
    results = mnist(epochs, data_dir)
    reference = next((r["seconds_per_epoch"] for r in results if r["peer"] == "pytorch"), None)
    print(f"| peer | s/epoch | ratio to PyTorch | test accuracy |\n|---|---|---|---|")
    for r in results:
        ratio = f"{r['seconds_per_epoch'] / reference:.2f}" if reference else "n/a"
        print(f"| {r['peer']} | {r['seconds_per_epoch']:.2f} | {ratio} | {r['test_accuracy']:.2%} |")
    print(f"\nSeed 002 (HH19): {steps:,} per-sample SGD steps of the 2-2-3-2 sigmoid network "
          "(rows appear as they finish)")
    print("| implementation | seconds | ratio to plain NumPy |\n|---|---|---|", flush=True)
    plain_s, _ = hh19_plain_numpy(steps)
    print(f"| plain NumPy loop | {plain_s:.1f} | 1.00 |", flush=True)
    course_s, cost = hh19_course(steps)
    print(f"| course.train.fit | {course_s:.1f} | {course_s / plain_s:.2f} |", flush=True)
    recording_s, _ = hh19_plain_numpy(steps, record_cost=True)
    print(f"| plain NumPy loop, cost of all ten points after every step (netbp.m's savecost) | "
          f"{recording_s:.1f} | {recording_s / plain_s:.2f} |", flush=True)
    torch_steps = steps // 10  # PyTorch is slow at this size: time a tenth, scale up
    try:
        torch_s = hh19_torch(torch_steps)[0] * steps / torch_steps
        print(f"| PyTorch, 1 thread (timed over {torch_steps:,} steps, scaled) | {torch_s:.1f} | "
              f"{torch_s / plain_s:.2f} |")
    except ImportError:
        print("| PyTorch | not installed | |")
    print(f"| MATLAB (the seed's figure, 10^6 steps) | 148.6 | |")
    print(f"(final mean cost per point with course: {cost:.2e})")
    return 0
