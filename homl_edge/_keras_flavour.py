"""Which Keras a model is (Keras 3 or tf_keras, functional, recurrent, a SavedModel folder), its inputs, and how
far two models' outputs are apart. ``homl_edge._keras`` exports every name.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import _tf
from ._result import ModelResult
from .errors import HomlEdgeError


AGREEMENT = 1e-5  # max |original - translated| / max(1, max |original|) on the same inputs
RECURRENT = {"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}


def model_of(source, *, lite: bool = False):
    """A result that holds a model (what pruning, clustering, QAT and ``optimize`` return, a
    :class:`~homl_edge._result.ModelResult`) as its ``.model``; anything else as it is. The one unwrapping:
    ``_keras.load_model`` (the one resolver of models) and :func:`to_legacy` call it. ``lite=True`` (a call that
    takes a ``.tflite`` as readily as a Keras model: ``compare``, ``export_web``) gives the ``.lite`` of a result
    that holds one (``optimize``'s), the file it made, not a fresh float32 conversion of its ``.model``."""
    if not isinstance(source, ModelResult):
        return source
    made = getattr(source, "lite", None)
    return made if lite and made is not None else source.model


def legacy():
    """Keras 2: the ``tf_keras`` package (imported after TensorFlow, quietly)."""
    _tf.tf()
    try:
        import tf_keras
    except ImportError:
        raise HomlEdgeError(_tf.keras2_install_hint("this step")) from None
    return tf_keras


def keras3():
    """Keras 3 (the ``keras`` package), or None where it is not installed or is Keras 2."""
    _tf.tf()
    try:
        import keras
    except ImportError:
        return None
    return keras if str(getattr(keras, "__version__", "0")).startswith("3") else None


def flavour(obj) -> str | None:
    """``"keras3"`` for a Keras 3 model, ``"keras2"`` for a tf_keras one, None for anything else."""
    mod = type(obj).__module__
    if mod.startswith("tf_keras") or mod.startswith("tensorflow.python.keras"):
        return "keras2" if _is_model_class(obj, "tf_keras") else None
    if mod.startswith("keras"):
        return "keras3" if _is_model_class(obj, "keras") else None
    # a subclass defined in the user's notebook (module __main__): look at its bases
    for base in type(obj).__mro__:
        m = base.__module__
        if m.startswith("tf_keras") and base.__name__ == "Model":
            return "keras2"
        if m.startswith("keras.src.models") and base.__name__ == "Model":
            return "keras3"
    return None


def _is_model_class(obj, package) -> bool:
    mod = sys.modules.get(package)
    return mod is not None and isinstance(obj, getattr(mod, "Model", ()))


def is_keras3(model) -> bool:
    return flavour(model) == "keras3"


def check_model(model, what: str = "model"):
    """Raise a one-line error unless ``model`` is a built Keras model (Keras 2 or 3) with known inputs."""
    if isinstance(model, SavedModelSource):
        return model
    kind = flavour(model)
    if kind is None and type(model).__name__ == "LiteModel":  # base module: no import of lite here
        raise HomlEdgeError(f"the {what} is a .tflite file ({getattr(model, 'name', 'LiteModel')}): this needs the "
                            "Keras model it was converted from (a .tflite re-quantizes with he.quantize(lite, "
                            "mode) and runs in a web page with he.export_web)")
    if kind is None:
        raise HomlEdgeError(f"the {what} must be a Keras model (keras, tf.keras or tf_keras), a .keras/.h5 path or "
                            f"a SavedModel folder; got {type(model).__name__}")
    if getattr(model, "built", False) and not getattr(model, "inputs", None) and not is_functional(model):
        raise HomlEdgeError(f"the {what} is a subclassed model ({type(model).__name__}): built or called, it still "
                            "has no symbolic inputs; wrap it in a functional model: inp = keras.Input(shape); "
                            f"model = keras.Model(inp, {type(model).__name__.lower()}(inp))")
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise HomlEdgeError(f"the {what} has no known input shape: build it first (start it with "
                            "keras.Input(shape=...) or call the model once on a batch)")
    return model


def compiled_loss_weights(model):
    """The ``loss_weights`` a model was compiled with (None where none), from either Keras's compile config."""
    cfg = getattr(getattr(model, "_compile_config", None), "config", None)
    return cfg.get("loss_weights") if isinstance(cfg, dict) else None


def is_functional(model) -> bool:
    """True for Sequential and functional models; False for subclassed ones (which TF-MOT cannot wrap)."""
    if flavour(model) == "keras3":
        return type(model).__name__ in ("Sequential", "Functional")
    k = legacy()
    return bool(getattr(model, "_is_graph_network", False)) or isinstance(model, k.Sequential)


def require_functional(model, who: str = "TF-MOT can wrap") -> None:
    """The one refusal of a subclassed model, for the steps that need its layer graph (``who``: TF-MOT's wrappers,
    the Keras 3 -> tf_keras translation)."""
    if not is_functional(model):
        raise HomlEdgeError(f"{type(model).__name__} is a subclassed model: {who} only Sequential and functional "
                            "models; rebuild it with keras.Sequential or the functional API")


def layer_kinds(model) -> set:
    """Class names of every layer, nested ones (Bidirectional's) included."""
    kinds = set()
    for layer in getattr(model, "layers", []):
        kinds.add(type(layer).__name__)
        for attr in ("layer", "forward_layer", "backward_layer"):
            inner = getattr(layer, attr, None)
            if inner is not None and hasattr(inner, "get_config"):
                kinds.add(type(inner).__name__)
        if hasattr(layer, "layers"):
            kinds |= layer_kinds(layer)
    return kinds


def is_recurrent(model) -> bool:
    return bool(layer_kinds(model) & RECURRENT)


def input_specs(model) -> list[tuple]:
    """(shape with None for unknown dims, dtype name) of each input."""
    out = []
    for t in model.inputs:
        shape = tuple(None if d is None else int(d) for d in t.shape)
        out.append((shape, getattr(t.dtype, "name", str(t.dtype))))
    return out


def probe_inputs(model, n: int = 2, seed: int = 0) -> list:
    """Random inputs of the model's shapes (batch ``n``, or the fixed batch), for agreement checks."""
    rng = np.random.default_rng(seed)
    xs = []
    for shape, dtype in input_specs(model):
        dims = [n if shape[0] is None else shape[0]] + [4 if d is None else d for d in shape[1:]]
        if "int" in dtype:
            xs.append(rng.integers(0, 2, size=dims).astype(dtype))
        else:
            xs.append(rng.uniform(0, 1, size=dims).astype("float32"))
    return xs


def _predict(model, xs):
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    outs = out if isinstance(out, (list, tuple)) else (list(out.values()) if isinstance(out, dict) else [out])
    return [np.asarray(o) for o in outs]


def disagreement(a, b, xs) -> float:
    """Largest |a(x) - b(x)| over every output, relative to max(1, max |a(x)|)."""
    pa, pb = _predict(a, xs), _predict(b, xs)
    if len(pa) != len(pb) or any(x.shape != y.shape for x, y in zip(pa, pb)):
        return float("inf")
    return max(float(np.max(np.abs(x - y))) / max(1.0, float(np.max(np.abs(x)))) for x, y in zip(pa, pb))


class SavedModelSource:
    """A SavedModel folder without Keras metadata (Keras 3 ``model.export()``, ``tf.saved_model.save``).

    It is inference-only: the converter takes it (``he.quantize``), the training paths cannot.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.name
        self._input_specs = None   # its serving signature's input specs, once read (homl_edge._calibration)

    def __repr__(self):
        return f"<SavedModelSource {self.path}>"
