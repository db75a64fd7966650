"""The MNIST loader: find, download, verify and parse the four IDX files.

``load_mnist`` looks for the files, gzipped (``*-ubyte.gz``) or not, in the
first of these folders:

1. the ``data_dir`` argument;
2. the ``COURSE_DATA_DIR`` environment variable;
3. the user cache, ``$XDG_CACHE_HOME/course/mnist``, which is
   ``~/.cache/course/mnist`` when XDG_CACHE_HOME is not set.

Missing files are downloaded from public mirrors. Every file is checked
against the SHA-256 of its *uncompressed* bytes, so any faithful gzip passes,
and a download is renamed into place only after it has been verified.

The arrays come in Keras's layout: images ``(N, 28, 28)`` uint8, labels
``(N,)`` uint8. ``course.data`` re-exports the public names, so
``data.load_mnist`` and ``mnist.load_mnist`` are the same function.
"""
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

# name -> (file name without .gz, SHA-256 of the uncompressed bytes)
MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
TIMEOUT = 5.0  # seconds to wait for a mirror to connect or send more bytes


def _how_to_provide():
    names = ", ".join(f"{name}.gz" for name, _ in MNIST_FILES.values())
    return (f"To provide the files yourself, put {names} (gzipped or not) in "
            f"a folder DIR, then either\n"
            f"  - set the environment variable COURSE_DATA_DIR=DIR, or\n"
            f"  - call load_mnist(data_dir=DIR), or\n"
            f"  - run `course data mnist --dir DIR` on a machine with "
            f"internet access and copy DIR across.")


class MNISTError(OSError):
    """MNIST files are missing, corrupted or could not be downloaded."""


def mnist_dir(data_dir=None):
    """The folder MNIST is read from: ``data_dir``, else $COURSE_DATA_DIR,
    else $XDG_CACHE_HOME/course/mnist (default ~/.cache/course/mnist)."""
    if data_dir is None:
        data_dir = os.environ.get("COURSE_DATA_DIR") or None
    if data_dir is None:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        data_dir = Path(cache) / "course" / "mnist"
    return Path(data_dir).expanduser()


def _find(folder, name):
    """The path of ``name`` or ``name.gz`` in folder, or None."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _read(path):
    """The uncompressed bytes of a file, gzipped or not."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as err:
            raise MNISTError(f"{path} is not a valid gzip file "
                             f"({err})") from None
    return raw


def _verified(path, sha256):
    """The uncompressed bytes of path, after checking their SHA-256."""
    raw = _read(path)
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise MNISTError(f"{path} is corrupted: its content does not match "
                         f"the published MNIST checksum. Delete it (or "
                         f"replace it with a good copy) and load again.")
    return raw


def parse_idx(raw, name="IDX data"):
    """Parse IDX bytes (unsigned-byte data) into an array without copying.

    Returns a read-only uint8 array, e.g. images: (N, 28, 28), labels: (N,).
    """
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{name}: not an IDX file of unsigned bytes "
                         f"(magic number {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = ()
    if len(raw) >= header:
        shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    if len(raw) < header or len(raw) != header + int(np.prod(shape)):
        raise ValueError(f"{name}: size {len(raw)} bytes does not match the "
                         f"header's shape {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def mnist_status(data_dir=None):
    """(ok, message): are the four verified MNIST files in the folder?"""
    folder = mnist_dir(data_dir)
    problems = []
    for name, sha256 in MNIST_FILES.values():
        path = _find(folder, name)
        try:
            if path is None:
                problems.append(f"{name} missing")
            else:
                _verified(path, sha256)
        except MNISTError:
            problems.append(f"{path.name} corrupted")
    if problems:
        return False, (f"MNIST in {folder}: {', '.join(problems)}; run "
                       f"`course data mnist --dir {folder}` to fetch them")
    return True, f"MNIST: 4 verified files in {folder}"


def _download(url, folder, name, sha256, progress):
    """Fetch url into a temporary file in folder, verify, rename into place."""
    from tqdm.auto import tqdm

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=name,
                      disable=not progress, leave=False) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
        _verified(tmp, sha256)
        with open(tmp, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        os.chmod(tmp, 0o644)  # mkstemp makes it private; others may share it
        os.replace(tmp, folder / (f"{name}.gz" if gzipped else name))
    except MNISTError:
        raise MNISTError(f"{name} downloaded from {url} failed verification "
                         f"and was deleted") from None
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise MNISTError(f"{url}: {err}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch_mnist(data_dir=None, mirrors=None, progress=True):
    """Make sure the four verified MNIST files are in the folder; return it.

    Missing files are downloaded from ``mirrors`` (base URLs holding
    ``train-images-idx3-ubyte.gz`` etc.; default ``MIRRORS``), trying each in
    turn; a mirror that fails is skipped for the rest.
    """
    folder = mnist_dir(data_dir)
    mirrors = list(MIRRORS if mirrors is None else mirrors)
    for name, sha256 in MNIST_FILES.values():
        path = _find(folder, name)
        if path is not None:
            _verified(path, sha256)
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as err:
            raise MNISTError(f"cannot write MNIST into {folder} ({err}); "
                             f"pass data_dir= a writable folder") from None
        failures = []
        for base in list(mirrors):
            try:
                _download(base.rstrip("/") + f"/{name}.gz", folder, name,
                          sha256, progress)
                break
            except MNISTError as err:  # refused, timed out, bad file, ...
                failures.append(str(err))
                mirrors.remove(base)
        else:
            failures = failures or ["no mirror left to try"]
            raise MNISTError(
                f"MNIST file {name} is not in {folder} and could not be "
                f"downloaded:\n  " + "\n  ".join(failures) + "\n"
                + _how_to_provide())
    return folder


def load_mnist(data_dir=None, download=True, mirrors=None):
    """Load MNIST in Keras's layout: ``(X_train, y_train), (X_test, y_test)``.

    X_train: (60000, 28, 28) uint8, y_train: (60000,) uint8,
    X_test: (10000, 28, 28) uint8, y_test: (10000,) uint8.
    Files are looked for as the module docstring says; with ``download=True``
    missing ones are fetched first (see ``fetch_mnist``).
    """
    folder = mnist_dir(data_dir)
    missing = [name for name, _ in MNIST_FILES.values()
               if _find(folder, name) is None]
    if missing and not download:
        raise MNISTError(f"MNIST files {', '.join(missing)} are not in "
                         f"{folder} and download=False.\n"
                         + _how_to_provide())
    if missing:
        fetch_mnist(folder, mirrors)
    a = {}  # copies free the file bytes and make the arrays writable
    for key, (name, sha256) in MNIST_FILES.items():
        path = _find(folder, name)
        a[key] = parse_idx(_verified(path, sha256), path.name).copy()
    return ((a["train_images"], a["train_labels"]),
            (a["test_images"], a["test_labels"]))
