"""One call for "apply a technique, then convert": what the OptimizerPanel and the capstone chapter run."""
from __future__ import annotations

import time

from . import _keras, clustering, qat, quantization
from . import sparsity as pruning
from ._result import ModelResult, Report, result
from .errors import HomlEdgeError

TECHNIQUES = ("quantize", "prune", "prune-taylor", "prune-l1", "channels", "cluster", "qat", "prune+qat",
              "cluster+qat")


@result
class Optimized(ModelResult):
    """What :func:`optimize` returns: the Keras model after the technique (``.model``; the model given for
    ``quantize``), its converted file (``.lite``, a LiteModel) and the run's report (``.report``: ``technique``,
    ``mode``, ``settings``, ``total_seconds``, ``size_bytes``, ``gzip_bytes``, and ``steps``, the report of each
    fine-tuning step by name). ``to_frame()`` is one row: the technique, the mode, the sizes and the seconds."""

    lite: object
    technique: str

    def to_frame(self):
        import pandas as pd

        r = self.report
        row = {"technique": r["technique"], "mode": r["mode"], "size_bytes": r["size_bytes"],
               "gzip_bytes": r["gzip_bytes"], "total_seconds": r["total_seconds"]}
        return pd.DataFrame([row], index=[self.lite.name])


def optimize(model, technique: str = "quantize", *, train=None, data=None, mode: str = "int8",
             sparsity: float = 0.8, structure: str | None = None, clusters: int = 16, epochs: int = 2,
             progress=True, name: str | None = None):
    """Apply ``technique`` to ``model`` and convert the result with ``mode``; returns an :class:`Optimized`
    (``.model`` the Keras model, ``.lite`` the converted file, ``.report`` what each step reported).

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
    keras_model = _keras.load_model(model)
    steps = {}
    step = None
    if technique in ("prune", "prune+qat"):
        step = pruning.prune(keras_model, train, sparsity=sparsity, structure=structure, epochs=epochs,
                             progress=progress)
    elif technique in ("prune-taylor", "prune-l1"):
        step = pruning.prune(keras_model, train, sparsity=sparsity, epochs=epochs, progress=progress,
                             criterion=technique.split("-")[1])
    elif technique == "channels":
        step = pruning.prune(keras_model, train, channels=sparsity, epochs=epochs, progress=progress)
    elif technique in ("cluster", "cluster+qat"):
        step = clustering.cluster(keras_model, train, clusters=clusters, epochs=max(1, epochs // 2),
                                  progress=progress)
    if step is not None:
        steps["cluster" if "cluster" in technique else "prune"] = dict(step.report)  # JSON as it was
        keras_model = step.model
    if technique.endswith("qat"):
        preserve = {"qat": None, "prune+qat": "sparsity", "cluster+qat": "clusters"}[technique]
        step = qat.quantize_aware(keras_model, train, epochs=max(1, epochs // 2), preserve=preserve,
                                  progress=progress)
        steps["qat"] = dict(step.report)
        keras_model = step.model
    label = name or (technique if technique == "quantize" else f"{technique}") + f" {mode}"
    lite = quantization.quantize(keras_model, mode, data=data, name=label)
    settings = {"sparsity": sparsity, "structure": structure, "clusters": clusters, "epochs": epochs}
    lite.meta.update({"technique": technique, "settings": settings, "total_seconds": time.perf_counter() - t0})
    report = {"technique": technique, "mode": lite.meta.get("mode", mode), "settings": settings,
              "total_seconds": lite.meta["total_seconds"], "size_bytes": lite.size, "gzip_bytes": lite.gzip_size,
              "steps": steps}
    return Optimized(keras_model, Report(report), lite, technique)  # a read-only report
