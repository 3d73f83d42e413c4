"""How a notebook shows a web export or a Model Explorer view (a face): the live page in an IFrame, served by the
notebook's own Jupyter server, on localhost and on Binder alike.

The core's :class:`~homl_edge.export.TfjsExport` and :class:`~homl_edge.export.WebExport` show what a saved notebook
can (the files, or the screenshot taken at export). Here, in a running kernel: the page is registered with the
Jupyter server this kernel belongs to (:func:`homl_edge.browser.register_page`, once per export) and a small script
swaps the still for a frame at ``{base_url}`` + that path. ``import homl_edge`` installs it in IPython's HTML
formatter (:func:`install`); nothing here runs outside IPython.
"""
from __future__ import annotations

import json
import uuid
import weakref

_EXPORTS = ("TfjsExport", "WebExport")  # homl_edge.export's classes that hold a page
# id(export) -> (a weak reference to it, its page's path): the exports are frozen results, so the path a notebook
# registered for one is kept here (the same export shown twice is registered once; a new one, even of the same
# folder, again: the registration holds the sha256 of the files as they were)
_served: dict = {}


def serve_in_jupyter(export) -> str | None:
    """The export's page path below the base URL of the Jupyter server this kernel runs under (``export.served``
    if it was given one, else registered on the first call and kept here), or None without a server or a page."""
    if export.served is not None or not getattr(export, "page", True):
        return export.served
    held = _served.get(id(export))
    if held is not None and held[0]() is export:
        return held[1]
    from .browser import jupyter_server_running, register_page

    if not jupyter_server_running():
        return None
    path = register_page(export.path)
    for key in [k for k, (ref, _) in _served.items() if ref() is None]:  # exports that are gone
        del _served[key]
    _served[id(export)] = (weakref.ref(export), path)
    return path


def live_frame(head: str, still: str, served: str, *, title: str = "the exported page", height: int = 680,
               frame_class: str = "homl-edge-frame", box_class: str = "homl-edge-page") -> str:
    """``head``, then ``still`` in a box that a script fills with an IFrame of ``served`` (a path below the Jupyter
    server's base URL, which the script reads from the page): sandboxed, as the server's CSP sandboxes it too."""
    box = f"{box_class}-{uuid.uuid4().hex[:12]}"
    script = (
        "<script>(function () {"
        f"var box = document.getElementById('{box}'); var cfg = document.getElementById('jupyter-config-data');"
        "if (!box || !cfg) { return; }"
        "var base = (JSON.parse(cfg.textContent).baseUrl || '/');"
        f"var frame = document.createElement('iframe'); frame.className = {json.dumps(frame_class)};"
        "frame.setAttribute('sandbox', 'allow-scripts allow-downloads');"
        f"frame.src = base + {json.dumps(served)};"
        f"frame.style.width = '100%'; frame.style.height = '{int(height)}px'; frame.style.border = '1px solid #d0d7de';"
        f"frame.title = {json.dumps(title)}; box.replaceChildren(frame);"
        "})();</script>")
    return head + f"<div id='{box}' class='{box_class}'>{still}</div>" + script


def live_page_html(export) -> str:
    """The export's HTML in a notebook: its saved view, whose still a script replaces by the live page."""
    head, still = export._html_parts()
    served = serve_in_jupyter(export) if getattr(export, "page", True) else None
    if served is None:
        return head + still
    return live_frame(head, still, served)


def live_explore_html(view) -> str:
    """A :func:`homl_edge.explore` view in a notebook: its still, replaced by Model Explorer in a frame."""
    head, still = view._html_parts()
    if view.served is None:
        from .browser import jupyter_server_running, register_page
        from .graph import url_data

        if jupyter_server_running():
            view.served = register_page(view.folder, app="model-explorer") + "?data=" + url_data(view)
    if view.served is None:
        return head + still
    return live_frame(head, still, view.served, title="Model Explorer", height=720, frame_class="homl-edge-explore",
                      box_class="homl-edge-explore-box")


def install(ipython=None) -> bool:
    """Show web exports live in this IPython (a Jupyter kernel): registered with its HTML formatter by name, so that
    nothing of the core is imported before an export exists. False outside IPython."""
    if ipython is None:
        import sys

        if "IPython" not in sys.modules:
            return False
        ipython = sys.modules["IPython"].get_ipython()
    formatters = getattr(getattr(ipython, "display_formatter", None), "formatters", None)
    if not formatters or "text/html" not in formatters:
        return False
    for name in _EXPORTS:
        formatters["text/html"].for_type_by_name("homl_edge.export", name, live_page_html)
    formatters["text/html"].for_type_by_name("homl_edge.graph", "Exploration", live_explore_html)
    return True
