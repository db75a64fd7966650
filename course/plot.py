"""Pictures for the lessons: decision boundaries, loss curves, digits, confusion matrix, roofline.

Every function draws with matplotlib and returns the ``Figure`` (``confusion_matrix``
returns ``(matrix, Figure)``). Pass ``ax=`` to draw into an existing Axes, for example
one panel of ``plt.subplots(1, 3)``; otherwise a new figure is made.

matplotlib is imported inside the functions, so ``import course.plot`` stays cheap and
works where matplotlib is not installed. Arrays may be NumPy or CuPy; they are copied to
the host before drawing.

In a notebook, assign the result (``fig = plot.loss_curves(...)``): a Figure left as the
cell's value is shown twice, once by matplotlib's inline backend and once as the value.
(A trailing ``;`` hides the value in JupyterLab but not under nbval, which does not record
the cell in IPython's history.)
"""
import numpy as np

from course import backend

CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # tab10


def _axes(ax, figsize=(4.5, 4.0)):
    """(figure, ax): the given Axes and its figure, or a new single-Axes figure."""
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _host(a, dtype=None):
    """A NumPy array on the host, from NumPy, CuPy, a list, a number or an ``nn.Parameter``."""
    if hasattr(a, "grad") and hasattr(a, "data"):  # an nn.Parameter
        a = a.data
    return np.asarray(backend.to_numpy(a), dtype=dtype)


def _labels(y):
    """Class ids (N,) from labels (N,), (N, 1) or one-hot/scores (N, K)."""
    y = _host(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(-1).astype(np.int64)


def _check_points(X, name):
    X = _host(X, np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"{name}: X must have shape (N, 2) (points in the plane), got {X.shape}")
    return X


def _scatter_classes(ax, X, labels):
    """Points coloured by class, one scatter (PathCollection) per class present."""
    for k in np.unique(labels):
        pts = X[labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=60, color=CLASS_COLORS[int(k) % 10],
                   edgecolors="black", linewidths=0.8, label=f"class {int(k)}", zorder=3)


def decision_boundary(predict, X, y, ax=None, resolution=200, title=None):
    """The regions a classifier assigns to each class, with the data points on top.

    Args:
        predict: function mapping points P: (M, 2) to either labels (M,) of ints, or
            scores (M, K) (the class is the argmax), or one score per point (M,) or
            (M, 1) (probabilities in [0, 1] are split at 0.5, other scores at 0).
            P has X's float dtype (float64 for other dtypes) and lives on the active
            backend's device, so ``lambda P: model(P)`` works for a float32 or GPU model.
        X: (N, 2) points; y: (N,) labels 0..K-1, or (N, 1) 0/1 targets, or (N, K) one-hot.
        resolution: the grid is resolution x resolution points over the data's range
            plus a margin.
        ax: an Axes to draw into (default: a new figure); title: an optional title.

    Labels are drawn as coloured regions (``ax.images[0]`` holds the grid of classes);
    single scores as a shaded map with the boundary drawn as a black contour.
    Returns the Figure.
    """
    import matplotlib.colors as mcolors

    dtype = _host(X).dtype
    dtype = dtype if np.issubdtype(dtype, np.floating) else np.float64
    X = _check_points(X, "decision_boundary")
    labels = _labels(y)
    fig, ax = _axes(ax)
    lo, hi = X.min(axis=0), X.max(axis=0)
    margin = 0.15 * np.maximum(hi - lo, 1e-9) + 0.1
    x1 = np.linspace(lo[0] - margin[0], hi[0] + margin[0], resolution)
    x2 = np.linspace(lo[1] - margin[1], hi[1] + margin[1], resolution)
    G1, G2 = np.meshgrid(x1, x2)
    P = np.column_stack([G1.ravel(), G2.ravel()])
    out = _host(predict(backend.asarray(P, dtype=dtype)))
    if out.ndim == 2 and out.shape[1] > 1:
        out = out.argmax(axis=1)
    out = out.reshape(-1)
    if out.shape[0] != P.shape[0]:
        raise ValueError(f"decision_boundary: predict returned {out.shape[0]} values for "
                         f"{P.shape[0]} points; it must map (M, 2) to (M,) or (M, K)")
    extent = (x1[0], x1[-1], x2[0], x2[-1])
    if out.dtype == bool:
        out = out.astype(np.int64)
    # whole numbers are class labels (a step unit's 0.0/1.0 too); anything else is a score
    is_label = np.issubdtype(out.dtype, np.integer) or bool(np.all(out == np.round(out)))
    if is_label:
        n = int(max(out.max(), labels.max())) + 1
        cmap = mcolors.ListedColormap([CLASS_COLORS[k % 10] for k in range(n)])
        ax.imshow(out.reshape(G1.shape).astype(np.int64), origin="lower", extent=extent,
                  cmap=cmap, vmin=-0.5, vmax=n - 0.5, alpha=0.3, aspect="auto",
                  interpolation="nearest")
    else:
        threshold = 0.5 if out.min() >= 0 and out.max() <= 1 else 0.0
        cmap = mcolors.LinearSegmentedColormap.from_list(
            "two_classes", [CLASS_COLORS[0], "white", CLASS_COLORS[1]])
        spread = max(abs(out.max() - threshold), abs(out.min() - threshold), 1e-12)
        ax.imshow(out.reshape(G1.shape), origin="lower", extent=extent, cmap=cmap,
                  vmin=threshold - spread, vmax=threshold + spread, alpha=0.5, aspect="auto")
        ax.contour(G1, G2, out.reshape(G1.shape), levels=[threshold], colors="black",
                   linewidths=1.5)
    _scatter_classes(ax, X, labels)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=extent[:2], ylim=extent[2:])
    if title:
        ax.set_title(title)
    return fig


def decision_line(w, b, X=None, y=None, ax=None):
    """A perceptron's decision line w . x + b = 0, optionally over its data (a truth table).

    Args:
        w: (2,) weights (a (2, 1) column is accepted); b: the bias (a number).
        X: (N, 2) points and y: (N,) or (N, 1) 0/1 labels to draw; by default the
            plot spans [-0.5, 1.5]^2, the neighbourhood of the four corners 00, 01, 10, 11.

    The side where w . x + b > 0 (the perceptron outputs 1) is shaded. The line is
    the Line2D with gid ``"decision_line"``; when w = 0 there is no line to draw.
    Returns the Figure.
    """
    w = _host(w, np.float64).reshape(-1)
    if w.shape != (2,):
        raise ValueError(f"decision_line: w must hold 2 weights, got shape {w.shape}")
    b = float(_host(b, np.float64).reshape(-1)[0])
    fig, ax = _axes(ax, figsize=(4.0, 4.0))
    lo, hi = np.array([-0.5, -0.5]), np.array([1.5, 1.5])
    if X is not None:
        X = _check_points(X, "decision_line")
        lo = np.minimum(lo, X.min(axis=0) - 0.5)
        hi = np.maximum(hi, X.max(axis=0) + 0.5)
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 101), np.linspace(lo[1], hi[1], 101))
    positive = (g1 * w[0] + g2 * w[1] + b) > 0
    ax.contourf(g1, g2, positive.astype(float), levels=[0.5, 1.5], colors=[CLASS_COLORS[1]],
                alpha=0.15)
    if abs(w[1]) > 1e-12:
        xs = np.array([lo[0], hi[0]])
        ax.plot(xs, -(w[0] * xs + b) / w[1], color="black", lw=2, gid="decision_line")
    elif abs(w[0]) > 1e-12:
        ax.plot([-b / w[0]] * 2, [lo[1], hi[1]], color="black", lw=2, gid="decision_line")
    if X is not None:
        labels = np.zeros(len(X), dtype=np.int64) if y is None else _labels(y)
        _scatter_classes(ax, X, labels)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="$x_1$", ylabel="$x_2$",
           aspect="equal")
    ax.set_title(f"${w[0]:.2g}\\,x_1 {w[1]:+.2g}\\,x_2 {b:+.2g} = 0$")
    return fig


def loss_curves(curves, log_scale=False, ax=None):
    """Loss per epoch for several runs on one Axes.

    Args:
        curves: dict name -> list of losses (one per epoch) or a ``train.History``;
            a History's validation loss, if it has one, is drawn dashed in the same colour.
        log_scale: logarithmic y axis (good for losses spanning decades).

    Returns the Figure; one Line2D per curve, labelled by its name.
    """
    fig, ax = _axes(ax, figsize=(5.5, 3.5))
    for i, (name, curve) in enumerate(curves.items()):
        color = CLASS_COLORS[i % 10]
        if hasattr(curve, "metrics"):  # a History
            epochs = list(curve.epoch)
            ax.plot(epochs, curve["loss"], color=color, label=name)
            if "val_loss" in curve:
                ax.plot(epochs, curve["val_loss"], color=color, ls="--",
                        label=f"{name} (validation)")
        else:
            values = _host(curve, np.float64).reshape(-1)
            ax.plot(np.arange(1, len(values) + 1), values, color=color, label=name)
    ax.set(xlabel="epoch", ylabel="loss", yscale="log" if log_scale else "linear")
    if curves:
        ax.legend()
    return fig


def digits(images, labels=None, predictions=None, n_cols=10):
    """A grid of 28 x 28 images, with their labels; wrong predictions in red.

    Args:
        images: (N, 28, 28) or (N, 784) pixels (any range; uint8 or float).
        labels: (N,) true digits, shown above each image.
        predictions: (N,) predicted digits (or (N, 10) scores). A right prediction is
            titled with the digit; a wrong one reads "pred (true)" in red with a red frame.
        n_cols: images per row.

    Returns the Figure (one Axes per image, in order).
    """
    import matplotlib.pyplot as plt

    images = _host(images)
    n = images.shape[0]
    images = images.reshape(n, 28, 28) if images.ndim == 2 else images
    labels = None if labels is None else _labels(labels)
    predictions = None if predictions is None else _labels(predictions)
    n_cols = max(1, min(n_cols, n))
    n_rows = -(-n // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.1 * n_cols, 1.3 * n_rows),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            fig.delaxes(ax)
            continue
        ax.imshow(images[i], cmap="gray_r")
        ax.set(xticks=[], yticks=[])
        wrong = labels is not None and predictions is not None and predictions[i] != labels[i]
        if predictions is not None:
            text = f"{predictions[i]} ({labels[i]})" if wrong else f"{predictions[i]}"
        else:
            text = "" if labels is None else f"{labels[i]}"
        ax.set_title(text, fontsize=9, color="red" if wrong else "black")
        for spine in ax.spines.values():
            spine.set(color="red" if wrong else "0.7", linewidth=2 if wrong else 0.5)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, num_classes=10, ax=None):
    """Count how often class i was predicted as class j, and draw it.

    Args:
        y_true: (N,) labels (or (N, K) one-hot); y_pred: (N,) labels or (N, K) scores.

    Returns (matrix, Figure): matrix (num_classes, num_classes) int64 with
    matrix[i, j] = number of examples of true class i predicted as j, so the
    diagonal holds the right answers and each row sums to that class's count.
    """
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"confusion_matrix: {t.shape[0]} true labels but {p.shape[0]} predictions")
    for name, v in (("y_true", t), ("y_pred", p)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} holds labels outside 0..{num_classes - 1}")
    matrix = np.bincount(t * num_classes + p, minlength=num_classes ** 2)
    matrix = matrix.reshape(num_classes, num_classes).astype(np.int64)
    fig, ax = _axes(ax, figsize=(0.45 * num_classes + 2.0, 0.45 * num_classes + 1.6))
    ax.imshow(matrix, cmap="Blues")
    top = matrix.max() if matrix.size else 0
    for i in range(num_classes):
        for j in range(num_classes):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > top / 2 else "black")
    ticks = np.arange(num_classes)
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true")
    ax.set_title(f"accuracy {np.trace(matrix) / max(matrix.sum(), 1):.2%}")
    return matrix, fig


def weights_as_images(W, shape=(28, 28), n=16):
    """The first layer's weights, one image per hidden unit (what each unit looks for).

    Args:
        W: (D, H) weights of a ``Dense(D, H)`` layer, D = shape[0] * shape[1]; column j
            feeds hidden unit j. PyTorch's (H, D) layout is accepted too.
        shape: (height, width) of one image, default (28, 28).
        n: how many units to show (the first n, at most H), 8 to a row.

    Red is a positive weight, blue negative, on a scale symmetric about 0.
    Returns the Figure (one image per unit).
    """
    import matplotlib.pyplot as plt

    W = _host(W, np.float64)
    D = shape[0] * shape[1]
    if W.ndim != 2 or D not in W.shape:
        raise ValueError(f"weights_as_images: W must have shape ({D}, H) for images of "
                         f"shape {shape}, got {W.shape}")
    columns = W if W.shape[0] == D else W.T
    n = min(n, columns.shape[1])
    n_cols = min(8, n)
    n_rows = -(-n // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.2 * n_cols, 1.2 * n_rows),
                             squeeze=False)
    for j, ax in enumerate(axes.ravel()):
        if j >= n:
            fig.delaxes(ax)
            continue
        image = columns[:, j].reshape(shape)
        scale = max(np.abs(image).max(), 1e-12)
        ax.imshow(image, cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set(xticks=[], yticks=[])
        ax.set_title(f"unit {j}", fontsize=8)
    fig.tight_layout()
    return fig


def roofline(peak_gflops, bandwidth_gbs, points, ax=None):
    """The roofline: attainable GFLOP/s = min(peak, bandwidth x intensity), with measurements.

    Args:
        peak_gflops: the compute roof (GFLOP/s); bandwidth_gbs: memory bandwidth (GB/s).
        points: list of (name, intensity in FLOP/byte, measured GFLOP/s).

    Log-log axes; the roof is the first line (gid ``"roof"``), each point a labelled
    marker. Returns the Figure.
    """
    from course.flops import roofline as attainable

    fig, ax = _axes(ax, figsize=(6.0, 4.0))
    ridge = peak_gflops / bandwidth_gbs
    intensities = [float(q) for _, q, _ in points] + [ridge]
    q = np.logspace(np.log10(min(intensities) / 4), np.log10(max(intensities) * 4), 200)
    ax.plot(q, attainable(q, peak_gflops, bandwidth_gbs), color="black", lw=2, gid="roof",
            label=f"roof: {peak_gflops:.4g} GFLOP/s, {bandwidth_gbs:.4g} GB/s")
    ax.axvline(ridge, color="0.6", ls=":", lw=1)
    for i, (name, intensity, gflops) in enumerate(points):
        ax.loglog([intensity], [gflops], "o", color=CLASS_COLORS[i % 10], label=name)
        ax.annotate(name, (intensity, gflops), textcoords="offset points", xytext=(5, -12),
                    fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="computational intensity (FLOP/byte)",
           ylabel="GFLOP/s")
    ax.legend(fontsize=8, loc="lower right")
    return fig
