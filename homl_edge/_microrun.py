"""Child process that runs a model in TensorFlow Lite Micro, so that a crash in TFLM cannot take the caller down.

``python -m homl_edge._microrun DIR``: reads DIR/model.tflite and DIR/job.json (and DIR/x.npy), writes
DIR/result.json (and DIR/y.npy). Imports only ``tflite_micro`` and numpy (0.2 s start-up).
"""
import contextlib
import json
import os
import sys
from pathlib import Path


def construct(data, arena):
    from tflite_micro.python.tflite_micro import runtime

    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        return runtime.Interpreter.from_bytes(data, arena_size=int(arena))


def _capture_fd2(path):
    """TFLM reports its errors (a missing op kernel, a too-small arena) on the C stderr: keep them in a file."""
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)


def smallest_arena(data, sample, hi):
    def ok(n):
        try:
            interp = construct(data, n)
            interp.set_input(sample, 0)
            interp.invoke()
            return True
        except Exception:
            return False

    if not ok(hi):
        return None
    lo = 0
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        if mid <= lo:
            break
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def main(folder):
    import numpy as np

    folder = Path(folder)
    job = json.loads((folder / "job.json").read_text())
    data = (folder / "model.tflite").read_bytes()
    _capture_fd2(folder / "stderr.txt")
    result = {}
    try:
        x = np.load(folder / "x.npy")
        if job.get("find_arena"):
            result["arena_bytes"] = smallest_arena(data, x[:1], job["arena_size"])
        interp = construct(data, job["arena_size"])
        outs = []
        for sample in x:
            interp.set_input(sample[None], 0)
            interp.invoke()
            outs.append(np.array(interp.get_output(0))[0])
        np.save(folder / "y.npy", np.stack(outs))
        result["ok"] = True
    except Exception as e:
        text = str(e).strip()
        result.update(ok=False, error=(text.splitlines()[0] if text else type(e).__name__)[:400])
    (folder / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
