"""TensorFlow Lite Micro on the desktop: the same C++ reference kernels that run on a Cortex-M.

``he.micro.run(lite, x)`` (or ``lite.on_micro(x, y)``) runs a model in the real TFLM interpreter from the
``tflite-micro`` package, in a child process (TFLM has no verifier of its own: a malformed model can crash it,
and only bytes LiteRT has already accepted reach it). It reports predictions, agreement with LiteRT, the smallest
tensor arena that works, and the flash the model needs; :func:`fits_on` compares that with real boards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import HomlEdgeError
from .lite import LiteModel, dequantize_array, quantize_array

# Published flash / RAM of boards that TFLM targets (KiB). RAM is what the tensor arena competes for.
BOARDS = {
    "Arduino Uno R3 (ATmega328P)": (32, 2),
    "Arduino Nano 33 BLE Sense (nRF52840)": (1024, 256),
    "SparkFun Edge (Apollo3 Blue)": (1024, 384),
    "Raspberry Pi Pico (RP2040)": (2048, 264),
    "STM32F746G-DISCO (Cortex-M7)": (1024, 320),
    "ESP32-DevKitC (ESP32-WROOM-32)": (4096, 520),
    "Arduino Portenta H7 (STM32H747)": (2048, 1024),
}


def run(lite: LiteModel, x, *, arena_size: int | None = None, find_arena: bool = True, timeout_s: float = 300):
    """Run ``x`` (float inputs) through TFLM; returns a dict with ``outputs`` (float), ``arena_bytes``,
    ``flash_bytes`` and, against LiteRT on the same inputs, ``argmax_agreement`` and ``bit_identical``."""
    if not isinstance(lite, LiteModel):
        raise HomlEdgeError(f"expected a LiteModel, got {type(lite).__name__}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == len(lite.input_shape) - 1:
        x = x[None]
    lite._check_input(x)
    inp, out = lite.input_details[0], lite.output_details[0]
    q = quantize_array(x, inp)
    arena = int(arena_size or max(64 * 1024, 4 * lite.size))
    with tempfile.TemporaryDirectory(prefix="homl-edge-micro-") as d:
        folder = Path(d)
        (folder / "model.tflite").write_bytes(lite.content)
        np.save(folder / "x.npy", q)
        (folder / "job.json").write_text(json.dumps({"arena_size": arena, "find_arena": find_arena}))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            proc = subprocess.run([sys.executable, "-m", "homl_edge._microrun", str(folder)], capture_output=True,
                                  text=True, timeout=timeout_s, env=env,
                                  cwd=str(Path(__file__).resolve().parent.parent))
        except subprocess.TimeoutExpired:
            raise HomlEdgeError(f"TFLM did not finish within {timeout_s:.0f} s") from None
        if proc.returncode != 0 or not (folder / "result.json").exists():
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            tail = proc.stderr.strip().splitlines()[-1:] or [""]
            raise HomlEdgeError(f"TensorFlow Lite Micro crashed on {lite.name} ({how}) {tail[0][:200]}".strip())
        result = json.loads((folder / "result.json").read_text())
        if not result.get("ok"):
            log = (folder / "stderr.txt").read_text(errors="replace") if (folder / "stderr.txt").exists() else ""
            raise HomlEdgeError(_explain(result.get("error", "unknown error"), lite, log))
        raw = np.load(folder / "y.npy")
    outputs = dequantize_array(raw, out)
    ref_raw = _litert_raw(lite, q)
    report = {"outputs": outputs, "n": len(x), "flash_bytes": lite.size,
              "arena_bytes": result.get("arena_bytes"), "arena_tried": arena,
              "argmax_agreement": float((outputs.argmax(-1) == dequantize_array(ref_raw, out).argmax(-1)).mean()),
              "bit_identical": float(np.all(raw.reshape(len(x), -1) == ref_raw.reshape(len(x), -1), axis=1).mean())}
    if find_arena and report["arena_bytes"] is None:
        raise HomlEdgeError(f"the model did not fit a {arena:,}-byte arena; pass a larger arena_size")
    return report


def _litert_raw(lite, q):
    """LiteRT's raw (still quantized) outputs for the same quantized inputs, one by one like TFLM."""
    from .lite import new_interpreter

    interp = new_interpreter(lite.content)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for sample in q:
        interp.set_tensor(inp["index"], sample[None].astype(inp["dtype"]))
        interp.invoke()
        rows.append(interp.get_tensor(out["index"])[0].copy())
    return np.stack(rows)


def _explain(error: str, lite: LiteModel, log: str = "") -> str:
    import re

    missing = re.search(r"Didn't find op for builtin opcode '(\w+)'", log) or \
        re.search(r"Didn't find op for builtin opcode '(\w+)'", error)
    if missing:
        op = missing.group(1)
        layers = sorted({_layer_name(t) for t in _op_outputs(lite, op)} - {""})
        where = f" (from layer {', '.join(repr(l) for l in layers)})" if layers else ""
        return (f"TensorFlow Lite Micro has no kernel for {op}{where}: TFLM has fewer kernels than LiteRT; "
                "replace that layer with ops TFLM supports")
    return f"TensorFlow Lite Micro could not run {lite.name}: {error}"


def _op_outputs(lite: LiteModel, op_name: str) -> list[str]:
    interp = lite.interpreter()
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    return [names.get(int(i), "") for op in interp._get_ops_details() if op["op_name"] == op_name
            for i in op["outputs"]]


def _layer_name(tensor_name: str) -> str:
    """'model/topk/TopKV2;...' -> 'topk': the Keras layer that produced a TFLite tensor."""
    parts = tensor_name.split(";")[0].split("/")
    return parts[1] if len(parts) > 2 else (parts[0] if parts else "")


def fits_on(flash_bytes: int, arena_bytes: int, boards: dict | None = None):
    """A table of boards: does the model (flash) and its tensor arena (RAM) fit? (before your own code)"""
    import pandas as pd

    rows = []
    for name, (flash_kib, ram_kib) in (boards or BOARDS).items():
        rows.append({"board": name, "flash_KiB": flash_kib, "ram_KiB": ram_kib,
                     "model_flash_%": 100 * flash_bytes / (flash_kib * 1024),
                     "arena_ram_%": 100 * arena_bytes / (ram_kib * 1024),
                     "fits": flash_bytes <= flash_kib * 1024 and arena_bytes <= ram_kib * 1024})
    return pd.DataFrame(rows).set_index("board")
