"""Weight clustering (TF-MOT ``cluster_weights``): each kernel keeps a few distinct values, so the file gzips well
and a lookup table can replace the weights."""
from __future__ import annotations

import numpy as np

from . import _keras
from ._keras import kernel_of
from .errors import HomlEdgeError
from .training import build_in, clone, compile_like, fit, labels_of, prepare, select_layers

CLUSTER_INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "random": "RANDOM", "density": "DENSITY_BASED"}


def cluster(model, train, clusters: int = 16, *, init: str = "kmeans++", preserve_sparsity: bool = False,
            epochs: int = 1, batch_size: int = 32, learning_rate: float = 1e-4, layers: str | None = None,
            strategy=None, progress: bool = True):
    """Weight clustering (TF-MOT ``cluster_weights``): each kernel keeps at most ``clusters`` distinct values.

    ``init`` is the centroid initialisation: ``"kmeans++"``, ``"linear"``, ``"random"`` or ``"density"``.
    ``preserve_sparsity=True`` keeps the zeros of a pruned model (sparsity-preserving clustering).
    Returns the stripped model; :func:`unique_weights` counts the values per kernel.
    """
    if int(clusters) < 2:
        raise HomlEdgeError(f"clusters must be at least 2, got {clusters}")
    if init not in CLUSTER_INITS:
        raise HomlEdgeError(f"init must be one of {', '.join(CLUSTER_INITS)}, got {init!r}")
    original, model = model, prepare(model)
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
    return _keras.like(compile_like(ck.strip_clustering(clustered), model, labels_of(train)), original)


def unique_weights(model) -> dict:
    """Number of distinct values in each layer's kernel."""
    return {layer.name: int(np.unique(kernel_of(layer).numpy()).size)
            for layer in model.layers if kernel_of(layer) is not None}
