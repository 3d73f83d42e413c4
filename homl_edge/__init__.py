"""homl-edge: make TensorFlow models small and fast for phones, microcontrollers and browsers.

``import homl_edge as he`` is cheap: TensorFlow is imported only when a function needs it. In IPython,
``%load_ext homl_edge`` registers the magics (``%quantize``, ``%prune``, ``%export`` ...; ``%quantize?`` for help).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use, so that `import homl_edge` stays light)
_LAZY = {
    "HomlEdgeError": "errors",
    "LiteModel": "lite",
    "load_lite": "lite",
    "quantize": "convert",
    "MODES": "convert",
    "clear_cache": "convert",
    "load_keras": "_tf",
    "tensorflow": "_tf",
    "quiet": "_tf",
    "quantize_aware": "training",
    "prune": "training",
    "prune_sensitivity": "training",
    "sparsity_report": "training",
    "prune_channels": "structured",
    "prune_report": "structured",
    "check_m_by_n": "training",
    "cluster": "training",
    "unique_weights": "training",
    "optimize": "pipeline",
    "TECHNIQUES": "pipeline",
    "symmetric_quantize": "convert",
    "quantization_error": "precision",
    "autoquantize": "precision",
    "compare": "report",
    "measure": "report",
    "plot_tradeoff": "report",
    "export_tfjs": "export",
    "export_c_array": "export",
    "load_tfjs": "export",
    "OptimizerPanel": "panels",
    "GpuPanel": "panels",
    "WeightHistogram": "panels",
    "TradeoffExplorer": "panels",
}
_SUBMODULES = {"_tf", "browser", "datasets", "micro", "models", "gpu", "lite", "convert", "training", "structured", "pipeline", "precision", "report", "export", "cli", "magics", "panels", "errors"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES - {"_tf", "cli", "magics"})


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


def load_ipython_extension(ipython):
    """Called by ``%load_ext homl_edge``: prepare TensorFlow for Keras 2 and register the magics."""
    from . import magics

    magics.load_ipython_extension(ipython)


def unload_ipython_extension(ipython):
    """Called by ``%unload_ext homl_edge``: remove the magics again."""
    from . import magics

    magics.unload_ipython_extension(ipython)
