import numpy as np
import pytest

from course.neuron import ConvergenceWarning, Perceptron

TWO = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
THREE = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=float)


@pytest.mark.parametrize("X, y", [
    (TWO, [0, 0, 0, 1]),                       # AND
    (TWO, [0, 1, 1, 1]),                       # OR
    (TWO, [1, 1, 1, 0]),                       # NAND
    (np.array([[0.0], [1.0]]), [1, 0]),         # NOT
    (THREE, (THREE.sum(axis=1) >= 2).astype(int)),  # majority of three
])
@pytest.mark.parametrize("rng", [None, 3])
def test_learns_linearly_separable_functions(X, y, rng):
    p = Perceptron(X.shape[1], rng=rng)
    assert p.fit(X, y) is True and p.converged
    np.testing.assert_array_equal(p.predict(X), y)
    assert p.errors[-1] == 0


def test_xor_does_not_converge_and_says_so():
    p = Perceptron(2)
    with pytest.warns(ConvergenceWarning, match="did not converge in 50 epochs"):
        assert p.fit(TWO, [0, 1, 1, 0], max_epochs=50) is False
    assert not p.converged and len(p.errors) == 50
    assert (p.predict(TWO) == [0, 1, 1, 0]).sum() < 4


def test_rule_by_hand():
    p = Perceptron(2, lr=0.5)
    with pytest.warns(ConvergenceWarning):
        p.fit(TWO[3:], [1], max_epochs=1)  # one mistake: w += 0.5 * (1 - 0) * [1, 1], b += 0.5
    np.testing.assert_array_equal(p.w, [0.5, 0.5])
    assert p.b == 0.5


def test_bad_input_is_named():
    p = Perceptron(2)
    with pytest.raises(ValueError, match=r"\(N, 2\).*\(4, 3\)"):
        p.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="0 or 1"):
        p.fit(TWO, [0, 2, 1, 0])
    with pytest.raises(ValueError, match="4 rows but y has 3"):
        p.fit(TWO, [0, 1, 1])
    with pytest.raises(ValueError, match="learning rate must be > 0, got 0"):
        Perceptron(2, lr=0)
