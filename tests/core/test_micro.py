"""TensorFlow Lite Micro: the real interpreter, the arena search, the board table, and safety."""
import numpy as np
import pytest

import homl_edge as he
from homl_edge.errors import InvalidModelFileError
from test_lite import mutations


def test_int8_model_runs_in_tflm_like_litert(lite_int8io, digits):
    (_, _), (xt, yt) = digits
    r = lite_int8io.on_micro(xt, yt)
    assert r["n"] == 360 and r["flash_bytes"] == lite_int8io.size
    assert r["argmax_agreement"] >= 0.99  # TFLM reference kernels vs LiteRT's XNNPACK kernels
    assert r["bit_identical"] >= 0.5
    assert abs(r["accuracy"] - lite_int8io.evaluate(xt, yt)) <= 0.01
    print(f"TFLM: arena {r['arena_bytes']} B, argmax agreement {r['argmax_agreement']:.3f}, "
          f"bit-identical {r['bit_identical']:.3f}, accuracy {r['accuracy']:.4f}")


def test_smallest_arena_is_the_smallest(lite_int8io, digits):
    (_, _), (xt, _) = digits
    arena = lite_int8io.on_micro(xt[:2])["arena_bytes"]
    print(f"TFLM arena: {arena:,} bytes")
    assert arena == pytest.approx(5488, rel=0.02)  # README: a 5.5 KB arena
    ok = he.micro.run(lite_int8io, xt[:2], arena_size=arena, find_arena=False)
    assert ok["argmax_agreement"] == 1.0
    with pytest.raises(he.HomlEdgeError, match=f"did not fit a {arena - 64:,}-byte tensor arena"):
        he.micro.run(lite_int8io, xt[:2], arena_size=arena - 64, find_arena=False)


def test_board_table(lite_int8io, digits):
    t = he.micro.fits_on(lite_int8io.size, 6000)
    assert not t.loc["Arduino Uno R3 (ATmega328P)", "fits"]
    assert t.loc["Arduino Nano 33 BLE Sense (nRF52840)", "fits"]
    assert t.loc["Raspberry Pi Pico (RP2040)", "model_flash_%"] == pytest.approx(100 * lite_int8io.size / 2**21)


def test_300_corrupted_models_never_reach_tflm_unverified(lite_int8io, tmp_path):
    counts = {"rejected_by_verifier": 0, "ran_in_tflm": 0, "tflm_error": 0}
    path = tmp_path / "c.tflite"
    for _, data in mutations(lite_int8io.content, 300, seed=99):
        path.write_bytes(data)
        try:
            lite = he.load_lite(path)
        except InvalidModelFileError:
            counts["rejected_by_verifier"] += 1
            continue
        try:
            lite.on_micro(np.zeros((1, 8, 8, 1), np.float32), find_arena=False)
            counts["ran_in_tflm"] += 1
        except he.HomlEdgeError as e:  # a crash of the TFLM child is reported, never felt here
            assert "\n" not in str(e)
            counts["tflm_error"] += 1
    assert sum(counts.values()) == 300 and counts["rejected_by_verifier"] >= 150
    print("corrupted models:", counts)


def test_missing_tflm_kernel_names_the_op_and_the_layer():
    tf = he.tensorflow()
    k = he._keras.legacy()  # (tf.keras may be Keras 3 in this process, whose export adds "_1" to layer scopes)
    inp = k.Input((8, 8, 1))
    top = k.layers.Lambda(lambda v: tf.math.top_k(v, k=10).values, name="topk")(k.layers.Flatten()(inp))
    m = k.Model(inp, k.layers.Dense(10, name="out")(top))
    lite = he.quantize(m, "float32")
    assert lite.ops["TOPK_V2"] == 1  # LiteRT runs it
    with pytest.raises(he.HomlEdgeError, match=r"no kernel for TOPK_V2 \(from layer 'topk'\)"):
        lite.on_micro(np.zeros((1, 8, 8, 1), np.float32))


def test_setup_code_registers_exactly_the_models_ops_and_compiles(lite_int8io, digits, tmp_path):
    """Chapter 07: the C++ a TFLM project needs beside the C array, checked by g++ against a header stub with
    TFLM's method names (tests/micro_stub): a resolver of exactly the model's operators, the measured arena."""
    import re
    import shutil
    import subprocess

    from conftest import ROOT
    from homl_edge import micro

    (_, _), (xt, _) = digits
    run = lite_int8io.on_micro(xt[:5])
    code = micro.setup_code(lite_int8io, run.arena_bytes, variable="g_digits")
    ops = lite_int8io.builtin_ops()
    assert "DELEGATE" not in ops and set(ops) == {"CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}
    calls = re.findall(r"resolver\.(Add\w+)\(\);", code)
    assert calls == ["AddConv2D", "AddFullyConnected", "AddReshape", "AddSoftmax"]
    assert f"MicroMutableOpResolver<{len(calls)}>" in code
    declared = int(re.search(r"kTensorArenaSize = (\d+);", code).group(1))
    assert declared == micro.arena_to_declare(run.arena_bytes) and declared % 16 == 0
    assert 1.25 * run.arena_bytes <= declared < 1.25 * run.arena_bytes + 16
    if not shutil.which("g++"):
        pytest.fail("g++ is missing: `make test` installs it (scripts/install-system-deps.sh)")
    he.export_c_array(lite_int8io, tmp_path / "model_data.cc", variable="g_digits")
    (tmp_path / "setup.cc").write_text(code)
    r = subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-c", "setup.cc", "-I", ".",
                        "-I", str(ROOT / "tests/micro_stub"), "-o", "setup.o"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    bad = code.replace("AddConv2D", "AddConv2d")  # the stub has TFLM's real names: a typo does not build
    (tmp_path / "bad.cc").write_text(bad)
    r = subprocess.run(["g++", "-std=c++17", "-c", "bad.cc", "-I", ".", "-I", str(ROOT / "tests/micro_stub")],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode != 0 and "AddConv2d" in r.stderr
    with pytest.raises(he.HomlEdgeError, match="arena_bytes is the measured arena"):
        micro.setup_code(lite_int8io, None)


def test_an_optimized_result_runs_on_micro_as_the_file_it_made(trained, digits, lite_int8io):
    """micro.run and setup_code given optimize()'s result use its .lite (refused before: 'expected a LiteModel, got
    Optimized'); a Keras model or a record is refused in one line."""
    from homl_edge import micro

    (x, _), (xt, _) = digits
    o = he.optimize(trained, "quantize", mode="int8-io", data=x[:200], progress=False)
    assert o.lite.content == lite_int8io.content
    r = micro.run(o, xt[:2])
    assert r["flash_bytes"] == o.lite.size and r["arena_bytes"] == pytest.approx(5488, rel=0.02)
    assert micro.setup_code(o, r["arena_bytes"]) == micro.setup_code(o.lite, r["arena_bytes"])
    for bad, says in [(trained, "micro.run takes a LiteModel, got Sequential: convert a Keras model first"),
                      (r, "micro.run takes a LiteModel, got MicroRun: make one with he.quantize")]:
        with pytest.raises(he.HomlEdgeError, match=says) as e:
            micro.run(bad, xt[:2])
        assert "\n" not in str(e.value)


def test_resolver_method_names():
    from homl_edge import micro

    assert [micro.resolver_method(o) for o in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "ADD_N", "RELU6",
                                               "UNIDIRECTIONAL_SEQUENCE_LSTM", "PADV2", "HARD_SWISH")] == [
        "AddConv2D", "AddDepthwiseConv2D", "AddMaxPool2D", "AddAddN", "AddRelu6", "AddUnidirectionalSequenceLSTM",
        "AddPadV2", "AddHardSwish"]
    assert micro.arena_to_declare(5488) == 6864 and micro.arena_to_declare(16, margin=0) == 16
