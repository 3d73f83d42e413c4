"""The TFLite converter's post-training quantization against LiteRT Quantizer on the float32 file (issue 29, item 3).

For each model: the converter's int8 (calibrated on the same 200 training samples) and dynamic-range files, and
litert-quantizer 0.11.0 run on the converter's float32 file with a static int8 recipe (same calibration samples)
and a dynamic int8 recipe. Size, test accuracy, LiteRT latency on real test inputs (one thread, interleaved rounds,
best median). Prints the Markdown table of benchmarks/quantizer_paths.md (which `make bench` appends to RESULTS.md).

Usage: TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/quantizer_paths.py
"""
import os
import sys
import time

os.environ.setdefault("HOML_EDGE_CACHE", "off")
import numpy as np

import homl_edge as he
from homl_edge import quantization
from homl_edge.lite import LiteModel, benchmark_many


def lstm_model(x, y, xt, yt):
    k = he._keras.legacy()
    k.utils.set_random_seed(0)
    m = k.Sequential([k.Input((8, 8), batch_size=1), k.layers.LSTM(64), k.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    # the fixed batch of 1 converts to the fused LSTM op; train a twin with a free batch and copy the weights
    t = k.Sequential([k.Input((8, 8)), k.layers.LSTM(64), k.layers.Dense(10, activation="softmax")])
    t.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    t.fit(x, y, epochs=8, batch_size=32, verbose=0)
    m.set_weights(t.get_weights())
    return m


def quantizer_variant(float_lite: LiteModel, recipe: str, calib) -> LiteModel:
    entries = [(".*", recipe)]
    content = quantization._aeq(float_lite.content, entries, "channel", calib=calib,
                                signature_input=quantization._signature_input(float_lite) if calib is not None
                                else None)
    return LiteModel(content, name=f"quantizer-{recipe}")


def rows_for(name, model, x, y, xt, yt, shape):
    calib = x[:200].reshape((-1,) + shape)
    xt = xt.reshape((-1,) + shape)
    t0 = time.perf_counter()
    f32 = he.quantize(model, "float32")
    variants = {"float32": f32,
                "converter int8": he.quantize(model, "int8", data=calib),
                "converter dynamic": he.quantize(model, "dynamic")}
    errors = {}
    for label, recipe, c in (("quantizer static int8", "static-int8", calib), ("quantizer dynamic int8", "int8", None)):
        try:
            variants[label] = quantizer_variant(f32, recipe, c)
        except Exception as e:  # noqa: BLE001 - reported in the table
            errors[label] = str(e).splitlines()[0][:120]
    times = benchmark_many(variants, xt[:100], threads=1, runs=200, rounds=5)
    rows = []
    for label, lite in variants.items():
        rows.append((name, label, lite.size, lite.evaluate(xt, yt), times[label]["median_ms"] * 1000))
    for label, err in errors.items():
        rows.append((name, label, None, None, err))
    print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return rows


def main():
    (x, y), (xt, yt) = he.datasets.digits()
    cnn, _ = he.models.trained_digits_cnn(epochs=5)
    rows = rows_for("digits CNN", cnn, x, y, xt, yt, (8, 8, 1))
    lstm = lstm_model(x.reshape(-1, 8, 8), y, xt.reshape(-1, 8, 8), yt)
    rows += rows_for("LSTM(64) on digit rows", lstm, x.reshape(-1, 8, 8), y, xt.reshape(-1, 8, 8), yt, (8, 8))
    print("| model | path | bytes | test accuracy | LiteRT median (µs, 1 thread) |")
    print("|---|---|---:|---:|---:|")
    for name, label, size, acc, us in rows:
        if size is None:
            print(f"| {name} | {label} | failed | | {us} |")
        else:
            print(f"| {name} | {label} | {size:,} | {acc:.4f} | {us:.1f} |")


if __name__ == "__main__":
    main()
