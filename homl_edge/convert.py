"""Post-training conversion and quantization of a Keras model to a ``LiteModel``, cached by content.

Modes (the TFLite converter's recipes, named as the chapter names them):

==============  ==================================================  ===========================
mode            what is stored / computed                            needs calibration ``data``
==============  ==================================================  ===========================
``float32``     plain conversion, no quantization                     no
``dynamic``     int8 weights, float activations (dynamic range)       no
``float16``     float16 weights (for GPU delegates)                    no
``int8``        int8 weights and activations, float input/output      yes
``int8-io``     integer only, int8 input and output (Edge TPU, MCU)   yes
``int16x8``     int16 activations, int8 weights                        yes
``int4``        4-bit weights, float activations (ai-edge-quantizer)  no
==============  ==================================================  ===========================

``int4`` goes past the 4x limit of int8 weights: Google's ai-edge-quantizer rewrites the float ``.tflite`` with
4-bit weights (per channel, or per block of 32/64/128 with ``granularity="block32"``...). ``precision=`` then
overrides it per layer: ``{"dense.*": "int4", "conv.*": "int8", "classifier": "float"}`` (regexes searched in the
TFLite op names, which contain the Keras layer names; the last matching entry wins).
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from . import _tf
from ._tf import quiet
from .errors import HomlEdgeError, first_line
from .lite import LiteModel

MODES = ("float32", "dynamic", "float16", "int8", "int8-io", "int16x8", "int4")
PRECISIONS = ("float", "int8", "int4")
GRANULARITIES = {"channel": "CHANNELWISE", "block32": "BLOCKWISE_32", "block64": "BLOCKWISE_64",
                 "block128": "BLOCKWISE_128"}
CALIBRATED = {"int8", "int8-io", "int16x8"}
_ALIASES = {"float": "float32", "fp32": "float32", "none": "float32", "dynamic-range": "dynamic", "drq": "dynamic",
            "fp16": "float16", "full-int8": "int8", "int8_io": "int8-io", "integer": "int8-io", "16x8": "int16x8",
            "int16": "int16x8"}
MAX_CALIBRATION = 1000

_memory_cache: "collections.OrderedDict[str, bytes]" = collections.OrderedDict()
_MEMORY_CACHE_SIZE = 64


def normalize_mode(mode: str) -> str:
    m = str(mode).strip().lower()
    m = _ALIASES.get(m, m)
    if m not in MODES:
        raise HomlEdgeError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    return m


def cache_dir() -> Path | None:
    """Where conversions are kept between sessions: ``$HOML_EDGE_CACHE`` (``off`` disables), else ~/.cache."""
    env = os.environ.get("HOML_EDGE_CACHE")
    if env and env.lower() in ("off", "0", "none", "false"):
        return None
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "homl-edge"
    return base / "tflite"


def clear_cache() -> None:
    """Forget every cached conversion (memory and disk)."""
    _memory_cache.clear()
    d = cache_dir()
    if d and d.exists():
        for f in d.glob("*.tflite"):
            f.unlink(missing_ok=True)


def quantize(model, mode: str = "int8", data=None, *, name: str | None = None, cache: bool = True,
             max_samples: int = MAX_CALIBRATION, precision: dict | None = None,
             granularity: str = "channel") -> LiteModel:
    """Convert a tf.keras ``model`` to a :class:`~homl_edge.lite.LiteModel` with the given ``mode``.

    ``data`` is the representative dataset for the calibrated modes: an array of inputs (batch first), a
    ``tf.data.Dataset`` of inputs or ``(x, y)`` pairs, or an iterable/generator of such batches. At most
    ``max_samples`` samples are used. The result is cached by a hash of the architecture, the weights, the
    calibration data and the options, so a second call returns at once.
    """
    if isinstance(model, (str, Path)):
        model = _tf.load_keras(model)
    _tf.check_model(model)
    mode = normalize_mode(mode)
    if precision is not None or mode == "int4":
        return quantize_mixed(model, precision or {}, base=("int4" if mode == "int4" else None), name=name,
                              cache=cache, granularity=granularity, mode=mode)
    calib = None
    if mode in CALIBRATED:
        if data is None:
            raise HomlEdgeError(f"mode {mode!r} needs calibration data: pass data=x_train[:200] "
                                "(a few hundred typical inputs)")
        calib = calibration_array(model, data, max_samples=max_samples)
    key = cache_key(model, mode, calib) if cache else None
    name = name or f"{model.name}-{mode}"
    t0 = time.perf_counter()
    content = _cache_get(key) if key else None
    cached = content is not None
    if content is None:
        content = _convert(model, mode, calib)
        _check_runs(content, mode)
        if key:
            _cache_put(key, content)
    meta = {"mode": mode, "source": model.name, "cached": cached, "seconds": time.perf_counter() - t0,
            "calibration_samples": 0 if calib is None else len(calib)}
    return LiteModel(content, name=name, meta=meta, _trusted=True)


def symmetric_quantize(w, bits: int = 8, axis: int | None = None):
    """The symmetric mapping of the chapter: [-m, m] -> [-(2^(b-1)-1), 2^(b-1)-1], with 0.0 mapped to 0.

    ``m`` is max |w| (per slice along ``axis``, as TFLite does per output channel). Returns ``(q, scale)`` with
    ``w ~= q * scale``. For the chapter's example, weights in [-1.5, 0.8] give m = 1.5 and scale = 1.5 / 127.
    """
    w = np.asarray(w, dtype=np.float32)
    levels = 2 ** (bits - 1) - 1
    if axis is None:
        m = float(np.abs(w).max())
    else:
        m = np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis % w.ndim), keepdims=True)
    scale = np.where(np.asarray(m) > 0, np.asarray(m) / levels, 1.0)
    q = np.clip(np.round(w / scale), -levels, levels).astype(np.int8 if bits <= 8 else np.int16)
    return q, (float(scale) if axis is None else scale.ravel())


def quantize_mixed(model, precision: dict, base: str | None = "int4", *, name=None, cache=True,
                   granularity="channel", mode=None) -> LiteModel:
    """Per-layer weight precision with ai-edge-quantizer: ``precision`` maps regexes to float / int8 / int4.

    ``base`` is the precision of every layer that no regex matches (``"int4"``, ``"int8"`` or ``"float"``).
    """
    if mode not in (None, "int4"):
        raise HomlEdgeError(f"per-layer precision works with mode 'int4' (ai-edge-quantizer), not {mode!r}")
    base = base or "int4"
    if granularity not in GRANULARITIES:
        raise HomlEdgeError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    entries = [(".*", base)] + list((precision or {}).items())
    for regex, prec in entries:
        if prec not in PRECISIONS:
            raise HomlEdgeError(f"precision for {regex!r} must be one of {', '.join(PRECISIONS)}, got {prec!r}")
        try:
            re.compile(regex)
        except re.error as e:
            raise HomlEdgeError(f"{regex!r} is not a valid regex ({e})") from None
    float_lite = quantize(model, "float32", cache=cache)
    recipe_key = json.dumps([entries, granularity])
    key = cache_key(model, "aeq", None, extra=recipe_key) if cache else None
    t0 = time.perf_counter()
    content = _cache_get(key) if key else None
    cached = content is not None
    if content is None:
        content = _aeq(float_lite.content, entries, granularity)
        if key:
            _cache_put(key, content)
    label = name or f"{model.name}-{base}" + ("-mixed" if precision else "")
    meta = {"mode": "int4" if base == "int4" and not precision else "mixed", "precision": dict(entries),
            "granularity": granularity, "source": model.name, "cached": cached,
            "seconds": time.perf_counter() - t0}
    return LiteModel(content, name=label, meta=meta, _trusted=True)


def _aeq(float_bytes: bytes, entries, granularity: str) -> bytes:
    """Run Google's ai-edge-quantizer with dynamic (weights-only storage) recipes, one entry per regex."""
    import contextlib
    import io

    try:
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe_manager
    except ImportError as e:
        raise HomlEdgeError(f"int4 needs ai-edge-quantizer ({e}); pip install 'homl-edge[micro]'") from None
    rm = recipe_manager.RecipeManager()
    for regex, prec in entries:
        op = qtyping.TFLOperationName.ALL_SUPPORTED
        if prec == "float":
            rm.add_quantization_config(regex=regex, operation_name=op,
                                       algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
        else:
            rm.add_dynamic_config(regex=regex, operation_name=op, num_bits=4 if prec == "int4" else 8,
                                  granularity=getattr(qtyping.QuantGranularity, GRANULARITIES[granularity]))
    q = quantizer.Quantizer(float_bytes)
    q.load_quantization_recipe(rm.get_quantization_recipe())
    try:
        with quiet(), contextlib.redirect_stdout(io.StringIO()):
            return bytes(q.quantize().quantized_model)
    except Exception as e:
        first = first_line(e)
        raise HomlEdgeError(f"ai-edge-quantizer failed: {first[:300]}") from None


# ----------------------------------------------------------------------------------------------- calibration
def input_signature(model) -> tuple:
    shape = model.inputs[0].shape
    return tuple(None if d is None else int(d) for d in shape)


def calibration_array(model, data, max_samples: int = MAX_CALIBRATION) -> np.ndarray:
    """Turn any accepted form of calibration data into one float32 array, checked against the model's input."""
    if len(model.inputs) != 1:
        raise HomlEdgeError(f"the model has {len(model.inputs)} inputs; homl-edge calibrates single-input models")
    sig = input_signature(model)
    want = f"float32 array of shape (n, {', '.join('?' if d is None else str(d) for d in sig[1:])})"
    x = _collect(data, max_samples, want)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
                                 or x.dtype == np.bool_):
        raise HomlEdgeError(f"calibration data has dtype {x.dtype}; the model's input is a {want}")
    if x.ndim == len(sig) - 1:
        x = x[None]
    if x.ndim != len(sig) or any(w is not None and w != g for w, g in zip(sig[1:], x.shape[1:])):
        raise HomlEdgeError(f"calibration data has shape {tuple(x.shape)}; the model's input is a {want}")
    if len(x) == 0:
        raise HomlEdgeError(f"calibration data is empty; the model's input is a {want}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        n = int(bad.reshape(len(x), -1).any(axis=1).sum())
        raise HomlEdgeError(f"calibration data has NaN or infinite values in {n} of {len(x)} samples: "
                            f"clean or drop them (they would break the int8 ranges); the model's input is a {want}")
    return x[:max_samples]


def _collect(data, max_samples, want) -> np.ndarray:
    if isinstance(data, np.ndarray) or hasattr(data, "__array__") and not hasattr(data, "element_spec"):
        return np.asarray(data)
    if isinstance(data, (list, tuple)) and data and all(np.isscalar(v) for v in np.ravel(data[0])) and \
            not isinstance(data, tuple):
        return np.asarray(data)
    if callable(data) and not hasattr(data, "__iter__"):
        data = data()
    tf = _tf.tf()
    if isinstance(data, tf.data.Dataset):
        data = data.as_numpy_iterator()
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise HomlEdgeError(f"calibration data must be an array, a tf.data.Dataset or a generator; got "
                            f"{type(data).__name__}; the model's input is a {want}")
    parts, n = [], 0
    for item in data:
        if isinstance(item, dict):
            item = next(iter(item.values()))
        if isinstance(item, (tuple, list)) and len(item) and not np.isscalar(item[0]):
            item = item[0]  # (x, y) pairs or [x] lists
        arr = np.asarray(item)
        parts.append(arr)
        n += len(arr) if arr.ndim else 1
        if n >= max_samples:
            break
    if not parts:
        raise HomlEdgeError(f"calibration data is empty; the model's input is a {want}")
    try:
        shapes = {p.shape[1:] if p.ndim else () for p in parts}
        ndims = {p.ndim for p in parts}
        if len(ndims) == 1 and len(shapes) == 1:
            return np.concatenate(parts) if parts[0].ndim else np.asarray(parts)
        return np.stack(parts)
    except ValueError:
        raise HomlEdgeError(f"calibration batches have different shapes {sorted({p.shape for p in parts})[:3]}; "
                            f"the model's input is a {want}") from None


# ----------------------------------------------------------------------------------------------- cache
def cache_key(model, mode: str, calib, extra: str = "") -> str:
    tf = _tf.tf()
    h = hashlib.sha256()
    h.update(f"homl-edge/1|tf {tf.__version__}|{mode}|{extra}|".encode())
    h.update(model.to_json().encode())
    for w in model.weights:
        v = w.numpy()
        h.update(f"{w.name}{v.shape}{v.dtype}".encode())
        h.update(np.ascontiguousarray(v).tobytes())
    if calib is not None:
        h.update(f"calib{calib.shape}".encode())
        h.update(np.ascontiguousarray(calib).tobytes())
    return h.hexdigest()


def _cache_get(key):
    if key in _memory_cache:
        _memory_cache.move_to_end(key)
        return _memory_cache[key]
    d = cache_dir()
    if d is not None:
        f = d / f"{key}.tflite"
        if f.is_file():
            data = f.read_bytes()
            if len(data) >= 8 and data[4:8] == b"TFL3":
                _remember(key, data)
                return data
    return None


def _cache_put(key, content):
    _remember(key, content)
    d = cache_dir()
    if d is None:
        return
    try:
        from .lite import atomic_write

        d.mkdir(parents=True, exist_ok=True)
        atomic_write(d / f"{key}.tflite", content, overwrite=True)
    except (OSError, HomlEdgeError):
        pass  # a read-only home folder only costs the cross-session cache


def _remember(key, content):
    _memory_cache[key] = content
    _memory_cache.move_to_end(key)
    while len(_memory_cache) > _MEMORY_CACHE_SIZE:
        _memory_cache.popitem(last=False)


# ----------------------------------------------------------------------------------------------- conversion
def converter_for(model, mode: str, calib=None):
    """The ``tf.lite.TFLiteConverter`` set up for ``mode``: the plain TensorFlow recipe, shown in the chapters."""
    tf = _tf.tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float32":
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode in CALIBRATED:
        def representative_dataset():
            for sample in calib:
                yield [sample[None].astype(np.float32)]

        conv.representative_dataset = representative_dataset
    if mode == "int8-io":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    if mode == "int16x8":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return conv


def _check_runs(content: bytes, mode: str) -> None:
    """The converter can emit a model that LiteRT then refuses to prepare: say so at conversion time."""
    from .lite import new_interpreter

    try:
        new_interpreter(content)
    except HomlEdgeError as e:
        hint = (" (LiteRT's 16x8 kernels reject layers whose scales would overflow, e.g. some depthwise "
                "convolutions: use mode 'int8' for this model)" if mode == "int16x8" else "")
        detail = str(e).split(": ", 1)[-1]
        raise HomlEdgeError(f"mode {mode!r} produced a model that LiteRT cannot prepare: {detail}{hint}") from None


def _convert(model, mode, calib) -> bytes:
    conv = converter_for(model, mode, calib)
    try:
        with quiet():
            return bytes(conv.convert())
    except Exception as e:
        text = str(e)
        lines = [l.strip() for l in text.splitlines() if "error:" in l.lower()] or text.strip().splitlines() or [
            type(e).__name__]
        hint = ""
        if mode == "int8-io":
            hint = " (some op has no int8 kernel: try mode 'int8', which keeps such ops in float)"
        raise HomlEdgeError(f"the TFLite converter failed for mode {mode!r}: {lines[0][:300]}{hint}") from None
