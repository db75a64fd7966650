"""Interactive explorers for the notebooks (ipywidgets).

    from course import data, widgets
    X, y = data.logic_gate("and")
    widgets.perceptron_explorer(X, y)          # sliders for w1, w2, b; the line moves

Each function returns an ipywidgets container (a ``VBox``) that a notebook displays by
leaving it as the cell's value. The plot lives in an ``ipywidgets.Output`` and is redrawn,
as a PNG image, every time a control changes. The figures are made with
``matplotlib.figure.Figure`` directly, not pyplot, so the notebook does not show a second,
static copy at the end of the cell.

For scripts and tests the container also carries its parts as attributes: ``.controls``
(name -> widget), ``.output`` (the Output), ``.status`` (the text line), ``.figure`` and
``.redraw()``. They work without a browser: setting ``slider.value`` redraws at once.

ipywidgets and matplotlib are imported inside the functions, so ``import course.widgets``
does not import them.
"""
import base64
import io

import numpy as np

from course import backend


def _render(fig, output):
    """Replace what ``output`` shows with a PNG of ``fig``.

    Writing the Output's ``outputs`` directly works inside and outside a running kernel
    (``with output:`` only captures inside one) and swaps the image in one step.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"image/png": png, "text/plain": "<Figure>"}},)


def _signed(value):
    """'+ 1.5' or '- 1.5': a term of a sum, written the way one would by hand."""
    return f"{'-' if value < 0 else '+'} {abs(value):.1f}"


def _container(children, controls, output, status, figure, redraw):
    import ipywidgets

    box = ipywidgets.VBox(children)
    box.controls, box.output, box.status, box.figure, box.redraw = (
        controls, output, status, figure, redraw)
    return box


def perceptron_explorer(X, y, w=(1.0, 1.0), b=-1.5):
    """Sliders for w1, w2 and b that move a perceptron's decision line over the points.

    Args:
        X: (N, 2) points (e.g. a truth table from ``data.logic_gate``).
        y: (N,) or (N, 1) 0/1 labels.
        w: the starting weights (w1, w2); b: the starting bias.

    The perceptron outputs step(w1 x1 + w2 x2 + b); the status line counts the points it
    classifies correctly. Returns the VBox (sliders, status line, plot).
    """
    import ipywidgets
    from matplotlib.figure import Figure

    from course import plot

    X = np.asarray(backend.to_numpy(X), dtype=np.float64)
    y = np.asarray(backend.to_numpy(y), dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2 or len(y) != len(X):
        raise ValueError(f"perceptron_explorer needs X: (N, 2) and y: (N,), got "
                         f"X {X.shape} and y {y.shape}")

    def slider(name, value):
        return ipywidgets.FloatSlider(value=float(value), min=-3.0, max=3.0, step=0.1,
                                      description=name, continuous_update=True,
                                      readout_format=".1f")

    controls = {"w1": slider("w1", w[0]), "w2": slider("w2", w[1]), "b": slider("b", b)}
    status = ipywidgets.HTML()
    output = ipywidgets.Output(layout=ipywidgets.Layout(min_height="300px"))
    fig = Figure(figsize=(4.0, 4.0), dpi=80, layout="constrained")
    ax = fig.add_subplot()

    def redraw(change=None):
        w_now = np.array([controls["w1"].value, controls["w2"].value])
        b_now = controls["b"].value
        y_hat = (X @ w_now + b_now > 0).astype(np.float64)
        correct = int(np.sum(y_hat == y))
        status.value = (f"step({w_now[0]:.1f} x1 {_signed(w_now[1])} x2 {_signed(b_now)}): "
                        f"<b>{correct} of {len(y)}</b> points classified correctly")
        ax.clear()
        plot.decision_line(w_now, b_now, X, y, ax=ax)
        _render(fig, output)

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return _container([ipywidgets.HBox(list(controls.values())), status, output],
                      controls, output, status, fig, redraw)


OPTIMIZERS = ("SGD", "momentum", "Adam")


def _optimizer(name, params, lr, momentum):
    from course import optim

    if name == "SGD":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=momentum)
    if name == "Adam":
        return optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def _loss_limits(ax, curves):
    """Log-scale y limits that show every curve, but not a diverging one's last 1e300."""
    values = np.concatenate([np.asarray(c, dtype=np.float64) for c in curves if len(c)] or [[]])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return
    starts = [c[0] for c in curves if len(c) and np.isfinite(c[0]) and c[0] > 0]
    top = min(values.max(), 100 * max(starts)) if starts else values.max()
    ax.set_ylim(values.min() / 1.5, top * 1.5)  # fixing the limits first turns autoscaling off
    ax.set_yscale("log")


def learning_rate_explorer(X, y, make_model, loss_fn, epochs=50, batch_size=None, lr=0.1,
                           optimizer="SGD", momentum=0.9, seed=0, keep=4):
    """Train a fresh model for each learning rate and optimizer, and compare the loss curves.

    Args:
        X: (N, D) inputs; y: targets as ``loss_fn`` expects them.
        make_model: function of no arguments returning a new, identically initialised
            model (e.g. ``lambda: nn.mlp([2, 8, 1], "tanh", rng=0)``), so that runs
            differ only in the optimizer.
        loss_fn: ``(loss, dy) = loss_fn(y_hat, y)``.
        epochs, batch_size, seed: passed to ``train.fit`` (``batch_size=None``: full batch).
        lr: starting learning rate; the slider is logarithmic, from 1e-4 to 10.
        optimizer: starting choice of "SGD", "momentum" (SGD with ``momentum``) or "Adam".
        keep: how many earlier runs stay on the plot, in grey, for comparison.

    A run whose loss becomes NaN or infinite is reported as diverged (its curve stops
    there). Keep the data small: every change retrains from scratch.
    Returns the VBox (slider, dropdown, status line, plot).
    """
    import ipywidgets
    from matplotlib.figure import Figure

    from course import train

    controls = {
        "lr": ipywidgets.FloatLogSlider(value=lr, base=10, min=-4, max=1, step=0.25,
                                        description="lr", continuous_update=False,
                                        readout_format=".4g"),
        "optimizer": ipywidgets.Dropdown(options=list(OPTIMIZERS), value=optimizer,
                                         description="optimizer"),
    }
    status = ipywidgets.HTML()
    output = ipywidgets.Output(layout=ipywidgets.Layout(min_height="280px"))
    fig = Figure(figsize=(6.0, 3.5), dpi=80, layout="constrained")
    ax = fig.add_subplot()
    runs = []  # (label, losses) of every run so far, the newest last

    def run_once():
        model = make_model()
        opt = _optimizer(controls["optimizer"].value, model.parameters(),
                         controls["lr"].value, momentum)
        losses = []

        def record(epoch, history, model):
            losses.append(history["loss"][-1])

        try:
            train.fit(model, loss_fn, opt, X, y, epochs=epochs, batch_size=batch_size,
                      progress=False, seed=seed, callbacks=[record])
            diverged = None
        except train.TrainingDiverged:
            diverged = len(losses) + 1
        return losses, diverged

    def redraw(change=None):
        losses, diverged = run_once()
        label = f"{controls['optimizer'].value}, lr={controls['lr'].value:.4g}"
        runs.append((label, losses))
        del runs[:-(keep + 1)]
        if diverged:
            status.value = (f"{label}: <b>diverged</b> in epoch {diverged} (the loss became "
                            "NaN or infinite); try a smaller learning rate")
        else:
            status.value = f"{label}: final loss <b>{losses[-1]:.4g}</b> after {epochs} epochs"
        ax.clear()
        for old_label, old in runs[:-1]:
            ax.plot(np.arange(1, len(old) + 1), old, color="0.75", lw=1, label=old_label)
        ax.plot(np.arange(1, len(losses) + 1), losses, color="#d62728", lw=2, label=label)
        ax.set(xlabel="epoch", ylabel="training loss", xlim=(0, epochs + 1))
        _loss_limits(ax, [curve for _, curve in runs])
        ax.legend(fontsize=8, loc="upper right")
        _render(fig, output)

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return _container([ipywidgets.HBox(list(controls.values())), status, output],
                      controls, output, status, fig, redraw)
