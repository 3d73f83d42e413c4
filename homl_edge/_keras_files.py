"""Keras models from and to files: ``.keras``/``.h5`` (safe mode: a file holding code is refused before it is
loaded), SavedModel folders and ``.tflite`` paths through one resolver. ``homl_edge._keras`` exports every name.
"""
from __future__ import annotations

import contextlib
import json
import re
import warnings
import zipfile
from pathlib import Path

from . import _tf
from ._keras_flavour import SavedModelSource, flavour, keras3, legacy, model_of
from ._keras_tfmot import CLUSTER_WRAPPERS, PRUNE_WRAPPERS, QAT_WRAPPERS, is_qat_model, tfmot_scope
from .errors import HomlEdgeError, first_line


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
    configs = _stored_configs(p)
    if safe_mode:
        _refuse_code(p.name, configs)
    # TF-MOT's wrappers (a QAT model, one saved in the middle of pruning or clustering): tf_keras files only
    wrapped = set() if use3 else tfmot_wrappers(configs)
    try:
        if use3:
            k3 = keras3()
            if k3 is None:
                raise HomlEdgeError(f"{p.name} was written by Keras {version}, which is not installed: "
                                    "pip install keras")
            with _tf.quiet():
                return k3.saving.load_model(p, safe_mode=safe_mode, compile=True)
        k = legacy()
        with _tf.quiet(), (tfmot_scope() if wrapped else contextlib.nullcontext()):
            if p.suffix in (".h5", ".hdf5"):
                return k.models.load_model(p, compile=True)
            return k.models.load_model(p, safe_mode=safe_mode, compile=True)
    except HomlEdgeError:
        raise
    except ValueError as e:
        if "quantize" in wrapped and p.suffix == ".keras" and re.search(r"expected \d+ variables", str(e)):
            # TF-MOT's QuantizeLayer builds more variables than the .keras format stored of it
            raise HomlEdgeError(f"{p.name} holds a quantization-aware (TF-MOT) model, which Keras cannot load "
                                "back from a .keras file: save it as .h5 (he.save_keras(qat, 'qat.h5')), or "
                                "convert it before saving (he.quantize(qat, 'int8').save('qat.tflite'))") from None
        if "safe_mode" in str(e) or "Lambda" in str(e) or "unsafe" in str(e).lower():
            raise HomlEdgeError(f"{p.name} contains Python code (a Lambda layer) and safe mode refuses to load it; "
                                "pass {safe_mode=False} only if you trust the file", param="safe_mode") from None
        raise HomlEdgeError(f"cannot load {p.name}: {first_line(e)[:300]}") from None
    except Exception as e:  # h5py/OSError/zip errors on a corrupt file
        raise HomlEdgeError(f"cannot load {p.name} ({type(e).__name__}: {first_line(e)[:200]})") from None


def load_model(source, safe_mode: bool = True, *, lite: bool = False):
    """The one way a path or a result becomes a model (``he.quantize``, every core call that takes a model, the
    magics and the CLI use it): a ``.tflite`` path gives a verified LiteModel, any other path :func:`load_keras`
    (safe mode by default), a result that holds a model its ``.model`` (with ``lite=True`` its ``.lite`` when it
    holds one: see :func:`model_of`); any other object passes."""
    source = model_of(source, lite=lite)
    if not isinstance(source, (str, Path)):
        return source
    p = Path(source).expanduser()
    if p.suffix == ".tflite":
        from .lite import load_lite  # base to base: lite imports nothing of this module

        return load_lite(p)
    return load_keras(p, safe_mode=safe_mode)


# TF-MOT's wrapper layers, by kind (what a QAT model, or one saved before strip_pruning / strip_clustering, holds)
_TFMOT_CLASSES = {"quantize": QAT_WRAPPERS + ("QuantizeAnnotate",),
                  "prune": PRUNE_WRAPPERS, "cluster": CLUSTER_WRAPPERS}


def tfmot_wrappers(configs) -> set[str]:
    """Which TF-MOT wrappers ("quantize", "prune", "cluster") the decoded configs of a model file hold."""
    names = set()

    def walk(obj):
        if isinstance(obj, dict):
            names.add(obj.get("class_name"))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(configs)
    return {kind for kind, classes in _TFMOT_CLASSES.items() if names.intersection(classes)}


def _load_saved_model(p: Path, safe_mode: bool = True):
    if not (p / "saved_model.pb").is_file():
        raise HomlEdgeError(f"{p} is a folder without saved_model.pb: expected a SavedModel folder")
    if (p / "keras_metadata.pb").is_file():
        configs = _stored_configs(p)
        if safe_mode:
            _refuse_code(p.name, configs)
        try:
            with _tf.quiet(), (tfmot_scope() if tfmot_wrappers(configs) else contextlib.nullcontext()):
                return legacy().models.load_model(p, compile=True)
        except Exception as e:
            raise HomlEdgeError(f"cannot load the SavedModel {p.name}: {first_line(e)[:200]}") from None
    return SavedModelSource(p)


# class names whose config carries Python code (marshalled bytecode) that deserialising would run
_CODE_CLASSES = {"Lambda", "__lambda__"}
# where code_layers found code that is no layer: a Python function (a lambda) compiled as the loss or a metric
COMPILED_CODE = "its compiled loss or metrics"


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
                texts = [(a, f.attrs[a]) for a in ("model_config", "training_config") if a in f.attrs]
    except Exception as e:  # a damaged file: the loader below says what is wrong with it
        if path.suffix in (".h5", ".hdf5") and isinstance(e, OSError):
            raise HomlEdgeError(f"cannot load {path.name}: not a readable HDF5 file ({first_line(e)[:200]})") from None
        return []
    configs = []
    for t in texts:
        key, t = t if isinstance(t, tuple) else (None, t)
        try:
            decoded = json.loads(t.decode() if isinstance(t, bytes) else str(t))
            configs.append({key: decoded} if key == "training_config" else decoded)
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
            for key, v in obj.items():
                walk(v, COMPILED_CODE if key in ("compile_config", "training_config") else here)
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
    """Safe mode: refuse a model file whose config holds Python code (a Lambda layer, or a lambda compiled as its
    loss or a metric), naming where."""
    names = list(dict.fromkeys(n for c in configs for n in code_layers(c)))
    if names:
        layers = [n for n in names if n != COMPILED_CODE]
        where = ([f"Lambda layer(s) {', '.join(layers)}"] if layers else []) + \
            ([f"{COMPILED_CODE} (a Python function)"] if COMPILED_CODE in names else [])
        raise HomlEdgeError(f"{filename} contains Python code in {' and '.join(where)} and safe mode refuses to load "
                            "it; pass {safe_mode=False} only if you trust the file", param="safe_mode")


def save_keras(model, path, overwrite: bool = False) -> Path:
    """Save a Keras model (either flavour) to ``.keras``/``.h5`` atomically: a temporary file, then a rename."""
    from ._files import atomic_path

    model = model_of(model)  # a result that holds a model: its .model
    if flavour(model) is None:   # a LiteModel would be written as a flatbuffer named .keras
        raise HomlEdgeError(f"save_keras saves a Keras model (keras, tf.keras or tf_keras); got "
                            f"{type(model).__name__}" + (": a .tflite is saved with lite.save(path)"
                                                        if type(model).__name__ == "LiteModel" else ""))
    out = Path(path).expanduser()
    if out.suffix not in (".keras", ".h5"):
        raise HomlEdgeError(f"{out.name}: a Keras model is saved as a .keras or .h5 file")
    if out.suffix == ".keras" and is_qat_model(model):   # checked before anything is written
        raise HomlEdgeError(f"{out.name}: a quantization-aware (TF-MOT) model does not load back from a .keras file; "
                            f"save it as {out.with_suffix('.h5').name}, or convert it first: "
                            "he.quantize(qat, 'int8').save('qat.tflite')")
    with atomic_path(out, overwrite=overwrite, suffix=out.suffix) as tmp:  # Keras picks the format by the suffix
        with _tf.quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(str(tmp))
    return out
