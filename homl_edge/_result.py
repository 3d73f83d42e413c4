"""The one family of results: every public call that reports something returns a small frozen dataclass built on
:class:`Result` (or :class:`Record`, when the result is also a complete read-only mapping of its fields).

Declare one with the :func:`result` decorator (a frozen dataclass that keeps the family's repr and equality)::

    @result
    class Benchmark(Record):
        median_ms: float
        runs: int

Every result shows itself the same three ways: ``repr()`` is one line (``Benchmark(median_ms=0.0203, ...)``),
``to_frame()`` gives a pandas DataFrame (one row per field, or the result's own table when it holds one), and
``_repr_html_`` renders that frame in a notebook with the units of :class:`~homl_edge._table.Table`.

Base layer: never TensorFlow, and pandas only when a frame is asked for (``homl_edge.lite`` uses this module, and
its LiteRT-only worker processes start without pandas).
"""
from __future__ import annotations

import dataclasses
import html
import sys
from collections.abc import Mapping

_REPR_WIDTH = 160


def result(cls):
    """Make ``cls`` (a subclass of :class:`Result` or :class:`Record`) a frozen dataclass of the family: the base's
    one-line repr and equality are kept (a plain ``@dataclass`` would write its own over them)."""
    return dataclasses.dataclass(frozen=True, repr=False, eq=False)(cls)


def _short(v) -> str:
    """A value as one short piece of a one-line repr: tables and arrays by their shape, long text cut."""
    if _is_frame(v):
        return f"<table {v.shape[0]}x{v.shape[1]}>"
    shape = getattr(v, "shape", None)
    if shape is not None and not isinstance(v, (int, float, str)) and len(shape) > 0:
        return f"<array {'x'.join(map(str, shape))}>"
    if isinstance(v, float):
        return f"{v:.4g}"
    if hasattr(v, "count_params") and hasattr(v, "layers"):  # a Keras model: its class, name and size
        return f"<{type(v).__name__} {getattr(v, 'name', '')!r}, {v.count_params():,} params>"
    text = repr(v).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


class Result:
    """The base of every result: one-line repr, ``to_frame()``, ``_repr_html_``, ``fields()``.

    Subclasses are declared with :func:`result`; a field whose name starts with ``_`` is kept out of the
    repr and the frame. A subclass that holds a table overrides :meth:`to_frame` to return it.
    """

    def fields(self) -> dict:
        """The public fields and their values, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}

    def to_frame(self):
        """The fields as a two-column frame (``field``, ``value``); tables and models are shown by their repr."""
        import pandas as pd

        rows = [{"field": k, "value": v if isinstance(v, (int, float, str, bool, type(None))) else _short(v)}
                for k, v in self.fields().items()]
        # object values: an int field stays an int (20, not 20.000000) beside floats and text
        return pd.DataFrame(rows, columns=["field", "value"], dtype=object).set_index("field")

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={_short(v)}" for k, v in self.fields().items())
        text = f"{type(self).__name__}({parts})"
        return text if len(text) <= _REPR_WIDTH else text[:_REPR_WIDTH - 4] + "...)"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))

    __hash__ = None

    def _repr_html_(self) -> str:
        from ._table import Table

        frame = self.to_frame()
        title = f"<p><b>{html.escape(type(self).__name__)}</b></p>"
        return title + Table(frame)._repr_html_()


@result
class ModelResult(Result):
    """A result that holds a Keras model (``.model``) and the report of the run that made it (``.report``, a dict):
    what pruning, clustering, QAT and ``optimize`` return. Everything in homl-edge that takes a model takes such a
    result too: the one resolver of models (``homl_edge._keras.load_model``) unwraps it to ``.model``.

    Subclasses are declared with :func:`result`; they add their own fields after these two.
    """

    model: object
    report: dict

    def __repr__(self) -> str:
        # the result's own fields first (technique, sparsity, ...), then the model, then the report by its keys
        # (its values are in .report and in to_frame()): a long model or file repr cannot push them off the line
        fields = self.fields()
        order = [k for k in fields if k not in ("model", "report")] + ["model", "report"]
        parts = ", ".join(f"{k}={_short(fields[k])}" if k != "report" else
                          "report={" + ", ".join(map(str, fields[k])) + "}" for k in order)
        text = f"{type(self).__name__}({parts})"
        return text if len(text) <= _REPR_WIDTH else text[:_REPR_WIDTH - 4] + "...)"

    def __hash__(self) -> int:  # equal results hold the same model object (Keras models compare by identity)
        return hash((type(self), id(self.model)))


class Report(dict):
    """The read-only report a :class:`ModelResult` holds: a dict (``json.dumps``, ``dict(r)``, ``r["key"]``, pickling
    and ``copy.deepcopy`` work as for a dict) that cannot be changed in place, so the result stays what the run
    measured."""

    def _read_only(self, *args, **kwargs):
        raise TypeError("a result's report is read-only: copy it with dict(report) to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self):  # pickled and copied as its items, not rebuilt item by item through __setitem__
        return (type(self), (dict(self),))


class Record(Result, Mapping):
    """A result that is also a complete read-only mapping of its public fields: ``run["arena_bytes"]``,
    ``dict(run)``, ``list(run)`` and ``"arena_bytes" in run`` all work, and every key is a field (no half-dicts)."""

    def __getitem__(self, key):
        if isinstance(key, str) and not key.startswith("_") and key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> tuple:
        return tuple(f.name for f in dataclasses.fields(self) if not f.name.startswith("_"))

    def __eq__(self, other):  # a record equals another record of its type, or a dict of the same items
        if isinstance(other, Mapping) and not isinstance(other, Result):
            return self.keys() == other.keys() and all(_same(self[k], other[k]) for k in self)
        return Result.__eq__(self, other)

    __hash__ = None


def _same(a, b) -> bool:
    """Field equality that also holds for tables and arrays (whose == gives an array, not a bool), and for dicts
    of them (several outputs: ``{name: array}``); a value not measured (NaN) equals itself."""
    if a is b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b):
        return True
    if _is_frame(a) or _is_frame(b):
        return _is_frame(a) and _is_frame(b) and a.equals(b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "shape") and hasattr(b, "shape"):
        import numpy as np
        return bool(np.array_equal(a, b))
    return a == b


def _is_frame(v) -> bool:
    """A pandas DataFrame (pandas is not imported to find out: without it loaded, nothing is one)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(v, pd.DataFrame)
