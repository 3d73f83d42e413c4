"""A Keras 3 model translated to tf_keras layer by layer (configs cleaned, TF ops mapped, weights copied, refused
unless the outputs agree within 1e-5), and a result handed back in the flavour the user gave (:func:`like`).
``homl_edge._keras`` exports every name.
"""
from __future__ import annotations

import inspect
import warnings

from . import _tf
from ._keras_flavour import (AGREEMENT, check_model, compiled_loss_weights, disagreement, flavour, keras3, legacy,
                             model_of, probe_inputs, require_functional)
from .errors import HomlEdgeError, first_line


# Keras 3 operations that appear as nodes of a functional graph (x + 3.0, x * 0.5) -> tf_keras TFOpLambda
_OPS = {"Add": "__operators__.add", "Multiply": "math.multiply", "Subtract": "math.subtract",
        "Divide": "math.truediv", "TrueDivide": "math.truediv"}
_COMMUTATIVE = {"Add", "Multiply"}
# Keras 3 config keys that tf_keras lacks and that do not change what a layer computes
_HARMLESS = {"synchronized", "use_cudnn", "seed", "optional", "lora_rank", "lora_alpha", "quantization_config",
             "build_config", "registered_name", "module"}
_BASE_KWARGS = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights", "activity_regularizer",
                "autocast", "implementation", "dtype", "name", "trainable", "dynamic"}


def to_legacy(model, *, batch_size: int | None = None, check: bool = True):
    """A tf_keras copy of ``model`` (Keras 3 or 2) with the same weights; ``batch_size`` fixes the batch dim.

    Raises a one-line error naming the layer that cannot be translated, or saying how far the copy's outputs are
    from the original's when they differ by more than 1e-5.
    """
    model = model_of(model)  # a result that holds a model: its .model
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


def translate_loss(loss):
    """A Keras 3 model's compiled loss as tf_keras takes it, so that fine-tuning the translation minimises what the
    user compiled: a name tf_keras knows stays a name (the same function there); a dict or list maps each entry;
    anything else (a Keras 3 ``Loss`` object, a built-in or custom function, a name only Keras 3 knows) is Keras
    3's own object, kept whole: with TensorFlow as Keras 3's backend it computes on TensorFlow tensors, and its
    settings go with it (a ``Loss``'s config does not hold them all: ``Huber``'s does not hold its ``delta``)."""
    if loss is None:
        return None
    if isinstance(loss, dict):
        return {name: translate_loss(v) for name, v in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [translate_loss(v) for v in loss]
    if isinstance(loss, str):
        try:
            legacy().losses.get(loss)
            return loss
        except (ValueError, TypeError):
            k3 = keras3()
            try:
                return k3.losses.get(loss) if k3 is not None else loss
            except (ValueError, TypeError):
                raise HomlEdgeError(f"the model was compiled with loss {loss!r}, a name Keras does not know: compile "
                                    "it with a loss Keras names ('mse', 'sparse_categorical_crossentropy', ...) or "
                                    "a function") from None
    return loss


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
            back.compile(optimizer=k3.optimizers.Adam(), loss=original.loss,
                         loss_weights=compiled_loss_weights(original), metrics=["accuracy"])
        return back
    except Exception as e:
        warnings.warn(f"homl-edge: the result stays a tf_keras model (Keras 3 cannot hold it: {first_line(e)[:160]})",
                      stacklevel=3)
        return result
