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
import collections.abc
import gzip
import hashlib
import json
import os
import re
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from . import _sandbox
from ._files import atomic_write
from ._result import ModelResult, Record, result
from ._units import format_ms
from .errors import HomlEdgeError, InvalidModelFileError, first_line

_INT_TYPES = (np.int8, np.uint8, np.int16)
KEEP_SAMPLES = 64  # real inputs a LiteModel keeps for benchmark() and throughput()
SAMPLES = 32  # different inputs benchmark() cycles through


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


def verify(data: bytes, name: str = "model", tolerate: bool = False) -> str | None:
    """Raise :class:`InvalidModelFileError` unless LiteRT can build an interpreter for ``data``.

    The interpreter is built in a child process, so even bytes that would crash LiteRT only cost an error here.
    ``tolerate=True``: a well-formed file that LiteRT refuses for a reason that does not make it malformed (a
    custom op it cannot resolve, the newer rule on ``quantized_dimension``) is accepted, and the rule returned:
    it can then be inspected and run in TensorFlow Lite Micro, not in LiteRT.
    """
    from . import _flatbuffer

    check_header(data, name)
    check_variables(data, name)
    try:  # a type LiteRT's kernel reads unchecked: never given to LiteRT (it may read past the tensor)
        mismatch = _flatbuffer.litert_type_mismatch(_flatbuffer.parse(data, name))
    except InvalidModelFileError:
        mismatch = None  # not readable here: LiteRT's own verifier gives the reason
    if mismatch:
        if tolerate:
            return mismatch
        raise InvalidModelFileError(f"{name}: {mismatch}")
    result = _sandbox.check(bytes(data))
    if result["ok"]:
        return None
    rule = litert_rule(result["error"]) if tolerate else None
    if rule:
        _flatbuffer.parse(data, name)  # well formed, or a one-line error
        return rule
    if result.get("crashed"):
        raise InvalidModelFileError(f"{name}: LiteRT {result['error'].replace('the runtime ', '')} while loading "
                                    f"it; {_known(data)}")
    raise InvalidModelFileError(f"{name} is not a valid .tflite model: {result['error']}")


def litert_rule(error: str) -> str | None:
    """The LiteRT refusals that leave a file usable elsewhere (TFLM), said as the rule LiteRT applied."""
    import re

    m = re.search(r"unresolved custom op: (\S+?)\.?(?:\s|$)", error)
    if m:
        return f"LiteRT has no kernel for the custom op {m.group(1)} (LiteRT runs only ops it can resolve)"
    m = re.search(r"(quantized_dimension must be in range \[0, \d+\)\. Was \d+\.)(Tensor \d+)?", error)
    if m:
        return (f"LiteRT's verifier requires a tensor's quantized_dimension to be below its rank, a rule newer than "
                f"this file ({m.group(1)[:-1]}{' for ' + m.group(2).lower() if m.group(2) else ''})")
    return None


def _known(data: bytes) -> str:
    """What the FlatBuffer says about a model a runtime crashed on: its ops and tensor types."""
    from . import _flatbuffer

    try:
        model = _flatbuffer.parse(data)
    except InvalidModelFileError:
        return "the file is not a well-formed FlatBuffer either"
    ops = _flatbuffer.ops(model)
    ts = _flatbuffer.tensors(model)
    io = _flatbuffer.io_details(model, "input") + _flatbuffer.io_details(model, "output")
    types = collections.Counter(t["dtype"] for t in ts)
    state = sum(t["variable"] for t in ts)
    roles = _flatbuffer.op_roles(model)  # ops whose kernels read tensors by role: which op, which types
    return ("what the file holds: " + ", ".join(f"{k} x{v}" for k, v in ops.most_common(6))
            + f"; tensors {', '.join(f'{k} x{v}' for k, v in types.most_common())}"
            + f"; inputs/outputs {', '.join(np.dtype(d['dtype']).name for d in io)}"
            + (f"; {state} state (variable) tensors" if state else "")
            + "".join(f"; op {k} ({op}): {_flatbuffer.describe_roles(r)}" for k, op, r in roles[:3]))


def check_variables(data: bytes, name: str = "model") -> None:
    """Refuse a file that reads resource variables it never assigns: its weights were left outside the file
    (e.g. ``from_concrete_functions`` on a traced Keras 3 model), LiteRT runs it, and every output is NaN."""
    from . import _flatbuffer

    try:
        reads = _flatbuffer.unassigned_variables(_flatbuffer.parse(data, name))
    except InvalidModelFileError:
        return  # not readable here: LiteRT's own verifier gives the reason
    if reads:
        found = ", ".join(f"{k} x{v}" for k, v in sorted(reads.items()))
        raise InvalidModelFileError(
            f"{name} reads variables it never assigns ({found}, no ASSIGN_VARIABLE): its weights are not in the "
            "file and every output would be NaN; convert from the Keras model (he.quantize(model, 'float32')), or "
            "freeze the variables before converting")


# ----------------------------------------------------------------------------------------------- the model
class LiteModel:
    """A ``.tflite`` model in memory, run by the LiteRT interpreter.

    Made by :func:`homl_edge.quantize` (trusted bytes, straight from the converter) or :func:`load_lite`
    (checked first). ``predict`` and ``evaluate`` take float inputs whatever the model's input type: int8/uint8
    inputs and outputs are (de)quantized with the model's own scale and zero point.
    """

    def __init__(self, content: bytes, name: str = "model", meta: dict | None = None, _trusted: bool = False):
        content = bytes(content)
        refused = None if _trusted else verify(content, name, tolerate=True)
        self._content = content
        self.name = name
        self.meta = dict(meta or {})
        self._litert_refused = refused  # the rule LiteRT applied to a file it will not run (TFLM still may)
        if refused:
            self.meta["litert_refused"] = refused
        self._interpreters: dict = {}
        self._samples = None  # a few real inputs for benchmark(): see keep_samples
        self._samples_source = ""

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
        if getattr(self, "_litert_refused", None):
            raise HomlEdgeError(f"LiteRT will not run {self.name}: {self._litert_refused}; inspect it (lite.ops, "
                                "lite.tensors(), lite.summary()) or run it in TensorFlow Lite Micro (lite.on_micro)")
        key = threads or 0
        if key not in self._interpreters:
            self._interpreters[key] = new_interpreter(self._content, threads)
        return self._interpreters[key]

    def _flatbuffer(self):
        from . import _flatbuffer

        return _flatbuffer.parse(self._content, self.name)

    @property
    def input_details(self) -> list:
        if getattr(self, "_litert_refused", None):
            from . import _flatbuffer

            return _flatbuffer.io_details(self._flatbuffer(), "input")
        return self.interpreter().get_input_details()

    @property
    def output_details(self) -> list:
        if getattr(self, "_litert_refused", None):
            from . import _flatbuffer

            return _flatbuffer.io_details(self._flatbuffer(), "output")
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
        """Output names in the order ``predict`` returns them: by name, numbers in numeric order. Keras 3 names a
        list's outputs ``output_0``, ``output_1``, ... ``output_10`` (Keras's order, which the file's own tensor order
        is not); a tf_keras model's are its output layers' names."""
        return sorted(self._file_output_names(), key=_natural)

    def _file_output_names(self) -> list[str]:
        """Output names in ``output_details`` order (the file's)."""
        return [self._names("output").get(d["index"], d["name"]) for d in self.output_details]

    def _by_name(self, arrays, names: list[str]) -> dict:
        """``{name: array}`` for arrays in ``output_details`` order, ``names`` theirs (:meth:`_file_output_names`),
        in :attr:`output_names` order."""
        return {n: arrays[i] for i, n in sorted(enumerate(names), key=lambda p: _natural(p[1]))}

    def _names(self, kind) -> dict:
        """tensor index -> signature name (a file with exactly one signature), else {}."""
        if getattr(self, "_litert_refused", None):  # the same, read from the file's SignatureDefs
            from . import _flatbuffer

            sigs = self._flatbuffer().signatureDefs or []
            maps = (sigs[0].inputs if kind == "input" else sigs[0].outputs) if len(sigs) == 1 else None
            return {int(m.tensorIndex): _flatbuffer._text(m.name) for m in (maps or [])}
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
            alike = collections.Counter((_signature(d)[1:], np.dtype(d["dtype"]).name) for d in details)
            if max(alike.values()) > 1:  # a list in another order would run, silently wrong
                raise HomlEdgeError(f"the model's inputs {self.input_names} include inputs of the same shape and "
                                    "type: pass a dict by name (a .tflite file does not keep the order of a Keras "
                                    "model's inputs, so a list could swap them unnoticed)")
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
                hint = (f" (a list is taken in input_names order {self.input_names}: pass a dict by name)"
                        if len(details) > 1 and not isinstance(x, dict) else "")
                raise HomlEdgeError(f"input {d['name']!r} of shape {tuple(a.shape)} does not fit the model's "
                                    f"input {_shape_str(want)}{hint}")
            if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
                raise HomlEdgeError(f"input has dtype {a.dtype}; expected numbers")
            out.append(a)
        if len({len(a) for a in out}) != 1:
            raise HomlEdgeError(f"the inputs have different numbers of samples: {[len(a) for a in out]}")
        return out

    def predict(self, x, batch_size: int = 256):
        """Run ``x`` (batch first) through the model and return float outputs (dequantized where needed).

        A single-output model returns one array; several outputs come back as ``{name: array}`` in
        :attr:`output_names` order (Keras's order for a Keras 3 list). Several inputs are given as a dict by name,
        or a list in :attr:`input_names` order where no two inputs share shape and type (the file does not keep a
        Keras model's input order, and a swap of alike inputs would run unnoticed). A file with a dynamic batch is
        resized to run ``batch_size`` samples at once; a file with a fixed batch (often 1, in models made
        elsewhere) is run in chunks of that batch, so N samples always give N rows. Recurrent state (the
        variables of a fused LSTM) is reset before every invoke, as Keras's ``predict`` starts every sample anew.
        """
        inputs = self.prepare_inputs(x)
        n = len(inputs[0])
        fixed = self.fixed_batch
        if fixed is not None and getattr(self, "_litert_refused", None):
            self.interpreter()  # raises: LiteRT will not run it (a fixed batch takes a fresh interpreter below)
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
        names = self._file_output_names()
        check_finite(self.name, "LiteRT", arrays, names, inputs)
        if len(arrays) == 1:
            return arrays[0]
        return self._by_name(arrays, names)

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
        if pred.ndim < 2 or pred.shape[-1] < 2:  # argmax of one value is always 0: a silently perfect score
            raise HomlEdgeError(f"{self.name} gives one value per sample (output shape {pred.shape[1:]}), not a score "
                                "per class: top-1 accuracy would always pick it; for a regression (or a one-unit "
                                "sigmoid) compare lite.predict(x) with y yourself")
        if self._samples is None:
            self.keep_samples(x, "evaluation data")
        return float((pred.argmax(axis=-1) == y).mean())

    def keep_samples(self, x, source: str) -> None:
        """Keep a few real inputs (at most 64 rows) for :meth:`benchmark` and :meth:`throughput`, saying where they
        came from ("calibration data", "evaluation data"). ``quantize(..., data=)`` and ``evaluate`` call it."""
        arrays = x if isinstance(x, _Prepared) else self.prepare_inputs(x)
        self._samples = _Prepared(np.array(a[:KEEP_SAMPLES], dtype=np.float32 if a.dtype.kind == "f" else a.dtype)
                         for a in arrays)
        self._samples_source = str(source)

    def benchmark(self, x=None, threads: int = 1, runs: int = 200, warmup: int = 20, min_time_s: float = 0.0, *,
                  rounds: int = 1, samples: int = SAMPLES, seed: int = 0, cold_start: bool = True) -> "Latency":
        """Latency of one ``invoke`` on real inputs: median and p90 in milliseconds, plus how it was measured.

        Inputs, in this order: the samples ``x`` given; else the calibration or evaluation data this model was
        made or checked with (kept by ``quantize(..., data=)`` and ``evaluate``); else a seeded random normal sample
        matching the input's dtype and quantization (said in ``note``). Never zeros: LiteRT's kernels take
        shortcuts on all-zero input. Up to ``samples`` different inputs are cycled, one per invoke (a batch of
        the file's fixed size, else one sample). ``warmup`` untimed invokes precede each of ``rounds`` rounds of
        ``runs`` timed invokes; ``median_ms`` is the best round's median, ``spread_ms`` the range of the round
        medians. ``cold_start_ms``: bytes to interpreter to first result. An integer ``x`` is taken as
        ``threads`` (the old signature ``benchmark(threads)``). Compare several models with
        :func:`benchmark_many`, which interleaves their rounds.
        """
        if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            x, threads = None, int(x)
        return benchmark_many({self.name: self}, x, threads=threads, runs=runs, warmup=warmup, rounds=rounds,
                              min_time_s=min_time_s, samples=samples, seed=seed,
                              cold_start=cold_start)[self.name]

    def throughput(self, x=None, batch_sizes=(1, 8, 32, 128), threads=(1, 2), processes=(1,), *,
                   seconds: float = 0.5, seed: int = 0):
        """Samples per second and latency per batch, for every batch size x threads x worker processes.

        ``x``: real inputs (else the kept calibration/evaluation data, else a seeded random sample, as in
        :meth:`benchmark`). The file is resized only where its batch dimension is free (``shape_signature[0] ==
        -1``); for a fixed-batch file the other batch sizes get a row saying so. ``processes > 1`` runs that many
        worker processes at once (each its own interpreter, LiteRT only, never TensorFlow) for ``seconds`` and
        adds their samples: what more serving processes buy on this CPU. Returns a :class:`~homl_edge.report.Table`
        (``samples_per_s``, ``latency_ms`` per batch, ``ms_per_sample``).
        """
        from ._table import Table

        for name, v in (("batch_sizes", batch_sizes), ("threads", threads), ("processes", processes)):
            if isinstance(v, (int, np.integer)):
                v = (int(v),)
            if not len(v) or any(int(k) < 1 for k in v):
                raise HomlEdgeError(f"{name} takes positive integers, e.g. (1, 2); got {v!r}")
        as_tuple = lambda v: (int(v),) if isinstance(v, (int, np.integer)) else tuple(int(k) for k in v)  # noqa: E731
        rows = throughput_rows(self, x, as_tuple(batch_sizes), as_tuple(threads), as_tuple(processes),
                               seconds=seconds, seed=seed)
        return Table(rows).set_index(["batch", "threads", "processes"])

    def op_times(self, x=None, *, threads: int = 1, runs: int = 50, rounds: int = 3, seed: int = 0):
        """Where the time goes: each op type's share of one invoke, as a ``Table`` sorted by time.

        LiteRT's Python interpreter exposes no op profiler, so the model is cut after each op of its main graph
        (the same file with the ops after it removed and that op's outputs made the graph's outputs) and every cut
        is timed on the same real inputs in interleaved rounds (as :func:`benchmark_many`); an op's time is the
        difference between its cut and the previous one (never below 0). Columns: ``ops`` (how many), ``time_ms``,
        ``share`` of the sum of those times (``attrs["total_ms"]``: the whole model's median). E.g. a full-int8 LSTM: UNIDIRECTIONAL_SEQUENCE_LSTM, 0.9 of the time.
        """
        from ._table import Table

        if getattr(self, "_litert_refused", None):
            self.interpreter()  # raises: LiteRT will not run it
        ops = op_details(new_interpreter(self._content, delegates=False))
        if not ops:
            raise HomlEdgeError(f"{self.name} has no operators to time")
        arrays, source, note = self.benchmark_inputs(x, seed=seed)
        cuts = {}
        for k in range(1, len(ops) + 1):
            try:
                cut = LiteModel(_cut_after(self._content, k), name=f"{self.name}[:{k}]", _trusted=True)
                _Runner(cut, arrays, None, threads).start()  # a cut LiteRT cannot run (a constant output) is skipped
            except Exception:
                continue
            cut._samples, cut._samples_source = _Prepared(arrays), source
            cuts[k] = cut
        if not cuts:
            raise HomlEdgeError(f"{self.name} could not be cut into runnable parts: no time per op")
        lat = benchmark_many({str(k): c for k, c in cuts.items()}, None, threads=threads, runs=runs, rounds=rounds,
                             cold_start=False)
        total = lat[str(max(cuts))]["median_ms"]
        times = collections.Counter()
        counts = collections.Counter()
        prev = 0.0
        for k in sorted(cuts):
            t = lat[str(k)]["median_ms"]
            name = ops[k - 1]["op_name"]
            times[name] += max(0.0, t - prev)
            counts[name] += 1
            prev = max(prev, t)
        for k in range(1, len(ops) + 1):  # ops whose cut could not run are counted with the next cut's op
            if k not in cuts:
                counts[ops[k - 1]["op_name"]] += 1
        whole = sum(times.values())
        rows = [{"op": n, "ops": counts[n], "time_ms": times[n], "share": times[n] / whole if whole else 0.0}
                for n in counts]
        t = Table(rows).sort_values("time_ms", ascending=False).set_index("op")
        t.attrs.update(total_ms=total, input=source, note=note)
        return t

    def benchmark_inputs(self, x=None, samples: int = SAMPLES, seed: int = 0) -> tuple[list, str, str]:
        """The float inputs :meth:`benchmark` times (one array per input, at most ``samples`` rows), their source
        and a note ("" unless they are random)."""
        if x is not None:
            arrays, source = self.prepare_inputs(x), "given samples"
        elif getattr(self, "_samples", None) is not None:
            arrays, source = self._samples, self._samples_source
        else:
            arrays = random_inputs(self.input_details, max(samples, self.fixed_batch or 1), seed)
            return arrays, f"random normal (seed {seed})", (
                "no real inputs: timed on a seeded random normal sample; pass x=... (a few real inputs) for a "
                "figure you can trust")
        return [a[:max(samples, self.fixed_batch or 1)] for a in arrays], source, ""

    # -- inspection
    @property
    def ops(self) -> collections.Counter:
        """Histogram of the operators in the model, e.g. ``Counter({'FULLY_CONNECTED': 2, 'CONV_2D': 1})``."""
        if getattr(self, "_litert_refused", None):  # read from the file itself: custom ops by their name
            from . import _flatbuffer

            return _flatbuffer.ops(self._flatbuffer(), 0)
        return collections.Counter(op["op_name"] for op in op_details(self.interpreter()))

    def profile(self) -> Profile:
        """What one sample costs, counted from the graph (no timing), as a :class:`Profile` (a read-only mapping,
        ``p["macs"]`` as before): ``macs``, the multiply-accumulates of the
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
        return Profile(macs=int(macs), activation_bytes=int(act))

    def builtin_ops(self) -> collections.Counter:
        """The operators stored in the file, before LiteRT hands any of them to a delegate (XNNPACK): what a
        runtime without delegates, such as TensorFlow Lite Micro, has to provide kernels for."""
        if getattr(self, "_litert_refused", None):
            return self.ops
        return collections.Counter(op["op_name"] for op in op_details(new_interpreter(self._content, delegates=False)))

    def tensors(self) -> list[dict]:
        """Every tensor: name, shape, dtype and quantization (scale and zero point; per channel if so)."""
        if getattr(self, "_litert_refused", None):
            from . import _flatbuffer

            keys = ("index", "name", "shape", "dtype", "scale", "zero_point", "per_channel")
            return [{k: t[k] for k in keys} for t in _flatbuffer.tensors(self._flatbuffer())]
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
        if self.meta.get("changed") is not None:
            lines.append("  quantized: " + ", ".join(f"{r['layer'] or r['tensor'][:30]} ({r['op']}) {r['from']}->"
                                                     f"{r['to']}" for r in self.meta["changed"]))
            if self.meta.get("kept"):
                lines.append("  kept in float: " + ", ".join(f"{r['layer'] or r['tensor'][:30]} ({r['op']})"
                                                             for r in self.meta["kept"]))
        if self.meta.get("warning"):
            lines.append(f"  warning: {self.meta['warning']}")
        if self.meta.get("litert_refused"):
            lines.append(f"  LiteRT will not run it: {self.meta['litert_refused']} (TFLM may: lite.on_micro)")
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
            raise HomlEdgeError(self._micro_failure(r), param="arena_size")
        raw = r["outputs"]
        names = self._file_output_names()
        if getattr(self, "_litert_refused", None):  # LiteRT will not run it: TFLM's answers stand alone
            floats = [dequantize_array(o, d) for o, d in zip(raw, outs)]
            check_finite(self.name, "TensorFlow Lite Micro", floats, names, inputs)
            accuracy = None
            if y is not None:
                if len(floats) != 1:
                    raise HomlEdgeError(f"{self.name} has {len(floats)} outputs: accuracy needs one")
                accuracy = float((floats[0].argmax(-1) == _class_labels(y)).mean())
            return MicroRun(outputs=floats[0] if len(floats) == 1 else self._by_name(floats, names),
                            n=len(q[0]), flash_bytes=self.size, arena_bytes=r.get("arena_bytes"),
                            arena_tried=r["arena_tried"], argmax_agreement=None, bit_identical=None,
                            compared_with=f"nothing: {self._litert_refused}", accuracy=accuracy)
        ref = self._raw_outputs(q)
        for name, a, b in zip(names, raw, ref):  # shapes first: numpy would broadcast a mismatch
            if a.shape != b.shape:
                raise HomlEdgeError(f"{self.name}: TensorFlow Lite Micro gave output {name!r} the shape "
                                    f"{tuple(a.shape)} where LiteRT computes {tuple(b.shape)} for the same inputs "
                                    "(the file's tensor shapes contradict its ops): no comparison is possible")
        if len(raw) != len(ref):
            raise HomlEdgeError(f"{self.name}: TensorFlow Lite Micro gave {len(raw)} outputs, LiteRT {len(ref)}")
        floats = [dequantize_array(o, d) for o, d in zip(raw, outs)]
        check_finite(self.name, "TensorFlow Lite Micro", floats, names, inputs)
        pairs = [(a.reshape(len(a), -1), dequantize_array(b, d).reshape(len(b), -1))
                 for a, b, d in zip(floats, ref, outs)]
        classes = [(a, b) for a, b in pairs if a.shape[1] > 1]  # argmax means nothing on a one-unit output
        agree = float(np.mean([(a.argmax(-1) == b.argmax(-1)).mean() for a, b in classes])) if classes else None
        same = float(np.mean([np.all(a.reshape(len(a), -1) == b.reshape(len(b), -1), axis=1).mean()
                              for a, b in zip(raw, ref)]))
        accuracy = None
        if y is not None:
            if len(floats) != 1:
                raise HomlEdgeError(f"{self.name} has {len(floats)} outputs: accuracy needs one")
            y = _class_labels(y)
            accuracy = float((floats[0].argmax(-1) == y).mean())
        return MicroRun(outputs=floats[0] if len(floats) == 1 else self._by_name(floats, names),
                        n=len(q[0]), flash_bytes=self.size, arena_bytes=r.get("arena_bytes"),
                        arena_tried=r["arena_tried"], argmax_agreement=agree, bit_identical=same,
                        max_abs_diff=max(float(np.abs(a - b).max()) if a.size else 0.0 for a, b in pairs),
                        accuracy=accuracy)

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
                    f"{r.get('error', '')[:120]}); pass a larger {{arena_size}}")
        if kind == "crash":
            return f"TensorFlow Lite Micro crashed on {self.name} ({r.get('error')}); {_known(self._content)}"
        where = f" (op {r['what']} failed to prepare)" if r.get("what") else ""
        return f"TensorFlow Lite Micro could not run {self.name}{where}: {r.get('error')}"

    def _op_outputs(self, op_name: str) -> list[str]:
        if getattr(self, "_litert_refused", None):
            from . import _flatbuffer

            fbm = self._flatbuffer()
            sg = fbm.subgraphs[0]
            return [_flatbuffer._text(sg.tensors[int(i)].name) for op in (sg.operators or [])
                    if _flatbuffer.op_name(fbm, op.opcodeIndex) == op_name for i in op.outputs]
        interp = self.interpreter()
        names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
        return [names.get(int(i), "") for op in op_details(interp) if op["op_name"] == op_name
                for i in op["outputs"]]

    def __repr__(self):
        mode = f", mode={self.meta['mode']!r}" if self.meta.get("mode") else ""
        changed = self.meta.get("changed")
        if changed is not None:  # a re-quantization: what changed precision, what stayed, and any warning
            mode += f", {len(changed)} weight tensors quantized, {len(self.meta.get('kept') or [])} kept in float"
        if self.meta.get("warning"):
            mode += f"; warning: {self.meta['warning']}"
        return f"<LiteModel {self.name!r}: {self.size:,} bytes{mode}>"

    def _repr_html_(self):
        return ("<pre>" + self.summary(print_fn=None).replace("&", "&amp;").replace("<", "&lt;") + "</pre>")


def require_lite(source, what: str, *, paths: bool = False) -> LiteModel:
    """The ``.tflite`` a call that takes one (``what`` names it in the message) is given: a LiteModel as it is; a
    result that made one (``optimize``'s :class:`~homl_edge.pipeline.Optimized`) its ``.lite``, the file it made;
    with ``paths=True`` a path, loaded and verified by :func:`load_lite`. Anything else is refused in one line: a
    result that holds only a Keras model (pruning, clustering, QAT) or a Keras model is to be converted first."""
    if isinstance(source, LiteModel):
        return source
    if isinstance(source, ModelResult):
        made = getattr(source, "lite", None)
        if isinstance(made, LiteModel):
            return made
        raise HomlEdgeError(f"{what} takes a .tflite model; this {type(source).__name__} holds a Keras model "
                            f"(its .model): convert it first, e.g. he.quantize(result, 'int8', data=x[:100])")
    if paths and isinstance(source, (str, Path)):
        return load_lite(source)
    kind = type(source).__name__
    keras = type(source).__module__.split(".")[0] in ("keras", "tf_keras", "tensorflow")
    raise HomlEdgeError(f"{what} takes a LiteModel{' or a .tflite path' if paths else ''}, got {kind}"
                        + (": convert a Keras model first, e.g. he.quantize(model, 'int8', data=x[:100])" if keras
                           else ": make one with he.quantize(model, mode) or load one with he.load_lite(path)"))


def load_lite(path, name: str | None = None) -> LiteModel:
    """Load a ``.tflite`` file, verified before any interpreter in this process touches it. A LiteModel is
    returned as it is, and a result that made one (``optimize``'s) gives its ``.lite``."""
    if isinstance(path, (LiteModel, ModelResult)):
        return require_lite(path, "load_lite")
    if not isinstance(path, (str, os.PathLike)):
        raise HomlEdgeError(f"load_lite takes the path of a .tflite file, got {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.exists():
        raise HomlEdgeError(f"no file at {p}: check the path")
    if p.is_dir():
        raise HomlEdgeError(f"{p} is a folder; expected a .tflite file")
    if not p.is_file():  # /dev/zero never ends, a FIFO blocks: only a regular file has a size to read
        raise HomlEdgeError(f"{p} is not a regular file (a device, pipe or socket): give a .tflite file")
    data = p.read_bytes()
    return LiteModel(data, name=name or p.stem, meta={"path": str(p)})


# ----------------------------------------------------------------------------------------------- timing
class _Prepared(list):
    """Inputs already split one array per input (what ``prepare_inputs`` returns), kept by ``keep_samples``."""


@result
class Latency(Record):
    """What :meth:`LiteModel.benchmark` measured (a frozen record, also a read-only mapping: ``lat["median_ms"]``,
    ``dict(lat)``): the best round's median and p90 in ms, the mean, how it was measured (``runs``, ``threads``,
    ``rounds``, ``round_medians_ms``, ``spread_ms``, ``warmup``), the cold start (bytes to first result, None when
    not measured) and the inputs (``input``, ``samples`` different batches of ``batch``; ``note`` when random).
    Its repr is one line in µs or ms."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    runs: int
    threads: int
    rounds: int
    round_medians_ms: list
    spread_ms: float
    warmup: int
    cold_start_ms: float | None
    input: str
    samples: int
    batch: int
    note: str

    def __repr__(self):
        spread = f" ± {format_ms(self['spread_ms'] / 2)}" if self.get("rounds", 1) > 1 else ""
        cold = f", cold start {format_ms(self['cold_start_ms'])}" if self.get("cold_start_ms") is not None else ""
        rounds = f"best of {self['rounds']} rounds of {self['runs']}" if self.get("rounds", 1) > 1 else \
            f"{self['runs']} runs"
        text = (f"median {format_ms(self['median_ms'])}{spread} (p90 {format_ms(self['p90_ms'])}; {rounds}, "
                f"{self['warmup']} warm-up invokes each; {self['threads']} thread{'s' * (self['threads'] != 1)})"
                f"{cold}; input: {self['input']}, {self['samples']} different batch{'es' * (self['samples'] != 1)}"
                f" of {self['batch']}")
        return text + (f" — {self['note']}" if self.get("note") else "")

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


@result
class Profile(Record):
    """What one sample of a model costs, counted from its graph by :meth:`LiteModel.profile` (no timing): the
    multiply-accumulates of its convolutions, fully connected layers, batched matmuls and LSTMs, and the bytes of
    every tensor computed at run time (an upper bound of the activation arena). A read-only mapping too."""

    macs: int
    activation_bytes: int


def random_inputs(details, n: int, seed: int = 0) -> list[np.ndarray]:
    """A seeded random normal sample of ``n`` rows per input, as floats the model takes: normal (0, 1) for float
    inputs; for quantized integer inputs, normal over the representable range (centre, a sixth of it as the
    standard deviation); small non-negative integers for plain integer inputs (ids, counts)."""
    rng = np.random.default_rng(seed)
    out = []
    for d in details:
        shape = [n] + [max(int(s), 1) for s in _signature(d)[1:]]
        dtype = np.dtype(d["dtype"])
        if dtype == np.bool_:
            out.append(rng.random(shape) < 0.5)
        elif dtype.kind in "iu":
            scale, zp = d.get("quantization", (0.0, 0)) or (0.0, 0)
            info = np.iinfo(dtype)
            if scale:
                lo, hi = (info.min - zp) * scale, (info.max - zp) * scale
                out.append(rng.normal((lo + hi) / 2, (hi - lo) / 6, shape).astype(np.float32))
            else:
                out.append(np.minimum(np.abs(np.round(rng.normal(0, 2, shape))), info.max).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out


class _Runner:
    """One interpreter at one batch size, fed a cycle of different pre-quantized input batches."""

    def __init__(self, lite: LiteModel, arrays: list, batch: int | None, threads: int):
        self.lite, self.threads = lite, threads
        details = lite.input_details
        fixed = lite.fixed_batch
        sig_free = all(_signature(d)[0] == -1 for d in details) if details else False
        self.batch = fixed if fixed is not None or not sig_free else (batch or 1)
        if batch and batch != self.batch:
            raise HomlEdgeError(f"{lite.name} has a fixed batch of {self.batch} in the file: it cannot run batches "
                                f"of {batch}")
        n = len(arrays[0])
        reps = -(-self.batch // n) if n < self.batch else 1
        arrays = [np.concatenate([a] * reps) if reps > 1 else a for a in arrays]
        n = len(arrays[0])
        self.groups = [[quantize_array(a[i:i + self.batch], d) for a, d in zip(arrays, details)]
                       for i in range(0, n - self.batch + 1, self.batch)]
        self.cold_ms = None
        self.interp = None

    def start(self):
        """Bytes -> interpreter -> first result, timed (the cold start)."""
        t0 = time.perf_counter()
        interp = new_interpreter(self.lite.content, self.threads)
        if any(int(d["shape"][0]) != self.batch for d in interp.get_input_details()):
            for d in interp.get_input_details():
                interp.resize_tensor_input(d["index"], [self.batch, *d["shape"][1:]], strict=True)
            interp.allocate_tensors()
        self.inputs = [d["index"] for d in interp.get_input_details()]
        self.interp, self.k = interp, 0
        self._feed()
        try:
            interp.invoke()
        except RuntimeError as e:
            raise self._failed(e) from None
        self.cold_ms = (time.perf_counter() - t0) * 1e3
        return self

    def _failed(self, e: RuntimeError) -> HomlEdgeError:
        """One line instead of LiteRT's traceback, e.g. for a GATHER given ids out of range."""
        text = " ".join(str(e).split())[:240]
        return HomlEdgeError(f"LiteRT could not run {self.lite.name} on the inputs it was to be timed on: {text}; "
                             "pass x=... (a few real inputs that fit the model: a random sample is not one for every "
                             "model, e.g. token ids for an Embedding)")

    def _feed(self):
        group = self.groups[self.k % len(self.groups)]
        self.k += 1
        for idx, a in zip(self.inputs, group):
            self.interp.set_tensor(idx, a)
        self.interp.reset_all_variables()

    def run(self, runs: int, warmup: int = 0, min_time_s: float = 0.0) -> np.ndarray:
        """Seconds per invoke; feeding the next input batch is not timed."""
        interp, perf = self.interp, time.perf_counter
        times = []
        try:
            for _ in range(warmup):
                self._feed()
                interp.invoke()
            t_end = perf() + min_time_s
            while len(times) < runs or perf() < t_end:
                self._feed()
                t0 = perf()
                interp.invoke()
                times.append(perf() - t0)
        except RuntimeError as e:
            raise self._failed(e) from None
        return np.array(times)


def benchmark_many(variants: dict, x=None, *, threads: int = 1, runs: int = 200, warmup: int = 20, rounds: int = 5,
                   min_time_s: float = 0.0, samples: int = SAMPLES, seed: int = 0, cold_start: bool = True) -> dict:
    """Time several :class:`LiteModel` s on the same real inputs in interleaved rounds: each round runs every
    model in turn (the order rotates), so a core taken away by another process for a while slows all of them,
    not one. Returns ``{name: Latency}``; each is the best round's median (see :meth:`LiteModel.benchmark`)."""
    if not isinstance(variants, dict) or not variants:
        raise HomlEdgeError("benchmark_many takes a dict {name: LiteModel}")
    if int(rounds) < 1 or int(runs) < 1:
        raise HomlEdgeError(f"rounds and runs must be at least 1, got rounds={rounds}, runs={runs}")
    runners, sources = {}, {}
    for name, lite in variants.items():
        if not isinstance(lite, LiteModel):
            raise HomlEdgeError(f"{name!r} is a {type(lite).__name__}, not a LiteModel")
        arrays, source, note = lite.benchmark_inputs(x, samples=samples, seed=seed)
        runners[name] = _Runner(lite, arrays, None, threads).start()
        sources[name] = (source, note)
    names = list(runners)
    per_round = {n: [] for n in names}
    for r in range(int(rounds)):
        for n in names[r % len(names):] + names[:r % len(names)]:
            per_round[n].append(runners[n].run(int(runs), warmup=int(warmup), min_time_s=min_time_s) * 1e3)
    out = {}
    for n in names:
        medians = [float(np.median(t)) for t in per_round[n]]
        best = per_round[n][int(np.argmin(medians))]
        rn = runners[n]
        out[n] = Latency(median_ms=float(np.median(best)), p90_ms=float(np.percentile(best, 90)),
                         mean_ms=float(best.mean()), runs=len(best), threads=threads, rounds=int(rounds),
                         round_medians_ms=medians, spread_ms=float(max(medians) - min(medians)),
                         warmup=int(warmup), cold_start_ms=rn.cold_ms if cold_start else None,
                         input=sources[n][0], samples=len(rn.groups), batch=rn.batch, note=sources[n][1])
    return out


def throughput_rows(lite: LiteModel, x=None, batch_sizes=(1, 8, 32, 128), threads=(1, 2), processes=(1,), *,
                    seconds: float = 0.5, seed: int = 0) -> list[dict]:
    """The measurements behind :meth:`LiteModel.throughput`, as rows."""
    fixed = lite.fixed_batch
    free = all(_signature(d)[0] == -1 for d in lite.input_details)
    arrays, source, note = lite.benchmark_inputs(x, samples=max(batch_sizes) * 2, seed=seed)
    rows = []
    for b in batch_sizes:
        b = int(b)
        if b < 1:
            raise HomlEdgeError(f"batch sizes must be at least 1, got {b}")
        for t in threads:
            for p in processes:
                row = {"batch": b, "threads": int(t), "processes": int(p), "samples_per_s": float("nan"),
                       "latency_ms": float("nan"), "ms_per_sample": float("nan"), "input": source, "note": note}
                if not free and b != (fixed or 1):
                    row["note"] = (f"not run: the file's batch is fixed to {fixed} (shape_signature[0] != -1); "
                                   "resizing it would give wrong shapes")
                    rows.append(row)
                    continue
                if int(p) == 1:
                    runner = _Runner(lite, arrays, b if free else None, int(t)).start()
                    runner.run(0, warmup=3)
                    t0 = time.perf_counter()
                    times = runner.run(5, min_time_s=seconds)
                    wall = time.perf_counter() - t0  # feeding included, as in the workers
                    row.update(latency_ms=float(np.median(times)) * 1e3, samples_per_s=b * len(times) / wall)
                else:
                    done, elapsed, lat = _run_workers(lite.content, arrays, b if free else 0, int(t),
                                                                 int(p), seconds)
                    row.update(latency_ms=lat * 1e3, samples_per_s=done / elapsed)
                row["ms_per_sample"] = row["latency_ms"] / b
                rows.append(row)
    return rows


def _cut_after(content: bytes, k: int) -> bytes:
    """The model's main graph up to its ``k``-th op: later ops removed, op ``k``'s outputs the graph's outputs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(content, 0)
    sg = m.subgraphs[0]
    sg.operators = sg.operators[:k]
    sg.outputs = [int(i) for i in sg.operators[-1].outputs if int(i) >= 0]
    m.signatureDefs = []
    b = flatbuffers.Builder(len(content) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _run_workers(content: bytes, arrays: list, batch: int, threads: int, processes: int, seconds: float):
    """``processes`` child processes (LiteRT only, never TensorFlow) each run the model flat out for ``seconds``,
    started together once all are ready. Returns (samples done, wall seconds, median seconds per invoke)."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as d:
        Path(d, "model.tflite").write_bytes(content)
        np.savez(Path(d, "inputs.npz"), *arrays)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, "-c", "from homl_edge.lite import _worker_main; _worker_main()", d, str(batch),
               str(threads), str(seconds)]
        procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, text=True) for _ in range(processes)]
        try:
            for p in procs:
                line = p.stdout.readline()
                if line.strip() != "ready":
                    err = p.stderr.read().strip().splitlines()
                    raise HomlEdgeError(f"a throughput worker failed: {(err or [line])[-1][:300]}")
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            results = [json.loads(p.stdout.readline()) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
    done = sum(r["invokes"] * r["batch"] for r in results)
    wall = max(r["elapsed"] for r in results)
    return done, wall, float(np.median([r["median"] for r in results]))


def _worker_main() -> None:
    """A throughput worker (see :func:`_run_workers`): imports numpy and LiteRT only."""
    import sys

    d, batch, threads, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    content = Path(d, "model.tflite").read_bytes()
    with np.load(Path(d, "inputs.npz")) as f:
        arrays = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    lite = LiteModel(content, _trusted=True)
    runner = _Runner(lite, arrays, batch or None, threads).start()
    runner.run(0, warmup=3)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    times = runner.run(1, min_time_s=seconds)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"invokes": len(times), "elapsed": elapsed, "median": float(np.median(times)),
                      "batch": runner.batch}), flush=True)


@result
class MicroRun(Record):
    """What :meth:`LiteModel.on_micro` measured, a frozen record that is also a complete read-only mapping
    (``run["arena_bytes"]``, ``run.arena_bytes``, ``dict(run)``): the float ``outputs`` (an array, or ``{name:
    array}``), ``n`` inputs run, ``accuracy`` (with labels), agreement with LiteRT on the same inputs
    (``argmax_agreement``, ``bit_identical``, ``max_abs_diff``), the smallest tensor arena that worked, the arena
    sizes tried, the flash the model needs and, when LiteRT will not run the file, ``compared_with`` saying so.
    A field that was not measured is None (it is still a key)."""

    outputs: object
    n: int
    accuracy: float | None = None
    argmax_agreement: float | None = None
    bit_identical: float | None = None
    max_abs_diff: float | None = None
    arena_bytes: int | None = None
    arena_tried: list | None = None
    flash_bytes: int | None = None
    compared_with: str | None = None

    FIELDS = ("n", "accuracy", "argmax_agreement", "bit_identical", "max_abs_diff", "arena_bytes", "arena_tried",
              "flash_bytes", "compared_with")

    def _measured(self) -> list:
        return [f for f in self.FIELDS if getattr(self, f) is not None]

    def to_frame(self):
        """The measured fields (not the outputs), one row each."""
        import pandas as pd

        return pd.DataFrame({"value": {f: getattr(self, f) for f in self._measured()}})

    def __repr__(self):
        from ._result import _short

        return "MicroRun(" + ", ".join(f"{f}={_short(getattr(self, f))}" for f in self._measured()) + ")"

    def _repr_html_(self):
        rows = []
        for f in self._measured():
            v = getattr(self, f)
            text = (f"{v:.2%}" if f in ("accuracy", "argmax_agreement", "bit_identical")
                    else f"{v:,} B" if f.endswith("bytes") or f == "arena_tried" else str(v))
            rows.append(f"<tr><th style='text-align:left'>{f.replace('_', ' ')}</th><td>{text}</td></tr>")
        return "<table>" + "".join(rows) + "</table>"


def check_finite(name: str, runtime: str, outputs, output_names, inputs) -> None:
    """Raise a one-line error when an output holds NaN or infinity, saying whether the inputs already did."""
    for out, oname in zip(outputs, output_names):
        out = np.asarray(out)
        if not np.issubdtype(out.dtype, np.floating) or np.isfinite(out).all():
            continue
        rows = out.reshape(len(out), -1) if out.ndim else out.reshape(1, -1)
        bad = int((~np.isfinite(rows)).any(axis=1).sum())
        bad_in = sum(int((~np.isfinite(np.asarray(a, dtype=np.float64).reshape(len(a), -1))).any(axis=1).sum())
                     for a in inputs if np.issubdtype(np.asarray(a).dtype, np.floating))
        if bad_in:
            raise HomlEdgeError(f"{bad_in} input sample(s) contain NaN or infinite values, so {bad} output row(s) "
                                f"of {name} are not finite: clean the inputs first")
        raise HomlEdgeError(f"{runtime} computed NaN or infinite values for {bad} of {len(rows)} samples "
                            f"(output {oname!r}) of {name} from finite inputs: the file's weights or ranges are "
                            "broken (variables never assigned? float16 overflow?); check lite.tensors()")


def _layer_name(tensor_name: str) -> str:
    """'model/topk/TopKV2;...' -> 'topk': the Keras layer that produced a TFLite tensor."""
    parts = tensor_name.split(";")[0].split("/")
    return parts[1] if len(parts) > 2 else (parts[0] if parts else "")


def _class_labels(y) -> np.ndarray:
    """Integer labels, from integer labels or one-hot rows."""
    y = np.asarray(y)
    return y.argmax(axis=-1) if y.ndim > 1 else y


def _natural(name: str) -> list:
    """A sort key that puts ``output_2`` before ``output_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


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


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if int(s) < 0 else str(int(s)) for s in shape) + ")"
