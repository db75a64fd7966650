"""The single neuron: Rosenblatt's perceptron and its learning rule.

A perceptron computes a weighted sum and thresholds it:

    y_hat = step(x . w + b),   step(z) = 1 if z > 0 else 0

and learns one example at a time with Rosenblatt's rule:

    w <- w + lr * (y - y_hat) * x
    b <- b + lr * (y - y_hat)

Nothing changes when the prediction is right. If the classes can be separated
by a straight line (a hyperplane), the rule stops making mistakes after finitely
many updates (the perceptron convergence theorem). AND, OR, NAND, NOT and
majority are separable; XOR is not, so on XOR the rule cycles for ever and
``fit`` stops after ``max_epochs`` and says it did not converge.
"""
import warnings

import numpy as np

from course.activations import step


class ConvergenceWarning(UserWarning):
    """The perceptron still made mistakes after its last epoch."""


class Perceptron:
    """A single step-activation neuron trained by the perceptron rule.

    Args:
        n_inputs: number of inputs D.
        lr: learning rate (> 0), default 1.0.
        rng: ``None`` starts from w = 0, b = 0; a seed or ``numpy.random.Generator``
            draws w and b uniformly from [-0.5, 0.5).

    Attributes: ``w`` (D,) float64, ``b`` (float), ``errors`` (list: mistakes per
    epoch of the last fit), ``converged`` (True when an epoch made no mistake).
    """

    def __init__(self, n_inputs, lr=1.0, rng=None):
        if int(n_inputs) < 1:
            raise ValueError(f"Perceptron needs n_inputs >= 1, got {n_inputs}")
        if not lr > 0:
            raise ValueError(f"Perceptron learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        if rng is None:
            self.w, self.b = np.zeros(int(n_inputs)), 0.0
        else:
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            self.w, self.b = gen.uniform(-0.5, 0.5, int(n_inputs)), float(gen.uniform(-0.5, 0.5))
        self.errors, self.converged = [], False

    def _check_X(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.w.shape[0]:
            raise ValueError(
                f"Perceptron({self.w.shape[0]} inputs) expects X of shape (N, {self.w.shape[0]}), "
                f"got {X.shape}"
            )
        return X

    def net_input(self, X):
        """Weighted sums.  X: (N, D) -> z: (N,)."""
        return self._check_X(X) @ self.w + self.b

    def predict(self, X):
        """Step of the net input.  X: (N, D) -> y_hat: (N,) of 0.0 and 1.0 (float64)."""
        return step(self.net_input(X))

    def fit(self, X, y, max_epochs=100):
        """Train with the perceptron rule, one example at a time, in order.

        X: (N, D); y: (N,) or (N, 1) of 0/1. Continues from the current ``w`` and
        ``b``. Stops after the first epoch with no mistake, or after ``max_epochs``
        (then warns with ``ConvergenceWarning``). Fills ``errors`` and ``converged``;
        returns True if it converged, False otherwise.
        """
        X = self._check_X(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"Perceptron.fit: X has {X.shape[0]} rows but y has {y.shape[0]} labels"
            )
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("Perceptron.fit: labels must be 0 or 1")
        self.errors, self.converged = [], False
        for _ in range(max_epochs):
            mistakes = 0
            for x_i, y_i in zip(X, y):
                error = y_i - float(x_i @ self.w + self.b > 0)
                if error:
                    self.w += self.lr * error * x_i
                    self.b += self.lr * error
                    mistakes += 1
            self.errors.append(mistakes)
            if mistakes == 0:
                self.converged = True
                return True
        warnings.warn(
            f"the perceptron did not converge in {max_epochs} epochs ({self.errors[-1]} "
            "mistakes in the last one); if the classes cannot be separated by a line, "
            "as in XOR, it never will",
            ConvergenceWarning,
            stacklevel=2,
        )
        return False
