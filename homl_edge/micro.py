"""TensorFlow Lite Micro on the desktop: the same C++ reference kernels that run on a Cortex-M.

``lite.on_micro(x, y)`` (or ``he.micro.run(lite, x)``) runs a model in the real TFLM interpreter from the
``tflite-micro`` package, in the sandbox child process (TFLM has no verifier of its own: a malformed model can
crash it, and only bytes LiteRT has already accepted reach it). It reports predictions, agreement with LiteRT, the
smallest tensor arena that works, and the flash the model needs; :func:`fits_on` compares that with real boards.
"""
from __future__ import annotations

from .errors import HomlEdgeError
from .lite import LiteModel

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
    """Run ``x`` (float inputs) through TFLM: see :meth:`homl_edge.lite.LiteModel.on_micro` (a :class:`MicroRun`)."""
    if not isinstance(lite, LiteModel):
        raise HomlEdgeError(f"expected a LiteModel, got {type(lite).__name__}")
    return lite.on_micro(x, arena_size=arena_size, find_arena=find_arena, timeout_s=timeout_s)


def fits_on(flash_bytes: int, arena_bytes: int, boards: dict | None = None):
    """A table of boards: does the model (flash) and its tensor arena (RAM) fit? (before your own code)"""
    from .report import Table

    rows = []
    for name, (flash_kib, ram_kib) in (boards or BOARDS).items():
        rows.append({"board": name, "flash_KiB": flash_kib, "ram_KiB": ram_kib,
                     "model_flash_%": 100 * flash_bytes / (flash_kib * 1024),
                     "arena_ram_%": 100 * arena_bytes / (ram_kib * 1024),
                     "fits": flash_bytes <= flash_kib * 1024 and arena_bytes <= ram_kib * 1024})
    return Table(rows).set_index("board")
