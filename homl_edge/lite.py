"""``LiteModel``: the bytes of a ``.tflite`` model and the LiteRT interpreter that runs them.

This module never imports TensorFlow: LiteRT (``ai_edge_litert``) alone runs, measures and inspects a model.
Bytes from outside (a file, a buffer) are checked first by a cheap in-process test of the FlatBuffer header and
then in a child process that builds the interpreter, so a malformed model gives a clear error and never crashes
the kernel. Models made elsewhere are taken as they are: a fixed batch (often 1) is run sample by sample, several
inputs are given as a dict or a list, several outputs come back as a dict by name. ``on_micro`` runs the same
bytes in TensorFlow Lite Micro (in the child as well) and says which of its three usual failures happened.
"""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from . import _sandbox
from .errors import HomlEdgeError, InvalidModelFileError, first_line

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


def verify(data: bytes, name: str = "model") -> None:
    """Raise :class:`InvalidModelFileError` unless LiteRT can build an interpreter for ``data``.

    The interpreter is built in a child process, so even bytes that would crash LiteRT only cost an error here.
    """
    check_header(data, name)
    result = _sandbox.check(bytes(data))
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
        return _signature(self.input_details[0])

    @property
    def input_names(self) -> list[str]:
        """Input names, in the order ``predict`` takes a list (signature names where the file has a signature)."""
        return [self._names("input").get(d["index"], d["name"]) for d in self.input_details]

    @property
    def output_names(self) -> list[str]:
        return [self._names("output").get(d["index"], d["name"]) for d in self.output_details]

    def _names(self, kind) -> dict:
        """tensor index -> signature name (a file with exactly one signature), else {}."""
        interp = self.interpreter()
        try:
            sigs = interp.get_signature_list()
            if len(sigs) != 1:
                return {}
            runner = interp.get_signature_runner(next(iter(sigs)))
            details = runner.get_input_details() if kind == "input" else runner.get_output_details()
            return {int(d["index"]): name for name, d in details.items()}
        except Exception:
            return {}

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the file is fixed to (None when its batch dimension is dynamic)."""
        shape = self.input_shape
        return None if not shape or shape[0] == -1 else shape[0]

    def prepare_inputs(self, x) -> list[np.ndarray]:
        """``x`` as one array per input, in ``input_details`` order, each with a batch dimension; a one-line error
        when an input is missing or its shape or dtype does not fit."""
        details = self.input_details
        if len(details) == 1:
            if isinstance(x, dict):
                if len(x) != 1:
                    raise HomlEdgeError(f"the model has 1 input but {len(x)} arrays were given")
                x = next(iter(x.values()))
            arrays = [np.asarray(x)]
        elif isinstance(x, dict):
            names = self.input_names
            raw = [d["name"] for d in details]
            unknown = [k for k in x if k not in names and k not in raw]
            if unknown or len(x) != len(details):
                raise HomlEdgeError(f"the model's inputs are {names}; got {sorted(x)}")
            arrays = [np.asarray(x[n] if n in x else x[r]) for n, r in zip(names, raw)]
        elif isinstance(x, (list, tuple)) and len(x) == len(details):
            arrays = [np.asarray(a) for a in x]
        else:
            raise HomlEdgeError(f"the model has {len(details)} inputs {self.input_names}: pass a dict by name or a "
                                "list in that order")
        out = []
        for a, d in zip(arrays, details):
            want = _signature(d)
            if a.ndim == len(want) - 1:
                a = a[None]
            if a.ndim != len(want) or any(w > 0 and w != g for w, g in zip(want[1:], a.shape[1:])):
                raise HomlEdgeError(f"input {d['name']!r} of shape {tuple(a.shape)} does not fit the model's "
                                    f"input {_shape_str(want)}")
            if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
                raise HomlEdgeError(f"input has dtype {a.dtype}; expected numbers")
            out.append(a)
        if len({len(a) for a in out}) != 1:
            raise HomlEdgeError(f"the inputs have different numbers of samples: {[len(a) for a in out]}")
        return out

    def predict(self, x, batch_size: int = 256):
        """Run ``x`` (batch first) through the model and return float outputs (dequantized where needed).

        A single-output model returns one array; several outputs come back as ``{name: array}``. Several inputs
        are given as a dict by name or a list in :attr:`input_names` order. A file with a dynamic batch is
        resized to run ``batch_size`` samples at once; a file with a fixed batch (often 1, in models made
        elsewhere) is run in chunks of that batch, so N samples always give N rows. Recurrent state (the
        variables of a fused LSTM) is reset before every invoke, as Keras's ``predict`` starts every sample anew.
        """
        inputs = self.prepare_inputs(x)
        n = len(inputs[0])
        fixed = self.fixed_batch
        interp = self.interpreter() if fixed is None else new_interpreter(self._content)
        step = batch_size if fixed is None else fixed
        outs = interp.get_output_details()
        results = [[] for _ in outs]
        current = None
        for start in range(0, n, step):
            chunk = [a[start:start + step] for a in inputs]
            rows = len(chunk[0])
            if fixed is None and current != rows:
                for a, d in zip(chunk, interp.get_input_details()):
                    interp.resize_tensor_input(d["index"], [rows, *d["shape"][1:]], strict=True)
                interp.allocate_tensors()
                current = rows
            elif fixed is not None and rows < fixed:  # the last chunk: pad to the fixed batch, keep its rows
                chunk = [np.concatenate([a, np.zeros((fixed - rows, *a.shape[1:]), a.dtype)]) for a in chunk]
            for a, d in zip(chunk, interp.get_input_details()):
                interp.set_tensor(d["index"], quantize_array(a, d))
            try:
                interp.reset_all_variables()  # a fused LSTM keeps its state in variables: start each batch from 0
                interp.invoke()
            except (RuntimeError, ValueError) as e:
                raise HomlEdgeError(f"LiteRT could not run {self.name}: {first_line(e)[:300]}") from None
            for k, d in enumerate(interp.get_output_details()):
                y = dequantize_array(interp.get_tensor(d["index"]), d)
                if y.ndim == 0 or y.shape[0] != len(chunk[0]):
                    raise HomlEdgeError(f"output {d['name']!r} of {self.name} has shape {tuple(y.shape)}, whose first "
                                        f"dimension is not the batch of {len(chunk[0])}: run it with the LiteRT "
                                        "interpreter yourself (lite.interpreter())")
                results[k].append(y[:rows])
        arrays = [np.concatenate(r, axis=0) for r in results]
        if len(arrays) == 1:
            return arrays[0]
        return dict(zip(self.output_names, arrays))

    def evaluate(self, x, y) -> float:
        """Top-1 accuracy on ``(x, y)`` with integer labels (or one-hot rows)."""
        y = _class_labels(y)
        n = len(self.prepare_inputs(x)[0])
        if len(y) != n:
            raise HomlEdgeError(f"x has {n} samples but y has {len(y)} labels")
        pred = self.predict(x)
        if isinstance(pred, dict):
            raise HomlEdgeError(f"{self.name} has {len(pred)} outputs {list(pred)}: accuracy needs one; take "
                                "lite.predict(x)[name] and compare it yourself")
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
        return collections.Counter(op["op_name"] for op in op_details(self.interpreter()))

    def profile(self) -> dict:
        """What one sample costs, counted from the graph (no timing): ``macs``, the multiply-accumulates of the
        convolutions, fully connected layers, batched matmuls and LSTMs (the usual compute proxy; element-wise ops
        are not counted), and ``activation_bytes``, the bytes of every tensor computed at run time, which is the
        RAM for activations before the runtime's memory planner reuses any of it (an upper bound of the arena)."""
        interp = new_interpreter(self._content, delegates=False)
        details = interp.get_tensor_details()
        shapes = {t["index"]: tuple(int(v) for v in t["shape"]) for t in details}
        dtypes = {t["index"]: np.dtype(t["dtype"]) for t in details}
        ops = op_details(interp)
        produced = {int(i) for op in ops for i in op["outputs"]} | {d["index"] for d in interp.get_input_details()}
        macs = 0
        for op in ops:
            name, ins, out = op["op_name"], [int(i) for i in op["inputs"]], [int(i) for i in op["outputs"]]
            o = shapes.get(out[0], ()) if out else ()
            if name == "CONV_2D" and len(ins) > 1:
                _, kh, kw, cin = shapes[ins[1]]
                macs += int(np.prod(o)) * kh * kw * cin
            elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1:
                _, kh, kw, _ = shapes[ins[1]]
                macs += int(np.prod(o)) * kh * kw
            elif name == "FULLY_CONNECTED" and len(ins) > 1:
                macs += int(np.prod(o)) * shapes[ins[1]][-1]
            elif name == "TRANSPOSE_CONV" and len(ins) > 2:
                cout, kh, kw, _ = shapes[ins[1]]
                macs += int(np.prod(shapes[ins[2]])) * kh * kw * cout
            elif name == "BATCH_MATMUL" and len(ins) > 1:
                macs += int(np.prod(o)) * shapes[ins[0]][-1]
            elif name == "UNIDIRECTIONAL_SEQUENCE_LSTM" and len(ins) > 8:
                batch, steps, n_in = shapes[ins[0]][-3:]
                units = shapes[ins[1]][0]
                macs += batch * steps * 4 * units * (n_in + units)
        act = sum(int(np.prod(shapes[i])) * dtypes[i].itemsize for i in produced if i in shapes)
        return {"macs": int(macs), "activation_bytes": int(act)}

    def builtin_ops(self) -> collections.Counter:
        """The operators stored in the file, before LiteRT hands any of them to a delegate (XNNPACK): what a
        runtime without delegates, such as TensorFlow Lite Micro, has to provide kernels for."""
        return collections.Counter(op["op_name"] for op in op_details(new_interpreter(self._content, delegates=False)))

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

    def on_micro(self, x, y=None, *, arena_size: int | None = None, find_arena: bool = True,
                 timeout_s: float = 300):
        """Run ``x`` in TensorFlow Lite Micro (its reference kernels, as on a Cortex-M), in a child process.

        Returns a :class:`MicroRun`: float outputs, the smallest tensor arena that worked (grown as needed up to
        64 MiB), the flash the model needs, agreement with LiteRT on the same inputs and, with labels ``y``,
        accuracy. When TFLM refuses the model, the error says which: the arena is too small, an op has no Micro
        kernel (named, with its layer), or a tensor type Micro lacks (named).
        """
        inputs = self.prepare_inputs(x)
        details = self.input_details
        q = [quantize_array(a, d) for a, d in zip(inputs, details)]
        outs = self.output_details
        r = _sandbox.run_micro(self._content, q, n_outputs=len(outs), arena_size=arena_size,
                               find_arena=find_arena, timeout=timeout_s)
        if not r.get("ok"):
            raise HomlEdgeError(self._micro_failure(r))
        raw = r["outputs"]
        ref = self._raw_outputs(q)
        floats = [dequantize_array(o, d) for o, d in zip(raw, outs)]
        agree = float(np.mean([(a.reshape(len(a), -1).argmax(-1) == dequantize_array(b, d).reshape(len(b), -1)
                                .argmax(-1)).mean() for a, b, d in zip(floats, ref, outs)]))
        same = float(np.mean([np.all(a.reshape(len(a), -1) == b.reshape(len(b), -1), axis=1).mean()
                              for a, b in zip(raw, ref)]))
        run = MicroRun(outputs=floats[0] if len(floats) == 1 else dict(zip(self.output_names, floats)),
                       n=len(q[0]), flash_bytes=self.size, arena_bytes=r.get("arena_bytes"),
                       arena_tried=r["arena_tried"], argmax_agreement=agree, bit_identical=same)
        if y is not None:
            if len(floats) != 1:
                raise HomlEdgeError(f"{self.name} has {len(floats)} outputs: accuracy needs one")
            y = _class_labels(y)
            run.accuracy = float((floats[0].argmax(-1) == y).mean())
        return run

    def _raw_outputs(self, q):
        """LiteRT's raw (still quantized) outputs for the same quantized inputs, sample by sample like TFLM."""
        interp = new_interpreter(self._content)
        rows = [[] for _ in interp.get_output_details()]
        for i in range(len(q[0])):
            for a, d in zip(q, interp.get_input_details()):
                interp.set_tensor(d["index"], a[i:i + 1].astype(d["dtype"]))
            interp.reset_all_variables()
            interp.invoke()
            for k, d in enumerate(interp.get_output_details()):
                rows[k].append(interp.get_tensor(d["index"])[0].copy())
        return [np.stack(r) for r in rows]

    def _micro_failure(self, r) -> str:
        kind = r.get("kind")
        if kind == "op":
            layers = sorted({_layer_name(t) for t in self._op_outputs(r["what"])} - {""})
            where = f" (from layer {', '.join(repr(l) for l in layers)})" if layers else ""
            return (f"TensorFlow Lite Micro has no kernel for {r['what']}{where}: TFLM has fewer kernels than "
                    "LiteRT; replace that layer with ops TFLM supports")
        if kind == "type":
            return (f"TensorFlow Lite Micro has no kernel for this tensor type: {r['what']}: convert with mode "
                    "'int8-io' (or 'int8'), whose tensors Micro's kernels take")
        if kind == "arena":
            return (f"{self.name} did not fit a {r.get('arena_tried', 0):,}-byte tensor arena (TFLM: "
                    f"{r.get('error', '')[:120]}); pass a larger arena_size")
        if kind == "crash":
            return f"TensorFlow Lite Micro crashed on {self.name} ({r.get('error')})"
        where = f" (op {r['what']} failed to prepare)" if r.get("what") else ""
        return f"TensorFlow Lite Micro could not run {self.name}{where}: {r.get('error')}"

    def _op_outputs(self, op_name: str) -> list[str]:
        interp = self.interpreter()
        names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
        return [names.get(int(i), "") for op in op_details(interp) if op["op_name"] == op_name
                for i in op["outputs"]]

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


class MicroRun:
    """What :meth:`LiteModel.on_micro` measured (``run["arena_bytes"]`` works as well as ``run.arena_bytes``)."""

    FIELDS = ("n", "accuracy", "argmax_agreement", "bit_identical", "arena_bytes", "arena_tried", "flash_bytes")

    def __init__(self, **kw):
        self.accuracy = None
        self.__dict__.update(kw)

    def __getitem__(self, key):
        return getattr(self, key)

    def __contains__(self, key):
        return getattr(self, key, None) is not None

    def keys(self):
        return [f for f in ("outputs", *self.FIELDS) if f in self]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"value": {f: getattr(self, f) for f in self.FIELDS if f in self}})

    def __repr__(self):
        return "MicroRun(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS if f in self) + ")"

    def _repr_html_(self):
        rows = []
        for f in self.FIELDS:
            if f not in self:
                continue
            v = getattr(self, f)
            text = (f"{v:.2%}" if f in ("accuracy", "argmax_agreement", "bit_identical")
                    else f"{v:,} B" if f.endswith("bytes") or f == "arena_tried" else str(v))
            rows.append(f"<tr><th style='text-align:left'>{f.replace('_', ' ')}</th><td>{text}</td></tr>")
        return "<table>" + "".join(rows) + "</table>"


def _layer_name(tensor_name: str) -> str:
    """'model/topk/TopKV2;...' -> 'topk': the Keras layer that produced a TFLite tensor."""
    parts = tensor_name.split(";")[0].split("/")
    return parts[1] if len(parts) > 2 else (parts[0] if parts else "")


def _class_labels(y) -> np.ndarray:
    """Integer labels, from integer labels or one-hot rows."""
    y = np.asarray(y)
    return y.argmax(axis=-1) if y.ndim > 1 else y


def _signature(detail) -> tuple:
    sig = detail.get("shape_signature")
    return tuple(int(s) for s in (sig if sig is not None and len(sig) else detail["shape"]))


# ----------------------------------------------------------------------------------------------- helpers
def op_details(interp) -> list[dict]:
    """Every op of a LiteRT interpreter (name, inputs, outputs): LiteRT's one private API we use, kept here."""
    return interp._get_ops_details()


def new_interpreter(content: bytes, threads: int | None = None, *, delegates: bool = True):
    """A LiteRT interpreter with its tensors allocated (for bytes already verified or made by the converter).

    ``delegates=False``: LiteRT's builtin kernels only, no XNNPACK, so the graph keeps the file's own operators."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from ._tf import quiet

    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with quiet():  # LiteRT announces its XNNPACK delegate on the C stderr
            interp = Interpreter(model_content=content, num_threads=threads, experimental_op_resolver_type=kind)
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
        raise HomlEdgeError(f"{p} exists already; pass overwrite=True to replace it")
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
