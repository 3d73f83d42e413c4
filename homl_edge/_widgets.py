"""Where the front-end sources are: the top-level ``widgets/`` folder (ES modules, CSS, the web page and its
service worker), the one place every reader (panels, export, tests) finds them.

A wheel ships the folder inside the package as ``homl_edge/widgets/`` (pyproject.toml: hatch ``force-include``);
a checkout (an editable install, or the source tree on ``sys.path``) has it beside the package.
"""
from __future__ import annotations

from pathlib import Path

from .errors import HomlEdgeError

_PACKAGE = Path(__file__).resolve().parent


def widgets_dir() -> Path:
    """The ``widgets/`` folder: the installed copy inside the package, else the checkout's beside it."""
    for candidate in (_PACKAGE / "widgets", _PACKAGE.parent / "widgets"):
        if (candidate / "page" / "index.html").is_file():
            return candidate
    raise HomlEdgeError(f"the front-end sources (widgets/) are missing from this installation (looked in "
                        f"{_PACKAGE / 'widgets'} and {_PACKAGE.parent / 'widgets'}): reinstall homl-edge")


def widget_file(name: str) -> Path:
    """One file of ``widgets/`` (``"tradeoff.js"``, ``"page/app.js"``), checked to exist."""
    path = widgets_dir() / name
    if not path.is_file():
        raise HomlEdgeError(f"widget source {name} is missing from this installation ({path}): reinstall homl-edge")
    return path
