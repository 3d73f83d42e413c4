"""Hostile inputs of the security and reliability review (_sandbox, _cache, _files): code in model files, commands that would eat
their own input, a cache that serves what it did not make, runaway runtimes and odd files.

Each test was run against the code before its fix and failed there; each builds tiny models, so the file runs in
well under a minute.
"""
import importlib.util
import os
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

import homl_edge as he
from homl_edge import _keras, _sandbox, _tf, cli, quantization
from homl_edge.errors import InvalidModelFileError
from conftest import sha


def _hostile(marker):
    """A function whose own code writes ``marker`` whenever it runs (the path is a constant of its bytecode)."""
    return eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")


def _escape_lambda(path):
    """Rewrite an .h5 file's model config so that every class name "Lambda" is spelled as a JSON escape."""
    with h5py.File(path, "r+") as f:
        cfg = f.attrs["model_config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        escaped = cfg.replace('"class_name": "Lambda"', '"class_name": "\\u004cambda"')
        assert escaped != cfg and '"Lambda"' not in escaped
        f.attrs["model_config"] = escaped


@pytest.mark.parametrize("nesting", ["top", "time-distributed", "nested-model"])
def test_h5_lambda_spelled_as_a_json_escape_is_refused(tmp_path, nesting, capsys):
    k = _keras.legacy()
    marker = tmp_path / "pwned"
    code = k.layers.Lambda(_hostile(marker), name="sneaky")
    if nesting == "top":
        m = k.Sequential([k.Input((4,)), code, k.layers.Dense(2)])
    elif nesting == "time-distributed":
        m = k.Sequential([k.Input((3, 4)), k.layers.TimeDistributed(code), k.layers.Dense(2)])
    else:
        inner = k.Sequential([k.Input((4,)), code], name="inner")
        inp = k.Input((4,))
        m = k.Model(inp, k.layers.Dense(2)(inner(inp)))
    path = tmp_path / "e.h5"
    m.save(path)
    _escape_lambda(path)
    marker.unlink()
    before = sha(path)
    with pytest.raises(he.HomlEdgeError, match="sneaky.*safe mode") as e:
        he.load_keras(path)
    assert "\n" not in str(e.value)
    assert cli.main(["quantize", str(path), "--mode", "float32", "-o", str(tmp_path / "e.tflite")]) == 2
    err = capsys.readouterr().err
    assert "sneaky" in err and "--unsafe" in err and "safe_mode" not in err, err
    assert not marker.exists() and sha(path) == before and not (tmp_path / "e.tflite").exists()
    # the test can fail: the escaped file still holds the Lambda, and loading it without safe mode runs its code
    he.load_keras(path, safe_mode=False)
    assert marker.exists()


def test_saved_model_with_a_lambda_is_refused(tmp_path, capsys):
    k = _keras.legacy()
    marker = tmp_path / "pwned"
    m = k.Sequential([k.Input((4,)), k.layers.Lambda(_hostile(marker), name="sneaky"), k.layers.Dense(2)])
    folder = tmp_path / "sm"
    with _tf.quiet():
        m.save(folder)  # tf_keras without a suffix: a SavedModel folder with Keras metadata
    assert (folder / "keras_metadata.pb").is_file()
    marker.unlink()
    for load in (lambda: he.load_keras(folder), lambda: he.quantize(folder, "float32", cache=False)):
        with pytest.raises(he.HomlEdgeError, match="sneaky.*safe mode") as e:
            load()
        assert "\n" not in str(e.value)
    assert cli.main(["quantize", str(folder), "--mode", "float32", "-o", str(tmp_path / "s.tflite")]) == 2
    assert "--unsafe" in capsys.readouterr().err
    assert not marker.exists()
    # the user's own choice: --unsafe loads it (and its code runs)
    assert cli.main(["quantize", str(folder), "--mode", "float32", "-o", str(tmp_path / "s.tflite"),
                     "--unsafe"]) == 0, capsys.readouterr().err
    assert marker.exists() and (tmp_path / "s.tflite").is_file()


# ----------------------------------------------------------------------------------------------- data loss
@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    k = _keras.legacy()
    k.utils.set_random_seed(0)
    m = k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10, name="dense")], name="tiny")
    d = tmp_path_factory.mktemp("tiny")
    m.save(d / "model.keras")
    return d / "model.keras"


def _copy(src, folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / src.name).write_bytes(src.read_bytes())
    return folder / src.name


@pytest.mark.parametrize("where", ["same folder", "dot", "ancestor"])
def test_export_tfjs_force_never_deletes_the_source(tiny_file, tmp_path, monkeypatch, where, capsys):
    src = _copy(tiny_file, tmp_path / "proj" / "models")
    (tmp_path / "proj" / "notes.txt").write_text("mine")
    before = sha(src)
    out = {"same folder": src.parent, "dot": ".", "ancestor": tmp_path / "proj"}[where]
    monkeypatch.chdir(src.parent)
    assert cli.main(["export-tfjs", str(src), str(out), "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("homl-edge: error:") and "\n" not in err, err
    assert sha(src) == before and (tmp_path / "proj" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in src.parent.iterdir()) == ["model.keras"]


def test_export_tfjs_force_replaces_only_a_previous_export(tiny_file, tmp_path):
    model = he.load_keras(tiny_file)
    out = tmp_path / "web"
    first = he.export_tfjs(model, out, page=True, tfjs_url="https://cdn.example.org/tf.min.js")
    assert (out / "index.html").is_file()
    # a second export over the first one is what --force is for: the old files go, the new ones stay
    second = he.export_tfjs(model, out, overwrite=True)
    assert not (out / "index.html").exists() and (out / "model.json").is_file()
    assert set(second.files) < set(first.files)
    # a failing export leaves the previous one as it was
    files_before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(he.HomlEdgeError):
        he.export_tfjs(model, out, overwrite=True, trainable=True)  # trainable needs page=True: refused late
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files_before
    assert [p.name for p in tmp_path.iterdir()] == ["web"]  # no temporary folder left behind
    # a file the export did not write is never deleted: the folder is refused
    (out / "my-notes.txt").write_text("mine")
    with pytest.raises(he.HomlEdgeError, match="my-notes.txt") as e:
        he.export_tfjs(model, out, overwrite=True)
    assert "\n" not in str(e.value) and (out / "my-notes.txt").read_text() == "mine"
    assert (out / "model.json").is_file()
    # so is a non-empty folder that no export wrote
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2")
    with pytest.raises(he.HomlEdgeError, match="data.csv"):
        he.export_tfjs(model, other, overwrite=True)
    assert (other / "data.csv").read_text() == "1,2"
    # an export written before manifests existed is one by its file names (a TF.js model.json, shards, the page)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("model.json", "group1-shard1of1.bin"):
        (legacy / name).write_bytes((out / name).read_bytes())
    (legacy / "index.html").write_text("<p>old page</p>")
    he.export_tfjs(model, legacy, overwrite=True)
    assert not (legacy / "index.html").exists() and (legacy / ".homl-edge-export.json").is_file()
    (legacy / ".homl-edge-export.json").unlink()
    (legacy / "notes.txt").write_text("mine")
    with pytest.raises(he.HomlEdgeError, match="notes.txt"):
        he.export_tfjs(model, legacy, overwrite=True)
    assert (legacy / "notes.txt").read_text() == "mine"


def test_quantize_never_overwrites_its_input(tiny_file, tmp_path, capsys):
    src = _copy(tiny_file, tmp_path)
    before = sha(src)
    for out in (src, tmp_path / "." / "model.keras", tmp_path / "q.keras", tmp_path / "q"):
        assert cli.main(["quantize", str(src), "--mode", "float32", "-o", str(out), "--force"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("homl-edge: error:") and "\n" not in err and ".tflite" in err, err
    assert sha(src) == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    lite = tmp_path / "m.tflite"
    assert cli.main(["quantize", str(src), "--mode", "float32", "-o", str(lite)]) == 0
    # a .tflite is re-quantized into another file, never into itself
    assert cli.main(["quantize", str(lite), "--mode", "dynamic", "-o", str(lite), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err
    # export-c writes C source, never a .tflite
    assert cli.main(["export-c", str(lite), "-o", str(tmp_path / "x.tflite")]) == 2


def test_prune_checks_its_output_before_training(tiny_file, tmp_path, digits, capsys):
    (x, y), _ = digits
    np.save(tmp_path / "x.npy", x[:32, :, :6])  # the wrong shape: training would fail on it
    np.save(tmp_path / "y.npy", y[:32])
    src = _copy(tiny_file, tmp_path)
    base = ["prune", str(src), "--x", str(tmp_path / "x.npy"), "--y", str(tmp_path / "y.npy"), "--epochs", "1",
            "--quiet", "-o"]
    for out, says in [(tmp_path / "missing" / "p.keras", "does not exist"),
                      (tmp_path / "p.tflite", ".keras or .h5"),
                      (src, "is the input"),
                      (tmp_path / "x.npy", ".keras or .h5")]:
        assert cli.main(base + [str(out), "--force"]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err, (out, err)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        assert cli.main(base + [str(ro / "p.keras")]) == 2
        assert "permission" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- the cache
@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOML_EDGE_CACHE", str(tmp_path / "cache"))
    quantization._memory_cache.clear()
    yield tmp_path / "cache" / "tflite"
    quantization._memory_cache.clear()


def _small(k, seed, name="small"):
    k.utils.set_random_seed(seed)
    return k.Sequential([k.Input((6,)), k.layers.Dense(5, name="d1"), k.layers.Dense(3, name="d2")], name=name)


def test_cache_never_serves_a_damaged_or_replaced_entry(own_cache):
    k = _keras.legacy()
    model = _small(k, 0)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)
    want = model.predict(x, verbose=0)
    fresh = he.quantize(model, "float32")
    assert not fresh.meta["cached"]
    quantization._memory_cache.clear()  # a new session: only the disk remembers
    assert he.quantize(model, "float32").meta["cached"]  # the cache works (so a miss below is the check's doing)
    (entry,) = own_cache.glob("*.tflite")
    other = he.quantize(_small(k, 1, name="other"), "float32", cache=False).content
    kernel = np.ascontiguousarray(model.get_layer("d1").kernel.numpy().T, np.float32).tobytes()  # TFLite: (out, in)
    assert fresh.content.count(kernel) == 1
    damages = {"weights zeroed": fresh.content.replace(kernel, bytes(len(kernel))),
               "truncated": fresh.content[:len(fresh.content) // 2],
               "another model": other}
    for what, data in damages.items():
        entry.write_bytes(data)
        quantization._memory_cache.clear()
        lite = he.quantize(model, "float32")
        assert not lite.meta["cached"], what
        assert lite.content == fresh.content, what
        np.testing.assert_allclose(lite.predict(x), want, rtol=1e-5, atol=1e-5)
    # the entry was written again: the next session gets it from the disk
    quantization._memory_cache.clear()
    assert he.quantize(model, "float32").meta["cached"] and entry.read_bytes() == fresh.content


_LAYER = '''
import tf_keras as k


class Scale(k.layers.Layer):
    def call(self, x):
        return x * {factor}
'''


def _custom_model(tmp_path, factor, weights=None):
    """The same custom layer class (name, module, config) with another call(): only its code differs."""
    folder = tmp_path / f"v{factor}"
    folder.mkdir()
    (folder / "custom_scale.py").write_text(_LAYER.format(factor=factor))
    spec = importlib.util.spec_from_file_location("custom_scale", folder / "custom_scale.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["custom_scale"] = mod
    spec.loader.exec_module(mod)
    k = _keras.legacy()
    k.utils.set_random_seed(0)
    m = k.Sequential([k.Input((6,), name="x"), k.layers.Dense(3, name="d"), mod.Scale(name="scale")], name="custom")
    if weights is not None:
        m.set_weights(weights)
    return m


def test_cache_key_covers_custom_layer_code(own_cache, tmp_path):
    x = np.random.default_rng(1).normal(size=(8, 6)).astype(np.float32)
    m1 = _custom_model(tmp_path, 1.0)
    m3 = _custom_model(tmp_path, 3.0, weights=m1.get_weights())
    assert m1.to_json() == m3.to_json()  # same config and weights: only call() differs
    a = he.quantize(m1, "float32")
    b = he.quantize(m3, "float32")
    assert not b.meta["cached"]
    np.testing.assert_allclose(b.predict(x), 3 * a.predict(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.predict(x), m3.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert he.quantize(m3, "float32").meta["cached"]  # and the same code still hits


def test_cache_key_covers_the_whole_package():
    before = quantization.versions()
    assert set(before) >= {"tensorflow", "tf-keras", "keras", "ai-edge-litert", "ai-edge-quantizer", "numpy",
                           "homl-edge", "conversion-code"}
    # the code digest is the package's, not one module's: it changes with any homl_edge/*.py file
    import hashlib
    from pathlib import Path

    pkg = Path(he.__file__).parent
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(f"{f.relative_to(pkg).as_posix()}|".encode() + f.read_bytes())
    assert before["conversion-code"] == h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- the sandbox
def _tflite_from(fn):
    tf = _tf.tf()
    with _tf.quiet():
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        return bytes(conv.convert())


def test_sandbox_memory_limit(tmp_path):
    tf = _tf.tf()

    @tf.function(input_signature=[tf.TensorSpec([1, 2 ** 28], tf.float32)])  # a 1 GiB input, in a tiny file
    def big(x):
        return tf.nn.relu(x)

    data = _tflite_from(big)
    assert len(data) < 2000
    path = tmp_path / "big.tflite"
    path.write_bytes(data)
    previous = _sandbox.set_limits(memory_bytes=512 * 2 ** 20)
    try:
        t0 = time.perf_counter()
        with pytest.raises(InvalidModelFileError, match="memory limit of 512 MiB") as e:
            he.load_lite(path)
        print(f"refused in {time.perf_counter() - t0:.2f} s: {e.value}")
        assert "\n" not in str(e.value)
    finally:
        _sandbox.set_limits(**previous)
    assert _sandbox.check(he.quantize(_small(_keras.legacy(), 0), "float32", cache=False).content)["ok"]


def test_sandbox_time_limit():
    tf = _tf.tf()

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def forever(x):
        _, y = tf.while_loop(lambda i, v: tf.reduce_sum(v) > -1.0, lambda i, v: (i + 1, v), [tf.constant(0), x])
        return y

    data = _tflite_from(forever)
    t0 = time.perf_counter()
    r = _sandbox.check(data, timeout=2)
    took = time.perf_counter() - t0
    print(f"stopped after {took:.2f} s: {r['error']}")
    assert not r["ok"] and "time limit of 2 s" in r["error"] and "signal" not in r["error"], r
    assert took < 10
    previous = _sandbox.set_limits(check_seconds=1.5)  # the public path, under a shorter limit
    try:
        with pytest.raises(InvalidModelFileError, match=r"time limit of 1\.5 s") as e:
            he.LiteModel(data, name="forever")
        assert "\n" not in str(e.value)
    finally:
        _sandbox.set_limits(**previous)
    assert _sandbox.CHECK_SECONDS == 120.0
    ok = _sandbox.check(he.quantize(_small(_keras.legacy(), 0), "float32", cache=False).content)
    assert ok["ok"]  # a new child answers the next job


def test_only_regular_files_are_read(tmp_path, capsys):
    assert cli.main(["inspect", "/dev/zero"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a regular file" in err and "\n" not in err, err
    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    codes = []
    t = threading.Thread(target=lambda: codes.append(cli.main(["inspect", str(fifo)])), daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():  # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
    assert codes == [2]
    assert "not a regular file" in capsys.readouterr().err
    os.mkfifo(tmp_path / "pipe.h5")
    for fn, path in ((he.load_lite, fifo), (he.load_keras, tmp_path / "pipe.h5")):
        with pytest.raises(he.HomlEdgeError, match="not a regular file"):
            fn(path)


def test_on_micro_refuses_an_output_shape_that_lies(lite_int8io, digits):
    import struct

    (_, _), (xt, _) = digits
    # a fresh interpreter: the session's shared one may have been resized to an earlier test's batch
    assert list(he.LiteModel(lite_int8io.content).output_details[0]["shape"]) == [1, 10]
    honest, lying = struct.pack("<3i", 2, 1, 10), struct.pack("<3i", 2, 1, 1)  # a shape vector: length, dims
    assert lite_int8io.content.count(honest) == 2
    liar = he.LiteModel(lite_int8io.content.replace(honest, lying), name="liar")  # LiteRT still accepts it
    with pytest.raises(he.HomlEdgeError, match=r"shape \(8, 1\) where LiteRT computes \(8, 10\)") as e:
        liar.on_micro(xt[:8])
    assert "\n" not in str(e.value)
    assert lite_int8io.on_micro(xt[:8]).argmax_agreement == 1.0  # the honest file still runs


def test_compare_names_every_variant_and_checks_x(lite_f32, trained, digits, tmp_path, capsys):
    (_, _), (xt, yt) = digits
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        lite_f32.save(tmp_path / d / "model.tflite")
    np.save(tmp_path / "x.npy", xt[:40])
    np.save(tmp_path / "y.npy", yt[:40])
    args = [str(tmp_path / "a/model.tflite"), str(tmp_path / "b/model.tflite"), "--x", str(tmp_path / "x.npy"),
            "--y", str(tmp_path / "y.npy"), "--csv"]
    assert cli.main(["compare", *args]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 3 and len({r.split(",")[0] for r in rows}) == 3, rows
    np.save(tmp_path / "x.npy", xt[:40, :, :5])
    trained.save(tmp_path / "m.keras")
    for models in ([str(tmp_path / "a/model.tflite")], [str(tmp_path / "m.keras")]):
        assert cli.main(["compare", *models, *args[2:]]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("homl-edge: error:") and "\n" not in err and "(40, 8, 5, 1)" in err, err


def test_micro_log_folders_are_removed_even_after_a_killed_child(lite_int8io, digits, tmp_path, monkeypatch):
    """TFLM's log folder of a micro job (homl-edge-micro-*) is removed after the job; one left by a child that was
    killed (no exit handler ran) is removed by the next child's first job, whose sweep finds its lock free."""
    import signal

    monkeypatch.setenv("TMPDIR", str(tmp_path))   # the sandbox child's temp folder (it inherits the environment)
    make = "from homl_edge import _files; print(_files.process_folder('homl-edge-micro-'), flush=True); input()"
    killed = subprocess.Popen([sys.executable, "-c", make], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    dead = killed.stdout.readline().strip()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed.stdout.close()
    killed.stdin.close()
    root = os.path.dirname(dead)   # the killed process's root folder, and its lock beside it
    assert os.path.isdir(dead) and os.path.isfile(root + ".lock") and os.path.dirname(root) == str(tmp_path)
    (_, _), (xt, _) = digits
    box = _sandbox.Sandbox()   # a child of its own, started under this TMPDIR
    try:
        x = (xt[:2] / lite_int8io.input_details[0]["quantization"][0]).round().astype(np.int8)
        header, _ = box.call({"job": "micro", "arena_size": None, "find_arena": False, "n_outputs": 1},
                             [lite_int8io.content, _sandbox._npy_bytes(x)])
        assert header["ok"], header
    finally:
        box.close()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith("homl-edge-")]
    assert left == [], f"a micro job left its log folder, or the dead one stayed: {left}"


def test_stopping_the_sandbox_child_stops_what_it_forked():
    """A TFLM trial runs in a process the sandbox child forks; when the child is stopped (a timeout), that process
    goes too (the child has a session of its own and its whole group is killed), instead of spinning on."""
    child = ("import os, sys, time\npid = os.fork()\n"
             "if pid == 0:\n    while True: pass\n"   # a trial stuck in a loop
             "print(pid, flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        grandchild = int(proc.stdout.readline())
        _sandbox.Sandbox._kill(proc)
        proc.wait(timeout=10)
        for _ in range(100):   # killed: gone, or a zombie until whoever adopted it reaps it
            try:
                with open(f"/proc/{grandchild}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        break
            except FileNotFoundError:
                break
            time.sleep(0.05)
        else:
            os.kill(grandchild, 9)
            pytest.fail("the forked process outlived the child")
    finally:
        proc.kill()
        proc.stdout.close()
