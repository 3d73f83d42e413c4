"""Pre-trained models that ship inside public packages, taken as a user finds them (issue 27). Nothing is
downloaded: each file comes from a package of the lock. Today: TensorFlow Lite Micro's own example model,
``sine_float.tflite`` from the ``tflite-micro`` package (three FULLY_CONNECTED layers fitted to sin(x) on [0, 2pi]).
The rule: a wrong answer is worse than a refusal, so every path is compared with the file's own outputs."""
from pathlib import Path

import numpy as np
import pytest

import homl_edge as he

tflite_micro = pytest.importorskip("tflite_micro")
SINE = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"
X = np.linspace(0, 2 * np.pi, 200, dtype=np.float32)[:, None]  # sorted, as a user's sweep is


@pytest.fixture(scope="module")
def sine():
    assert SINE.is_file(), f"tflite-micro no longer ships {SINE.name}"
    return he.load_lite(SINE)


def test_sine_model_loads_inspects_and_predicts(sine):
    assert sine.size == 3164 and sine.builtin_ops() == {"FULLY_CONNECTED": 3}
    assert sine.input_shape == (-1, 1) and sine.fixed_batch is None
    err = np.abs(sine.predict(X)[:, 0] - np.sin(X[:, 0])).max()
    print(f"sine_float.tflite: {sine.size:,} B, max |f(x) - sin(x)| on [0, 2pi] = {err:.4f}")
    assert err < 0.06  # 0.0489 measured: what the example model learned


def test_int8_calibrated_on_sorted_data_keeps_its_answers(sine):
    """ai-edge-quantizer's default calibration averages per-sample ranges (0.95 moving average): on a sorted sweep
    the output range became [-0.44, 0] and every answer above 0 came back as 0 (max |diff| 1.01)."""
    q = he.quantize(sine, "int8", data=X)
    a = q.meta["agreement"]
    print(f"int8: {q.size:,} B, max |diff| from the float file {a['max_abs_diff']:.4f}; {q!r}")
    assert a["argmax"] is None and a["n"] == 200  # one output unit: no argmax to agree on
    assert a["max_abs_diff"] < 0.1  # 0.060 measured (about 8 steps of the int8 output); 1.01 before
    assert q.size > sine.size and q.meta["warning"].startswith("the file grew from 3,164 to ")


@pytest.mark.parametrize("mode, bound", [("dynamic", 0.1), ("int4", 0.4)])  # 0.054 and 0.27 measured
def test_weight_only_modes_report_every_layer(sine, mode, bound):
    q = he.quantize(sine, mode, data=X)
    kinds = {(r["op"], r["to"]) for r in q.meta["changed"]}
    print(f"{mode}: {q.size:,} B, max |diff| {q.meta['agreement']['max_abs_diff']:.4f}")
    assert len(q.meta["changed"]) == 3 and kinds == {("FULLY_CONNECTED", "int8" if mode == "dynamic" else "int4")}
    assert q.meta["agreement"]["max_abs_diff"] < bound and q.size < sine.size


def test_sine_model_on_micro_compares_values_not_argmax(sine, tmp_path, capsys):
    from homl_edge import cli

    run = sine.on_micro(X)
    print(repr(run))
    assert run.argmax_agreement is None and run.max_abs_diff < 1e-5  # float reference kernels: same math
    assert 0 < run.arena_bytes <= 4096 and run.flash_bytes == sine.size
    assert "resolver.AddFullyConnected();" in he.micro.setup_code(sine, run.arena_bytes)
    assert he.export_c_array(sine, tmp_path / "sine.cc").flash_bytes == 3164
    np.save(tmp_path / "x.npy", X[:20])
    assert cli.main(["micro", str(SINE), "--data", str(tmp_path / "x.npy")]) == 0
    assert cli.main(["inspect", str(SINE)]) == 0
    out = capsys.readouterr().out
    assert "bit-identical on" in out and "argmax" not in out and "FULLY_CONNECTED x3" in out


# ----------------------------------------------------------------------------------------------- MTCNN's RNet
# A pre-trained Keras 3 face detector as the mtcnn package (1.0.0) ships it: a subclassed keras.Model (PReLU,
# Permute, two heads: 4 box offsets and a 2-way softmax), weights from the wheel's rnet.lz4.
@pytest.fixture(scope="module")
def rnet_parts():
    pytest.importorskip("mtcnn")
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    sub = RNet()
    sub.build()
    sub.set_weights(load_weights("rnet.lz4"))
    x = np.random.default_rng(0).uniform(-1, 1, size=(64, 24, 24, 3)).astype(np.float32)  # MTCNN's input range
    return sub, x


def test_subclassed_pretrained_model_gets_a_true_refusal(rnet_parts):
    """Built and called, it still has no symbolic inputs: 'call the model once on a batch' was no help."""
    sub, x = rnet_parts
    sub(x[:1])
    with pytest.raises(he.HomlEdgeError, match=r"subclassed model \(RNet\): built or called, it still has no "
                                               r"symbolic inputs; wrap it .*keras.Model\(inp, rnet\(inp\)\)"):
        he.quantize(sub, "float32")


def test_mtcnn_rnet_converts_and_quantizes_like_keras(rnet_parts):
    import keras

    sub, x = rnet_parts
    inp = keras.Input((24, 24, 3))
    rnet = keras.Model(inp, sub(inp), name="rnet")  # what the refusal says to do
    want = [o.numpy() for o in rnet(x)]
    f32, int8 = he.quantize(rnet, "float32"), he.quantize(rnet, "int8", data=x)
    for lite, bound in ((f32, 1e-5), (int8, 0.1)):
        got = lite.predict(x)
        diffs = {k: float(np.abs(want[int(k[-1])] - v).max()) for k, v in got.items()}  # output_0: boxes, output_1: face
        print(f"RNet {lite.meta['mode']}: {lite.size:,} B, max |diff| from Keras {diffs}")
        assert set(got) == {"output_0", "output_1"} and max(diffs.values()) < bound
    assert f32.size / int8.size > 3.4  # 407,184 -> 115,440 B measured
    with pytest.raises(he.HomlEdgeError, match=r"layer 'r_net' \(RNet\) has no tf_keras counterpart"):
        he.prune(rnet, (x, np.zeros(len(x), int)), epochs=1, progress=False)
