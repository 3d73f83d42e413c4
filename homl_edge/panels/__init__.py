"""ipywidgets panels: buttons and plots over the core (each public method is a core call)."""
from .explorer import TradeoffExplorer
from .gpu import GpuPanel
from .histogram import WeightHistogram
from .optimizer import OptimizerPanel

__all__ = ["OptimizerPanel", "GpuPanel", "WeightHistogram", "TradeoffExplorer"]
