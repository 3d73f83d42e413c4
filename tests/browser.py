"""Helpers for the browser tests: the package's own server and Chromium launcher, plus what `make test` installs."""
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
