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

What goes in: a Keras model of either flavour (Keras 3 converts straight from itself; a recurrent model is
translated to tf_keras at a fixed batch of 1, where the converter fuses LSTMs into one op), a ``.keras``/``.h5``
path, a SavedModel folder, a model made by quantization-aware training (int8 without calibration data: its ranges
are in it), or a float ``.tflite`` made anywhere (a ``LiteModel`` or a path), which ai-edge-quantizer re-quantizes.
"""
from __future__ import annotations

import atexit
import collections
import hashlib
import inspect
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _flatbuffer, _keras, _tf
from ._tf import quiet
from .errors import HomlEdgeError, first_line
from .lite import LiteModel


@dataclass(frozen=True)
class Mode:
    """One quantization mode: what it is called, whether it needs calibration data, which tool makes it (the
    TFLite ``"converter"`` or the LiteRT ``"quantizer"``), its converter settings, how to check it runs, and its
    notes. :data:`MODE_TABLE` holds one per mode; every function reads it instead of testing the mode's name."""
    name: str
    notes: str
    aliases: tuple = ()
    calibrated: bool = False        # activations are quantized: needs calibration ``data``
    tool: str = "converter"         # "converter" (tf.lite.TFLiteConverter) or "quantizer" (LiteRT Quantizer)
    optimize: bool = True           # converter.optimizations = [Optimize.DEFAULT]
    types: tuple = ()               # converter.target_spec.supported_types (tf dtype names)
    ops: str | None = None          # converter.target_spec.supported_ops = [tf.lite.OpsSet.<ops>]
    io: str | None = None           # converter.inference_input_type / inference_output_type (tf dtype name)
    learned_ranges: bool = False    # a QAT model's learned ranges replace calibration data
    int8_weights: bool = False      # the converter stores int8 weights (the tiny-model and nothing-quantized notes)
    recipe: str | None = None       # the quantizer's whole-model precision when re-quantizing a .tflite (None: no)
    check_hint: str = ""            # added when LiteRT cannot prepare the converted file
    convert_hint: str = ""          # added when the converter fails


MODE_TABLE = (
    Mode("float32", "plain conversion, no quantization", aliases=("float", "fp32", "none"), optimize=False,
         recipe="float"),
    Mode("dynamic", "int8 weights, float activations (dynamic range)", aliases=("dynamic-range", "drq"),
         int8_weights=True, recipe="int8"),
    Mode("float16", "float16 weights (for GPU delegates)", aliases=("fp16",), types=("float16",)),
    Mode("int8", "int8 weights and activations, float input/output", aliases=("full-int8",), calibrated=True,
         learned_ranges=True, int8_weights=True, recipe="static-int8"),
    Mode("int8-io", "integer only, int8 input and output (Edge TPU, MCU)", aliases=("int8_io", "integer"),
         calibrated=True, ops="TFLITE_BUILTINS_INT8", io="int8", int8_weights=True,
         convert_hint=" (some op has no int8 kernel: try mode 'int8', which keeps such ops in float)"),
    Mode("int16x8", "int16 activations, int8 weights", aliases=("16x8", "int16"), calibrated=True,
         ops="EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", int8_weights=True,
         check_hint=" (LiteRT's 16x8 kernels reject layers whose scales would overflow, e.g. some depthwise "
                    "convolutions: use mode 'int8' for this model)"),
    Mode("int4", "4-bit weights, float activations (ai-edge-quantizer)", tool="quantizer", recipe="int4"),
)
MODE_SPECS = {m.name: m for m in MODE_TABLE}
MODES = tuple(MODE_SPECS)
CALIBRATED = {m.name for m in MODE_TABLE if m.calibrated}
_ALIASES = {alias: m.name for m in MODE_TABLE for alias in m.aliases}
PRECISIONS = ("float", "int8", "int4")
# a quantizer recipe entry's precision (a PRECISIONS value, or a Mode's recipe) -> (ai-edge-quantizer config, bits)
_RECIPES = {"float": ("none", 0), "int8": ("dynamic", 8), "int4": ("dynamic", 4), "static-int8": ("static", 8)}
GRANULARITIES = {"channel": "CHANNELWISE", "block32": "BLOCKWISE_32", "block64": "BLOCKWISE_64",
                 "block128": "BLOCKWISE_128"}
MAX_CALIBRATION = 1000

_memory_cache: "collections.OrderedDict[str, bytes]" = collections.OrderedDict()
_MEMORY_CACHE_SIZE = 64


def normalize_mode(mode: str) -> str:
    return mode_spec(mode).name


def mode_spec(mode: str) -> Mode:
    """The :class:`Mode` named ``mode`` or one of its aliases (any case)."""
    m = str(mode).strip().lower()
    spec = MODE_SPECS.get(_ALIASES.get(m, m))
    if spec is None:
        raise HomlEdgeError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    return spec


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
        for f in (*d.glob("*.tflite"), *d.glob("*.sha256")):
            f.unlink(missing_ok=True)


def parse_precision(text) -> dict | None:
    """``"dense.*=int4,conv=int8,classifier=float"`` -> ``{"dense.*": "int4", ...}`` (a dict passes through)."""
    if text is None or isinstance(text, dict):
        return text
    out = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise HomlEdgeError(f"precision takes REGEX=PRECISION pairs such as dense.*=int4,conv=int8; got {part!r}")
        regex, prec = part.rsplit("=", 1)
        out[regex.strip()] = prec.strip()
    return out or None


def quantize(model, mode: str = "int8", data=None, *, name: str | None = None, cache: bool = True,
             max_samples: int = MAX_CALIBRATION, precision: dict | str | None = None,
             granularity: str = "channel") -> LiteModel:
    """Convert ``model`` to a :class:`~homl_edge.lite.LiteModel` with the given ``mode``.

    ``model`` is a Keras model (Keras 3 or tf_keras), a ``.keras``/``.h5`` path, a SavedModel folder, or a float
    ``.tflite`` (a ``LiteModel`` or a path: see :func:`requantize`). ``data`` is the representative dataset for
    the calibrated modes: an array of inputs (batch first), a ``tf.data.Dataset`` of inputs or ``(x, y)`` pairs,
    or an iterable/generator of such batches; at most ``max_samples`` samples are used. A model made by
    quantization-aware training needs no ``data``. The result is cached by a hash of the architecture, the
    weights, the calibration data, the options and the versions of everything that shapes the bytes.
    """
    model = _keras.load_model(model)  # a path: the one resolver (.tflite -> LiteModel, else Keras in safe mode)
    if isinstance(model, LiteModel):
        return requantize(model, mode, data=data, precision=precision, granularity=granularity, name=name,
                          cache=cache, max_samples=max_samples)
    _keras.check_model(model)
    spec = mode_spec(mode)
    mode = spec.name
    precision = parse_precision(precision)
    if precision is not None or spec.tool == "quantizer":
        return quantize_mixed(model, precision or {}, base=(spec.recipe if spec.tool == "quantizer" else None),
                              name=name, cache=cache, granularity=granularity, mode=mode)
    qat = _keras.is_qat_model(model)
    calib = None
    if spec.calibrated:
        if data is not None:
            calib = calibration_array(model, data, max_samples=max_samples)
        elif qat and spec.io is not None:
            raise HomlEdgeError("mode 'int8-io' (integer input and output) needs {data=...} even for a QAT model: "
                                "TensorFlow's converter asks for it; mode 'int8' uses the learned ranges alone",
                                param="data")
        elif not (qat and spec.learned_ranges):
            raise HomlEdgeError(f"mode {mode!r} needs calibration data: pass {{data=x_train[:200]}} "
                                "(a few hundred typical inputs)", param="data")
    route = _route(model)
    if route == "recurrent-batch1" and spec.calibrated:
        _refuse_calibrating_loops(model, mode, cache)
    key = cache_key(model, mode, calib, extra=route) if cache else None
    name = name or f"{model.name}-{mode}"
    content, cached, seconds = cached_convert(
        key, lambda: _convert(_converter_source(model, route), mode, calib,
                              reuse=key and cache_key(model, "export", None, extra=route)), check=mode)
    meta = {"mode": mode, "source": model.name, "cached": cached, "seconds": seconds,
            "calibration_samples": 0 if calib is None else len(calib), "route": route,
            "ranges": "learned (QAT)" if qat and calib is None and spec.learned_ranges else None,
            "path": "tflite-converter"}   # better or equal to the quantizer here (benchmarks/RESULTS.md, issue 29)
    meta["warning"] = _tiny_model_note(model, mode, len(content), cache) or _nothing_quantized_note(content, mode)
    lite = LiteModel(content, name=name, meta=meta, _trusted=True)
    if calib is not None or isinstance(data, np.ndarray):  # real inputs for lite.benchmark(), never zeros
        try:
            lite.keep_samples(calib if calib is not None else data, "calibration data")
        except HomlEdgeError:
            pass  # data= that does not fit the input is ignored by the modes that need no calibration
    return lite


def _tiny_model_note(model, mode: str, size: int, cache: bool) -> str | None:
    """Why a quantized file of a tiny model (under 16k weights: its float32 file converts in a moment) is larger
    than its float32 file, when it is: too few weights for 4x smaller ones to pay for what quantization adds."""
    count = getattr(model, "count_params", None)
    if not MODE_SPECS[mode].int8_weights or count is None:
        return None
    weights = int(count())
    if weights * 4 >= 64 * 1024:
        return None
    f32 = quantize(model, "float32", cache=cache).size
    if size <= f32:
        return None
    return (f"the {mode} file ({size:,} bytes) is larger than the float32 one ({f32:,} bytes): the model has only "
            f"{weights:,} weights ({weights * 4:,} bytes as float32), too few for 4x smaller weights to pay for the "
            "scales, zero points and (de)quantize ops that quantization adds; keep float32")


def _nothing_quantized_note(content: bytes, mode: str) -> str | None:
    """A quantizing mode whose file holds no integer weight: the converter left every weight float. It keeps
    tensors under 1,024 values float, and a fused LSTM's weights all or none: an LSTM(64) on 8 features has
    8x64-value input kernels, so its 'dynamic' file was the float32 file byte for byte (measured), silently."""
    if not MODE_SPECS[mode].int8_weights:
        return None
    from . import _flatbuffer

    rows = _flatbuffer.tensors(_flatbuffer.parse(content))
    weights = [r for r in rows if r["constant"] and len(r["shape"]) >= 2]
    if not weights or any(r["dtype"] in ("int8", "int4", "uint8") for r in weights):
        return None
    return (f"no weight was quantized: the converter kept all {len(weights)} weight tensors float (it leaves "
            "tensors under 1,024 values float, and a fused LSTM's weights all or none), so this file is float32 "
            f"in all but name; mode 'int8' with data= quantizes every weight")


def _route(model) -> str:
    """How the converter sees the model: straight (either Keras), through tf_keras at batch 1 (recurrent), or as a
    SavedModel folder."""
    if isinstance(model, _keras.SavedModelSource):
        return "saved-model"
    if _keras.is_recurrent(model):
        return "recurrent-batch1"
    return _keras.flavour(model)


def _refuse_calibrating_loops(model, mode, cache):
    """TensorFlow's int8 calibrator crashes the process on a WHILE loop (tensorflow#62281, #75140, since TF 2.14):
    find the loop in the float file first and say so, instead of taking the kernel down."""
    loops = quantize(model, "float32", cache=cache).ops.get("WHILE", 0)
    if loops:
        kinds = sorted(_keras.layer_kinds(model) & (_keras.RECURRENT - {"LSTM", "Bidirectional"})) or ["recurrent"]
        raise HomlEdgeError(f"mode {mode!r} needs TensorFlow's calibrator, which crashes on the WHILE loop of "
                            f"{'/'.join(kinds)} layers (tensorflow#62281): use mode 'dynamic' or 'int4' (int8/int4 "
                            "weights), an LSTM (a fused op, int8 works), or unroll=True")


def _converter_source(model, route):
    if route == "recurrent-batch1":
        # A Keras 3 RNN keeps its weights outside the WHILE loop (the file fails at invoke) and a dynamic batch
        # leaves TensorListReserve without a static shape: tf_keras at batch 1 converts, with LSTMs fused.
        return _keras.to_legacy(model, batch_size=1)
    return model


def requantize(lite: LiteModel, mode: str = "dynamic", *, data=None, precision=None, granularity: str = "channel",
               name: str | None = None, cache: bool = True, max_samples: int = MAX_CALIBRATION) -> LiteModel:
    """Re-quantize a float ``.tflite`` made anywhere with Google's ai-edge-quantizer (no Keras model needed).

    ``"dynamic"``: int8 weights, float activations; ``"int4"``: 4-bit weights; ``precision=`` per-layer overrides
    (as in :func:`quantize_mixed`); ``"int8"`` with ``data``: int8 weights and activations, calibrated on ``data``.
    A file that is already quantized, or that stores float16 weights behind DENSIFY, is refused with the reason.
    """
    if not isinstance(lite, LiteModel):
        raise HomlEdgeError(f"requantize takes a LiteModel or a .tflite path, got {type(lite).__name__}")
    spec = mode_spec(mode)
    mode = spec.name
    reason = float_problem(lite)
    if reason:
        raise HomlEdgeError(f"{lite.name} cannot be re-quantized: {reason}")
    original, widened = lite, 0
    if _flatbuffer.float16_constants(_flatbuffer.parse(lite.content, lite.name)):
        # float16 weights behind DEQUANTIZE: widen them to float32 (exact) and drop the DEQUANTIZE ops first
        wide, widened = _flatbuffer.widen_float16(lite.content, lite.name)
        _check_runs(wide, "float32")
        lite = LiteModel(wide, name=lite.name, meta=dict(lite.meta, widened_float16=widened), _trusted=True)
    precision = parse_precision(precision)
    if spec.recipe == "float" and not precision:   # float32: the (widened) file as it is
        return lite
    if spec.recipe in (None, "float"):
        raise HomlEdgeError(f"a .tflite file can be re-quantized to 'dynamic', 'int4' or 'int8' (with data); "
                            f"mode {mode!r} needs the Keras model")
    if spec.calibrated:
        if data is None:
            raise HomlEdgeError(f"mode {mode!r} on a .tflite quantizes activations too and needs {{data=...}} (a few "
                                "hundred typical inputs); mode 'dynamic' stores int8 weights without data",
                                param="data")
        if precision:
            raise HomlEdgeError(f"per-layer precision goes with mode 'int4' or 'dynamic', not with {mode!r}")
    if granularity not in GRANULARITIES:
        raise HomlEdgeError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    entries = [(".*", spec.recipe)] + _check_entries(precision)
    calib = None
    if spec.calibrated:
        calib = lite.prepare_inputs(data)[0].astype(np.float32)[:max_samples]  # the file's own input checks
    key = None
    if cache:
        h = hashlib.sha256(lite.content)
        h.update(json.dumps([entries, granularity]).encode())
        if calib is not None:
            h.update(calib.tobytes())
        key = _versions_key(h.hexdigest(), "aeq-tflite")
    content, cached, seconds = cached_convert(
        key, lambda: _aeq(lite.content, entries, granularity, calib=calib, signature_input=_signature_input(lite)),
        check=mode)
    meta = {"mode": mode if not precision else "mixed", "source": lite.name, "cached": cached,
            "seconds": seconds, "precision": dict(entries), "granularity": granularity,
            "requantized": True, "source_bytes": original.size, "widened_float16": widened, "path": "litert-quantizer"}
    meta.update(_requantize_report(original, lite, content, mode))
    out = LiteModel(content, name=name or f"{lite.name}-{mode}", meta=meta, _trusted=True)
    if data is not None:
        ins = [a[:max_samples] for a in original.prepare_inputs(data)]
        agree = out.meta["agreement"] = agreement(original, out, ins[0] if len(ins) == 1 else ins)
        if agree["argmax"] is not None and agree["argmax"] < 0.95:
            note = (f"its argmax agrees with {original.name}'s on only {agree['argmax']:.1%} of the "
                    f"{agree['n']} samples given (max |diff| {agree['max_abs_diff']:.3g})")
            out.meta["warning"] = "; ".join(w for w in (out.meta.get("warning"), note) if w)
    if calib is not None:
        out.keep_samples(calib, "calibration data")
    elif lite._samples is not None:
        out.keep_samples(lite._samples, lite._samples_source)
    return out


def float_problem(lite: LiteModel) -> str | None:
    """Why a ``.tflite`` is not a float model that can be re-quantized (None when it is one)."""
    from .lite import op_details

    ops = {op["op_name"] for op in op_details(lite.interpreter())}
    io_names = {d["name"] for d in lite.input_details + lite.output_details}   # an int8 input is not a weight
    weights = [t for t in lite.tensors() if len(t["shape"]) >= 2 and t["name"] not in io_names]
    if "DENSIFY" in ops:
        return ("its weights are stored sparse (behind DENSIFY ops); re-quantize the dense original, or convert "
                "the Keras model with he.quantize(model, mode)")
    model = _flatbuffer.parse(lite.content, lite.name)
    halves = [t for t in _flatbuffer.tensors(model) if t["dtype"] == "float16" and t["constant"]]
    if len(halves) > _flatbuffer.float16_constants(model):
        return (f"{len(halves)} of its weights are float16 but not all feed a DEQUANTIZE op (e.g. "
                f"{halves[0]['name'][:60]!r}), so they cannot be widened exactly; re-quantize the float32 original")
    quantized = [t for t in weights if t["dtype"] in ("int8", "uint8", "int4", "int16") and t["scale"] is not None]
    if quantized:
        return (f"it is already quantized ({len(quantized)} integer weight tensors, e.g. {quantized[0]['name'][:60]!r} "
                f"is {quantized[0]['dtype']}); quantizing twice adds error for nothing: start from the float model")
    return None


def precision_changes(before: bytes, after: bytes) -> dict:
    """Which weight tensors (float constants of 2+ dimensions) a re-quantization changed, and which it left in
    float: ``{"changed": [...], "kept": [...]}``, each row naming the tensor, its layer, its op and both types."""
    from .lite import _layer_name

    mb, ma = _flatbuffer.parse(before), _flatbuffer.parse(after)
    tb = _flatbuffer.tensors(mb)
    ta = {t["name"]: t for t in _flatbuffer.tensors(ma)}
    layer_of = {}
    for op in mb.subgraphs[0].operators or []:
        out = tb[int(op.outputs[0])]["name"] if op.outputs is not None and len(op.outputs) else ""
        for i in (op.inputs if op.inputs is not None else []):
            if int(i) >= 0:
                layer_of.setdefault(int(i), (_flatbuffer.op_name(mb, op.opcodeIndex), _layer_name(out)))
    changed, kept = [], []
    for t in tb:
        if not t["constant"] or t["dtype"] not in ("float32", "float16") or len(t["shape"]) < 2:
            continue
        now = ta.get(t["name"])
        kind, layer = layer_of.get(t["index"], ("", ""))
        row = {"tensor": t["name"], "layer": layer, "op": kind, "from": t["dtype"],
               "to": now["dtype"] if now else "(renamed)", "bytes_before": t["bytes"],
               "bytes_after": now["bytes"] if now else None}
        (changed if now is None or now["dtype"] != t["dtype"] else kept).append(row)
    return {"changed": changed, "kept": kept}


def _requantize_report(original: LiteModel, source: LiteModel, content: bytes, mode: str) -> dict:
    """The meta of a re-quantization: tensors changed and kept; a refusal when nothing changed; a warning when
    the file grew (the quantization parameters and (de)quantize ops of a tiny model can cost more than they save)."""
    report = precision_changes(source.content, content)
    changed, kept = report["changed"], report["kept"]
    if not changed:
        kinds = sorted({r["op"] for r in kept if r["op"]})
        raise HomlEdgeError(f"re-quantizing {original.name} to {mode!r} changed no weight's precision ({len(kept)} "
                            f"float weight tensors stayed float, in {', '.join(kinds) or 'no'} ops, which the "
                            "precision recipe left alone or ai-edge-quantizer does not quantize): nothing to gain")
    report["warning"] = None
    if len(content) > original.size:
        saved = sum(r["bytes_before"] - (r["bytes_after"] or 0) for r in changed)
        report["warning"] = (f"the file grew from {original.size:,} to {len(content):,} bytes: its "
                             f"{len(changed)} quantized weight tensors saved only {saved:,} bytes, less than the "
                             "scales, zero points and (de)quantize ops added; keep the smaller file")
    return report


def agreement(reference: LiteModel, variant: LiteModel, x) -> dict:
    """How a variant's outputs compare with the reference file's on ``x``: argmax agreement (the worst output)
    and the largest absolute difference."""
    a, b = reference.predict(x), variant.predict(x)
    a = a if isinstance(a, dict) else {"output": a}
    b = b if isinstance(b, dict) else {"output": b}
    classes = [k for k in a if a[k].reshape(len(a[k]), -1).shape[1] > 1]  # argmax means nothing on one unit
    argmax = min((float((a[k].reshape(len(a[k]), -1).argmax(-1) == b[k].reshape(len(b[k]), -1).argmax(-1)).mean())
                  for k in classes), default=None)
    n = len(next(iter(a.values())))
    return {"argmax": argmax, "max_abs_diff": max(float(np.max(np.abs(a[k] - b[k]))) for k in a), "n": n}


def _signature_input(lite: LiteModel) -> tuple[str, str] | None:
    """(signature key, input name) of a single-input model's signature, for ai-edge-quantizer's calibration."""
    try:
        sigs = lite.interpreter().get_signature_list()
    except Exception:
        return None
    for key, sig in sigs.items():
        if len(sig.get("inputs", [])) == 1:
            return key, sig["inputs"][0]
    return None


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
    if mode is not None and getattr(MODE_SPECS.get(mode), "tool", None) != "quantizer":
        raise HomlEdgeError(f"per-layer precision works with mode 'int4' (ai-edge-quantizer), not {mode!r}")
    base = base or "int4"
    if granularity not in GRANULARITIES:
        raise HomlEdgeError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    entries = [(".*", base)] + _check_entries(precision)
    if base not in PRECISIONS:
        raise HomlEdgeError(f"base precision must be one of {', '.join(PRECISIONS)}, got {base!r}")
    float_lite = quantize(model, "float32", cache=cache)
    recipe_key = json.dumps([entries, granularity])
    key = cache_key(model, "aeq", None, extra=recipe_key + _route(model)) if cache else None
    content, cached, seconds = cached_convert(key, lambda: _aeq(float_lite.content, entries, granularity))
    label = name or (f"{model.name}-{base}" + (f"-{granularity}" if granularity != "channel" else "")
                     + ("-mixed" if precision else ""))   # two granularities: two names
    meta = {"mode": "int4" if base == "int4" and not precision else "mixed", "precision": dict(entries),
            "granularity": granularity, "source": model.name, "cached": cached,
            "seconds": seconds, "path": "litert-quantizer"}
    return LiteModel(content, name=label, meta=meta, _trusted=True)


def _check_entries(precision) -> list:
    entries = list((precision or {}).items())
    for regex, prec in entries:
        if prec not in PRECISIONS:
            raise HomlEdgeError(f"precision for {regex!r} must be one of {', '.join(PRECISIONS)}, got {prec!r}")
        try:
            re.compile(regex)
        except re.error as e:
            raise HomlEdgeError(f"{regex!r} is not a valid regex ({e})") from None
    return entries


def _aeq(float_bytes: bytes, entries, granularity: str, calib=None, signature_input=None) -> bytes:
    """Run Google's ai-edge-quantizer: dynamic recipes (int8/int4 weights), one entry per regex, or a static int8
    recipe calibrated on ``calib``."""
    import contextlib
    import io

    import importlib

    pkg = None
    # LiteRT Quantizer, ai-edge-quantizer's new name (same API); the old package where only it is installed
    for candidate in ("litert_quantizer", "ai_edge_quantizer"):
        try:
            pkg = importlib.import_module(candidate)
            break
        except ImportError:
            continue
    if pkg is None:
        raise HomlEdgeError("int4 and re-quantizing a .tflite need LiteRT Quantizer: pip install 'homl-edge[micro]' "
                            "(litert-quantizer)")
    algorithm_manager, qtyping, quantizer, recipe_manager = (
        importlib.import_module(f"{pkg.__name__}.{m}") for m in ("algorithm_manager", "qtyping", "quantizer",
                                                                  "recipe_manager"))
    rm = recipe_manager.RecipeManager()
    gran = getattr(qtyping.QuantGranularity, GRANULARITIES[granularity])
    for regex, prec in entries:
        op = qtyping.TFLOperationName.ALL_SUPPORTED
        kind, bits = _RECIPES.get(prec, ("dynamic", 8))
        if kind == "static":
            rm.add_static_config(regex=regex, operation_name=op, activation_num_bits=bits, weight_num_bits=bits,
                                 weight_granularity=gran)
        elif kind == "none":
            rm.add_quantization_config(regex=regex, operation_name=op,
                                       algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
        else:
            rm.add_dynamic_config(regex=regex, operation_name=op, num_bits=bits, granularity=gran)
    q = quantizer.Quantizer(float_bytes)
    q.load_quantization_recipe(rm.get_quantization_recipe())
    try:
        # its tqdm bars write to sys.stderr, which in a notebook is not file descriptor 2: quiet() misses them
        with quiet(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = None
            if calib is not None:
                if signature_input is None:
                    raise HomlEdgeError("this .tflite has no single-input signature to calibrate through")
                sig, inp = signature_input
                # true min/max over every sample, as TensorFlow's converter calibrates; ai-edge-quantizer's default
                # moving average (0.95) of per-sample ranges shrinks them toward the last samples: a sine model
                # calibrated on sorted inputs gave an output range of [-0.44, 0] and answers off by 1.0
                calibrator = importlib.import_module(f"{pkg.__name__}.calibrator")
                qsv_utils = importlib.import_module(f"{pkg.__name__}.utils.qsv_utils")

                cal = calibrator.Calibrator(float_bytes, qsv_update_func=qsv_utils.min_max_update)
                cal.calibrate({sig: [{inp: sample[None]} for sample in calib]}, rm)
                result = cal.get_model_qsvs()
            return bytes(q.quantize(result).quantized_model)
    except HomlEdgeError:
        raise
    except Exception as e:
        first = first_line(e)
        raise HomlEdgeError(f"{pkg.__name__.replace('_', '-')} failed: {first[:300]}") from None


# ----------------------------------------------------------------------------------------------- calibration
def input_signature(model) -> tuple:
    if isinstance(model, _keras.SavedModelSource):
        return _saved_model_inputs(model)[0]
    shape = model.inputs[0].shape
    return tuple(None if d is None else int(d) for d in shape)


def _saved_model_inputs(src) -> list[tuple]:
    tf = _tf.tf()
    with quiet():
        loaded = tf.saved_model.load(str(src.path))
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise HomlEdgeError(f"{src.name} has no serving_default signature to convert")
    specs = list(sig.structured_input_signature[1].values())
    return [tuple(None if d is None else int(d) for d in s.shape) for s in specs]


def calibration_array(model, data, max_samples: int = MAX_CALIBRATION) -> np.ndarray:
    """Turn any accepted form of calibration data into one float32 array, checked against the model's input."""
    n_inputs = len(_saved_model_inputs(model)) if isinstance(model, _keras.SavedModelSource) else len(model.inputs)
    if n_inputs != 1:
        raise HomlEdgeError(f"the model has {n_inputs} inputs; homl-edge calibrates single-input models")
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
def _code_digest() -> str:
    """A digest of the whole homl_edge package's source (every ``.py`` file, by path): any change to its code
    misses every older cache entry."""
    if "code" not in _KEY_PARTS:
        pkg = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for f in sorted(pkg.rglob("*.py")):
            h.update(f"{f.relative_to(pkg).as_posix()}|".encode() + f.read_bytes())
        _KEY_PARTS["code"] = h.hexdigest()[:16]
    return _KEY_PARTS["code"]


def versions() -> dict:
    """The versions of everything that shapes a converted file's bytes (part of every cache key)."""
    if "versions" not in _KEY_PARTS:
        from importlib import metadata

        v = {}
        for dist in ("tensorflow", "tf-keras", "keras", "litert-quantizer", "ai-edge-quantizer", "ai-edge-litert",
                     "numpy"):
            try:
                v[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                v[dist] = None
        _KEY_PARTS["versions"] = v
    from ._version import __version__

    import sys

    return {**_KEY_PARTS["versions"], "homl-edge": __version__, "conversion-code": _code_digest(),
            "python": "%d.%d" % sys.version_info[:2]}


_KEY_PARTS: dict = {}


def _versions_key(digest: str, what: str) -> str:
    return hashlib.sha256(f"{what}|{json.dumps(versions(), sort_keys=True)}|{digest}".encode()).hexdigest()


def cache_key(model, mode: str, calib, extra: str = "") -> str:
    """Content address of a conversion: model (architecture + weights), mode, options, calibration data and
    :func:`versions`."""
    if isinstance(model, _keras.SavedModelSource):
        parts = ((str(f.relative_to(model.path)), f.read_bytes())
                 for f in sorted(model.path.rglob("*")) if f.is_file())
    else:
        def weights():
            yield "architecture", model.to_json().encode()
            yield from custom_code(model)
            for w in model.weights:
                v = np.asarray(w.numpy())
                yield f"{getattr(w, 'path', None) or w.name}{v.shape}{v.dtype}", np.ascontiguousarray(v).tobytes()

        parts = weights()
    return content_key(mode, extra, parts, calib)


_LIBRARIES = {"keras", "tf_keras", "tensorflow", "tensorflow_model_optimization", "homl_edge", "builtins", "numpy",
              "abc", "typing", "functools"}


def _is_library(obj) -> bool:
    return (getattr(obj, "__module__", None) or "builtins").split(".")[0] in _LIBRARIES


def _code_bytes(code) -> bytes:
    """A code object's bytecode, names and constants (nested code objects too): what it computes, stably."""
    parts = [code.co_code, repr((code.co_names, code.co_varnames, code.co_freevars)).encode()]
    for c in code.co_consts:
        parts.append(_code_bytes(c) if hasattr(c, "co_code") else repr(c).encode())
    return b"|".join(parts)


def _function_code(fn) -> bytes:
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    out = _code_bytes(code) if code is not None else b""
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if isinstance(v, (int, float, str, bytes, bool, tuple, type(None))):
            out += b"|closure|" + repr(v).encode()
    try:
        out += inspect.getsource(fn).encode()
    except (OSError, TypeError):
        pass
    return out


def custom_code(model):
    """(label, bytes) of the code that a model runs and its config does not hold: every class of its layers (and
    the model's own class) defined outside Keras/TensorFlow, and every such function a layer keeps (a custom
    activation), as source (where ``inspect`` finds it) and bytecode. A changed ``call()`` is another model."""
    import types

    layers = getattr(model, "_flatten_layers", None)
    layers = list(layers(include_self=True, recursive=True)) if layers else [model, *getattr(model, "layers", [])]
    seen = set()
    for layer in layers:
        for cls in type(layer).__mro__:
            if _is_library(cls) or cls in seen:
                continue
            seen.add(cls)
            code = b""
            try:
                code += inspect.getsource(cls).encode()
            except (OSError, TypeError):
                pass
            for name, member in sorted(vars(cls).items()):
                for fn in (member, getattr(member, "__func__", None), getattr(member, "fget", None)):
                    if isinstance(fn, types.FunctionType):
                        code += f"|{name}|".encode() + _function_code(fn)
            yield f"class {cls.__module__}.{cls.__qualname__}", code
        for name, value in sorted(vars(layer).items()):
            if isinstance(value, types.FunctionType) and not _is_library(value) and value not in seen:
                seen.add(value)
                yield f"function {layer.name}.{name}", _function_code(value)


def content_key(mode: str, extra: str, parts, calib=None) -> str:
    """The key of :func:`cache_key` from its pieces: ``parts`` are (label, bytes) pairs, each hashed with its
    length so that no two different sequences of parts share a key; ``calib`` is an array or None."""
    h = hashlib.sha256()
    h.update(f"{mode}|{extra}|".encode())
    for label, data in parts:
        h.update(f"{label}|{len(data)}|".encode())
        h.update(data)
    if calib is not None:
        calib = np.ascontiguousarray(calib)
        h.update(f"calib{calib.shape}{calib.dtype}|".encode())
        h.update(calib.tobytes())
    return _versions_key(h.hexdigest(), "keras")


def _cache_get(key):
    """The cached bytes for ``key``, or None. An entry read from disk is trusted only when its content hash matches
    the one stored beside it and LiteRT builds and runs it in the child process (as any other bytes); a damaged,
    truncated or replaced entry is deleted and the conversion runs again."""
    if key in _memory_cache:  # this process made (and checked) these bytes
        _memory_cache.move_to_end(key)
        return _memory_cache[key]
    d = cache_dir()
    if d is None:
        return None
    f, digest = d / f"{key}.tflite", d / f"{key}.sha256"
    if not f.is_file():
        return None
    try:
        data = f.read_bytes()
        ok = digest.is_file() and digest.read_text().strip() == hashlib.sha256(data).hexdigest()
    except OSError:
        ok = False
    if ok:
        from .lite import verify

        try:
            verify(data, "a cached conversion")
        except HomlEdgeError:
            ok = False
    if not ok:
        for p in (f, digest):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
        return None
    _remember(key, data)
    return data


def cached_convert(key: str | None, make, check: str | None = None) -> tuple[bytes, bool, float]:
    """``(content, cached, seconds)``: the bytes cached under ``key`` (None: no cache), else ``make()``'s, checked
    to prepare in LiteRT (naming mode ``check``, when given) and cached; seconds from the lookup to the bytes."""
    t0 = time.perf_counter()
    content = _cache_get(key) if key else None
    cached = content is not None
    if content is None:
        content = make()
        if check:
            _check_runs(content, check)
        if key:
            _cache_put(key, content)
    return content, cached, time.perf_counter() - t0


def _cache_put(key, content):
    _remember(key, content)
    d = cache_dir()
    if d is None:
        return
    try:
        from ._files import atomic_write

        d.mkdir(parents=True, exist_ok=True)
        atomic_write(d / f"{key}.tflite", content, overwrite=True)
        atomic_write(d / f"{key}.sha256", hashlib.sha256(content).hexdigest().encode(), overwrite=True)
    except (OSError, HomlEdgeError):
        pass  # a read-only home folder only costs the cross-session cache


def _remember(key, content):
    _memory_cache[key] = content
    _memory_cache.move_to_end(key)
    while len(_memory_cache) > _MEMORY_CACHE_SIZE:
        _memory_cache.popitem(last=False)


# ----------------------------------------------------------------------------------------------- conversion
def converter_for(model, mode: str, calib=None):
    """The ``tf.lite.TFLiteConverter`` set up for ``mode``: the plain TensorFlow recipe, shown in the chapters
    (the settings are the mode's :class:`Mode` row)."""
    spec = mode_spec(mode)
    tf = _tf.tf()
    if isinstance(model, _keras.SavedModelSource):
        conv = tf.lite.TFLiteConverter.from_saved_model(str(model.path))
    else:
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if not spec.optimize:
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if spec.types:
        conv.target_spec.supported_types = [getattr(tf, t) for t in spec.types]
    if spec.calibrated and calib is not None:  # (a QAT model: its ranges are learned, no dataset)
        def representative_dataset():
            for sample in calib:
                yield [sample[None].astype(np.float32)]

        conv.representative_dataset = representative_dataset
    if spec.ops:
        conv.target_spec.supported_ops = [getattr(tf.lite.OpsSet, spec.ops)]
    if spec.io:
        conv.inference_input_type = getattr(tf, spec.io)
        conv.inference_output_type = getattr(tf, spec.io)
    return conv


def _check_runs(content: bytes, mode: str) -> None:
    """The converter can emit a model that LiteRT then refuses to prepare: say so at conversion time."""
    from .lite import new_interpreter

    try:
        new_interpreter(content)
    except HomlEdgeError as e:
        hint = MODE_SPECS[mode].check_hint
        detail = str(e).split(": ", 1)[-1]
        raise HomlEdgeError(f"mode {mode!r} produced a model that LiteRT cannot prepare: {detail}{hint}") from None


_exports: "collections.OrderedDict[str, str]" = collections.OrderedDict()   # model key -> SavedModel folder
_EXPORTS_KEPT = 4


def _reusing_export(conv, model, mode: str, calib, key: str):
    """``conv = converter_for(model, mode, calib)``, with the SavedModel that the converter writes of a Keras model
    kept for the next mode of the same model (architecture + weights: ``key``). Writing it is most of a conversion (18 of
    26 s for a Bidirectional LSTM, measured); the next modes read it back, and their bytes are the bytes the Keras
    path writes (the file's model-type field is set back to the Keras model's; tests/test_convert.py compares)."""
    import shutil
    import tempfile

    folder = _exports.get(key)
    if folder and Path(folder, "saved_model.pb").is_file():
        _exports.move_to_end(key)
        again = converter_for(_keras.SavedModelSource(Path(folder)), mode, calib)
        again._metadata.environment.modelType = conv._metadata.environment.modelType
        return again
    folder = tempfile.mkdtemp(prefix="homl-edge-export-")
    write = conv._convert_keras_to_saved_model

    def write_and_keep(_their_folder):
        result = write(folder)   # TensorFlow's own export, into a folder that outlives this conversion
        if conv.saved_model_dir == folder and Path(folder, "saved_model.pb").is_file():
            _exports[key] = folder
            while len(_exports) > _EXPORTS_KEPT:
                shutil.rmtree(_exports.popitem(last=False)[1], ignore_errors=True)
        else:   # TensorFlow fell back to its graph path: nothing to keep
            shutil.rmtree(folder, ignore_errors=True)
        return result

    conv._convert_keras_to_saved_model = write_and_keep
    return conv


@atexit.register
def _remove_exports():
    import shutil

    for folder in _exports.values():
        shutil.rmtree(folder, ignore_errors=True)


def _convert(model, mode, calib, reuse: str | None = None) -> bytes:
    import contextlib
    import io

    conv = converter_for(model, mode, calib)
    if reuse and not isinstance(model, _keras.SavedModelSource) and all(
            hasattr(conv, a) for a in ("_convert_keras_to_saved_model", "_metadata", "saved_model_dir")):
        conv = _reusing_export(conv, model, mode, calib, reuse)
    try:
        with quiet(), contextlib.redirect_stdout(io.StringIO()):  # Keras 3's export prints "Saved artifact at"
            return bytes(conv.convert())
    except Exception as e:
        text = str(e)
        lines = [l.strip() for l in text.splitlines() if "error:" in l.lower()] or text.strip().splitlines() or [
            type(e).__name__]
        hint = MODE_SPECS[mode].convert_hint
        raise HomlEdgeError(f"the TFLite converter failed for mode {mode!r}: {lines[0][:300]}{hint}") from None
