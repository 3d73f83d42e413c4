"""``LiteModel``: the bytes of a ``.tflite`` model and the LiteRT interpreter that runs them.

This module never imports TensorFlow: LiteRT (``ai_edge_litert``) alone runs, measures and inspects a model.
Bytes from outside (a file, a buffer) are checked first by a cheap in-process test of the FlatBuffer header and
then in a child process that builds the interpreter, so a malformed model gives a clear error and never crashes
the kernel.
"""
from __future__ import annotations

import atexit
import collections
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .errors import HomlEdgeError, InvalidModelFileError

_INT_TYPES = (np.int8, np.uint8, np.int16)


# ----------------------------------------------------------------------------------------------- verification
def check_header(data: bytes, name: str = "model") -> None:
    """The in-process part of the check: a TFLite FlatBuffer starts with a root offset and the identifier TFL3."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidModelFileError(f"{name}: expected the bytes of a .tflite model, got {type(data).__name__}")
    n = len(data)
    if n == 0:
        raise InvalidModelFileError(f"{name} is empty (0 bytes): it is not a .tflite model")
    if n < 16:
        raise InvalidModelFileError(f"{name} is only {n} bytes long: too short for a .tflite model (truncated?)")
    ident = bytes(data[4:8])
    if ident != b"TFL3":
        raise InvalidModelFileError(
            f"{name} is not a TFLite model: its FlatBuffer identifier is {ident!r}, expected b'TFL3' "
            "(is it a Keras/SavedModel file? convert it with he.quantize(model, 'float32'))")
    (root,) = struct.unpack_from("<I", data, 0)
    if root < 8 or root + 4 > n:
        raise InvalidModelFileError(f"{name} is corrupt: its root table offset {root} lies outside the "
                                    f"{n}-byte buffer (truncated or damaged file)")


class _Checker:
    """A long-lived child process running :mod:`homl_edge._litecheck`; restarted after it dies."""

    def __init__(self):
        self._proc = None
        self._lock = threading.Lock()

    def _start(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
        self._proc = subprocess.Popen([sys.executable, "-m", "homl_edge._litecheck"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                      cwd=str(Path(__file__).resolve().parent.parent))

    def check(self, data: bytes, timeout: float = 120.0) -> dict:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            proc = self._proc
            try:
                proc.stdin.write(struct.pack("<Q", len(data)) + bytes(data))
                proc.stdin.flush()
                line = _readline(proc.stdout, timeout)
            except (BrokenPipeError, OSError):
                line = b""
            if line:
                return json.loads(line)
            # the child died (or hung) on these bytes
            try:
                proc.kill()
            except OSError:
                pass
            code = proc.wait()
            self._proc = None
            how = f"signal {-code}" if code and code < 0 else f"exit code {code}"
            return {"ok": False, "crashed": True, "error": f"the LiteRT runtime crashed on it ({how})"}

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None


def _readline(stream, timeout):
    out = []

    def read():
        out.append(stream.readline())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    return out[0] if out else b""


_checker = _Checker()
atexit.register(_checker.close)


def verify(data: bytes, name: str = "model") -> None:
    """Raise :class:`InvalidModelFileError` unless LiteRT can build an interpreter for ``data``.

    The interpreter is built in a child process, so even bytes that would crash LiteRT only cost an error here.
    """
    check_header(data, name)
    result = _checker.check(bytes(data))
    if not result["ok"]:
        raise InvalidModelFileError(f"{name} is not a valid .tflite model: {result['error']}")


# ----------------------------------------------------------------------------------------------- the model
class LiteModel:
    """A ``.tflite`` model in memory, run by the LiteRT interpreter.

    Made by :func:`homl_edge.quantize` (trusted bytes, straight from the converter) or :func:`load_lite`
    (checked first). ``predict`` and ``evaluate`` take float inputs whatever the model's input type: int8/uint8
    inputs and outputs are (de)quantized with the model's own scale and zero point.
    """

    def __init__(self, content: bytes, name: str = "model", meta: dict | None = None, _trusted: bool = False):
        content = bytes(content)
        if not _trusted:
            verify(content, name)
        self._content = content
        self.name = name
        self.meta = dict(meta or {})
        self._interpreters: dict = {}

    # -- bytes
    @property
    def content(self) -> bytes:
        """The raw ``.tflite`` bytes (a FlatBuffer)."""
        return self._content

    @property
    def size(self) -> int:
        """Size of the ``.tflite`` file in bytes."""
        return len(self._content)

    @property
    def gzip_size(self) -> int:
        """Size after gzip -9: what a download or an app bundle really costs; pruned weights show up here."""
        return len(gzip.compress(self._content, compresslevel=9, mtime=0))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._content).hexdigest()

    def save(self, path, overwrite: bool = False) -> Path:
        """Write the model to ``path`` atomically; refuse to replace an existing file unless ``overwrite``."""
        return atomic_write(path, self._content, overwrite=overwrite)

    # -- interpreter
    def interpreter(self, threads: int | None = None):
        """A LiteRT interpreter for this model (one per thread count, reused)."""
        key = threads or 0
        if key not in self._interpreters:
            self._interpreters[key] = new_interpreter(self._content, threads)
        return self._interpreters[key]

    @property
    def input_details(self) -> list:
        return self.interpreter().get_input_details()

    @property
    def output_details(self) -> list:
        return self.interpreter().get_output_details()

    @property
    def input_dtype(self):
        return self.input_details[0]["dtype"]

    @property
    def input_shape(self) -> tuple:
        d = self.input_details[0]
        sig = d.get("shape_signature")
        return tuple(int(s) for s in (sig if sig is not None and len(sig) else d["shape"]))

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Run ``x`` (float, batch first) through the model and return float outputs (dequantized if needed)."""
        x = np.asarray(x)
        if x.ndim == len(self.input_shape) - 1:
            x = x[None]
        self._check_input(x)
        interp = self.interpreter()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        results = []
        current = None
        for start in range(0, len(x), batch_size):
            chunk = x[start:start + batch_size]
            if current != len(chunk):
                try:
                    interp.resize_tensor_input(inp["index"], [len(chunk), *inp["shape"][1:]], strict=False)
                    interp.allocate_tensors()
                    current = len(chunk)
                except Exception:  # a model with a fixed batch of 1: go one by one
                    return self._predict_one_by_one(x)
                inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
            interp.set_tensor(inp["index"], quantize_array(chunk, inp))
            try:
                interp.invoke()
            except (RuntimeError, ValueError) as e:
                raise HomlEdgeError(f"LiteRT could not run {self.name}: {str(e).strip().splitlines()[0][:300]}") \
                    from None
            results.append(dequantize_array(interp.get_tensor(out["index"]), out))
        return np.concatenate(results, axis=0)

    def _predict_one_by_one(self, x):
        interp = new_interpreter(self._content)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        rows = []
        for sample in x:
            interp.set_tensor(inp["index"], quantize_array(sample[None], inp))
            interp.invoke()
            rows.append(dequantize_array(interp.get_tensor(out["index"]), out)[0])
        return np.stack(rows)

    def _check_input(self, x):
        want = self.input_shape
        if x.ndim != len(want) or any(w > 0 and w != g for w, g in zip(want[1:], x.shape[1:])):
            raise HomlEdgeError(f"input of shape {tuple(x.shape)} does not fit the model's input {_shape_str(want)}")
        if not np.issubdtype(x.dtype, np.number):
            raise HomlEdgeError(f"input has dtype {x.dtype}; expected numbers (float32 images)")

    def evaluate(self, x, y) -> float:
        """Top-1 accuracy on ``(x, y)`` with integer labels (or one-hot rows)."""
        y = np.asarray(y)
        if y.ndim > 1:
            y = y.argmax(axis=-1)
        if len(y) != len(x):
            raise HomlEdgeError(f"x has {len(x)} samples but y has {len(y)} labels")
        pred = self.predict(x)
        return float((pred.argmax(axis=-1) == y).mean())

    def benchmark(self, threads: int = 1, runs: int = 200, warmup: int = 20, min_time_s: float = 0.0) -> dict:
        """Latency of one single-sample ``invoke`` after warm-up: median and p90 in milliseconds."""
        interp = new_interpreter(self._content, threads)
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        for _ in range(warmup):
            interp.invoke()
        times = []
        t_end = time.perf_counter() + min_time_s
        while len(times) < runs or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            interp.invoke()
            times.append(time.perf_counter() - t0)
        ms = np.array(times) * 1e3
        return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
                "mean_ms": float(ms.mean()), "runs": len(ms), "threads": threads}

    # -- inspection
    @property
    def ops(self) -> collections.Counter:
        """Histogram of the operators in the model, e.g. ``Counter({'FULLY_CONNECTED': 2, 'CONV_2D': 1})``."""
        return collections.Counter(op["op_name"] for op in self.interpreter()._get_ops_details())

    def tensors(self) -> list[dict]:
        """Every tensor: name, shape, dtype and quantization (scale and zero point; per channel if so)."""
        rows = []
        for d in self.interpreter().get_tensor_details():
            q = d.get("quantization_parameters") or {}
            scales = np.asarray(q.get("scales", []))
            zps = np.asarray(q.get("zero_points", []))
            rows.append({"index": d["index"], "name": d["name"], "shape": tuple(int(s) for s in d["shape"]),
                         "dtype": np.dtype(d["dtype"]).name,
                         "scale": float(scales[0]) if scales.size == 1 else (scales.tolist() if scales.size else None),
                         "zero_point": int(zps[0]) if zps.size == 1 else (zps.tolist() if zps.size else None),
                         "per_channel": bool(scales.size > 1)})
        return rows

    def quantization(self) -> list[dict]:
        """The quantization parameters of the quantized tensors only."""
        return [t for t in self.tensors() if t["scale"] is not None]

    def summary(self, print_fn=print) -> str:
        """A text table of inputs, outputs, ops and size (printed with ``print_fn``; returned too)."""
        lines = [f"LiteModel {self.name!r}: {self.size:,} bytes ({self.gzip_size:,} gzipped)"]
        if self.meta.get("mode"):
            lines[0] += f", mode {self.meta['mode']}"
        for kind, details in (("input", self.input_details), ("output", self.output_details)):
            for d in details:
                q = d.get("quantization", (0.0, 0))
                qs = f"  scale={q[0]:.6g} zero_point={q[1]}" if q and q[0] else ""
                lines.append(f"  {kind:6} {d['name'][:40]:40} {_shape_str(d['shape']):>14} {np.dtype(d['dtype']).name:8}{qs}")
        lines.append("  ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.ops.items())))
        text = "\n".join(lines)
        if print_fn:
            print_fn(text)
        return text

    def on_micro(self, x, y=None, **kwargs) -> dict:
        """Run in TensorFlow Lite Micro (see :func:`homl_edge.micro.run`); with labels ``y``, also accuracy."""
        from . import micro

        report = micro.run(self, x, **kwargs)
        if y is not None:
            y = np.asarray(y)
            y = y.argmax(-1) if y.ndim > 1 else y
            report["accuracy"] = float((report["outputs"].argmax(-1) == y).mean())
        return report

    def __repr__(self):
        mode = f", mode={self.meta['mode']!r}" if self.meta.get("mode") else ""
        return f"<LiteModel {self.name!r}: {self.size:,} bytes{mode}>"

    def _repr_html_(self):
        return ("<pre>" + self.summary(print_fn=None).replace("&", "&amp;").replace("<", "&lt;") + "</pre>")


def load_lite(path, name: str | None = None) -> LiteModel:
    """Load a ``.tflite`` file, verified before any interpreter in this process touches it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise HomlEdgeError(f"no file at {p}: check the path")
    if p.is_dir():
        raise HomlEdgeError(f"{p} is a folder; expected a .tflite file")
    data = p.read_bytes()
    return LiteModel(data, name=name or p.stem, meta={"path": str(p)})


# ----------------------------------------------------------------------------------------------- helpers
def new_interpreter(content: bytes, threads: int | None = None):
    """A LiteRT interpreter with its tensors allocated (for bytes already verified or made by the converter)."""
    from ai_edge_litert.interpreter import Interpreter

    from ._tf import quiet

    try:
        with quiet():  # LiteRT announces its XNNPACK delegate on the C stderr
            interp = Interpreter(model_content=content, num_threads=threads)
            interp.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        text = " ".join(str(e).split())
        raise HomlEdgeError(f"LiteRT cannot prepare this model: {text[:300]}") from None
    return interp


def quantize_array(x, detail) -> np.ndarray:
    """Float input to the tensor's dtype, with its scale/zero point when it is an integer tensor."""
    dtype = detail["dtype"]
    x = np.asarray(x)
    if np.issubdtype(dtype, np.integer):
        scale, zp = detail["quantization"]
        if scale:
            info = np.iinfo(dtype)
            return np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)
        return x.astype(dtype)
    return x.astype(dtype)


def dequantize_array(q, detail) -> np.ndarray:
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer):
        scale, zp = detail["quantization"]
        if scale:
            return ((q.astype(np.float32) - zp) * scale).astype(np.float32)
    return np.asarray(q, dtype=np.float32)


def atomic_write(path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename: all or nothing."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise HomlEdgeError(f"{p} is a folder; give a file name such as {p / 'model.tflite'}")
    if p.exists() and not overwrite:
        raise HomlEdgeError(f"{p} exists already; pass overwrite=True (CLI: --force) to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise HomlEdgeError(f"the folder {parent} does not exist: create it first")
    if not os.access(parent, os.W_OK):
        raise HomlEdgeError(f"cannot write into {parent}: permission denied")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=parent)
    except OSError as e:
        raise HomlEdgeError(f"cannot write into {parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if int(s) < 0 else str(int(s)) for s in shape) + ")"
