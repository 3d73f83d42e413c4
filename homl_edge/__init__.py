"""homl-edge: make TensorFlow models small and fast for phones, microcontrollers and browsers.

``import homl_edge as he`` is cheap: TensorFlow is imported only when a function needs it. In IPython,
``%load_ext homl_edge`` registers the magics (``%quantize``, ``%prune``, ``%export`` ...; ``%quantize?`` for help).
"""
from __future__ import annotations

import importlib

from ._version import __version__  # noqa: F401

# public name -> module that defines it (imported on first use, so that `import homl_edge` stays light)
_LAZY = {
    "HomlEdgeError": "errors",
    "LiteModel": "lite",
    "MicroRun": "lite",
    "load_lite": "lite",
    "quantize": "quantization",
    "requantize": "quantization",
    "parse_precision": "quantization",
    "MODES": "quantization",
    "clear_cache": "quantization",
    "symmetric_quantize": "quantization",
    "load_keras": "_keras",
    "save_keras": "_keras",
    "to_legacy": "_keras",
    "tensorflow": "_tf",
    "quiet": "_tf",
    "quantize_aware": "qat",
    "prune": "sparsity",
    "prune_channels": "sparsity",
    "prune_report": "sparsity",
    "prune_sensitivity": "sparsity",
    "sparsity_report": "sparsity",
    "check_m_by_n": "sparsity",
    "cluster": "clustering",
    "unique_weights": "clustering",
    "optimize": "pipeline",
    "TECHNIQUES": "pipeline",
    "quantization_error": "precision",
    "autoquantize": "precision",
    "compare": "report",
    "measure": "report",
    "Table": "report",
    "plot_tradeoff": "plots",
    "export_tfjs": "export",
    "export_c_array": "export",
    "load_tfjs": "export",
    "export_web": "export",
    "register_page": "browser",
    "explore": "graph",
    "Exploration": "graph",
    "OptimizerPanel": "panels",
    "GpuPanel": "panels",
    "WeightHistogram": "panels",
    "TradeoffExplorer": "panels",
}
_SUBMODULES = {"_tf", "_keras", "browser", "datasets", "micro", "models", "gpu", "lite", "quantization", "training",
               "qat", "sparsity", "clustering", "pipeline", "precision", "report", "plots", "export", "cli", "magics",
               "panels", "errors", "graph"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES - {"_tf", "_keras", "cli", "magics"})


def _tqdm(total, desc):
    """The progress bar behind ``progress=True`` in every long core call: tqdm (a widget in Jupyter)."""
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm as notebook_tqdm

    if issubclass(tqdm, notebook_tqdm):
        return _SavedBar(total, desc)
    return tqdm(total=total, desc=desc, unit="step", leave=True)


class _SavedBar:
    """tqdm's notebook bar, displayed with a display id so that closing it rewrites the output's text: a saved
    notebook (GitHub, nbviewer without widget state) shows the finished bar, "100%| 90/90 [00:03, ...]", not the
    "0%" that the bar's text was when it appeared."""

    def __init__(self, total, desc):
        from IPython.display import display
        from tqdm.notebook import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="step", leave=True, display=False)
        self.handle = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self):
        return {"text/plain": str(self.bar), "application/vnd.jupyter.widget-view+json": {
            "version_major": 2, "version_minor": 0, "model_id": self.bar.container.model_id}}

    def update(self, n=1):
        self.bar.update(n)

    def set_postfix(self, *args, **kwargs):
        self.bar.set_postfix(*args, **kwargs)

    def close(self):
        self.bar.close()
        if self.handle is not None:
            self.handle.update(self._bundle(), raw=True)


def _install_progress():
    from . import _progress

    _progress.install(_tqdm)


_install_progress()


def _install_display():
    """In a Jupyter kernel, web exports show their live page (homl_edge/_display.py; nothing outside IPython)."""
    from . import _display

    _display.install()


_install_display()


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'homl_edge' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _jupyter_server_extension_points():
    """The Jupyter server extension that serves exported pages inside notebooks (see homl_edge._jupyter)."""
    return [{"module": "homl_edge._jupyter"}]


def load_ipython_extension(ipython):
    """Called by ``%load_ext homl_edge``: register the magics (works before or after TensorFlow was imported)."""
    from . import magics

    magics.load_ipython_extension(ipython)


def unload_ipython_extension(ipython):
    """Called by ``%unload_ext homl_edge``: remove the magics again."""
    from . import magics

    magics.unload_ipython_extension(ipython)
