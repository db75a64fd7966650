"""Markers for the notebook checks, which tests/conftest.py cannot reach.

``python -m pytest`` (from the repository root) collects tests/ and, through
nbval, every cell of every notebook in solutions/. Each notebook cell runs in a
Jupyter kernel, so it is marked ``notebooks``, ``kernel`` and ``slow``:
``python -m pytest -m "not slow"`` leaves the notebooks out, and
``python -m pytest -m notebooks`` runs only them.
"""
import pytest


def pytest_collection_modifyitems(config, items):
    """Mark every item collected from a .ipynb file (nbval's cells) notebooks, kernel and slow."""
    for item in items:
        if item.path.suffix == ".ipynb":
            for marker in (pytest.mark.notebooks, pytest.mark.kernel, pytest.mark.slow):
                item.add_marker(marker)
