"""homl-edge benchmarks (`make bench`): measured in one run, written to benchmarks/RESULTS.md and results.json.

Three reference models built from scratch (weights=None; nothing is downloaded): the digits CNN, MobileNetV2
(alpha 0.5, 128x128) and a small GRU text-style classifier on synthetic sequences. For each: size of every mode
against the float32 .tflite (raw and gzip), accuracy against Keras, LiteRT latency at 1 and 2 threads against
float32; then homl-edge's conversion overhead against the hand-written converter, and each notebook's peak memory.
Exits non-zero when a ratio falls below the floors the core issue states.
"""
import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HOML_EDGE_CACHE", "off")
import homl_edge as he  # noqa: E402

tf = he.tensorflow()
k = tf.keras
FLOORS = {"int8 size ratio (digits)": 3.5, "prune 80% + int8 gzip ratio (digits)": 10.0,
          "int4 size ratio (digits)": 6.0, "cached quantize speed-up": 100.0,
          "channel pruning size ratio (wide conv net)": 3.0, "channel pruning speed-up (wide conv net)": 2.5}


# how the latency columns of the sections before "Side by side" are timed (`run.py older` takes fewer invokes)
TIMING = {"runs": 300, "warmup": 30, "rounds": 3}


def lat_many(lites, x, threads=1):
    """{name: median ms}: the variants of one model timed together on the real inputs x (else the data each was
    made with), interleaved rounds, best median (he.lite.benchmark_many)."""
    got = he.lite.benchmark_many(lites, x, threads=threads, **TIMING)
    return {name: v["median_ms"] for name, v in got.items()}


def bench_model(name, model, train, test, calib, techniques=True):
    (x, y), (xt, yt) = train, test
    keras_pred = model.predict(xt, verbose=0).argmax(-1)
    keras_acc = float((keras_pred == yt).mean()) if yt is not None else None
    variants = {}
    t0 = time.perf_counter()
    failures = {}
    for mode in ("float32", "dynamic", "float16", "int8", "int16x8", "int4"):
        try:
            variants[mode] = he.quantize(model, mode, data=calib)
        except he.HomlEdgeError as e:  # reported in RESULTS.md, not hidden
            failures[mode] = str(e)
    if techniques:
        pruned = he.prune(model, (x, y), sparsity=0.8, epochs=3, progress=False)
        clustered = he.cluster(model, (x, y), clusters=16, progress=False)
        pc = he.cluster(pruned, (x, y), clusters=16, preserve_sparsity=True, progress=False)
        pcqat = he.quantize_aware(pc, (x, y), epochs=1, preserve="both", progress=False)
        variants["prune80+int8"] = he.quantize(pruned, "int8", data=calib)
        variants["cluster16+int8"] = he.quantize(clustered, "int8", data=calib)
        variants["prune+cluster+PCQAT+int8"] = he.quantize(pcqat, "int8", data=calib)
    f32 = variants["float32"]
    rows = []
    # every variant on its calibration inputs (real, never zeros), interleaved rounds, best median
    # all on the same real inputs (an int4 file made from a Keras model keeps no calibration samples)
    l1 = he.lite.benchmark_many(variants, calib[:64], threads=1, **TIMING)
    l2 = he.lite.benchmark_many(variants, calib[:64], threads=2, **TIMING)
    for mode, lite in variants.items():
        pred = lite.predict(xt).argmax(-1)
        rows.append({"mode": mode, "bytes": lite.size, "gzip": lite.gzip_size,
                     "size_ratio": f32.size / lite.size, "gzip_ratio": f32.gzip_size / lite.gzip_size,
                     "accuracy": float((pred == yt).mean()) if yt is not None else None,
                     "accuracy_delta": (float((pred == yt).mean()) - keras_acc) if yt is not None else None,
                     "agreement_with_keras": float((pred == keras_pred).mean()),
                     "latency_ms_1t": l1[mode]["median_ms"], "latency_ms_2t": l2[mode]["median_ms"]})
    base1, base2 = rows[0]["latency_ms_1t"], rows[0]["latency_ms_2t"]
    for r in rows:
        r["speedup_1t"] = base1 / r["latency_ms_1t"]
        r["speedup_2t"] = base2 / r["latency_ms_2t"]
    print(f"{name}: {len(rows)} variants in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"model": name, "params": int(model.count_params()), "keras_accuracy": keras_acc, "rows": rows,
            "failures": failures}


def overhead(model, calib):
    """he.quantize cold against the same conversion by hand; then the cached call."""
    def by_hand():
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([s[None]] for s in calib)
        with he.quiet():
            return conv.convert()

    hand, ours = [], []
    for _ in range(3):  # interleaved, medians: this machine is noisy
        t0 = time.perf_counter(); by_hand(); hand.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); he.quantize(model, "int8", data=calib, cache=False)
        ours.append(time.perf_counter() - t0)
    he.quantize(model, "int8", data=calib)
    t0 = time.perf_counter(); he.quantize(model, "int8", data=calib); cached = time.perf_counter() - t0
    return {"hand_s": float(np.median(hand)), "homl_edge_cold_s": float(np.median(ours)),
            "overhead": float(np.median(ours) / np.median(hand) - 1), "cached_s": cached,
            "cached_speedup": float(np.median(ours) / cached)}


def pruning_criteria(model, train, test, calib):
    """Issue 11's table: magnitude vs taylor vs l1 at 80% sparsity; channel pruning on a conv net wide enough to time."""
    (x, y), (xt, yt) = train, test
    f32 = he.quantize(model, "float32")
    rows = []
    for criterion in ("magnitude", "taylor", "l1"):
        p = he.prune(model, (x, y), sparsity=0.8, epochs=3, criterion=criterion, progress=False)
        lite = he.quantize(p, "int8", data=calib)
        rows.append({"criterion": criterion, "accuracy": lite.evaluate(xt, yt), "gzip": lite.gzip_size,
                     "gzip_ratio": f32.gzip_size / lite.gzip_size,
                     "max_layer_sparsity_error": float((he.sparsity_report(p).sparsity - 0.8).abs().max())})
    narrow_digits = he.prune_channels(model, (x, y), ratio=0.5, epochs=2, progress=False)
    wide = he.models.wide_convnet()
    rng = np.random.default_rng(0)
    xs, ys = rng.random((96, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 96)
    narrow = he.prune_channels(wide, (xs, ys), ratio=0.5, epochs=1, progress=False)
    a, b = he.quantize(wide, "float32"), he.quantize(narrow, "float32")
    both = he.lite.benchmark_many({"wide": a, "narrow": b}, xs[:32], runs=300, warmup=30, rounds=5)
    la, lb = both["wide"]["median_ms"], both["narrow"]["median_ms"]
    return {"criteria": rows, "digits_channels_accuracy": float(narrow_digits.model.evaluate(xt, yt, verbose=0)[1]),
            "wide": {"bytes": a.size, "narrow_bytes": b.size, "size_ratio": a.size / b.size,
                     "ms": la, "narrow_ms": lb, "speedup": la / lb}}


def byom():
    """Issue 16: Keras 3 real architectures (weights=None) straight through the converter, their tf_keras
    translation, channel pruning; recurrent layers as people write them; why an unrolled GRU grows at int8."""
    import keras

    rng = np.random.default_rng(0)
    apps = {"MobileNetV2 (alpha 0.35)": lambda: keras.applications.MobileNetV2(
                input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10),
            "MobileNetV3Small": lambda: keras.applications.MobileNetV3Small(
                input_shape=(96, 96, 3), weights=None, classes=10),
            "EfficientNetB0": lambda: keras.applications.EfficientNetB0(input_shape=(96, 96, 3), weights=None,
                                                                        classes=10),
            "ResNet50": lambda: keras.applications.ResNet50(input_shape=(96, 96, 3), weights=None, classes=10)}
    imgs = rng.uniform(0, 255, (48, 96, 96, 3)).astype("float32")
    labels = rng.integers(0, 10, 48)
    out = {"apps": [], "recurrent": []}
    for name, build in apps.items():
        keras.utils.set_random_seed(0)
        m = build()
        m.compile("adam", "sparse_categorical_crossentropy")
        t0 = time.perf_counter()
        diff = float(np.abs(he.to_legacy(m).predict(imgs[:4], verbose=0) - m.predict(imgs[:4], verbose=0)).max())
        ref = m.predict(imgs[:32], verbose=0).argmax(-1)
        row = {"model": name, "params": int(m.count_params()), "translation_max_diff": diff}
        lites = {mode: he.quantize(m, mode, data=imgs[:32], cache=False) for mode in ("float32", "int8", "int4")}
        for mode, lite in lites.items():
            row[mode] = {"bytes": lite.size, "agreement": float((lite.predict(imgs[:32]).argmax(-1) == ref).mean())}
        try:
            narrow = he.prune(m, (imgs, labels), channels=0.5, epochs=1, progress=False)
            widths = narrow.channels
            lites["channels"] = nl = he.quantize(narrow, "float32", cache=False)
            row["channels"] = {"narrowed": int((widths.after < widths.before).sum()), "layers": len(widths),
                               "bytes": nl.size, "flavour": he._keras.flavour(narrow.model)}
        except he.HomlEdgeError as e:
            row["channels"] = {"error": str(e)}
        for mode, ms in lat_many(lites, imgs[:32]).items():  # timed together: ratios from one run
            row[mode]["ms"] = ms
        row["seconds"] = time.perf_counter() - t0
        out["apps"].append(row)
        print(name, row, flush=True)
    (x, y), (xt, yt) = he.datasets.digits()
    xs, xts = x[..., 0], xt[..., 0]
    L = keras.layers
    for kind, body in (("LSTM(128)", [L.LSTM(128)]), ("GRU(128)", [L.GRU(128)]), ("SimpleRNN(128)", [L.SimpleRNN(128)]),
                       ("Bidirectional(LSTM(64))", [L.Bidirectional(L.LSTM(64))]),
                       ("Conv1D(32)+LSTM(64)", [L.Conv1D(32, 3, activation="relu"), L.LSTM(64)])):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((8, 8))] + body + [L.Dense(10, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
        m.fit(xs, y, epochs=3, verbose=0)
        row = {"model": kind, "keras_accuracy": float(m.evaluate(xts, yt, verbose=0)[1])}
        lites = {}
        for mode in ("float32", "dynamic", "int8"):
            try:
                lites[mode] = lite = he.quantize(m, mode, data=xs[:200], cache=False)
                row[mode] = {"bytes": lite.size, "accuracy": lite.evaluate(xts, yt)}
            except he.HomlEdgeError as e:
                row[mode] = {"error": str(e).split(":")[0]}
        for mode, ms in lat_many(lites, xts[:64]).items():  # the test rows, timed together
            row[mode]["ms"] = ms
        out["recurrent"].append(row)
        print(kind, row, flush=True)
    out["unrolled_gru"] = unrolled_gru(rng)
    return out


def unrolled_gru(rng):
    """Where the bytes of the unrolled GRU of this benchmark go, float32 against int8: weight matrices, 1-D constants
    (biases), and the rest of the file (tensor tables, quantization parameters, op lists)."""
    k_ = he._keras.legacy()
    k_.utils.set_random_seed(0)
    g = k_.Sequential([k_.Input((40,)), k_.layers.Embedding(500, 32), k_.layers.GRU(32, unroll=True),
                       k_.layers.Dense(2, activation="softmax")])
    seq = rng.integers(1, 500, (200, 40)).astype("float32")
    out = {}
    for mode in ("float32", "int8"):
        lite = he.quantize(g, mode, data=seq if mode == "int8" else None, cache=False)
        interp = lite.interpreter()
        matrices = vectors = 0
        n_matrices = n_vectors = n_quantized = 0
        for t in lite.tensors():
            n_quantized += t["scale"] is not None
            try:
                nbytes = interp.get_tensor(t["index"]).nbytes
            except ValueError:
                continue
            if len(t["shape"]) == 2 and min(t["shape"]) > 1:
                matrices += nbytes
                n_matrices += 1
            elif len(t["shape"]) == 1:
                vectors += nbytes
                n_vectors += 1
        out[mode] = {"bytes": lite.size, "tensors": len(lite.tensors()), "quantized_tensors": n_quantized,
                     "ops": sum(lite.ops.values()), "matrix_bytes": matrices, "matrices": n_matrices,
                     "vector_bytes": vectors, "vectors": n_vectors}
    print("unrolled GRU", out, flush=True)
    return out


def notebook_memory():
    out = {}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        r = subprocess.run([sys.executable, str(ROOT / "scripts/run_notebooks.py"), "--no-write", nb.stem],
                           capture_output=True, text=True, cwd=ROOT)
        m = re.search(r"ran in (\d+) s, kernel peak memory (\d+) MB", r.stdout)
        out[nb.stem] = {"seconds": int(m.group(1)), "peak_mb": int(m.group(2))} if m else {"error": r.stdout[-300:]}
        print(nb.stem, out[nb.stem], flush=True)
    return out


def _digit_images(x, size):
    """The digits as real images for the applications: 8x8 upscaled to size x size, three channels, 0-255."""
    f = size // 8
    return np.repeat(np.kron(x[..., 0], np.ones((f, f), np.float32))[..., None], 3, -1) * 255.0


def _plain_converter(model, optimize):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if optimize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    with he.quiet():
        return he.LiteModel(conv.convert(), name="converter")


def _keras3_route(model, mode, path):
    """Keras 3's own route: model.quantize(mode) on a copy, then export(format="litert")."""
    import keras

    if he._keras.is_keras3(model):
        m = keras.models.clone_model(model)
    else:  # the digits CNN is a tf_keras model: the same layers in Keras 3 (weights copy over exactly)
        L = keras.layers
        m = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(32, 3), L.BatchNormalization(), L.ReLU(), L.Flatten(),
                              L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")])
    m.set_weights(model.get_weights())
    m.quantize(mode)
    with he.quiet():
        m.export(str(path), format="litert")
    return he.load_lite(path)


def _first_line(e):
    text = " ".join(str(e).split())
    m = re.search(r"('tfl?\.[A-Za-z_]+' op .{0,240}?)(?: <unknown>| see current operation|$)", text) or \
        re.search(r"error: ([^\n]{0,200})", text)
    return (m.group(1) if m else text[:200]).replace("|", "/")


def speed(only=(), on_model=None):
    """Issue 25: each model's variants side by side, all timed by benchmark_many (real inputs, interleaved rounds):
    the plain converter, Keras 3's quantize + export, ai-edge-quantizer's default recipes on the float file, and
    homl-edge's size- and latency-optimal picks; size, accuracy, latency, throughput at batch 32; the seeds'
    claims checked model by model."""
    import tempfile

    import keras

    os.environ["HOML_EDGE_CACHE"] = str(ROOT / "benchmarks/.cache")  # conversions are reused between runs
    (x, y), (xt, yt) = he.datasets.digits()
    L = keras.layers
    models = {}
    models["digits CNN"] = (he.models.trained_digits_cnn()[0], x[:200], xt, yt, "conv")
    size = 64
    xi, xti = _digit_images(x[:64], size), _digit_images(xt[:96], size)
    for name, build in (("MobileNetV2", lambda: keras.applications.MobileNetV2(
                             input_shape=(size, size, 3), alpha=0.5, weights=None, classes=10)),
                        ("MobileNetV3Small", lambda: keras.applications.MobileNetV3Small(
                            input_shape=(size, size, 3), weights=None, classes=10)),
                        ("EfficientNetB0", lambda: keras.applications.EfficientNetB0(
                            input_shape=(size, size, 3), weights=None, classes=10)),
                        ("ResNet50", lambda: keras.applications.ResNet50(
                            input_shape=(size, size, 3), weights=None, classes=10))):
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        keras.utils.set_random_seed(0)
        m = build()
        models[name] = (m, xi, xti, None, "conv")
    for kind, layer in (("LSTM(128)", L.LSTM), ("GRU(128)", L.GRU)):
        if only and not any(o.lower() in kind.lower() for o in only):
            continue
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((8, 8)), layer(128), L.Dense(10, activation="softmax")], name=kind.split("(")[0].lower())
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
        m.fit(x[..., 0], y, epochs=3, verbose=0)
        models[kind] = (m, x[:200, ..., 0], xt[..., 0], yt, "rnn")
    out = []
    first = ["digits CNN", "LSTM(128)", "GRU(128)"]  # the small ones first: a stopped run still has them
    for name in sorted(models, key=lambda n: (n not in first, list(models).index(n))):
        m, calib, xe, ye, family = models[name]
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        t0 = time.perf_counter()
        f32 = he.quantize(m, "float32")
        if ye is None:  # random weights: "accuracy" is agreement with the float32 file's argmax
            ye = f32.predict(xe).argmax(-1)
        variants, failures = {"float32 (homl-edge)": f32}, {}

        def attempt(label, make):
            try:
                variants[label] = make()
            except Exception as e:  # every route's failure is quoted, not hidden
                failures[label] = _first_line(e)

        attempt("converter defaults", lambda: _plain_converter(m, False))
        attempt("converter Optimize.DEFAULT", lambda: _plain_converter(m, True))
        with tempfile.TemporaryDirectory() as d:
            attempt("Keras 3 quantize int8 + export", lambda: _keras3_route(m, "int8", Path(d, "k8.tflite")))
            attempt("Keras 3 quantize int4 + export", lambda: _keras3_route(m, "int4", Path(d, "k4.tflite")))
        for label, mode in (("quantizer dynamic_wi8_afp32", "dynamic"), ("quantizer dynamic_wi4_afp32", "int4"),
                            ("quantizer static_wi8_ai8", "int8")):
            attempt(label, lambda mode=mode: he.quantize(f32, mode, data=calib if mode == "int8" else None))
        for mode in ("float16", "dynamic", "int8"):
            attempt(f"{mode} (homl-edge)", lambda mode=mode: he.quantize(m, mode, data=calib))
        picks = {}
        for objective in ("size", "latency"):
            try:
                r = he.autoquantize(m, calib, (xe, ye), max_drop=0.01, objective=objective, progress=False,
                                    max_variants=4 if family == "conv" and name != "digits CNN" else 12)
                variants[f"homl-edge {objective} pick"] = r.lite
                picks[objective] = {"variant": str(r.tried.index[r.tried.chosen][0]), "notes": r.notes}
            except Exception as e:
                failures[f"homl-edge {objective} pick"] = _first_line(e)
        for lite in variants.values():
            lite.keep_samples(xe[:64], "test data")
        big = name in ("ResNet50", "EfficientNetB0")  # more rounds where they are cheap: a loaded machine
        lat = he.lite.benchmark_many(variants, xe[:64], runs=60 if big else 150, rounds=5 if big else 15)
        base = lat["float32 (homl-edge)"]["median_ms"]
        rows = []
        for label, lite in variants.items():
            acc = float((lite.predict(xe).argmax(-1) == ye).mean())
            tp = lite.throughput(xe, batch_sizes=(32,), threads=(1,), seconds=0.3)
            t32 = tp.samples_per_s.iloc[0]
            if not np.isfinite(t32):  # fixed batch: its batch-1 rate, said so
                t32 = lite.throughput(xe, batch_sizes=(1,), threads=(1,), seconds=0.3).samples_per_s.iloc[0]
            rows.append({"variant": label, "bytes": lite.size, "size_ratio": f32.size / lite.size,
                         "accuracy": acc, "accuracy_delta": acc - float((f32.predict(xe).argmax(-1) == ye).mean()),
                         "ms": lat[label]["median_ms"], "spread_ms": lat[label]["spread_ms"],
                         "speedup": base / lat[label]["median_ms"], "cold_ms": lat[label]["cold_start_ms"],
                         "samples_per_s_b32": float(t32), "batch_free": lite.fixed_batch is None,
                         "sha256": lite.sha256[:16]})
        profile = None
        i8 = variants.get("int8 (homl-edge)")
        if i8 is not None and base / lat["int8 (homl-edge)"]["median_ms"] < 1 and len(i8.builtin_ops()) <= 80:
            top = i8.op_times(xe[:32], runs=30, rounds=2).iloc[0]
            profile = f"{top.name}: {top.share:.0%} of the int8 time"
        out.append({"model": name, "family": family, "labels": "test labels" if family == "rnn" or
                    name == "digits CNN" else "float32 argmax (random weights)", "rows": rows,
                    "failures": failures, "picks": picks, "int8_profile": profile, "rounds": 5 if big else 15,
                    "seconds": time.perf_counter() - t0})
        print(name, f"{time.perf_counter() - t0:.0f} s", {r["variant"]: round(r["speedup"], 2) for r in rows},
              failures, flush=True)
        if on_model:
            on_model(out)
    return out


def main():
    if sys.argv[1:] == ["byom"]:  # only the bring-your-own-model part, merged into the last full run's results
        results = json.loads((ROOT / "benchmarks/results.json").read_text())
        results["byom"] = byom()
        write(results)
        return
    if sys.argv[1:] == ["write"]:  # RESULTS.md again from results.json, measuring nothing
        write(json.loads((ROOT / "benchmarks/results.json").read_text()))
        return
    if sys.argv[1:2] == ["speed"]:  # only the side-by-side speed tables (issue 25), merged likewise
        results = json.loads((ROOT / "benchmarks/results.json").read_text())
        keep = results.get("speed", []) if sys.argv[2:] else []
        order = ["digits CNN", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "ResNet50", "LSTM(128)",
                 "GRU(128)"]

        def merge(fresh):  # named models replace their rows, the others stay; written after every model
            names = [m["model"] for m in fresh]
            results["speed"] = sorted([m for m in keep if m["model"] not in names] + fresh,
                                      key=lambda m: order.index(m["model"]))
            write(results)

        speed(sys.argv[2:], on_model=merge)
        return
    if sys.argv[1:] == ["gru"]:  # only the unrolled GRU's byte count, merged likewise
        results = json.loads((ROOT / "benchmarks/results.json").read_text())
        results["byom"]["unrolled_gru"] = unrolled_gru(np.random.default_rng(0))
        write(results)
        return
    if sys.argv[1:2] == ["older"]:  # the sections before "Side by side" again, on real inputs (issue 25), merged
        results = json.loads((ROOT / "benchmarks/results.json").read_text())
        TIMING.update(runs=100, warmup=10, rounds=5)  # a loaded machine
        os.environ["HOML_EDGE_CACHE"] = str(ROOT / "benchmarks/.cache")  # conversions reused between runs

        def save(res):  # after every section: a stopped run keeps what it measured
            res.update(timing=dict(TIMING), older_measured=time.strftime("%Y-%m-%d"))
            write(res)

        unknown = set(sys.argv[2:]) - {"digits", "mobilenet", "gru", "pruning", "byom"}
        if unknown:
            sys.exit(f"run.py older takes sections among digits, mobilenet, gru, pruning, byom; not {sorted(unknown)}")
        older(results, sys.argv[2:], on_section=save)
        return
    results = {"machine": {"cpus": os.cpu_count(), "tensorflow": tf.__version__}, "real_inputs": True,
               "timing": dict(TIMING)}
    older(results)
    results["overhead"] = overhead(he.models.trained_digits_cnn()[0], he.datasets.digits()[0][0][:200])
    results["speed"] = speed()
    results["notebooks"] = notebook_memory()
    write(results)
    d = {r["mode"]: r for r in results["digits"]["rows"]}
    checks = {"int8 size ratio (digits)": d["int8"]["size_ratio"],
              "prune 80% + int8 gzip ratio (digits)": d["prune80+int8"]["gzip_ratio"],
              "int4 size ratio (digits)": d["int4"]["size_ratio"],
              "cached quantize speed-up": results["overhead"]["cached_speedup"],
              "channel pruning size ratio (wide conv net)": results["pruning"]["wide"]["size_ratio"],
              "channel pruning speed-up (wide conv net)": results["pruning"]["wide"]["speedup"]}
    failed = [f"{k_}: {v:.2f} < {FLOORS[k_]}" for k_, v in checks.items() if v < FLOORS[k_]]
    for f in failed:
        print("BELOW FLOOR:", f)
    sys.exit(1 if failed else 0)


def older(results, only=(), on_section=None):
    """The sections before the side-by-side tables: digits CNN, MobileNetV2 0.5 128px and the GRU text classifier
    in every mode, the pruning criteria, the Keras 3 applications and recurrent layers (all latencies on real
    inputs, the variants of a model timed together). ``only``: some of digits, mobilenet, gru, pruning, byom;
    ``on_section(results)`` after each one."""
    def want(section):
        return not only or section in only

    def done(section):  # which sections this results.json has on real inputs (the others: zeros, before issue 25)
        results["older_sections"] = sorted(set(results.get("older_sections") or []) | {section})
        if on_section:
            on_section(results)

    (x, y), (xt, yt) = he.datasets.digits()
    digits, _ = he.models.trained_digits_cnn()
    calib = x[:200]
    if want("digits"):
        results["digits"] = bench_model("digits CNN", digits, (x, y), (xt, yt), calib)
        done("digits")
    rng = np.random.default_rng(0)
    imgs = rng.random((64, 128, 128, 3), dtype=np.float32)
    if want("mobilenet"):
        k.utils.set_random_seed(0)
        mnet = k.applications.MobileNetV2(input_shape=(128, 128, 3), alpha=0.5, weights=None, classes=10)
        results["mobilenet"] = bench_model("MobileNetV2 0.5 128px (weights=None)", mnet, (imgs, None),
                                           (imgs[:32], None), imgs[:32], techniques=False)
        done("mobilenet")
    if want("gru"):
        vocab, length = 500, 40
        seq = rng.integers(1, vocab, (3000, length))
        labels = (np.isin(seq, np.arange(1, 50)).sum(1) > np.isin(seq, np.arange(50, 100)).sum(1)).astype("int64")
        gru = k.Sequential([k.Input((length,)), k.layers.Embedding(vocab, 32), k.layers.GRU(32, unroll=True),
                            k.layers.Dense(2, activation="softmax")], name="gru_text")
        gru.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        gru.fit(seq[:2500], labels[:2500], epochs=4, verbose=0)
        results["gru"] = bench_model("GRU text classifier (synthetic)", gru, (seq[:2500], labels[:2500]),
                                     (seq[2500:], labels[2500:]), seq[:200].astype("float32"), techniques=False)
        done("gru")
    if want("pruning"):
        results["pruning"] = pruning_criteria(digits, (x, y), (xt, yt), calib)
        done("pruning")
    if want("byom"):
        results["byom"] = byom()
        done("byom")


def write(res):
    (ROOT / "benchmarks/results.json").write_text(json.dumps(res, indent=1, default=float))
    lines = ["# homl-edge benchmarks", "", f"Measured by `make bench` in one run on {res['machine']['cpus']} CPU cores, "
             f"TensorFlow {res['machine']['tensorflow']}, LiteRT; ratios against the float32 `.tflite` of the same "
             "model (size: times smaller; speed-up: times faster, " + _method(res) + ").", ""]
    for key in ("digits", "mobilenet", "gru"):
        r = res[key]
        lines += [f"## {r['model']} ({r['params']:,} parameters)" + _zeros_mark(res, key), "",
                  "| mode | bytes | size x | gzip x | accuracy delta | agreement with Keras | ms 1 thread | speed-up 1t | ms 2 threads | speed-up 2t |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in r["rows"]:
            acc = "n/a" if row["accuracy_delta"] is None else f"{100 * row['accuracy_delta']:+.2f} pt"
            lines.append(f"| {row['mode']} | {row['bytes']:,} | {row['size_ratio']:.2f} | {row['gzip_ratio']:.2f} | {acc} | "
                         f"{100 * row['agreement_with_keras']:.1f}% | {row['latency_ms_1t']:.4f} | {row['speedup_1t']:.2f} | "
                         f"{row['latency_ms_2t']:.4f} | {row['speedup_2t']:.2f} |")
        for mode, why in r.get("failures", {}).items():
            lines.append(f"| {mode} | failed: {why} | | | | | | | | |")
        lines.append("")
    pr = res["pruning"]
    lines += ["## Pruning criteria at 80% sparsity, then int8 (digits CNN)" + _zeros_mark(res, "pruning"), "",
              "| criterion | accuracy | gzip bytes | gzip x vs float32 | worst layer's sparsity error |",
              "|---|---:|---:|---:|---:|"]
    for row in pr["criteria"]:
        lines.append(f"| {row['criterion']} | {100 * row['accuracy']:.2f}% | {row['gzip']:,} | {row['gzip_ratio']:.2f} | "
                     f"{100 * row['max_layer_sparsity_error']:.2f} pt |")
    w = pr["wide"]
    lines += ["", f"Channel pruning, ratio 0.5: digits CNN accuracy after 2 epochs of fine-tuning "
              f"{100 * pr['digits_channels_accuracy']:.2f}% (Keras {100 * res['digits']['keras_accuracy']:.2f}%); "
              f"four 3x3 conv layers of 64 filters on 32x32 inputs: float32 .tflite {w['bytes']:,} -> "
              f"{w['narrow_bytes']:,} bytes ({w['size_ratio']:.2f}x smaller), LiteRT 1 thread {w['ms']:.3f} -> "
              f"{w['narrow_ms']:.3f} ms ({w['speedup']:.2f}x faster).", ""]
    if "byom" in res:
        lines += byom_lines(res["byom"], _zeros_mark(res, "byom"))
    if "speed" in res:
        lines += speed_lines(res["speed"])
    o = res["overhead"]
    lines += ["## he.quantize against the hand-written converter (digits CNN, int8)", "",
              f"hand: {o['hand_s']:.2f} s, homl-edge cold: {o['homl_edge_cold_s']:.2f} s (overhead {100 * o['overhead']:+.1f}%), "
              f"cached: {1000 * o['cached_s']:.2f} ms ({o['cached_speedup']:.0f}x faster). Physical limit of int8 "
              "weights: 4x; of int4: 8x.", "", "## Notebooks", "", "| notebook | seconds | kernel peak MB |", "|---|---:|---:|"]
    if set(res["notebooks"]) != {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}:
        lines[-2:-2] = ["(from the last full `make bench`; chapters added since then are measured by their own last "
                        "cell, which asserts the 1.5 GB limit in every test run)", ""]
    for nb, v in res["notebooks"].items():
        lines.append(f"| {nb} | {v.get('seconds', 'error')} | {v.get('peak_mb', 'error')} |")
    # the converter-vs-quantizer comparison (quantizer_paths.py) and why int8 MobileNetV2 is not faster (int8_speed.py)
    extras = [ROOT / "benchmarks/quantizer_paths.md", ROOT / "benchmarks/int8_speed.md"]
    (ROOT / "benchmarks/RESULTS.md").write_text("\n".join(lines) + "\n"
                                                 + "".join("\n" + e.read_text() for e in extras if e.is_file()))
    print("\n".join(lines))


def _us(ms):
    return f"{ms * 1e3:.1f} µs" if ms < 1 else f"{ms:.2f} ms"


CLAIMS = ("4x smaller (int8)", "10-50% faster for conv nets (int8)", "RNNs up to 3x faster (fastest quantized)",
          "weights-only quantization gives no speed-up (dynamic, int4 weights)")


def claim_rows(m):
    """The seeds' four claims against one model's measured rows: (claim, measured, verdict and reason)."""
    r = {row["variant"]: row for row in m["rows"]}
    out = []
    i8 = r.get("int8 (homl-edge)")
    if i8:
        ok = i8["size_ratio"] >= 3.5   # the rule of chapter 13 and of FLOORS: "about 4x"
        out.append((CLAIMS[0], f"{i8['size_ratio']:.2f}x", "holds" if ok else
                    "fails: the graph, int32 biases and float ops stay (more of a small or recurrent file)"))
        if m["family"] == "conv":
            s = i8["speedup"]
            verdict = ("holds" if 1.1 <= s <= 1.5 else "faster than claimed: XNNPACK's int8 kernels" if s > 1.5
                       else ("fails: about as fast: XNNPACK's int8 depthwise convolutions and ADDs are slower than "
                             "float32's on this CPU and cancel its faster int8 1x1 convolutions (see \"Why int8 "
                             "MobileNetV2 is not 1.5x faster\" below)" if m["model"] == "MobileNetV2" else
                             "fails: about as fast (where the time goes: lite.op_times)") if s >= 1.0
                       else "fails: slower; " + (m["int8_profile"] or "not profiled (too many ops)"))
            out.append((CLAIMS[1], f"{s:.2f}x", verdict))
    if m["family"] == "rnn":
        quant = [row for row in m["rows"] if row["variant"] not in ("float32 (homl-edge)", "converter defaults")
                 and "pick" not in row["variant"]]
        best = max(quant, key=lambda row: row["speedup"])
        s = best["speedup"]
        out.append((CLAIMS[2], f"{s:.2f}x ({best['variant']})", "holds" if 1 < s <= 3 else
                    "more than claimed" if s > 3 else "fails: no quantized variant is faster"
                    + (f"; {m['int8_profile']}" if m["int8_profile"] else "")))
    w = [row for row in m["rows"] if row["variant"] in ("dynamic (homl-edge)", "quantizer dynamic_wi4_afp32")]
    if w:
        text = ", ".join(f"{row['variant'].split(' (')[0]} {row['speedup']:.2f}x" for row in w)
        none = all(0.9 <= row["speedup"] <= 1.1 for row in w)
        why = []
        if any(row["speedup"] > 1.1 for row in w):
            why.append("faster: dynamic range runs hybrid kernels (activations quantized on the fly, int8 multiplies)")
        if any(row["speedup"] < 0.9 for row in w):
            why.append("slower: the weights are dequantized at run time (per invoke, or per step in a loop)")
        out.append((CLAIMS[3], text, "holds" if none else "fails: " + "; ".join(why)))
    return out


def speed_goals(speed):
    """(model, goal, measured, met): the issue's goals, from the one run's ratios (timings, so not a test)."""
    out = []
    for m in speed:
        r = {row["variant"]: row for row in m["rows"]}
        pick = r.get("homl-edge latency pick")
        if not pick:
            continue
        # a row with the pick's bytes is the same file: their ratio is this run's timing noise, not a result
        single = [row for row in m["rows"] if "pick" not in row["variant"] and row["accuracy_delta"] >= -0.01
                  and row["bytes"] != pick["bytes"]] or [r["float32 (homl-edge)"]]
        best = max(single, key=lambda row: row["speedup"])
        if pick["bytes"] == r["float32 (homl-edge)"]["bytes"]:
            out.append((m["model"], "latency pick never slower than float32",
                        f"the float32 file itself ({pick['speedup']:.2f}x: this run's noise)", True))
        else:
            out.append((m["model"], "latency pick never slower than float32", f"{pick['speedup']:.2f}x",
                        pick["speedup"] >= 0.95))  # 5%: the pick was timed again here, beside the others
        out.append((m["model"], "latency pick at least as fast as the fastest single mode within 1 point",
                    f"{pick['speedup']:.2f}x vs {best['variant']} {best['speedup']:.2f}x",
                    pick["speedup"] >= 0.95 * best["speedup"]))
        floor = {"ResNet50": ("int8 (homl-edge)", 3.0), "MobileNetV2": ("int8 (homl-edge)", 1.5),
                 "LSTM(128)": ("homl-edge latency pick", 1.2)}.get(m["model"])
        if floor and floor[0] in r:
            row = r[floor[0]]
            ok = row["speedup"] >= floor[1] and (floor[0] != "homl-edge latency pick" or row["accuracy_delta"] >= -0.01)
            out.append((m["model"], f"{floor[0].split(' (')[0]} at least {floor[1]}x faster than float32",
                        f"{row['speedup']:.2f}x ({100 * row['accuracy_delta']:+.2f} pt)", ok))
    return out


def speed_lines(speed):
    lines = ["## Side by side: every route, timed the same way (issue 25)", "",
             "Each model's variants are timed together by `he.lite.benchmark_many`: real inputs (the test digits; "
             "for the applications, digits upscaled to 64x64x3), a different one per invoke, interleaved rounds "
             "(how many: beside each model), best median, 1 thread; cold start = bytes to interpreter to first result; throughput = samples/s "
             "at batch 32 (batch 1 where the file's batch is fixed). Accuracy: test labels for the digits CNN and "
             "the RNNs; agreement with the float32 file's argmax for the random-weight applications.", ""]
    for m in speed:
        lines += [f"### {m['model']} ({m['seconds']:.0f} s; {m.get('rounds', 5)} interleaved rounds)", "",
                  "| variant | bytes | size x | accuracy | latency | speed-up | round spread | cold start | "
                  "samples/s b32 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in m["rows"]:
            tp = f"{r['samples_per_s_b32']:,.0f}" + ("" if r["batch_free"] else " (b1, fixed)")
            lines.append(f"| {r['variant']} | {r['bytes']:,} | {r['size_ratio']:.2f} | {100 * r['accuracy']:.2f}% | "
                         f"{_us(r['ms'])} | {r['speedup']:.2f} | {_us(r['spread_ms'])} | {_us(r['cold_ms'])} | {tp} |")
        for label, err in m["failures"].items():
            lines.append(f"| {label} | failed: {err} | | | | | | | |")
        twins = {}
        for r in m["rows"]:
            twins.setdefault(r.get("sha256"), []).append(r)
        for same in (v for k_, v in twins.items() if k_ and len(v) > 1):
            lines += ["", "Same file timed twice in this run (the measurement's noise): " +
                      ", ".join(f"{r['variant']} {r['speedup']:.2f}x" for r in same)]
        for objective, p in m["picks"].items():
            lines += ["", f"homl-edge {objective} pick: {p['variant']}" +
                      (f" ({p['notes'][0]})" if p["notes"] else "")]
        lines.append("")
    lines += ["### Goals (issue 25), measured in this run", "", "| model | goal | measured | met |", "|---|---|---:|---|"]
    goals = speed_goals(speed)
    for model, goal, measured, met in goals:
        lines.append(f"| {model} | {goal} | {measured} | {'yes' if met else '**no**'} |")
    if any(model == "MobileNetV2" and goal.startswith("int8") and not met for model, goal, _, met in goals) and \
            (ROOT / "benchmarks/int8_speed.md").is_file():
        lines += ["", "MobileNetV2's int8 goal: why it fails here, op type by op type, at other input sizes and widths "
                  "and with every runtime option LiteRT exposes, is in \"Why int8 MobileNetV2 is not 1.5x faster "
                  "than float32 here\" at the end (`benchmarks/int8_speed.py`)."]
    lines += ["", "### The seeds' claims, model by model", "", "| model | claim | measured | verdict |",
              "|---|---|---:|---|"]
    for m in speed:
        for claim, measured, verdict in claim_rows(m):
            lines.append(f"| {m['model']} | {claim} | {measured} | {verdict} |")
    return lines + [""]


def _method(res):
    """How the latency columns of the sections before "Side by side" were measured (said once, at the top)."""
    t = res.get("timing", TIMING)
    real = ("the variants of a model timed together on real inputs, a different one per invoke, best median of "
            f"{t['rounds']} interleaved rounds of {t['runs']} invokes; inputs: the calibration digits, random images "
            "for the random-weight MobileNetV2 and applications, the synthetic sequences, the test rows for the "
            "recurrent layers")
    if res.get("real_inputs"):
        return real
    if res.get("older_sections"):
        return (real + f"; re-measured {res.get('older_measured')} by `python benchmarks/run.py older`, under load "
                "from other processes on the same 2 cores; a section marked 'measured on zeros' is from the run "
                "before issue 25")
    return ("median of 300 invokes on all-zero inputs, as measured before issue 25: the tables down to the "
            "side-by-side section are from that run, until the next full `make bench`")


def _zeros_mark(res, section):
    """A section of the run before issue 25 that has not been re-measured since says so in its heading."""
    if res.get("real_inputs") or section in (res.get("older_sections") or []):
        return ""
    return " — latency measured on zeros (before issue 25), not comparable"


def byom_lines(b, mark=""):
    lines = ["## Your own model: Keras 3 applications (weights=None, 96x96 inputs)" + mark, "",
             "Converted straight from Keras 3; the tf_keras translation (for TF-MOT and TF.js) is checked against "
             "the original. Agreement: argmax equal to Keras 3 on 32 random images (random weights: no accuracy).", "",
             "| model | parameters | translation max diff | float32 bytes | int8 x | int4 x | float32 ms | int8 speed-up | "
             "int4 speed-up | int8 agreement | channels 0.5: layers narrowed | size x | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in b["apps"]:
        f, q, q4, c = r["float32"], r["int8"], r["int4"], r["channels"]
        ch = (f"{c['narrowed']} of {c['layers']} | {f['bytes'] / c['bytes']:.2f} | {f['ms'] / c['ms']:.2f}"
              if "error" not in c else f"{c['error'][:80]} | | ")
        lines.append(f"| {r['model']} | {r['params']:,} | {r['translation_max_diff']:.1g} | {f['bytes']:,} | "
                     f"{f['bytes'] / q['bytes']:.2f} | {f['bytes'] / q4['bytes']:.2f} | {f['ms']:.3f} | "
                     f"{f['ms'] / q['ms']:.2f} | {f['ms'] / q4['ms']:.2f} | {100 * q['agreement']:.0f}% | {ch} |")
    lines += ["", "## Recurrent layers as people write them (Keras 3, not unrolled; digits rows as sequences)" + mark,
              "",
              "| model | Keras accuracy | float32 bytes | dynamic x | int8 x | float32 ms | dynamic speed-up | "
              "int8 speed-up | int8 accuracy |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in b["recurrent"]:
        f, d, q = r["float32"], r["dynamic"], r["int8"]
        if "error" in q:
            qs = f"refused | | {q['error'][:60]}"
        else:
            qs = f"{f['bytes'] / q['bytes']:.2f} | {f['ms']:.3f} | {f['ms'] / d['ms']:.2f} | {f['ms'] / q['ms']:.2f} | {100 * q['accuracy']:.2f}%"
        if "error" in q:
            lines.append(f"| {r['model']} | {100 * r['keras_accuracy']:.2f}% | {f['bytes']:,} | {f['bytes'] / d['bytes']:.2f} | "
                         f"refused (WHILE loop, tensorflow#62281) | {f['ms']:.3f} | {f['ms'] / d['ms']:.2f} | | |")
        else:
            lines.append(f"| {r['model']} | {100 * r['keras_accuracy']:.2f}% | {f['bytes']:,} | {f['bytes'] / d['bytes']:.2f} | {qs} |")
    u = b["unrolled_gru"]
    if "float32" in u:
        f, q = u["float32"], u["int8"]
        rest_f = f["bytes"] - f["matrix_bytes"] - f["vector_bytes"]
        rest_q = q["bytes"] - q["matrix_bytes"] - q["vector_bytes"]
        lines += ["", "Where the bytes of an unrolled GRU go: an untrained model of the same architecture as the GRU text "
                  "classifier above (Embedding(500, 32) + GRU(32, unroll=True) over 40 steps), calibrated on random "
                  f"sequences (its int8 file is {q['bytes'] / f['bytes']:.2f}x its float32 file; the trained one's ratio "
                  "is in the table above, and the next full `make bench` breaks it down too):", "",
                  "| | file bytes | ops | tensors | quantized tensors | weight matrices (bytes) | 1-D constants (bytes) | the rest |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for label, r, rest in (("float32", f, rest_f), ("int8", q, rest_q)):
            lines.append(f"| {label} | {r['bytes']:,} | {r['ops']:,} | {r['tensors']:,} | {r['quantized_tensors']:,} | "
                         f"{r['matrices']} ({r['matrix_bytes']:,}) | {r['vectors']} ({r['vector_bytes']:,}) | {rest:,} |")
        per = (rest_q - rest_f) / max(1, q["quantized_tensors"])
        lines += ["", f"The weight matrices shrink about 4x ({f['matrix_bytes']:,} -> {q['matrix_bytes']:,} B); the file "
                  f"does not, because unrolling over 40 steps makes {f['ops']:,} ops of {f['tensors']:,} tensors, and at "
                  f"int8 {q['quantized_tensors']:,} of them carry quantization parameters: the rest of the file grows "
                  f"from {rest_f:,} to {rest_q:,} B, about {per:.0f} B per quantized tensor. A fused LSTM is one op "
                  "(3.7x smaller at int8, above); a GRU without unrolling keeps a WHILE loop, which TensorFlow's "
                  "calibrator cannot take, so homl-edge offers it 'dynamic' (int8 weights).", ""]
    return lines


if __name__ == "__main__":
    main()
