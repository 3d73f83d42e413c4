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

This module holds the three ways in (:func:`quantize`, :func:`requantize`, :func:`quantize_mixed`), their one
:func:`cached_convert` and their reports; each part it uses has a file of its own: ``_modes`` (the modes as data,
the converter's recipe), ``_quantizer`` (the LiteRT Quantizer path), ``_calibration`` (calibration data) and
``_cache`` (the content cache).
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from . import _flatbuffer, _keras
# the parts, one job each, and every name this module exported before they moved (tests and notebooks use them)
from ._cache import (_KEY_PARTS, _LIBRARIES, _MEMORY_CACHE_SIZE, _cache_get, _cache_put, _code_bytes,  # noqa: F401
                     _code_digest, _function_code, _is_library, _memory_cache, _remember, _versions_key, cache_dir,
                     cache_key, clear_cache, content_key, custom_code, model_digest, versions)
from ._calibration import (MAX_CALIBRATION, _as_integers, _collect, _saved_model_inputs,  # noqa: F401
                           calibration_array, input_signature)
from ._modes import (_ALIASES, _EXPORTS_KEPT, CALIBRATED, MODE_SPECS, MODE_TABLE, MODES, Mode,  # noqa: F401
                     _check_runs, _convert, _exports, _reusing_export, converter_for, mode_spec,
                     normalize_mode)
from ._quantizer import (_RECIPES, GRANULARITIES, PRECISIONS, _aeq, _check_entries,  # noqa: F401
                         _signature_input, parse_precision)
from ._result import Record, result
from .errors import HomlEdgeError
from .lite import LiteModel, require_lite


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
    model = _keras.without_training_wrappers(model)   # a model saved in the middle of pruning or clustering
    spec = mode_spec(mode)
    mode = spec.name
    precision = parse_precision(precision)
    if precision is not None or spec.tool == "quantizer":
        return _keep_inputs(quantize_mixed(model, precision or {}, name=name, cache=cache, granularity=granularity,
                                           base=(spec.recipe if spec.tool == "quantizer" else None), mode=mode),
                            None, data)
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
    digest = model_digest(model) if cache else None   # one pass over the weights for both keys
    key = cache_key(model, mode, calib, extra=route, digest=digest) if cache else None
    name = name or f"{model.name}-{mode}"
    content, cached, seconds = cached_convert(
        key, lambda: _convert(_converter_source(model, route), mode, calib,
                              reuse=key and cache_key(model, "export", None, extra=route, digest=digest)), check=mode)
    meta = {"mode": mode, "source": model.name, "cached": cached, "seconds": seconds,
            "calibration_samples": 0 if calib is None else len(calib), "route": route,
            "ranges": "learned (QAT)" if qat and calib is None and spec.learned_ranges else None,
            "path": "tflite-converter"}   # better or equal to the quantizer here (benchmarks/RESULTS.md, issue 29)
    meta["warning"] = _tiny_model_note(model, mode, len(content), cache) or _nothing_quantized_note(content, mode)
    return _keep_inputs(LiteModel(content, name=name, meta=meta, _trusted=True), calib, data)


def _file_calibration(lite: LiteModel, data) -> np.ndarray:
    """Calibration samples for a ``.tflite`` file's first input, checked by the file's own input checks, in its
    input dtype (float32, or uint8 for a file that takes raw pixels: cast to float32 they would not run)."""
    x = lite.prepare_inputs(data)[0]
    dtype = np.dtype(lite.input_details[0]["dtype"])
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        shape = ", ".join(str(d) for d in lite.input_details[0]["shape"][1:])
        return _as_integers(x, dtype, f"{dtype.name} array of shape (n, {shape})")
    return x.astype(np.float32)


def _keep_inputs(lite: LiteModel, calib, data) -> LiteModel:
    """Real inputs for ``lite.benchmark()``, never zeros: the calibration samples, else ``data=`` given as an array
    (int4 and per-layer mixes need no calibration, but their latency is timed on the user's inputs too)."""
    if calib is not None or isinstance(data, np.ndarray):
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
    lite = require_lite(lite, "requantize", paths=True)  # optimize()'s result: the .tflite it made
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
        calib = _file_calibration(lite, data)[:max_samples]
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
        agree = agreement(original, out, ins[0] if len(ins) == 1 else ins)
        out.meta["agreement"] = dict(agree)   # meta stays plain JSON-able data
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


@result
class PrecisionChanges(Record):
    """Which weight tensors a re-quantization changed and which it left in float (:func:`precision_changes`):
    ``changed`` and ``kept``, lists of rows (``tensor``, ``layer``, ``op``, ``from``, ``to``, ``bytes_before``,
    ``bytes_after``). A frozen record, also a read-only mapping; ``to_frame()`` has every row, with ``changed``."""

    changed: list
    kept: list

    def to_frame(self):
        import pandas as pd

        rows = [{**r, "changed": True} for r in self.changed] + [{**r, "changed": False} for r in self.kept]
        return pd.DataFrame(rows, columns=["tensor", "layer", "op", "from", "to", "bytes_before", "bytes_after",
                                           "changed"])


def precision_changes(before: bytes, after: bytes) -> PrecisionChanges:
    """Which weight tensors (float constants of 2+ dimensions) a re-quantization changed, and which it left in
    float: a :class:`PrecisionChanges` (``["changed"]``, ``["kept"]``), each row naming the tensor, its layer, its
    op and both types."""
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
    return PrecisionChanges(changed=changed, kept=kept)


def _requantize_report(original: LiteModel, source: LiteModel, content: bytes, mode: str) -> dict:
    """The meta of a re-quantization: tensors changed and kept; a refusal when nothing changed; a warning when
    the file grew (the quantization parameters and (de)quantize ops of a tiny model can cost more than they save)."""
    report = dict(precision_changes(source.content, content))  # the meta's keys, with "warning" added below
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


@result
class Agreement(Record):
    """How a variant's outputs compare with a reference file's (:func:`agreement`): ``argmax``, the share of the
    ``n`` samples whose argmax agrees (the worst output; None where argmax means nothing, one unit per output),
    and ``max_abs_diff``. A frozen record, also a read-only mapping (``a["argmax"]``)."""

    argmax: float | None
    max_abs_diff: float
    n: int


def agreement(reference: LiteModel, variant: LiteModel, x) -> Agreement:
    """How a variant's outputs compare with the reference file's on ``x`` (an :class:`Agreement`): argmax
    agreement (the worst output) and the largest absolute difference."""
    reference, variant = require_lite(reference, "agreement"), require_lite(variant, "agreement")
    a, b = reference.predict(x), variant.predict(x)
    a = a if isinstance(a, dict) else {"output": a}
    b = b if isinstance(b, dict) else {"output": b}
    classes = [k for k in a if a[k].reshape(len(a[k]), -1).shape[1] > 1]  # argmax means nothing on one unit
    argmax = min((float((a[k].reshape(len(a[k]), -1).argmax(-1) == b[k].reshape(len(b[k]), -1).argmax(-1)).mean())
                  for k in classes), default=None)
    n = len(next(iter(a.values())))
    return Agreement(argmax=argmax, max_abs_diff=max(float(np.max(np.abs(a[k] - b[k]))) for k in a), n=n)


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
    model = _keras.load_model(model)  # a result that holds a model: its .model
    model = _keras.without_training_wrappers(model)   # a model saved in the middle of pruning or clustering
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


