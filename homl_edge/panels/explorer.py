"""TradeoffExplorer: an anywidget scatter of variants; hovering shows one, clicking selects it back in Python."""
from __future__ import annotations

import anywidget
import traitlets

from .._widgets import widget_file
from ..errors import HomlEdgeError
from ..report import require_table
from ._static import StaticFallback, png_img

_FIELDS = ("size_bytes", "gzip_bytes", "latency_median_ms", "accuracy")


def _asset(name: str) -> str:
    """Front-end sources, from the top-level widgets/ folder (shipped in the wheel: homl_edge._widgets)."""
    return widget_file(name).read_text()


class TradeoffExplorer(StaticFallback, anywidget.AnyWidget):
    """Interactive size / latency / accuracy scatter of model variants.

    ``TradeoffExplorer(table, variants=None)`` takes a table from :func:`homl_edge.compare` (or the
    OptimizerPanel's) and, optionally, the dict of variants it measured, so that ``explorer.selected_variant``
    returns the object you clicked. ``selected`` and ``hovered`` are synced traitlets: observe them.
    """

    _esm = _asset("tradeoff.js")
    _css = _asset("tradeoff.css")
    points = traitlets.List(traitlets.Dict()).tag(sync=True)
    x = traitlets.Unicode("size_bytes").tag(sync=True)
    y = traitlets.Unicode("accuracy").tag(sync=True)
    hovered = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    def __init__(self, table=None, variants: dict | None = None, x: str = "size_bytes", y: str = "accuracy",
                 **kwargs):
        for axis in (x, y):
            if axis not in _FIELDS:
                raise HomlEdgeError(f"axis must be one of {', '.join(_FIELDS)}, got {axis!r}")
        super().__init__(x=x, y=y, **kwargs)
        self.variants = dict(variants or {})
        if table is not None:
            self.update(table)

    def update(self, table) -> None:
        """Show the rows of a comparison table (index: variant names)."""
        require_table(table, "TradeoffExplorer")
        rows = []
        for name, row in table.iterrows():
            rows.append({"name": str(name), **{f: float(row[f]) for f in _FIELDS if f in table.columns}})
        self.points = rows

    def _static_text(self):
        return f"TradeoffExplorer of {len(self.points)} variants ({self.x} against {self.y})"

    def _static_html(self):
        import pandas as pd

        from ..plots import figure_png, plot_tradeoff
        from ..report import Table

        if not self.points:
            return f"<i>{self._static_text()}</i>"
        table = Table(pd.DataFrame(self.points).set_index("name"))
        table.index.name = "variant"
        picture = ""
        if self.x in ("size_bytes", "gzip_bytes") and "latency_median_ms" in table.columns:
            picture = png_img(figure_png(plot_tradeoff(table, x=self.x, y=self.y)), self._static_text(), 520)
        return picture + table._repr_html_()

    @traitlets.validate("selected")
    def _valid_selection(self, proposal):
        value = proposal["value"]
        if value and value not in {p["name"] for p in self.points}:
            raise traitlets.TraitError(f"no variant named {value!r}")
        return value

    @property
    def selected_variant(self):
        """The object behind the selected point (when ``variants`` was given), else None."""
        return self.variants.get(self.selected)
