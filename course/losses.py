"""Loss functions. Each returns ``(loss, dy)``: the loss as a Python float and
its gradient with respect to the prediction, an array shaped like the prediction.

| loss | formula | reduction |
| --- | --- | --- |
| ``half_sse(y_hat, y)`` | 1/2 sum (y_hat - y)^2 | summed (E of lessons 02-05) |
| ``mse(y_hat, y)`` | mean (y_hat - y)^2 | mean over all entries |
| ``binary_cross_entropy(p, y)`` | -[y log p + (1 - y) log(1 - p)] | mean over the batch |
| ``softmax_cross_entropy(logits, labels)`` | -log softmax(logits)[label] | mean over the batch |

Inputs a loss cannot mean anything for raise an error that says what to change:
shapes that differ, an empty batch, probabilities outside [0, 1], target rows
that are not probability distributions, class numbers out of range. A NaN in
the prediction is not an error: the loss is then NaN, which is how
``train.fit`` notices that a run diverged.

Checking the *values* of the targets (and of binary_cross_entropy's p) costs
no transfer from the GPU of its own: a batch that fails the check turns the
loss into NaN on the device, and only when the loss comes back NaN are the
inputs looked at again, to say what is wrong (see ``_loss_value``). So a
training step copies one number to the host, the loss, whatever the checks.

L2 regularisation (weight decay) lives in the optimizer, not here.
"""
import math

import numpy as np

from course import activations
from course.backend import namespace

_FLOAT64 = np.dtype(np.float64)


def _check_same_shape(name, y_hat, y):
    if y_hat.shape != y.shape:  # array-API shapes are tuples
        raise ValueError(
            f"{name}: prediction has shape {tuple(y_hat.shape)} but target has shape "
            f"{tuple(y.shape)}; they must match (reshape y, e.g. y.reshape(-1, 1))"
        )


def _check_not_empty(name, what, x):
    """Raise ValueError if ``x`` (any shape) has no entries: a mean over nothing is undefined."""
    if any(n == 0 for n in x.shape):
        raise ValueError(
            f"{name}: got an empty batch ({what} of shape {tuple(x.shape)}, no entries); a loss "
            "needs at least one example with at least one output (check how the batch was sliced)"
        )


def _flagged(x, bad):
    """How many entries ``bad`` flags, and the first flagged entry of ``x`` as a float.

    x, bad: the same shape; ``bad`` is boolean. Returns (0, None) when none is flagged.
    """
    xp = namespace(x)
    if not bool(xp.any(bad)):  # the usual case, checked first: it is the cheapest
        return 0, None
    bad = xp.reshape(bad, (-1,))
    first = int(xp.argmax(xp.astype(bad, xp.int8)))  # argmax gives the first True
    return int(xp.sum(xp.astype(bad, xp.int64))), float(xp.reshape(x, (-1,))[first])


def _loss_value(loss, valid, explain):
    """The loss as a Python float, after the check ``valid``: the one transfer to the host.

    loss: a 0-d array. valid: a 0-d boolean array, False when the inputs fail a
    check. An invalid batch makes the loss NaN on the device; only then is
    ``explain()`` called, which raises an error naming what is wrong, or returns
    when the NaN came from the prediction itself (a diverged run).
    """
    xp = namespace(loss)
    value = float(xp.where(valid, loss, xp.full_like(loss, math.nan)))
    if math.isnan(value):
        explain()
    return value


def _sum_of_squares(diff):
    """sum(diff^2) as a Python float.  diff: any shape.

    A float64 NumPy array is summed as the dot product of the flattened array with
    itself (||e||^2 = e . e), one BLAS call: on the two or three numbers of a
    per-sample SGD step it takes a third of the time of ``sum(diff * diff)``,
    whose reduction machinery costs about a microsecond whatever the size. The two
    can differ in the last bit (BLAS may fuse a multiply with an add). Other arrays,
    float32 among them, keep the sum: NumPy's pairwise summation stays accurate
    over millions of float32 entries, and a float32 dot product does not.
    """
    if type(diff) is np.ndarray and diff.dtype is _FLOAT64:
        flat = diff.reshape(-1)
        return float(flat.dot(flat))
    return float(namespace(diff).sum(diff * diff))


def half_sse(y_hat, y):
    """Half the summed squared error, E = 1/2 sum (y_hat - y)^2.

    y_hat, y: same shape, e.g. (N, K), at least one entry.  Returns (E, dy): E a
    float and dy = y_hat - y, shaped like y_hat.
    """
    _check_same_shape("half_sse", y_hat, y)
    _check_not_empty("half_sse", "prediction", y_hat)
    diff = y_hat - y
    return 0.5 * _sum_of_squares(diff), diff


def mse(y_hat, y):
    """Mean squared error over all entries, mean (y_hat - y)^2.

    y_hat, y: same shape (N, K), at least one entry.  Returns (loss, dy): loss a
    float and dy = 2 (y_hat - y) / (N K), shape (N, K).
    """
    _check_same_shape("mse", y_hat, y)
    _check_not_empty("mse", "prediction", y_hat)
    diff = y_hat - y
    size = 1
    for n in diff.shape:
        size *= n
    return _sum_of_squares(diff) / size, diff * (2.0 / size)


def _check_in_unit_interval(name, what, x, hint):
    """Raise ValueError naming how many entries of ``x`` (any shape) lie outside [0, 1], and the first."""
    count, first = _flagged(x, (x < 0) | (x > 1))
    if count:
        raise ValueError(
            f"{name}: every entry of {what} must lie in [0, 1], but {count} "
            f"{'entry does' if count == 1 else 'entries do'} not (the first is {first}); {hint}"
        )


def binary_cross_entropy(p, y):
    """Binary cross-entropy of probabilities ``p`` against targets ``y``.

    p: (N,) or (N, 1) (or (N, K) for K independent labels), floating point, every
    entry in [0, 1], e.g. the output of a sigmoid.  y: same shape, every entry in
    [0, 1]: 0/1 labels (integers and booleans are converted to p's dtype) or soft
    targets.  Returns (loss, dp): the loss (a float) summed over labels and
    averaged over the N rows, and dp = (p - y) / (p (1 - p)) / N, shaped like p.

    p = 0 or 1 exactly is allowed: ``p`` is clipped to [eps, 1 - eps] (eps the
    dtype's machine epsilon), so that a confident wrong answer gives a large
    finite loss instead of inf or NaN. Entries outside [0, 1] (logits passed by
    mistake, say) raise ValueError, integer ``p`` raises TypeError, an empty batch
    ValueError. A NaN in ``p`` gives a NaN loss.
    """
    name = "binary_cross_entropy"
    xp = namespace(p)
    if not xp.isdtype(p.dtype, "real floating"):
        raise TypeError(
            f"{name}: p must hold floating-point probabilities (e.g. the output of a "
            f"sigmoid), got dtype {p.dtype}; the targets go second: binary_cross_entropy(p, y)"
        )
    _check_same_shape(name, p, y)
    if p.ndim == 0:
        raise ValueError(f"{name}: p must be a batch of shape (N,) or (N, K), got a single number")
    _check_not_empty(name, "p", p)
    if y.dtype != p.dtype:
        y = xp.astype(y, p.dtype)

    def explain():
        _check_in_unit_interval(name, "p", p, "pass probabilities, e.g. sigmoid(z), not the scores z")
        _check_in_unit_interval(name, "y", y, "targets are 0/1 labels or probabilities")

    valid = xp.all((p >= 0) & (p <= 1) & (y >= 0) & (y <= 1))  # False for a NaN too
    eps = float(xp.finfo(p.dtype).eps)
    q = xp.clip(p, eps, 1.0 - eps)  # p, with 0 and 1 moved in by eps
    n = p.shape[0]
    loss = -xp.sum(y * xp.log(q) + (1.0 - y) * xp.log(1.0 - q)) / n
    return _loss_value(loss, valid, explain), (q - y) / (q * (1.0 - q) * n)


def _check_label_dtype(labels):
    """Raise unless labels (N,) hold integers or floats (whole numbers are checked with the values)."""
    xp = namespace(labels)
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must have shape (N,), got {tuple(labels.shape)}")
    if not (xp.isdtype(labels.dtype, "real floating") or xp.isdtype(labels.dtype, "integral")):
        raise TypeError(f"labels must be integer class numbers, got dtype {labels.dtype}")


def _check_label_values(labels, num_classes):
    """Raise ValueError naming the first label (N,) that is not a whole number in [0, num_classes)."""
    xp = namespace(labels)
    if xp.isdtype(labels.dtype, "real floating"):
        count, first = _flagged(labels, labels != xp.round(labels))  # NaN counts too
        if count:
            raise ValueError(f"labels must be whole class numbers, got {first}")
    count, first = _flagged(labels, (labels < 0) | (labels >= num_classes))
    if count:
        raise ValueError(
            f"label {int(first)} is out of range for {num_classes} classes "
            f"(labels must be 0..{num_classes - 1})"
        )


def _one_hot_rows(labels, num_classes, dtype):
    """Rows (N, num_classes) with a 1 at each label (N,); a label that is no class gives a row of 0s."""
    xp = namespace(labels)
    classes = xp.arange(num_classes, dtype=labels.dtype, device=labels.device)
    return xp.astype(labels[:, None] == classes[None, :], dtype)


def one_hot(labels, num_classes, dtype=None):
    """Integer labels (N,) in [0, num_classes) -> one-hot rows (N, num_classes) of ``dtype``.

    labels: (N,) integers (whole-number floats are accepted too).  ``dtype``
    defaults to float64. The rows are made in the labels' namespace and on their
    device. A label outside the range raises ValueError naming it.
    """
    _check_label_dtype(labels)
    _check_label_values(labels, num_classes)
    xp = namespace(labels)
    return _one_hot_rows(labels, num_classes, xp.float64 if dtype is None else dtype)


def _bad_rows(Y):
    """For target rows Y (N, K): (negative, sums, bad), each (N,); ``bad`` marks rows that are
    not probability distributions.

    A row must have no negative entry and sum to 1, exactly for integer targets,
    within sqrt(eps) of the dtype for floating-point ones (1.5e-8 in float64,
    3.5e-4 in float32): room for rounding, none for a real mistake.
    """
    xp = namespace(Y)
    tol = float(xp.finfo(Y.dtype).eps) ** 0.5 if xp.isdtype(Y.dtype, "real floating") else 0
    if not xp.isdtype(Y.dtype, "numeric"):
        Y = xp.astype(Y, xp.int8)  # booleans
    negative = xp.any(Y < 0, axis=1)
    sums = xp.sum(Y, axis=1)
    return negative, sums, negative | ~(xp.abs(sums - 1) <= tol)  # so that a NaN sum is bad too


def _check_distributions(name, Y):
    """Raise ValueError naming the first row of Y (N, K) that is not a probability distribution."""
    xp = namespace(Y)
    negative, sums, bad = _bad_rows(Y)
    if bool(xp.any(bad)):
        i = int(xp.argmax(xp.astype(bad, xp.int8)))
        what = (f"has a negative entry, {float(xp.min(Y[i, :]))}" if bool(negative[i])
                else f"sums to {float(sums[i])}, not 1")
        raise ValueError(
            f"{name}: target row {i} is not a probability distribution: it {what}. "
            "Targets of shape (N, K) must be one-hot rows or probabilities >= 0 summing "
            "to 1 (the gradient softmax - Y assumes it); pass class numbers as (N,)"
        )


def softmax_cross_entropy(logits, labels):
    """Softmax followed by cross-entropy, fused so that it is stable and cheap.

    logits: (N, K) floating-point scores.  labels, either
    - (N,) class numbers in [0, K) (integers, or whole-number floats), or
    - (N, K) target rows Y: one-hot rows (integers, booleans or floats) or any
      probability distributions (soft labels, label smoothing): no negative entry,
      each row summing to 1 (within sqrt(eps) of their dtype). Any other row raises
      ValueError naming it, because the gradient below is right only for such rows.
    Targets are converted to the logits' dtype. Returns (loss, dlogits): the loss
    -sum_k Y_nk log softmax(logits)_nk averaged over the batch (a float), and
    dlogits = (softmax(logits) - Y) / N, shape (N, K).

    The log-softmax works with the distance of each logit below its row's maximum
    (``activations.log_softmax``), which never overflows: logits [1e308, -1e308, 0]
    in float64 (or 3e38 in float32, 6e4 in float16) give no warning and a finite
    gradient. Their loss is 0 for class 0 and 1e308 for class 2; for class 1 it is
    2e308, beyond the largest float64, so the loss is inf, as in PyTorch.
    """
    name = "softmax_cross_entropy"
    xp = namespace(logits)
    if logits.ndim != 2:
        raise ValueError(f"{name}: logits must be (N, K), got shape {tuple(logits.shape)}")
    if not xp.isdtype(logits.dtype, "real floating"):
        raise TypeError(f"{name}: logits must be floating point, got dtype {logits.dtype}")
    n, k = logits.shape
    _check_not_empty(name, "logits", logits)
    if labels.ndim == 1:
        if labels.shape[0] != n:
            raise ValueError(f"{name}: {n} rows of logits but {labels.shape[0]} labels")
        try:
            _check_label_dtype(labels)
        except TypeError as exc:
            raise TypeError(f"{name}: {exc}") from None
        Y = _one_hot_rows(labels, k, logits.dtype)
        valid = xp.all(xp.sum(Y, axis=1) == 1)  # a label that is not a class has a row of 0s

        def explain():
            try:
                _check_label_values(labels, k)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
    else:
        _check_same_shape(name, logits, labels)
        valid = ~xp.any(_bad_rows(labels)[2])
        Y = labels if labels.dtype == logits.dtype else xp.astype(labels, logits.dtype)

        def explain():
            _check_distributions(name, labels)
    log_p = activations.log_softmax(logits, axis=1)
    probabilities = xp.exp(log_p)  # softmax(logits)
    # Cross-entropy counts 0 log 0 as 0; leaving it to Y * log_p would give 0 * (-inf)
    # = NaN where a class has target 0 and a logit far below the maximum.
    log_p = xp.where(Y > 0, log_p, xp.zeros_like(log_p))
    # Dividing by N before summing keeps the mean finite when the sum would overflow.
    loss = -xp.sum(Y * log_p / n)
    return _loss_value(loss, valid, explain), (probabilities - Y) / n
