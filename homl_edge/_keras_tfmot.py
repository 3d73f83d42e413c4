"""The Model Optimization Toolkit, bound to tf_keras, and which layers it can wrap. ``homl_edge._keras`` exports
every name.
"""
from __future__ import annotations

from . import _tf
from ._keras_flavour import legacy
from .errors import HomlEdgeError


def tfmot():
    """The Model Optimization Toolkit, bound to tf_keras.

    TF-MOT 0.8 picks tf_keras by itself whenever ``tf.keras`` is Keras 3, so it works whether TensorFlow or
    homl-edge came first. Only a TF-MOT that is bound to some other Keras (an older release imported before
    homl-edge with ``tf.keras`` pointing elsewhere) needs a kernel restart, and that is the one case refused here.
    """
    k2 = legacy()
    import os

    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        import tensorflow_model_optimization as mot
    except ImportError:
        raise HomlEdgeError(_tf.keras2_install_hint("pruning, clustering and QAT")) from None
    from tensorflow_model_optimization.python.core.keras import compat

    if getattr(compat.keras, "Model", None) is not k2.Model:
        raise HomlEdgeError("tensorflow_model_optimization was imported before homl-edge in this kernel and is "
                            f"bound to {getattr(compat.keras, '__name__', compat.keras)}, not tf_keras: "
                            + _tf.RESTART_HINT)
    return mot


def is_qat_model(model) -> bool:
    """True for a model with TF-MOT fake-quant wrappers (its int8 ranges are learned and stored in it)."""
    return any(type(l).__name__ in ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer")
               for l in getattr(model, "layers", []))


def without_training_wrappers(model):
    """``model`` with TF-MOT's pruning and clustering wrappers stripped (the weights they stand for: masked, or
    the centroids), as TF-MOT says to do before export; the model itself when it holds none. A model saved in
    the middle of pruning holds them, and converted as it is its float32 ``.tflite`` computed other outputs than
    Keras (max |diff| 3.2 on a two-Dense model, 27 November)."""
    names = {type(l).__name__ for l in getattr(model, "layers", [])}
    if not names & {"PruneLowMagnitude", "ClusterWeights", "ClusterWeightsMHA"}:
        return model
    mot = tfmot()
    with _tf.quiet():
        if "PruneLowMagnitude" in names:
            model = mot.sparsity.keras.strip_pruning(model)
        if names & {"ClusterWeights", "ClusterWeightsMHA"}:
            model = mot.clustering.keras.strip_clustering(model)
    return model


def qat_supports(layer) -> bool:
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import \
        default_8bit_quantize_registry as reg

    return reg.Default8BitQuantizeRegistry().supports(layer)


def prune_supports(layer) -> bool:
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    return prune_registry.PruneRegistry.supports(layer)


def cluster_supports(layer) -> bool:
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

    return clustering_registry.ClusteringRegistry.supports(layer)
