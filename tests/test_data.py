"""Tests for course.data: toy sets, mini-batches, prepare, MNIST loading.

The download tests serve files from a local HTTP server on 127.0.0.1; nothing
here touches the internet. Tests that need the real MNIST files read them from
$COURSE_DATA_DIR and are skipped when it is not set.
"""
import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from course import data

MNIST_SOURCE = os.environ.get("COURSE_DATA_DIR")
needs_mnist = pytest.mark.skipif(
    not MNIST_SOURCE, reason="set COURSE_DATA_DIR to a folder holding the "
    "four MNIST files to run this test")

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


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
    (Xt, yt), (Xv, yv) = data.prepare(X, y, validation=5)
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


# ------------------------------------------------------------------ IDX files

def idx_bytes(array):
    """IDX encoding of a uint8 array."""
    array = np.asarray(array, dtype=np.uint8)
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return bytes([0, 0, 8, array.ndim]) + dims + array.tobytes()


def test_parse_idx_round_trip_and_errors():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(images)), images)
    raw = idx_bytes(images)
    with pytest.raises(ValueError, match="bad-magic.gz"):
        data.parse_idx(b"\x00\x00\x0d\x03" + raw[4:], "bad-magic.gz")
    with pytest.raises(ValueError, match="short.gz.*does not match"):
        data.parse_idx(raw[:-1], "short.gz")
    with pytest.raises(ValueError, match="tiny"):
        data.parse_idx(raw[:9], "tiny")


def test_mnist_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.mnist_dir() == tmp_path / "xdg" / "course" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.mnist_dir() == Path.home() / ".cache" / "course" / "mnist"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "env"))
    assert data.mnist_dir() == tmp_path / "env"
    assert data.mnist_dir(tmp_path / "arg") == tmp_path / "arg"


# ------------------------------------------------------ tiny MNIST look-alike

@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Four small IDX files in tmp_path/'src' (gzipped) with MNIST_FILES
    pointing at their checksums. Returns (src folder, arrays by key)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, 6, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, 4, dtype=np.uint8),
    }
    src = tmp_path / "src"
    src.mkdir()
    table = {}
    for key, array in arrays.items():
        name, _ = data.MNIST_FILES[key]
        raw = idx_bytes(array)
        (src / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=9))
        table[key] = (name, hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(data, "MNIST_FILES", table)
    return src, arrays


@pytest.fixture
def serve(monkeypatch):
    """serve(folder) -> base URL of a local HTTP server for that folder."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def start(folder):
        handler = functools.partial(Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,),
                         daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_into_empty_folder_then_load_offline(tiny, serve, tmp_path):
    src, arrays = tiny
    dest = tmp_path / "new" / "mnist"
    assert data.fetch_mnist(dest, mirrors=[serve(src)], progress=False) == dest
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(p.name for p in src.iterdir())
    if os.name == "posix":  # readable by everyone, like any downloaded file
        assert all(p.stat().st_mode & 0o044 == 0o044 for p in dest.iterdir())
    # the files are now there: no mirror is needed
    (Xtr, ytr), (Xte, yte) = data.load_mnist(dest, mirrors=[closed_port_url()])
    np.testing.assert_array_equal(Xtr, arrays["train_images"])
    np.testing.assert_array_equal(ytr, arrays["train_labels"])
    np.testing.assert_array_equal(Xte, arrays["test_images"])
    np.testing.assert_array_equal(yte, arrays["test_labels"])
    assert data.mnist_status(dest)[0]


def test_failing_mirrors_are_skipped(tiny, serve, tmp_path):
    src, arrays = tiny
    empty = tmp_path / "empty"
    empty.mkdir()
    # refused, then 404 Not Found, then a good one
    mirrors = [closed_port_url(), serve(empty), serve(src)]
    (X, _), _ = data.load_mnist(tmp_path / "dest", mirrors=mirrors)
    np.testing.assert_array_equal(X, arrays["train_images"])


def test_corrupted_download_is_deleted_and_named(tiny, serve, tmp_path):
    src, _ = tiny
    name = data.MNIST_FILES["test_labels"][0]
    (src / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(np.arange(4))))
    dest = tmp_path / "dest"
    with pytest.raises(data.MNISTError, match=f"{name}.*failed verification"):
        data.fetch_mnist(dest, mirrors=[serve(src)], progress=False)
    left = sorted(p.name for p in dest.iterdir())
    assert f"{name}.gz" not in left and not any(".part" in n for n in left)
    assert len(left) == 3  # the three good files, each complete


def test_offline_error_is_quick_and_says_what_to_do(tiny, tmp_path):
    start = time.perf_counter()
    with pytest.raises(data.MNISTError) as info:
        data.load_mnist(tmp_path / "dest", mirrors=[closed_port_url()])
    assert time.perf_counter() - start < 5
    message = str(info.value)
    for hint in ("COURSE_DATA_DIR", "data_dir", "course data mnist --dir",
                 "train-images-idx3-ubyte.gz"):
        assert hint in message
    assert list((tmp_path / "dest").iterdir()) == []


def test_silent_mirror_times_out(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "TIMEOUT", 0.5)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        start = time.perf_counter()
        with pytest.raises(data.MNISTError, match="timed out"):
            data.fetch_mnist(tmp_path / "dest", mirrors=[url], progress=False)
    assert time.perf_counter() - start < 3
    assert list((tmp_path / "dest").iterdir()) == []


def test_download_false_never_fetches(tiny, tmp_path):
    pattern = "(?s)download=False.*COURSE_DATA_DIR"
    with pytest.raises(data.MNISTError, match=pattern):
        data.load_mnist(tmp_path / "nothing", download=False)
    assert not (tmp_path / "nothing").exists()


def test_uncompressed_and_regzipped_files_are_accepted(tiny, tmp_path):
    src, arrays = tiny
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, (name, _) in enumerate(data.MNIST_FILES.values()):
        raw = gzip.decompress((src / f"{name}.gz").read_bytes())
        if i % 2:
            (mixed / name).write_bytes(raw)
        else:
            (mixed / f"{name}.gz").write_bytes(gzip.compress(raw, 1, mtime=1))
    (_, y), (X, _) = data.load_mnist(mixed, download=False)
    np.testing.assert_array_equal(y, arrays["train_labels"])
    np.testing.assert_array_equal(X, arrays["test_images"])


def test_corrupted_local_file_is_named(tiny, tmp_path):
    src, _ = tiny
    name = data.MNIST_FILES["train_images"][0]
    raw = bytearray(gzip.decompress((src / f"{name}.gz").read_bytes()))
    raw[100] ^= 1
    (src / f"{name}.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(data.MNISTError, match=f"{name}.gz is corrupted"):
        data.load_mnist(src, download=False)
    ok, message = data.mnist_status(src)
    assert not ok and "corrupted" in message and name in message


def test_status_reports_missing_files(tiny, tmp_path):
    ok, message = data.mnist_status(tmp_path / "none")
    assert not ok and "missing" in message and "course data mnist" in message


# ------------------------------------------------------------ the real MNIST

@needs_mnist
def test_load_mnist_shapes_counts_and_speed():
    start = time.perf_counter()
    (X_train, y_train), (X_test, y_test) = data.load_mnist(
        MNIST_SOURCE, download=False)
    elapsed = time.perf_counter() - start
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert X_train.dtype == X_test.dtype == y_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert list(np.bincount(y_train)) == TRAIN_COUNTS
    assert list(np.bincount(y_test)) == TEST_COUNTS
    assert X_train.max() == 255 and X_train.flags.writeable
    assert elapsed < 2.0, f"loading MNIST took {elapsed:.2f} s"


@needs_mnist
def test_env_var_is_used(monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", MNIST_SOURCE)
    ok, message = data.mnist_status()
    assert ok and str(Path(MNIST_SOURCE)) in message


@needs_mnist
def test_download_real_files_from_local_server(serve, tmp_path):
    dest = tmp_path / "mnist"
    data.fetch_mnist(dest, mirrors=[serve(MNIST_SOURCE)], progress=False)
    _, (X_test, y_test) = data.load_mnist(dest, download=False)
    assert X_test.shape == (10000, 28, 28)
    assert list(np.bincount(y_test)) == TEST_COUNTS
