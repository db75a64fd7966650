"""The autograder: ``course grade SOURCE_NOTEBOOK SUBMISSION... --out DIR``.

Grading a submission builds a notebook from the *source* (solution) notebook: its
instructions, setup code, test cells, hidden tests and points, with only the answer cells
(nbgrader ``solution: true``) taken from the submission, matched by ``grade_id``. So a
submission that edits, deletes, reorders or re-labels test cells is still graded with the
source's tests and points; an answer cell it lacks counts as unanswered (its released stub
runs instead); other cells it adds are ignored, so helper code belongs inside an answer
cell (``course.grading._plan``). That notebook runs in a fresh kernel in an empty temporary
folder, under a time limit per cell, one per notebook and a memory cap
(``course.grading._execute``), inside a bubblewrap sandbox (``course.grading.sandbox``):
an unprivileged uid, its own PID, IPC and network namespaces, a read-only system and no
view of the source notebook, the solutions, the output folder, other submissions or the
grader's files; all of its memory, shared mappings included, counts against the cap, and
every process it starts dies with it. Where bubblewrap cannot run, grading refuses and says
how to install it; ``--no-sandbox`` (``sandbox=False``) grades without it, says so on stderr
and records it, with what is lost, on the ``Gradebook`` (``sandbox``, ``unsandboxed``).

A test cell earns its points when every piece of it ran to its end without an exception.
The grader judges this from the kernel's reply to each piece and from a random token that
only the last line of that piece prints (``course.grading._guard``), never from what the
cell prints or displays. Inside the kernel Python has no sandbox, so the guard cannot make
cheating impossible; this is what it defends, and what it does not.

Defended (``tests/test_grade.py`` tries each of these):

- printing "passed", clearing or faking outputs, hiding tracebacks (replacing
  ``showtraceback``, ``sys.excepthook``): output plays no part in the verdict;
- swallowing a test's exception (``post_run_cell`` callbacks, custom exception handlers,
  a patched ``run_cell``, ``ExecutionResult.success``, input transformers): the token never
  prints, and the guard reports the changed machinery (AST transformers too);
- replacing what tests use (``numpy.allclose``, NumPy internals, ``numpy.testing``,
  builtins, the notebook's ``__builtins__``, a course function's ``__code__``, ``np``
  itself, helpers and data that source cells define, such as ``EXPECTED``), shadowing a
  builtin the tests call, changing a small NumPy array the tests use in place, or setting
  a trace hook: the guard compares them with what it recorded before any answer ran;
- values that decide their own comparisons (``__eq__`` always true, ``unittest.mock.ANY``,
  NumPy's ``__array_function__``): the guard's profiler sees the tests call them;
- ``sys.exit``, ``raise SystemExit`` or ``KeyboardInterrupt`` in an answer or called from
  a test; ``os._exit``, crashes and kernel death; endless loops, including ones that catch
  the interrupt; runaway memory: the affected tests score 0 with the reason, the rest of
  the notebook and of the batch is graded;
- writing into the output folder: the sandboxed kernel cannot see it, and the gradebook,
  JSON and feedback are written last, each by an atomic rename that replaces whatever is
  there;
- attacks on the machine (``tests/test_sandbox.py`` tries these): reading the source
  notebook or the solutions, writing outside the kernel's own folder, seeing or signalling
  other processes, the network, a detached process that outlives grading, memory in shared
  mappings: the sandbox stops them (not with ``--no-sandbox``);
- leaking hidden tests: feedback never shows their source; a hidden failure shows only the
  exception's type, and a visible failure whose traceback passes through hidden code is
  reported the same way.

Out of scope: code written against this grader (disabling ``course.grading._guard`` by
name, reading its token from the cell source, faking kernel messages); changes in place
to large arrays or other mutable objects, or made while a source cell runs (one that calls
an answer), so tests are safest with their expected values inside the test cell itself;
code that reaches below Python (``ctypes``, ``gc`` tricks on built-in types), which can
tamper with its own kernel but not leave the sandbox; flaws of the Linux kernel or of
bubblewrap themselves; disk space in the kernel's own folder. With ``--no-sandbox`` the
kernel runs with the grader's user rights, so it can read the source notebook, signal other
processes or leave processes behind: use it only where the sandbox cannot run, in a
container or as a user that can read only what the notebooks need. Answers that
use the tools such attacks need (``get_ipython``, ``sys.modules``, ``ctypes``,
``os._exit``, ``/proc`` ...) are listed under ``review`` in the JSON and after the summary,
for a person to look at. Data a hidden test hands to an answer (its inputs, or the expected
value passed to ``__eq__``) is only as secret as the answers let it be: an answer can
repeat it in a later visible error.

A submission is read only when it is a regular file of at most
``course.grading._plan.MAX_SUBMISSION_BYTES`` (50 MB): a symbolic link, named pipe, device,
socket or folder is not opened (a pipe would block), and it is opened without following a
link and without blocking. Such a file, or one that is not a readable notebook, scores 0
with the reason, and the rest of the batch is graded.

Each submission's name (the ``submission`` column, the feedback file's name) is its file's
stem, with the folders above it that tell it from other submissions with that stem
(``course.grading._plan.name_submissions``), made safe: NFKC-normalised, bytes that are not
UTF-8 and characters other than letters, digits, ``_``, ``.`` and ``-`` (control characters
and spaces among them) replaced by ``_``, never starting with ``-``, ``=``, ``+`` or ``@``
(which spreadsheets read as formulas), at most 100 bytes of UTF-8. Names that are still
equal, ignoring case, get ``-2``, ``-3`` ..., in an order that does not depend on the order
of the arguments; each such row says why, and which file has the name, under ``review``.
The JSON keeps each submission's path as given (``file``; bytes that are not UTF-8 as
``\\xNN``).

Outputs, in ``DIR``: ``gradebook.csv`` (one row per submission: ``submission``, one column
per graded cell's ``grade_id`` with the points earned, blank for cells graded by hand, then
``score`` and ``max_score``), ``gradebook.json`` (the same with messages, notes and review
flags) and ``feedback/<submission>.md``. An existing gradebook is replaced, atomically.
Results depend only on the source and the submission, not on ``--jobs`` or on order.
Every text from a submission that reaches a report (messages, notes, tracebacks) is cut
to 2 KB, saying so, and the feedback shows it only inside code blocks, so it cannot
forge a table or a heading; printed output is kept up to 1 MB per cell. Reports are never
written through a link planted in ``DIR``, and a ``DIR`` that is itself a symbolic link
is refused (give the folder it leads to).
"""
import asyncio
import concurrent.futures
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from course.grading import report
from course.grading import sandbox as _sandbox
from course.grading._execute import Limits, run_plan
from course.grading._plan import (
    Assignment,
    GradedCell,
    load_source,
    name_submissions,
    read_answers,
    review_notes,
    shown_path,
    split_hidden,
    submission_names,
)

__all__ = ["Assignment", "CellResult", "GradedCell", "Gradebook", "SubmissionResult",
           "grade_submissions", "load_source", "main", "name_submissions", "read_answers",
           "review_notes", "shown_path", "split_hidden", "submission_names"]

#: Seconds one cell may run.
DEFAULT_TIMEOUT = 120.0
#: Seconds one submission may take in all.
DEFAULT_TOTAL_TIMEOUT = 1800.0
#: Bytes of memory one grading kernel may allocate.
DEFAULT_MEMORY_LIMIT = 4 * 2**30
_TRACEBACK_CHARS = 4000


# --- results ------------------------------------------------------------------------------

@dataclass
class CellResult:
    """How a submission did on one graded cell. ``points`` is None for hand-graded cells."""

    grade_id: str
    points: float | None
    max_points: float
    passed: bool
    message: str = ""
    traceback: str = ""


@dataclass
class SubmissionResult:
    """One submission's grades. ``notes`` are for the student, ``review`` for the instructor;
    ``error`` says why nothing could be graded. ``path`` is the file as given (``shown_path``);
    ``shares_name_with`` is the path of the submission whose name this one's would have been,
    when it got a numbered name instead."""

    name: str
    path: str
    cells: list
    notes: list = field(default_factory=list)
    review: list = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    shares_name_with: str = ""

    @property
    def score(self):
        return sum(cell.points or 0 for cell in self.cells)

    @property
    def max_score(self):
        return sum(cell.max_points for cell in self.cells if cell.points is not None)


@dataclass
class Gradebook:
    """Every submission's result, in the order the submissions were given."""

    source: str
    cells: list
    submissions: list
    #: Whether the kernels ran in the sandbox; ``unsandboxed`` lists what was given up if not.
    sandbox: bool = True
    unsandboxed: list = field(default_factory=list)

    @property
    def max_score(self):
        return sum(cell.points for cell in self.cells if not cell.manual)


# --- grading ------------------------------------------------------------------------------

def _score(assignment, plan, name, path, answers, notes):
    """Turn a run of the plan for the submission's ``answers`` into a ``SubmissionResult``."""
    steps = assignment.steps
    hidden_runs = {result.execution_count for step, result in zip(steps, plan.steps)
                   if step.kind == "test" and step.hidden and result.execution_count}
    cells = []
    for cell in assignment.cells:
        if cell.manual:
            cells.append(CellResult(cell.grade_id, None, cell.points, False,
                                    "graded by hand"))
            continue
        pieces = [(step, result) for step, result in zip(steps, plan.steps)
                  if step.kind == "test" and step.grade_id == cell.grade_id]
        failed = next(((step, result) for step, result in pieces
                       if not (result.status == "ok" and result.sealed)), None)
        if failed is None:
            cells.append(CellResult(cell.grade_id, cell.points, cell.points, True))
        else:
            message, traceback = _failure(*failed, hidden_runs, plan.error)
            cells.append(CellResult(cell.grade_id, 0, cell.points, False, message, traceback))
    for step, result in zip(steps, plan.steps):
        if step.kind == "answer":
            if step.grade_id in answers:  # a missing answer has its note already
                notes.extend(_answer_notes(step.grade_id, result, hidden_runs))
        elif step.kind == "code" and result.status in ("timeout", "crashed"):
            notes.append(f"A cell of the notebook (not one of yours) was stopped: "
                         f"{result.reason}.")
    if plan.error:
        notes.append(f"Grading could not run: {plan.error}.")
    return SubmissionResult(name, shown_path(path), cells, notes, error=plan.error)


def _failure(step, result, hidden_runs, error):
    """A failed test piece's message and traceback, safe to show the student."""
    if error:
        return "Not run: the grader could not run this notebook.", ""
    if result.status == "not run":
        return _sentence(result.reason or "not run"), ""
    if result.status in ("timeout", "crashed"):
        return _sentence(f"the test was stopped: {result.reason}"), ""
    if result.status == "ok":
        return ("The test did not run to its end: something in the answers interfered with "
                "how tests run."), ""
    hidden = step.hidden or _mentions(result.traceback, hidden_runs)
    if result.ename == "IntegrityError":  # raised by the guard, after the test's own code
        if hidden:
            return "A hidden test failed: the answers interfered with how tests run.", ""
        return _sentence(f"the test failed: {result.evalue}"), ""
    if hidden:
        return f"A hidden test failed ({result.ename}).", ""
    message = f"{result.ename}: {result.evalue}" if result.evalue else result.ename
    return message, result.traceback[-_TRACEBACK_CHARS:]


def _answer_notes(grade_id, result, hidden_runs):
    if result.replaced:
        return [f"Your answer {grade_id!r} was graded as unanswered: {result.reason} "
                f"while it ran."]
    if result.status == "timeout":
        return [f"Your answer {grade_id!r} was stopped: {result.reason}."]
    if result.status == "crashed":
        return [f"Your answer {grade_id!r} stopped the kernel: {result.reason}."]
    if result.status == "error":
        if _mentions(result.traceback, hidden_runs):
            return [f"Your answer {grade_id!r} raised {result.ename}."]
        evalue = f": {result.evalue}" if result.evalue else ""
        return [f"Your answer {grade_id!r} raised {result.ename}{evalue}"]
    return []


def _mentions(traceback, runs):
    """Whether a traceback shows code from one of the cells run as ``In[n]``, n in ``runs``."""
    return any(int(n) in runs for n in re.findall(r"\bIn\s*\[(\d+)\]", traceback))


def _sentence(text):
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _unreadable(assignment, name, path, reason):
    """The result of a submission that could not be graded: 0 for every test, ``reason``."""
    reason = shown_path(reason)  # an error message may hold a file name that is not UTF-8
    cells = [CellResult(cell.grade_id, None if cell.manual else 0, cell.points, False,
                        "graded by hand" if cell.manual else "Not graded: " + reason)
             for cell in assignment.cells]
    return SubmissionResult(name, shown_path(path), cells, error=reason)


async def _grade_one(assignment, name, path, limits):
    started = time.monotonic()
    try:
        answers, notes = read_answers(path, assignment)
    except ValueError as exc:
        return _unreadable(assignment, name, path, str(exc))
    except Exception as exc:  # noqa: BLE001 - one submission's failure never stops the batch
        return _unreadable(assignment, name, path,
                           f"this file could not be read ({type(exc).__name__}: {exc})")
    try:
        plan = await run_plan(assignment.plan(answers), assignment.guard_call, limits)
        result = _score(assignment, plan, name, path, answers, notes)
    except Exception as exc:  # noqa: BLE001 - one submission's failure never stops the batch
        result = _unreadable(assignment, name, path,
                             f"the grader failed on this notebook ({type(exc).__name__}: {exc})")
    result.review = review_notes(answers)
    result.seconds = time.monotonic() - started
    return result


async def _grade_all(assignment, named_paths, limits, jobs, progress):
    slots = asyncio.Semaphore(jobs)
    done = 0

    async def one(name, path):
        nonlocal done
        async with slots:
            result = await _grade_one(assignment, name, path, limits)
        done += 1
        if progress is not None:
            progress(result, done, len(named_paths))
        return result

    return await asyncio.gather(*(one(name, path) for name, path in named_paths))


def _run(coroutine):
    """Run ``coroutine`` to completion, also from code that already runs an event loop
    (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def grade_submissions(source, submissions, out_dir=None, *, jobs=None, timeout=DEFAULT_TIMEOUT,
                      total_timeout=DEFAULT_TOTAL_TIMEOUT, memory_limit=DEFAULT_MEMORY_LIMIT,
                      progress=None, sandbox=True):
    """Grade the notebooks ``submissions`` against the source notebook ``source``.

    Args:
        source: path of the solution notebook (tests, hidden tests and points).
        submissions: paths of the submitted notebooks.
        out_dir: folder for ``gradebook.csv``, ``gradebook.json`` and ``feedback/``;
            None writes nothing.
        jobs: submissions graded at once (default: the number of CPUs).
        timeout: seconds one cell may run (default 120).
        total_timeout: seconds one submission may take in all (default 1800).
        memory_limit: bytes one grading kernel may allocate (default 4 GiB; None: no cap).
        progress: called as ``progress(result, done, total)`` as each submission finishes.
        sandbox: run every kernel in the sandbox (``course.grading.sandbox``); False
            grades without it, recording so (and what is lost) in the gradebook.

    Returns:
        A ``Gradebook``. Raises ``ValueError`` for a bad source notebook or argument, and
        ``course.grading.sandbox.SandboxUnavailable`` (saying how to fix it) where the
        sandbox cannot run.
    """
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    total_timeout = DEFAULT_TOTAL_TIMEOUT if total_timeout is None else total_timeout
    if jobs < 1 or timeout <= 0 or total_timeout <= 0:
        raise ValueError("jobs, timeout and total_timeout must be positive")
    if sandbox:
        _sandbox.require()
    assignment = load_source(source)
    if out_dir is not None:
        report.prepare(out_dir)
    limits = Limits(float(timeout), float(total_timeout), int(memory_limit or 0),
                    sandbox=bool(sandbox))
    paths = [os.fsdecode(path) for path in submissions]
    names, taken = name_submissions(paths)
    results = _run(_grade_all(assignment, list(zip(names, paths)), limits,
                              min(jobs, max(len(paths), 1)), progress))
    for result, path, other in zip(results, paths, taken):
        if other is not None:
            result.shares_name_with = shown_path(paths[other])
            twice = os.path.abspath(paths[other]) == os.path.abspath(path)
            result.review.insert(0, f"named {result.name!r} because {names[other]!r} is the name "
                                    f"of {result.shares_name_with!r}"
                                    + (" (the same file, given twice)" if twice else ""))
    gradebook = Gradebook(shown_path(source), assignment.cells, list(results),
                          sandbox=bool(sandbox),
                          unsandboxed=[] if sandbox else list(_sandbox.LOST))
    if out_dir is not None:
        report.write(gradebook, out_dir)
    return gradebook


def main(source, submissions, out, jobs=None, timeout=None, total_timeout=None,
         memory_limit=None, sandbox=True):
    """``course grade``: grade, write the reports, print a summary; return the exit status."""
    def progress(result, done, total):
        status = f"error: {result.error}" if result.error else \
            f"{report.number(result.score)}/{report.number(result.max_score)}"
        print(f"[{done:>{len(str(total))}}/{total}] {result.name}: {status} "
              f"({result.seconds:.1f} s)", flush=True)

    started = time.monotonic()
    if not sandbox:
        print("warning: grading without the sandbox (--no-sandbox): "
              + "; ".join(_sandbox.LOST), file=sys.stderr)
    if (Path(out) / "gradebook.csv").exists():
        print(f"note: {Path(out) / 'gradebook.csv'} exists and will be replaced")
    try:
        gradebook = grade_submissions(source, submissions, out, jobs=jobs, timeout=timeout,
                                      total_timeout=total_timeout,
                                      memory_limit=DEFAULT_MEMORY_LIMIT if memory_limit is None
                                      else memory_limit, progress=progress,
                                      sandbox=sandbox)
    except (OSError, ValueError, _sandbox.SandboxUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    scores = [result.score for result in gradebook.submissions]
    print(f"graded {len(scores)} submission(s) in {time.monotonic() - started:.1f} s; "
          f"mean score {report.number(sum(scores) / max(len(scores), 1))}"
          f"/{report.number(gradebook.max_score)}")
    for result in gradebook.submissions:
        for item in result.review:
            print(f"review {result.name}: {item}")
    print(f"wrote {Path(out) / 'gradebook.csv'}, {Path(out) / 'gradebook.json'} and "
          f"{Path(out) / 'feedback'}/")
    graded = {f"{result.name}.md" for result in gradebook.submissions}
    stale = sorted(p.name for p in (Path(out) / "feedback").glob("*.md") if p.name not in graded)
    if stale:
        print(f"note: {Path(out) / 'feedback'} also holds {len(stale)} feedback file(s) from an "
              f"earlier run that the new gradebook does not include ({', '.join(stale[:5])}"
              f"{', ...' if len(stale) > 5 else ''}); move them away before returning feedback")
    return 0
