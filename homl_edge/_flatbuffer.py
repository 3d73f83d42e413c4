"""A ``.tflite`` file read (and, for float16 weights, rewritten) from its FlatBuffer alone, with no runtime.

The schema is the one LiteRT ships (``ai_edge_litert.schema_py_generated``: flatbuffers' generated reader and
object API). Importing it starts no interpreter and never TensorFlow, so a file that LiteRT's verifier refuses,
or whose custom ops LiteRT cannot resolve, can still be inspected: operators (custom ones by name), tensors,
shapes, types and sizes. Reading is pure Python: a malformed file raises an exception here, never a crash.
"""
from __future__ import annotations

import collections
import functools

import numpy as np

from .errors import InvalidModelFileError, first_line

VARIABLE_READS = ("VAR_HANDLE", "READ_VARIABLE")


@functools.lru_cache(maxsize=1)
def schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@functools.lru_cache(maxsize=1)
def _names():
    s = schema()
    ops = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k.lower() for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    return ops, types


def parse(content: bytes, name: str = "model"):
    """The object tree (``ModelT``) of a ``.tflite`` file; a one-line error when it is not well formed."""
    s = schema()
    try:
        model = s.ModelT.InitFromPackedBuf(bytearray(content), 0)
        if not model.subgraphs:
            raise ValueError("it has no subgraph")
        for sg in model.subgraphs:
            n = len(sg.tensors or [])
            for op in sg.operators or []:
                if op.opcodeIndex >= len(model.operatorCodes or []):
                    raise ValueError(f"an operator refers to opcode {op.opcodeIndex}, which does not exist")
                for i in list(op.inputs if op.inputs is not None else []) + list(op.outputs if op.outputs is not None else []):
                    if i >= n:
                        raise ValueError(f"an operator refers to tensor {i} of {n}")
    except InvalidModelFileError:
        raise
    except Exception as e:
        raise InvalidModelFileError(f"{name} is not a well-formed .tflite FlatBuffer: {first_line(e)[:200]}") from None
    return model


def op_name(model, opcode_index: int) -> str:
    """The operator's builtin name (``CONV_2D``), or the custom code of a custom op (``SignalWindow``)."""
    ops, _ = _names()
    code = model.operatorCodes[opcode_index]
    builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
    if ops.get(builtin) == "CUSTOM":
        custom = code.customCode
        return custom.decode() if isinstance(custom, bytes) else str(custom)
    return ops.get(builtin, f"BUILTIN_{builtin}")


def custom_ops(model) -> set:
    return {op_name(model, i) for i, c in enumerate(model.operatorCodes or [])
            if _names()[0].get(max(int(c.builtinCode or 0), int(c.deprecatedBuiltinCode or 0))) == "CUSTOM"}


def ops(model, subgraph: int | None = None) -> collections.Counter:
    """Operator histogram of one subgraph (0 is the main graph) or of every subgraph (``None``)."""
    graphs = model.subgraphs if subgraph is None else [model.subgraphs[subgraph]]
    return collections.Counter(op_name(model, op.opcodeIndex) for sg in graphs for op in (sg.operators or []))


def _text(v) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else ("" if v is None else str(v))


def buffer_bytes(model, index: int) -> int:
    if not index or index >= len(model.buffers or []):
        return 0
    b = model.buffers[index]
    if b.data is not None:
        return len(b.data)
    return int(b.size or 0)


def tensors(model, subgraph: int = 0) -> list[dict]:
    """Every tensor of a subgraph: name, shape, dtype, bytes stored in the file, quantization."""
    _, types = _names()
    rows = []
    for i, t in enumerate(model.subgraphs[subgraph].tensors or []):
        q = t.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [], dtype=np.float64)
        zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], dtype=np.int64)
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None and len(t.shapeSignature) \
            else shape
        rows.append({"index": i, "name": _text(t.name), "shape": shape, "shape_signature": sig,
                     "dtype": types.get(t.type, f"type{t.type}"),
                     "bytes": buffer_bytes(model, t.buffer), "constant": buffer_bytes(model, t.buffer) > 0,
                     "variable": bool(t.isVariable),
                     "scale": float(scales[0]) if scales.size == 1 else (scales.tolist() if scales.size else None),
                     "zero_point": int(zps[0]) if zps.size == 1 else (zps.tolist() if zps.size else None),
                     "per_channel": bool(scales.size > 1),
                     "quantized_dimension": int(q.quantizedDimension) if q is not None else 0})
    return rows


def io_details(model, kind: str) -> list[dict]:
    """Input or output tensors of the main graph in LiteRT's ``get_input_details`` shape (no interpreter)."""
    _, types = _names()
    sg = model.subgraphs[0]
    rows = []
    for i in (sg.inputs if kind == "input" else sg.outputs):
        t = sg.tensors[int(i)]
        q = t.quantization
        scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) == 1 else 0.0
        zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) == 1 else 0
        shape = np.array(t.shape if t.shape is not None else [], dtype=np.int32)
        sig = np.array(t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else shape,
                       dtype=np.int32)
        dtype = types.get(t.type, "float32")
        try:
            npdtype = np.dtype(dtype)
        except TypeError:
            npdtype = np.dtype(object)
        rows.append({"index": int(i), "name": _text(t.name), "shape": shape, "shape_signature": sig,
                     "dtype": npdtype.type, "quantization": (scale, zp),
                     "quantization_parameters": {"scales": np.array([scale] if scale else [], np.float32),
                                                 "zero_points": np.array([zp] if scale else [], np.int32),
                                                 "quantized_dimension": 0}})
    return rows


def unassigned_variables(model) -> collections.Counter | None:
    """The variable ops of a file that reads resource variables but never assigns one (its weights are not in
    the file: every output is NaN), else None."""
    found = ops(model)
    if any(found.get(k) for k in VARIABLE_READS) and not found.get("ASSIGN_VARIABLE"):
        return collections.Counter({k: found[k] for k in VARIABLE_READS if found.get(k)})
    return None


def float16_constants(model) -> int:
    """How many float16 constants feed a DEQUANTIZE to float32 (weights stored as float16)."""
    return len(_float16_dequantizes(model))


def _float16_dequantizes(model) -> list:
    s = schema()
    found = []
    for g, sg in enumerate(model.subgraphs):
        uses = collections.Counter(int(i) for op in (sg.operators or []) for i in (op.inputs if op.inputs is not None else []))
        for k, op in enumerate(sg.operators or []):
            if op_name(model, op.opcodeIndex) != "DEQUANTIZE" or len(op.inputs) != 1 or len(op.outputs) != 1:
                continue
            src, dst = sg.tensors[int(op.inputs[0])], sg.tensors[int(op.outputs[0])]
            if (src.type == s.TensorType.FLOAT16 and dst.type == s.TensorType.FLOAT32 and buffer_bytes(model, src.buffer)
                    and model.buffers[src.buffer].data is not None and uses[int(op.inputs[0])] == 1):
                found.append((g, k))
    return found


def widen_float16(content: bytes, name: str = "model") -> tuple[bytes, int]:
    """The same model with every float16 weight widened to float32 (exact: every float16 is a float32) and its
    DEQUANTIZE op removed, consumers reading the float32 constant directly. Returns (bytes, constants widened)."""
    import flatbuffers

    s = schema()
    model = parse(content, name)
    if any(int(b.offset or 0) > 1 for b in (model.buffers or [])):
        raise InvalidModelFileError(f"{name} keeps its weights outside the FlatBuffer (a file over 2 GB): "
                                    "widening its float16 weights is not supported")
    found = _float16_dequantizes(model)
    by_graph = collections.defaultdict(set)
    for g, k in found:
        by_graph[g].add(k)
    for g, drop in by_graph.items():
        sg = model.subgraphs[g]
        replace = {}
        for k in drop:
            op = sg.operators[k]
            i, o = int(op.inputs[0]), int(op.outputs[0])
            src, dst = sg.tensors[i], sg.tensors[o]
            buf = model.buffers[src.buffer]
            wide = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype="<f2").astype("<f4")
            buf.data = np.frombuffer(wide.tobytes(), dtype=np.uint8)
            src.type = s.TensorType.FLOAT32
            src.name = dst.name
            src.quantization = None
            replace[o] = i
        sg.operators = [op for k, op in enumerate(sg.operators) if k not in drop]
        # the DEQUANTIZE outputs are gone: renumber the tensors without them (a tensor nobody produces and that
        # holds no data would stop a calibrator that reads every tensor)
        keep = [i for i in range(len(sg.tensors)) if i not in replace]
        new = {old: k for k, old in enumerate(keep)}
        new.update({o: new[i] for o, i in replace.items()})

        def remap(indices):
            return np.array([new[int(i)] if int(i) >= 0 else int(i) for i in indices], dtype=np.int32)

        sg.tensors = [sg.tensors[i] for i in keep]
        for op in sg.operators:
            op.inputs = remap(op.inputs)
            op.outputs = remap(op.outputs)
            if op.intermediates is not None and len(op.intermediates):
                op.intermediates = remap(op.intermediates)
        sg.inputs, sg.outputs = remap(sg.inputs), remap(sg.outputs)
        for sig in model.signatureDefs or []:
            if int(sig.subgraphIndex or 0) == g:
                for m in list(sig.inputs or []) + list(sig.outputs or []):
                    m.tensorIndex = new[int(m.tensorIndex)]
    builder = flatbuffers.Builder(len(content) * 2 + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), len(found)


def describe(content: bytes, name: str = "model") -> dict:
    """What the file holds, read without a runtime: ops (all subgraphs), custom ops, tensors of the main graph,
    inputs and outputs, the bytes of constant data."""
    model = parse(content, name)
    ts = tensors(model)
    return {"ops": ops(model), "custom_ops": sorted(custom_ops(model)), "tensors": ts,
            "inputs": io_details(model, "input"), "outputs": io_details(model, "output"),
            "subgraphs": len(model.subgraphs), "constant_bytes": sum(t["bytes"] for t in ts)}


# The roles of the inputs of ops whose kernels read tensors by role (tensorflow/lite/kernels/svdf.cc)
ROLES = {"SVDF": ("input", "weights_feature", "weights_time", "bias", "activation_state")}
# LiteRT's int8 SVDF kernel: the types it reads, unchecked (an int8 weights_time is read as int16, past its end)
_LITERT_SVDF_INT8 = {"weights_feature": "int8", "weights_time": "int16", "bias": ("int32", None),
                     "activation_state": "int16", "output": "int8"}


def op_roles(model, names=tuple(ROLES)) -> list[tuple[int, str, dict]]:
    """(op index, op name, {role: dtype or None}) of every op of the main graph named in ``names``."""
    _, types = _names()
    sg = model.subgraphs[0]
    found = []
    for k, op in enumerate(sg.operators or []):
        name = op_name(model, op.opcodeIndex)
        if name not in names:
            continue
        ins = list(op.inputs if op.inputs is not None else [])
        roles = {}
        for role, i in zip(ROLES.get(name, ()), ins):
            roles[role] = None if int(i) < 0 else types.get(sg.tensors[int(i)].type, "?")
        outs = list(op.outputs if op.outputs is not None else [])
        if outs:
            roles["output"] = types.get(sg.tensors[int(outs[0])].type, "?")
        found.append((k, name, roles))
    return found


def describe_roles(roles: dict) -> str:
    return ", ".join(f"{r} {t or 'absent'}" for r, t in roles.items())


def litert_type_mismatch(model) -> str | None:
    """The rule a file breaks that LiteRT's kernels do not check, said in one line, or None.

    LiteRT's int8 SVDF reads weights_time and the activation state as int16 whatever their type: an int8
    weights_time (which TFLM's kernel takes) gave answers unrelated to TFLM's (argmax agreement 3 of 8) and an int8
    state made TFLM itself crash. Such a file is kept for inspection and TFLM, never run in LiteRT."""
    for k, name, roles in op_roles(model, ("SVDF",)):
        if roles.get("input") != "int8":
            continue
        bad = [r for r, want in _LITERT_SVDF_INT8.items()
               if roles.get(r) not in (want if isinstance(want, tuple) else (want,))]
        if bad:
            return (f"LiteRT's int8 SVDF kernel reads weights_feature int8, weights_time int16, bias int32, "
                    f"activation_state int16 and does not check them (it would read past a smaller tensor); op {k} "
                    f"(SVDF) has {describe_roles(roles)}")
    return None
