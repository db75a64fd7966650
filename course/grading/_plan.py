"""What runs when a submission is graded: the source notebook's plan and the submission's cells.

``load_source`` reads a source (solution) notebook into an ``Assignment``: its graded cells
and a plan of ``Step``s (``course.grading._execute``) in which every code cell of the source
up to the last test cell runs as it is (the cells after it cannot change a score, so they do
not run), except that answer cells (nbgrader ``solution: true``) are left for the submission
and test cells are split into visible and hidden pieces and rewritten:

- for the student's kernel, every ``check(what, got, expected, ...)`` (and
  ``check_at_least``/``check_at_most``) becomes ``send(site, got)``: only the value under
  test is computed there, and sent out (``course.grading._values``). Statements whose only
  use is to compute expected values (``expected = ...``, ``reference.fit(...)``) go too;
- for the reference run of the source, the same call becomes ``record(site, ...)``, which
  sends every argument.

A test cell must hold at least one check and no ``assert``: a judgment made in the kernel
could be won by an object that says yes to everything.

``read_answers`` takes from a submission its answer cells, matched by ``grade_id`` (or by
cell id when the metadata is lost), and the code cells the student added, each placed after
the source cell that comes before it in the submission. Everything else comes from the
source. A submission is read only when it is a regular file under a size limit
(``read_submission``); ``name_submissions`` gives each one a safe, distinct name.
"""
import ast
import copy
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.grading import release
from course.grading._execute import Step
from course.grading._values import _KINDS
from course.grading.markup import BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS

SEND, RECORD = "__course_send__", "__course_record__"
#: What the grader runs first in a student's kernel, and in the reference kernel.
PRELUDE = {False: f"from course.grading._values import send as {SEND}",
           True: f"from course.grading._values import record as {RECORD}"}


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

    ``steps`` hold the solutions in the answer steps and the student's version of each test;
    ``plan(answers, extra)`` puts a submission's answers and added cells in their place,
    ``reference_plan()`` is the plan of the reference run. ``cell_ids``, ``grade_ids`` and
    ``sources`` map a cell id, ``grade_id`` or code of the source to the index of its cell. ``hidden_lines``:
    the hidden tests' lines, which no report may show.
    """

    path: str
    cells: list
    steps: list
    cell_ids: dict
    grade_ids: dict
    sources: dict
    hidden_lines: list
    forbidden: dict = None  # answer grade_id -> library names it may not use
    exercise: dict = None  # test grade_id -> the answer before it
    aliases: dict = None  # what the source's imports bind: name -> dotted module path

    @property
    def answer_ids(self):
        """The ``grade_id`` of every answer cell that runs, in notebook order."""
        return [step.grade_id for step in self.steps if step.kind == "answer"]

    def plan(self, answers, extra=()):
        """The steps with the answers in ``answers`` (grade_id -> source), stubs elsewhere,
        and the student's cells ``extra`` (``[(index of the source cell before it, code)]``)."""
        first = self.steps[0].cell
        steps = [Step("student", code, cell=-1) for index, code in extra if index < first]
        for n, step in enumerate(self.steps):
            if step.kind == "answer":
                step = Step("answer", answers.get(step.grade_id, step.stub), step.grade_id,
                            stub=step.stub, cell=step.cell)
            steps.append(step)
            # the student's cells up to the next step; after the last step (a test), none
            later = self.steps[n + 1].cell if n + 1 < len(self.steps) else step.cell
            steps += [Step("student", code, cell=step.cell) for index, code in extra
                      if step.cell <= index < later]
        return [Step("code", PRELUDE[False])] + steps

    def reference_plan(self):
        """The steps of the reference run: the solutions, and tests that record every check."""
        return [Step("code", PRELUDE[True])] + [
            Step("test", step.reference, step.grade_id, step.hidden, cell=step.cell)
            if step.kind == "test" else step for step in self.steps]


def load_source(path):
    """Read the source notebook at ``path`` for grading.

    Raises ``ValueError`` (``MarkupError``) when its markup is malformed, it has no graded
    test cell, or a test cell has no check or an ``assert``; ``OSError`` when it cannot be
    read.
    """
    path = str(path)
    nb = release.read_notebook(path)
    student = release.release_notebook(nb, Path(path).name)  # also checks the markup
    cell_ids, grade_ids, cells, steps, hidden_lines = {}, {}, [], [], []
    forbidden, exercise, answer = {}, {}, None
    for index, (cell, released) in enumerate(zip(nb.cells, student.cells)):
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if cell.get("id"):
            cell_ids[cell.id] = index
        if grade_id:
            grade_ids[grade_id] = index
        if meta.get("solution"):
            answer = grade_id if cell.cell_type == "code" else answer
            names = cell.metadata.get("course", {}).get("forbidden", [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise release.MarkupError(f"{Path(path).name}, answer {grade_id!r}: "
                                          f"metadata course.forbidden must be a list of names")
            if names:
                forbidden[grade_id] = names
            if meta.get("grade"):
                cells.append(GradedCell(grade_id, meta["points"], manual=True))
            if cell.cell_type == "code":
                steps.append(Step("answer", cell.source, grade_id, stub=released.source,
                                  cell=index))
        elif cell.cell_type == "code" and meta.get("grade"):
            exercise[grade_id] = answer
            pieces = split_hidden(cell.source)
            cells.append(GradedCell(grade_id, meta["points"],
                                    hidden_tests=any(hidden for _, hidden in pieces)))
            steps.extend(Step("test", text, grade_id, hidden=hidden, cell=index)
                         for text, hidden in pieces)
            hidden_lines += [line.strip() for text, hidden in pieces if hidden
                             for line in text.splitlines() if len(line.strip()) >= 8]
        elif cell.cell_type == "code" and cell.source.strip():
            steps.append(Step("code", cell.source, cell=index))
    if not any(not cell.manual for cell in cells):
        raise ValueError(f"{path} has no graded test cells (code cells whose nbgrader metadata "
                         f"has grade: true and points); there is nothing to grade")
    # Cells after the last test cannot change a score (written answers are read, not run).
    del steps[max(n for n, step in enumerate(steps) if step.kind == "test") + 1:]
    _rewrite_tests(steps, Path(path).name)
    hidden_lines += [line.strip() for step in steps if step.hidden
                     for line in step.source.splitlines() if len(line.strip()) >= 8]
    sources = {cell.source.strip(): index for index, cell in enumerate(nb.cells)
               if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("solution")}
    aliases = {}
    for step in steps:
        if step.kind != "answer":
            aliases.update(_imports(_parse(step.source)))
    return Assignment(path, cells, steps, cell_ids, grade_ids, sources, hidden_lines,
                      forbidden, exercise, aliases)


def split_hidden(source):
    """Split a test cell into ``[(code, hidden)]`` pieces at its hidden-tests markers.

    The pieces run one after the other, so a failure can be placed in a visible or a hidden
    piece. Markers inside an indented block keep the cell whole (hidden if it has hidden
    tests).
    """
    lines = source.splitlines()
    phrases = [marker.lstrip("# ") for marker in (BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)]
    marks = [i for i, line in enumerate(lines) if any(phrase in line for phrase in phrases)]
    if not marks:
        return [(source, False)]
    if any(lines[i][:1].isspace() for i in marks):
        return [("\n".join(line for i, line in enumerate(lines) if i not in marks), True)]
    pieces, start, hidden = [], 0, False
    for mark in marks + [len(lines)]:
        text = "\n".join(lines[start:mark])
        if text.strip():
            pieces.append((text, hidden))
        start, hidden = mark + 1, not hidden
    return pieces


# --- tests rewritten: the student's kernel sends, the reference records ------------------

def _rewrite_tests(steps, notebook):
    """Give every test step its student version (``source``) and its ``reference``."""
    trees = {id(step): _parse(step.source) for step in steps}
    modules = set()
    for tree in filter(None, trees.values()):
        modules |= {alias.asname or alias.name.partition(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    free = {id(step): _loads(tree, free=True) for step in steps
            if (tree := trees[id(step)]) is not None}  # the names each step reads
    counts = {}
    for step in steps:
        if step.kind != "test":
            continue
        where = f"{notebook}, test cell {step.grade_id!r}"
        tree = trees[id(step)]
        if tree is None or step.source.lstrip().startswith("%%"):
            raise release.MarkupError(f"{where}: a test must be Python code (no cell magic) "
                                      f"that the grader can read")
        for node in ast.walk(tree):
            called = node.func if isinstance(node, ast.Call) else None
            called = getattr(called, "attr", getattr(called, "id", ""))
            if isinstance(node, ast.Assert) or called.startswith("assert"):
                raise release.MarkupError(
                    f"{where}, line {node.lineno}: a test cell may not judge in the kernel "
                    f"({called + '()' if called else 'assert'}): an answer could make the condition true "
                    f"without the work; write check(what, value, expected) or "
                    f"check_at_least(what, value, bound)")
        first = counts.get(step.grade_id, 0)
        reference = _Checks(step, first, student=False).visit(copy.deepcopy(tree))
        checks = _Checks(step, first, student=True)
        student = checks.visit(tree)
        counts[step.grade_id] = checks.count
        elsewhere = set().union(*(names for key, names in free.items() if key != id(step)))
        _drop_reference_only(student, elsewhere, modules)
        step.source, step.reference = ast.unparse(student), ast.unparse(reference)
    for step in steps:
        if step.kind == "test" and not counts.get(step.grade_id):
            raise release.MarkupError(f"{notebook}, test cell {step.grade_id!r}: it has no "
                                      f"check(...), so there is nothing to grade")


class _Checks(ast.NodeTransformer):
    """Turns each check call into ``send(site, got)`` or ``record(site, kind, check, ...)``."""

    def __init__(self, step, first, student):
        self.grade_id, self.count, self.student = step.grade_id, first, student
        self.suffix = ":hidden" if step.hidden else ""

    def visit_Call(self, node):
        self.generic_visit(node)
        if not (isinstance(node.func, ast.Name) and node.func.id in _KINDS):
            return node
        site = ast.Constant(f"{self.grade_id}:{self.count}{self.suffix}")
        self.count += 1
        got = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "got"), None)
        if got is None or any(isinstance(a, ast.Starred) for a in node.args) \
                or any(k.arg is None for k in node.keywords):
            raise release.MarkupError(f"test cell {self.grade_id!r}, line {node.lineno}: "
                                      f"give {node.func.id} its value as the second argument, "
                                      f"without * or **")
        if self.student:
            return ast.copy_location(ast.Call(ast.Name(SEND, ast.Load()), [site, got], []), node)
        kind = ast.Constant(_KINDS[node.func.id])
        return ast.copy_location(ast.Call(ast.Name(RECORD, ast.Load()),
                                          [site, kind, node.func, *node.args], node.keywords),
                                 node)


def _effect(stmt, modules):
    """The names a statement binds or changes when it is one the student's kernel can skip
    (``x = ...``, ``x += ...``, ``x.append(...)``, ``reference.fit(...)``), else None."""
    targets = [t for target in getattr(stmt, "targets", ())
               for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
    if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in targets):
        names = {t.id for t in targets}
    elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        names = {stmt.target.id}
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
            and isinstance(stmt.value.func, ast.Attribute) and _root(stmt.value.func):
        names = {_root(stmt.value.func)}
    else:
        return None
    for node in ast.walk(stmt.value):  # a call on another object may change that object
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and _root(node.func) not in names | modules \
                or isinstance(node, (ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await)):
            return None
    return names


def _root(node):
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _drop_reference_only(tree, elsewhere, modules):
    """Remove the statements whose only use is to compute expected values: those of
    ``_effect``'s kinds whose names are read nowhere but in other such statements."""
    effects = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and (names := _effect(node, modules)) is not None:
            effects[node] = names
    owner = {node: stmt for stmt in effects for node in ast.walk(stmt) if node is not stmt}
    bound_otherwise = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
                       and not isinstance(node.ctx, ast.Load) and owner.get(node) is None}
    dead = set().union(*effects.values()) - bound_otherwise - elsewhere - modules
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in dead:
                stmt = owner.get(node)
                if stmt is None or not effects[stmt] <= dead:
                    dead.discard(node.id)
                    changed = True
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(parent, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [s for s in body if not (s in effects and effects[s] <= dead)]
                body[:] = kept or [ast.Pass()]


# --- shortcuts: library names an exercise forbids ---------------------------------------

def shortcuts(assignment, answers, extra=()):
    """``{answer grade_id: sorted forbidden names it uses}``, for the answers that use any.

    A static reading of the answer's code (what its names and attribute chains refer to,
    through the notebook's imports and the student's own). A function or class that the answer
    uses and that the student defined elsewhere (a ``def``, a ``class`` or an assignment such as
    ``helper = conv.im2col``), in another answer or in one of the cells ``extra`` they added, is
    read as part of the answer, so wrapping a forbidden function in a helper does not hide it.
    Code the answer does not use (a cell comparing a finished answer with the library, say)
    does not count.
    """
    trees = [tree for tree in map(_parse, [*answers.values(), *extra]) if tree is not None]
    aliases = dict(assignment.aliases or {})
    for tree in trees:
        aliases.update(_imports(tree))
    defined = {}  # name -> the statement of the student's that defines it at the top of a cell
    for node in (node for tree in trees for node in tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):  # helper = conv.im2col, or a lambda
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update((target.id, node) for target in targets if isinstance(target, ast.Name))
    found = {}
    for grade_id, names in (assignment.forbidden or {}).items():
        tree = _parse(answers.get(grade_id, ""))
        if tree is None:
            continue
        read, todo = [tree], [tree]
        while todo:  # the student's functions and classes that the code read so far uses
            for name in _loads(todo.pop()) & defined.keys():
                if defined[name] not in read:  # AST nodes compare by identity
                    read.append(defined[name])
                    todo.append(defined[name])
        paths = set().union(*(_references(part, aliases) for part in read))
        used = sorted(name for name in names
                      if any(path == name or path.startswith(name + ".") for path in paths))
        if used:
            found[grade_id] = used
    return found


def _imports(tree):
    """What the imports of a cell bind: ``{name: dotted path}``."""
    bound = {}
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.partition(".")[0]
                bound[name] = alias.name if alias.asname else name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _bound(scope):
    """The names a scope (a cell, function, class or comprehension) binds itself other than by an
    import: assignments, loop, ``with`` and ``except`` targets, arguments, the functions and
    classes it defines. A student's ``flops = 0`` or ``losses = []`` is theirs, not the module."""
    arguments = scope.args if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) \
        else None
    names = {a.arg for a in ast.walk(arguments) if isinstance(a, ast.arg)} if arguments else set()
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))
    return names


def _references(tree, aliases):
    """The dotted paths a cell refers to: imported modules and the attributes read from them.

    A name counts only where it means the import: not where the cell, or the function,
    class or comprehension around it, binds that name itself (a class's names are not seen
    from its methods, as in Python).
    """
    paths = set(_imports(tree).values())

    def visit(node, own):
        if isinstance(node, ast.ClassDef):
            inside = own | _bound(node)
            for child in ast.iter_child_nodes(node):
                visit(child, own if isinstance(child, _SCOPES) else inside)
            return
        if node is tree or isinstance(node, _SCOPES):
            own = own | _bound(node)
        chain, root = [], node
        while isinstance(root, ast.Attribute):
            chain.append(root.attr)
            root = root.value
        if isinstance(root, ast.Name) and root.id in aliases and root.id not in own:
            parts = [aliases[root.id]] + chain[::-1]
            paths.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
        for child in ast.iter_child_nodes(node):
            visit(child, own)

    visit(tree, frozenset())
    return paths


def _parse(source):
    """The module AST of a cell (IPython syntax turned into Python), or None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError, ImportError):
        return None


def _loads(tree, free=False):
    """The names a cell reads (``free``: only those it does not bind itself)."""
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    if free:
        names -= {node.id for node in ast.walk(tree)
                  if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)}
        names -= {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
    return names


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
    """The submission's answers as ``{grade_id: source}`` (written answers too), the code
    cells the student added
    as ``[(index of the source cell before it, source)]`` (-1: before the first), and notes
    on what is missing.

    Answer cells are found by their nbgrader ``grade_id`` (the first cell wins), or, when a
    notebook lost its metadata, by cell id. A code cell that is neither an answer nor a
    cell of the source (by ``grade_id``, cell id or the same code) is the student's own, and
    runs where it stands. Raises ``ValueError`` when the file is not a regular file of at most
    ``MAX_SUBMISSION_BYTES`` (``read_submission``) or not a readable notebook.
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
    answer_cells = {grade_id: assignment.grade_ids[grade_id] for grade_id in wanted}
    for grade_id in sorted(wanted - set(answers)):
        for index, cell in enumerate(cells):
            if (index not in used and _cell_id(cell) is not None
                    and assignment.cell_ids.get(_cell_id(cell)) == answer_cells[grade_id]
                    and cell.get("cell_type") == "code" and _source(cell) is not None):
                answers[grade_id] = _source(cell)
                used.add(index)
                break
    extra, anchor = [], -1
    for index, cell in enumerate(cells):
        grade_id = _metadata(cell).get("grade_id")
        known = assignment.grade_ids.get(grade_id) if isinstance(grade_id, str) else None
        if known is None:
            known = assignment.cell_ids.get(_cell_id(cell))
        if known is None and index not in used:  # a source cell saved without its id
            known = assignment.sources.get((_source(cell) or "").strip())
        if known is not None:
            anchor = known
        elif index not in used and cell.get("cell_type") == "code" and _source(cell):
            extra.append((anchor, _source(cell)))
    notes = [f"Your notebook has no answer cell {grade_id!r}; it was graded as unanswered."
             for grade_id in assignment.answer_ids if grade_id not in answers]
    for written in (cell.grade_id for cell in assignment.cells if cell.manual):
        answers.setdefault(written, next((_source(cell) or "" for cell in cells
                                          if _metadata(cell).get("grade_id") == written), ""))
    return answers, extra, notes


def _cell_id(cell):
    cell_id = cell.get("id")
    return cell_id if isinstance(cell_id, str) else None


def _metadata(cell):
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader if isinstance(nbgrader, dict) else {}


def _source(cell):
    source = cell.get("source")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)
    return source if isinstance(source, str) else None
