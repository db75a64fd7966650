"""Tests for course.mnist: IDX parsing, finding, downloading and verifying MNIST.

The download tests serve files from a local HTTP server on 127.0.0.1; nothing
here touches the internet. Tests that need the real MNIST files read them from
$COURSE_DATA_DIR (the ``mnist_source`` fixture) and are skipped when it is not set.
"""
import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from course import mnist

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------ IDX files

def idx_bytes(array):
    """IDX encoding of a uint8 array."""
    array = np.asarray(array, dtype=np.uint8)
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return bytes([0, 0, 8, array.ndim]) + dims + array.tobytes()


def test_parse_idx_round_trip_and_errors():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(mnist.parse_idx(idx_bytes(images)), images)
    raw = idx_bytes(images)
    with pytest.raises(ValueError, match="bad-magic.gz"):
        mnist.parse_idx(b"\x00\x00\x0d\x03" + raw[4:], "bad-magic.gz")
    with pytest.raises(ValueError, match="short.gz.*does not match"):
        mnist.parse_idx(raw[:-1], "short.gz")
    with pytest.raises(ValueError, match="tiny"):
        mnist.parse_idx(raw[:9], "tiny")


def test_mnist_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.mnist_dir() == tmp_path / "xdg" / "course" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert mnist.mnist_dir() == Path.home() / ".cache" / "course" / "mnist"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "env"))
    assert mnist.mnist_dir() == tmp_path / "env"
    assert mnist.mnist_dir(tmp_path / "arg") == tmp_path / "arg"


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
        name, _ = mnist.MNIST_FILES[key]
        raw = idx_bytes(array)
        (src / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=9))
        table[key] = (name, hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(mnist, "MNIST_FILES", table)
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
    assert mnist.fetch_mnist(dest, mirrors=[serve(src)], progress=False) == dest
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(p.name for p in src.iterdir())
    if os.name == "posix":  # readable by everyone, like any downloaded file
        assert all(p.stat().st_mode & 0o044 == 0o044 for p in dest.iterdir())
    # the files are now there: no mirror is needed
    (Xtr, ytr), (Xte, yte) = mnist.load_mnist(dest, mirrors=[closed_port_url()])
    np.testing.assert_array_equal(Xtr, arrays["train_images"])
    np.testing.assert_array_equal(ytr, arrays["train_labels"])
    np.testing.assert_array_equal(Xte, arrays["test_images"])
    np.testing.assert_array_equal(yte, arrays["test_labels"])
    assert mnist.mnist_status(dest)[0]


def test_failing_mirrors_are_skipped(tiny, serve, tmp_path):
    src, arrays = tiny
    empty = tmp_path / "empty"
    empty.mkdir()
    # refused, then 404 Not Found, then a good one
    mirrors = [closed_port_url(), serve(empty), serve(src)]
    (X, _), _ = mnist.load_mnist(tmp_path / "dest", mirrors=mirrors)
    np.testing.assert_array_equal(X, arrays["train_images"])


def test_corrupted_download_is_deleted_and_named(tiny, serve, tmp_path):
    src, _ = tiny
    name = mnist.MNIST_FILES["test_labels"][0]
    (src / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(np.arange(4))))
    dest = tmp_path / "dest"
    with pytest.raises(mnist.MNISTError, match=f"{name}.*failed verification"):
        mnist.fetch_mnist(dest, mirrors=[serve(src)], progress=False)
    left = sorted(p.name for p in dest.iterdir())
    assert f"{name}.gz" not in left and not any(".part" in n for n in left)
    assert len(left) == 3  # the three good files, each complete


def test_offline_error_names_the_mirror_and_says_what_to_do(tiny, tmp_path):
    url = closed_port_url()
    with pytest.raises(mnist.MNISTError) as info:
        mnist.load_mnist(tmp_path / "dest", mirrors=[url])
    message = str(info.value)
    assert f"{url}train-images-idx3-ubyte.gz" in message  # the refused mirror, named
    for hint in ("COURSE_DATA_DIR", "data_dir", "course data mnist --dir",
                 "train-images-idx3-ubyte.gz"):
        assert hint in message
    assert list((tmp_path / "dest").iterdir()) == []


def test_silent_mirror_times_out_after_timeout(tiny, tmp_path, monkeypatch):
    timeouts = []
    urlopen = mnist.urllib.request.urlopen

    def spy(url, timeout):
        timeouts.append(timeout)
        return urlopen(url, timeout=timeout)

    monkeypatch.setattr(mnist, "TIMEOUT", 0.2)
    monkeypatch.setattr(mnist.urllib.request, "urlopen", spy)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(mnist.MNISTError, match="timed out"):
            mnist.fetch_mnist(tmp_path / "dest", mirrors=[url], progress=False)
    assert timeouts == [0.2]  # one try, with the module's TIMEOUT, then the mirror is dropped
    assert list((tmp_path / "dest").iterdir()) == []


def test_download_false_never_fetches(tiny, tmp_path):
    pattern = "(?s)download=False.*COURSE_DATA_DIR"
    with pytest.raises(mnist.MNISTError, match=pattern):
        mnist.load_mnist(tmp_path / "nothing", download=False)
    assert not (tmp_path / "nothing").exists()


def test_uncompressed_and_regzipped_files_are_accepted(tiny, tmp_path):
    src, arrays = tiny
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, (name, _) in enumerate(mnist.MNIST_FILES.values()):
        raw = gzip.decompress((src / f"{name}.gz").read_bytes())
        if i % 2:
            (mixed / name).write_bytes(raw)
        else:
            (mixed / f"{name}.gz").write_bytes(gzip.compress(raw, 1, mtime=1))
    (_, y), (X, _) = mnist.load_mnist(mixed, download=False)
    np.testing.assert_array_equal(y, arrays["train_labels"])
    np.testing.assert_array_equal(X, arrays["test_images"])


def test_corrupted_local_file_is_named(tiny, tmp_path):
    src, _ = tiny
    name = mnist.MNIST_FILES["train_images"][0]
    raw = bytearray(gzip.decompress((src / f"{name}.gz").read_bytes()))
    raw[100] ^= 1
    (src / f"{name}.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(mnist.MNISTError, match=f"{name}.gz is corrupted"):
        mnist.load_mnist(src, download=False)
    ok, message = mnist.mnist_status(src)
    assert not ok and "corrupted" in message and name in message


def test_status_reports_missing_files(tiny, tmp_path):
    ok, message = mnist.mnist_status(tmp_path / "none")
    assert not ok and "missing" in message and "course data mnist" in message


# ------------------------------------------------------------ the real MNIST

def test_load_mnist_shapes_and_counts(mnist_source):
    (X_train, y_train), (X_test, y_test) = mnist.load_mnist(
        mnist_source, download=False)
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert X_train.dtype == X_test.dtype == y_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert list(np.bincount(y_train)) == TRAIN_COUNTS
    assert list(np.bincount(y_test)) == TEST_COUNTS
    assert X_train.max() == 255 and X_train.flags.writeable


def test_env_var_is_used(mnist_source, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(mnist_source))
    ok, message = mnist.mnist_status()
    assert ok and str(mnist_source) in message


def test_download_real_files_from_local_server(mnist_source, serve, tmp_path):
    dest = tmp_path / "mnist"
    mnist.fetch_mnist(dest, mirrors=[serve(mnist_source)], progress=False)
    _, (X_test, y_test) = mnist.load_mnist(dest, download=False)
    assert X_test.shape == (10000, 28, 28)
    assert list(np.bincount(y_test)) == TEST_COUNTS
