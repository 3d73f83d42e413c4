"""Child process that tries untrusted ``.tflite`` bytes in LiteRT, so that a crash cannot take the caller down.

Protocol on stdin/stdout: the parent writes an 8-byte little-endian length and that many bytes; the child answers
one JSON line ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. It imports only ``ai_edge_litert``
(0.2 s start-up), never TensorFlow.
"""
import json
import struct
import sys


def check(data: bytes) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_content=data, num_threads=1)
        interp.allocate_tensors()
    except Exception as e:  # LiteRT's verifier or allocator said no
        return {"ok": False, "error": _first_line(e)}
    try:
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        interp.invoke()
    except Exception as e:  # it allocates but cannot run (e.g. an operand that lacks data): not usable
        return {"ok": False, "error": f"it loads but cannot run: {_first_line(e)}"}
    return {"ok": True, "inputs": len(interp.get_input_details())}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout
    while True:
        head = stdin.read(8)
        if len(head) < 8:
            return
        (n,) = struct.unpack("<Q", head)
        data = stdin.read(n)
        stdout.write(json.dumps(check(data)) + "\n")
        stdout.flush()


if __name__ == "__main__":
    main()
