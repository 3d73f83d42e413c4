"""WeightHistogram: per layer, the float weights against their int8 levels (the symmetric mapping)."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from .. import _keras
from .._keras import kernel_of
from ..errors import HomlEdgeError
from ..lite import require_lite
from ..plots import figure_png
from ..quantization import symmetric_quantize
from ._static import StaticFallback, png_img


class WeightHistogram(StaticFallback, W.VBox):
    """Pick a layer: left, its float weights with the range [-m, m]; right, the int8 levels they map to.

    With ``lite`` (an int8 LiteModel of the same model), the right side shows the levels actually stored in the
    ``.tflite`` file; without it, the levels of the symmetric per-tensor mapping computed here.
    """

    def __init__(self, model, lite=None, layer: str | None = None):
        model = _keras.check_model(_keras.model_of(model))  # a result that holds a model: its .model
        lite = None if lite is None else require_lite(lite, "WeightHistogram (lite=)")  # optimize()'s: its .lite
        names = [l.name for l in model.layers if kernel_of(l) is not None]
        if not names:
            raise HomlEdgeError("the model has no layer with a kernel to show")
        if layer is not None and layer not in names:
            raise HomlEdgeError(f"no layer {layer!r} with a kernel; choose one of {', '.join(names)}")
        self.model, self.lite = model, lite
        self.layer = W.Dropdown(options=names, value=layer or names[0], description="layer")
        self.out = W.Image(format="png")
        self.layer.observe(lambda change: self.draw(), names="value")
        super().__init__([self.layer, self.out])
        self.figure = None
        self.draw()

    def _static_text(self):
        return f"WeightHistogram of layer {self.layer.value!r} ({len(self.layer.options)} layers to pick from)"

    def _static_html(self):
        return f"<div>layer <b>{html.escape(self.layer.value)}</b></div>" + png_img(self.out.value, self._static_text())

    def levels(self, name: str):
        """(float weights, int8 levels, scale, source) for one layer."""
        w = kernel_of(self.model.get_layer(name)).numpy()
        if self.lite is not None:
            stored = self._stored(w)
            if stored is not None:
                return w, stored[0], stored[1], "stored in the .tflite"
        q, scale = symmetric_quantize(w)
        return w, q, scale, "symmetric per-tensor mapping"

    def _stored(self, w):
        want = {w.size}
        for t in self.lite.tensors():
            if t["dtype"] == "int8" and int(np.prod(t["shape"])) in want and t["scale"] is not None:
                data = self.lite.interpreter().get_tensor(t["index"])
                scale = t["scale"] if not t["per_channel"] else float(np.mean(t["scale"]))
                return data, scale
        return None

    def draw(self):
        import matplotlib.pyplot as plt

        w, q, scale, source = self.levels(self.layer.value)
        m = float(np.abs(w).max())
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
        a.hist(w.ravel(), bins=80, color="#1f6feb")
        for x in (-m, m):
            a.axvline(x, color="#d1242f", ls="--")
        a.set_title(f"{self.layer.value}: float32 weights, m = {m:.3g}")
        a.set_xlabel("weight value")
        b.hist(q.ravel().astype(int), bins=np.arange(-128, 129, 2), color="#2da44e")
        for x in (-127, 127):
            b.axvline(x, color="#d1242f", ls="--")
        b.set_title(f"int8 levels ({source})")
        b.set_xlabel("level (-m -> -127, 0.0 -> 0, m -> 127)")
        fig.tight_layout()
        self.figure = fig
        self.out.value = figure_png(fig)
        return fig
