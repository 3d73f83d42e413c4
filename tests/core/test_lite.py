"""LiteModel and load_lite: LiteRT runs the model; untrusted bytes never crash this process."""
import os
import random
from pathlib import Path

import numpy as np
import pytest

import homl_edge as he
from homl_edge.errors import InvalidModelFileError
from conftest import sha


def test_predict_and_evaluate_float_and_integer_io(trained, digits, lite_f32, lite_int8io):
    (_, _), (xt, yt) = digits
    keras_p = trained.predict(xt, verbose=0)
    assert np.abs(lite_f32.predict(xt) - keras_p).max() < 1e-4
    assert lite_int8io.input_dtype == np.int8
    p8 = lite_int8io.predict(xt)  # float in, float out: (de)quantization is handled
    assert p8.dtype == np.float32 and p8.shape == (360, 10)
    assert (p8.argmax(1) == keras_p.argmax(1)).mean() > 0.97
    assert abs(lite_int8io.evaluate(xt, yt) - lite_f32.evaluate(xt, yt)) <= 0.01
    # a single sample without a batch axis works too
    assert lite_f32.predict(xt[0]).shape == (1, 10)


def test_benchmark_ops_tensors_and_summary(lite_int8io):
    b = lite_int8io.benchmark(threads=1, runs=50, warmup=5)
    assert set(b) >= {"median_ms", "p90_ms"} and 0 < b["median_ms"] <= b["p90_ms"]
    assert lite_int8io.ops["FULLY_CONNECTED"] == 2 and lite_int8io.ops["CONV_2D"] == 1
    q = lite_int8io.quantization()
    assert any(t["dtype"] == "int8" and t["per_channel"] for t in q)
    inp = [t for t in lite_int8io.tensors() if t["index"] == lite_int8io.input_details[0]["index"]][0]
    assert inp["dtype"] == "int8" and isinstance(inp["scale"], float) and inp["scale"] > 0
    text = lite_int8io.summary(print_fn=None)
    assert "int8" in text and "CONV_2D" in text and f"{lite_int8io.size:,}" in text


def test_save_is_atomic_and_refuses_to_overwrite(lite_f32, lite_int8io, tmp_path):
    p = tmp_path / "m.tflite"
    lite_f32.save(p)
    assert p.read_bytes() == lite_f32.content
    before = sha(p)
    with pytest.raises(he.HomlEdgeError, match="exists already"):
        lite_int8io.save(p)
    assert sha(p) == before
    lite_int8io.save(p, overwrite=True)
    assert p.read_bytes() == lite_int8io.content
    with pytest.raises(he.HomlEdgeError, match="is a folder"):
        lite_f32.save(tmp_path)
    with pytest.raises(he.HomlEdgeError, match="does not exist"):
        lite_f32.save(tmp_path / "nope" / "m.tflite")
    assert [f.name for f in tmp_path.iterdir()] == ["m.tflite"]  # no temporary files left behind


def test_load_lite_gives_an_optimized_results_file_and_refuses_other_kinds(trained, lite_f32):
    """load_lite(optimize()'s result) is the .lite it made, a LiteModel is given back as it is; anything but a path
    is refused in one line (Path(x) raised a TypeError)."""
    o = he.optimize(trained, "quantize", mode="float32", progress=False)
    assert he.load_lite(o) is o.lite and he.load_lite(lite_f32) is lite_f32
    for bad, says in [(3, "load_lite takes the path of a .tflite file, got int"),
                      (lite_f32.profile(), "load_lite takes the path of a .tflite file, got Profile"),
                      (trained, "load_lite takes the path of a .tflite file, got Sequential")]:
        with pytest.raises(he.HomlEdgeError, match=says) as e:
            he.load_lite(bad)
        assert "\n" not in str(e.value)


def test_save_keras_uses_the_same_atomic_write(trained, tmp_path):
    from homl_edge._files import atomic_path

    p = he.save_keras(trained, tmp_path / "m.keras")
    before = sha(p)
    with pytest.raises(he.HomlEdgeError, match="exists already"):
        he.save_keras(trained, p)
    assert sha(p) == before
    with pytest.raises(RuntimeError, match="half-written"):  # a writer that fails leaves neither file nor temp
        with atomic_path(tmp_path / "x.tflite") as tmp:
            tmp.write_bytes(b"TFL3")
            raise RuntimeError("half-written")
    assert [f.name for f in tmp_path.iterdir()] == ["m.keras"]
    assert he.load_keras(p).count_params() == trained.count_params()


def test_save_into_a_folder_that_refuses_files(lite_f32, tmp_path):
    # /proc/1 refuses new files even to root; a 0500 folder covers ordinary users
    targets = [Path("/proc/1/m.tflite")]
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        targets.append(ro / "m.tflite")
    for target in targets:
        with pytest.raises(he.HomlEdgeError, match="cannot write into"):
            lite_f32.save(target)
        assert not target.exists()


def test_load_lite_round_trip(lite_int8io, tmp_path, digits):
    (_, _), (xt, _) = digits
    p = lite_int8io.save(tmp_path / "q.tflite")
    back = he.load_lite(p)
    assert back.content == lite_int8io.content
    assert np.array_equal(back.predict(xt[:10]), lite_int8io.predict(xt[:10]))


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"TFL3", "too short"),
    (b"\x00" * 64, "identifier"),
    (b"PK\x03\x04" + b"\x00" * 60, "identifier"),
])
def test_obviously_wrong_bytes(data, message, tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(data)
    with pytest.raises(InvalidModelFileError, match=message):
        he.load_lite(p)


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(he.HomlEdgeError, match="no file"):
        he.load_lite(tmp_path / "missing.tflite")
    with pytest.raises(he.HomlEdgeError, match="is a folder"):
        he.load_lite(tmp_path)


def mutations(content: bytes, n: int, seed: int):
    """Seeded truncations, bit flips, byte overwrites and random buffers with a valid header."""
    rng = random.Random(seed)
    size = len(content)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            yield "truncate", content[:rng.randrange(8, size)]
        elif kind == 1:
            b = bytearray(content)
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(8, min(size, 4096))  # the tables live at the start of the buffer
                b[pos] ^= 1 << rng.randrange(8)
            yield "bitflip", bytes(b)
        elif kind == 2:
            b = bytearray(content)
            pos = rng.randrange(8, min(size, 2048))
            b[pos:pos + 4] = rng.randbytes(4)
            yield "overwrite", bytes(b)
        else:
            yield "random", content[:8] + rng.randbytes(rng.randrange(8, 4096))


def test_200_mutated_models_raise_clean_errors_and_never_crash(lite_int8io, tmp_path):
    outcomes = {"rejected": 0, "accepted": 0, "crashed_child": 0}
    path = tmp_path / "fuzz.tflite"
    for kind, data in mutations(lite_int8io.content, 200, seed=1234):
        path.write_bytes(data)
        try:
            lite = he.load_lite(path)
        except InvalidModelFileError as e:
            outcomes["rejected"] += 1
            assert "\n" not in str(e)
            if "crashed" in str(e):
                outcomes["crashed_child"] += 1
        else:
            outcomes["accepted"] += 1  # a flip in unused bytes can leave a valid model: it must then run
            lite.predict(np.zeros((1, 8, 8, 1), np.float32))
    # this process is alive, and most mutations were caught
    assert outcomes["rejected"] >= 100, outcomes
    assert sum(outcomes.values()) - outcomes["crashed_child"] == 200
    print("fuzz outcomes:", outcomes)


@pytest.fixture(scope="module")
def many_heads():
    """A Keras 3 model with twelve same-shaped heads and two same-shaped inputs: a swapped head or input would
    still run, so only the values can tell."""
    import keras

    keras.utils.set_random_seed(0)
    a, b = keras.Input((6,), name="img"), keras.Input((6,), name="flat")   # Keras's order is not the name's
    h = keras.layers.Dense(8, activation="relu", name="trunk")(keras.layers.Concatenate()([a, b]))
    m = keras.Model([a, b], [keras.layers.Dense(3, name=f"h{i}")(h) for i in range(12)])
    rng = np.random.default_rng(0)
    return m, [rng.normal(size=(20, 6)).astype("float32") for _ in range(2)]


def test_outputs_come_back_in_keras_order_and_a_list_of_alike_inputs_is_refused(many_heads):
    """The file's output tensors are in no useful order (output_9, output_4, ... for this model), and its input
    order is not Keras's: outputs are returned by name in numeric order (Keras 3's output_0.. output_11 are
    Keras's order); a list of inputs that a swap would not stop is refused, a dict by name runs."""
    m, (xa, xb) = many_heads
    ref = m.predict([xa, xb], verbose=0)
    lite = he.quantize(m, "float32", cache=False)
    assert lite.output_names == [f"output_{i}" for i in range(12)]
    with pytest.raises(he.HomlEdgeError, match="same shape and type: pass a dict by name"):
        lite.predict([xa, xb])
    got = lite.predict({"img": xa, "flat": xb})
    assert list(got) == lite.output_names
    for k, v in enumerate(got.values()):
        assert np.abs(v - ref[k]).max() < 1e-5, k
