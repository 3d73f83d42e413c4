"""Hostile inputs against the public API, the magics and the CLI: every refusal is a one-line HomlEdgeError (errors.py).

Every case must give a clear one-line error, leave its input files byte-identical, write no partial output and
keep this process alive. The counts are printed (pytest -s) for the record.
"""
import os
import random
from pathlib import Path

import numpy as np
import pytest
from IPython.core.error import UsageError

import homl_edge as he
from homl_edge import _keras, cli
from homl_edge.errors import InvalidModelFileError
from conftest import sha
from test_lite import mutations


def test_1000_fuzzed_tflite_files(lite_int8io, lite_f32, tmp_path):
    """A seeded fuzzer: truncations, bit flips, overwrites and random tails of two real models."""
    counts = {"rejected": 0, "accepted_and_ran": 0, "ran_to_non_finite_refused": 0}
    path = tmp_path / "fuzz.tflite"
    seeds = [(lite_int8io.content, 7), (lite_f32.content, 8)]
    for content, seed in seeds:
        for _, data in mutations(content, 500, seed=seed):
            path.write_bytes(data)
            before = sha(path)
            try:
                lite = he.load_lite(path)
            except InvalidModelFileError as e:
                counts["rejected"] += 1
                assert "\n" not in str(e) and len(str(e)) < 600
            else:
                try:
                    lite.predict(np.zeros((2, 8, 8, 1), np.float32))
                    counts["accepted_and_ran"] += 1
                except he.HomlEdgeError as e:  # a flipped weight that makes NaN: a one-line error, not a result
                    assert "NaN or infinite" in str(e) and "\n" not in str(e)
                    counts["ran_to_non_finite_refused"] += 1
            assert sha(path) == before
    assert sum(counts.values()) == 1000 and counts["rejected"] >= 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fuzz.tflite"]
    print("fuzzed .tflite files:", counts)


def test_random_bytes_through_the_cli(tmp_path, capsys):
    rng = random.Random(5)
    for i in range(30):
        p = tmp_path / f"r{i}.tflite"
        p.write_bytes(rng.randbytes(rng.randrange(0, 5000)))
        assert cli.main(["inspect", str(p)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("homl-edge: error:") and "\n" not in err


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layer_refused_in_safe_mode_everywhere(tmp_path, suffix, capsys):
    k = _keras.legacy()
    marker = tmp_path / "pwned"
    # the hostile layer's own code writes the marker whenever it runs (the path is a constant of its bytecode)
    hostile = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    m = k.Sequential([k.Input((4,)), k.layers.Lambda(hostile, name="code"), k.layers.Dense(2)])
    path = tmp_path / f"m{suffix}"
    m.save(path)
    assert marker.exists()  # building the model ran the code once: the marker works
    marker.unlink()
    before = sha(path)
    with pytest.raises(he.HomlEdgeError, match="Lambda"):
        he.load_keras(path)
    with pytest.raises(he.HomlEdgeError, match="Lambda"):
        he.quantize(path, "float32")
    assert cli.main(["export-tfjs", str(path), str(tmp_path / "web")]) == 2
    assert "safe mode" in capsys.readouterr().err
    assert sha(path) == before and not (tmp_path / "web").exists() and not marker.exists()
    # the check can fail: with safe mode off, loading the same file runs its code
    he.load_keras(path, safe_mode=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:The object being serialized includes a `lambda`")   # what the test saves
def test_a_lambda_compiled_as_the_loss_is_named_as_such(tmp_path):
    """Safe mode named a file whose only code is a lambda compiled as its loss after the model, as if it were a
    Lambda layer ("Python code in Lambda layer(s) sequential_2")."""
    import keras

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")], name="plain")
    m.compile("adam", lambda a, b: keras.ops.mean(keras.ops.abs(a - b), axis=-1))
    m.save(tmp_path / "m.keras")
    with pytest.raises(he.HomlEdgeError, match=r"contains Python code in its compiled loss or metrics \(a Python "
                                               r"function\) and safe mode refuses") as e:
        he.load_keras(tmp_path / "m.keras")
    assert "Lambda layer" not in str(e.value) and "plain" not in str(e.value)


@pytest.mark.parametrize("name, make", [
    ("wrong shape", lambda x: x[:20, :, :6]),
    ("wrong rank", lambda x: x[:20, :, :, 0]),
    ("strings", lambda x: np.array([["a"] * 64] * 3)),
    ("NaN", lambda x: np.full((5, 8, 8, 1), np.nan, np.float32)),
    ("inf", lambda x: np.concatenate([x[:4], np.full((1, 8, 8, 1), np.inf, np.float32)])),
    ("empty", lambda x: x[:0]),
    ("empty generator", lambda x: (s for s in [])),
    ("object array", lambda x: np.array([None, 1], dtype=object)),
])
def test_bad_calibration_data(trained, digits, name, make):
    (x, _), _ = digits
    with pytest.raises(he.HomlEdgeError) as e:
        he.quantize(trained, "int8", data=make(x), cache=False)
    assert "\n" not in str(e.value) and "(n, 8, 8, 1)" in str(e.value), (name, str(e.value))


def test_subclassed_model_for_qat_and_pruning(digits):
    k = _keras.legacy()
    (x, y), _ = digits

    class Sub(k.Model):
        def __init__(self):
            super().__init__()
            self.d = k.layers.Dense(10)

        def call(self, t):
            return self.d(k.layers.Flatten()(t))

    s = Sub()
    s(x[:1])
    for fn in (he.quantize_aware, he.prune, he.cluster):
        with pytest.raises(he.HomlEdgeError, match="subclassed model.*Sequential or the functional API"):
            fn(s, (x, y))


@pytest.mark.parametrize("kind", ["exists", "directory", "missing_folder", "unwritable"])
def test_output_paths(lite_f32, trained, tmp_path, kind):
    target = {"exists": tmp_path / "out.tflite", "directory": tmp_path / "dir",
              "missing_folder": tmp_path / "no" / "out.tflite", "unwritable": Path("/proc/1/out.tflite")}[kind]
    if kind == "exists":
        target.write_bytes(b"keep me")
    if kind == "directory":
        target.mkdir()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(he.HomlEdgeError) as e:
        lite_f32.save(target)
    assert "\n" not in str(e.value)
    if kind == "exists":
        assert target.read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == before  # no partial file, no temporary file
    # the same through the C exporter and the magic
    c_target = target.with_suffix(".cc") if kind != "directory" else target
    with pytest.raises(he.HomlEdgeError):
        he.export_c_array(lite_f32, c_target) if kind != "exists" else (
            c_target.write_text("x"), he.export_c_array(lite_f32, c_target))
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "homl_edge")
    ip.user_ns["hostile_lite"] = lite_f32
    with pytest.raises(UsageError):
        ip.run_line_magic("export", f"hostile_lite --tflite {target}")


def test_gpu_settings_after_initialisation_are_clear_errors():
    import tensorflow as tf

    tf.constant(1.0) + 1  # the runtime is up in this test process
    for kwargs, setting in [({"cpu_split": 7}, "the CPU split"), ({"visible": "0"}, "CUDA_VISIBLE_DEVICES")]:
        with pytest.raises(he.HomlEdgeError, match=setting) as e:
            he.gpu.configure(**kwargs)
        assert "\n" not in str(e.value)
