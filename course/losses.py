"""Loss functions. Each returns ``(loss, dy)``: the loss as a Python float and
its gradient with respect to the prediction, an array shaped like the prediction.

| loss | formula | reduction |
| --- | --- | --- |
| ``half_sse(y_hat, y)`` | 1/2 sum (y_hat - y)^2 | summed (the seeds' E) |
| ``mse(y_hat, y)`` | mean (y_hat - y)^2 | mean over all entries |
| ``binary_cross_entropy(p, y)`` | -[y log p + (1 - y) log(1 - p)] | mean over the batch |
| ``softmax_cross_entropy(logits, labels)`` | -log softmax(logits)[label] | mean over the batch |

L2 regularisation (weight decay) lives in the optimizer, not here.
"""
import numpy as np

from course.backend import namespace

_FLOAT64 = np.dtype(np.float64)


def _check_same_shape(name, y_hat, y):
    if y_hat.shape != y.shape:  # array-API shapes are tuples
        raise ValueError(
            f"{name}: prediction has shape {tuple(y_hat.shape)} but target has shape "
            f"{tuple(y.shape)}; they must match (reshape y, e.g. y.reshape(-1, 1))"
        )


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

    y_hat, y: same shape, e.g. (N, K).  Returns (E, dy): E a float and
    dy = y_hat - y, shaped like y_hat.
    """
    _check_same_shape("half_sse", y_hat, y)
    diff = y_hat - y
    return 0.5 * _sum_of_squares(diff), diff


def mse(y_hat, y):
    """Mean squared error over all entries, mean (y_hat - y)^2.

    y_hat, y: same shape (N, K).  Returns (loss, dy): loss a float and
    dy = 2 (y_hat - y) / (N K), shape (N, K).
    """
    _check_same_shape("mse", y_hat, y)
    diff = y_hat - y
    size = 1
    for n in diff.shape:
        size *= n
    return _sum_of_squares(diff) / size, diff * (2.0 / size)


def binary_cross_entropy(p, y):
    """Binary cross-entropy of probabilities ``p`` against 0/1 targets ``y``.

    p, y: same shape, (N,) or (N, 1) (or (N, K) for K independent labels).
    Returns (loss, dp): the loss (a float) summed over labels and averaged over
    the N rows, and dp = (p - y) / (p (1 - p)) / N, shaped like p.

    ``p`` is clipped to [eps, 1 - eps] (eps the dtype's machine epsilon) so that
    p = 0 or 1 gives a large finite loss instead of inf or NaN.
    """
    _check_same_shape("binary_cross_entropy", p, y)
    xp = namespace(p)
    eps = float(xp.finfo(p.dtype).eps)
    p = xp.clip(p, eps, 1.0 - eps)
    n = p.shape[0]
    loss = -xp.sum(y * xp.log(p) + (1.0 - y) * xp.log(1.0 - p)) / n
    return float(loss), (p - y) / (p * (1.0 - p) * n)


def one_hot(labels, num_classes, dtype=None):
    """Integer labels (N,) in [0, num_classes) -> one-hot rows (N, num_classes) of ``dtype``.

    ``dtype`` defaults to float64. A label outside the range raises ValueError naming it.
    """
    xp = namespace(labels)
    bad = (labels < 0) | (labels >= num_classes)
    if bool(xp.any(bad)):
        first = labels[xp.argmax(xp.astype(bad, xp.int8))]
        raise ValueError(
            f"label {int(first)} is out of range for {num_classes} classes "
            f"(labels must be 0..{num_classes - 1})"
        )
    dtype = xp.float64 if dtype is None else dtype
    return xp.astype(labels[:, None] == xp.arange(num_classes)[None, :], dtype)


def softmax_cross_entropy(logits, labels):
    """Softmax followed by cross-entropy, fused so that it is stable and cheap.

    logits: (N, K) scores.  labels: integer class ids (N,) in [0, K), or one-hot
    (or any probability rows) (N, K).  Returns (loss, dlogits) with the loss
    averaged over the batch and dlogits = (softmax(logits) - Y) / N, shape (N, K).

    Uses log softmax = z - max - log(sum exp(z - max)), so logits of 1e4 are fine.
    """
    xp = namespace(logits)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (N, K), got shape {tuple(logits.shape)}")
    n, k = logits.shape
    if labels.ndim == 1:
        if labels.shape[0] != n:
            raise ValueError(
                f"softmax_cross_entropy: {n} rows of logits but {labels.shape[0]} labels"
            )
        if xp.isdtype(labels.dtype, "real floating") and bool(xp.any(labels != xp.round(labels))):
            raise ValueError("softmax_cross_entropy: 1-D labels must be whole class numbers")
        try:
            Y = one_hot(labels, k, dtype=logits.dtype)
        except ValueError as exc:
            raise ValueError(f"softmax_cross_entropy: {exc}") from None
    else:
        _check_same_shape("softmax_cross_entropy", logits, labels)
        Y = labels
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    exp = xp.exp(shifted)
    total = xp.sum(exp, axis=1, keepdims=True)
    log_probs = shifted - xp.log(total)
    loss = -xp.sum(Y * log_probs) / n
    return float(loss), (exp / total - Y) / n
