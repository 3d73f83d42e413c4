"""Helpers for the browser tests: the package's own server and Chromium launcher, a Jupyter server, plus what
`make test` installs."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from homl_edge import browser as _browser

TFJS = ROOT / "web/node_modules/@tensorflow/tfjs/dist/tf.min.js"
serve = _browser.serve


def require_browser():
    if not _browser.find_chromium():
        pytest.fail("Debian's chromium is missing: `make test` installs it (scripts/install-system-deps.sh)")
    if not TFJS.exists():
        pytest.fail("@tensorflow/tfjs is missing: `make test` runs npm ci in web/")


def chromium():
    require_browser()
    return _browser.chromium()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_jupyter_server(app: str, root, log, *, args=(), env=None, timeout_s: float = 60):
    """A real ``jupyter server`` (or ``jupyter lab``) on a free 127.0.0.1 port serving ``root``, with homl-edge's
    extension; ``env`` adds to this process's environment (fresh config/runtime/data dirs), its stderr goes to
    ``log``. Yields the server's URL once ``/api`` answers (the test fails with the log's end if it does not
    within ``timeout_s``); stops the server afterwards."""
    port = free_port()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "jupyter", app, "--no-browser", "--ip=127.0.0.1",
                                 f"--port={port}", f"--ServerApp.root_dir={root}", "--allow-root", *args],
                                env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout_s
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"{url}/api", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"jupyter {app} did not answer on /api within {timeout_s:.0f} s: "
                        + Path(log).read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def notebook_json(cells) -> str:
    """A notebook of code cells (sources), unexecuted, on the python3 kernel."""
    return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [],
                                  "execution_count": None} for c in cells],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}}, "nbformat": 4, "nbformat_minor": 5})


@contextlib.contextmanager
def screenshot_on_failure(page, path):
    """A full-page screenshot of JupyterLab when a step fails (CI keeps test-artifacts/), then the error."""
    try:
        yield
    except Exception:
        page.screenshot(path=str(path), full_page=True)
        raise


def open_and_run_all(page, url, path):
    """Open a notebook in JupyterLab (choosing the kernel if asked) and run all its cells."""
    page.goto(f"{url}/lab/tree/{path}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached")
    select = page.locator(".jp-Dialog button", has_text="Select")
    try:  # JupyterLab may ask which kernel to start
        select.wait_for(timeout=10_000)
        select.click()
    except Exception:
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
