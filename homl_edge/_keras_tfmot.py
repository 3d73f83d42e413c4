"""The Model Optimization Toolkit, bound to tf_keras, and which layers it can wrap. ``homl_edge._keras`` exports
every name.
"""
from __future__ import annotations

import contextlib

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


# TF-MOT's layers in a model made by quantization-aware training
QAT_WRAPPERS = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer")


def is_qat_model(model) -> bool:
    """True for a model with TF-MOT fake-quant wrappers (its int8 ranges are learned and stored in it)."""
    return any(type(l).__name__ in QAT_WRAPPERS for l in getattr(model, "layers", []))


# TF-MOT's wrappers of a model in the middle of pruning or clustering (a QAT model's are what int8 converts)
PRUNE_WRAPPERS = ("PruneLowMagnitude",)
CLUSTER_WRAPPERS = ("ClusterWeights", "ClusterWeightsRNN", "ClusterWeightsMHA")


def layers_within(model) -> list:
    """Every layer of ``model``, those of the models nested in it too."""
    flat = getattr(model, "_flatten_layers", None)
    return list(flat(include_self=False)) if flat else list(getattr(model, "layers", []))


@contextlib.contextmanager
def tfmot_scope():
    """A scope in which Keras knows every TF-MOT wrapper (QAT, pruning, clustering and its RNN and attention
    variants, which ``cluster_scope`` leaves out): loading or cloning a model that holds them needs it."""
    from tensorflow_model_optimization.python.core.clustering.keras import cluster_wrapper

    mot = tfmot()
    clusters = {name: getattr(cluster_wrapper, name) for name in CLUSTER_WRAPPERS}
    with mot.quantization.keras.quantize_scope(), mot.sparsity.keras.prune_scope(), \
            legacy().utils.custom_object_scope(clusters):
        yield


def without_training_wrappers(model):
    """``model`` as the weights it computes with, without TF-MOT's pruning and clustering wrappers (what TF-MOT
    says to do before export), or the model itself when it holds none. The wrappers are stripped from a copy,
    after its masks are applied (a kernel saved between a training step and the next forward pass holds values
    that the mask zeroes) and its clusters updated; the user's model is not touched. Converted with its
    wrappers, a model in the middle of pruning gave a float32 ``.tflite`` whose outputs differed from Keras's
    (max |diff| 3.2 on a two-Dense model, 27 November)."""
    names = {type(l).__name__ for l in layers_within(model)}
    if not names.intersection(PRUNE_WRAPPERS + CLUSTER_WRAPPERS):
        return model
    mot = tfmot()
    with _tf.quiet(), tfmot_scope():
        copy = legacy().models.clone_model(model)
        copy.set_weights(model.get_weights())
        for layer in layers_within(copy):
            if type(layer).__name__ in PRUNE_WRAPPERS:
                layer.pruning_obj.weight_mask_op()   # weights = weights * mask (eager: assigns now)
        if names.intersection(PRUNE_WRAPPERS):
            copy = mot.sparsity.keras.strip_pruning(copy)
        if names.intersection(CLUSTER_WRAPPERS):
            copy = mot.clustering.keras.strip_clustering(copy)
    return copy


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
