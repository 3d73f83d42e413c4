"""A graph you can look at: a ``.tflite`` drawn by Model Explorer, with homl-edge's own results on its nodes.

:func:`explore` converts the file with Model Explorer's own C++ adapter (``ai-edge-model-explorer``, the
``builtin_tflite_flatbuffer`` adapter that its server uses) into the graph JSON its web app reads, and computes
per-node overlays in Model Explorer's node-data format (``{graph id: {"results": {node id: {"value": v}},
"gradient": [...]}}``): quantization error (SNR per layer, from :func:`homl_edge.quantization_error`), weight
precision in bits (from the file, or an :func:`homl_edge.autoquantize` recipe), weight sparsity, and MACs. Op nodes
are keyed by their op index, as the adapter numbers them; a Keras layer is found on the ops whose output tensor
names carry it (the converter's fused names, ``model/conv/BiasAdd;model/relu/Relu``).

No server of Model Explorer's runs: the kernel writes the graph and overlays into a folder and registers it with
the notebook's Jupyter server (:func:`homl_edge.browser.register_page`, ``app="model-explorer"``), whose
homl-edge extension serves Model Explorer's prebuilt web app from the installed package and answers the few API
calls the app makes from those files (:func:`web_file`). The view works wherever the notebook does, Binder and
remote Jupyter included. Everything here is plain data; the picture a saved notebook keeps is :attr:`Exploration.svg`.
"""
from __future__ import annotations

import base64
import functools
import html as html_mod
import importlib.util
import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .errors import HomlEdgeError

PACKAGE = "ai-edge-model-explorer"
SUPPORTED = "0.1.34"  # the web app's API paths and worker are adapted to this version (checked at use)
INSTALL = f"pip install 'homl-edge[explore]' (or: pip install {PACKAGE}=={SUPPORTED})"
KINDS = ("error", "bits", "sparsity", "macs")
GRAPH_ID = "main"

# the input that holds an op's weights, for the ops that have them
_WEIGHT_INPUT = {"conv_2d": 1, "depthwise_conv_2d": 1, "fully_connected": 1, "transpose_conv": 1,
                 "batch_matmul": 1, "conv_3d": 1, "unidirectional_sequence_lstm": 1, "embedding_lookup": 1}
_BITS = {"float64": 64, "float32": 32, "float16": 16, "bfloat16": 16, "int32": 32, "int16": 16, "int8": 8,
         "uint8": 8, "int4": 4, "int2": 2}
_PRECISION_BITS = {"float": 32, "float32": 32, "float16": 16, "int16": 16, "int8": 8, "int4": 4}
# how each overlay is drawn: unit, and whether a larger value is worse (red) or better (green)
_STYLE = {"error": ("SNR dB", False), "bits": ("bits", True), "sparsity": ("zeros", False), "macs": ("MACs", True)}


# ----------------------------------------------------------------------------------------- the package
def _require():
    """Model Explorer's version, or a one-line error naming the pip line (found without importing its adapter,
    a 500 MB library that loads only in the child that converts)."""
    from importlib import metadata

    try:
        found = all(importlib.util.find_spec(m) is not None
                    for m in ("ai_edge_model_explorer_adapter", "model_explorer"))
        version = metadata.version(PACKAGE) if found else None
    except (ImportError, ValueError):  # importlib.metadata.PackageNotFoundError is an ImportError
        version = None
    if version is None:
        raise HomlEdgeError(f"Model Explorer is not installed: {INSTALL}")
    if web_app_dir() is None:
        raise HomlEdgeError(f"Model Explorer's web app is missing from its package: {INSTALL}")
    return version


def web_app_dir() -> Path | None:
    """The prebuilt web app inside the installed ``model_explorer`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec("model_explorer")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "web_app"
    return path if (path / "index.html").is_file() else None


def _as_lite(lite):
    """A LiteModel, or a path to a ``.tflite`` (loaded and verified by :func:`homl_edge.load_lite`)."""
    from .lite import require_lite

    return require_lite(lite, "explore", paths=True)  # optimize()'s result: the .tflite it made


# Model Explorer's own conversion, as its server runs it, in a child: the C++ adapter (a 500 MB library that adds
# ~120 MB to a process) parses bytes that may come from anyone, so a crash or its memory stays out of the kernel
_CHILD = ("import json, sys\n"
          "from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter\n"
          "from model_explorer.utils import convert_adapter_response\n"
          "graphs = BuiltinTfliteFlatbufferAdapter().convert(sys.argv[1], {})\n"
          "sys.stdout.write(json.dumps(convert_adapter_response(graphs)))\n")


def graph_json(lite, timeout: float = 300) -> dict:
    """The ``.tflite`` as Model Explorer's graph JSON (``{"graphCollections": [...]}``), made by its own adapter
    (``builtin_tflite_flatbuffer``) in a child process."""
    import os
    import subprocess
    import sys

    lite = _as_lite(lite)
    _require()
    with tempfile.TemporaryDirectory(prefix="homl-edge-graph-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(lite.content)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            r = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, timeout=timeout,
                               env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise HomlEdgeError(f"Model Explorer's adapter did not finish in {timeout:.0f} s on this model") from None
    if r.returncode < 0:
        raise HomlEdgeError(f"Model Explorer's adapter crashed on this model (signal {-r.returncode}); the kernel is "
                            "unharmed: it ran in a child process")
    if r.returncode:
        lines = [l for l in r.stderr.decode(errors="replace").splitlines() if l.strip()]
        raise HomlEdgeError(f"Model Explorer's adapter cannot read this model: {(lines or ['no message'])[-1][:300]}")
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise HomlEdgeError("Model Explorer's adapter answered something that is not JSON") from None


# ----------------------------------------------------------------------------------------- the graph
def _main_graph(graph: dict) -> dict:
    graphs = graph["graphCollections"][0]["graphs"]
    return next((g for g in graphs if g.get("id") == GRAPH_ID), graphs[0])


def _attr(attrs, key):
    return next((a["value"] for a in attrs if a.get("key") == key), None)


def op_nodes(graph: dict) -> list[dict]:
    """The op nodes of the main graph, in op order: ``id``, ``op`` (``conv_2d``), ``tensors`` (output names),
    ``weights`` (the weight tensor's index and type, for ops that have weights)."""
    nodes = _main_graph(graph)["nodes"]
    by_id = {n["id"]: n for n in nodes}

    def tensor_of(node_id, output_id="0"):
        node = by_id.get(node_id)
        if node is None:
            return None
        out = next((o for o in node.get("outputsMetadata", []) if o.get("id") == output_id), None)
        if out is None:
            return None
        shape = _attr(out["attrs"], "tensor_shape") or ""
        index = _attr(out["attrs"], "tensor_index")
        return {"node": node, "index": None if index is None else int(index), "type": shape.split("[")[0],
                "shape": shape}

    ops = []
    for n in nodes:
        if not n["id"].isdigit() or n["label"] in ("GraphInputs", "GraphOutputs", "pseudo_const"):
            continue
        tensors = [_attr(o["attrs"], "tensor_name") or "" for o in n.get("outputsMetadata", [])]
        weights = None
        slot = _WEIGHT_INPUT.get(n["label"])
        if slot is not None:
            edge = next((e for e in n.get("incomingEdges", []) if e.get("targetNodeInputId") == str(slot)), None)
            if edge is not None:
                src = tensor_of(edge["sourceNodeId"], edge.get("sourceNodeOutputId", "0"))
                if src is not None and src["node"]["label"] == "dequantize":  # float16 / dynamic weights
                    inner = next((e for e in src["node"].get("incomingEdges", [])
                                  if e.get("targetNodeInputId") == "0"), None)
                    if inner is not None:
                        src = tensor_of(inner["sourceNodeId"], inner.get("sourceNodeOutputId", "0")) or src
                if src is not None:
                    weights = {"index": src["index"], "type": src["type"], "shape": src["shape"]}
        ops.append({"id": n["id"], "op": n["label"], "tensors": tensors, "weights": weights})
    ops.sort(key=lambda o: int(o["id"]))
    return ops


def _layers_of(tensors, names) -> list[str]:
    """The Keras layer names a converter's output tensor names carry (exact, or without Keras 3's ``_1`` suffix)."""
    found = []
    for name in tensors:
        for chain in name.split(";"):
            for part in chain.split("/"):
                for cand in (part, re.sub(r"_\d+$", "", part)):
                    if cand in names and cand not in found:
                        found.append(cand)
    return found


def _node_layers(ops, names) -> dict:
    """``{layer: [node ids]}`` for the given layer names."""
    out = {}
    for op in ops:
        for layer in _layers_of(op["tensors"], set(names)):
            out.setdefault(layer, []).append(op["id"])
    return out


def _all_layer_names(ops) -> list[str]:
    """Every name part in the ops' tensor names (what an overlay may name), for the error message."""
    seen = []
    for op in ops:
        for name in op["tensors"]:
            for chain in name.split(";"):
                parts = chain.split("/")
                for part in parts[1:-1] if len(parts) > 2 else parts[:-1]:
                    if part not in seen and not part[:1].isupper():  # TensorFlow's op names are capitalised
                        seen.append(part)
    return seen


# ----------------------------------------------------------------------------------------- overlays
def _macs(lite, ops) -> dict:
    """Multiply-accumulates per op for one sample (the ops :meth:`LiteModel.profile` counts, op by op)."""
    from .lite import new_interpreter, op_details

    interp = new_interpreter(lite.content, delegates=False)
    shapes = {t["index"]: tuple(int(v) for v in t["shape"]) for t in interp.get_tensor_details()}
    details = op_details(interp)
    if len(details) != len(ops):
        raise HomlEdgeError(f"the graph has {len(ops)} ops but LiteRT runs {len(details)}: cannot key MACs to nodes")
    out = {}
    for node, op in zip(ops, details):
        name, ins, outs = op["op_name"], [int(i) for i in op["inputs"]], [int(i) for i in op["outputs"]]
        if name.lower() != node["op"]:
            raise HomlEdgeError(f"op {node['id']} is {node['op']} in the graph but {name} in LiteRT: cannot key MACs")
        o = shapes.get(outs[0], ()) if outs else ()
        macs = None
        if name == "CONV_2D" and len(ins) > 1:
            _, kh, kw, cin = shapes[ins[1]]
            macs = int(np.prod(o)) * kh * kw * cin
        elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1:
            _, kh, kw, _ = shapes[ins[1]]
            macs = int(np.prod(o)) * kh * kw
        elif name == "FULLY_CONNECTED" and len(ins) > 1:
            macs = int(np.prod(o)) * shapes[ins[1]][-1]
        elif name == "TRANSPOSE_CONV" and len(ins) > 2:
            cout, kh, kw, _ = shapes[ins[1]]
            macs = int(np.prod(shapes[ins[2]])) * kh * kw * cout
        elif name == "BATCH_MATMUL" and len(ins) > 1:
            macs = int(np.prod(o)) * shapes[ins[0]][-1]
        elif name == "UNIDIRECTIONAL_SEQUENCE_LSTM" and len(ins) > 8:
            batch, steps, n_in = shapes[ins[0]][-3:]
            units = shapes[ins[1]][0]
            macs = batch * steps * 4 * units * (n_in + units)
        if macs is not None:
            out[node["id"]] = float(macs)
    return out


def _bits(ops) -> dict:
    """Bits per weight of each op with weights, as the file stores them (int4 8 4, float16 weights 16)."""
    return {op["id"]: float(_BITS[op["weights"]["type"]]) for op in ops
            if op["weights"] and op["weights"]["type"] in _BITS}


def _sparsity(lite, ops) -> dict:
    """The fraction of each op's stored weights that are exactly zero (read from the file by LiteRT)."""
    from .lite import new_interpreter

    interp = new_interpreter(lite.content, delegates=False)
    out = {}
    for op in ops:
        w = op["weights"]
        if not w or w["index"] is None or w["type"] == "int4":
            continue
        try:
            v = np.asarray(interp.get_tensor(w["index"]))
        except ValueError:
            continue
        if v.size:
            out[op["id"]] = float((v == 0).mean())
    return out


def _from_layers(values: dict, ops, what: str) -> dict:
    """``{layer: value}`` onto node ids; a name that no op carries is refused (it would silently draw nothing)."""
    by_layer = _node_layers(ops, list(values))
    missing = [k for k in values if k not in by_layer and k not in {o["id"] for o in ops}]
    if missing:
        known = ", ".join(_all_layer_names(ops)[:12]) or "none"
        raise HomlEdgeError(f"{what} names {', '.join(map(repr, missing[:3]))}, which no op of this .tflite carries "
                            f"(layers seen in its tensor names: {known}): was the overlay made for this model?")
    out = {}
    for key, value in values.items():
        for node in by_layer.get(key, [key]):
            out.setdefault(node, float(value))
    return out


def _overlay(spec, lite, ops, model, data) -> tuple[str, dict]:
    """One overlay: its name and ``{node id: value}``."""
    from .report import Table

    if isinstance(spec, str):
        kind = spec.lower()
        if kind == "macs":
            return "macs", _macs(lite, ops)
        if kind in ("bits", "precision"):
            return "bits", _bits(ops)
        if kind == "sparsity":
            return "sparsity", _sparsity(lite, ops)
        if kind in ("error", "snr"):
            if model is None or data is None:
                raise HomlEdgeError("overlay 'error' compares the file with its float Keras model: give "
                                    "{model=model} and a few inputs, {data=x[:200]}", param=("model", "data"))
            from .precision import quantization_error

            return _overlay(quantization_error(model, lite, data), lite, ops, None, None)
        raise HomlEdgeError(f"unknown overlay {spec!r}: one of {', '.join(KINDS)}, a table from "
                            "he.quantization_error or he.sparsity_report, an autoquantize result, or {layer: value}")
    if hasattr(spec, "recipe") and hasattr(spec, "tried"):  # an AutoQuantResult
        bad = {k: v for k, v in spec.recipe.items() if str(v).lower() not in _PRECISION_BITS}
        if bad:
            raise HomlEdgeError(f"autoquantize recipe has precisions homl-edge cannot draw: {bad}")
        return "bits", _from_layers({k: _PRECISION_BITS[str(v).lower()] for k, v in spec.recipe.items()}, ops,
                                    "the autoquantize recipe")
    if isinstance(spec, Table) or (hasattr(spec, "columns") and hasattr(spec, "to_dict")):
        cols = set(spec.columns)
        if "layer" in cols and "snr_db" in cols:
            values = {r["layer"]: r["snr_db"] for r in spec.to_dict("records") if math.isfinite(r["snr_db"])}
            return "error", _from_layers(values, ops, "the quantization_error table")
        if "layer" in cols and "sparsity" in cols:
            return "sparsity", _from_layers(dict(zip(spec["layer"], spec["sparsity"])), ops,
                                            "the sparsity table")
        raise HomlEdgeError(f"a table overlay needs the columns layer and snr_db (he.quantization_error) or layer and "
                            f"sparsity (he.sparsity_report); this one has {', '.join(map(str, spec.columns))}")
    if isinstance(spec, dict):
        try:
            values = {str(k): float(v) for k, v in spec.items()}
        except (TypeError, ValueError):
            raise HomlEdgeError("a dict overlay maps layer names (or node ids) to numbers") from None
        return "values", _from_layers(values, ops, "the overlay")
    raise HomlEdgeError(f"overlay of type {type(spec).__name__} is not understood: one of {', '.join(KINDS)}, a "
                        "table from he.quantization_error or he.sparsity_report, an autoquantize result, or "
                        "{layer: value}")


def _shown(v: float) -> float:
    """A value as the side panel shows it: whole numbers whole, others to 4 significant digits."""
    return float(v) if float(v).is_integer() else float(f"{v:.4g}")


def node_data(values: dict, name: str, graph_id: str = GRAPH_ID) -> dict:
    """Model Explorer's node-data JSON for one overlay: values per node id of graph ``graph_id`` and a gradient
    (red is worse)."""
    _, worse_high = _STYLE.get(name, ("", True))
    good, bad = "#2e7d32", "#c62828"
    low, high = (good, bad) if worse_high else (bad, good)
    return {graph_id: {"results": {k: {"value": _shown(v)} for k, v in values.items()},
                       "gradient": [{"stop": 0, "bgColor": low}, {"stop": 0.5, "bgColor": "#f9a825"},
                                    {"stop": 1, "bgColor": high}]}}


# ----------------------------------------------------------------------------------------- the result
@dataclass
class Exploration:
    """What :func:`explore` made: the graph, the overlays on its nodes, and where the notebook's server shows it."""

    name: str
    graph: dict
    ops: list
    overlays: dict  # {overlay name: {node id: value}}
    folder: Path
    served: str | None = None  # the view's path below the Jupyter server's base URL (with its ?data= query)
    notes: list = field(default_factory=list)

    def node_data(self, name: str) -> dict:
        """The node-data JSON Model Explorer reads for overlay ``name``."""
        return node_data(self.overlays[name], name, _main_graph(self.graph)["id"])

    def to_frame(self):
        """One row per op: node id, op, output tensor, and each overlay's value."""
        import pandas as pd

        rows = [{"node": o["id"], "op": o["op"], "tensor": (o["tensors"] or [""])[0].split(";")[0],
                 **{k: v.get(o["id"]) for k, v in self.overlays.items()}} for o in self.ops]
        return pd.DataFrame(rows)

    @property
    def svg(self) -> str:
        """A still of the graph for saved notebooks: the ops in order, coloured by the first overlay, with values."""
        return _svg(self)

    def save_svg(self, path) -> Path:
        path = Path(path)
        path.write_text(self.svg)
        return path

    def _html_parts(self) -> tuple[str, str]:
        """What a saved notebook shows: a line, and the still (the live view replaces the still in a kernel that a
        Jupyter server runs: homl_edge/_display.py)."""
        still = (f"<img src='data:image/svg+xml;base64,{base64.b64encode(self.svg.encode()).decode()}' "
                 f"alt='the graph of {html_mod.escape(self.name)}' style='max-width:720px'>")
        head = (f"<p>Model Explorer: <code>{html_mod.escape(self.name)}</code>, {len(self.ops)} ops"
                + (f", overlays {', '.join(self.overlays)}" if self.overlays else "") + "</p>")
        return head, still

    def _repr_html_(self):
        return "".join(self._html_parts())

    def __repr__(self):
        return (f"<Exploration {self.name}: {len(self.ops)} ops, overlays {list(self.overlays) or 'none'}"
                f"{', served' if self.served else ''}>")


def _svg(ex: Exploration, max_ops: int = 300) -> str:
    esc = html_mod.escape
    name = next(iter(ex.overlays), None)
    values = ex.overlays.get(name, {}) if name else {}
    unit, worse_high = _STYLE.get(name, ("", True))
    finite = [v for v in values.values() if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)

    def colour(v):
        t = 0.5 if hi == lo else (v - lo) / (hi - lo)
        t = t if worse_high else 1 - t  # 0 good (green) .. 1 bad (red)
        r, g = (int(46 + (249 - 46) * 2 * t), int(125 + (168 - 125) * 2 * t)) if t < 0.5 else \
            (int(249 + (198 - 249) * (2 * t - 1)), int(168 + (40 - 168) * (2 * t - 1)))
        return f"#{r:02x}{g:02x}{40:02x}"

    shown = ex.ops[:max_ops]
    caption = (f"value: {name} ({unit}); colour from best (green) to worst (red) in this model" if name
               else "no overlay")
    row, top, width = 26, 46, 640
    height = top + row * len(shown) + (24 if len(ex.ops) > max_ops else 8)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"font-family='sans-serif' font-size='12'>",
           f"<rect width='{width}' height='{height}' fill='white'/>",
           f"<text x='8' y='18' font-size='14' font-weight='bold'>{esc(ex.name)}: {len(ex.ops)} ops</text>",
           f"<text x='8' y='36' fill='#555'>{esc(caption)}</text>"]
    for i, op in enumerate(shown):
        y = top + i * row
        v = values.get(op["id"])
        fill = colour(v) if v is not None and math.isfinite(v) else "#eceff1"
        tensor = (op["tensors"] or [""])[0].split(";")[0]
        label = f"{op['id']:>3}  {op['op']}"
        out.append(f"<rect x='8' y='{y}' width='{width - 16}' height='{row - 4}' rx='4' fill='{fill}' "
                   "stroke='#90a4ae'/>")
        if i:
            out.append(f"<line x1='40' y1='{y - 4}' x2='40' y2='{y}' stroke='#90a4ae'/>")
        text_fill = "white" if v is not None and math.isfinite(v) else "#222"
        out.append(f"<text x='16' y='{y + 16}' fill='{text_fill}'>{esc(label)}</text>")
        out.append(f"<text x='200' y='{y + 16}' fill='{text_fill}'>{esc(tensor[:48])}</text>")
        if v is not None:
            out.append(f"<text x='{width - 16}' y='{y + 16}' text-anchor='end' fill='{text_fill}' "
                       f"font-weight='bold'>{esc(_fmt(v))}</text>")
    if len(ex.ops) > max_ops:
        out.append(f"<text x='8' y='{height - 8}' fill='#555'>... and {len(ex.ops) - max_ops} more ops</text>")
    out.append("</svg>")
    return "".join(out)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f} M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f} k"
    if v == int(v):
        return f"{int(v)}"
    return f"{v:.3g}"


# ----------------------------------------------------------------------------------------- explore
def explore(lite, overlay=None, *, model=None, data=None, folder=None, name: str | None = None) -> Exploration:
    """Draw ``lite`` as a graph in Model Explorer, with homl-edge's results on its nodes.

    ``overlay``: ``"error"`` (quantization SNR per layer, needs ``model=`` the float Keras model and ``data=`` a
    few inputs), ``"bits"`` (bits per weight as stored), ``"sparsity"`` (fraction of zero weights), ``"macs"``
    (multiply-accumulates per sample); or a result: a :func:`quantization_error` or :func:`sparsity_report` table,
    an :func:`autoquantize` result (its recipe as bits), a ``{layer name or node id: number}`` dict; or a list of
    these (one overlay each). In a notebook the result shows the live view, served by the notebook's own Jupyter
    server (registered at its first display: homl_edge/_display.py); a saved notebook keeps a still
    (:attr:`Exploration.svg`). The files go to ``folder``: by default a temporary
    folder that is removed when the kernel ends (a live view of an ended kernel then shows nothing; pass a
    ``folder`` of your own to keep it).
    """
    lite = _as_lite(lite)
    graph = graph_json(lite)
    ops = op_nodes(graph)
    specs = [] if overlay is None else list(overlay) if isinstance(overlay, (list, tuple)) else [overlay]
    overlays, notes = {}, []
    for spec in specs:
        key, values = _overlay(spec, lite, ops, model, data)
        if not values:
            notes.append(f"overlay {key}: no op of this model has a value")
        while key in overlays:
            key += "'"
        overlays[key] = values
    title = name or getattr(lite, "name", None) or "model"
    _check_web_app()  # refused now, in one line, rather than a blank view later (and before a folder is made)
    from ._files import process_folder, release
    from ._widgets import widget_file

    # by default a folder that lives as long as this process (the view's kernel); the next one sweeps it if killed
    out = Path(folder) if folder is not None else Path(process_folder("homl-edge-explore-"))
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "graphs.json").write_text(json.dumps(graph))
        for i, (key, values) in enumerate(overlays.items()):
            (out / f"node_data_{i}.json").write_text(json.dumps(node_data(values, key, _main_graph(graph)["id"])))
        (out / "storage.js").write_bytes(widget_file("explore/storage.js").read_bytes())
    except BaseException:
        if folder is None:
            release(str(out))
        raise
    return Exploration(name=title, graph=graph, ops=ops, overlays=overlays, folder=out, notes=notes)


def url_data(ex: Exploration) -> str:
    """The ``data`` query Model Explorer's app reads: the graph from the server, and each overlay."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", ex.name) or "model"
    # the layers open down to the ops, so that the overlay's colours are on the nodes at first sight
    spaces = [n["namespace"].split("/") for n in _main_graph(ex.graph)["nodes"]
              if n.get("namespace") and n["label"] not in ("GraphInputs", "GraphOutputs", "pseudo_const")]
    groups = sorted({"/".join(parts[:i]) for parts in spaces for i in range(1, len(parts))})
    data = {"models": [{"url": f"graphs://{safe}/0"}],
            "uiState": {"paneStates": [{"deepestExpandedGroupNodeIds": [f"{g}___group___" for g in groups],
                                        "selectedNodeId": "", "selectedGraphId": _main_graph(ex.graph)["id"],
                                        "selectedCollectionLabel": "", "widthFraction": 1}]}}
    if ex.overlays:  # the app colours the graph by the overlay added last: the first one given, as in the still
        data["nodeData"] = [f"node_data://{re.sub(r'[^A-Za-z0-9_.-]', '_', k)}/{i}"
                            for i, k in enumerate(ex.overlays)][::-1]
        data["nodeDataTargets"] = [""] * len(ex.overlays)
    return quote(json.dumps(data))


# ----------------------------------------------------------------------------------------- serving
_API_PATH = re.compile(r'"/(api|apipost|apistream)/')
_WORKER = re.compile(r'new Worker\(new URL\("(worker-[A-Za-z0-9]+\.js)",import\.meta\.url\),\{type:"classic"\}\)')


@functools.lru_cache(maxsize=4)
def _patched_app(app_dir: str) -> dict:
    """Model Explorer's web app adapted to a sandboxed frame below a path: its API paths made relative to the
    view (they were absolute, for a server of its own at the root), its layout worker started from a blob (a
    sandboxed frame has an opaque origin, which may not start a worker from a URL). ``{file: bytes}`` of the
    changed files; refused if the app is not the one this was written for."""
    root = Path(app_dir)
    mains = sorted(root.glob("main-*.js"))
    styles = sorted(root.glob("styles-*.css"))
    if len(mains) != 1 or len(styles) != 1:
        raise HomlEdgeError(f"Model Explorer's web app is not laid out as in {SUPPORTED}: {INSTALL}")
    js = mains[0].read_text(encoding="utf-8")
    # no server pushes directives here (its own server's reload stream): no EventSource, no request
    js, n_stream = re.subn(r'new EventSource\("/apistream/server_director"\)', "({addEventListener:function(){}})", js)
    # the extension list is fetched with credentials; the frame's origin is opaque, so fetch it without (no cookies
    # are needed: the view's key is the capability)
    js, n_cred = re.subn(r'fetch\(([A-Za-z_$][\w$]*),\{credentials:"include"\}\)', r"fetch(\1)", js)
    js, n_api = _API_PATH.subn(r'"\1/', js)
    js, n_worker = _WORKER.subn(
        lambda m: ('new Worker(URL.createObjectURL(new Blob(["importScripts(" + JSON.stringify(new URL("'
                   + m.group(1) + '",import.meta.url).href) + ")"],{type:"text/javascript"})),{type:"classic"})'), js)
    if n_api < 8 or n_worker != 1 or n_stream != 1 or n_cred != 1:
        raise HomlEdgeError(f"Model Explorer's web app changed ({n_api} API paths, {n_worker} workers found): homl-edge "
                            f"serves version {SUPPORTED}: {INSTALL}")
    css = styles[0].read_text(encoding="utf-8").replace("url(/static_files/", "url(static_files/")
    return {mains[0].name: js.encode(), styles[0].name: css.encode()}


def _check_web_app():
    app = web_app_dir()
    if app is None:
        raise HomlEdgeError(f"Model Explorer's web app is missing: {INSTALL}")
    _patched_app(str(app))


@functools.lru_cache(maxsize=4)
def _app_files(app_dir: str) -> frozenset:
    root = Path(app_dir)
    return frozenset(p.relative_to(root).as_posix() for p in root.rglob("*")
                     if p.is_file() and not p.is_symlink() and not any(s.startswith(".") for s in
                                                                        p.relative_to(root).parts))


def _index_html(app: Path, base: str) -> bytes:
    text = (app / "index.html").read_text(encoding="utf-8")
    text = text.replace('<base href="/">', f'<base href="{html_mod.escape(base, quote=True)}">'
                        '<script src="homl-edge-storage.js"></script>', 1)
    text = re.sub(r'<link rel="preconnect"[^>]*>', "", text)
    text = re.sub(r"@font-face\{[^{}]*fonts\.gstatic\.com[^{}]*\}", "", text)  # nothing from outside this server
    text = text.replace("url(/static_files/", "url(static_files/").replace('href="/static_files/', 'href="static_files/')
    text = text.replace(' media="print" onload="this.media=\'all\'"', "")  # an inline handler: the CSP forbids it
    return text.encode()


def web_file(entry: dict, rel: str, query: dict, base: str):
    """What the Jupyter extension answers for ``<base><rel>?<query>`` of a registered view: ``(status, content
    type, bytes)``, or None (a 404). ``base`` is the view's own path on the server (ending in ``/``)."""
    from .browser import page_file

    app = web_app_dir()
    if app is None:
        return None
    rel = rel or "index.html"
    if rel == "index.html":
        return 200, "text/html", _index_html(app, base)
    if rel == "homl-edge-storage.js":
        data = page_file(entry, "storage.js")
        return None if data is None else (200, "text/javascript", data)
    if rel == "api/v1/load_graphs_json":
        data = page_file(entry, "graphs.json") if query.get("graph_index", "0") == "0" else None
        return None if data is None else (200, "application/json", data)
    if rel == "api/v1/load_node_data":
        index = query.get("node_data_index", "")
        data = page_file(entry, f"node_data_{index}.json") if index.isdigit() else None
        return None if data is None else (200, "application/json",
                                          json.dumps({"content": data.decode()}).encode())
    if rel == "api/v1/get_extensions":
        return 200, "application/json", json.dumps([{
            "fileExts": ["json"], "type": "adapter", "id": "builtin_json", "name": "JSON adapter",
            "description": "Convert graphs json data file or tfjs model."}]).encode()
    if rel == "api/v1/check_new_version":
        return 200, "application/json", json.dumps({"version": "", "runningVersion": "", "releaseUrl": "",
                                                    "desktopAppUrl": ""}).encode()
    if rel == "apistream/server_director":
        return 204, "text/event-stream", b""  # no server pushes here: EventSource stops on a 204
    if rel.startswith(("api/", "apipost/", "apistream/")) or rel not in _app_files(str(app)):
        return None
    patched = _patched_app(str(app))
    data = patched.get(rel) or (app / rel).read_bytes()
    return 200, None, data
