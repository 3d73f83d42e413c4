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
    "OptimizerPanel": "panels",
    "GpuPanel": "panels",
    "WeightHistogram": "panels",
    "TradeoffExplorer": "panels",
}
_SUBMODULES = {"_tf", "_keras", "browser", "datasets", "micro", "models", "gpu", "lite", "quantization", "training",
               "qat", "sparsity", "clustering", "pipeline", "precision", "report", "plots", "export", "cli", "magics",
               "panels", "errors"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES - {"_tf", "_keras", "cli", "magics"})


def _tqdm(total, desc):
    """The progress bar behind ``progress=True`` in every long core call: tqdm (a widget in Jupyter)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=True)


def _install_progress():
    from . import _progress

    _progress.install(_tqdm)


_install_progress()


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
