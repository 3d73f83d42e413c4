"""Side-by-side measurements of model variants: size, gzip size, accuracy and latency, and the trade-off plot."""
from __future__ import annotations

import gzip
import os
import tempfile
import time

import numpy as np

from .errors import HomlEdgeError
from .lite import LiteModel

COLUMNS = ["variant", "kind", "size_bytes", "gzip_bytes", "accuracy", "latency_median_ms", "latency_p90_ms",
           "size_ratio", "gzip_ratio", "speedup", "accuracy_delta"]


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


def measure(variant, x, y, threads: int = 1, runs: int = 100) -> dict:
    """Size, gzip size, accuracy and single-sample latency of one variant (a LiteModel or a Keras model)."""
    if isinstance(variant, LiteModel):
        lat = variant.benchmark(threads=threads, runs=runs)
        return {"kind": f"tflite {variant.meta.get('mode', '')}".strip(), "size_bytes": variant.size,
                "gzip_bytes": variant.gzip_size, "accuracy": variant.evaluate(x, y),
                "latency_median_ms": lat["median_ms"], "latency_p90_ms": lat["p90_ms"]}
    from . import _tf

    _tf.check_model(variant)
    data = _keras_bytes(variant)
    yy = np.asarray(y)
    yy = yy.argmax(-1) if yy.ndim > 1 else yy
    acc = float((variant.predict(x, verbose=0, batch_size=512).argmax(-1) == yy).mean())
    sample = np.asarray(x[:1], dtype=np.float32)
    for _ in range(5):
        variant(sample, training=False)
    times = []
    for _ in range(max(20, runs // 5)):
        t0 = time.perf_counter()
        variant(sample, training=False)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"kind": "keras", "size_bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9, mtime=0)),
            "accuracy": acc, "latency_median_ms": float(np.median(times)),
            "latency_p90_ms": float(np.percentile(times, 90))}


def _keras_bytes(model) -> bytes:
    """The bytes of the model saved as a Keras 2 ``.h5`` file (what you would ship without TFLite)."""
    import warnings

    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is legacy": it is still the single-file Keras 2 format
        path = os.path.join(d, "model.h5")
        model.save(path, include_optimizer=False)
        with open(path, "rb") as f:
            return f.read()


def compare(variants: dict, x, y, *, threads: int = 1, runs: int = 100):
    """Measure every variant and return a pandas DataFrame, with ratios against the first row.

    ``size_ratio`` and ``gzip_ratio`` say how many times smaller than the first row, ``speedup`` how many times
    faster (median latency), ``accuracy_delta`` the accuracy change in points of fraction (0.01 = 1 point).
    """
    if not isinstance(variants, dict) or not variants:
        raise HomlEdgeError("compare takes a dict of {name: model}, e.g. {'keras': model, 'int8': lite}")
    if len(x) != len(y):
        raise HomlEdgeError(f"x has {len(x)} samples but y has {len(y)} labels")
    rows = []
    for name, v in variants.items():
        row = {"variant": str(name)}
        row.update(measure(v, x, y, threads=threads, runs=runs))
        rows.append(row)
    return table_from_rows(rows)


def table_from_rows(rows: list[dict]):
    """A comparison table from measured rows (dicts with a "variant" key): ratios against the first row."""
    import pandas as pd

    df = pd.DataFrame(rows)
    first = df.iloc[0]
    df["size_ratio"] = first.size_bytes / df.size_bytes
    df["gzip_ratio"] = first.gzip_bytes / df.gzip_bytes
    df["speedup"] = first.latency_median_ms / df.latency_median_ms
    df["accuracy_delta"] = df.accuracy - first.accuracy
    return df[COLUMNS].set_index("variant")


def plot_tradeoff(table, ax=None, x: str = "size_bytes", y: str = "accuracy", annotate: bool = True):
    """Scatter of size against accuracy (one point per variant), marker size by latency. Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    lat = table["latency_median_ms"].to_numpy(dtype=float)
    sizes = 40 + 300 * (lat / lat.max() if lat.max() > 0 else lat)
    ax.scatter(table[x] / 1024, table[y] * 100, s=sizes, alpha=0.7, c=range(len(table)), cmap="viridis")
    if annotate:
        for name, row in table.iterrows():
            ax.annotate(f"{name}\n{row['latency_median_ms']:.3g} ms", (row[x] / 1024, row[y] * 100),
                        textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"{'gzip size' if x == 'gzip_bytes' else 'file size'} (KiB, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("size vs accuracy (marker area: latency)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def choose(table, *, max_bytes: int | None = None, max_latency_ms: float | None = None,
           max_accuracy_drop: float | None = None, by: str = "size_bytes") -> str:
    """The name of the best variant that meets every budget (smallest ``by`` first); raises if none does.

    ``max_accuracy_drop`` is measured against the first row (e.g. 0.01 for one point).
    """
    ok = table.copy()
    if max_bytes is not None:
        ok = ok[ok.size_bytes <= max_bytes]
    if max_latency_ms is not None:
        ok = ok[ok.latency_median_ms <= max_latency_ms]
    if max_accuracy_drop is not None:
        ok = ok[table.iloc[0].accuracy - ok.accuracy <= max_accuracy_drop + 1e-12]
    if ok.empty:
        raise HomlEdgeError("no variant meets every budget: relax one, or try another technique")
    return str(ok.sort_values(by).index[0])
