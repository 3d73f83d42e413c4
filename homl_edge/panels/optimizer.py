"""OptimizerPanel: pick a technique and its settings, press Run, compare every run (calls he.optimize)."""
from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as W
import numpy as np

from .. import pipeline, quantization, report
from ..plots import figure_png, plot_tradeoff
from ..errors import HomlEdgeError
from .._files import atomic_write
from ..lite import format_ms
from ._static import StaticFallback, png_img
from .explorer import TradeoffExplorer


class OptimizerPanel(StaticFallback, W.VBox):
    """Technique, settings, Run; every result is measured with LiteRT and kept in ``history``.

    ``panel.run(technique, **settings)`` is what the Run button calls; ``panel.table()`` the comparison table
    (ratios against the float32 ``.tflite`` of the model); ``panel.save(folder)`` writes every ``.tflite`` and the
    table as CSV; ``panel.explorer`` is a :class:`TradeoffExplorer` of the same runs.
    """

    def __init__(self, model, train=None, test=None, data=None):
        if test is None:
            raise HomlEdgeError("OptimizerPanel needs test=(x_test, y_test) to measure every run")
        self.model, self.train, self.test = model, train, test
        self.data = data if data is not None else (None if train is None else np.asarray(train[0])[:200])
        self.history: list[dict] = []
        techniques = pipeline.TECHNIQUES if train is not None else ("quantize",)
        self.technique = W.Dropdown(options=techniques, value="quantize", description="technique")
        self.mode = W.Dropdown(options=quantization.MODES, value="int8", description="convert to")
        self.sparsity = W.FloatSlider(value=0.8, min=0.1, max=0.95, step=0.05, description="sparsity")
        self.clusters = W.IntSlider(value=16, min=2, max=64, description="clusters")
        self.epochs = W.IntSlider(value=2, min=1, max=10, description="epochs")
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.progress = W.IntProgress(value=0, min=0, max=3, description="idle")
        self.status = W.HTML()
        self.training_log = W.Output()  # the training progress bars (tqdm) of a run started with the button land here
        self.table_out = W.HTML("<i>press Run: every result is measured and listed here</i>",
                                layout=W.Layout(overflow="auto"))  # a wide table scrolls in its tab, not cut off
        self.plot_out = W.Image(format="png")
        self.folder = W.Text(value="homl-edge-runs", description="save to")
        self.save_button = W.Button(description="Save all", icon="save")
        self.explorer = TradeoffExplorer(variants={})
        self.run_button.on_click(lambda _: self._run_from_controls())
        self.save_button.on_click(lambda _: self._save_from_controls())
        self.technique.observe(lambda _: self._sync_controls(), names="value")
        self._sync_controls()
        super().__init__([
            W.HBox([self.technique, self.mode]), W.HBox([self.sparsity, self.clusters, self.epochs]),
            W.HBox([self.run_button, self.progress]), self.status, self.training_log,
            W.Tab(children=[self.table_out, self.plot_out, self.explorer], titles=["table", "plot", "explorer"]),
            W.HBox([self.folder, self.save_button])])

    # ------------------------------------------------------------------------------------------- actions
    def run(self, technique: str = "quantize", mode: str = "int8", **settings) -> dict:
        """Run one technique (see :func:`homl_edge.optimize`) and add the measured result to the history."""
        self.progress.value, self.progress.description = 1, "optimizing"
        try:
            done = pipeline.optimize(self.model, technique, train=self.train, data=self.data, mode=mode,
                                     **settings)
            if not self.history:
                self._record("float32 (baseline)", None, quantization.quantize(self.model, "float32"), {})
            self.progress.value, self.progress.description = 2, "measuring"
            name = self._unique(f"{technique} {mode}" + "".join(f" {k}={v}" for k, v in sorted(settings.items())
                                                                if k != "epochs"))
            entry = self._record(name, done.model, done.lite, {"technique": technique, "mode": mode, **settings})
        finally:
            self.progress.value, self.progress.description = 3, "done"
        self._refresh()
        return entry

    def _static_text(self):
        return f"OptimizerPanel of {getattr(self.model, 'name', 'a model')}: {len(self.history)} runs"

    def _static_html(self):
        if not self.history:
            return f"<i>{html.escape(self._static_text())}: press Run in a live notebook</i>"
        return self.table_out.value + png_img(self.plot_out.value, "size against accuracy of every run", 520)

    def table(self):
        """Every run so far, with ratios against the float32 baseline (a DataFrame)."""
        return report.table_from_rows([h["row"] for h in self.history])

    def save(self, folder) -> Path:
        """Write each run's ``.tflite`` and ``runs.csv`` into ``folder`` (created; files are not overwritten)."""
        if not self.history:
            raise HomlEdgeError("nothing to save yet: press Run first")
        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        for h in self.history:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in h["name"])
            target = folder / f"{safe}.tflite"
            if not target.exists():
                h["lite"].save(target)
        atomic_write(folder / "runs.csv", self.table().to_csv().encode(), overwrite=True)
        return folder

    # ------------------------------------------------------------------------------------------- internals
    def _record(self, name, keras_model, lite, settings):
        row = {"variant": name, **report.measure(lite, *self.test)}
        entry = {"name": name, "keras": keras_model, "lite": lite, "settings": settings, "row": row}
        self.history.append(entry)
        self.explorer.variants[name] = lite
        return entry

    def _unique(self, name):
        names = {h["name"] for h in self.history}
        if name not in names:
            return name
        i = 2
        while f"{name} #{i}" in names:
            i += 1
        return f"{name} #{i}"

    def _refresh(self):
        table = self.table()
        self.explorer.update(table)
        self.table_out.value = table._repr_html_()
        self.plot_out.value = figure_png(plot_tradeoff(table))

    def _sync_controls(self):
        t = self.technique.value
        self.sparsity.disabled = "prune" not in t and t != "channels"
        self.clusters.disabled = "cluster" not in t
        self.epochs.disabled = t == "quantize"

    def _settings(self):
        t = self.technique.value
        s = {}
        if "prune" in t or t == "channels":
            s["sparsity"] = round(self.sparsity.value, 2)
        if "cluster" in t:
            s["clusters"] = self.clusters.value
        if t != "quantize":
            s["epochs"] = self.epochs.value
        return s

    def _run_from_controls(self):
        self.run_button.disabled = True
        self.status.value = ""
        entry, error = None, None
        try:
            self.training_log.clear_output()
            with self.training_log:  # (an Output widget would swallow an exception raised inside it: catch here)
                try:
                    entry = self.run(self.technique.value, self.mode.value, **self._settings())
                except HomlEdgeError as e:
                    error = e
        finally:
            self.run_button.disabled = False
        if error is not None:
            self.status.value = f"<span style='color:#d1242f'>{html.escape(str(error))}</span>"
            return
        r = entry["row"]
        self.status.value = html.escape(f"{entry['name']}: {r['size_bytes']:,} bytes, "
                                        f"{100 * r['accuracy']:.2f}% accuracy, {format_ms(r['latency_median_ms'])}")

    def _save_from_controls(self):
        try:
            folder = self.save(self.folder.value)
            self.status.value = html.escape(f"saved {len(self.history)} runs to {folder}")
        except HomlEdgeError as e:
            self.status.value = f"<span style='color:#d1242f'>{html.escape(str(e))}</span>"
