"""Quantization-aware training (TF-MOT): fake-quant ops learn the int8 ranges during fine-tuning.

The result keeps TF-MOT's wrappers (a tf_keras model whatever Keras came in: Keras 3 has no such layers) and
converts to int8 without calibration data, since its ranges are stored in it: ``he.quantize(qat, "int8")`` (``qat``
the :class:`QuantizeAware` result, or its ``.model``).
"""
from __future__ import annotations


from . import _keras
from ._result import ModelResult, Report, result
from .errors import HomlEdgeError, first_line
from .training import build_in, clone, compile_like, fit, labels_of, prepare

PRESERVE = (None, "sparsity", "clusters", "both")


@result
class QuantizeAware(ModelResult):
    """What :func:`quantize_aware` returns: the QAT model (``.model``, a tf_keras model with TF-MOT's fake-quant
    wrappers) and the run's report (``.report``: ``preserve``, the ``float_layers`` left in float and the
    ``problems`` that made them so). ``to_frame()`` lists every layer and whether it is quantized."""

    preserve: str | None
    float_layers: tuple

    def to_frame(self):
        import pandas as pd

        rows = [{"layer": layer.name, "type": type(getattr(layer, "layer", layer)).__name__,
                 "quantized": type(layer).__name__.startswith("QuantizeWrapper")}
                for layer in self.model.layers if type(layer).__name__ != "InputLayer"]
        return pd.DataFrame(rows, columns=["layer", "type", "quantized"]).set_index("layer")


def qat_problems(model) -> list[str]:
    """Every layer that TF-MOT's default 8-bit QAT would reject, each with what to do about it."""
    model = _keras.load_model(model)
    if _keras.flavour(model) is None:  # a .tflite, a record...: one line, not an AttributeError
        _keras.check_model(model, "model given to qat_problems")
    problems = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind == "BatchNormalization":
            prev = _keras.inbound_layer(layer)
            act = getattr(getattr(prev, "activation", None), "__name__", "linear") if prev is not None else "linear"
            if prev is not None and act not in ("linear", None):
                problems.append(f"{layer.name} (BatchNormalization after {prev.name} with a fused '{act}' "
                                f"activation: give {prev.name} activation=None and add the activation after "
                                f"{layer.name})")
                continue
            if prev is not None and type(prev).__name__ in ("Conv2D", "DepthwiseConv2D"):
                continue  # TF-MOT folds Conv -> BatchNormalization (-> ReLU) itself
        if not _keras.qat_supports(layer):
            problems.append(f"{layer.name} ({kind}: not supported by TF-MOT 8-bit QAT; pass unsupported='float' to "
                            f"keep it in float, or replace it)")
    return problems


def quantize_aware(model, train, epochs: int = 2, *, batch_size: int = 32, learning_rate: float = 1e-4,
                   preserve: str | None = None, unsupported: str = "error", strategy=None, progress: bool = True):
    """Quantization-aware training: insert fake-quant ops (TF-MOT) and fine-tune; convert with mode 'int8'.

    ``preserve`` chooses a collaborative-optimization scheme for a model that is already pruned or clustered:
    ``"sparsity"`` (PQAT), ``"clusters"`` (CQAT) or ``"both"`` (PCQAT), so that QAT keeps the zeros/centroids.
    ``unsupported="float"`` leaves layers TF-MOT cannot quantize in float instead of raising. Returns a
    :class:`QuantizeAware` (``.model`` is the QAT model).
    """
    if preserve not in PRESERVE:
        raise HomlEdgeError(f"preserve must be one of {PRESERVE}, got {preserve!r}")
    if unsupported not in ("error", "float"):
        raise HomlEdgeError("unsupported must be 'error' or 'float'")
    model = prepare(model)
    problems = qat_problems(clone(model))
    if problems and unsupported == "error":
        raise HomlEdgeError(f"QAT cannot quantize {len(problems)} layer(s): " + "; ".join(problems))
    mot = _keras.tfmot()
    q = mot.quantization.keras
    bad = {p.split(" ")[0] for p in problems}

    def build():
        if bad:
            k = _keras.legacy()

            def annotate(layer):
                if layer.name in bad or type(layer).__name__ == "InputLayer":
                    return layer
                return q.quantize_annotate_layer(layer)

            annotated = k.models.clone_model(clone(model), clone_function=annotate)
        else:
            annotated = q.quantize_annotate_model(clone(model))
        scheme = None
        if preserve == "sparsity":
            scheme = mot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        elif preserve == "clusters":  # TF-MOT's default is preserve_sparsity=True, i.e. PCQAT: say CQAT
            scheme = mot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
        elif preserve == "both":
            scheme = mot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
        with q.quantize_scope():
            return q.quantize_apply(annotated, scheme) if scheme else q.quantize_apply(annotated)

    try:
        qat = build_in(strategy, build)
    except (ValueError, RuntimeError) as e:
        first = first_line(e)
        raise HomlEdgeError(f"TF-MOT could not prepare the model for QAT: {first[:300]}") from None
    fit(qat, model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
         progress=progress, desc="QAT" + (f" (preserve {preserve})" if preserve else ""), strategy=strategy)
    if preserve in ("clusters", "both"):
        qat = compile_like(mot.experimental.combine.strip_clustering_cqat(qat), model, labels_of(train))
    report = {"preserve": preserve, "float_layers": sorted(bad), "problems": problems}
    return QuantizeAware(qat, Report(report), preserve, tuple(sorted(bad)))  # a read-only report
