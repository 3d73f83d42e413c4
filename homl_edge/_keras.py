"""Every Keras a user may hand us, and the one place that touches private Keras, TF-MOT and SavedModel APIs.

Two Kerases live side by side in one process: Keras 3 (the ``keras`` package, what ``pip install tensorflow``
gives and what ``tf.keras`` is when TensorFlow was imported before homl-edge) and Keras 2 (``tf_keras``), which the
Model Optimization Toolkit and the TF.js converter need. The TFLite converter takes both. Where Keras 2 is needed,
:func:`to_legacy` translates a Keras 3 model layer by layer (configs cleaned, TF ops mapped, weights copied) and
refuses, in one line, unless the copy's outputs agree with the original's within 1e-5; :func:`like` hands a
result back in the flavour the user gave.
"""
from __future__ import annotations

import inspect
import json
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import _tf
from .errors import HomlEdgeError, first_line

AGREEMENT = 1e-5  # max |original - translated| / max(1, max |original|) on the same inputs
RECURRENT = {"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
# Keras 3 operations that appear as nodes of a functional graph (x + 3.0, x * 0.5) -> tf_keras TFOpLambda
_OPS = {"Add": "__operators__.add", "Multiply": "math.multiply", "Subtract": "math.subtract",
        "Divide": "math.truediv", "TrueDivide": "math.truediv"}
_COMMUTATIVE = {"Add", "Multiply"}
# Keras 3 config keys that tf_keras lacks and that do not change what a layer computes
_HARMLESS = {"synchronized", "use_cudnn", "seed", "optional", "lora_rank", "lora_alpha", "quantization_config",
             "build_config", "registered_name", "module"}
_BASE_KWARGS = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights", "activity_regularizer",
                "autocast", "implementation", "dtype", "name", "trainable", "dynamic"}


# ----------------------------------------------------------------------------------------------- the two Kerases
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


# ----------------------------------------------------------------------------------------------- Keras 3 -> 2
def to_legacy(model, *, batch_size: int | None = None, check: bool = True):
    """A tf_keras copy of ``model`` (Keras 3 or 2) with the same weights; ``batch_size`` fixes the batch dim.

    Raises a one-line error naming the layer that cannot be translated, or saying how far the copy's outputs are
    from the original's when they differ by more than 1e-5.
    """
    check_model(model)
    kind = flavour(model)
    if kind == "keras2" and batch_size is None:
        return model
    require_functional(model, "homl-edge can translate")
    k2 = legacy()
    if kind == "keras2":
        cfg = model.get_config()
        _set_batch(cfg, batch_size)
        with _tf.quiet():
            copy = model.__class__.from_config(cfg)
        copy.set_weights(model.get_weights())
    else:
        cfg = _translate_model_config(model.get_config(), type(model).__name__, batch_size)
        try:
            with _tf.quiet(), k2.utils.custom_object_scope({}):
                copy = (k2.Sequential if type(model).__name__ == "Sequential" else k2.Model).from_config(cfg)
        except HomlEdgeError:
            raise
        except Exception as e:
            raise HomlEdgeError(f"cannot rebuild this Keras 3 model in tf_keras: {first_line(e)[:300]}") from None
        _copy_weights(model, copy)
    if check:
        xs = probe_inputs(model, n=batch_size or 2)
        diff = disagreement(model, copy, xs)
        if not diff <= AGREEMENT:
            raise HomlEdgeError(f"the tf_keras translation of {model.name} differs from it by {diff:.2g} (more than "
                                f"{AGREEMENT:g}); homl-edge will not use a model that computes something else")
    return copy


def _copy_weights(src, dst):
    for layer in src.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        try:
            target = dst.get_layer(layer.name)
        except ValueError:
            raise HomlEdgeError(f"layer {layer.name!r} ({type(layer).__name__}) was lost in the translation") from None
        try:
            target.set_weights(weights)
        except ValueError as e:
            raise HomlEdgeError(f"layer {layer.name!r} ({type(layer).__name__}) keeps its weights differently in "
                                f"tf_keras: {first_line(e)[:200]}") from None


def _set_batch(cfg, batch_size):
    if batch_size is None:
        return
    layers = cfg["layers"]
    for lc in layers:
        c = lc["config"]
        for key in ("batch_input_shape", "batch_shape"):
            if key in c and c[key] is not None:
                c[key] = [batch_size] + list(c[key][1:])


def _translate_model_config(cfg, cls_name, batch_size):
    out = {"name": cfg.get("name", "model"), "layers": []}
    for lc in cfg["layers"]:
        out["layers"].append(_translate_layer(lc, functional=cls_name != "Sequential"))
    if cls_name != "Sequential":
        out["input_layers"] = _history_list(cfg["input_layers"])
        out["output_layers"] = _history_list(cfg["output_layers"])
    _set_batch(out, batch_size)
    return out


def _history_list(spec):
    if spec and isinstance(spec[0], str):
        return [list(spec)]
    return [list(s) for s in spec]


def _translate_layer(lc, functional: bool):
    cls = lc["class_name"]
    module = lc.get("module") or ""
    name = lc.get("name") or lc["config"].get("name")
    if module.startswith("keras.src.ops") or module.startswith("keras.ops"):
        return _translate_op(lc, cls, name)
    if cls in ("Functional", "Sequential", "Model"):
        raise HomlEdgeError(f"layer {name!r} is a nested {cls} model: homl-edge translates flat models; "
                            "rebuild it without the nested model")
    config = _clean_layer_config(cls, lc["config"])
    out = {"class_name": cls, "config": config}
    if functional:
        out["name"] = name
        out["inbound_nodes"] = [_translate_node(n, name) for n in lc.get("inbound_nodes", [])]
    return out


def _translate_node(node, layer_name):
    if isinstance(node, list):  # already the tf_keras form
        return node
    args = node.get("args", [])
    kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None and k not in ("training", "mask")}
    if kwargs:
        raise HomlEdgeError(f"layer {layer_name!r} is called with {sorted(kwargs)}: homl-edge cannot translate "
                            "layer calls with extra arguments")
    if not args:
        return []
    first = args[0]
    tensors = first if isinstance(first, list) else [first]
    if len(args) > 1 or any(not _is_tensor(t) for t in tensors):
        raise HomlEdgeError(f"layer {layer_name!r} is called with constant arguments: homl-edge cannot translate it")
    return [[*t["config"]["keras_history"], {}] for t in tensors]


def _is_tensor(obj) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _translate_op(lc, cls, name):
    if cls not in _OPS:
        raise HomlEdgeError(f"operation {name!r} ({cls}) has no tf_keras equivalent that homl-edge knows: express "
                            "it with a Keras layer")
    nodes = []
    for node in lc.get("inbound_nodes", []):
        args = node.get("args", [])
        tensors = [a for a in args if _is_tensor(a)]
        consts = [a for a in args if not _is_tensor(a)]
        if len(args) != 2 or len(tensors) != 1 or not isinstance(consts[0], (int, float)):
            raise HomlEdgeError(f"operation {name!r} ({cls}) combines two tensors or non-scalars: use the "
                                f"keras.layers.{cls} layer instead")
        if not _is_tensor(args[0]) and cls not in _COMMUTATIVE:
            raise HomlEdgeError(f"operation {name!r} ({cls}) has its constant first: homl-edge cannot translate it")
        nodes.append([*tensors[0]["config"]["keras_history"], {"y": float(consts[0]), "name": None}])
    return {"class_name": "TFOpLambda", "name": name,
            "config": {"name": name, "trainable": True, "dtype": "float32", "function": _OPS[cls]},
            "inbound_nodes": nodes}


def _k3_hard_sigmoid(x):
    """Keras 3's hard_sigmoid, relu6(x + 3) / 6 (tf_keras's function of that name is 0.2 x + 0.5, clipped)."""
    return _tf.tf().nn.relu6(x + 3.0) / 6.0


def _k3_hard_silu(x):
    """Keras 3's hard_silu (hard_swish), x * relu6(x + 3) / 6, which tf_keras lacks."""
    return x * _k3_hard_sigmoid(x)


# Keras 3 activations that tf_keras lacks or computes differently -> tf_keras functions with Keras 3's math,
# registered as Keras serializables so that a clone, a save and a load of the translation find them again
_ACTIVATIONS = {"hard_sigmoid": ("hard_sigmoid", _k3_hard_sigmoid), "hard_silu": ("hard_silu", _k3_hard_silu),
                "hard_swish": ("hard_silu", _k3_hard_silu)}


def _activation(name, layer_name):
    k2 = legacy()
    if name in _ACTIVATIONS:
        short, fn = _ACTIVATIONS[name]
        registered = f"homl_edge>{short}"
        if registered not in k2.saving.get_custom_objects():
            k2.saving.register_keras_serializable(package="homl_edge", name=short)(fn)
        return registered
    try:
        k2.activations.get(name)
    except Exception:
        raise HomlEdgeError(f"layer {layer_name!r} uses the activation {name!r}, which tf_keras does not have: "
                            "replace it, or convert with he.quantize (no TF-MOT needed)") from None
    return name


def _clean_layer_config(cls, config):
    k2 = legacy()
    layer_cls = getattr(k2.layers, cls, None)
    if layer_cls is None:
        raise HomlEdgeError(f"layer {config.get('name')!r} ({cls}) has no tf_keras counterpart: replace it with "
                            "standard layers, or convert with he.quantize (no TF-MOT needed)")
    c = {k: _clean_value(v) for k, v in config.items()}
    if isinstance(c.get("activation"), str):
        c["activation"] = _activation(c["activation"], config.get("name"))
    if cls == "InputLayer":
        if "batch_shape" in c:
            c["batch_input_shape"] = c.pop("batch_shape")
        c.pop("optional", None)
    allowed = _accepted_kwargs(layer_cls)
    if allowed is not None:
        for key in list(c):
            if key in allowed:
                continue
            value = c.pop(key)
            if key not in _HARMLESS and value not in (None, False, 0, "", [], {}):
                raise HomlEdgeError(f"layer {config.get('name')!r} ({cls}) sets {key}={value!r}, which tf_keras "
                                    "does not have: homl-edge cannot translate it faithfully")
    return c


def _accepted_kwargs(layer_cls):
    names = set(_BASE_KWARGS)
    for klass in layer_cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        names |= {p for p in params if p not in ("self", "args", "kwargs")}
        if klass.__name__ == "Layer":
            break
    return names


def _clean_value(v):
    if isinstance(v, dict):
        if "class_name" in v and "config" in v and ("module" in v or "registered_name" in v):
            cls, cfg, module = v["class_name"], v["config"] or {}, v.get("module") or ""
            if cls in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
                return cfg.get("name", "float32")
            if module.startswith("keras.layers") or module.startswith("keras.src.layers"):
                return {"class_name": cls, "config": _clean_layer_config(cls, cfg)}
            kind = module.split(".")[-1] if module else ""
            return {"class_name": cls, "config": _filtered_object_config(kind, cls, cfg)}
        return {k: _clean_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean_value(x) for x in v]
    return v


def _filtered_object_config(kind, cls, cfg):
    """Initializers, regularizers, constraints: keep only the arguments the tf_keras class takes."""
    k2 = legacy()
    holder = getattr(k2, kind, None)
    klass = getattr(holder, cls, None) if holder is not None else None
    if klass is None:
        return {k: _clean_value(x) for k, x in cfg.items()}
    try:
        params = set(inspect.signature(klass.__init__).parameters)
    except (TypeError, ValueError):
        return cfg
    return {k: _clean_value(x) for k, x in cfg.items() if k in params}


# ----------------------------------------------------------------------------------------------- back to Keras 3
def like(result, original):
    """``result`` (a tf_keras model made from ``original``) in ``original``'s flavour, where the layers allow.

    Keras 3 in, Keras 3 out: the original's Keras 3 config, with layer widths taken from ``result`` (channel
    pruning narrows layers), gets ``result``'s weights; used only when its outputs agree with ``result`` within
    1e-5. A model whose layers Keras 3 cannot hold (QAT's fake-quant wrappers) stays tf_keras, with a warning.
    """
    if flavour(original) != "keras3" or flavour(result) != "keras2":
        return result
    k3 = keras3()
    try:
        cfg = original.get_config()
        widths = {l.name: l.get_config() for l in result.layers}
        for lc in cfg["layers"]:
            lc.pop("build_config", None)  # the widths may change: let Keras 3 build from the graph
            rc = widths.get(lc.get("name") or lc["config"].get("name"))
            if rc is None:
                continue
            for key in ("filters", "units"):
                if key in lc["config"] and key in rc:
                    lc["config"][key] = rc[key]
        with _tf.quiet():
            back = original.__class__.from_config(cfg)
        _copy_weights(result, back)
        diff = disagreement(result, back, probe_inputs(result))
        if not diff <= AGREEMENT:
            raise HomlEdgeError(f"differs by {diff:.2g}")
        if getattr(result, "optimizer", None) is not None and getattr(original, "loss", None):
            back.compile(optimizer=k3.optimizers.Adam(), loss=original.loss, metrics=["accuracy"])
        return back
    except Exception as e:
        warnings.warn(f"homl-edge: the result stays a tf_keras model (Keras 3 cannot hold it: {first_line(e)[:160]})",
                      stacklevel=3)
        return result


# ----------------------------------------------------------------------------------------------- files
class SavedModelSource:
    """A SavedModel folder without Keras metadata (Keras 3 ``model.export()``, ``tf.saved_model.save``).

    It is inference-only: the converter takes it (``he.quantize``), the training paths cannot.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.name

    def __repr__(self):
        return f"<SavedModelSource {self.path}>"


def keras_version_of(path: Path) -> str | None:
    """The Keras version that wrote a ``.keras`` or ``.h5`` file (None if the file does not say)."""
    if path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("metadata.json")).get("keras_version")
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError):
            return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            v = f.attrs.get("keras_version")
    except OSError:
        return None
    return v.decode() if isinstance(v, bytes) else v


def load_keras(path, safe_mode: bool = True, flavour_wanted: str | None = None):
    """Load a ``.keras`` or ``.h5`` file with the Keras that wrote it, or a SavedModel folder; safe mode by default.

    Safe mode refuses to deserialise Python code (a ``Lambda`` layer's bytecode), so that an untrusted file cannot
    run code. A SavedModel with Keras 2 metadata loads as a tf_keras model; one without (``model.export()``) gives
    a :class:`SavedModelSource` that ``he.quantize`` converts. Pass ``safe_mode=False`` only for your own files.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise HomlEdgeError(f"no model file at {p}: check the path")
    if p.is_dir():
        return _load_saved_model(p, safe_mode)
    if not p.is_file():
        raise HomlEdgeError(f"{p} is not a regular file (a device, pipe or socket): give a .keras or .h5 file")
    if p.suffix not in (".keras", ".h5", ".hdf5"):
        raise HomlEdgeError(f"{p.name}: expected a .keras or .h5 model file or a SavedModel folder")
    version = keras_version_of(p)
    use3 = flavour_wanted == "keras3" or (flavour_wanted is None and str(version or "").startswith("3"))
    if safe_mode:
        _refuse_code(p.name, _stored_configs(p))
    try:
        if use3:
            k3 = keras3()
            if k3 is None:
                raise HomlEdgeError(f"{p.name} was written by Keras {version}, which is not installed: "
                                    "pip install keras")
            with _tf.quiet():
                return k3.saving.load_model(p, safe_mode=safe_mode, compile=True)
        k = legacy()
        with _tf.quiet():
            if p.suffix in (".h5", ".hdf5"):
                return k.models.load_model(p, compile=True)
            return k.models.load_model(p, safe_mode=safe_mode, compile=True)
    except HomlEdgeError:
        raise
    except ValueError as e:
        if "safe_mode" in str(e) or "Lambda" in str(e) or "unsafe" in str(e).lower():
            raise HomlEdgeError(f"{p.name} contains Python code (a Lambda layer) and safe mode refuses to load it; "
                                "pass {safe_mode=False} only if you trust the file", param="safe_mode") from None
        raise HomlEdgeError(f"cannot load {p.name}: {first_line(e)[:300]}") from None
    except Exception as e:  # h5py/OSError/zip errors on a corrupt file
        raise HomlEdgeError(f"cannot load {p.name} ({type(e).__name__}: {first_line(e)[:200]})") from None


def load_model(source, safe_mode: bool = True):
    """The one way a path becomes a model (``he.quantize``, the magics and the CLI all use it): a ``.tflite`` path
    gives a verified LiteModel, any other path :func:`load_keras` (safe mode by default); an object passes."""
    if not isinstance(source, (str, Path)):
        return source
    p = Path(source).expanduser()
    if p.suffix == ".tflite":
        from .lite import load_lite  # base to base: lite imports nothing of this module

        return load_lite(p)
    return load_keras(p, safe_mode=safe_mode)


def _load_saved_model(p: Path, safe_mode: bool = True):
    if not (p / "saved_model.pb").is_file():
        raise HomlEdgeError(f"{p} is a folder without saved_model.pb: expected a SavedModel folder")
    if (p / "keras_metadata.pb").is_file():
        if safe_mode:
            _refuse_code(p.name, _stored_configs(p))
        try:
            with _tf.quiet():
                return legacy().models.load_model(p, compile=True)
        except Exception as e:
            raise HomlEdgeError(f"cannot load the SavedModel {p.name}: {first_line(e)[:200]}") from None
    return SavedModelSource(p)


# class names whose config carries Python code (marshalled bytecode) that deserialising would run
_CODE_CLASSES = {"Lambda", "__lambda__"}


def _stored_configs(path: Path) -> list:
    """Every model config stored in a ``.h5`` file, a ``.keras`` archive or a Keras SavedModel folder, JSON-decoded
    (so a class name spelled with escapes such as ``"\\u004cambda"`` reads as what Keras will read)."""
    texts = []
    try:
        if path.is_dir():
            from tf_keras.protobuf import saved_metadata_pb2

            meta = saved_metadata_pb2.SavedMetadata()
            meta.ParseFromString((path / "keras_metadata.pb").read_bytes())
            texts = [n.metadata for n in meta.nodes]
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                texts = [z.read(n) for n in z.namelist() if n.endswith(".json")]
        else:
            import h5py

            with h5py.File(path, "r") as f:
                texts = [f.attrs[a] for a in ("model_config", "training_config") if a in f.attrs]
    except Exception as e:  # a damaged file: the loader below says what is wrong with it
        if path.suffix in (".h5", ".hdf5") and isinstance(e, OSError):
            raise HomlEdgeError(f"cannot load {path.name}: not a readable HDF5 file ({first_line(e)[:200]})") from None
        return []
    configs = []
    for t in texts:
        try:
            configs.append(json.loads(t.decode() if isinstance(t, bytes) else str(t)))
        except (ValueError, UnicodeDecodeError):
            # a config that is not JSON cannot be checked, so it is not loaded either
            raise HomlEdgeError(f"cannot load {path.name}: its stored model config is not valid JSON") from None
    return configs


def code_layers(config) -> list[str]:
    """Names of the layers in a decoded Keras config (nested models, wrappers and all) that hold Python code."""
    found = []

    def walk(obj, name):
        if isinstance(obj, dict):
            cfg = obj.get("config")
            here = (cfg.get("name") if isinstance(cfg, dict) else None) or obj.get("name") or name
            if obj.get("class_name") in _CODE_CLASSES or "lambda" in (obj.get("function_type"),
                                                                     obj.get("output_shape_type")):
                found.append(str(here or "?"))
            for v in obj.values():
                walk(v, here)
        elif isinstance(obj, list):
            for v in obj:
                walk(v, name)
        elif isinstance(obj, str) and obj[:1] in "{[" and obj[-1:] in "}]":
            try:  # a config stored as a JSON string inside the JSON
                walk(json.loads(obj), name)
            except ValueError:
                pass

    walk(config, None)
    return list(dict.fromkeys(found))


def _refuse_code(filename: str, configs: list) -> None:
    """Safe mode: refuse a model file whose config holds Python code (a Lambda layer), naming the layers."""
    names = list(dict.fromkeys(n for c in configs for n in code_layers(c)))
    if names:
        raise HomlEdgeError(f"{filename} contains Python code in Lambda layer(s) {', '.join(names)} and safe mode "
                            "refuses to load it; pass {safe_mode=False} only if you trust the file", param="safe_mode")


def save_keras(model, path, overwrite: bool = False) -> Path:
    """Save a Keras model (either flavour) to ``.keras``/``.h5`` atomically: a temporary file, then a rename."""
    from ._files import atomic_path

    out = Path(path).expanduser()
    if out.suffix not in (".keras", ".h5"):
        raise HomlEdgeError(f"{out.name}: a Keras model is saved as a .keras or .h5 file")
    with atomic_path(out, overwrite=overwrite, suffix=out.suffix) as tmp:  # Keras picks the format by the suffix
        with _tf.quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(str(tmp))
    return out


# ----------------------------------------------------------------------------------------------- TF-MOT
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


# ----------------------------------------------------------------------------------------------- graph access
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
    """The main weight tensor of a layer (kernel or depthwise kernel; a recurrent layer's is on its cell), or None."""
    for holder in (layer, getattr(layer, "cell", None)):
        if holder is None:
            continue
        for attr in ("kernel", "depthwise_kernel"):
            w = getattr(holder, attr, None)
            if w is not None:
                return w
    return None
