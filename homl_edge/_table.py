""":class:`Table`, the one type of every table homl-edge returns, and the units its cells are shown with. It lives
in the base layer so that :class:`~homl_edge.lite.LiteModel` (``throughput``) can return one too;
:mod:`homl_edge.report` re-exports it."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ._units import format_ms


class Table(pd.DataFrame):
    """A pandas DataFrame that shows itself with units: sizes in KB/MB, ratios with an "x", fractions as %.

    Every table homl-edge returns is one (``compare``, ``sparsity_report``, ``prune_sensitivity``,
    ``quantization_error``, ``fits_on``, the channel table): compute on it like any DataFrame;
    ``to_frame()`` gives a plain one.
    """

    @property
    def _constructor(self):
        return Table

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self)

    def _repr_html_(self):
        frame = pd.DataFrame(self)
        if frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        head = "".join(f"<th>{html.escape(header(c))}</th>" for c in frame.columns)
        body = []
        for _, row in frame.iterrows():
            cells = "".join(f"<td style='text-align:{'left' if isinstance(v, str) else 'right'}'>"
                            f"{html.escape(format_value(c, v))}</td>" for c, v in row.items())
            body.append(f"<tr>{cells}</tr>")
        # headers on one line each: a narrow output (a panel's tab) wrapped them word by word
        return (f"<table class='homl-edge-table'><thead style='white-space:nowrap'><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")


def header(column) -> str:
    """A column's heading: its name with spaces; a latency's unit left to its cells ("latency median", "20.3 µs")."""
    c = str(column)
    if _is_ms(c):
        c = "time_per_" + c[len("ms_per_"):] if c.startswith("ms_per_") else c[:-len("_ms")]
    return c.replace("_", " ")


def _is_ms(c: str) -> bool:
    return c.endswith("_ms") or c.startswith("ms_per_")


_PERCENT = ("accuracy", "drop", "sparsity", "agreement", "identical", "accuracy_delta", "_%")
_RATIO = ("ratio", "speedup")


def format_value(column: str, v) -> str:
    """One cell, with its unit chosen from the column's name."""
    c = str(column)
    if isinstance(v, (bool, np.bool_)) or v is None or isinstance(v, str):
        return "" if v is None else str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return "inf" if f > 0 else ("-inf" if f < 0 else "")
    if c.endswith("bytes") or c.endswith("_bytes_") or c == "arena_tried":
        return human_bytes(f)
    if c.endswith("_%"):
        return f"{f:.1f}%"
    if any(c.endswith(p) or c == p for p in _PERCENT):
        return f"{100 * f:+.2f} pt" if c.endswith("delta") or c == "drop" else f"{100 * f:.2f}%"
    if any(c.endswith(p) for p in _RATIO):
        return f"{f:.2f}x"
    if _is_ms(c):
        return format_ms(f)
    if c.endswith("_db"):
        return f"{f:.1f} dB"
    if float(f).is_integer():
        return f"{int(f):,}"
    return f"{f:.4g}"


def human_bytes(n: float) -> str:
    n = float(n)
    if n < 1000:
        return f"{n:.0f} B"
    if n < 1e6:
        return f"{n / 1e3:.1f} KB"
    return f"{n / 1e6:.2f} MB"
