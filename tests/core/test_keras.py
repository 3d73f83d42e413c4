"""Bring your own model: Keras 3 and tf_keras side by side in one process, files of either, SavedModels,
recurrent nets as people write them, and .tflite files made elsewhere (fixed batch, several inputs/outputs).
Every model is built here; nothing is downloaded."""
import numpy as np
import pytest

import homl_edge as he
from conftest import run_py

keras = pytest.importorskip("keras")
k2 = he._keras.legacy()


@pytest.fixture(scope="module")
def k3_cnn(digits):
    (x, y), _ = digits
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(16, 3, activation="relu", name="conv"),
                          keras.layers.Flatten(), keras.layers.Dense(32, activation="relu", name="dense"),
                          keras.layers.Dense(10, activation="softmax", name="classifier")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=5, verbose=0)
    return m


def test_keras3_model_is_keras3(k3_cnn):
    assert he._keras.flavour(k3_cnn) == "keras3"


def test_keras3_quantizes_straight_and_agrees(k3_cnn, digits):
    (x, y), (xt, yt) = digits
    acc = k3_cnn.evaluate(xt, yt, verbose=0)[1]
    f32 = he.quantize(k3_cnn, "float32")
    assert f32.meta["route"] == "keras3"
    assert np.abs(f32.predict(xt) - k3_cnn.predict(xt, verbose=0)).max() < 1e-5
    int8 = he.quantize(k3_cnn, "int8", data=x[:200])
    int4 = he.quantize(k3_cnn, "int4")
    assert f32.size / int8.size > 2.5 and f32.size / int4.size > f32.size / int8.size
    assert abs(int8.evaluate(xt, yt) - acc) <= 0.01 and abs(int4.evaluate(xt, yt) - acc) <= 0.01
    mixed = he.quantize(k3_cnn, "int4", precision="conv=int8")
    assert mixed.meta["precision"]["conv"] == "int8"
    # the per-layer debugger finds every layer of a Keras 3 file (whose tensor names carry a _1 suffix)
    table = he.quantization_error(k3_cnn, int8, x[:100])
    assert set(table.layer) == {"conv", "dense", "classifier"}


def test_translation_agrees_within_1e5(k3_cnn, digits):
    _, (xt, _) = digits
    copy = he.to_legacy(k3_cnn)
    assert he._keras.flavour(copy) == "keras2"
    assert np.abs(copy.predict(xt, verbose=0) - k3_cnn.predict(xt, verbose=0)).max() <= 1e-5


@pytest.mark.parametrize("how", ["magnitude", "taylor", "channels", "cluster"])
def test_tfmot_paths_hand_back_keras3(k3_cnn, digits, how):
    (x, y), (xt, yt) = digits
    if how == "cluster":
        out = he.cluster(k3_cnn, (x, y), clusters=8, epochs=1, progress=False)
        assert max(he.unique_weights(out).values()) <= 8
    elif how == "channels":
        out = he.prune(k3_cnn, (x, y), channels=0.5, epochs=1, progress=False)
        widths = he.prune_report(out)["channels"]
        assert widths.loc["conv", "after"] == 8 and out.model.get_layer("conv").filters == 8
    else:
        out = he.prune(k3_cnn, (x, y), sparsity=0.5, criterion=how, epochs=1, progress=False)
        assert abs(he.sparsity_report(out).set_index("layer").loc["dense", "sparsity"] - 0.5) < 0.01
    assert he._keras.flavour(out.model) == "keras3"
    assert out.model.evaluate(xt, yt, verbose=0)[1] > 0.8
    assert he.quantize(out, "int8", data=x[:100]).evaluate(xt, yt) > 0.8


def test_qat_from_keras3_converts_without_data(k3_cnn, digits):
    (x, y), (xt, yt) = digits
    q = he.quantize_aware(k3_cnn, (x, y), epochs=1, progress=False)
    lite = he.quantize(q, "int8")  # the ranges are learned: no calibration data
    assert lite.meta["ranges"] == "learned (QAT)" and lite.evaluate(xt, yt) > 0.85


def test_users_own_tfmot_qat_model_converts_without_data(trained, digits):
    (x, y), (xt, yt) = digits
    mot = he._keras.tfmot()
    q = mot.quantization.keras.quantize_model(trained)
    q.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    q.fit(x, y, epochs=1, verbose=0)
    lite = he.quantize(q, "int8")
    assert lite.meta["ranges"] == "learned (QAT)" and lite.evaluate(xt, yt) > 0.9
    with pytest.raises(he.HomlEdgeError, match="'int8-io' .* needs data=... even for a QAT model"):
        he.quantize(q, "int8-io")


def test_keras3_files_and_savedmodels(k3_cnn, digits, tmp_path):
    (x, y), (xt, yt) = digits
    k3_cnn.save(tmp_path / "m3.keras")
    assert he._keras.keras_version_of(tmp_path / "m3.keras").startswith("3")
    loaded = he.load_keras(tmp_path / "m3.keras")
    assert he._keras.flavour(loaded) == "keras3"
    via_path = he.quantize(tmp_path / "m3.keras", "int8", data=x[:200])
    assert abs(via_path.evaluate(xt, yt) - he.quantize(k3_cnn, "int8", data=x[:200]).evaluate(xt, yt)) < 1e-9
    # tf_keras's own .keras file still loads as tf_keras
    k2m = he.to_legacy(k3_cnn)
    k2m.save(tmp_path / "m2.keras")
    assert he._keras.flavour(he.load_keras(tmp_path / "m2.keras")) == "keras2"
    # Keras 3 model.export(): an inference-only SavedModel that the converter takes
    k3_cnn.export(str(tmp_path / "exported"), verbose=False)
    src = he.load_keras(tmp_path / "exported")
    assert isinstance(src, he._keras.SavedModelSource)
    lite = he.quantize(src, "int8", data=x[:200])
    assert lite.meta["route"] == "saved-model" and lite.evaluate(xt, yt) > 0.85
    with pytest.raises(he.HomlEdgeError, match="inference-only SavedModel"):
        he.prune(src, (x, y))


def test_keras3_exports_to_tfjs(k3_cnn, tmp_path):
    result = he.export_tfjs(k3_cnn, tmp_path / "web")
    assert (tmp_path / "web" / "model.json").is_file() and result.weights_bytes > 0
    back = he.load_tfjs(tmp_path / "web")
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    assert np.abs(back.predict(x, verbose=0) - k3_cnn.predict(x, verbose=0)).max() < 1e-5


def test_untranslatable_layer_is_named():
    inp = keras.Input((4,))
    out = keras.layers.Dense(2, activation="celu", name="oddball")(inp)
    m = keras.Model(inp, out)
    with pytest.raises(he.HomlEdgeError, match="'oddball' uses the activation 'celu'"):
        he.to_legacy(m)


@pytest.mark.parametrize("name, build", [
    ("MobileNetV2", lambda: keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None,
                                                           classes=10)),
    ("MobileNetV3Small", lambda: keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), weights=None,
                                                                     classes=10)),
    ("EfficientNetB0", lambda: keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None, classes=10)),
    ("ResNet50", lambda: keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None, classes=10)),
])
def test_real_architectures_translate_exactly(name, build):
    m = build()
    x = np.random.default_rng(0).uniform(0, 255, size=(4, *m.input_shape[1:])).astype("float32")
    copy = he.to_legacy(m)
    # called, not predict(): the same numbers without tracing a predict function of each (3-4.5 s of 11 s, measured)
    diff = np.abs(np.asarray(copy(x, training=False)) - np.asarray(m(x, training=False))).max()
    print(f"{name}: {m.count_params():,} parameters, translation max diff {diff:.2g}")
    assert diff <= 1e-5


# ----------------------------------------------------------------------------------------------- recurrent
def _seq(digits):
    (x, y), (xt, yt) = digits
    return x[..., 0], y, xt[..., 0], yt


# Every kind in Keras 3 (what `pip install tensorflow` gives), the plain cells in tf_keras too; the two composite
# models are not repeated in tf_keras (their layers are the same tf_keras code the translation produces, and each
# case costs three ~8 s conversions).
# Keras 3's LSTM and GRU are chapter 12's (cells 1-2 and 5-6, on an LSTM(128) and a GRU(32)): a fixed batch of 1, the
# fused LSTM op, the float file equal to Keras within 1e-5, the dynamic files agreeing with Keras on > 97% and the
# int8 LSTM on > 85%, the GRU's int8 refused with tensorflow#62281; where the chapter runs (the main suite) it is the
# proof, and these two cases run elsewhere.
_CH12 = pytest.mark.chapter("12_recurrent_nets_and_anyones_tflite")
RECURRENT_CASES = [pytest.param(flavour, kind, marks=_CH12 if flavour == "keras3" and kind in ("LSTM", "GRU") else ())
                   for kind in ("LSTM", "GRU", "SimpleRNN") for flavour in ("keras3", "tf_keras")] + \
    [("keras3", "BiLSTM"), ("keras3", "Conv1D+LSTM")]


@pytest.mark.parametrize("flavour, kind", RECURRENT_CASES)
def test_recurrent_models_convert_as_written(digits, flavour, kind):
    xs, y, xts, _ = _seq(digits)
    K = keras if flavour == "keras3" else k2
    L = K.layers
    body = {"LSTM": [L.LSTM(16)], "GRU": [L.GRU(16)], "SimpleRNN": [L.SimpleRNN(16)],
            "BiLSTM": [L.Bidirectional(L.LSTM(8))], "Conv1D+LSTM": [L.Conv1D(8, 3, activation="relu"), L.LSTM(16)]}
    K.utils.set_random_seed(0)
    m = K.Sequential([K.Input((8, 8))] + body[kind] + [L.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(xs, y, epochs=3, verbose=0)
    ref = m.predict(xts, verbose=0)
    f32 = he.quantize(m, "float32")
    assert f32.meta["route"] == "recurrent-batch1" and f32.fixed_batch == 1
    assert np.abs(f32.predict(xts) - ref).max() < 1e-5  # 360 samples through a batch-1 file, state reset each time
    dyn = he.quantize(m, "dynamic")
    assert (dyn.predict(xts).argmax(-1) == ref.argmax(-1)).mean() > 0.97
    if kind in ("GRU", "SimpleRNN"):  # a WHILE loop: TensorFlow's calibrator would crash the process
        with pytest.raises(he.HomlEdgeError, match="tensorflow#62281"):
            he.quantize(m, "int8", data=xs[:100])
    else:
        p = he.quantize(m, "int8", data=xs[:200]).predict(xts)
        agree = (p.argmax(-1) == ref.argmax(-1)).mean()
        print(f"{flavour} {kind} int8: argmax agreement with Keras {agree:.3f}, mean |diff| {np.abs(p - ref).mean():.4f}")
        # measured: LSTM and Conv1D+LSTM 0.94-0.98; a Bidirectional LSTM(8) only 0.59 (Keras 3) / 0.76 (tf_keras)
        # with a mean |diff| of 0.004-0.006: its 10 outputs sit close together after 3 epochs, so int8's small
        # error flips the argmax (dynamic keeps it at >= 0.97). How many flip depends on the last bits of the
        # trained weights, which differ from one CPU to the next (issue 24): for it only the outputs' closeness,
        # which holds with a margin of 8x, is asserted
        if kind != "BiLSTM":
            assert agree > 0.85
        assert np.abs(p - ref).mean() < 0.05
    if "LSTM" in kind:
        assert any("SEQUENCE_LSTM" in op for op in f32.ops)  # the fused op, not a loop


@pytest.mark.chapter("12_recurrent_nets_and_anyones_tflite")   # cells 1-2: the same model, sizes and accuracy
def test_lstm_int8_is_3_7x_smaller(digits):
    """The figure of benchmarks/RESULTS.md: an LSTM(128) on 8x8 digits rows, float32 289,388 B, int8 78,264 B."""
    xs, y, xts, yt = _seq(digits)
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(128), keras.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(xs, y, epochs=3, verbose=0)
    f32, dyn, int8 = (he.quantize(m, mode, data=xs[:200]) for mode in ("float32", "dynamic", "int8"))
    ratio, ratio_dyn = f32.size / int8.size, f32.size / dyn.size
    print(f"LSTM(128): float32 {f32.size:,} B, dynamic {dyn.size:,} B ({ratio_dyn:.2f}x), "
          f"int8 {int8.size:,} B ({ratio:.2f}x)")
    assert ratio == pytest.approx(3.70, rel=0.02) and ratio_dyn == pytest.approx(3.75, rel=0.02)
    assert abs(int8.evaluate(xts, yt) - m.evaluate(xts, yt, verbose=0)[1]) <= 0.01


# ----------------------------------------------------------------------------------------------- anyone's .tflite
@pytest.fixture(scope="module")
def two_heads(tmp_path_factory):
    """A .tflite as pre-trained files often are: fixed batch 1, two inputs, two outputs of other shapes."""
    k2.utils.set_random_seed(0)
    img = k2.Input((8, 8, 1), batch_size=1, name="image")
    meta = k2.Input((3,), batch_size=1, name="meta")
    h = k2.layers.Flatten()(k2.layers.Conv2D(4, 3, activation="relu")(img))
    h = k2.layers.Concatenate()([h, meta])
    boxes = k2.layers.Reshape((6, 3), name="boxes")(k2.layers.Dense(18, name="box_dense")(h))
    scores = k2.layers.Dense(6, activation="sigmoid", name="scores")(h)
    m = k2.Model([img, meta], [boxes, scores])
    path = tmp_path_factory.mktemp("elsewhere") / "detector.tflite"
    he.quantize(m, "float32").save(path)
    return m, path


def test_fixed_batch_file_predicts_n_samples_with_every_output(two_heads):
    m, path = two_heads
    lite = he.load_lite(path)
    assert lite.fixed_batch == 1 and len(lite.output_names) == 2
    rng = np.random.default_rng(0)
    img, meta = rng.uniform(size=(5, 8, 8, 1)).astype("float32"), rng.uniform(size=(5, 3)).astype("float32")
    ref = [np.concatenate(parts) for parts in zip(*[m.predict([img[i:i + 1], meta[i:i + 1]], verbose=0)
                                                    for i in range(5)])]
    by_dict = lite.predict({n: a for n, a in zip(lite.input_names, _order(lite, img, meta))})
    by_list = lite.predict(_order(lite, img, meta))
    assert isinstance(by_dict, dict) and len(by_dict) == 2
    shapes = sorted(v.shape for v in by_dict.values())
    assert shapes == [(5, 6), (5, 6, 3)]  # N rows, never the fixed batch of 1
    got = {v.shape: v for v in by_dict.values()}
    assert np.abs(got[(5, 6, 3)] - ref[0]).max() < 1e-5 and np.abs(got[(5, 6)] - ref[1]).max() < 1e-5
    for k in by_dict:
        assert np.array_equal(by_dict[k], by_list[k])
    with pytest.raises(he.HomlEdgeError, match="2 inputs"):
        lite.predict(img)
    with pytest.raises(he.HomlEdgeError, match="accuracy needs one"):
        lite.evaluate(_order(lite, img, meta), np.zeros(5))


def _order(lite, img, meta):
    return [img if d["shape"][-1] == 1 else meta for d in lite.input_details]


def test_requantize_a_float_tflite_to_int4(trained, digits, tmp_path):
    (x, _), (xt, yt) = digits
    he.quantize(trained, "float32").save(tmp_path / "float.tflite")
    lite = he.load_lite(tmp_path / "float.tflite")
    int4 = he.quantize(tmp_path / "float.tflite", "int4")
    dyn = he.quantize(lite, "dynamic")
    int8 = he.quantize(lite, "int8", data=x[:100])
    base = lite.evaluate(xt, yt)
    for q in (int4, dyn, int8):
        assert q.meta["requantized"] and abs(q.evaluate(xt, yt) - base) <= 0.01
    print(f"re-quantized: float32 {lite.size:,} B, dynamic {dyn.size:,}, int8 {int8.size:,}, int4 {int4.size:,}")
    assert lite.size / int4.size > 6
    with pytest.raises(he.HomlEdgeError, match="already quantized"):
        he.quantize(int8, "int4")
    with pytest.raises(he.HomlEdgeError, match="needs the Keras model"):
        he.quantize(lite, "float16")
    with pytest.raises(he.HomlEdgeError, match="needs data"):
        he.quantize(lite, "int8")


def test_micro_says_which_of_three_things_went_wrong(trained, digits, lite_int8io):
    (x, _), (xt, _) = digits
    with pytest.raises(he.HomlEdgeError, match="did not fit a 2,000-byte tensor arena"):
        lite_int8io.on_micro(xt[:1], arena_size=2000)
    with pytest.raises(he.HomlEdgeError, match=r"no kernel for this tensor type.*\(in DEQUANTIZE\)"):
        he.quantize(trained, "float16").on_micro(xt[:1])
    with pytest.raises(he.HomlEdgeError, match=r"FLOAT32 with filter type: INT8 \(in FULLY_CONNECTED\)"):
        he.quantize(trained, "dynamic").on_micro(xt[:1])


def test_micro_grows_the_arena_and_reports_it():
    k2.utils.set_random_seed(0)
    m = k2.Sequential([k2.Input((64, 64, 3)), k2.layers.Conv2D(32, 3, padding="same"),
                       k2.layers.Conv2D(32, 3, padding="same"), k2.layers.GlobalAveragePooling2D(),
                       k2.layers.Dense(4)])
    x = np.random.default_rng(0).uniform(size=(20, 64, 64, 3)).astype("float32")
    lite = he.quantize(m, "int8-io", data=x)
    run = lite.on_micro(x[:2])
    assert run.arena_tried > 64 * 1024 and 64 * 1024 < run.arena_bytes <= run.arena_tried
    assert run.argmax_agreement == 1.0


# ----------------------------------------------------------------------------------------------- the kernel
def test_load_ext_after_tensorflow_and_keras3_runs_every_magic(tmp_path):
    """A user's notebook: TensorFlow and Keras 3 first, a Keras 3 model, then %load_ext homl_edge."""
    code = f"""
import os
os.environ['TF_USE_LEGACY_KERAS'] = '0'
import tensorflow as tf, keras, numpy as np
from IPython.core.interactiveshell import InteractiveShell
import homl_edge as he
ip = InteractiveShell.instance()
(x, y), (xt, yt) = he.datasets.digits()
m = tf.keras.Sequential([tf.keras.Input((8, 8, 1)), tf.keras.layers.Conv2D(8, 3, activation='relu'),
                         tf.keras.layers.Flatten(), tf.keras.layers.Dense(10, activation='softmax')])
m.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy']); m.fit(x, y, epochs=2, verbose=0)
ip.user_ns.update(m=m, x=x, y=y, xt=xt, yt=yt)
ip.run_line_magic('load_ext', 'homl_edge')
ip.run_line_magic('quantize', 'm --mode int8 --data x[:100] -o q8')
ip.run_line_magic('quantize', 'm --mode int4 -o q4')
ip.run_line_magic('prune', 'm --train x y --sparsity 0.5 --epochs 1 -o p')
ip.run_line_magic('export', 'm --tfjs {tmp_path / 'web'} -o e')
ns = ip.user_ns
# int8 smaller than float32; int4 far above chance (10%): a 2-epoch model's exact accuracy depends on the last bits
# of its trained weights (TF_ENABLE_ONEDNN_OPTS=0 once gave int4 <= 0.8 here), so only that it works is asserted
print('RESULT', type(m).__module__.split('.')[0], he._keras.flavour(ns['p'].model),
      ns['q8'].size < he.quantize(m, 'float32').size, ns['q4'].evaluate(xt, yt) > 0.5,
      os.path.exists('{tmp_path / 'web' / 'model.json'}'))
"""
    r = run_py(code, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("RESULT")[-1].split() == ["keras", "keras3", "True", "True", "True"]


def test_recurrent_kernels_are_pruned_not_skipped(digits):
    """A recurrent layer keeps its kernel on its cell: pruning must reach it (it was skipped silently before)."""
    xs, y, _, _ = _seq(digits)
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(32, name="lstm"),
                          keras.layers.Dense(10, activation="softmax", name="out")])
    m.compile("adam", "sparse_categorical_crossentropy")
    p = he.prune(m, (xs, y), sparsity=0.5, epochs=1, progress=False)
    report = he.sparsity_report(p).set_index("layer")
    assert abs(report.loc["lstm", "sparsity"] - 0.5) < 0.01
    assert abs(float((p.model.get_layer("lstm").get_weights()[0] == 0).mean()) - 0.5) < 0.01


def test_keras3_only_activations_survive_clone_and_pruning(digits):
    """hard_swish (MobileNetV3) becomes a registered tf_keras function: TF-MOT can clone, prune and hand it back."""
    (x, y), (xt, _) = digits
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="hard_swish", name="conv"),
                          keras.layers.Activation("hard_sigmoid"), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    copy = he.to_legacy(m)
    assert np.abs(copy.predict(xt, verbose=0) - m.predict(xt, verbose=0)).max() <= 1e-5
    assert he._keras.flavour(he.training.clone(copy)) == "keras2"
    p = he.prune(m, (x, y), channels=0.5, epochs=1, progress=False)
    assert he._keras.flavour(p.model) == "keras3" and p.model.get_layer("conv").filters == 4


# ----------------------------------------------------------------------------------------------- round two (issue 27)
def test_file_that_reads_unassigned_variables_is_refused(digits, tmp_path):
    """A Keras 3 model traced by tf.function and converted with from_concrete_functions keeps its weights outside
    the file (VAR_HANDLE/READ_VARIABLE, never ASSIGN_VARIABLE): LiteRT runs it and answers garbage."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(10)])

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 1], tf.float32)])
    def f(t):
        z = m(t)
        return {"logits": z, "probs": tf.nn.softmax(z)}

    content = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], m).convert()
    path = tmp_path / "traced.tflite"
    path.write_bytes(content)
    with pytest.raises(he.HomlEdgeError, match=r"reads variables it never assigns \(READ_VARIABLE x\d, VAR_HANDLE "
                                               r"x\d, no ASSIGN_VARIABLE\).*convert from the Keras model") as e:
        he.load_lite(path)
    assert "\n" not in str(e.value)
    with pytest.raises(he.HomlEdgeError, match="never assigns"):
        he.quantize(str(path), "int4")


def test_non_finite_outputs_are_an_error_not_a_result(digits):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def log(t):
        return tf.math.log(t)

    lite = he.LiteModel(tf.lite.TFLiteConverter.from_concrete_functions([log.get_concrete_function()]).convert(),
                        name="log")
    assert np.allclose(lite.predict(np.ones((3, 4), np.float32)), 0.0)
    x = np.ones((5, 4), np.float32)
    x[2, 1] = -1.0
    with pytest.raises(he.HomlEdgeError, match=r"LiteRT computed NaN or infinite values for 1 of 5 samples "
                                               r"\(output .*\) of log from finite inputs"):
        lite.predict(x)
    with pytest.raises(he.HomlEdgeError, match="NaN or infinite"):
        lite.evaluate(x, np.zeros(5, int))
    x[2, 1] = np.nan
    with pytest.raises(he.HomlEdgeError, match="1 input sample.* contain NaN or infinite values.*clean the inputs"):
        lite.predict(x)
    with pytest.raises(he.HomlEdgeError, match="NaN or infinite"):
        he.compare({"log": lite}, x, np.zeros(5, int))


def test_float16_tflite_requantizes_against_its_own_outputs(trained, digits):
    """float16 weights behind DEQUANTIZE (how Google ships pre-trained vision models) are widened to float32
    exactly, then re-quantized; each variant is checked against the float16 file's outputs on the user's data."""
    from homl_edge import _flatbuffer

    (x, _), (xt, yt) = digits
    f16 = he.LiteModel(he.quantize(trained, "float16").content, name="f16")  # as if loaded from a file
    wide, n = _flatbuffer.widen_float16(f16.content)
    widened = he.LiteModel(wide, name="wide")
    assert n == 6 and "DEQUANTIZE" not in widened.builtin_ops()
    assert np.array_equal(widened.predict(xt), f16.predict(xt))  # exact: every float16 is a float32
    base = f16.evaluate(xt, yt)
    for mode, kw, shrink in (("dynamic", {"data": xt}, 1.9), ("int4", {"data": xt}, 3.6),
                             ("int8", {"data": x[:200]}, 1.9)):
        q = he.quantize(f16, mode, **kw)
        a = q.meta["agreement"]
        print(f"float16 {f16.size:,} B -> {mode} {q.size:,} B ({f16.size / q.size:.2f}x), argmax agreement "
              f"{a['argmax']:.3f}, max |diff| {a['max_abs_diff']:.3g}; {q!r}")
        assert q.meta["source_bytes"] == f16.size and q.meta["widened_float16"] == 6
        assert f16.size / q.size > shrink and a["argmax"] >= 0.98 and a["n"] == len(kw["data"][:500])
        assert abs(q.evaluate(xt, yt) - base) <= 0.01
        assert {r["layer"] for r in q.meta["changed"]} == {"relu", "dense", "classifier"} and not q.meta["kept"]


def test_requantize_says_what_changed_and_refuses_nothing(trained, digits, lite_f32):
    (x, _), _ = digits
    mixed = he.quantize(lite_f32, "int4", precision={"classifier": "float"})
    assert [r["layer"] for r in mixed.meta["kept"]] == ["classifier"]
    assert {(r["layer"], r["to"]) for r in mixed.meta["changed"]} == {("relu", "int4"), ("dense", "int4")}
    assert "2 weight tensors quantized, 1 kept in float" in repr(mixed)
    assert "kept in float: classifier (FULLY_CONNECTED)" in mixed.summary(print_fn=None)
    with pytest.raises(he.HomlEdgeError, match=r"changed no weight's precision \(3 float weight tensors stayed "
                                               r"float, in CONV_2D, FULLY_CONNECTED ops.*nothing to gain"):
        he.quantize(lite_f32, "dynamic", precision={".*": "float"})


def test_requantized_meta_is_plain_data_and_save_keras_takes_only_keras(trained, digits, lite_f32, tmp_path):
    """A LiteModel's meta stays JSON (its agreement a dict, not a record), and save_keras given a .tflite refuses
    in one line (it wrote a flatbuffer named .keras, which no Keras reads back)."""
    import json

    (x, _), _ = digits
    r = he.requantize(lite_f32, "dynamic", data=x[:50])
    assert type(r.meta["agreement"]) is dict and json.loads(json.dumps(r.meta))["agreement"]["n"] == 50
    with pytest.raises(he.HomlEdgeError, match=r"^save_keras saves a Keras model .*got LiteModel: a \.tflite is "
                                               r"saved with lite\.save\(path\)$"):
        he.save_keras(lite_f32, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_requantize_warns_when_the_file_grows():
    """A tiny model: scales, zero points and (de)quantize ops cost more than 4x fewer weight bytes save."""
    k = he._keras.legacy()
    k.utils.set_random_seed(0)
    tiny = k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="relu"), k.layers.Dense(2)])
    f32 = he.quantize(tiny, "float32")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    q = he.quantize(f32, "int8", data=x)
    print(f"tiny model: float32 {f32.size:,} B, int8 {q.size:,} B; {q!r}")
    assert q.size > f32.size
    assert q.meta["warning"].startswith(f"the file grew from {f32.size:,} to {q.size:,} bytes: its 2 quantized "
                                        "weight tensors saved only ")
    assert "warning: the file grew" in repr(q)


def _rewrite(content, edit):
    import flatbuffers

    from homl_edge import _flatbuffer

    model = _flatbuffer.parse(content)
    edit(model, _flatbuffer)
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _old_bias_rule(model, fb):
    """What files written before LiteRT's quantized_dimension rule hold: per-channel biases (1-D) whose
    quantized_dimension is 1, as TFLM's person-detection model has; TFLM never reads the field for them."""
    for t in model.subgraphs[0].tensors:
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) > 1 and len(t.shape) == 1:
            q.quantizedDimension = 1


def test_file_litert_refuses_is_inspected_and_runs_on_micro(lite_int8io, digits, tmp_path, capsys):
    from homl_edge import cli

    (_, _), (xt, yt) = digits
    path = tmp_path / "old.tflite"
    path.write_bytes(_rewrite(lite_int8io.content, _old_bias_rule))
    lite = he.load_lite(path)
    assert "quantized_dimension to be below its rank" in lite.meta["litert_refused"]
    assert lite.ops == lite_int8io.builtin_ops() and lite.input_shape == lite_int8io.input_shape == (-1, 8, 8, 1)
    assert [t["dtype"] for t in lite.tensors()] == [t["dtype"] for t in lite_int8io.tensors()]
    with pytest.raises(he.HomlEdgeError, match=r"LiteRT will not run old: LiteRT's verifier requires .*"
                                               r"quantized_dimension must be in range \[0, 1\)\. Was 1.*on_micro"):
        lite.predict(xt[:2])
    run = lite.on_micro(xt[:40], yt[:40])
    ref = lite_int8io.on_micro(xt[:40], yt[:40])
    assert np.array_equal(run.outputs, ref.outputs) and run.accuracy == ref.accuracy  # TFLM alone, same answers
    assert run.argmax_agreement is None and run.compared_with.startswith("nothing: LiteRT's verifier")
    assert dict(run.items())["arena_bytes"] == run.arena_bytes == ref.arena_bytes and len(run) == len(run.keys())
    code = he.micro.setup_code(lite, run.arena_bytes)
    assert "resolver.AddConv2D();" in code and "resolver.AddFullyConnected();" in code
    assert he.export_c_array(lite, tmp_path / "model_data.cc").flash_bytes == lite.size
    assert he.micro.fits_on(lite.size, run.arena_bytes).loc["Raspberry Pi Pico (RP2040)", "fits"]
    assert cli.main(["inspect", str(path)]) == 0
    assert "LiteRT will not run it: LiteRT's verifier requires" in capsys.readouterr().out


def test_custom_op_file_is_inspected_not_run(lite_int8io, tmp_path):
    def custom_softmax(model, fb):
        s = fb.schema()
        for c in model.operatorCodes:
            if fb._names()[0][max(c.builtinCode, c.deprecatedBuiltinCode)] == "SOFTMAX":
                c.builtinCode = c.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
                c.customCode = "SignalWindow"

    path = tmp_path / "signal.tflite"
    path.write_bytes(_rewrite(lite_int8io.content, custom_softmax))
    lite = he.load_lite(path)
    assert lite.ops["SignalWindow"] == 1 and "SOFTMAX" not in lite.ops
    assert "LiteRT will not run it: LiteRT has no kernel for the custom op SignalWindow" in lite.summary(print_fn=None)
    with pytest.raises(he.HomlEdgeError, match="no kernel for the custom op SignalWindow"):
        lite.evaluate(np.zeros((2, 8, 8, 1), np.float32), [0, 1])


def test_a_crash_message_says_what_the_file_holds(lite_int8io):
    text = lite_int8io._micro_failure({"kind": "crash", "error": "the runtime crashed on it (signal 11)"})
    assert text.startswith("TensorFlow Lite Micro crashed on ") and "(signal 11)); what the file holds: " in text
    assert "CONV_2D x1" in text and "inputs/outputs int8, int8" in text


def test_micro_run_is_a_full_mapping(lite_int8io, digits):
    (_, _), (xt, yt) = digits
    run = lite_int8io.on_micro(xt[:3], yt[:3])
    assert set(dict(run)) == set(run.keys()) and dict(run.items())["n"] == 3 and run.get("nothing") is None
    with pytest.raises(KeyError):
        run["nothing"]


def test_two_lstm_int8_model_runs_on_micro(digits):
    """TFLM's LSTM kernel crashes (signal 11) on an arena a little too small; the arena search used to take the
    whole run down with it. Each trial now runs in a forked copy: a crash is a failed size, not the end."""
    (x, y), (xt, yt) = digits
    k2.utils.set_random_seed(0)  # untrained: the crash is in the kernel's set-up, not in what it computes
    m = k2.Sequential([k2.Input((8, 8), batch_size=1), k2.layers.LSTM(16, return_sequences=True),
                       k2.layers.LSTM(16), k2.layers.Dense(10, activation="softmax")])
    # full int8 with int8 input and output, as TFLM's examples are made (the converter's recipe: the mode's row)
    lite = he.quantize(m, "int8-io", data=x[:50, ..., 0], name="two_lstm")
    assert lite.builtin_ops()["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 2 and lite.input_dtype == np.int8
    run = lite.on_micro(xt[:30, ..., 0], yt[:30])
    print(f"two LSTMs, int8 I/O: {run!r}")
    step = lite.output_details[0]["quantization"][0]
    diff = np.abs(run.outputs - lite.predict(xt[:30, ..., 0])).max()  # untrained: near-ties, so not the argmax
    print(f"TFLM vs LiteRT: max |diff| {diff:.4f} ({diff / step:.0f} output steps)")
    assert diff <= 16 * step and 4096 < run.arena_bytes < 16384  # 8 steps measured: two integer LSTM kernels


def test_savedmodel_folder_exports_to_tfjs_graph_model_and_predicts_in_chromium(k3_cnn, digits, tmp_path):
    import tensorflow as tf
    from browser import TFJS, require_browser

    require_browser()
    (_, _), (xt, _) = digits
    k3_cnn.export(str(tmp_path / "saved"), verbose=False)
    out = he.export_tfjs(str(tmp_path / "saved"), tmp_path / "web", page=True, tfjs_url=str(TFJS))
    manifest = (out.path / "model.json").read_text()
    assert '"format": "graph-model"' in manifest and "app.js" in out.files
    fn = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    want = next(iter(fn(tf.constant(xt[:20])).values())).numpy()
    got = he.browser.predict_in_browser(out.path, xt[:20])
    diff = np.abs(got["probs"] - want).max()
    print(f"SavedModel -> TF.js graph model: max |diff| {diff:.2g} in Chromium ({got['backend']})")
    assert diff < 1e-4 and (got["probs"].argmax(1) == want.argmax(1)).all()
    with pytest.raises(he.HomlEdgeError, match="graph model, which predicts but cannot train; training in the "
                                               "page needs the Keras model"):
        he.export_tfjs(str(tmp_path / "saved"), tmp_path / "web2", page=True, trainable=True, tfjs_url=str(TFJS))
    from homl_edge import cli

    assert cli.main(["export-tfjs", str(tmp_path / "saved"), str(tmp_path / "web3")]) == 0
    assert '"format": "graph-model"' in (tmp_path / "web3" / "model.json").read_text()


def test_int8_of_a_tiny_keras_model_says_why_it_is_larger():
    k2.utils.set_random_seed(0)
    tiny = k2.Sequential([k2.Input((4,)), k2.layers.Dense(3, activation="relu"), k2.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    f32, q = he.quantize(tiny, "float32"), he.quantize(tiny, "int8", data=x)
    print(f"tiny Keras model: float32 {f32.size:,} B, int8 {q.size:,} B; {q.meta['warning']}")
    assert q.size > f32.size and q.meta["warning"].startswith(
        f"the int8 file ({q.size:,} bytes) is larger than the float32 one ({f32.size:,} bytes): the model has only "
        "23 weights (92 bytes as float32)")
    assert "warning: the int8 file" in repr(q)
    assert f32.meta["warning"] is None


def test_a_quantizing_mode_that_quantized_nothing_says_so(digits):
    """LSTM(64) on the digits' 8 features: each input kernel has 8x64 = 512 values, under the converter's 1,024, and
    a fused LSTM is quantized all or none, so 'dynamic' wrote the float32 file byte for byte, with no word of it."""
    import keras

    (x, _), _ = digits
    m = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(64), keras.layers.Dense(10)])
    f32, dyn = he.quantize(m, "float32"), he.quantize(m, "dynamic")
    assert dyn.size == f32.size
    assert "no weight was quantized" in dyn.meta["warning"] and "no weight was quantized" in repr(dyn)
    assert f32.meta["warning"] is None
    i8 = he.quantize(m, "int8", data=x[:50].reshape(-1, 8, 8))
    assert i8.size < f32.size / 3 and i8.meta["warning"] is None
