"""The autograder's reports: ``gradebook.csv``, ``gradebook.json`` and ``feedback/*.md``.

Every file is written to a temporary file in the same folder and then renamed over the
old one, so a crash or a full disk never leaves a half-written gradebook behind, and
whatever a submission may have put at those paths is replaced. The CSV is written last.
"""
import csv
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path


def number(value):
    """Points as people write them: ``2`` rather than ``2.0``, ``0.5`` as is."""
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def prepare(out_dir):
    """Create ``out_dir`` and check it can be written, before any grading starts."""
    out = Path(out_dir)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"cannot write to {out}")


def write(gradebook, out_dir):
    """Write the feedback files, the JSON details and the CSV gradebook into ``out_dir``."""
    out, folder = Path(out_dir), Path(out_dir) / "feedback"
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        folder.unlink()  # a submission's doing: ``feedback`` must be a folder
    prepare(out)
    for result in gradebook.submissions:
        atomic_write(folder / f"{result.name}.md", feedback(result, gradebook))
    atomic_write(out / "gradebook.json", details(gradebook))
    atomic_write(out / "gradebook.csv", gradebook_csv(gradebook))


def atomic_write(path, text):
    """Replace ``path`` with ``text`` in one step (a temporary file, then a rename)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # a folder a submission put there would stop the rename
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below; removed if the write fails)
        "w", encoding="utf-8", newline="", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
        delete=False)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def gradebook_csv(gradebook):
    """One row per submission: its name, the points per graded cell, score, max_score."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission"] + [cell.grade_id for cell in gradebook.cells]
                    + ["score", "max_score"])
    for result in gradebook.submissions:
        writer.writerow([result.name] + [number(cell.points) for cell in result.cells]
                        + [number(result.score), number(result.max_score)])
    return buffer.getvalue()


def details(gradebook):
    """The gradebook as JSON, with every message. Nothing in it varies between runs."""
    data = {
        "source": gradebook.source,
        "max_score": gradebook.max_score,
        "cells": [{"grade_id": cell.grade_id, "points": cell.points,
                   "hidden_tests": cell.hidden_tests,
                   "graded_by": "hand" if cell.manual else "tests"}
                  for cell in gradebook.cells],
        "submissions": [{
            "submission": result.name, "file": result.path, "score": result.score,
            "max_score": result.max_score, "error": result.error or None,
            "notes": result.notes, "review": result.review,
            "cells": [{"grade_id": cell.grade_id, "points": cell.points,
                       "max_points": cell.max_points, "passed": cell.passed,
                       "message": cell.message, "traceback": cell.traceback}
                      for cell in result.cells],
        } for result in gradebook.submissions],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def feedback(result, gradebook):
    """What the student reads: the score, a table of tests, then what failed and why."""
    lines = [f"# Feedback: {result.name}", "",
             f"Notebook: `{Path(gradebook.source).name}`", "",
             f"**Score: {number(result.score)} / {number(result.max_score)}**", ""]
    if result.error:
        lines += [f"This submission could not be graded: {result.error}", ""]
    lines += ["| Test | Points | Result |", "| --- | ---: | --- |"]
    for cell in result.cells:
        if cell.points is None:
            points, verdict = f"– / {number(cell.max_points)}", "graded by hand"
        else:
            points = f"{number(cell.points)} / {number(cell.max_points)}"
            verdict = "passed" if cell.passed else "failed"
        lines.append(f"| `{cell.grade_id}` | {points} | {verdict} |")
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    failed = [cell for cell in result.cells if cell.points is not None and not cell.passed]
    if failed:
        lines += ["", "## What failed"]
        for cell in failed:
            lines += ["", f"### `{cell.grade_id}` ({number(cell.points)} / "
                          f"{number(cell.max_points)})", "", cell.message]
            if cell.traceback:
                fence = "`" * max(3, _longest_backticks(cell.traceback) + 1)
                lines += ["", f"{fence}text", cell.traceback, fence]
    return "\n".join(lines) + "\n"


def _longest_backticks(text):
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
