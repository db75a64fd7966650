"""What runs when a submission is graded: the source notebook's plan and the answers.

``load_source`` reads a source (solution) notebook into an ``Assignment``: its graded cells
and a plan of ``Step``s (``course.grading._execute``) in which every code cell of the source
runs as it is, except that answer cells (nbgrader ``solution: true``) are left for the
submission and test cells are split into visible and hidden pieces. ``read_answers`` takes
the answer cells from a submission, matched by ``grade_id``, and nothing else from it;
``Assignment.plan`` puts them into the plan. A submission is read only when it is a regular
file under a size limit (``read_submission``); ``name_submissions`` gives each one a safe,
distinct name.

The plan also tells the guard (``course.grading._guard``) what to watch, from a static
reading of the source: the names the tests use that source cells bind, the builtins the
tests use, and the modules they import.
"""
import ast
import builtins
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.grading import release
from course.grading._execute import GUARD, Step
from course.grading._guard import TRUSTED_ROOTS
from course.grading.markup import BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS

# What an answer needs to attack the grader rather than solve the exercise.
_REVIEW = {
    "get_ipython": r"\bget_ipython\b",
    "sys.modules": r"\bsys\.modules\b",
    "builtins": r"\b__builtins__\b|\bbuiltins\b",
    "sys.excepthook": r"\bexcepthook\b",
    "showtraceback": r"\bshowtraceback\b",
    "trace or profile hooks": r"\bset(trace|profile)\b",
    "ctypes": r"\bctypes\b",
    "gc": r"\bgc\.",
    "frames": r"\b_getframe\b|\bf_(back|globals|locals)\b",
    "os._exit": r"\bos\._exit\b",
    "signals": r"\bos\.kill\b|\bsignal\.",
    "subprocess": r"\bsubprocess\b",
    "unittest.mock": r"\bmock\b",
    "comparison methods": r"\b__(eq|ne|bool|array_ufunc|array_function)__\b",
    "the grader": r"course\.grading|_guard",
    "exec/eval": r"(?<![\w.])(exec|eval|compile)\s*\(",
    "__import__": r"\b__import__\b|\bimportlib\b",
    "/proc": r"/proc\b",
}


@dataclass
class GradedCell:
    """A cell that carries points: a test cell, or an answer graded by hand (``manual``)."""

    grade_id: str
    points: float
    hidden_tests: bool = False
    manual: bool = False


# --- the source notebook ------------------------------------------------------------------

@dataclass
class Assignment:
    """A source notebook read for grading: its graded cells and its plan.

    ``steps`` hold the solutions in the answer steps; ``plan(answers)`` puts a submission's
    answers in their place. ``cell_ids`` maps an answer's ``grade_id`` to its cell id.
    """

    path: str
    cells: list
    steps: list
    cell_ids: dict
    guard_call: str

    @property
    def answer_ids(self):
        """The ``grade_id`` of every answer cell that runs, in notebook order."""
        return [step.grade_id for step in self.steps if step.kind == "answer"]

    def plan(self, answers):
        """The steps with the answers in ``answers`` (grade_id -> source), stubs elsewhere."""
        return [Step(step.kind, answers.get(step.grade_id, step.stub), step.grade_id,
                     stub=step.stub) if step.kind == "answer" else step
                for step in self.steps]


def load_source(path):
    """Read the source notebook at ``path`` for grading.

    Raises ``ValueError`` (``MarkupError``) when its markup is malformed or it has no graded
    test cell, ``OSError`` when it cannot be read.
    """
    path = str(path)
    nb = release.read_notebook(path)
    student = release.release_notebook(nb, Path(path).name)  # also checks the markup
    cell_ids, cells, steps = {}, [], []
    for cell, released in zip(nb.cells, student.cells):
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if meta.get("solution"):
            cell_ids[grade_id] = cell.get("id")
            if meta.get("grade"):
                cells.append(GradedCell(grade_id, meta["points"], manual=True))
            if cell.cell_type == "code":
                steps.append(Step("answer", cell.source, grade_id, stub=released.source))
        elif cell.cell_type == "code" and meta.get("grade"):
            pieces = split_hidden(cell.source)
            cells.append(GradedCell(grade_id, meta["points"],
                                    hidden_tests=any(hidden for _, hidden in pieces)))
            steps.extend(Step("test", text, grade_id, hidden=hidden) for text, hidden in pieces)
        elif cell.cell_type == "code" and cell.source.strip():
            steps.append(Step("code", cell.source))
    if not any(not cell.manual for cell in cells):
        raise ValueError(f"{path} has no graded test cells (code cells whose nbgrader metadata "
                         f"has grade: true and points); there is nothing to grade")
    steps, guard_call = _protect(steps)
    return Assignment(path, cells, steps, cell_ids, guard_call)


def split_hidden(source):
    """Split a test cell into ``[(code, hidden)]`` pieces at its hidden-tests markers.

    The pieces run one after the other, so a failure can be placed in a visible or a hidden
    piece. Markers inside an indented block, or a cell magic, keep the cell whole (hidden if
    it has hidden tests).
    """
    lines = source.splitlines()
    phrases = [marker.lstrip("# ") for marker in (BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)]
    marks = [i for i, line in enumerate(lines) if any(phrase in line for phrase in phrases)]
    if not marks:
        return [(source, False)]
    if source.lstrip().startswith("%%") or any(lines[i][:1].isspace() for i in marks):
        return [("\n".join(line for i, line in enumerate(lines) if i not in marks), True)]
    pieces, start, hidden = [], 0, False
    for mark in marks + [len(lines)]:
        text = "\n".join(lines[start:mark])
        if text.strip():
            pieces.append((text, hidden))
        start, hidden = mark + 1, not hidden
    return pieces


def _protect(steps):
    """Fill in the names each step's guard call records, and the guard's install call.

    Protected are the names the tests use that source cells bind (``np``, a helper, the
    data ``X``) and the builtins the tests use (``max``): an answer that rebinds one
    changes what the tests test. Names the solutions themselves bind are left to answers.
    """
    tests = [step for step in steps if step.kind == "test"]
    used = set().union(*(_names_used(step.source) for step in tests))
    answered = set().union(*(_names_bound(step.source)[0]
                             for step in steps if step.kind == "answer"))
    roots, imports, trusted_names = set(), set(), set()
    for step in steps:
        if step.kind == "answer":
            continue
        bound, modules = _names_bound(step.source)
        step.names = tuple(sorted((bound & used) - answered))
        trusted_names |= bound
        imports |= modules
        if step.kind == "test":
            roots |= {module.partition(".")[0] for module in modules}
    trusted = set(TRUSTED_ROOTS) | roots
    imports = sorted(name for name in imports if name.partition(".")[0] in trusted)
    builtin_names = sorted((used & set(vars(builtins))) - answered - trusted_names)
    return steps, (f"{GUARD}.install({sorted(roots)!r}, {imports!r}, {builtin_names!r})")


def _parse(source):
    """The module AST of a cell (IPython syntax turned into Python), or None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError, ImportError):
        return None


def _names_used(source):
    tree = _parse(source)
    if tree is None:
        return set(re.findall(r"[A-Za-z_]\w*", source))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _names_bound(source):
    """The names a cell binds outside its functions and classes (by assignment, import, def
    or class; ``x[0] = ...`` counts as binding ``x``), and the modules it imports."""
    tree = _parse(source)
    if tree is None:
        return set(), set()
    finder = _Bindings()
    finder.visit(tree)
    return finder.names - {"*"}, finder.modules


class _Bindings(ast.NodeVisitor):
    """Collects what ``_names_bound`` returns, without entering nested scopes."""

    def __init__(self):
        self.names, self.modules = set(), set()

    def visit_FunctionDef(self, node):
        self.names.add(node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        pass

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_Lambda

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store):
            self.names.add(node.id)

    def visit_Subscript(self, node):
        base = node.value
        while isinstance(base, (ast.Subscript, ast.Attribute)):
            base = base.value
        if isinstance(node.ctx, ast.Store) and isinstance(base, ast.Name):
            self.names.add(base.id)
        self.generic_visit(node)

    visit_Attribute = visit_Subscript

    def visit_Import(self, node):
        for alias in node.names:
            self.names.add(alias.asname or alias.name.partition(".")[0])
            self.modules.add(alias.name)

    def visit_ImportFrom(self, node):
        if node.module and not node.level:
            self.modules.add(node.module)
            for alias in node.names:
                self.names.add(alias.asname or alias.name)
                self.modules.add(f"{node.module}.{alias.name}")


# --- submissions --------------------------------------------------------------------------

#: Bytes a submission may have; a larger file is not read.
MAX_SUBMISSION_BYTES = 50 * 10**6
#: Bytes of UTF-8 a submission's name may have.
MAX_NAME_BYTES = 100

_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"),
               (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _raw(path):
    """The bytes of a file name (``os.fsencode``; a surrogate it cannot map stays in, as
    bytes that are not UTF-8)."""
    try:
        return os.fsencode(path)
    except UnicodeEncodeError:
        return os.fsdecode(path).encode("utf-8", "surrogatepass")


def shown_path(path):
    """``path`` (or a message naming one) as text that can be written anywhere: bytes that
    are not UTF-8 appear as ``\\xNN`` escapes."""
    return _raw(path).decode("utf-8", "backslashreplace")


def safe_name(text, suffix=""):
    """``text`` (plus ``suffix``) as a submission's name: a file name and a spreadsheet cell
    that is safe to show.

    Bytes that are not UTF-8 (``os.fsdecode``'s surrogates) become U+FFFD, the text is
    normalised (NFKC), every run of characters other than letters, digits, ``_``, ``.`` and
    ``-`` (control characters, spaces, ``=``, ``+``, ``@``, U+FFFD ...) becomes ``_``, and
    leading and trailing ``.`` and ``_`` go; a name that would start with ``-`` starts with
    ``_-``, so no spreadsheet reads it as a formula. It is cut, on a character boundary, to
    ``MAX_NAME_BYTES`` bytes of UTF-8 with the suffix; an empty name is ``notebook``.
    """
    text = _raw(text).decode("utf-8", "replace")
    text = unicodedata.normalize("NFKC", text)
    name = re.sub(r"[^\w.-]+", "_", text).strip("._")
    if name.startswith(("-", "=", "+", "@")):
        name = "_" + name
    room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    name = name.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip("._") or "notebook"
    return name + suffix


def name_submissions(paths):
    """Name each submission path: ``(names, taken)``, where ``taken[i]`` is the index of the
    submission whose name made submission ``i`` take a numbered one, or None.

    A name is the file's stem, with as many of the folders above it as it takes to tell it
    from other files with that stem (``alice/04.ipynb``, ``bob/04.ipynb`` -> ``alice-04``,
    ``bob-04``), made safe by ``safe_name``. Names that are still equal, ignoring case (a
    path given twice, names equal once made safe or cut), are told apart: the first keeps
    the name, the others get ``-2``, ``-3`` ..., first the names that needed no change to be
    safe, then by the name, then by the path's bytes. So the names do not depend on the order
    of ``paths``.
    """
    full = [Path(os.path.abspath(os.fsdecode(path))) for path in paths]

    def tail(path, depth):  # the stem and the depth - 1 folders above it
        return path.parts[-depth:-1] + (path.stem,)

    bases, changed = [], []
    for path in full:
        rivals = {other for other in full if other.stem == path.stem and other != path}
        depth = 1
        while depth < len(path.parts) and tail(path, depth) in {tail(o, depth) for o in rivals}:
            depth += 1
        bases.append(safe_name("-".join(tail(path, depth))))
        changed.append(bases[-1] != "-".join(tail(path, depth)))
    order = sorted(range(len(full)), key=lambda i: (bases[i].casefold(), changed[i], bases[i],
                                                    _raw(full[i]), i))
    names, taken, owner = [None] * len(full), [None] * len(full), {}
    for i in order:
        if bases[i].casefold() not in owner:
            owner[bases[i].casefold()] = i
            names[i] = bases[i]
    for i in order:
        if names[i] is None:
            count = 2
            while safe_name(bases[i], f"-{count}").casefold() in owner:
                count += 1
            names[i] = safe_name(bases[i], f"-{count}")
            owner[names[i].casefold()] = i
            taken[i] = owner[bases[i].casefold()]
    return names, taken


def submission_names(paths):
    """A distinct, safe name for each submission path (``name_submissions``)."""
    return name_submissions(paths)[0]


def read_submission(path):
    """The text of the submission at ``path``, read only if it is a regular file.

    A symbolic link, named pipe, device, socket or folder is not opened (a pipe would block
    the grader), nor a file over ``MAX_SUBMISSION_BYTES``. The file is opened without
    following a link and without blocking, and checked again once open. Raises
    ``ValueError`` with the reason.
    """
    limit = MAX_SUBMISSION_BYTES
    try:
        _check_file(os.lstat(path), limit)
        flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            _check_file(os.fstat(handle.fileno()), limit)  # it may have changed since
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"this file could not be read ({type(exc).__name__}: "
                         f"{shown_path(exc.strerror or str(exc))})") from None
    if len(data) > limit:
        raise ValueError(_too_large(f"more than {limit}", limit))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"this file is not a readable notebook (UnicodeDecodeError: "
                         f"{exc.reason} at byte {exc.start})") from None


def _check_file(info, limit):
    for test, kind in _FILE_KINDS:
        if test(info.st_mode):
            raise ValueError(f"this is {kind}, not a regular file, so it was not opened")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("this is not a regular file, so it was not opened")
    if info.st_size > limit:
        raise ValueError(_too_large(info.st_size, limit))


def _too_large(size, limit):
    return (f"this file has {size} bytes, over the limit of {limit} bytes for a submission, "
            f"so it was not read")


def read_answers(path, assignment):
    """The submission's answer cells as ``{grade_id: source}``, and notes on what is missing.

    Answer cells are found by their nbgrader ``grade_id`` (the first cell wins), or, when a
    notebook lost its metadata, by cell id. Raises ``ValueError`` when the file is not a
    regular file of at most ``MAX_SUBMISSION_BYTES`` (``read_submission``) or not a
    readable notebook.
    """
    text = read_submission(path)
    try:
        nb = nbformat.reads(text, as_version=4)
        cells = [cell for cell in nb["cells"] if isinstance(cell, dict)]
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same verdict
        raise ValueError(f"this file is not a readable notebook ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    wanted = set(assignment.answer_ids)
    answers, used = {}, set()
    for index, cell in enumerate(cells):
        meta = _metadata(cell)
        grade_id = meta.get("grade_id")
        if (meta.get("solution") and isinstance(grade_id, str) and grade_id in wanted
                and grade_id not in answers and cell.get("cell_type") == "code"
                and _source(cell) is not None):
            answers[grade_id] = _source(cell)
            used.add(index)
    for grade_id in sorted(wanted - set(answers)):
        cell_id = assignment.cell_ids.get(grade_id)  # None when the source has no cell ids
        for index, cell in enumerate(cells):
            if (cell_id is not None and index not in used and cell.get("id") == cell_id
                    and cell.get("cell_type") == "code" and _source(cell) is not None):
                answers[grade_id] = _source(cell)
                used.add(index)
                break
    notes = [f"Your notebook has no answer cell {grade_id!r}; it was graded as unanswered."
             for grade_id in assignment.answer_ids if grade_id not in answers]
    return answers, notes


def _metadata(cell):
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader if isinstance(nbgrader, dict) else {}


def _source(cell):
    source = cell.get("source")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)
    return source if isinstance(source, str) else None


def review_notes(answers):
    """What an instructor may want to look at in the answers (see ``course.grading.grade``)."""
    notes = []
    for grade_id, source in answers.items():
        found = [what for what, pattern in _REVIEW.items() if re.search(pattern, source)]
        if found:
            notes.append(f"answer {grade_id!r} uses {', '.join(found)}")
    return notes
