"""What a saved notebook shows of a panel: a static picture beside the live view.

A live widget needs a kernel or saved widget state; GitHub renders neither and shows the widget's ``text/plain``,
which ipywidgets fills with a constructor repr. Each panel therefore adds ``text/html`` (a table or a PNG rendered
when it is displayed) and a one-line ``text/plain`` to its display bundle. JupyterLab, VS Code and nbviewer with
widget state still show the live widget: they rank the widget view first.
"""
from __future__ import annotations

import base64
import html


def png_img(png: bytes, alt: str, width: int | None = None) -> str:
    if not png:
        return ""
    w = f" width='{width}'" if width else ""
    return (f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}' alt='{html.escape(alt)}'{w}/>")


class StaticFallback:
    """Mixin for a widget class: define ``_static_html()`` and ``_static_text()``."""

    def _static_html(self) -> str:
        raise NotImplementedError

    def _static_text(self) -> str:
        return type(self).__name__

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        data, meta = (bundle if isinstance(bundle, tuple) else (bundle, None))
        data = dict(data or {})
        text = self._static_text()
        try:
            static = self._static_html()
        except Exception as e:  # a picture that cannot be drawn must not hide the live widget
            static = f"<i>{html.escape(text)} (no static view: {html.escape(type(e).__name__)})</i>"
        data["text/plain"] = text
        data["text/html"] = (f"<div class='homl-edge-static' title='a static copy: run the notebook for the live "
                             f"widget'>{static}</div>")
        return (data, meta) if meta is not None else data
