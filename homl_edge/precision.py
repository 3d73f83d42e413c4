"""Past int8: a per-layer quantization debugger and a search for the smallest per-layer precision mix.

:func:`quantization_error` runs the float Keras model and the quantized ``.tflite`` side by side and measures, for
every layer, how far the quantized activations are from the float ones (SNR in dB, RMSE relative to the float
range). :func:`autoquantize` uses per-layer sensitivity to choose float / int8 / int4 weights per layer, converting
with ai-edge-quantizer, and returns the smallest model within an accuracy budget, with every variant it tried.
"""
from __future__ import annotations

import html
import re
from dataclasses import field

import numpy as np

from . import _keras, _progress, _tf
from . import quantization
from ._keras import kernel_of
from ._result import Result, result
from .errors import HomlEdgeError
from .lite import LiteModel, dequantize_array, op_details, quantize_array, require_lite
from .report import Table

SNR_ADVICE_DB = 25.0  # below this, a layer's quantization noise is more than ~5% of its signal


def _layer_of(tensor_name: str, names: set) -> str | None:
    """The Keras layer whose output a TFLite tensor is: the first op of a fused name chain names it.

    Keras 3's export scopes names with a numeric suffix (``sequential_1/conv_1/Relu`` for layer ``conv``): the
    exact name wins, the name without that suffix comes second.
    """
    import re

    parts = tensor_name.split(";")[0].split("/")
    for part in parts:
        if part in names:
            return part
    for part in parts:
        base = re.sub(r"_\d+$", "", part)
        if base in names:
            return base
    return None


def _activation_included(layer, tensor_name: str, is_output: bool) -> bool:
    """A Dense/Conv with a softmax (or another activation TFLite keeps as a separate op) is compared at the op that
    applies it, not at the pre-activation tensor that carries the layer's name."""
    act = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if act in ("linear", None) or is_output:
        return True
    return act.lower() in tensor_name.lower()


def _probe(k, model, layers):
    """A model whose outputs are ``layers``' outputs. A Sequential that was cloned and stripped (pruning and
    clustering return one) keeps layer outputs of a graph its inputs are not in ("Graph disconnected"): the probe
    is then built on a copy (same weights) whose layers all hang on its own input."""
    try:
        return k.Model(model.inputs, [l.output for l in layers])
    except ValueError:
        copy = k.models.clone_model(model)
        copy.set_weights(model.get_weights())
        return k.Model(copy.inputs, [copy.get_layer(l.name).output for l in layers])


def _output_layers(model, lite: LiteModel, graph_outputs, names) -> dict:
    """Output tensor index -> the Keras layer whose output it is, for a model with several outputs: by signature
    name (Keras 3 names a list's outputs ``output_0``, ``output_1``, ... in Keras's order; tf_keras by the output
    layers' names). A one-line error where a file's outputs cannot be matched to the model's layers."""
    keras_names = list(getattr(model, "output_names", None) or [])
    heads = {}
    for idx, sig in lite._names("output").items():
        m = re.fullmatch(r"output_(\d+)", sig)
        layer = keras_names[int(m.group(1))] if m and int(m.group(1)) < len(keras_names) else sig
        if layer in keras_names:
            heads[idx] = layer if layer in names else None  # None: a layer the table leaves out (a Reshape)
    named = [v for v in heads.values() if v is not None]
    if set(heads) != set(graph_outputs) or len(set(named)) != len(named):
        raise HomlEdgeError(f"quantization_error cannot tell which of the file's {len(graph_outputs)} outputs is which "
                            f"of the model's outputs {keras_names}: compare a model with one output (a probe model "
                            "ending at one head)")
    return heads


def quantization_error(model, lite: LiteModel, data, max_samples: int = 200):
    """Per layer: SNR (dB) and RMSE of the quantized model's activations against the float model's.

    Returns a DataFrame sorted worst first, with a column ``advice`` naming the layers to keep in higher
    precision (SNR under {db} dB); when none is under, the worst layer is named as such.
    """
    from ai_edge_litert.interpreter import Interpreter

    model = _keras.load_model(model)  # a result that holds a model: its .model
    _keras.check_model(model)
    model = _keras.without_training_wrappers(model)   # its layers by the names its .tflite has
    lite = require_lite(lite, "quantization_error (lite=)")  # optimize()'s result: the .tflite it made
    k = _keras.keras3() if _keras.is_keras3(model) else _keras.legacy()
    x = quantization.calibration_array(model, data, max_samples=max_samples)
    layers = [l for l in model.layers if type(l).__name__ not in ("InputLayer", "Flatten", "Reshape", "Dropout")]
    probe = _probe(k, model, layers)
    float_outs = dict(zip([l.name for l in layers], probe.predict(x, verbose=0, batch_size=256)))
    names = set(float_outs)
    with _tf.quiet():  # LiteRT warns that preserving all tensors is for debugging: it is, here
        interp = Interpreter(model_content=lite.content, experimental_preserve_all_tensors=True)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]], strict=False)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], quantize_array(x, inp))
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    by_name = {l.name: l for l in layers}
    graph_outputs = {int(d["index"]) for d in interp.get_output_details()}
    heads = _output_layers(model, lite, graph_outputs, names) if len(graph_outputs) > 1 else {}
    rows, seen = [], set()
    for op in op_details(interp):
        for idx in op["outputs"]:
            d = details.get(int(idx))
            if d is None:
                continue
            if int(idx) in graph_outputs:
                layer = heads[int(idx)] if heads else layers[-1].name
            else:
                layer = _layer_of(d["name"], names)
            if layer is None or layer in seen or not _activation_included(by_name[layer], d["name"], int(idx) in
                                                                          graph_outputs):
                continue
            ref = float_outs[layer]
            got = interp.get_tensor(int(idx))
            if got.size != ref.size:
                continue
            got = dequantize_array(got, {"dtype": got.dtype, "quantization": d["quantization"]}).reshape(ref.shape)
            err = got - ref
            signal = float((ref ** 2).mean())
            noise = float((err ** 2).mean())
            rng = float(ref.max() - ref.min()) or 1.0
            rows.append({"layer": layer, "op": op["op_name"], "dtype": np.dtype(d["dtype"]).name,
                         "snr_db": 10 * np.log10(signal / noise) if noise > 0 else np.inf,
                         "rmse": noise ** 0.5, "relative_rmse": noise ** 0.5 / rng})
            seen.add(layer)
    if not rows:
        raise HomlEdgeError("no layer of the model could be matched to a tensor of the .tflite model: "
                            "was it converted from this model?")
    df = Table(rows).sort_values("snr_db").reset_index(drop=True)
    df["advice"] = ""
    weak = df.snr_db < SNR_ADVICE_DB
    df.loc[weak, "advice"] = "keep in higher precision"
    if not weak.any():
        df.loc[0, "advice"] = f"worst layer, but above {SNR_ADVICE_DB:.0f} dB: fine as it is"
    return df


quantization_error.__doc__ = quantization_error.__doc__.format(db=SNR_ADVICE_DB)


@result
class AutoQuantResult(Result):
    """What :func:`autoquantize` found: the model, its per-layer recipe, and every variant it tried (a frozen
    result; ``to_frame()`` is the table of variants tried)."""

    lite: LiteModel
    recipe: dict
    tried: object  # pandas DataFrame
    baseline_accuracy: float
    float_bytes: int
    notes: list = field(default_factory=list)
    objective: str = "size"

    @property
    def size_ratio(self) -> float:
        return self.float_bytes / self.lite.size

    def to_frame(self):
        """Every variant tried (size, accuracy, drop, recipe, chosen), as a plain DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.tried)

    def _repr_html_(self):
        t = self.tried.drop(columns=["recipe"], errors="ignore")
        head = (f"<p><b>chosen</b>: {self.lite.size:,} bytes, {self.size_ratio:.2f}x smaller than float32; "
                f"recipe {self.recipe}</p>")
        if self.objective == "latency" and "latency_median_ms" in self.tried:
            from .lite import format_ms

            row = self.tried[self.tried.chosen].iloc[0]
            head = (f"<p><b>fastest within the budget</b>: {row.name}, {format_ms(row.latency_median_ms)} "
                    f"({row.speedup:.2f}x float32), {self.lite.size:,} bytes</p>")
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return head + notes + Table(t)._repr_html_()


def pareto_front(table):
    """Rows not beaten by a smaller-and-at-least-as-accurate row (sorted by size)."""
    t = table.sort_values(["size_bytes", "accuracy"], ascending=[True, False])
    best, keep = -np.inf, []
    for i, row in t.iterrows():
        if row.accuracy > best:
            keep.append(i)
            best = row.accuracy
    return t.loc[keep]


OBJECTIVES = ("size", "latency")


def autoquantize(model, data, test, max_drop: float = 0.01, *, objective: str = "size", max_variants: int = 12,
                 progress=True, granularity: str = "channel", threads: int = 1, rounds: int = 5,
                 runs: int = 100) -> AutoQuantResult:
    """The smallest per-layer mix of float / int8 / int4 weights whose test accuracy drop stays within ``max_drop``
    (``objective="size"``, the default), or the fastest variant within it (``objective="latency"``: see
    :func:`fastest_within`; ``threads``, ``rounds`` and ``runs`` shape its timing).

    1. measure each layer's sensitivity: accuracy with only that layer in int4;
    2. start from all layers in int4; while over budget, raise the most sensitive layer still in int4 to int8,
       then (if needed) to float, re-measuring each step;
    3. stop at the first mix within budget (at most ``max_variants`` conversions).
    ``data`` are calibration inputs (kept for the API's symmetry with ``quantize``; weight-only precision needs no
    calibration), ``test=(x, y)`` the accuracy check.
    """
    if objective not in OBJECTIVES:
        raise HomlEdgeError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if objective == "latency":
        return fastest_within(model, data, test, max_drop, threads=threads, rounds=rounds, runs=runs,
                              progress=progress)
    model = _keras.load_model(model)  # a result that holds a model: its .model
    _keras.check_model(model)
    model = _keras.without_training_wrappers(model)   # its layers by the names its .tflite has
    quantization.calibration_array(model, data)  # same input checks as quantize
    xt, yt = test
    float_lite = quantization.quantize(model, "float32")
    base_acc = float_lite.evaluate(xt, yt)
    layers = [l.name for l in model.layers if kernel_of(l) is not None]
    if not layers:
        nested = [f"'{l.name}' ({type(l).__name__})" for l in model.layers if l.weights and hasattr(l, "layers")]
        if nested:
            raise HomlEdgeError(f"the model's weights sit inside the nested model {', '.join(nested)}: autoquantize "
                                "sets a precision per layer of the model itself; rebuild it from the inner layers, "
                                "or use he.quantize(model, 'int4'|'int8')")
        raise HomlEdgeError("the model has no layer with weights to quantize")
    scopes = _layer_scopes(float_lite, [l.name for l in model.layers])
    missing = [n for n in layers if n not in scopes]
    layers = [n for n in layers if n in scopes]
    if not layers:  # a recipe that matches no op would report float32 as "all int4"
        raise HomlEdgeError("no op of the converted file carries a layer's name (its tensors are named "
                            f"{_flatbuffer_first_name(float_lite)!r}...): per-layer precision cannot be set; use "
                            "he.quantize(model, 'int4'|'int8')")
    tried = []
    # the search stops as soon as the budget is met: how many variants it converts is not known in advance
    bar = _progress.bar(progress, None, "autoquantize")

    def variant(recipe: dict, label: str):
        precision = {scopes[name]: p for name, p in recipe.items()}
        lite = quantization.quantize_mixed(model, precision, base="float", granularity=granularity,
                                      name=f"{model.name}-{label}")
        acc = lite.evaluate(xt, yt)
        tried.append({"variant": label, "size_bytes": lite.size, "accuracy": acc, "drop": base_acc - acc,
                      "recipe": dict(recipe), "lite": lite})
        bar.update(1)
        return lite, acc

    sensitivity = {}
    for name in layers:
        if len(tried) >= max_variants - 1:
            break
        _, acc = variant({name: "int4"}, f"only {name} int4")
        sensitivity[name] = base_acc - acc
    recipe = {name: "int4" for name in layers}
    lite, acc = variant(recipe, "all int4")
    order = sorted(layers, key=lambda n: -sensitivity.get(n, 0.0))
    steps = [(n, "int8") for n in order] + [(n, "float") for n in order]
    for name, prec in steps:
        if base_acc - acc <= max_drop or len(tried) >= max_variants:
            break
        recipe = {**recipe, name: prec}
        lite, acc = variant(recipe, ", ".join(f"{n}:{p}" for n, p in recipe.items() if p != "int4") or "all int4")
    bar.set_postfix({"variants": len(tried), "budget": "met" if base_acc - acc <= max_drop else "not met"})
    bar.close()
    table = Table([{k: v for k, v in t.items() if k != "lite"} for t in tried]).set_index("variant")
    within = [t for t in tried if t["drop"] <= max_drop + 1e-12]
    notes = [f"layer {n!r}: no op of the converted file carries its name; left in float" for n in missing]
    if within:
        best = min(within, key=lambda t: t["size_bytes"])
    else:
        best = max(tried, key=lambda t: t["accuracy"])
        notes.append(f"no variant stayed within {max_drop:.2%}; returning the most accurate one")
    table["chosen"] = table.index == best["variant"]
    table.attrs["max_drop"] = max_drop
    return AutoQuantResult(lite=best["lite"], recipe=best["recipe"], tried=table, baseline_accuracy=base_acc,
                           float_bytes=float_lite.size, notes=notes)


def _layer_scopes(float_lite: LiteModel, names: list) -> dict:
    """For each Keras layer, a regex that matches exactly the ops of the converted file it became.

    LiteRT Quantizer matches a recipe's regex against an op's scope, its output tensor names joined by ';' with a
    trailing ';'. Keras 3 scopes those names with a numeric suffix (``model_1/conv1_1/BiasAdd`` for layer
    ``conv1``), so ``/conv1/`` matched nothing and every per-layer mix was the float32 file under another label.
    """
    import re

    from . import _flatbuffer

    model = _flatbuffer.parse(float_lite.content, float_lite.name)
    sg = model.subgraphs[0]
    names = set(names)
    ops = []  # (scope, path components of every fused name: a conv op also carries its batch norm's and ReLU's)
    for op in sg.operators or []:
        outs = [_flatbuffer._text(sg.tensors[int(i)].name) for i in op.outputs if int(i) >= 0]
        if outs:
            ops.append(("".join(f"{o};" for o in outs),
                        {p for o in outs for part in o.split(";") for p in part.split("/")}))
    found = {}
    for layer in names:
        scopes = [scope for scope, parts in ops if layer in parts]  # the exact name first
        if not scopes:  # then Keras 3's suffixed scope (conv1_1), unless that is another layer's own name
            scopes = [scope for scope, parts in ops
                      if any(re.sub(r"_\d+$", "", p) == layer and p not in names for p in parts)]
        if scopes:
            found[layer] = "^(?:" + "|".join(re.escape(s) for s in scopes) + ")$"
    return found


def _flatbuffer_first_name(lite: LiteModel) -> str:
    from . import _flatbuffer

    model = _flatbuffer.parse(lite.content, lite.name)
    sg = model.subgraphs[0]
    return next((_flatbuffer._text(sg.tensors[int(op.outputs[0])].name) for op in sg.operators or [] if len(op.outputs)),
                "")


# layers LiteRT runs slowly in full int8 (its integer LSTM kernel; hard-swish's integer path): a mix keeps them float
PROFILE_MAX_OPS = 80  # autoquantize explains a slow variant op by op only up to this many ops
MIN_SPEEDUP = 1.05  # a variant must beat float32 by this much to be picked for speed: less is timing noise
SLOW_IN_INT8 = ("LSTM", "GRU", "SimpleRNN", "Bidirectional", "RNN", "ConvLSTM2D")


def _slow_layers(model) -> list[str]:
    out = []
    for layer in model.layers:
        act = getattr(getattr(layer, "activation", None), "__name__", "")
        if type(layer).__name__ in SLOW_IN_INT8 or "hard_swish" in act or "hard_silu" in act:
            out.append(layer.name)
    return out


def fastest_within(model, data, test, max_drop: float = 0.01, *, threads: int = 1, rounds: int = 5,
                   runs: int = 100, progress=True) -> AutoQuantResult:
    """The fastest variant whose test accuracy drop stays within ``max_drop``, timed on the real runtime.

    Tries float32, float16, dynamic (int8 weights), int8 (calibrated on ``data``), blockwise int4 weights and,
    where the model has layers LiteRT runs slowly in integer arithmetic (LSTM, GRU, hard-swish), per-layer mixes
    that keep those layers float. Every variant is timed on the test inputs in interleaved rounds
    (:func:`homl_edge.lite.benchmark_many`); the winner is the lowest median latency among those within the
    budget, and never one slower than float32: a variant less than ``MIN_SPEEDUP`` (1.05x) as fast as float32
    loses to it (then float32 is returned and the notes say why). For each variant
    slower than float32 the notes name the op type that takes the time (:meth:`LiteModel.op_times`).
    """
    from .lite import benchmark_many, format_ms

    model = _keras.load_model(model)  # a result that holds a model: its .model
    _keras.check_model(model)
    model = _keras.without_training_wrappers(model)   # its layers by the names its .tflite has
    calib = quantization.calibration_array(model, data)
    xt, yt = test
    slow = _slow_layers(model)
    plans = [("float32", lambda: quantization.quantize(model, "float32"), {"mode": "float32"}),
             ("float16", lambda: quantization.quantize(model, "float16"), {"mode": "float16"}),
             ("dynamic", lambda: quantization.quantize(model, "dynamic"), {"mode": "dynamic"}),
             ("int8", lambda: quantization.quantize(model, "int8", data=calib), {"mode": "int8"}),
             ("int4 block32", lambda: quantization.quantize(model, "int4", granularity="block32"),
              {"mode": "int4", "granularity": "block32"})]
    if slow:
        keep = {f"/{n}/": "float" for n in slow}
        label = ", ".join(slow)
        plans.append((f"dynamic, {label} float",
                      lambda: quantization.quantize_mixed(model, keep, base="int8", name=f"{model.name}-mix-dyn"),
                      {"mode": "dynamic", **{n: "float" for n in slow}}))
        plans.append((f"int8, {label} float", lambda: _int8_keeping_float(model, calib, slow),
                      {"mode": "int8", **{n: "float" for n in slow}}))
    bar = _progress.bar(progress, len(plans) + 1, "autoquantize (latency)")
    notes, made = [], {}
    for label, make, recipe in plans:
        try:
            lite = make()
        except HomlEdgeError as e:
            notes.append(f"{label}: not made ({e})")
            bar.update(1)
            continue
        lite.keep_samples(xt[:64], "test data")
        made[label] = (lite, recipe, lite.evaluate(xt, yt))
        bar.update(1)
    if "float32" not in made:
        raise HomlEdgeError("the float32 conversion failed: nothing to compare the others with")
    lat = benchmark_many({k: v[0] for k, v in made.items()}, xt, threads=threads, runs=runs, rounds=rounds)
    bar.update(1)
    bar.close()
    base_acc = made["float32"][2]
    f32 = lat["float32"]["median_ms"]
    rows = []
    for label, (lite, recipe, acc) in made.items():
        rows.append({"variant": label, "size_bytes": lite.size, "accuracy": acc, "drop": base_acc - acc,
                     "latency_median_ms": lat[label]["median_ms"], "latency_p90_ms": lat[label]["p90_ms"],
                     "latency_spread_ms": lat[label]["spread_ms"], "speedup": f32 / lat[label]["median_ms"],
                     "within_budget": base_acc - acc <= max_drop + 1e-12, "recipe": recipe})
    within = [r for r in rows if r["within_budget"]]
    best = min(within, key=lambda r: r["latency_median_ms"])
    if best["variant"] != "float32" and best["speedup"] < MIN_SPEEDUP:  # never slower than float32
        best = rows[0]
    if best["variant"] == "float32":
        faster = [r for r in rows if r["speedup"] >= MIN_SPEEDUP and r["variant"] != "float32"]
        why = (f"no quantized variant ran at least {MIN_SPEEDUP:.2f}x as fast as float32 here (closer is timing "
               "noise)" if not faster else
               "the faster ones (" + ", ".join(f"{r['variant']} {r['speedup']:.2f}x" for r in faster) +
               f") lose more than {max_drop:.2%} accuracy")
        notes.insert(0, f"float32 is returned ({format_ms(f32)}): {why}")
    else:
        notes.insert(0, f"{best['variant']}: {format_ms(best['latency_median_ms'])}, {best['speedup']:.2f}x "
                        f"float32 ({format_ms(f32)}) within {max_drop:.2%} accuracy")
    for r in rows:
        if r["speedup"] < 1 / MIN_SPEEDUP and r["variant"] != "float32":
            n_ops = sum(made[r["variant"]][0].builtin_ops().values())
            if n_ops > PROFILE_MAX_OPS:  # one timed cut per op: too slow to do unasked on a large graph
                notes.append(f"{r['variant']} is {1 / r['speedup']:.2f}x slower than float32 (not profiled: {n_ops} "
                             "ops; lite.op_times(x) says where the time goes)")
                continue
            try:
                top = made[r["variant"]][0].op_times(xt, runs=max(20, runs // 4)).iloc[0]
                notes.append(f"{r['variant']} is {1 / r['speedup']:.2f}x slower than float32: {top.name} at "
                             f"{r['variant']}: {top.share:.0%} of the time")
            except HomlEdgeError:
                pass
    lat_note = next(iter(lat.values()))
    table = Table(rows).set_index("variant")
    table["chosen"] = table.index == best["variant"]
    table.attrs.update(max_drop=max_drop, objective="latency",
                       latency=f"median of {lat_note['runs']} invokes on {lat_note['samples']} test inputs, best of "
                               f"{lat_note['rounds']} interleaved rounds, {threads} thread(s)")
    return AutoQuantResult(lite=made[best["variant"]][0], recipe=best["recipe"], tried=table,
                           baseline_accuracy=base_acc, float_bytes=made["float32"][0].size, notes=notes,
                           objective="latency")


def _int8_keeping_float(model, calib, layers):
    """Full int8 (calibrated) except ``layers``, kept float: ai-edge-quantizer's static int8 recipe with float
    overrides, on the float32 file."""
    float_lite = quantization.quantize(model, "float32")
    entries = [(".*", "static-int8")] + [(f"/{n}/", "float") for n in layers]
    try:
        content = quantization._aeq(float_lite.content, entries, "channel", calib=calib,
                                    signature_input=quantization._signature_input(float_lite))
    except HomlEdgeError:
        raise
    except Exception as e:  # the quantizer's own failure, in one line
        raise HomlEdgeError(f"ai-edge-quantizer could not make the mix: {str(e).splitlines()[0][:200]}") from None
    return LiteModel(content, name=f"{model.name}-int8-mix", meta={"mode": "mixed", "precision": dict(entries)},
                     _trusted=True)
