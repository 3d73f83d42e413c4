"""One call for "apply a technique, then convert": what the OptimizerPanel and the capstone chapter run."""
from __future__ import annotations

import time

from . import clustering, qat, quantization
from . import sparsity as pruning
from .errors import HomlEdgeError

TECHNIQUES = ("quantize", "prune", "prune-taylor", "prune-l1", "channels", "cluster", "qat", "prune+qat",
              "cluster+qat")


def optimize(model, technique: str = "quantize", *, train=None, data=None, mode: str = "int8",
             sparsity: float = 0.8, structure: str | None = None, clusters: int = 16, epochs: int = 2,
             progress=True, name: str | None = None):
    """Apply ``technique`` to ``model`` and convert the result with ``mode``; returns ``(keras_model, lite)``.

    ``quantize``: post-training quantization only. ``prune`` / ``cluster`` / ``qat``: fine-tune with that
    technique first; ``prune-taylor`` / ``prune-l1`` use those criteria; ``channels`` removes the fraction
    ``sparsity`` of whole filters/units (a narrower, faster model). ``prune+qat`` and ``cluster+qat`` chain the technique with sparsity- or cluster-preserving
    QAT (collaborative optimization). ``train=(x, y)`` is needed for every technique but ``quantize``;
    ``data`` (calibration inputs) for the int8/int16x8 modes.
    """
    if technique not in TECHNIQUES:
        raise HomlEdgeError(f"technique must be one of {', '.join(TECHNIQUES)}, got {technique!r}")
    if technique != "quantize" and train is None:
        raise HomlEdgeError(f"technique {technique!r} fine-tunes the model: pass {{train=(x, y)}}", param="train")
    t0 = time.perf_counter()
    keras_model = model
    if technique in ("prune", "prune+qat"):
        keras_model = pruning.prune(model, train, sparsity=sparsity, structure=structure, epochs=epochs,
                                     progress=progress)
    elif technique in ("prune-taylor", "prune-l1"):
        keras_model = pruning.prune(model, train, sparsity=sparsity, epochs=epochs, progress=progress,
                                     criterion=technique.split("-")[1])
    elif technique == "channels":
        keras_model = pruning.prune(model, train, channels=sparsity, epochs=epochs, progress=progress)
    elif technique in ("cluster", "cluster+qat"):
        keras_model = clustering.cluster(model, train, clusters=clusters, epochs=max(1, epochs // 2),
                                         progress=progress)
    if technique.endswith("qat"):
        preserve = {"qat": None, "prune+qat": "sparsity", "cluster+qat": "clusters"}[technique]
        keras_model = qat.quantize_aware(keras_model, train, epochs=max(1, epochs // 2), preserve=preserve,
                                         progress=progress)
    label = name or (technique if technique == "quantize" else f"{technique}") + f" {mode}"
    lite = quantization.quantize(keras_model, mode, data=data, name=label)
    lite.meta.update({"technique": technique, "settings": {"sparsity": sparsity, "structure": structure,
                                                           "clusters": clusters, "epochs": epochs},
                      "total_seconds": time.perf_counter() - t0})
    return keras_model, lite
