"""A student's view: JupyterLab in a real browser runs lesson 01 and its widget works.

Starts ``jupyter lab`` on 127.0.0.1 with a token (on a copy of the notebook, so autosave never
touches the repository), drives Chromium with Playwright, runs every cell and checks that the
perceptron explorer rendered, that moving its slider redraws the plot, that figures are images,
and that no output shows "Error displaying widget" or a traceback. A screenshot is saved to
``test-artifacts/browser/`` (or ``$COURSE_TEST_ARTIFACTS``).
"""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "01_perceptron.ipynb"
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra")
pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)"),
    pytest.mark.skipif(not NOTEBOOK.exists(), reason="solutions/01_perceptron.ipynb not written yet"),
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server on a copy of lesson 01; yields (base_url, token)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # inline figures
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    # answer JupyterLab's "get notified about news?" question: its toast would cover the notebook
    settings = tmp_path / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false"}')
    log = open(tmp_path / "jupyter.log", "w")  # noqa: SIM115 (the server writes it until the end)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         f"--LabApp.user_settings_dir={settings}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {(tmp_path / 'jupyter.log').read_text()}")
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not start within 60 s")
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _artifact_dir():
    folder = Path(os.environ.get("COURSE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _menu(page, menu, item):
    """Choose ``item`` from JupyterLab's ``menu`` in the menu bar."""
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).click()


def test_lesson_01_runs_in_jupyterlab_with_working_widget(jupyter_lab):
    base, token = jupyter_lab
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            try:  # JupyterLab may ask which kernel to start: take the one it proposes
                page.locator(".jp-Dialog .jp-mod-accept").click(timeout=5_000)
            except playwright_api.TimeoutError:
                pass
            page.locator(".jp-NotebookPanel .jp-Cell").first.click()
            _menu(page, "Edit", "Clear Outputs of All Cells")  # the saved outputs must not count
            _menu(page, "Run", "Run All Cells")
            # every code cell gets an execution count when the run is over
            page.wait_for_function(
                """() => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                }""", timeout=180_000)
            slider = page.locator(".widget-slider", has_text="w1").first
            slider.wait_for(timeout=30_000)
            plot = page.locator(".widget-output img, .jupyter-widgets-output-area img").first
            plot.wait_for(timeout=30_000)
            before = plot.get_attribute("src")
            handle = slider.locator(".noUi-handle").first
            handle.focus()
            for _ in range(5):
                handle.press("ArrowRight")
            page.wait_for_function(
                """(before) => {
                    const img = document.querySelector(
                        '.widget-output img, .jupyter-widgets-output-area img');
                    return img && img.getAttribute('src') !== before;
                }""", arg=before, timeout=30_000)
            # each key press queues a redraw: wait for the last one (the status line shows the
            # slider's final value and the kernel is idle) so the screenshot shows a settled widget
            readout = slider.locator(".widget-readout").first.inner_text().strip()
            page.wait_for_function(
                """(r) => document.querySelector('.jp-Notebook').innerText.includes(`step(${r} x1`)
                    && /Idle/.test(document.querySelector('#jp-main-statusbar').innerText)""",
                arg=readout, timeout=30_000)
            text = page.locator(".jp-Notebook").inner_text()
            images = page.locator(".jp-OutputArea-output img").count()
            page.screenshot(path=str(_artifact_dir() / "01_perceptron.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(_artifact_dir() / "01_perceptron-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert "Error displaying widget" not in text
    assert "Traceback" not in text
    assert images >= 3, f"only {images} figures rendered as images"
