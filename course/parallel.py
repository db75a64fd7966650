"""Data-parallel training on MPI: every process (rank) trains on its part of each batch.

    mpiexec -n 4 python train_mnist.py      # the script calls parallel.fit(...)

Each rank holds the whole model and the whole data set. For every global batch
(the same batches, in the same order, as ``train.fit`` draws with the same
seed) a rank takes its own contiguous slice, runs forward and backward on it,
and then the ranks *all-reduce* their gradients: afterwards every rank holds
the mean gradient of the whole batch, takes the same optimizer step, and so
keeps the same weights. With the same seed and batch size the weights end where
single-process ``train.fit`` ends them, up to rounding.

Slices can differ in size (50 examples, batches of 16, 3 ranks). A plain mean
over ranks would then weigh an example of a small slice more than one of a
large slice, so each rank multiplies its slice's mean gradient by the slice
size ``n_r``, the all-reduce sums, and the sum is divided by the batch size B:

    grad = (1 / B) * sum_r n_r * grad_r,    B = sum_r n_r

which is exactly the gradient of the full batch's mean loss.

Layers that look across a batch differ from ``train.fit``: ``BatchNorm1d``
normalises with each rank's slice, and each rank's ``Dropout`` draws its own masks.

Needs mpi4py and an MPI library: ``pip install -e ".[mpi]"`` installs the
mpi4py and mpich wheels. mpi4py is imported only when a function here runs.
"""
import math
import time

import numpy as np

from course import backend, data, train

INSTALL_HINT = ('course.parallel needs mpi4py and an MPI library: install them with '
                'pip install -e ".[mpi]" (the mpi4py and mpich wheels), or pip install mpi4py mpich')


def _mpi():
    """The ``mpi4py.MPI`` module, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return MPI


def broadcast_parameters(model, comm):
    """Copy rank 0's weights into every rank's model, in place (one ``Bcast`` per parameter).

    Each ``p.data`` stays the same array object; its values become rank 0's.
    Arrays that are not NumPy (CuPy) go through a host copy.
    """
    for p in model.parameters():
        buf = np.ascontiguousarray(backend.to_numpy(p.data))
        comm.Bcast(buf, root=0)
        if buf is not p.data:
            p.data[...] = backend.namespace(p.data).asarray(buf)


def allreduce_gradients(model, comm, weight=None, stats=()):
    """Replace every ``p.grad`` with the weighted mean over ranks, in ONE ``Allreduce``.

    Args:
        model: the model; each ``p.grad`` has p's shape, e.g. W: (n_in, n_out).
        comm: an mpi4py communicator.
        weight: this rank's weight, e.g. its slice size n_r; None weighs ranks
            equally. The result is sum_r weight_r * grad_r / sum_r weight_r.
        stats: a few extra numbers, summed over ranks in the same call (``fit``
            sends its loss times n_r this way).

    Returns ``(total_weight, summed_stats)``: sum_r weight_r and an array (len(stats),).

    All gradients, the weight and the stats travel in one flat buffer of the
    gradients' dtype (so a float32 model sums its stats in float32). For arrays
    that are not NumPy (CuPy) the buffer is a host copy: CUDA-aware MPI, which
    would send device memory directly, is out of scope. A rank with nothing to
    contribute passes weight=0 (its gradient is then ignored).
    """
    MPI = _mpi()
    params = model.parameters()
    grads = [backend.to_numpy(p.grad) for p in params]
    dtype = np.result_type(*grads)
    w = 1.0 if weight is None else float(weight)
    buf = np.empty(sum(g.size for g in grads) + 1 + len(stats), dtype=dtype)
    start = 0
    for g in grads:  # buf = [w * grad_1, ..., w * grad_k, w, stats...]
        np.multiply(g.ravel(), w, out=buf[start:start + g.size])
        start += g.size
    buf[start] = w
    buf[start + 1:] = stats
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    total = float(buf[start])
    if total > 0:
        buf[:start] /= total
    start = 0
    for p, g in zip(params, grads):
        chunk = buf[start:start + g.size].reshape(g.shape)
        p.grad[...] = chunk if isinstance(p.grad, np.ndarray) else backend.namespace(p.grad).asarray(chunk)
        start += g.size
    return total, buf[start + 1:].astype(np.float64)


def _rows(a, index):
    """a[index] for index: (n,) NumPy ints; arrays of other namespaces stay on their device."""
    if isinstance(a, np.ndarray):
        return a[index]
    xp = backend.namespace(a)
    return xp.take(a, xp.asarray(index, device=a.device), axis=0)


def _my_part(index, comm):
    """This rank's contiguous part of ``index: (B,)``; sizes differ by at most one, may be empty."""
    return np.array_split(index, comm.Get_size())[comm.Get_rank()]


def _check_same_size(n, comm):
    """Raise ValueError, on every rank, when the ranks hold different numbers of examples."""
    sizes = comm.allgather(n)
    if len(set(sizes)) > 1:
        listed = ", ".join(f"rank {r}: {s}" for r, s in enumerate(sizes))
        raise ValueError(f"parallel.fit needs the full data set on every rank, but the ranks "
                         f"hold different numbers of examples ({listed})")


def _evaluate(model, loss_fn, X, y, comm):
    """Validation loss (and accuracy) of the whole set, each rank evaluating its part."""
    MPI = _mpi()
    part = _my_part(np.arange(X.shape[0]), comm)
    sums = np.zeros(3)  # loss * n, accuracy * n, n
    if part.size:
        scores = train.evaluate(model, loss_fn, _rows(X, part), _rows(y, part))
        sums[:] = scores["loss"] * part.size, scores.get("accuracy", 0.0) * part.size, part.size
    comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
    result = {"loss": sums[0] / sums[2]}
    if train._accuracy_applies(y):
        result["accuracy"] = sums[1] / sums[2]
    return result


def fit(model, loss_fn, optimizer, X, y, epochs=1, batch_size=None, comm=None, seed=0,
        validation=None, progress=True):
    """Data-parallel ``train.fit``: run it on every rank, e.g. under ``mpiexec -n 4``.

    Args:
        model, loss_fn, optimizer, epochs, batch_size, validation, progress, seed:
            as in ``train.fit``. ``batch_size`` is the *global* batch (all ranks
            together); each rank runs forward and backward on about
            batch_size / n_ranks examples.
        X: (N, D) inputs, y: (N,) labels or (N, K) targets: the full set, the
            same on every rank (N is checked).
        comm: an mpi4py communicator; None means ``MPI.COMM_WORLD``.

    Every rank draws the batch order from ``seed`` exactly as ``train.fit``
    does, so with the same seed the global batches and the final weights are
    those of ``train.fit`` (up to rounding). Rank 0's weights are broadcast
    first, so every rank starts from the same model. A rank whose slice is
    empty (a batch smaller than the number of ranks) contributes weight 0.

    Returns a ``train.History`` with ``loss`` (the global mean, weighted by
    slice size), ``accuracy`` when it applies, ``val_loss``/``val_accuracy``
    with validation, ``time``, and per epoch ``compute_time`` (forward,
    backward, step) and ``comm_time`` (seconds in the all-reduce, which
    includes waiting for the slowest rank). Only rank 0 shows a progress bar.

    Raises ImportError (how to install mpi4py) without mpi4py, ValueError when
    ranks hold different N, ``train.TrainingDiverged`` on every rank when the
    global loss becomes NaN or infinite (before that batch's step).
    """
    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    if epochs < 1 or int(epochs) != epochs:
        raise ValueError(f"epochs must be a positive whole number, got {epochs!r}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} examples but y has {y.shape[0]}")
    _check_same_size(X.shape[0], comm)
    X, y = train._on_device([X, y], model.parameters()[0].data)
    if validation is not None:
        validation = train._on_device(validation, model.parameters()[0].data)
    n = X.shape[0]
    index = np.arange(n)  # batches of indices: the same rng calls as train.fit's batches of rows
    size = n if batch_size is None else batch_size
    n_batches = -(-n // size) if size > 0 else 0
    want_accuracy = train._accuracy_applies(y)
    rng = np.random.default_rng(seed)
    history = train.History()
    bar = train._progress_bar(epochs * n_batches, progress and comm.Get_rank() == 0, epochs)
    broadcast_parameters(model, comm)

    def run_epoch(epoch):
        """One pass over the data; returns the epoch's record for the history."""
        start, total, correct = time.perf_counter(), 0.0, 0
        compute, communicate = 0.0, 0.0
        for batch, (batch_index, _) in enumerate(data.batches(index, index, batch_size, rng=rng), 1):
            tic = time.perf_counter()
            part = _my_part(batch_index, comm)
            optimizer.zero_grad()
            loss = 0.0
            if part.size:  # an empty slice adds zero gradient with weight 0
                X_b, y_b = _rows(X, part), _rows(y, part)
                y_hat = model(X_b)
                loss, dy = loss_fn(y_hat, y_b)
                model.backward(dy)
                if want_accuracy:
                    correct += int(train._correct(y_hat, train._labels(y_b)))
            toc = time.perf_counter()
            size, (loss_sum,) = allreduce_gradients(model, comm, weight=part.size,
                                                    stats=(float(loss) * part.size,))
            compute, communicate = compute + toc - tic, communicate + time.perf_counter() - toc
            if not math.isfinite(loss_sum):
                raise train.TrainingDiverged(
                    f"the loss became {loss_sum / size} at epoch {epoch}, batch {batch} of "
                    f"{n_batches}; the learning rate (lr={optimizer.lr}) is probably too large: "
                    "try a smaller one (e.g. a tenth)")
            tic = time.perf_counter()
            optimizer.step()
            compute += time.perf_counter() - tic
            total += loss_sum
            if bar is not None:
                bar.update()
        tic = time.perf_counter()
        correct = comm.allreduce(correct, op=MPI.SUM)
        communicate += time.perf_counter() - tic
        record = {"loss": total / n}
        if want_accuracy:
            record["accuracy"] = correct / n
        if validation is not None:
            record.update({f"val_{k}": v for k, v in _evaluate(model, loss_fn, *validation, comm).items()})
        record.update(time=time.perf_counter() - start, compute_time=compute, comm_time=communicate)
        return record

    train.run_epochs(model, epochs, run_epoch, history, bar)  # as train.fit's epoch loop
    return history
