"""The autograder's reports: ``gradebook.csv``, ``gradebook.json`` and ``feedback/*.md``.

Every file is written to a temporary file in the same folder and then renamed over the
old one, so a crash or a full disk never leaves a half-written gradebook behind, and
whatever a submission may have put at those paths is replaced. The CSV is written last.

A submission runs with the grader's rights and may write into the output folder while it
is graded, so nothing found there is trusted:

- a symbolic link, file or folder at ``feedback`` or at a report's path is itself
  replaced: nothing is ever written through a link, nor into a folder one leads to. Where
  the system can (Linux, macOS), every step works relative to the folders already
  opened, so nothing can be swapped in between a check and a write;
- an output folder that is itself a symbolic link is refused with an error (an
  ``OSError``), before grading (``prepare``) as when writing: give the folder it leads to.

Text a student can influence (messages, notes, errors, tracebacks, the submission's name)
is cut to ``TEXT_LIMIT`` characters, saying how long it was, in the JSON as in the
feedback. The JSON keeps it as data. In the feedback it appears only in indented code
blocks (every line of it after four spaces) or in code spans whose backtick fences are
longer than any run of backticks in it, with control characters replaced: it cannot add
headings, tables, links, images, emphasis or HTML to what the student reads.
"""
import csv
import io
import json
import os
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path

#: Characters of one message, note, error or traceback that reach a report.
TEXT_LIMIT = 2048
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_NEW_FILE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_DIR_FD = {os.open, os.stat, os.mkdir, os.unlink, os.rename} <= os.supports_dir_fd
_TOTAL = re.compile(r"\.\.\. \[truncated: ([\d,]+) characters in all\]")
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def number(value):
    """Points as people write them: ``2`` rather than ``2.0``, ``0.5`` as is."""
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def prepare(out_dir):
    """Create ``out_dir`` and its ``feedback`` folder and check they can be written, before
    any grading starts. An ``out_dir`` that is a symbolic link is refused (``OSError``)."""
    out = Path(out_dir)
    _refuse_link(out)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"cannot write to {out}")
    with _Folder.open(out) as folder:
        folder.subfolder("feedback").close()


def write(gradebook, out_dir):
    """Write the feedback files, the JSON details and the CSV gradebook into ``out_dir``."""
    prepare(out_dir)
    with _Folder.open(out_dir) as out:
        with out.subfolder("feedback") as folder:
            for result in gradebook.submissions:
                folder.replace(f"{result.name}.md", feedback(result, gradebook))
        out.replace("gradebook.json", details(gradebook))
        out.replace("manual.csv", manual_csv(gradebook))
        out.replace("gradebook.csv", gradebook_csv(gradebook))


def atomic_write(path, text):
    """Replace ``path`` with ``text`` in one step (a temporary file, then a rename). A link
    or folder at ``path`` is replaced, never followed; its folder must not be a link."""
    path = Path(path)
    with _Folder.open(path.parent) as folder:
        folder.replace(path.name, text)


def shorten(text, keep_end=False):
    """``text`` cut to ``TEXT_LIMIT`` characters (its start, or with ``keep_end`` its end),
    with a note of how long it was."""
    text = "" if text is None else str(text)
    if len(text) <= TEXT_LIMIT:
        return text
    total = len(text)
    known = _TOTAL.search(text[:100]) or _TOTAL.search(text[-100:])
    if known:  # cut already while grading: how long it was then
        total = max(total, int(known.group(1).replace(",", "")))
    note = f"... [truncated: {total:,} characters in all]"
    if keep_end:
        return note + "\n" + text[len(text) - TEXT_LIMIT:]
    return text[:TEXT_LIMIT] + note


def _refuse_link(path):
    if Path(path).is_symlink():
        raise OSError(f"the output folder {path} is a symbolic link; "
                      f"give the folder it leads to ({os.path.realpath(path)})")


class _Folder:
    """An open folder in which reports are made and replaced, never through a link."""

    def __init__(self, path, fd=None):
        self.path = Path(path)
        self.fd = fd  # None where the system lacks ``dir_fd``: paths, checked, instead

    @classmethod
    def open(cls, path):
        _refuse_link(path)
        return cls(path, os.open(path, _DIRECTORY) if _DIR_FD else None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _at(self, name):
        if "/" in name or os.sep in name or name in ("", ".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        return name if self.fd is not None else str(self.path / name)

    def _lstat(self, name):
        try:
            return os.stat(self._at(name), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _remove(self, name, info):
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(self._at(name), dir_fd=self.fd)
        elif self.fd is not None and sys.version_info >= (3, 11):
            shutil.rmtree(name, dir_fd=self.fd)
        else:
            shutil.rmtree(self.path / name)

    def subfolder(self, name):
        """The folder ``name`` in this one, opened; a link or file in its place is removed
        and a new folder made."""
        info = self._lstat(name)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            self._remove(name, info)  # a submission's doing: it must be a folder
            info = None
        if info is None:
            os.mkdir(self._at(name), dir_fd=self.fd)
        if self.fd is None:
            return _Folder(self.path / name)
        return _Folder(self.path / name, os.open(name, _DIRECTORY, dir_fd=self.fd))

    def replace(self, name, text):
        """Replace the file ``name`` with ``text``: a temporary file, then a rename."""
        info = self._lstat(name)
        if info is not None and stat.S_ISDIR(info.st_mode):
            self._remove(name, info)  # a folder a submission put there would stop the rename
        temporary = self._at(f".{name}.{secrets.token_hex(8)}.tmp")
        handle = os.open(temporary, _NEW_FILE, 0o666, dir_fd=self.fd)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(text.encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self._at(name), src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=self.fd)
            except OSError:
                pass
            raise


def gradebook_csv(gradebook):
    """One row per submission: its name, the points per graded cell, score, max_score, and
    ``provisional`` ("yes" while written answers still need manual grading)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission"] + [cell.grade_id for cell in gradebook.cells]
                    + ["score", "max_score", "provisional"])
    for result in gradebook.submissions:
        writer.writerow([result.name] + [number(cell.points) for cell in result.cells]
                        + [number(result.score), number(result.max_score),
                           "yes" if result.provisional else ""])
    return buffer.getvalue()


def manual_csv(gradebook):
    """One row per written answer: submission, grade_id, points (blank until graded),
    max_points and the answer's text (cut to ``TEXT_LIMIT``), for ``course grade --manual``.
    Text that a spreadsheet would read as a formula starts with an apostrophe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "grade_id", "points", "max_points", "answer"])
    for result in gradebook.submissions:
        for cell in result.cells:
            if cell.grade_id in {c.grade_id for c in gradebook.cells if c.manual}:
                answer = shorten(cell.answer)
                if answer.startswith(("=", "+", "-", "@")):
                    answer = "'" + answer
                writer.writerow([result.name, cell.grade_id, number(cell.points),
                                 number(cell.max_points), answer])
    return buffer.getvalue()


def details(gradebook):
    """The gradebook as JSON, with every message. Nothing in it varies between runs."""
    data = {
        "source": gradebook.source,
        "max_score": gradebook.max_score,
        "sandbox": gradebook.sandbox, "unsandboxed": gradebook.unsandboxed,
        "cells": [{"grade_id": cell.grade_id, "points": cell.points,
                   "hidden_tests": cell.hidden_tests,
                   "graded_by": "hand" if cell.manual else "tests"}
                  for cell in gradebook.cells],
        "submissions": [{
            "submission": result.name, "file": result.path,
            "shares_name_with": result.shares_name_with or None,
            "score": result.score,
            "max_score": result.max_score, "provisional": result.provisional,
            "error": shorten(result.error) or None,
            "notes": [shorten(note) for note in result.notes],
            "review": [shorten(item) for item in result.review],
            "cells": [{"grade_id": cell.grade_id, "points": cell.points,
                       "max_points": cell.max_points, "passed": cell.passed,
                       "message": shorten(cell.message),
                       "traceback": shorten(cell.traceback, keep_end=True),
                       **({"answer": shorten(cell.answer)} if cell.answer else {})}
                      for cell in result.cells],
        } for result in gradebook.submissions],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def feedback(result, gradebook):
    """What the student reads: the score, a table of tests, then what failed and why.

    Everything a submission can influence goes through ``_block`` or ``_code``."""
    lines = [f"# Feedback: {_code(result.name)}", "",
             f"Notebook: {_code(Path(gradebook.source).name)}", "",
             f"**Score: {number(result.score)} / {number(result.max_score)}**", ""]
    if result.provisional:
        pending = sum(cell.max_points for cell in result.cells if cell.points is None)
        lines += [f"Provisional: {number(pending)} more points for written answers are still "
                  f"to be graded by hand.", ""]
    if result.error:
        lines += ["This submission could not be graded:", ""] + _block(shorten(result.error))
    lines += ["| Test | Points | Result |", "| --- | ---: | --- |"]
    written = {cell.grade_id for cell in gradebook.cells if cell.manual}
    for cell in result.cells:
        if cell.points is None:
            points, verdict = f"– / {number(cell.max_points)}", "needs manual grading"
        else:
            points = f"{number(cell.points)} / {number(cell.max_points)}"
            verdict = "graded by hand" if cell.grade_id in written else \
                "passed" if cell.passed else "failed"
        lines.append(f"| {_code(cell.grade_id, table=True)} | {points} | {verdict} |")
    if result.notes:
        lines += ["", "## Notes", ""]
        for note in result.notes:
            lines += _block(shorten(note))
    failed = [cell for cell in result.cells
              if cell.points is not None and not cell.passed and cell.grade_id not in written]
    if failed:
        lines += ["", "## What failed"]
        for cell in failed:
            lines += ["", f"### {_code(cell.grade_id)} ({number(cell.points)} / "
                          f"{number(cell.max_points)})", ""]
            lines += _block(shorten(cell.message))
            if cell.traceback:
                lines += _block(shorten(cell.traceback, keep_end=True))
    return "\n".join(lines).rstrip("\n") + "\n"


def _printable(text):
    """``text`` with its line breaks as ``\\n`` and control characters (terminal escapes,
    direction overrides) replaced by U+FFFD."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return _UNPRINTABLE.sub("\ufffd", text)


def _block(text):
    """``text`` as an indented code block, then a blank line: every line of it follows
    four spaces, so none of it can end the block or be read as Markdown or HTML."""
    return ["    " + line for line in _printable(text).split("\n")] + [""]


def _code(text, table=False):
    """``text`` as a one-line code span, fenced by more backticks than it holds."""
    text = _printable(text).replace("\n", " ")
    if table:
        text = text.replace("|", "\\|")  # a table cell ends at a pipe, even in a code span
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if not text.strip(" ") or text[0] == "`" or text[-1] == "`" else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _longest_backticks(text):
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
