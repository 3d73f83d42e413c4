"""The quantization modes as data, and the TFLite converter's recipe for each.

:data:`MODE_TABLE` holds one :class:`Mode` per mode (its name and aliases, whether it needs calibration data, which
tool makes it, its converter settings, how to check it runs, its notes); :func:`converter_for` sets up
``tf.lite.TFLiteConverter`` from a mode's row, :func:`_convert` runs it (reusing the SavedModel it writes of a Keras
model for the next modes) and :func:`_check_runs` proves LiteRT prepares the result. ``homl_edge.quantization``
exports every name.
"""
from __future__ import annotations

import collections
import gc
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _files, _keras, _tf
from ._tf import quiet
from .errors import HomlEdgeError


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


def normalize_mode(mode: str) -> str:
    return mode_spec(mode).name


def mode_spec(mode: str) -> Mode:
    """The :class:`Mode` named ``mode`` or one of its aliases (any case)."""
    m = str(mode).strip().lower()
    spec = MODE_SPECS.get(_ALIASES.get(m, m))
    if spec is None:
        raise HomlEdgeError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    return spec


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
        from ._calibration import input_dtype

        dtype = input_dtype(model)   # float32 for most models, uint8 for raw pixels: what the converter feeds

        def representative_dataset():
            for sample in calib:
                yield [np.asarray(sample[None]).astype(dtype, copy=False)]

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
        free, example = _free_dimensions(content)
        if free:   # LiteRT prepares a free dimension at size 1: a convolution's window does not fit
            raise HomlEdgeError(
                f"mode {mode!r} produced a model whose input has free dimensions ({free}), which LiteRT prepares "
                f"at size 1, too small for its ops ({detail[:120].strip()}): give the Keras Input a fixed size "
                f"(e.g. keras.Input({example}) with your sizes) and convert again") from None
        raise HomlEdgeError(f"mode {mode!r} produced a model that LiteRT cannot prepare: {detail}{hint}") from None


def _free_dimensions(content: bytes) -> tuple[str, str]:
    """The inputs' free dimensions other than the batch, as "input 'x': [-1, -1, -1, 3], dimensions 1 and 2 free",
    or "" (read from the file's shape signatures; nothing is allocated), and a fixed shape to suggest for the first
    such input ("(H, W, 3)")."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        details = Interpreter(model_content=content).get_input_details()
    except Exception:
        return "", ""
    said, example = [], ""
    for d in details:
        sig = [int(v) for v in d.get("shape_signature", d["shape"])]
        free = [i for i, v in enumerate(sig) if v == -1 and i > 0]
        if free:
            said.append(f"input {d['name']!r}: {sig}, dimension{'s' if len(free) > 1 else ''} "
                        f"{' and '.join(map(str, free))} free")
            names = iter("HWDT" if len(free) <= 4 else [f"D{i}" for i in free])
            example = example or "(" + ", ".join(next(names) if v == -1 else str(v) for v in sig[1:]) + \
                ("," if len(sig) == 2 else "") + ")"
    return "; ".join(said), example


class _Export:
    """A SavedModel that TensorFlow's Keras path wrote, kept for the next modes of the same model: its folder and
    the debug information TensorFlow read back from it. It also stands in for the loaded object, of which the
    converter reads only ``graph_debug_info`` (``TFLiteConverterBaseV2._validate_inputs``); loading the whole
    object again costs seconds for nothing else."""

    def __init__(self, folder: str, graph_debug_info):
        self.folder, self.graph_debug_info = folder, graph_debug_info


_exports: "collections.OrderedDict[str, _Export]" = collections.OrderedDict()   # model key -> its kept export
_EXPORTS_KEPT = 4
_EXPORT_PREFIX = "homl-edge-export-"


def _export_folder() -> str:
    """A new folder for a kept export (in this process's ``homl-edge-export-*`` root in the temp folder) that lives as
    long as this process and is swept by the next one if the process is killed
    (:func:`homl_edge._files.process_folder`)."""
    return _files.process_folder(_EXPORT_PREFIX)


_drop = _files.release   # remove a kept folder of this process (its root and the root's lock go at exit)


def _read_back(conv, folder: str, trackable=None):
    """The end of TensorFlow's ``_convert_keras_to_saved_model`` after its export (TF 2.16-2.21, 8 lines): point
    ``conv`` at the SavedModel in ``folder`` and read its graph. The loaded object, of which the converter reads
    only ``graph_debug_info``, is ``trackable`` (a kept export) or loaded as TensorFlow loads it."""
    from tensorflow.python.saved_model import signature_constants, tag_constants
    from tensorflow.python.saved_model.load import load

    conv.saved_model_dir = folder
    conv._saved_model_tags = {tag_constants.SERVING}
    conv._saved_model_exported_names = [signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
    conv._parse_saved_model_args(always_enable_saved_model_import=conv.experimental_lower_to_saved_model)
    if not conv.saved_model_dir:
        return None, None, None
    loaded = conv._load_saved_model(conv.saved_model_dir, conv._saved_model_tags)
    conv._trackable_obj = trackable if trackable is not None else load(folder, conv._saved_model_tags)
    return loaded


def _lean_export(model, folder: str) -> bool:
    """Write a tf_keras model's SavedModel as TensorFlow's Keras path does (``tf.saved_model.save`` with debug
    information, the serving signature Keras traces for it) but without tracing every layer's call functions for
    Keras's own reloading, which the converter never reads: an LSTM at batch 1 converted in 1.4 s instead of 5.4 s,
    a Bidirectional LSTM in 1.7 s instead of 18 s, with the same bytes (tests/core/test_quantization.py compares
    them mode by mode; measured on 8 kinds of model, TF 2.19 and 2.21). False (and nothing written) for a model that
    is not tf_keras, one that Keras restores from its config only (TensorFlow's path gives it no signature), or where
    tf_keras's saving internals are not the ones known here. One difference remains by design: a model whose layer
    functions cannot be traced made TensorFlow's export fail and its converter fall back to freezing the model; the
    lean export may succeed for it, and the converter then reads this SavedModel instead."""
    if _keras.flavour(model) != "keras2" or getattr(model, "_must_restore_from_config", False):
        return False
    try:
        from tf_keras.src.saving.legacy.saved_model import save_impl, utils as keras_saving
    except ImportError:
        return False
    if not all(hasattr(o, a) for o, a in ((save_impl, "default_save_signature"), (keras_saving, "keras_option_scope"),
                                          (keras_saving, "in_tf_saved_model_scope"))):
        return False
    tf = _tf.tf()
    signature = save_impl.default_save_signature(model)
    with keras_saving.keras_option_scope(save_traces=False,
                                         in_tf_saved_model_scope=keras_saving.in_tf_saved_model_scope()):
        tf.saved_model.save(model, folder, signatures=signature,
                            options=tf.saved_model.SaveOptions(save_debug_info=True))
    return True


def _reusing_export(conv, key: str):
    """``conv`` (TensorFlow's converter of a Keras model) with the SavedModel that it writes of the model kept for
    the next mode of the same model (architecture + weights: ``key``). The next modes skip the export and the
    loading of the whole SavedModel object (for a Bidirectional LSTM 5.6 s of export and 2 x 6 s of loading per
    conversion, of 21 s, measured): they run the rest of TensorFlow's own Keras path on the kept folder, so their
    bytes are the bytes of a fresh conversion (tests/core/test_quantization.py compares them mode by mode). A
    tf_keras model's first export is lean (:func:`_lean_export`)."""
    kept = _exports.get(key)
    if kept and Path(kept.folder, "saved_model.pb").is_file():
        _exports.move_to_end(key)
        conv._convert_keras_to_saved_model = lambda _their_folder: _read_back(conv, kept.folder, kept)
        return conv
    write = conv._convert_keras_to_saved_model

    def write_and_keep(_their_folder):
        folder = _export_folder()   # made only when TensorFlow exports
        try:
            try:
                lean = _lean_export(conv._keras_model, folder)
            except Exception:   # what the lean export cannot write, TensorFlow's own export is asked for
                lean = False
                for item in Path(folder).iterdir():
                    shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
            # TensorFlow's own export into a folder that outlives this conversion, or the rest of it after ours
            result = _read_back(conv, folder) if lean else write(folder)
        except BaseException:
            _drop(folder)   # an export that failed leaves nothing in /tmp
            raise
        debug_info = getattr(conv._trackable_obj, "graph_debug_info", None)   # TensorFlow's loader always sets it
        if conv.saved_model_dir == folder and debug_info is not None and Path(folder, "saved_model.pb").is_file():
            _exports[key] = _Export(folder, debug_info)
            while len(_exports) > _EXPORTS_KEPT:
                _drop(_exports.popitem(last=False)[1].folder)
        else:   # TensorFlow fell back to its graph path: nothing to keep
            _drop(folder)
        return result

    conv._convert_keras_to_saved_model = write_and_keep
    return conv


def _convert(model, mode, calib, reuse: str | None = None) -> bytes:
    import contextlib
    import io

    conv = converter_for(model, mode, calib)
    if reuse and not isinstance(model, _keras.SavedModelSource) and all(
            hasattr(conv, a) for a in ("_convert_keras_to_saved_model", "_load_saved_model", "_parse_saved_model_args",
                                       "experimental_lower_to_saved_model", "saved_model_dir")):
        conv = _reusing_export(conv, reuse)
    try:
        with quiet(), contextlib.redirect_stdout(io.StringIO()):  # Keras 3's export prints "Saved artifact at"
            return bytes(conv.convert())
    except Exception as e:
        text = str(e)
        lines = [l.strip() for l in text.splitlines() if "error:" in l.lower()] or text.strip().splitlines() or [
            type(e).__name__]
        hint = MODE_SPECS[mode].convert_hint
        raise HomlEdgeError(f"the TFLite converter failed for mode {mode!r}: {lines[0][:300]}{hint}") from None
    finally:
        if reuse:   # the graph TensorFlow imported is full of cycles, and so is the converter with its replaced
            conv.__dict__.pop("_convert_keras_to_saved_model", None)   # method: free both now, as TensorFlow's
            del conv                                                    # SavedModel path does (a MobileNetV2's
            gc.collect()   # four conversions after training peaked 75 MB higher without it, measured)
