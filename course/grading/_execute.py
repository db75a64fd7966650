"""Run one submission's grading plan in a fresh kernel, and survive what the answers do.

A plan is a list of ``Step``s built by ``course.grading._plan``: the source notebook's code
cells, with the student's answer cells in place of the solutions and every test cell split
into its visible and hidden pieces. ``run_plan`` executes it with nbclient in a new kernel
(``course.grading._kernel``: this environment's Python, a memory cap) whose working folder
is a new, empty temporary folder, and returns one ``StepResult`` per step.

Sandbox. With ``Limits.sandbox`` (``course grade``'s default) the kernel runs inside
bubblewrap (``course.grading.sandbox``): its own uid, namespaces and read-only system,
with only the submission's private temporary folder writable and nothing of the grader's
in view. It then talks to the grader over ZMQ IPC sockets in a folder of that private
folder (mode 0700), is interrupted by an ``interrupt_request`` message (a signal to bwrap
would not reach it), and caps all of its memory. Stopping the kernel kills bwrap, and with
it every process the kernel started.

Values under test. A test's code sends each value under test as a ``display_data``
message of the MIME type ``course.grading._values.MIME``; the client takes these out of
the outputs and keeps them, for the step that runs, in ``StepResult.sent`` (at most
``MAX_SENDS`` per step). Judging them is the grader's business, not the kernel's.

Limits. Each step may run ``cell_timeout`` seconds and the whole plan ``total_timeout``.
A step that runs out of time is interrupted; if the kernel answers again within a few
seconds, grading goes on. If it does not, or the kernel dies (``os._exit``, a crash, the
memory cap), the plan is run again in a new kernel with that step left out: an answer is
replaced by its released stub, a test counts as failed. After ``MAX_KERNELS`` kernels, or
when the total time is used up, the steps still to run are reported as not run. A kernel
that dies or fails while starting is started once more; if that fails too, the plan's
``error`` says why, and nothing is raised.

Output. What a cell prints or displays plays no part in a verdict, but it travels to the
grader, so at most ``OUTPUT_LIMIT`` characters of it are kept per cell (the first ones;
the rest is counted, and a note on stderr says how much was dropped), and only the cell
that runs now keeps its outputs at all. Error names, messages and tracebacks are cut to
the same size.
"""
import logging
import os
import re
import secrets
import signal
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from queue import Empty

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

import course
from course.grading import sandbox
from course.grading._values import MIME

#: How many kernels one submission may use: the first, and fresh ones after crashes.
MAX_KERNELS = 10
#: Seconds an interrupted kernel has to answer again before it counts as stuck.
INTERRUPT_GRACE = 3.0
#: Seconds a kernel has to start.
STARTUP_TIMEOUT = 60.0
#: Characters of output (printed text, displays, errors) kept per cell.
OUTPUT_LIMIT = 2**20
#: Values one step may send to the grader, and characters of them in all.
MAX_SENDS = 100_000
MAX_SENT_CHARS = 2**28
_QUIET = logging.getLogger("course.grading.kernel")
_QUIET.disabled = True  # nbclient logs timeouts and dead kernels; the results report them
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_OUTPUT_MESSAGES = {"stream", "display_data", "execute_result", "update_display_data", "error"}


@dataclass
class Step:
    """One piece of code in a grading plan.

    ``kind`` is ``"answer"`` (a student's answer cell), ``"student"`` (a cell the student
    added), ``"code"`` (a source-notebook cell that is not graded) or ``"test"`` (a visible
    or ``hidden`` piece of a test cell; ``reference`` is its code for the reference run).
    ``stub``: for answers, the released student version, run in place of an answer that
    crashed or hung the kernel. ``cell``: the index of the source cell it comes from.
    """

    kind: str
    source: str
    grade_id: str = ""
    hidden: bool = False
    stub: str = ""
    cell: int = -1
    reference: str = ""


@dataclass
class StepResult:
    """What happened to one step.

    ``status``: ``"ok"``, ``"error"`` (it raised), ``"timeout"`` (interrupted after its
    time), ``"crashed"`` (it hung or killed the kernel, and was left out of a fresh run)
    or ``"not run"`` (and, inside a run, ``"dead"`` or ``"stuck"`` before a fresh kernel is
    tried). ``sent``: the values the step sent (``course.grading._values``); ``too_many``
    when it sent more than ``MAX_SENDS``. ``reason`` explains what went wrong in words;
    ``replaced`` is true when an answer ran as its stub.
    """

    status: str = "not run"
    ename: str = ""
    evalue: str = ""
    traceback: str = ""
    execution_count: int | None = None
    sent: list = field(default_factory=list)
    too_many: bool = False
    reason: str = ""
    replaced: bool = False


@dataclass
class Limits:
    """Seconds per step and per plan, the memory cap in bytes (0: none), and whether the
    kernel runs in the sandbox."""

    cell_timeout: float
    total_timeout: float
    memory_limit: int
    sandbox: bool = False


@dataclass
class PlanResult:
    """One ``StepResult`` per step; ``error`` when grading itself could not run."""

    steps: list
    error: str = ""


class _GradingKernels(KernelSpecManager):
    """Kernel specs that start ``course.grading._kernel`` with this Python.

    The spec is named ``python3`` so that nbclient and jupyter_client treat the kernel as
    the IPython kernel it is (no history file is written, for one). Tracebacks are plain,
    as Python prints them: quicker to format than IPython's, and they read well as text.
    """

    memory_limit = 0
    #: ``(private folder, working folder)`` to run the kernel in the sandbox, else None.
    sandbox = None

    def get_kernel_spec(self, kernel_name, *args, **kwargs):
        memory = [str(self.memory_limit)] + (["--sandboxed"] if self.sandbox else [])
        argv = [sys.executable, "-m", "course.grading._kernel", *memory,
                "-f", "{connection_file}", "--InteractiveShell.xmode=Plain"]
        if self.sandbox:
            argv = sandbox.command(argv, *self.sandbox)
        return KernelSpec(argv=argv, display_name="Python 3 (grading)", language="python",
                          interrupt_mode="message" if self.sandbox else "signal",
                          resource_dir="")


def kernel_environment(workdir):
    """The environment of a grading kernel: this one, made repeatable.

    A fixed hash seed and one BLAS thread make results independent of the machine's load
    and of how many submissions are graded at once (values an instructor has set are kept);
    a private IPython folder keeps the instructor's IPython profile out of grading. The
    kernel imports this very ``course`` package, also from a checkout that is not installed.
    """
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(course.__file__)))
    if package_parent not in site.getsitepackages() + [site.getusersitepackages()]:
        env["PYTHONPATH"] = os.pathsep.join(
            [package_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONHASHSEED"] = "0"
    env["IPYTHONDIR"] = os.path.join(workdir, "ipython")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    env.pop("IPYKERNEL_CELL_NAME", None)
    return env


def plain_text(traceback_lines):
    """A kernel's traceback as plain text, without colour codes."""
    return _ANSI.sub("", "\n".join(traceback_lines))


def describe_exit(returncode):
    """Why a kernel process ended, in words."""
    if returncode is None:
        return "the kernel stopped responding"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == getattr(signal, "SIGKILL", 9):
            return f"the kernel was killed by {name} (usually for using too much memory)"
        return f"the kernel crashed ({name})"
    return f"the kernel exited with status {returncode} (os._exit or a crash)"


async def run_plan(steps, limits):
    """Execute ``steps``; see the module docstring. Returns a ``PlanResult``."""
    deadline = time.monotonic() + limits.total_timeout
    left_out = {}  # step index -> why it is left out of the next run
    for attempt in range(MAX_KERNELS):
        run = _Run(steps, limits, deadline, left_out)
        result = await run.go()
        if result.error and time.monotonic() < deadline:  # it did not start: once more
            run = _Run(steps, limits, deadline, left_out)
            result = await run.go()
        if run.fatal is None:
            return result
        index, reason = run.fatal
        if index in left_out or attempt == MAX_KERNELS - 1 or time.monotonic() >= deadline:
            for later in result.steps[index + 1:]:
                later.reason = later.reason or f"not run: {reason} in an earlier cell"
            return result
        left_out[index] = reason
    raise AssertionError("unreachable")


class _Run:
    """One kernel's attempt at a plan."""

    def __init__(self, steps, limits, deadline, left_out):
        self.steps = steps
        self.limits = limits
        self.deadline = deadline
        self.left_out = left_out
        self.fatal = None  # (step index, reason) when the kernel died or got stuck
        self.client = None
        self.km = None  # kept here too: nbclient forgets it when a start fails
        self._replies = {}  # cell index -> execute_reply, filled by nbclient's hook
        # On a timeout nbclient interrupts the kernel, waits briefly for the cell to end and
        # then reports this made-up error, whose name no student code can know.
        self._timeout_name = f"GradingTimeout{secrets.token_hex(8)}"

    async def go(self):
        """Run the plan in a new kernel and folder; return a ``PlanResult``."""
        results = [StepResult() for _ in self.steps]
        with tempfile.TemporaryDirectory(prefix="course-grade-",
                                         ignore_cleanup_errors=True) as root:
            workdir = os.path.join(root, "work")
            os.mkdir(workdir)
            try:
                try:
                    error = await self._start(root, workdir)
                except Exception as exc:  # noqa: BLE001 - reported as the plan's error
                    error = f"the grading kernel did not start: {_clip(str(exc))}"
                if error:
                    return PlanResult(results, error=error)
                for index, step in enumerate(self.steps):
                    if time.monotonic() >= self.deadline:
                        for later in results[index:]:
                            later.reason = (f"not run: grading this notebook reached its "
                                            f"limit of {self.limits.total_timeout:g} seconds")
                        break
                    outcome = await self._run_step(index, step)
                    if outcome.status in ("dead", "stuck"):
                        self.fatal = (index, outcome.reason)
                        results[index] = StepResult("crashed", reason=outcome.reason)
                        break
                    results[index] = outcome
            finally:
                await self._stop()
        return PlanResult(results)

    # --- kernel lifecycle ---------------------------------------------------------------

    async def _start(self, root, workdir):
        """Start the kernel; return an error message, or "" on success."""
        specs = _GradingKernels()
        specs.memory_limit = int(self.limits.memory_limit or 0)
        env = kernel_environment(root)
        options = {}
        if self.limits.sandbox:
            specs.sandbox = (root, workdir)
            env = sandbox.environment(env, root)
            sockets = os.path.join(root, "connection")
            os.mkdir(sockets, 0o700)
            options = {"transport": "ipc", "ip": os.path.join(sockets, "kernel"),
                       "connection_file": os.path.join(sockets, "kernel.json")}
        km = self.km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs,
                                          **options)
        self.client = _Client(
            nbformat.v4.new_notebook(), km=km, allow_errors=True, record_timing=False,
            startup_timeout=STARTUP_TIMEOUT, interrupt_on_timeout=True,
            error_on_timeout={"ename": self._timeout_name, "evalue": "", "traceback": []},
            log=_QUIET)
        self.client.on_cell_executed = self._on_executed
        try:
            await self.client.async_start_new_kernel(
                cwd=workdir, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await self.client.async_start_new_kernel_client()
        except Exception as exc:  # noqa: BLE001 - any failure to start is reported
            return f"the grading kernel did not start: {_clip(str(exc))}"
        return ""

    async def _stop(self):
        """Stop the kernel (and every process it started) and close the connection.

        Never raises: the kernel may be dead, may never have started, and nbclient sets
        ``km`` and ``kc`` to None when a start fails (``self.km`` still has the manager).
        """
        client = self.client
        kc = getattr(client, "kc", None)
        km = getattr(client, "km", None) or self.km
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:  # noqa: BLE001 - the connection is already gone
                pass
        if km is None:
            return
        for action in (lambda: km.shutdown_kernel(now=True), lambda: km.cleanup_resources()):
            try:
                await action()
            except Exception:  # noqa: BLE001 - already dead, or never started
                pass

    async def _exit_reason(self):
        provisioner = getattr(getattr(self.client, "km", None) or self.km, "provisioner", None)
        returncode = None
        if provisioner is not None:
            try:
                returncode = await provisioner.poll()
            except Exception:  # noqa: BLE001
                returncode = None
        if self.limits.sandbox and returncode is not None and returncode > 128:
            returncode = 128 - returncode  # bwrap exits with 128 + the kernel's signal
        return describe_exit(returncode)

    # --- steps --------------------------------------------------------------------------

    async def _run_step(self, index, step):
        """Run one step; return its result (status dead or stuck: the kernel is gone)."""
        left_out = self.left_out.get(index)
        if left_out and step.kind != "answer":
            return StepResult("crashed", reason=left_out)
        outcome = await self._execute(step.stub if left_out else step.source)
        if left_out:
            outcome.replaced, outcome.reason = True, left_out
        return outcome

    async def _execute(self, code, timeout=None, history=True):
        """Send ``code`` to the kernel and wait for it, within the limits.

        Returns a ``StepResult`` whose status is ok, error or timeout, or (for the caller
        to act on) dead or stuck. Code that runs out of time has been interrupted by
        nbclient; a probe then tells whether the kernel came back.
        """
        wanted = timeout or self.limits.cell_timeout
        limit = min(wanted, max(self.deadline - time.monotonic(), 0.001))
        client = self.client
        if client.nb.cells:  # only the running cell keeps its outputs
            client.nb.cells[-1].outputs = []
        cell = nbformat.v4.new_code_cell(code)
        client.nb.cells.append(cell)
        client.sent, client.too_many, client._sent_chars = [], False, 0
        index = len(client.nb.cells) - 1
        client.timeout = max(int(limit + 0.999), 1)  # nbclient counts whole seconds
        try:
            await client.async_execute_cell(cell, index, store_history=history)
        except DeadKernelError:
            return StepResult("dead", reason=await self._exit_reason())
        except Exception as exc:  # noqa: BLE001 - a broken connection counts as a dead kernel
            return StepResult("dead", reason=f"the connection to the kernel failed ({exc})")
        reply = self._replies.pop(index, None)
        if reply and reply["content"].get("ename") == self._timeout_name:
            if limit < wanted:
                why = (f"grading this notebook reached its limit of "
                       f"{self.limits.total_timeout:g} seconds")
            else:
                why = f"it did not finish within {wanted:g} seconds"
            probe = await self._probe()
            if probe.status == "ok":
                return StepResult("timeout", reason=why)
            if probe.status == "dead":
                return probe
            return StepResult("stuck", reason=f"{why} and could not be interrupted")
        content = reply["content"] if reply else {"status": "ok"}
        outcome = StepResult("ok" if content.get("status") == "ok" else "error",
                             execution_count=content.get("execution_count"),
                             sent=client.sent, too_many=client.too_many)
        if outcome.status == "error":
            outcome.ename = _clip(str(content.get("ename", "")))
            outcome.evalue = _clip(str(content.get("evalue", "")))
            traceback = content.get("traceback") or []
            if isinstance(traceback, list):
                traceback = "\n".join(map(str, traceback))
            outcome.traceback = plain_text([_clip(str(traceback), keep_end=True)])
        return outcome

    async def _probe(self):
        """After an interrupt: ``ok`` if the kernel answers a request within the grace time,
        else ``dead`` or ``stuck``."""
        kc = self.client.kc
        try:
            msg_id = kc.execute("pass", silent=True, store_history=False)
            deadline = time.monotonic() + INTERRUPT_GRACE
            while (left := deadline - time.monotonic()) > 0:
                try:
                    msg = await kc.shell_channel.get_msg(timeout=left)
                except Empty:
                    break
                if msg["parent_header"].get("msg_id") == msg_id:
                    return StepResult("ok")
            alive = await self.client.km.is_alive()
        except Exception:  # noqa: BLE001 - a broken connection counts as a dead kernel
            alive = False
        if alive:
            return StepResult("stuck")
        return StepResult("dead", reason=await self._exit_reason())

    async def _on_executed(self, cell, cell_index, execute_reply):
        self._replies[cell_index] = execute_reply


class _Client(NotebookClient):
    """nbclient's client, keeping at most ``OUTPUT_LIMIT`` characters of output per cell.

    Values a test sends (``display_data`` of the MIME type ``MIME``) are not outputs: they
    go to ``sent``, the running cell's list, up to ``MAX_SENDS`` values and
    ``MAX_SENT_CHARS`` characters (then ``too_many``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cell = None  # the cell the counts below are for
        self._kept = self._dropped = 0
        self._clear_next = False  # a clear_output(wait=True) is pending
        self.sent, self.too_many, self._sent_chars = [], False, 0

    def process_message(self, msg, cell, cell_index):
        if cell_index != self._cell:
            self._cell, self._kept, self._dropped, self._clear_next = cell_index, 0, 0, False
            self.sent, self.too_many, self._sent_chars = [], False, 0
        msg_type = msg.get("msg_type")
        content = msg.get("content") or {}
        if msg_type == "display_data" and MIME in (content.get("data") or {}):
            payload = content["data"][MIME]
            self._sent_chars += _size(payload)
            if len(self.sent) < MAX_SENDS and self._sent_chars <= MAX_SENT_CHARS:
                self.sent.append(payload)
            else:
                self.too_many = True
            return None
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_next = True
            else:
                self._kept = 0
        if msg_type in _OUTPUT_MESSAGES:
            if self._clear_next:
                self._clear_next, self._kept = False, 0
            msg = self._bounded(msg)
            if msg is None:
                return None
        elif msg_type == "status" and content.get("execution_state") == "idle" \
                and self._dropped:
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n... [output truncated: {self._dropped:,} characters dropped]\n"))
            self._dropped = 0
        return super().process_message(msg, cell, cell_index)

    def _bounded(self, msg):
        """``msg`` as far as it fits in what is left of the cell's limit, or None."""
        content = msg.get("content") or {}
        if msg["msg_type"] == "stream":
            text = str(content.get("text", ""))
            room = max(OUTPUT_LIMIT - self._kept, 0)
            if len(text) > room:
                self._dropped += len(text) - room
                if not room:
                    return None
                msg = {**msg, "content": {**content, "text": text[:room]}}
                text = text[:room]
            self._kept += len(text)
            return msg
        size = _size(content)
        if size > OUTPUT_LIMIT - self._kept:
            self._dropped += size
            return None
        self._kept += size
        return msg


def _size(value):
    """Roughly how many characters ``value`` (a message's content) holds."""
    total, todo = 0, [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(str(key)) for key in item)
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        else:
            total += 8
    return total


def _clip(text, keep_end=False):
    """``text`` cut to about ``OUTPUT_LIMIT`` characters, saying how long it was."""
    if len(text) <= OUTPUT_LIMIT:
        return text
    note = f"... [truncated: {len(text):,} characters in all]"
    if keep_end:
        return note + "\n" + text[-OUTPUT_LIMIT:]
    return text[:OUTPUT_LIMIT] + note
