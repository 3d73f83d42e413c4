"""Side-by-side measurements of model variants (size, gzip size, accuracy, latency), and :class:`Table` (from
:mod:`homl_edge._table`), the one type of every table homl-edge returns. Plots of these tables live in :mod:`homl_edge.plots` (a face)."""
from __future__ import annotations

import gzip
import os
import tempfile
import time

import numpy as np
import pandas as pd

from . import _keras
from ._result import Record, result
from .errors import HomlEdgeError
from ._table import _PERCENT, _RATIO, Table, format_value, human_bytes  # noqa: F401  (re-exported)
from .lite import LiteModel, benchmark_many

COLUMNS = ["variant", "kind", "size_bytes", "gzip_bytes", "accuracy", "latency_median_ms", "latency_p90_ms",
           "cold_start_ms", "macs", "activation_bytes", "size_ratio", "gzip_ratio", "speedup", "accuracy_delta"]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB (what Binder's 1-2 GB limit is about).

    On Linux this is VmHWM of /proc/self/status: getrusage's ru_maxrss survives fork and execve, so a kernel
    started by a large process (a test runner) would report its parent's peak.
    """
    import resource
    import sys

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


@result
class Measurement(Record):
    """One variant as :func:`measure` found it (a frozen record, also a read-only mapping: ``m["size_bytes"]``,
    ``dict(m)``): its ``kind`` ("keras", "tflite int8", ...), file and gzip sizes, top-1 accuracy (NaN without
    labels), for a ``.tflite`` the MACs and activation bytes of one sample (:meth:`LiteModel.profile`), and the
    median and p90 latency of one sample with the cold start. A figure not measured is None (a Keras model has no
    MACs or cold start here; ``latency=False`` leaves the latencies to the caller)."""

    kind: str
    size_bytes: int
    gzip_bytes: int
    accuracy: float
    macs: int | None = None
    activation_bytes: int | None = None
    latency_median_ms: float | None = None
    latency_p90_ms: float | None = None
    cold_start_ms: float | None = None


def measure(variant, x, y, threads: int = 1, runs: int = 100, *, latency: bool = True) -> Measurement:
    """Size, gzip size, accuracy and single-sample latency of one variant (a LiteModel or a Keras model), as a
    :class:`Measurement`.

    A LiteModel is timed on ``x`` itself (real inputs, cycled; see :meth:`LiteModel.benchmark`), with its cold
    start; ``latency=False`` leaves the timing to the caller (``compare`` interleaves the variants' rounds)."""
    variant = _keras.load_model(variant, lite=True)  # a result: the .tflite it made (optimize), else its .model
    if isinstance(variant, LiteModel):
        row = {"kind": f"tflite {variant.meta.get('mode', '')}".strip(), "size_bytes": variant.size,
               "gzip_bytes": variant.gzip_size, "accuracy": np.nan if y is None else variant.evaluate(x, y),
               **variant.profile()}
        if latency:
            lat = variant.benchmark(x, threads=threads, runs=runs)
            row.update(latency_median_ms=lat["median_ms"], latency_p90_ms=lat["p90_ms"],
                       cold_start_ms=lat["cold_start_ms"])
        return Measurement(**row)
    _keras.check_model(variant)
    data = _keras_bytes(variant)
    acc = np.nan if y is None else _keras_accuracy(variant, x, y)
    sample = np.asarray(x[:1], dtype=np.float32)
    for _ in range(5):
        variant(sample, training=False)
    times = []
    for _ in range(max(20, runs // 5)):
        t0 = time.perf_counter()
        variant(sample, training=False)
        times.append((time.perf_counter() - t0) * 1e3)
    return Measurement(kind="keras", size_bytes=len(data), gzip_bytes=len(gzip.compress(data, 9, mtime=0)),
                       accuracy=acc, latency_median_ms=float(np.median(times)),
                       latency_p90_ms=float(np.percentile(times, 90)))


def _keras_accuracy(model, x, y) -> float:
    """Top-1 accuracy of a Keras model, refused (one line) where argmax means nothing: several outputs, or one
    value per sample (a regression, a one-unit sigmoid: its argmax is always 0, a silently perfect score)."""
    yy = np.asarray(y)
    yy = yy.argmax(-1) if yy.ndim > 1 else yy
    pred = model.predict(x, verbose=0, batch_size=512)
    if isinstance(pred, (list, tuple, dict)):
        raise HomlEdgeError(f"{model.name} has {len(pred)} outputs: accuracy needs one; pass y=None to compare "
                            "size and speed only")
    if pred.ndim < 2 or pred.shape[-1] < 2:
        raise HomlEdgeError(f"{model.name} gives one value per sample, not a score per class: top-1 accuracy "
                            "would always pick it; pass y=None to compare size and speed only")
    return float((pred.argmax(-1) == yy).mean())


def _keras_bytes(model) -> bytes:
    """The bytes of the model in one file (Keras 2: ``.h5``, Keras 3: ``.keras``): what you would ship without
    TFLite."""
    import warnings

    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is legacy": it is still the single-file Keras 2 format
        if _keras.is_keras3(model):
            path = os.path.join(d, "model.keras")
            model.save(path)
        else:
            path = os.path.join(d, "model.h5")
            model.save(path, include_optimizer=False)
        with open(path, "rb") as f:
            return f.read()


def compare(variants: dict, x, y, *, threads: int = 1, runs: int = 100, rounds: int = 1):
    """Measure every variant and return a pandas DataFrame, with ratios against the first row.

    ``size_ratio`` and ``gzip_ratio`` say how many times smaller than the first row, ``speedup`` how many times
    faster (median latency), ``accuracy_delta`` the accuracy change in points of fraction (0.01 = 1 point).
    ``y=None`` compares size and speed only (accuracy left empty): for regressions and models of several outputs,
    where top-1 accuracy means nothing (they are refused with ``y`` given).
    The ``.tflite`` variants are timed on ``x`` (real inputs, a different one per invoke, never zeros);
    ``rounds > 1`` times them round after round (each round all of them in turn) and keeps each one's best round:
    on a shared machine another process can take a core for a while, and a variant timed only then would look
    slower than it is. ``cold_start_ms``: bytes to interpreter to first result.
    """
    if not isinstance(variants, dict) or not variants:
        raise HomlEdgeError("compare takes a dict of {name: model}, e.g. {'keras': model, 'int8': lite}")
    # a result stands for the .tflite it made (optimize), else its .model: timed and measured as that
    variants = {name: _keras.load_model(v, lite=True) for name, v in variants.items()}
    if y is not None and len(x) != len(y):
        raise HomlEdgeError(f"x has {len(x)} samples but y has {len(y)} labels")
    if int(rounds) < 1:
        raise HomlEdgeError(f"rounds must be at least 1, got {rounds}")
    for name, v in variants.items():  # every variant takes x, checked before any of them is measured
        _check_fits(name, v, x)
    rows = []
    for name, v in variants.items():
        row = {"variant": str(name)}
        row.update((k, m) for k, m in measure(v, x, y, threads=threads, runs=runs, latency=False).items()
                   if m is not None)  # a figure not measured stays out of the row (an empty cell, as before)
        rows.append(row)
    lites = {str(n): v for n, v in variants.items() if isinstance(v, LiteModel)}
    if lites:  # every .tflite on the same real inputs (x), in interleaved rounds
        lat = benchmark_many(lites, x, threads=threads, runs=runs, rounds=int(rounds))
        for row in rows:
            if row["variant"] in lat:
                t = lat[row["variant"]]
                row.update(latency_median_ms=t["median_ms"], latency_p90_ms=t["p90_ms"],
                           cold_start_ms=t["cold_start_ms"])
    table = table_from_rows(rows)
    if lites:
        t = next(iter(lat.values()))
        table.attrs["latency"] = (f"median of {t['runs']} invokes on {t['samples']} different test inputs, best of "
                                  f"{t['rounds']} interleaved round{'s' * (t['rounds'] != 1)}, {t['warmup']} "
                                  f"warm-up invokes each, {threads} thread{'s' * (threads != 1)}")
    return table


def _check_fits(name, variant, x) -> None:
    """One line, not a Keras ValueError, when ``x`` does not fit a variant's input."""
    if isinstance(variant, LiteModel):
        try:
            variant.prepare_inputs(x)
        except HomlEdgeError as e:
            raise HomlEdgeError(f"variant {name!r}: {e}") from None
        return
    inputs = getattr(variant, "inputs", None) or []
    if len(inputs) != 1:
        return
    want = tuple(None if d is None else int(d) for d in inputs[0].shape)
    got = tuple(np.shape(x))
    if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want[1:], got[1:])):
        shown = "(" + ", ".join("None" if d is None else str(d) for d in want) + ")"
        raise HomlEdgeError(f"variant {name!r}: x of shape {got} does not fit the model's input {shown}")


def table_from_rows(rows: list[dict]) -> Table:
    """A comparison table from measured rows (dicts with a "variant" key): ratios against the first row."""
    df = Table(rows)
    first = df.iloc[0]
    df["size_ratio"] = first.size_bytes / df.size_bytes
    df["gzip_ratio"] = first.gzip_bytes / df.gzip_bytes
    df["speedup"] = first.latency_median_ms / df.latency_median_ms
    df["accuracy_delta"] = df.accuracy - first.accuracy
    return df[[c for c in COLUMNS if c in df.columns]].set_index("variant")


def require_table(table, what: str, columns=("size_bytes", "latency_median_ms", "accuracy")):
    """``table`` if it is a table of variants with ``columns`` (what :func:`compare` makes), else a one-line error
    naming ``what`` took it (a Measurement, optimize()'s result or a model is one variant, not a table)."""
    if not isinstance(table, pd.DataFrame):
        raise HomlEdgeError(f"{what} takes a table of variants, one row each, from he.compare({{'name': model, "
                            f"...}}, x, y); got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise HomlEdgeError(f"{what}: the table lacks {', '.join(missing)}: make it with he.compare(...)")
    return table


def choose(table, *, max_bytes: int | None = None, max_gzip_bytes: int | None = None,
           max_latency_ms: float | None = None, max_accuracy_drop: float | None = None,
           by: str = "size_bytes") -> str:
    """The name of the best variant that meets every budget (smallest ``by`` first); raises if none does.

    ``max_bytes`` bounds the file (what a device holds), ``max_gzip_bytes`` the compressed download,
    ``max_accuracy_drop`` is measured against the first row (e.g. 0.01 for one point).
    """
    needed = [by] + [c for c, bound in (("size_bytes", max_bytes), ("gzip_bytes", max_gzip_bytes),
                                        ("latency_median_ms", max_latency_ms), ("accuracy", max_accuracy_drop))
                     if bound is not None and c != by]
    ok = require_table(table, "choose", needed).copy()
    if max_bytes is not None:
        ok = ok[ok.size_bytes <= max_bytes]
    if max_gzip_bytes is not None:
        ok = ok[ok.gzip_bytes <= max_gzip_bytes]
    if max_latency_ms is not None:
        ok = ok[ok.latency_median_ms <= max_latency_ms]
    if max_accuracy_drop is not None:
        ok = ok[table.iloc[0].accuracy - ok.accuracy <= max_accuracy_drop + 1e-12]
    if ok.empty:
        raise HomlEdgeError("no variant meets every budget: relax one, or try another technique")
    return str(ok.sort_values(by).index[0])
