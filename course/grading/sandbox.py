"""The grading sandbox: every grading kernel runs inside bubblewrap (``bwrap``).

The kernel command becomes ``bwrap OPTIONS -- PYTHON -m course.grading._kernel ...``
(``command``). Inside, the kernel has:

- an unprivileged uid and gid (65534, "nobody") in a user namespace of its own;
- its own PID, IPC, network, UTS and (where available) cgroup namespaces: it sees only its
  own processes in ``/proc``, no network but an isolated loopback, and every process it
  starts, also a detached one, is killed when grading stops its kernel (the namespace's
  first process dies with the grader's ``bwrap``, and the kernel's namespace with it);
- a read-only system: ``/usr``, ``/bin``, ``/lib*``, ``/etc``, the Python installation and
  its environment's ``site-packages``, the MNIST folder when there is one, and the
  ``course`` package folder alone, at ``/opt/course-lib/course`` (``PYTHONPATH`` points
  there), never the checkout around it;
- one writable folder, the submission's private temporary folder (the kernel's working
  folder, its IPython folder and the folder of its connection file and sockets), a
  ``/tmp`` and ``/dev/shm`` of at most ``TMP_BYTES`` and ``SHM_BYTES``, ``/proc`` and a
  minimal ``/dev``; the root and ``/dev`` themselves are read-only.

Nothing else is bound, so the source notebook, the solutions, the output folder, other
submissions and the grader's own files do not exist for the kernel. The grader talks to
it over ZMQ IPC (unix domain) sockets in the private folder, as a network namespace
rules out TCP to the grader. The kernel caps all of its memory (``RLIMIT_AS``, see
``course.grading._kernel``), shared mappings included.

``probe`` tells, once per process, whether bwrap runs here with these namespaces.
"""
import functools
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import course

#: The uid and gid the kernel runs as, inside its user namespace.
NOBODY = "65534"
#: Where the ``course`` package folder appears inside the sandbox.
COURSE_LIB = "/opt/course-lib"
#: Bytes the sandbox's ``/tmp`` may hold.
TMP_BYTES = 256 * 2**20
#: Bytes its ``/dev/shm`` (POSIX shared memory) may hold.
SHM_BYTES = 64 * 2**20
#: Seconds the probe may take.
PROBE_TIMEOUT = 20
NAMESPACES = ("--unshare-user", "--uid", NOBODY, "--gid", NOBODY, "--unshare-pid",
              "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
              "--die-with-parent", "--new-session")
#: What grading with ``--no-sandbox`` gives up; recorded in the gradebook.
LOST = (
    "the students' code runs with the grader's user rights",
    "it can read the source notebook, the solutions, the output folder, other submissions "
    "and every other file the grader's user can read",
    "it can write wherever the grader's user can write",
    "it can use the network",
    "it can see and signal other processes",
    "processes it starts can outlive grading",
    "memory in shared mappings is not counted by the memory cap",
)
INSTALL = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"
NO_SANDBOX = ("or pass --no-sandbox to grade without it (the students' code then runs with "
              "your user rights and can read the solutions)")


class SandboxUnavailable(RuntimeError):
    """bwrap cannot run here; the message says why and what to do."""


def bwrap():
    """The path of ``bwrap``, or None."""
    return shutil.which("bwrap")


def _system_binds():
    """Options that bind the system folders read-only, keeping their symbolic links."""
    options = []
    for name in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"):
        if os.path.islink(name):
            options += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            options += ["--ro-bind", name, name]
    return options


@functools.cache
def probe():
    """``(True, "bubblewrap 0.8.0")`` where bwrap runs with the sandbox's namespaces here,
    else ``(False, why)``. Asked once per process."""
    path = bwrap()
    if path is None:
        return False, "bwrap (bubblewrap) is not installed"
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=PROBE_TIMEOUT).stdout.strip() or "bubblewrap"
        done = subprocess.run([path, *NAMESPACES, *_system_binds(), "--proc", "/proc",
                               "--dev", "/dev", "--", "true"],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{path} could not run ({exc})"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return False, (f"{path} cannot create its namespaces here ({why}); unprivileged user "
                       f"namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1 "
                       f"or user.max_user_namespaces)")
    return True, version


def require():
    """Raise ``SandboxUnavailable``, with instructions, unless bwrap runs here."""
    ok, detail = probe()
    if not ok:
        raise SandboxUnavailable(f"the grading sandbox cannot run: {detail}. To fix: {INSTALL}, "
                                 f"{NO_SANDBOX}")


def _python_folders():
    """The folders the kernel's Python needs, read-only: installation, environment,
    site-packages."""
    folders = [sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix,
               os.path.dirname(os.path.realpath(sys.executable)),
               os.path.dirname(os.path.abspath(sys.executable))]
    folders += site.getsitepackages()
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return _outermost(folder for folder in folders if os.path.isdir(folder))


def _outermost(folders):
    """The folders, without those inside another one of them, in a stable order."""
    kept = []
    for folder in sorted({os.path.abspath(f) for f in folders}, key=len):
        if not any(folder == k or folder.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(folder)
    return kept


def data_folder():
    """The MNIST folder the lessons read, if it exists (bound read-only), else None."""
    try:
        from course import mnist

        folder = mnist.mnist_dir()
    except Exception:  # noqa: BLE001 - no data folder then
        return None
    return str(folder.resolve()) if folder.is_dir() else None


def command(argv, private, workdir):
    """``argv`` (the kernel command) run inside bubblewrap; ``private`` is the submission's
    temporary folder (writable, bound at the same path), ``workdir`` the working folder
    inside it."""
    # The in-memory folders come first: a folder bound below (the Python environment, the
    # data, the private folder) may itself lie in /tmp, and a later --tmpfs /tmp would hide it.
    options = [*NAMESPACES, "--proc", "/proc", "--dev", "/dev",
               "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
               "--size", str(TMP_BYTES), "--tmpfs", "/tmp", *_system_binds()]
    for folder in _python_folders():
        options += ["--ro-bind", folder, folder]
    package = os.path.dirname(os.path.abspath(course.__file__))
    options += ["--ro-bind", package, f"{COURSE_LIB}/course"]
    data = data_folder()
    if data:
        options += ["--ro-bind", data, data]
    options += ["--bind", private, private,
                "--remount-ro", "/dev", "--remount-ro", "/",
                "--chdir", workdir, "--hostname", "grading"]
    return [bwrap() or "bwrap", *options, "--", *argv]


def environment(env, private):
    """The kernel's environment ``env`` adapted to the sandbox: ``PYTHONPATH`` is the
    ``course`` package's folder alone, ``HOME`` and the caches are in ``private``."""
    env = dict(env)
    env["PYTHONPATH"] = COURSE_LIB
    home = os.path.join(private, "home")
    os.makedirs(home, exist_ok=True)
    env["HOME"] = home
    env["XDG_CACHE_HOME"] = os.path.join(home, ".cache")
    env["TMPDIR"] = "/tmp"
    data = data_folder()
    if data:
        env["COURSE_DATA_DIR"] = data
    env["MPLCONFIGDIR"] = _matplotlib_folder(private)
    return env


def _matplotlib_folder(private):
    """A writable matplotlib folder in ``private``, with the grader's font cache copied in
    (when there is one) so that each kernel need not build it again."""
    folder = os.path.join(private, "matplotlib")
    os.makedirs(folder, exist_ok=True)
    source = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "matplotlib")
    try:
        for path in Path(source).glob("fontlist-*.json"):
            shutil.copyfile(path, os.path.join(folder, path.name))
    except OSError:
        pass
    return folder
