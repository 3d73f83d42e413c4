"""GpuPanel: devices, memory in use, and the memory strategies as controls (calls homl_edge.gpu only)."""
from __future__ import annotations

import html

import ipywidgets as W

from .. import gpu
from ..errors import HomlEdgeError
from ._static import StaticFallback


class GpuPanel(StaticFallback, W.VBox):
    """Devices and memory, and controls for memory growth, a memory limit, a split and the CPU split."""

    def __init__(self):
        self.info = W.HTML()
        self.growth = W.Checkbox(description="memory growth", indent=False)
        self.limit = W.BoundedIntText(value=0, min=0, max=1_000_000, description="limit MB")
        self.split = W.Text(placeholder="e.g. 2048,2048", description="split MB")
        self.cpu_split = W.BoundedIntText(value=0, min=0, max=64, description="CPU split")
        self.apply_button = W.Button(description="Apply", button_style="primary", icon="check")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.message = W.HTML()
        self.apply_button.on_click(lambda _: self.apply())
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.info, W.HBox([self.growth, self.limit]), W.HBox([self.split, self.cpu_split]),
                          W.HBox([self.apply_button, self.refresh_button]), self.message])
        self.refresh()

    def _static_text(self):
        return "GpuPanel: " + html.unescape(self.info.value.split("</b>")[0].removeprefix("<b>"))

    def _static_html(self):
        return self.info.value + (f"<div>{self.message.value}</div>" if self.message.value else "")

    def refresh(self) -> "gpu.Devices":
        """Read devices (and memory where a GPU exists) again."""
        d = gpu.devices()
        rows = "".join(f"<li>{html.escape(g['name'])}: {html.escape(str(g.get('model') or ''))} "
                       f"cc {g.get('compute_capability') or '?'}"
                       + (f", {g['memory_used_mb']} / {g['memory_total_mb']} MB used" if "memory_total_mb" in g
                          else "") + "</li>" for g in d["gpus"])
        logical = ", ".join(d["logical"]) if d["logical"] else "runtime not started yet (settings still allowed)"
        self.info.value = (f"<b>{html.escape(d['summary'])}</b><ul>{rows}</ul>"
                           f"<div>logical devices: {html.escape(logical)}</div>")
        return d

    def apply(self) -> "gpu.Configured | None":
        """Apply the settings of the controls through he.gpu.configure; errors are shown, not raised."""
        kwargs = {"memory_growth": True if self.growth.value else None,
                  "memory_limit_mb": self.limit.value or None,
                  "split": self.split.value.strip() or None,
                  "cpu_split": self.cpu_split.value or None}
        try:
            result = gpu.configure(**kwargs)
        except HomlEdgeError as e:
            self.message.value = f"<span style='color:#d1242f'>{html.escape(str(e))}</span>"
            return None
        lines = [f"applied: {a}" for a in result["applied"]] + [f"note: {n}" for n in result["notes"]]
        self.message.value = "<br>".join(html.escape(l) for l in lines) or "nothing to change"
        self.refresh()
        return result
