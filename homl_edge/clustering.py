"""Weight clustering (TF-MOT ``cluster_weights``): each kernel keeps a few distinct values, so the file gzips well
and a lookup table can replace the weights."""
from __future__ import annotations


import numpy as np

from . import _keras
from ._keras import kernel_of
from ._result import ModelResult, Report, result
from .errors import HomlEdgeError
from .training import build_in, clone, compile_like, fit, labels_of, prepare, select_layers

CLUSTER_INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "random": "RANDOM", "density": "DENSITY_BASED"}


@result
class Clustered(ModelResult):
    """What :func:`cluster` returns: the clustered Keras model (``.model``, the flavour given) and the run's report
    (``.report``: ``clusters``, ``init``, ``preserve_sparsity``, the ``layers`` clustered, the ``unique_weights``
    per kernel and, where TF-MOT wrapped a layer but left its kernel as it was, ``not_clustered``). ``to_frame()``
    is the number of distinct values per layer."""

    clusters: int
    layers: tuple

    def to_frame(self):
        import pandas as pd

        return pd.Series(self.report["unique_weights"], name="unique values").rename_axis("layer").to_frame()


def cluster(model, train, clusters: int = 16, *, init: str = "kmeans++", preserve_sparsity: bool = False,
            epochs: int = 1, batch_size: int = 32, learning_rate: float = 1e-4, layers: str | None = None,
            strategy=None, progress: bool = True):
    """Weight clustering (TF-MOT ``cluster_weights``): each kernel keeps at most ``clusters`` distinct values.

    ``init`` is the centroid initialisation: ``"kmeans++"``, ``"linear"``, ``"random"`` or ``"density"``.
    ``preserve_sparsity=True`` keeps the zeros of a pruned model (sparsity-preserving clustering).
    Returns a :class:`Clustered`: ``.model`` is the stripped model, ``.report["unique_weights"]`` counts the
    values per kernel (as :func:`unique_weights` does).
    """
    if int(clusters) < 2:
        raise HomlEdgeError(f"clusters must be at least 2, got {clusters}")
    if init not in CLUSTER_INITS:
        raise HomlEdgeError(f"init must be one of {', '.join(CLUSTER_INITS)}, got {init!r}")
    original = _keras.load_model(model)
    model = prepare(original)
    mot = _keras.tfmot()
    ck = mot.clustering.keras
    chosen = select_layers(layers)
    k = _keras.legacy()
    wrapped = []
    params = {"number_of_clusters": int(clusters),
              "cluster_centroids_init": getattr(ck.CentroidInitialization, CLUSTER_INITS[init])}
    if preserve_sparsity:
        params["preserve_sparsity"] = True

    def wrap(layer):
        w = kernel_of(layer)
        if w is None or not chosen(layer.name) or int(np.prod(w.shape)) <= int(clusters):
            return layer
        if not _keras.cluster_supports(layer):
            return layer
        wrapped.append(layer.name)
        return ck.cluster_weights(layer, **params)

    def build():
        return k.models.clone_model(clone(model), clone_function=wrap)

    clustered = build_in(strategy, build)
    if not wrapped:
        raise HomlEdgeError("no layer to cluster: TF-MOT clusters Dense/Conv kernels with more weights than clusters"
                            + (f" whose names match {layers!r}" if layers else ""))
    fit(clustered, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         progress=progress, desc=f"clustering to {clusters} centroids", strategy=strategy)
    back = _keras.like(compile_like(ck.strip_clustering(clustered), model, labels_of(train)), original)
    unique = unique_weights(back)
    # a layer is reported clustered when its kernel has at most `clusters` values (and a kept zero): TF-MOT wraps
    # a DepthwiseConv2D and leaves its kernel as it was (288 values of 288, measured with TF-MOT 0.8.1)
    done = [n for n in wrapped if unique.get(n, 0) <= int(clusters) + 1]
    report = {"clusters": int(clusters), "init": init, "preserve_sparsity": bool(preserve_sparsity),
              "layers": done, "unique_weights": unique}
    if len(done) < len(wrapped):
        report["not_clustered"] = {n: unique.get(n) for n in wrapped if n not in done}  # name -> values it kept
    if not done:
        raise HomlEdgeError(f"TF-MOT clustered no kernel: {report['not_clustered']} (layer -> distinct values it "
                            "kept); cluster Dense or Conv layers")
    return Clustered(back, Report(report), int(clusters), tuple(done))  # a read-only report


def unique_weights(model) -> dict:
    """Number of distinct values in each layer's kernel (of a Keras model or of a result that holds one)."""
    model = _keras.load_model(model)
    if _keras.flavour(model) is None:  # a .tflite, a record...: one line, not an AttributeError
        _keras.check_model(model, "model given to unique_weights")
    return {layer.name: int(np.unique(kernel_of(layer).numpy()).size)
            for layer in model.layers if kernel_of(layer) is not None}
