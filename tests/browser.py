"""Helpers for the browser tests: the package's own server and Chromium launcher, a Jupyter server, plus what
`make test` installs."""
import contextlib
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
