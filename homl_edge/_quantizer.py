"""The LiteRT Quantizer (ai-edge-quantizer) path: per-layer precision recipes and :func:`_aeq`, which runs them on a
float ``.tflite`` (dynamic int8/int4 weights, or static int8 calibrated on data). ``homl_edge.quantization``
exports every name.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._tf import quiet
from .errors import HomlEdgeError, first_line

if TYPE_CHECKING:
    from .lite import LiteModel


PRECISIONS = ("float", "int8", "int4")
# a quantizer recipe entry's precision (a PRECISIONS value, or a Mode's recipe) -> (ai-edge-quantizer config, bits)
_RECIPES = {"float": ("none", 0), "int8": ("dynamic", 8), "int4": ("dynamic", 4), "static-int8": ("static", 8)}
GRANULARITIES = {"channel": "CHANNELWISE", "block32": "BLOCKWISE_32", "block64": "BLOCKWISE_64",
                 "block128": "BLOCKWISE_128"}


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
