"""Post-training quantization: every mode, the acceptance numbers, calibration checks, the cache."""
import time
from pathlib import Path

import numpy as np
import pytest

import homl_edge as he


@pytest.fixture(scope="module")
def all_modes(trained, digits):
    (x, _), _ = digits
    return {m: he.quantize(trained, m, data=x[:200]) for m in he.MODES}


def test_every_mode_runs_in_litert(all_modes, digits, keras_accuracy):
    (_, _), (xt, yt) = digits
    for mode, lite in all_modes.items():
        assert lite.meta["mode"] == mode
        acc = lite.evaluate(xt, yt)
        assert acc >= keras_accuracy - 0.01, (mode, acc, keras_accuracy)


def test_int8_is_3_82x_smaller_within_one_point(all_modes, digits, keras_accuracy):
    """README: int8 is 3.82x smaller than the float32 .tflite (599,384 -> 156,976 bytes) at the same accuracy."""
    (_, _), (xt, yt) = digits
    f32, i8 = all_modes["float32"], all_modes["int8"]
    print(f"int8: {f32.size:,} -> {i8.size:,} bytes, {f32.size / i8.size:.2f}x")
    assert f32.size / i8.size == pytest.approx(3.82, rel=0.02), (f32.size, i8.size)
    assert abs(i8.evaluate(xt, yt) - keras_accuracy) <= 0.01
    assert all_modes["float16"].size < 0.6 * f32.size


def test_integer_only_model_has_int8_io_and_no_float_ops(all_modes):
    lite = all_modes["int8-io"]
    assert lite.input_details[0]["dtype"] == np.int8 and lite.output_details[0]["dtype"] == np.int8
    assert "QUANTIZE" not in lite.ops and "DEQUANTIZE" not in lite.ops
    assert all(t["dtype"] != "float32" for t in lite.tensors())


def test_int16x8_has_int16_activations(all_modes):
    assert any(t["dtype"] == "int16" for t in all_modes["int16x8"].tensors())


def test_second_call_is_cached_20x_faster_than_converting(trained, digits):
    (x, _), _ = digits
    t0 = time.perf_counter()
    fresh = he.quantize(trained, "dynamic", cache=False)  # the converter, measured in this run
    convert_s = time.perf_counter() - t0
    first = he.quantize(trained, "dynamic")
    t0 = time.perf_counter()
    second = he.quantize(trained, "dynamic")
    cached_s = time.perf_counter() - t0
    print(f"conversion {convert_s * 1e3:.0f} ms, cached call {cached_s * 1e3:.1f} ms")
    assert cached_s < convert_s / 20
    assert second.meta["cached"] and not fresh.meta["cached"]
    assert second.content == first.content == fresh.content


def test_cache_key_follows_weights_and_options(trained, digits):
    from homl_edge import quantization as convert, training

    (x, _), _ = digits
    k1 = convert.cache_key(trained, "int8", x[:10])
    assert k1 == convert.cache_key(trained, "int8", x[:10])
    # quantize() reads the weights once (model_digest) for the conversion's key and its SavedModel export's key
    assert k1 == convert.cache_key(None, "int8", x[:10], digest=convert.model_digest(trained))
    assert k1 != convert.cache_key(trained, "int8-io", x[:10])
    assert k1 != convert.cache_key(trained, "int8", x[:11])
    other = training.clone(trained)
    w = other.get_weights()
    w[0] = w[0] + 1e-3
    other.set_weights(w)
    assert k1 != convert.cache_key(other, "int8", x[:10])


def test_model_passed_in_is_not_modified(trained, digits):
    (x, _), _ = digits
    before = [w.copy() for w in trained.get_weights()]
    he.quantize(trained, "int8", data=x[:50], cache=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, trained.get_weights()))


def test_calibration_accepts_array_dataset_and_generator(trained, digits):
    import tensorflow as tf

    (x, y), _ = digits
    a = he.quantize(trained, "int8", data=x[:64], cache=False)
    ds = he.quantize(trained, "int8", data=tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(16),
                     cache=False)
    gen = he.quantize(trained, "int8", data=(x[i:i + 8] for i in range(0, 64, 8)), cache=False)
    assert a.content == ds.content == gen.content


@pytest.mark.parametrize("make, message", [
    (lambda x: x[:10, :4, :4], r"shape \(10, 4, 4, 1\); the model's input is a float32 array of shape \(n, 8, 8, 1\)"),
    (lambda x: x[:10].astype(str), "dtype <U"),
    (lambda x: np.where(np.arange(10)[:, None, None, None] == 3, np.nan, x[:10]), "NaN or infinite values in 1 of 10"),
    (lambda x: x[:0], "is empty"),
    (lambda x: iter([]), "is empty"),
    (lambda x: "x_train", "must be an array"),
])
def test_bad_calibration_data_names_the_input_signature(trained, digits, make, message):
    (x, _), _ = digits
    with pytest.raises(he.HomlEdgeError, match=message):
        he.quantize(trained, "int8", data=make(x), cache=False)


def test_a_model_that_takes_raw_uint8_pixels_is_calibrated_on_them(digits):
    """Calibration cast every sample to float32: a model whose input is uint8 (raw pixels, rescaled inside) failed
    in int8 and int8-io with LiteRT's 'Got value of type FLOAT32 but expected type UINT8'. Its samples now go in
    as the model takes them, and values a cast would change are refused."""
    import keras

    (x, y), (xt, yt) = digits
    pixels, test_pixels = (np.round(x * 255).astype(np.uint8), np.round(xt * 255).astype(np.uint8))
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1), dtype="uint8")
    h = keras.layers.Flatten()(keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inp)))
    m = keras.Model(inp, keras.layers.Dense(10)(h))
    m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    m.fit(pixels, y, epochs=5, verbose=0)
    keras_acc = float(np.mean(m.predict(test_pixels, verbose=0).argmax(-1) == yt))
    for mode in ("int8", "int8-io"):
        lite = he.quantize(m, mode, data=pixels[:200], cache=False)
        acc = lite.evaluate(test_pixels, yt)
        print(f"{mode}: uint8 input, accuracy {keras_acc:.3f} in Keras, {acc:.3f} in LiteRT")
        assert lite.input_details[0]["dtype"] == np.uint8 and acc >= keras_acc - 0.02   # 7 of 360 test digits
    with pytest.raises(he.HomlEdgeError, match="fractional, NaN or infinite values but the model's input is a uint8 "
                                               r"array of shape \(n, 8, 8, 1\)"):
        he.quantize(m, "int8", data=x[:64], cache=False)
    with pytest.raises(he.HomlEdgeError, match="runs from -1 to 255, outside uint8's 0..255"):
        he.quantize(m, "int8", data=np.where(pixels[:64] == 0, -1, pixels[:64].astype(np.int32)), cache=False)


def test_mode_errors(trained):
    with pytest.raises(he.HomlEdgeError, match="unknown mode 'int9'"):
        he.quantize(trained, "int9")
    with pytest.raises(he.HomlEdgeError, match="needs calibration data"):
        he.quantize(trained, "int8")


def test_converter_recipe_is_the_plain_tensorflow_one(trained, digits):
    import tensorflow as tf

    from homl_edge import quantization as convert

    (x, _), _ = digits
    conv = convert.converter_for(trained, "int8-io", x[:4])
    assert conv.optimizations == [tf.lite.Optimize.DEFAULT]
    assert conv.inference_input_type == tf.int8 and conv.target_spec.supported_ops == {tf.lite.OpsSet.TFLITE_BUILTINS_INT8} or \
        list(conv.target_spec.supported_ops) == [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def test_cache_misses_whenever_the_bytes_could_differ(trained, digits, monkeypatch):
    """The conversion cache must never lie: calibration data, per-layer overrides, homl-edge's version and the
    conversion code are all part of the key."""
    from homl_edge import quantization

    (x, _), _ = digits
    he.quantize(trained, "int8", data=x[:50])
    assert he.quantize(trained, "int8", data=x[:50]).meta["cached"]
    assert not he.quantize(trained, "int8", data=x[50:100]).meta["cached"]          # other calibration data
    he.quantize(trained, "int4", precision={"conv": "int8"})
    assert he.quantize(trained, "int4", precision={"conv": "int8"}).meta["cached"]
    assert not he.quantize(trained, "int4", precision={"conv": "float"}).meta["cached"]  # another override
    key = quantization.cache_key(trained, "int8", x[:10])
    assert set(quantization.versions()) >= {"tensorflow", "tf-keras", "keras", "ai-edge-quantizer",
                                            "ai-edge-litert", "homl-edge", "conversion-code"}
    monkeypatch.setattr("homl_edge._version.__version__", "9.9.9")                    # a new homl-edge
    assert quantization.cache_key(trained, "int8", x[:10]) != key
    assert not he.quantize(trained, "int8", data=x[:50]).meta["cached"]
    monkeypatch.setitem(quantization._KEY_PARTS, "code", "changed")                   # a fix to the converter code
    assert quantization.cache_key(trained, "int8", x[:10]) != key


def test_reused_export_writes_the_bytes_of_a_fresh_conversion(trained, digits, monkeypatch):
    """quantize() writes the SavedModel of a Keras model once and reads it back for its next modes (most of the time
    of a conversion), and writes a tf_keras model's SavedModel without tracing every layer's functions for Keras's
    own reloading (an LSTM at batch 1: 1.4 s instead of 5.4 s; a Bidirectional LSTM: 1.7 s instead of 18 s,
    measured): every mode, the first included, gives what the converter's own Keras path gives (the same bytes; for
    the recurrent route's int8, where two fresh conversions differ in layout, the same tensors and outputs), for a
    tf_keras model and the recurrent route (tf_keras at batch 1, LSTM fused), and the folder is reused, not
    rewritten. A Keras 3 model keeps TensorFlow's own export."""
    import keras

    from homl_edge import _keras, _modes, quantization as q

    lean = []
    monkeypatch.setattr(_modes, "_lean_export", lambda m, f, _lean=_modes._lean_export: lean.append(_lean(m, f))
                        or lean[-1])
    (x, y), _ = digits
    keras.utils.set_random_seed(0)
    lstm = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(8), keras.layers.Dense(10, activation="softmax")])
    cases = [(trained, x[:50], ("float32", "dynamic", "int8", "int8-io"), False),
             (_keras.to_legacy(lstm, batch_size=1), x[:50, ..., 0], ("float32", "int8"), True)]
    for model, calib, modes, recurrent in cases:
        key = f"test-{model.name}-{id(model)}"
        written = None
        for mode in modes:
            c = calib if mode in q.CALIBRATED else None
            reused = q._convert(model, mode, c, reuse=key)
            pb = Path(q._exports[key].folder, "saved_model.pb")
            written = written or pb.stat().st_mtime_ns
            assert pb.stat().st_mtime_ns == written   # read back, not written again
            fresh = q._convert(model, mode, c)   # the converter's own Keras path, untouched
            if reused != fresh:   # the int8 LSTM's bytes differ between two fresh conversions too (layout only)
                assert recurrent and mode == "int8", (model.name, mode)   # everything else: the same bytes
                a, b = he.LiteModel(reused), he.LiteModel(fresh)
                assert a.tensors() == b.tensors(), (model.name, mode)
                assert np.array_equal(a.predict(calib), b.predict(calib)), (model.name, mode)
    assert lean == [True, True]   # both tf_keras models exported lean
    # a Keras 3 model keeps TensorFlow's own export (Keras 3's ExportArchive traces only the serving function)
    assert _modes._lean_export(lstm, "/nonexistent") is False


@pytest.fixture
def own_temp(tmp_path, monkeypatch):
    """tempfile's folder is ``tmp_path``, and this process's temporary folders start anew there (released at the
    end, as at the process's exit)."""
    import tempfile

    from homl_edge import _files

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(_files, "_roots", {})
    monkeypatch.setattr(_files, "_made", set())
    yield tmp_path
    _files._release_all()


def test_an_interrupted_export_leaves_no_folder(own_temp):
    """The SavedModel folder kept for a model's next modes is made only when TensorFlow exports, and removed when the
    export does not finish: here a Ctrl-C while TensorFlow traces the model (a layer that raises KeyboardInterrupt
    when traced, as an interrupt at that moment would). Nothing is left in the temp folder, and nothing is kept."""
    import tensorflow as tf

    from homl_edge import quantization as q

    k2 = he._keras.legacy()

    class Interrupted(k2.layers.Layer):
        def call(self, x):
            if not tf.executing_eagerly():
                raise KeyboardInterrupt   # the lean export and TensorFlow's catch Exception, not this
            return x

    m = k2.Sequential([Interrupted(), k2.layers.Dense(2)])
    m(np.ones((1, 4), np.float32))   # built eagerly
    key = f"test-interrupted-{id(m)}"
    with pytest.raises(KeyboardInterrupt):
        q._convert(m, "float32", None, reuse=key)
    assert key not in q._exports
    assert not list(own_temp.glob("homl-edge-export-*/*")), list(own_temp.rglob("*"))


def test_the_exports_of_a_killed_process_are_removed_by_the_next(own_temp):
    """A kernel killed with ``now=True`` (nbval, a forced restart, the out-of-memory killer) cannot remove its kept
    SavedModel folders; the lock of their root goes with it, so the next process's first export removes them. The
    folders of a process that still runs, and an older version's folder (no lock beside it), stay."""
    import os
    import signal
    import subprocess
    import sys

    from homl_edge import _modes, quantization as q

    env = {**os.environ, "TMPDIR": str(own_temp)}
    make = ("from homl_edge import _modes; print(_modes._export_folder(), flush=True); import time; time.sleep(120)")
    killed, running = (subprocess.Popen([sys.executable, "-c", make], stdout=subprocess.PIPE, text=True, env=env)
                       for _ in range(2))
    key = None
    try:
        dead, alive = (Path(p.stdout.readline().strip()) for p in (killed, running))
        killed.send_signal(signal.SIGKILL)   # no exit handler runs
        killed.wait()
        older = own_temp / "homl-edge-export-abcd1234"   # an older version's folder: no lock beside it
        older.mkdir()
        assert dead.is_dir() and Path(f"{dead.parent}.lock").is_file() and dead.parent.parent == own_temp
        k2 = he._keras.legacy()
        m = k2.Sequential([k2.Input((4,)), k2.layers.Dense(2)])
        key = f"test-sweep-{id(m)}"
        q._convert(m, "float32", None, reuse=key)
        made = Path(q._exports[key].folder)
        assert not dead.parent.exists() and not Path(f"{dead.parent}.lock").exists()
        assert alive.is_dir() and older.is_dir() and made.parent.parent == own_temp
        assert sorted(p.name for p in own_temp.glob("*.lock")) == sorted(f"{f.parent.name}.lock" for f in (alive, made))
    finally:
        running.kill()
        running.wait()
        for p in (killed, running):
            p.stdout.close()
        kept = q._exports.pop(key, None)
        if kept:
            _modes._drop(kept.folder)


def test_an_export_folder_where_locks_fail_is_made_unlocked(own_temp, monkeypatch):
    """A temp folder whose file system refuses locks (ENOLCK on some network file systems) still gets its export
    folder, unlocked (never swept), and leaves no half-made lock file: the conversion does not fail for it."""
    import fcntl

    from homl_edge import _files, _modes

    def no_locks(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = Path(_modes._export_folder())
    root, fd = _files._roots[(str(own_temp), _modes._EXPORT_PREFIX)]
    assert folder.is_dir() and folder.parent == Path(root) and fd is None   # made, with no lock to hold
    assert [p.name for p in own_temp.iterdir()] == [Path(root).name]   # no lock, no pending file
    _modes._drop(str(folder))
    assert not folder.exists() and Path(root).is_dir()
    _files._release_all()
    assert not list(own_temp.iterdir())


def test_requantize_and_agreement_take_an_optimized_results_file(trained, digits, lite_f32):
    """requantize and agreement given optimize()'s result use its .lite (requantize refused it: 'takes a LiteModel
    or a .tflite path, got Optimized'; agreement raised AttributeError); a Keras model is refused in one line."""
    from homl_edge import quantization

    (x, _), (xt, _) = digits
    o = he.optimize(trained, "quantize", mode="float32", progress=False)
    assert o.lite.content == lite_f32.content
    assert he.requantize(o, "dynamic").content == he.requantize(lite_f32, "dynamic").content
    a = quantization.agreement(o, lite_f32, xt[:20])
    assert a["argmax"] == 1.0 and a["max_abs_diff"] == 0.0 and a["n"] == 20
    for call in (lambda: quantization.agreement(trained, lite_f32, xt[:20]), lambda: he.requantize(trained)):
        with pytest.raises(he.HomlEdgeError, match="got Sequential: convert a Keras model first") as e:
            call()
        assert "\n" not in str(e.value)
