"""A functional model's graph: a layer's inbound layer and consumers, the output layers, a layer's kernel.
``homl_edge._keras`` exports every name.
"""
from __future__ import annotations


def inbound_layer(layer):
    """The single layer feeding ``layer`` (tf_keras), or None for an input or a merge."""
    try:
        inbound = layer._inbound_nodes[0].inbound_layers
    except (IndexError, AttributeError):
        return None
    if isinstance(inbound, (list, tuple)):
        return inbound[0] if len(inbound) == 1 else None
    return inbound


def consumers(layer) -> list:
    return [node.outbound_layer for node in getattr(layer, "_outbound_nodes", [])]


def output_layer_names(model) -> set:
    return {t._keras_history.layer.name for t in model.outputs}


def kernel_of(layer):
    """The main weight tensor of a layer, or None: its kernel; a SeparableConv's pointwise kernel (most of its
    weights, and the one TF-MOT prunes and clusters); a DepthwiseConv's depthwise kernel; a recurrent layer's is
    on its cell."""
    for holder in (layer, getattr(layer, "cell", None)):
        if holder is None:
            continue
        for attr in ("kernel", "pointwise_kernel", "depthwise_kernel"):
            w = getattr(holder, attr, None)
            if w is not None:
                return w
    return None
