"""Start an IPython kernel for grading, under resource limits.

    python -m course.grading._kernel MEMORY_BYTES [--sandboxed] -f CONNECTION_FILE

The autograder launches every grading kernel through this module instead of
``ipykernel_launcher``. Before ipykernel starts it caps the memory the process may
map (``MEMORY_BYTES``; ``0`` means no cap) and switches core dumps off. Limits are
inherited, so they also hold for every process the kernel starts.

On Linux the cap is ``RLIMIT_DATA``, which counts the heap and every private
writable mapping: a NumPy array, a growing list, a ``bytearray``. Unlike
``RLIMIT_AS`` it does not count address space that is only reserved, so a library
that reserves a large range up front (CUDA does) still starts. Other POSIX systems
get ``RLIMIT_AS``. An allocation beyond the cap raises ``MemoryError`` in the
student's code. Windows has no such limits; there the cap is not applied.

``--sandboxed`` (the grading sandbox, ``course.grading.sandbox``, passes it) adds
``RLIMIT_AS`` on Linux too, so that shared mappings (``mmap`` with ``MAP_SHARED``,
``multiprocessing.shared_memory``), which ``RLIMIT_DATA`` does not count, are capped as
well. The sandbox has no GPU device to reserve address space for, and a kernel with
NumPy and one BLAS thread maps about 200 MB, so a cap of a few hundred MB still starts.
It also stops ipykernel from watching its parent process: in the sandbox's PID namespace
the parent is the namespace's first process (pid 1), which ipykernel would take for a
sign that the grader is gone. The sandbox ends the kernel with the grader instead.
"""
import os
import sys

try:
    import resource
except ImportError:  # Windows
    resource = None


def apply_limits(memory_bytes, all_memory=False):
    """Cap this process's memory at ``memory_bytes`` (``0``: no cap) and disable core dumps.

    ``all_memory``: cap the address space too, shared mappings included (Linux)."""
    if resource is None:
        return
    if memory_bytes > 0:
        which = resource.RLIMIT_DATA if sys.platform.startswith("linux") else resource.RLIMIT_AS
        _lower(which, memory_bytes)
        if all_memory and which != resource.RLIMIT_AS:
            _lower(resource.RLIMIT_AS, memory_bytes)
    _lower(resource.RLIMIT_CORE, 0)


def _lower(which, value):
    """Set the soft and hard limit ``which`` to ``value`` unless it is already lower."""
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    if soft == resource.RLIM_INFINITY or soft > value:
        resource.setrlimit(which, (value, value))


def main():
    memory_bytes = int(sys.argv.pop(1))
    sandboxed = len(sys.argv) > 1 and sys.argv[1] == "--sandboxed"
    if sandboxed:
        del sys.argv[1]
        os.environ.pop("JPY_PARENT_PID", None)
    apply_limits(memory_bytes, all_memory=sandboxed)
    # ``python -m`` put the working directory first on sys.path. Drop it, as
    # ipykernel_launcher does; IPython adds it back as '', so a student's own modules
    # stay importable.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
