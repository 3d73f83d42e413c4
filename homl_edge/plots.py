"""The figures (matplotlib), a face over the core's tables: the core measures, this module draws.

``he.plot_tradeoff(table)``, ``he.plots.quantization_error(table)``, ``he.plots.autoquantize(result)``; each
returns the Figure. ``figure_png`` renders one for a widget or a saved notebook.
"""
from __future__ import annotations

import numpy as np

from .errors import HomlEdgeError
from .lite import format_ms
from .precision import SNR_ADVICE_DB, AutoQuantResult, pareto_front
from .report import require_table


def _axes(ax, size):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def plot_tradeoff(table, ax=None, x: str = "size_bytes", y: str = "accuracy", annotate: bool = True):
    """Size against accuracy, one point per variant, marker area by latency; labels in a legend when they would
    collide. Returns the Figure."""
    require_table(table, "plot_tradeoff", ("latency_median_ms", x, y))
    fig, ax = _axes(ax, (6.5, 4))
    lat = table["latency_median_ms"].to_numpy(dtype=float)
    sizes = 40 + 300 * (lat / lat.max() if lat.max() > 0 else lat)
    xs, ys = table[x].to_numpy(dtype=float) / 1024, table[y].to_numpy(dtype=float) * 100
    colors = [f"C{i % 10}" for i in range(len(table))]
    for i, (name, row) in enumerate(table.iterrows()):
        ax.scatter([xs[i]], [ys[i]], s=sizes[i], alpha=0.75, color=colors[i],
                   label=f"{name} ({format_ms(row['latency_median_ms'])})")
    if annotate and len(table) <= 4 and _far_apart(ax, xs, ys):
        for i, name in enumerate(table.index):
            ax.annotate(str(name), (xs[i], ys[i]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    else:
        ax.legend(fontsize=8, loc="best", title="variant (median latency)", title_fontsize=8)
    ax.set_xscale("log")
    kib_axis(ax.xaxis)
    ax.set_xlabel(f"{'gzip size' if x == 'gzip_bytes' else 'file size'} (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("size vs accuracy (marker area: latency)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def kib_axis(axis) -> None:
    """Label a log axis of KiB values as sizes ("150 KiB", "1,000 KiB"), not as powers ("2x10^2"): the decades
    always, the ticks between them where matplotlib would label them (an axis spanning about a decade or less)."""
    from matplotlib.ticker import LogFormatter

    class KiB(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:,.0f} KiB" if x >= 10 else f"{x:.2g} KiB"

    axis.set_major_formatter(KiB(labelOnlyBase=False))
    axis.set_minor_formatter(KiB(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def _far_apart(ax, xs, ys) -> bool:
    """True when no two points are within ~8% of the axes of each other (labels beside them will not collide)."""
    lx = np.log10(np.maximum(xs, 1e-9))
    span_x = max(lx.max() - lx.min(), 1e-9)
    span_y = max(ys.max() - ys.min(), 1e-9)
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            if abs(lx[i] - lx[j]) / span_x < 0.08 and abs(ys[i] - ys[j]) / span_y < 0.15:
                return False
    return True


def quantization_error(table, ax=None):
    """Horizontal bars of SNR per layer (worst at the top); the advice threshold as a dashed line."""
    fig, ax = _axes(ax, (6, 0.4 * len(table) + 1.2))
    colors = ["#d1242f" if a.startswith("keep") else "#1f6feb" for a in table.advice]
    snr = table.snr_db.replace(np.inf, 100.0)
    ax.barh(table.layer[::-1], snr[::-1], color=colors[::-1])
    ax.axvline(SNR_ADVICE_DB, color="gray", ls="--", label=f"{SNR_ADVICE_DB:.0f} dB")
    ax.set_xlabel("SNR of the quantized activations (dB, higher is better)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def autoquantize(result, ax=None):
    """Size against accuracy of every variant :func:`homl_edge.autoquantize` tried, the Pareto front, the choice."""
    if not isinstance(result, AutoQuantResult):
        raise HomlEdgeError(f"plots.autoquantize draws what he.autoquantize(...) returns (an AutoQuantResult), "
                            f"got {type(result).__name__}")
    fig, ax = _axes(ax, (6, 4))
    t = result.tried
    ax.scatter(t.size_bytes / 1024, t.accuracy * 100, c="#8c959f", label="tried")
    front = pareto_front(t)
    ax.plot(front.size_bytes / 1024, front.accuracy * 100, "-o", color="#1f6feb", label="Pareto front")
    ax.scatter([result.lite.size / 1024], [t.loc[t.chosen, "accuracy"].iloc[0] * 100], s=200,
               facecolors="none", edgecolors="#d1242f", linewidths=2, label="chosen")
    ax.axhline((result.baseline_accuracy - t.attrs.get("max_drop", 0)) * 100, color="#d1242f", ls="--", lw=1,
               label="accuracy budget")
    ax.set_xlabel("size (KiB)")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int = 96) -> bytes:
    """Render a matplotlib figure to PNG bytes (for an ipywidgets Image or a saved notebook) and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
