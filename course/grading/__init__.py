"""Grading tools: student versions of the solution notebooks, and the notebook markup.

- ``course.grading.markup``: nbgrader's markers and cell metadata, and helpers that build
  exercise, check and locked cells for lesson authors.
- ``course.grading.release``: turns the solution notebooks into student notebooks
  (``course release SOURCE_DIR OUTPUT_DIR [--check]``).
- ``course.grading.grade``: the autograder (``course grade``).
"""
