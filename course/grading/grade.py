"""The autograder: ``course grade SOURCE_NOTEBOOK SUBMISSION... --out DIR``.

Planning (``course.grading._plan``). Grading a submission runs the *source* (solution)
notebook's cells, with the submission's answer cells (nbgrader ``solution: true``, matched
by ``grade_id``) in place of the solutions and the code cells the student added run where
they stand, as nbgrader does. Test cells, setup cells and points always come from the
source, whatever the submission did to them.

Judging (``course.grading._values``). In a test cell the student's kernel computes only the
value under test of each ``check(what, got, expected)``, and sends it out as plain data
(numbers, strings, arrays as bytes ...). The expected value is computed in a reference run
of the source notebook in a kernel of its own (once per source, cached by the hash of its
plan), and the grader compares the two in its own process, within the check's tolerance;
``check_at_least`` and ``check_at_most`` are thresholds the grader applies. A test cell
earns its points when it ran to its end and sent, check by check, the values the reference
run accepts. Expected values and the answers to hidden inputs never exist in the student's
process, so nothing done there (objects that equal everything, patched functions, tracers,
forged output, reading frames) can make a wrong value pass. The notebook's own ``check``
still gives students immediate feedback while they work.

Running (``course.grading._execute``). Each submission runs in a fresh kernel in an empty
temporary folder, under a time limit per cell and per notebook and a memory cap, inside a
bubblewrap sandbox (``course.grading.sandbox``): an unprivileged uid, its own PID, IPC and
network namespaces, a read-only system and no view of the source notebook, the solutions,
the output folder, other submissions or the grader's files; all of its memory counts
against the cap and every process it starts dies with it. Where bubblewrap cannot run,
grading refuses and says how to install it; ``--no-sandbox`` grades without it, says so
on stderr and records it, with what is lost, on the ``Gradebook``. Crashes, endless loops
and runaway memory cost only the tests they touch; the rest of the notebook and of the
batch is graded.

Reporting (``course.grading.report``). ``DIR`` gets ``gradebook.csv`` (one row per
submission, one column per graded cell, blank for cells graded by hand), ``gradebook.json``
(with messages and notes) and ``feedback/<submission>.md``, each replaced atomically, never
through a link, and only after every kernel is gone. Text from a submission is cut to
2 KB and shown only in code blocks; no line of a hidden test reaches a report, and a hidden
failure shows only that it failed (and the exception's type). A submission is read only if
it is a regular file of at most 50 MB; each gets a safe, unique name
(``course.grading._plan.name_submissions``); a bad one scores 0 with the reason, and the
batch goes on. Results depend only on the source and the submission, not on ``--jobs``.
"""
import asyncio
import concurrent.futures
import csv
import functools
import hashlib
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import course
from course.grading import report
from course.grading import sandbox as _sandbox
from course.grading._execute import Limits, run_plan
from course.grading._plan import (
    Assignment,
    GradedCell,
    load_source,
    name_submissions,
    read_answers,
    shortcuts,
    shown_path,
    split_hidden,
    submission_names,
)
from course.grading._values import judge

__all__ = ["Assignment", "CellResult", "GradedCell", "Gradebook", "Limits", "SubmissionResult",
           "grade_submissions", "load_source", "main", "name_submissions", "read_answers", "read_manual",
           "reference_run", "shown_path", "split_hidden", "submission_names"]

#: Seconds one cell may run.
DEFAULT_TIMEOUT = 300.0
#: Seconds one submission may take in all.
DEFAULT_TOTAL_TIMEOUT = 1800.0
#: Bytes of memory one grading kernel may allocate.
DEFAULT_MEMORY_LIMIT = 4 * 2**30
_TRACEBACK_CHARS = 4000
NEEDS_MANUAL = "needs manual grading"


# --- results ------------------------------------------------------------------------------

@dataclass
class CellResult:
    """How a submission did on one graded cell. ``points`` is None for a written answer that
    still needs manual grading; ``answer`` holds its text."""

    grade_id: str
    points: float | None
    max_points: float
    passed: bool
    message: str = ""
    traceback: str = ""
    answer: str = ""


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

    @property
    def provisional(self):
        """The written answers that still need manual grading (their ``grade_id``)."""
        return [cell.grade_id for cell in self.cells if cell.points is None]


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

    @property
    def manual_score(self):
        """Points of the written answers, graded by hand."""
        return sum(cell.points for cell in self.cells if cell.manual)


# --- the reference run -------------------------------------------------------------------

_REFERENCES = {}  # plan hash -> records, for this process


def reference_run(assignment, limits):
    """What every check of the source notebook recorded in the reference run: a dict from
    ``(grade_id, piece)`` to that test piece's records (``course.grading._values.record``).

    The run is cached by the hash of its plan and of the library, in memory and (with the
    sandbox, which keeps students' kernels away from it) in ``$COURSE_GRADING_CACHE`` or
    ``~/.cache/course``.
    Raises ``ValueError`` when the source fails in its own run: a cell raised, or a check
    does not accept the solution's value.
    """
    return _run(_reference(assignment, limits, asyncio.Semaphore(1)))


@functools.cache
def _library_hash():
    """A hash of the ``course`` package's code: expected values may come from the library, so a
    changed library must not reuse a cached reference run."""
    digest = hashlib.sha256(course.__version__.encode())
    for path in sorted(Path(course.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


async def _reference(assignment, limits, slots):
    """``reference_run``, taking one of the ``slots`` of the batch while the kernel runs."""
    steps = assignment.reference_plan()
    key = hashlib.sha256(json.dumps(
        [[step.kind, step.source] for step in steps]
        + [_library_hash(), platform.python_version(), limits.memory_limit]).encode()).hexdigest()
    cache = os.path.join(os.environ.get("COURSE_GRADING_CACHE")
                         or os.path.join(os.path.expanduser("~"), ".cache", "course"),
                         f"reference-{key}.json")
    if key not in _REFERENCES and limits.sandbox and os.path.isfile(cache):
        with open(cache, encoding="utf-8") as handle:
            _REFERENCES[key] = {tuple(k): v for k, v in json.load(handle)}
    if key not in _REFERENCES:
        async with slots:
            plan = await run_plan(steps, limits)
        _REFERENCES[key] = _records(assignment, steps, plan)
        if limits.sandbox:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            report.atomic_write(cache, json.dumps(list(_REFERENCES[key].items())))
    return _REFERENCES[key]


def _records(assignment, steps, plan):
    where = f"the source notebook {shown_path(assignment.path)} failed in the reference run"
    if plan.error:
        raise ValueError(f"{where}: {plan.error}")
    records, pieces = {}, {}
    for step, result in zip(steps, plan.steps):
        if result.status != "ok":
            name = f"test cell {step.grade_id!r}" if step.kind == "test" else \
                f"answer {step.grade_id!r}" if step.kind == "answer" else f"cell {step.cell}"
            error = f"{result.ename}: {result.evalue}" if result.ename else result.reason
            raise ValueError(f"{where}: {name}: {error or result.status}")
        if step.kind == "test":
            for record in result.sent:
                if message := judge(record, record):
                    raise ValueError(f"{where}: test cell {step.grade_id!r} does not accept "
                                     f"the solution's value: {message}")
            piece = pieces[step.grade_id] = pieces.get(step.grade_id, -1) + 1
            records[(step.grade_id, piece)] = result.sent
    return records


# --- grading ------------------------------------------------------------------------------

def _score(assignment, reference, steps, plan, name, path, answers, notes):
    """Judge a run of the plan ``steps`` for the submission's ``answers``; a test of an
    exercise whose answer uses a name the exercise forbids scores 0."""
    hidden_runs = {result.execution_count for step, result in zip(steps, plan.steps)
                   if step.kind == "test" and step.hidden and result.execution_count}
    verdicts, pieces = {}, {}
    for step, result in zip(steps, plan.steps):
        if step.kind == "test":
            piece = pieces[step.grade_id] = pieces.get(step.grade_id, -1) + 1
            if step.grade_id not in verdicts:  # the first failing piece decides
                failure = _failure(step, result, reference[(step.grade_id, piece)],
                                   hidden_runs, plan.error)
                if failure:
                    verdicts[step.grade_id] = failure
        elif step.kind in ("answer", "student"):
            if step.kind == "student" or step.grade_id in answers:
                notes.extend(_answer_notes(step, result, hidden_runs))
        elif result.status in ("timeout", "crashed"):
            notes.append(f"A cell of the notebook (not one of yours) was stopped: "
                         f"{result.reason}.")
    used = shortcuts(assignment, answers, [step.source for step in steps if step.kind == "student"])
    for grade_id, names in used.items():
        notes.append(f"Your answer {grade_id!r} uses {', '.join(names)}: this exercise asks you "
                     f"to write it yourself, so its tests score 0.")
    cells = []
    for cell in assignment.cells:
        exercise = (assignment.exercise or {}).get(cell.grade_id)
        if not cell.manual and exercise in used:
            verdicts[cell.grade_id] = (f"Your answer {exercise!r} uses {', '.join(used[exercise])}, "
                                       f"which this exercise asks you to write yourself.", "")
        if cell.manual:
            cells.append(CellResult(cell.grade_id, None, cell.points, False, NEEDS_MANUAL,
                                    answer=answers.get(cell.grade_id, "")))
        elif cell.grade_id in verdicts:
            message, traceback = verdicts[cell.grade_id]
            cells.append(CellResult(cell.grade_id, 0, cell.points, False, message, traceback))
        else:
            cells.append(CellResult(cell.grade_id, cell.points, cell.points, True))
    if plan.error:
        notes.append(f"Grading could not run: {plan.error}.")
    result = SubmissionResult(name, shown_path(path), cells, notes, error=plan.error)
    return _scrub(result, assignment.hidden_lines)


def _failure(step, result, records, hidden_runs, error):
    """Why a test piece failed, as ``(message, traceback)`` safe to show; None if it passed."""
    if error:
        return "Not run: the grader could not run this notebook.", ""
    if result.status == "not run":
        return _sentence(result.reason or "not run"), ""
    if result.status in ("timeout", "crashed"):
        return _sentence(f"the test was stopped: {result.reason}"), ""
    hidden = step.hidden or _mentions(result.traceback, hidden_runs)
    for record, sent in zip(records, result.sent):
        if message := judge(record, sent):
            if step.hidden or record["site"].endswith(":hidden"):
                return "A hidden test failed: a value differs from the expected one.", ""
            hint = f"\nHint: {record['hint']}" if record["hint"] else ""
            return message + hint, ""
    if result.status == "error":
        if hidden:
            return f"A hidden test failed ({result.ename}).", ""
        message = f"{result.ename}: {result.evalue}" if result.evalue else result.ename
        return message, result.traceback[-_TRACEBACK_CHARS:]
    if result.too_many or len(result.sent) != len(records):
        what = "more" if result.too_many or len(result.sent) > len(records) else "fewer"
        prefix = "A hidden test failed: it" if step.hidden else "The test"
        return f"{prefix} checked {what} values than the reference run did.", ""
    return None


def _answer_notes(step, result, hidden_runs):
    which = f"Your answer {step.grade_id!r}" if step.kind == "answer" else \
        "A cell you added"
    if result.replaced:
        return [f"{which} was graded as unanswered: {result.reason} while it ran."]
    if result.status == "timeout":
        return [f"{which} was stopped: {result.reason}."]
    if result.status == "crashed":
        return [f"{which} stopped the kernel: {result.reason}."]
    if result.status == "error":
        if _mentions(result.traceback, hidden_runs):
            return [f"{which} raised {result.ename}."]
        evalue = f": {result.evalue}" if result.evalue else ""
        return [f"{which} raised {result.ename}{evalue}"]
    return []


def _mentions(traceback, runs):
    """Whether a traceback shows code from one of the cells run as ``In[n]``, n in ``runs``."""
    return any(int(n) in runs for n in re.findall(r"\bIn\s*\[(\d+)\]", traceback))


def _scrub(result, hidden_lines):
    """``result`` with every line of a hidden test replaced in what it shows."""
    def clean(text):
        for line in hidden_lines:
            text = text.replace(line, "[hidden test]")
        return text

    result.notes = [clean(note) for note in result.notes]
    for cell in result.cells:
        cell.message, cell.traceback = clean(cell.message), clean(cell.traceback)
    return result


def _sentence(text):
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# --- manual grading ------------------------------------------------------------------------

def read_manual(path, assignment, names):
    """The points given by hand in ``path`` (a ``manual.csv`` with its ``points`` filled in):
    ``{(submission, grade_id): points}``.

    Rows of other submissions are ignored (so one file can serve several batches). Raises
    ``ValueError`` naming the row for a missing, non-numeric or out-of-range value, a cell that
    is not a written answer, or a row given twice.
    """
    maximum = {cell.grade_id: cell.points for cell in assignment.cells if cell.manual}
    marks = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"submission", "grade_id", "points"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: no column {', '.join(sorted(missing))} (expected the "
                             f"manual.csv that course grade wrote)")
        for number, row in enumerate(reader, start=2):
            name, grade_id, text = row["submission"], row["grade_id"], (row["points"] or "").strip()
            where = f"{path}, row {number} ({name}, {grade_id})"
            if name not in names:
                continue
            if grade_id not in maximum:
                raise ValueError(f"{where}: {grade_id!r} is not a written answer of this notebook")
            try:
                points = float(text)
            except ValueError:
                raise ValueError(f"{where}: the points {text!r} are not a number"
                                 if text else f"{where}: no points given") from None
            if not 0 <= points <= maximum[grade_id]:
                raise ValueError(f"{where}: {text} points is outside 0 to {maximum[grade_id]:g}")
            if (name, grade_id) in marks:
                raise ValueError(f"{where}: this submission and cell appear twice")
            marks[(name, grade_id)] = points
    return marks


def _merge_manual(result, marks):
    for cell in result.cells:
        if (result.name, cell.grade_id) in marks:
            cell.points = marks[(result.name, cell.grade_id)]
            cell.passed, cell.message = cell.points == cell.max_points, "graded by hand"


def _unreadable(assignment, name, path, reason):
    """The result of a submission that could not be graded: 0 for every test, ``reason``."""
    reason = shown_path(reason)  # an error message may hold a file name that is not UTF-8
    cells = [CellResult(cell.grade_id, None if cell.manual else 0, cell.points, False,
                        NEEDS_MANUAL if cell.manual else "Not graded: " + reason)
             for cell in assignment.cells]
    return SubmissionResult(name, shown_path(path), cells, error=reason)


async def _grade_one(assignment, reference, name, path, limits, slots):
    """Run one submission when a slot is free, then judge it once the reference is there."""
    started = time.monotonic()
    try:
        answers, extra, notes = read_answers(path, assignment)
    except ValueError as exc:
        return _unreadable(assignment, name, path, str(exc))
    except Exception as exc:  # noqa: BLE001 - one submission's failure never stops the batch
        return _unreadable(assignment, name, path,
                           f"this file could not be read ({type(exc).__name__}: {exc})")
    try:
        steps = assignment.plan(answers, extra)
        async with slots:
            plan = await run_plan(steps, limits)
    except Exception as exc:  # noqa: BLE001 - one submission's failure never stops the batch
        return _unreadable(assignment, name, path,
                           f"the grader failed on this notebook ({type(exc).__name__}: {exc})")
    records = await reference  # a source that fails its reference run stops the batch
    try:
        result = _score(assignment, records, steps, plan, name, path, answers, notes)
    except Exception as exc:  # noqa: BLE001 - one submission's failure never stops the batch
        result = _unreadable(assignment, name, path,
                             f"the grader failed on this notebook ({type(exc).__name__}: {exc})")
    result.seconds = time.monotonic() - started
    return result


async def _grade_all(assignment, named_paths, limits, jobs, progress):
    """Grade every submission, ``jobs`` kernels at a time; the reference run (unless cached)
    takes a slot like a submission, so the batch does not wait for it."""
    slots = asyncio.Semaphore(jobs)
    reference = asyncio.ensure_future(_reference(assignment, limits, slots))
    done = 0

    async def one(name, path):
        nonlocal done
        result = await _grade_one(assignment, reference, name, path, limits, slots)
        done += 1
        if progress is not None:
            progress(result, done, len(named_paths))
        return result

    results = await asyncio.gather(*(one(name, path) for name, path in named_paths))
    await reference
    return results


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
                      progress=None, sandbox=True, manual=None):
    """Grade the notebooks ``submissions`` against the source notebook ``source``.

    Args:
        source: path of the solution notebook (tests, hidden tests and points).
        submissions: paths of the submitted notebooks.
        out_dir: folder for ``gradebook.csv``, ``gradebook.json`` and ``feedback/``;
            None writes nothing.
        jobs: submissions graded at once (default: the number of CPUs).
        timeout: seconds one cell may run (default 300: lesson 09 trains a CNN in one cell).
        total_timeout: seconds one submission may take in all (default 1800).
        memory_limit: bytes one grading kernel may allocate (default 4 GiB; None: no cap).
        progress: called as ``progress(result, done, total)`` as each submission finishes.
        sandbox: run every kernel in the sandbox (``course.grading.sandbox``); False
            grades without it, recording so (and what is lost) in the gradebook.
        manual: a ``manual.csv`` with points given by hand (``read_manual``), merged in.

    Returns:
        A ``Gradebook``. Raises ``ValueError`` for a bad source notebook or argument (one
        that fails in its own reference run included), and
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
    marks = read_manual(manual, assignment, set(names)) if manual else {}
    results = _run(_grade_all(assignment, list(zip(names, paths)), limits,
                              min(jobs, max(len(paths), 1)), progress))
    for result, path, other in zip(results, paths, taken):
        _merge_manual(result, marks)
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
         memory_limit=None, sandbox=True, manual=None):
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
                                      sandbox=sandbox, manual=manual)
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
    print(f"wrote {Path(out) / 'gradebook.csv'}, {Path(out) / 'gradebook.json'}, "
          f"{Path(out) / 'manual.csv'} and {Path(out) / 'feedback'}/")
    pending = sum(len(result.provisional) for result in gradebook.submissions)
    if pending:
        print(f"{pending} written answer(s) need manual grading: fill in the points column of "
              f"{Path(out) / 'manual.csv'} and grade again with --manual (scores are provisional "
              f"until then)")
    graded = {f"{result.name}.md" for result in gradebook.submissions}
    stale = sorted(p.name for p in (Path(out) / "feedback").glob("*.md") if p.name not in graded)
    if stale:
        print(f"note: {Path(out) / 'feedback'} also holds {len(stale)} feedback file(s) from an "
              f"earlier run that the new gradebook does not include ({', '.join(stale[:5])}"
              f"{', ...' if len(stale) > 5 else ''}); move them away before returning feedback")
    return 0
