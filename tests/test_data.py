"""Tests for course.data: toy sets, mini-batches (on any array-API namespace), prepare,
and the MNIST names it re-exports from course.mnist (tested in test_mnist.py)."""
import tracemalloc

import numpy as np
import pytest

from course import data, mnist

# ------------------------------------------------------------------ toy sets

@pytest.mark.parametrize("name, outputs", [
    ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]), ("nand", [1, 1, 1, 0]),
    ("nor", [1, 0, 0, 0]), ("xor", [0, 1, 1, 0]), ("XNOR", [1, 0, 0, 1]),
])
def test_logic_gate_tables(name, outputs):
    X, y = data.logic_gate(name)
    assert X.shape == (4, 2) and y.shape == (4, 1)
    assert X.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y[:, 0], outputs)


def test_logic_gate_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="xor") as info:
        data.logic_gate("implies")
    assert "'implies'" in str(info.value) and "nand" in str(info.value)


def test_hh19_matches_the_paper():
    X, y = data.hh19()
    assert X.shape == (10, 2) and y.shape == (10, 2)
    x1 = [0.1, 0.3, 0.1, 0.6, 0.4, 0.6, 0.5, 0.9, 0.4, 0.7]
    x2 = [0.1, 0.4, 0.5, 0.9, 0.2, 0.3, 0.6, 0.2, 0.4, 0.6]
    np.testing.assert_array_equal(X, np.column_stack([x1, x2]))
    np.testing.assert_array_equal(y[:5], [[1, 0]] * 5)
    np.testing.assert_array_equal(y[5:], [[0, 1]] * 5)
    _, labels = data.hh19(one_hot=False)
    np.testing.assert_array_equal(labels, [0] * 5 + [1] * 5)


@pytest.mark.parametrize(
    "make", [data.spirals, data.moons, data.circles, data.blobs])
def test_generators_are_reproducible_and_balanced(make):
    X, y = make(n=201, rng=7)
    assert X.shape == (201, 2) and X.dtype == np.float64 and y.shape == (201,)
    X2, y2 = make(n=201, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, make(n=201, rng=8)[0])
    counts = np.bincount(y)
    assert counts.max() - counts.min() <= 1 and len(counts) >= 2


def test_circles_radii_and_blob_centres():
    X, y = data.circles(n=400, noise=0.0, factor=0.3)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0)
    np.testing.assert_allclose(radius[y == 1], 0.3)
    centers = np.array([[-4.0, 0.0], [4.0, 1.0]])
    X, y = data.blobs(n=2000, centers=centers, std=0.5, rng=1)
    for k in range(2):
        mean = X[y == k].mean(axis=0)
        np.testing.assert_allclose(mean, centers[k], atol=0.1)
    with pytest.raises(ValueError, match="factor"):
        data.circles(factor=1.5)


# -------------------------------------------------------------- mini-batches

def test_batches_cover_every_example_once_with_a_short_last_batch():
    X = np.arange(23 * 2).reshape(23, 2)
    y = np.arange(23)
    got = list(data.batches(X, y, 5, rng=0))
    assert [len(b) for b, _ in got] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in got])
    assert sorted(seen) == list(range(23)) and list(seen) != list(range(23))
    for Xb, yb in got:
        np.testing.assert_array_equal(Xb, X[yb])
    again = np.concatenate([yb for _, yb in data.batches(X, y, 5, rng=0)])
    np.testing.assert_array_equal(seen, again)


def test_batches_in_order_are_views_and_none_is_full_batch():
    X, y = np.zeros((10, 3)), np.arange(10)
    got = list(data.batches(X, y, 4, shuffle=False))
    assert [list(yb) for _, yb in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(np.shares_memory(Xb, X) for Xb, _ in got)
    (Xb, yb), = data.batches(X, y, None)
    assert Xb.shape == (10, 3) and sorted(yb) == list(range(10))


def test_per_sample_batches_are_one_row_views_in_shuffled_order():
    X, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    got = list(data.batches(X, y, 1, rng=3))
    assert [Xb.shape for Xb, _ in got] == [(1, 2)] * 6
    assert all(np.shares_memory(Xb, X) for Xb, _ in got)
    order = np.random.default_rng(3).permutation(6)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in got]), order)


@pytest.mark.parametrize("device", [None, "device1"])
@pytest.mark.parametrize("batch_size", [5, 1])
def test_batches_stay_in_the_namespace_and_on_the_device(xps, device, batch_size):
    X, y = np.arange(23 * 2, dtype=np.float64).reshape(23, 2), np.arange(23)
    dev = xps.Device(device) if device else None
    Xs, ys = xps.asarray(X, device=dev), xps.asarray(y, device=dev)
    expected = list(data.batches(X, y, batch_size, rng=0))  # NumPy, same seed
    got = list(data.batches(Xs, ys, batch_size, rng=0))
    assert len(got) == len(expected) == -(-23 // batch_size)
    cpu = xps.asarray(0).device  # the default device, which NumPy may read
    for (Xb, yb), (X_np, y_np) in zip(got, expected):
        for b in (Xb, yb):
            assert type(b) is type(Xs) and b.device == Xs.device
        np.testing.assert_array_equal(np.asarray(Xb.to_device(cpu)), X_np)
        np.testing.assert_array_equal(np.asarray(yb.to_device(cpu)), y_np)
    assert got[-1][0].shape == ((3, 2) if batch_size == 5 else (1, 2))  # 23 = 4 x 5 + 3


def test_batches_in_order_on_another_namespace_end_with_the_rest(xps):
    Xs, ys = xps.reshape(xps.arange(20.0), (10, 2)), xps.arange(10)
    got = list(data.batches(Xs, ys, 4, shuffle=False))
    assert [b.shape for b, _ in got] == [(4, 2), (4, 2), (2, 2)]
    assert [int(v) for v in got[-1][1]] == [8, 9]
    (Xb, _), = data.batches(Xs, ys, None)
    assert Xb.shape == (10, 2) and type(Xb) is type(Xs)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
def test_batches_reject_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        data.batches(np.zeros((4, 2)), np.zeros(4), bad)


def test_batches_reject_mismatched_lengths():
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        data.batches(np.zeros((5, 2)), np.zeros(4), 2)


def test_batches_do_not_copy_the_whole_set():
    X, y = np.ones((200_000, 20)), np.zeros(200_000)
    tracemalloc.start()
    try:
        total = sum(len(yb) for _, yb in data.batches(X, y, 64, rng=0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 200_000
    assert peak < 0.1 * X.nbytes


# ------------------------------------------------------------------- prepare

def test_prepare_scales_flattens_and_one_hots():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    X[0, 0, 0], X[0, 0, 1] = 0, 255
    y = rng.integers(0, 10, size=50).astype(np.uint8)
    Xf, yf = data.prepare(X, y)
    assert Xf.shape == (50, 784) and Xf.dtype == np.float32
    assert Xf.min() == 0.0 and Xf.max() == 1.0
    np.testing.assert_allclose(Xf, X.reshape(50, -1) / 255, rtol=1e-6)
    assert yf.dtype == np.int64 and list(yf) == list(y)
    X64, Y = data.prepare(X, y, dtype=np.float64, one_hot=True)
    assert X64.dtype == Y.dtype == np.float64 and Y.shape == (50, 10)
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    with pytest.raises(ValueError, match="uint8"):
        data.prepare(Xf, y)


def test_prepare_validation_split_holds_out_the_last_examples():
    X = np.arange(20, dtype=np.uint8).reshape(20, 1, 1)
    y = np.arange(20) % 10
    (Xt, _), (Xv, yv) = data.prepare(X, y, validation=5)
    assert Xt.shape == (15, 1) and Xv.shape == (5, 1)
    np.testing.assert_array_equal(yv, y[15:])
    (Xt, _), (Xv, _) = data.prepare(X, y, validation=0.25)
    assert len(Xt) == 15 and len(Xv) == 5
    with pytest.raises(ValueError, match="validation"):
        data.prepare(X, y, validation=20)


def test_prepare_holds_one_float_copy():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (20_000, 28, 28), dtype=np.uint8)
    y = np.zeros(20_000, dtype=np.uint8)
    tracemalloc.start()
    try:
        Xf, _ = data.prepare(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.3 * Xf.nbytes


# -------------------------------------------------------- MNIST re-exports

def test_mnist_names_are_re_exported_from_course_mnist():
    for name in ("load_mnist", "fetch_mnist", "mnist_status", "mnist_dir", "parse_idx",
                 "MNISTError", "MNIST_FILES", "MIRRORS"):
        assert getattr(data, name) is getattr(mnist, name), name


# --------------------------------------------------- train/validation split

def test_train_val_split_is_stratified_disjoint_complete_and_reproducible():
    y = np.repeat(np.arange(4), [50, 31, 7, 112])
    X = np.arange(len(y) * 2, dtype=np.float64).reshape(-1, 2)  # row i is (2i, 2i + 1)
    (X_train, y_train), (X_val, y_val) = data.train_val_split(X, y, val_fraction=0.2, seed=3)
    for c, n_c in enumerate([50, 31, 7, 112]):
        assert abs(np.count_nonzero(y_val == c) - 0.2 * n_c) <= 1  # the class proportions are kept
        assert np.count_nonzero(y_val == c) == int(np.floor(0.2 * n_c + 0.5))
    rows_train, rows_val = X_train[:, 0] // 2, X_val[:, 0] // 2
    assert set(rows_train).isdisjoint(rows_val)
    np.testing.assert_array_equal(np.sort(np.concatenate([rows_train, rows_val])), np.arange(len(y)))
    np.testing.assert_array_equal(y[rows_val.astype(int)], y_val)  # rows and labels stay together
    again = data.train_val_split(X, y, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again[1][0], X_val)
    other = data.train_val_split(X, y, val_fraction=0.2, seed=4)
    assert not np.array_equal(other[1][0], X_val)
    assert not np.array_equal(np.sort(y_val), y_val)  # the classes are mixed, not in blocks


def test_train_val_split_of_real_valued_targets_is_a_plain_random_split():
    X, y = np.arange(20.0).reshape(10, 2), np.linspace(0, 1, 10).reshape(10, 1)
    (X_train, y_train), (X_val, y_val) = data.train_val_split(X, y, val_fraction=0.3, seed=0)
    assert X_train.shape == (7, 2) and y_train.shape == (7, 1) and X_val.shape == (3, 2)
    np.testing.assert_array_equal(X_val[:, 0] / 18, y_val[:, 0])  # still paired


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_train_val_split_refuses_fractions_outside_zero_one(fraction):
    with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 1\)"):
        data.train_val_split(np.zeros((10, 2)), np.zeros(10, dtype=int), val_fraction=fraction)


def test_train_val_split_refuses_an_empty_side():
    with pytest.raises(ValueError, match="0 for validation"):
        data.train_val_split(np.zeros((4, 2)), np.arange(4), val_fraction=0.1)
    with pytest.raises(ValueError, match="different numbers"):
        data.train_val_split(np.zeros((4, 2)), np.arange(5))


def test_train_val_split_keeps_the_namespace(xps):
    X, y = xps.asarray(np.arange(20.0).reshape(10, 2)), xps.asarray(np.arange(10) % 2)
    (X_train, _), (X_val, y_val) = data.train_val_split(X, y, val_fraction=0.2, seed=1)
    expected = data.train_val_split(np.arange(20.0).reshape(10, 2), np.arange(10) % 2, 0.2, seed=1)
    assert type(X_val) is type(X) and X_train.shape == (8, 2)
    np.testing.assert_array_equal(np.asarray(X_val), expected[1][0])
    np.testing.assert_array_equal(np.asarray(y_val), expected[1][1])


# ------------------------------------------------------------- augmentation

def test_augment_shift_moves_a_bright_pixel_by_the_drawn_shift():
    X = np.zeros((500, 28, 28), dtype=np.uint8)
    X[:, 10, 15] = 255
    out = data.augment_shift(X, max_shift=3, rng=5)
    shifts = np.random.default_rng(5).integers(-3, 4, size=(500, 2))  # the documented draw
    for image, (dy, dx) in zip(out, shifts):
        assert image[10 + dy, 15 + dx] == 255 and np.count_nonzero(image) == 1
    assert len(np.unique(shifts, axis=0)) == 49  # every shift was tried


def test_augment_shift_never_wraps_around():
    X = np.zeros((300, 28, 28), dtype=np.float32)
    X[:, 0, :] = X[:, -1, :] = X[:, :, 0] = X[:, :, -1] = 1.0  # a frame on the border
    out = data.augment_shift(X, max_shift=2, rng=0)
    shifts = np.random.default_rng(0).integers(-2, 3, size=(300, 2))
    for image, (dy, dx) in zip(out, shifts):
        assert image.sum() <= X[0].sum()
        if dy > 0:
            assert not image[:dy].any()  # rows moved in at the top are background
        if dy < 0:
            assert not image[dy:].any()
        if dx > 0:
            assert not image[:, :dx].any()
        if dx < 0:
            assert not image[:, dx:].any()


@pytest.mark.parametrize("shape, dtype", [((5, 28, 28), np.uint8), ((5, 784), np.float32),
                                          ((5, 784), np.float64)])
def test_augment_shift_keeps_shape_and_dtype_and_copies(shape, dtype):
    X = np.random.default_rng(1).uniform(0, 200, shape).astype(dtype)
    out = data.augment_shift(X, rng=2)
    assert out.shape == X.shape and out.dtype == X.dtype and out is not X
    np.testing.assert_array_equal(data.augment_shift(X, max_shift=0), X)


def test_augment_shift_of_rows_equals_that_of_images():
    X = np.random.default_rng(1).uniform(0, 1, (6, 28, 28))
    np.testing.assert_array_equal(data.augment_shift(X.reshape(6, 784), rng=3),
                                  data.augment_shift(X, rng=3).reshape(6, 784))


def test_augment_shift_repeats_with_the_seed_and_refuses_bad_input():
    X = np.random.default_rng(1).uniform(0, 1, (20, 28, 28))
    np.testing.assert_array_equal(data.augment_shift(X, rng=7), data.augment_shift(X, rng=7))
    assert not np.array_equal(data.augment_shift(X, rng=7), data.augment_shift(X, rng=8))
    far = np.random.default_rng(0).integers(-40, 41, size=(20, 2))
    past_the_edge = np.abs(far).max(axis=1) >= 28  # moved right out: all background
    out = data.augment_shift(X, max_shift=40, rng=0)
    assert past_the_edge.any() and not out[past_the_edge].any() and out[~past_the_edge].any()
    with pytest.raises(ValueError, match=r"\(N, 784\).*\(3, 100\)"):
        data.augment_shift(np.zeros((3, 100)))
    with pytest.raises(ValueError, match="max_shift"):
        data.augment_shift(X, max_shift=-1)
