"""Student notebooks from solution notebooks: ``course release SOURCE_DIR OUTPUT_DIR [--check]``.

For every cell of a solution notebook (markup in ``course.grading.markup``):

- an exercise cell (``solution: true``) keeps everything but its solution: each
  ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes one line, indented like the
  region, that raises ``NotImplementedError("<grade_id>: replace this line with your code")``.
  A written answer (markdown) becomes "YOUR ANSWER HERE". An exercise cell without a region
  is replaced as a whole;
- every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region is removed;
- check cells (``grade: true``) and locked cells become read-only and undeletable in
  JupyterLab (``editable: false``, ``deletable: false``); exercise cells stay editable;
- outputs, execution counts and execution timings are cleared.

Malformed markup stops the release with a ``MarkupError`` naming the notebook and the cell.
The output is a function of the input alone, so releasing twice gives identical files and
``check`` can tell whether a folder of student notebooks is up to date.
"""
import copy
import functools
import json
import shutil
import sys
from pathlib import Path

import nbformat

from course.grading.markup import BEGIN_HIDDEN_TESTS, BEGIN_SOLUTION, END_HIDDEN_TESTS, END_SOLUTION

ANSWER_STUB = "YOUR ANSWER HERE"
# The phrase that identifies each marker line, and the region it opens or closes.
_MARKERS = {
    BEGIN_SOLUTION: ("begin", "solution"), END_SOLUTION: ("end", "solution"),
    BEGIN_HIDDEN_TESTS: ("begin", "hidden"), END_HIDDEN_TESTS: ("end", "hidden"),
}
_PHRASES = {marker: marker.lstrip("# ") for marker in _MARKERS}  # "BEGIN SOLUTION", ...


class MarkupError(ValueError):
    """Malformed markup in a solution notebook; the message names the notebook and the cell."""


def code_stub(grade_id, indent=""):
    """The line that replaces a solution region in the student version."""
    return f'{indent}raise NotImplementedError("{grade_id}: replace this line with your code")'


def answer_stub(indent=""):
    """The text that replaces a written answer in the student version."""
    return indent + ANSWER_STUB


# --- one notebook -------------------------------------------------------------------------

def release_notebook(nb, name="notebook"):
    """Return the student version of the solution notebook ``nb`` (which is left unchanged).

    ``name`` (the file name, say) is used in error messages.
    """
    student = copy.deepcopy(nb)
    _check_grade_ids(student, name)
    for index, cell in enumerate(student.cells):
        meta = cell.metadata.get("nbgrader")
        grade_id = meta.get("grade_id") if meta else None
        where = f"{name}, cell {index}" + (f" ({grade_id})" if grade_id else "")
        _release_cell(cell, meta, where)
    student.metadata.pop("widgets", None)  # saved widget state belongs to the cleared outputs
    return student


def _check_grade_ids(nb, name):
    seen = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is None:
            continue
        if grade_id in seen:
            raise MarkupError(f"{name}, cell {index}: grade_id {grade_id!r} is already used by "
                              f"cell {seen[grade_id]}; every grade_id must be unique")
        seen[grade_id] = index


def _release_cell(cell, meta, where):
    lines = cell.source.splitlines()
    regions = _find_regions(lines, where)
    if meta is None:
        if regions:
            raise MarkupError(f"{where}: has grading markers but no nbgrader metadata; build it "
                              f"with course.grading.markup (solution_cell, test_cell)")
    else:
        _check_metadata(meta, regions, where)
    if meta and meta.get("solution"):
        if cell.cell_type == "markdown":
            stub = answer_stub
        else:
            stub = functools.partial(code_stub, meta["grade_id"])
        if not any(kind == "solution" for kind, _, _ in regions):
            lines, regions = [stub("")], []  # no region marked: the whole cell is the answer
    else:
        stub = None
    source = _replace_regions(lines, regions, stub)
    cell.source = source + "\n" if cell.source.endswith("\n") else source
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    cell.metadata.pop("execution", None)  # timestamps written by nbclient and nbconvert
    if meta and not meta.get("solution") and (meta.get("grade") or meta.get("locked")):
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False


def _check_metadata(meta, regions, where):
    solution, grade = meta.get("solution", False), meta.get("grade", False)
    if (solution or grade) and not meta.get("grade_id"):
        raise MarkupError(f"{where}: an exercise or check cell needs a grade_id")
    if grade:
        points = meta.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise MarkupError(f"{where}: a graded cell needs points (a number >= 0), "
                              f"got {points!r}")
    if not solution:
        for kind, begin, _ in regions:
            if kind == "solution":
                raise MarkupError(f"{where}: {BEGIN_SOLUTION!r} on line {begin + 1} of a cell that "
                                  f"is not an exercise (nbgrader solution is not true)")


def _marker(line):
    """The marker a line holds (nbgrader's rule: the line contains the phrase), or None."""
    for marker, phrase in _PHRASES.items():
        if phrase in line:
            return marker
    return None


def _find_regions(lines, where):
    """Return ``[(kind, begin, end)]``: line indices of each region's BEGIN and END markers."""
    regions, open_marker, begin = [], None, None
    for i, line in enumerate(lines):
        marker = _marker(line)
        if marker is None:
            continue
        side, kind = _MARKERS[marker]
        if side == "begin":
            if open_marker is not None:
                raise MarkupError(f"{where}: {marker!r} on line {i + 1} is inside the region "
                                  f"opened by {open_marker!r} on line {begin + 1}")
            open_marker, begin = marker, i
        else:
            if open_marker is None or _MARKERS[open_marker][1] != kind:
                expected = BEGIN_SOLUTION if kind == "solution" else BEGIN_HIDDEN_TESTS
                raise MarkupError(f"{where}: {marker!r} on line {i + 1} has no {expected!r} "
                                  f"before it")
            regions.append((kind, begin, i))
            open_marker = None
    if open_marker is not None:
        closing = END_SOLUTION if _MARKERS[open_marker][1] == "solution" else END_HIDDEN_TESTS
        raise MarkupError(f"{where}: {open_marker!r} on line {begin + 1} has no {closing!r}")
    return regions


def _replace_regions(lines, regions, stub):
    """Drop hidden-test regions; replace each solution region by ``stub(its indentation)``."""
    out, start = [], 0
    for kind, begin, end in regions:
        out.extend(lines[start:begin])
        if kind == "solution":
            indent = lines[begin][:len(lines[begin]) - len(lines[begin].lstrip())]
            out.append(stub(indent))
        start = end + 1
    out.extend(lines[start:])
    return "\n".join(out)


# --- folders ------------------------------------------------------------------------------

def read_notebook(path):
    """Read a notebook; cells saved without an id get ``cell-<index>`` (not a random id)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if (data.get("nbformat"), data.get("nbformat_minor", 0)) >= (4, 5):
        for index, cell in enumerate(data.get("cells", [])):
            cell.setdefault("id", f"cell-{index}")
    return nbformat.reads(json.dumps(data), as_version=4)


def notebook_text(nb):
    """The notebook as the exact text written to disk (nbformat's sorted-key JSON)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def source_notebooks(source_dir):
    """The solution notebooks in ``source_dir``, sorted by name (checkpoints skipped)."""
    return sorted(path for path in Path(source_dir).glob("*.ipynb")
                  if not path.name.startswith(".") and not path.stem.endswith("-checkpoint"))


def student_versions(source_dir):
    """``{file name: text of the student notebook}`` for every notebook in ``source_dir``."""
    if not Path(source_dir).is_dir():
        raise FileNotFoundError(f"no folder {source_dir}")
    paths = source_notebooks(source_dir)
    return {path.name: notebook_text(release_notebook(read_notebook(path), path.name))
            for path in paths}


def _same_folder(source_dir, output_dir):
    out = Path(output_dir)
    return out.exists() and Path(source_dir).resolve() == out.resolve()


def release(source_dir, output_dir):
    """Write the student version of every notebook in ``source_dir`` into ``output_dir``.

    Files that are already up to date are left alone. Returns the paths written.
    """
    if _same_folder(source_dir, output_dir):
        raise ValueError(f"the output folder {output_dir} is the source folder: that would "
                         f"overwrite the solutions")
    versions = student_versions(source_dir)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in versions.items():
        path = output / name
        data = text.encode("utf-8")
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            written.append(path)
    return written


def differences(source_dir, output_dir):
    """``{file name: what is wrong}`` for each notebook of ``output_dir`` that is not as
    ``release`` would write it: missing, out of date, or without a source notebook."""
    versions = student_versions(source_dir)
    output = Path(output_dir)
    found = {path.name for path in source_notebooks(output)} if output.is_dir() else set()
    wrong = {}
    for name, text in versions.items():
        if name not in found:
            wrong[name] = "missing"
        elif (output / name).read_bytes() != text.encode("utf-8"):
            wrong[name] = "out of date"
    for name in found - set(versions):
        wrong[name] = f"has no source notebook in {source_dir} (delete it)"
    return dict(sorted(wrong.items()))


def check(source_dir, output_dir):
    """The names of the notebooks in ``output_dir`` that are missing, out of date or extra."""
    return list(differences(source_dir, output_dir))


STUDENT_README = """# Neural Networks from Scratch: the lessons

[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/{slug}/HEAD?urlpath=lab/tree/lessons/00_welcome.ipynb)

Jupyter lessons that build neural networks from first principles, from a single neuron to
convolutional networks and training on several processes. Click the badge to work in your
browser, or on your own machine:

```bash
python -m pip install -e . && jupyter lab lessons/00_welcome.ipynb
```

Work through `lessons/` in order. Each lesson says what to write; its check cells tell you at
once whether your code is right. Your instructor grades the notebook you hand in by running it
from top to bottom, with more tests than the ones you see.

`course/` is the small library the lessons use; `course info` checks your setup.

This repository holds no solutions and no hidden tests. (For instructors: it is written by
`course release solutions lessons --student-repo DIR` from the course's own repository, which
holds them and stays private; publish this one.)
"""
#: What a student repository takes from the course's repository, besides the lessons.
STUDENT_FILES = ("course", "binder", "pyproject.toml", "LICENSE")


def student_repository(source_dir, target, slug="OWNER/REPOSITORY"):
    """Write a repository students may see into the empty folder ``target``: the student
    notebooks released from ``source_dir`` in ``lessons/``, the library, ``binder/``, the
    licence and a README with a Binder badge for the GitHub repository ``slug``. No
    solution notebook, hidden test or test suite goes in. Returns ``target`` as a Path."""
    import course

    root = Path(course.__file__).resolve().parent.parent
    missing = [name for name in STUDENT_FILES if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(f"{root} is not a checkout of the course (no {', '.join(missing)}):"
                                f" a student repository is written from one")
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} is not empty: give a new or empty folder")
    target.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in STUDENT_FILES:
        if (root / name).is_dir():
            shutil.copytree(root / name, target / name, ignore=ignore)
        else:
            shutil.copy2(root / name, target / name)
    release(source_dir, target / "lessons")
    (target / "README.md").write_text(STUDENT_README.format(slug=slug), encoding="utf-8")
    return target


def main(source_dir, output_dir, check=False, student_repo=None, slug="OWNER/REPOSITORY"):
    """``course release``: write (or, with ``check``, verify) the student notebooks.

    Returns the exit status: 0 on success, 1 when out of date or the markup is malformed.
    """
    try:
        if check:
            wrong = differences(source_dir, output_dir)
        else:
            written = release(source_dir, output_dir)
            wrong = differences(source_dir, output_dir)  # after a release: only extra files
    except (OSError, ValueError) as exc:  # MarkupError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if check:
        if not wrong:
            print(f"{output_dir} is up to date with {source_dir}")
            return 0
        for name, problem in wrong.items():
            print(f"{Path(output_dir) / name}: {problem}")
        print(f"to update it, run: course release {source_dir} {output_dir}")
        return 1
    for path in written:
        print(f"wrote {path}")
    unchanged = len(source_notebooks(source_dir)) - len(written)
    print(f"{len(written)} written, {unchanged} already up to date")
    for name, problem in wrong.items():
        print(f"note: {Path(output_dir) / name} {problem}")
    if student_repo:
        try:
            student_repository(source_dir, student_repo, slug)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote the student repository {student_repo} (lessons, library, binder, licence; "
              f"no solutions or hidden tests)")
    return 0
