"""The one family of results (homl_edge/_result.py): every public call that used to return a dict, a tuple or a
half-dict returns a frozen Result, shown the same three ways (one-line repr, ``to_frame()``, ``_repr_html_``);
a Record also indexes like the old dict, with the same keys (the lists below are what the calls returned before)."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import homl_edge as he
from homl_edge._result import Record, Result

# the keys the old dicts had (read from the code before the change): a Record keeps every one of them
OLD_KEYS = {
    "benchmark": ["median_ms", "p90_ms", "mean_ms", "runs", "threads", "rounds", "round_medians_ms", "spread_ms",
                  "warmup", "cold_start_ms", "input", "samples", "batch", "note"],
    "profile": ["macs", "activation_bytes"],
    "measure_lite": ["kind", "size_bytes", "gzip_bytes", "accuracy", "macs", "activation_bytes", "latency_median_ms",
                     "latency_p90_ms", "cold_start_ms"],
    "measure_keras": ["kind", "size_bytes", "gzip_bytes", "accuracy", "latency_median_ms", "latency_p90_ms"],
    "devices": ["gpus", "cpus", "logical", "summary", "runtime_initialized"],
    "configure": ["applied", "notes"],
    "signature": ["key", "inputs", "outputs"],
    "snippets": ["signature", "python", "kotlin", "swift"],
    "c_array": ["source", "header", "variable", "flash_bytes"],
    "agreement": ["argmax", "max_abs_diff", "n"],
    "precision_changes": ["changed", "kept"],
    # a MicroRun listed only the fields it had measured; now every field is a key (None where not measured)
    "micro": ["outputs", "n", "accuracy", "argmax_agreement", "bit_identical", "max_abs_diff", "arena_bytes",
              "arena_tried", "flash_bytes", "compared_with"],
    "browser": ["probs", "backend", "seconds", "requests"],
}


def shows_itself(r, cls):
    """The family's three faces, and frozen."""
    assert isinstance(r, Result) and type(r) is cls
    text = repr(r)
    assert "\n" not in text and text, text
    assert isinstance(r.to_frame(), pd.DataFrame)
    html = r._repr_html_()
    assert isinstance(html, str) and html
    name = dataclasses.fields(r)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(r, name, None)
    return r


def indexes_like_the_old_dict(r, keys):
    assert isinstance(r, Record)
    assert list(r) == keys and len(r) == len(keys) and all(k in r for k in keys)
    assert all(r[k] is getattr(r, k) for k in keys)
    assert dict(r) == {k: getattr(r, k) for k in keys} and r.get("nothing") is None
    with pytest.raises(KeyError):
        r["nothing"]
    with pytest.raises(TypeError):
        r["n" if "n" in r else keys[0]] = 1


@pytest.fixture(scope="module")
def data(digits):
    (x, _), (xt, yt) = digits
    return x, xt[:40], yt[:40]


def test_benchmark_profile_and_measure(lite_f32, lite_int8io, trained, data):
    from homl_edge.lite import Latency, Profile
    from homl_edge.report import Measurement

    _, xt, yt = data
    lat = shows_itself(lite_f32.benchmark(xt, runs=20, rounds=2), Latency)
    indexes_like_the_old_dict(lat, OLD_KEYS["benchmark"])
    assert 0 < lat["median_ms"] <= lat["p90_ms"] and lat.rounds == 2 and len(lat.round_medians_ms) == 2
    assert "µs" in repr(lat) or "ms" in repr(lat)  # its own one line, in time units
    assert lat.to_frame().loc["median_ms", "value"] == lat.median_ms
    p = shows_itself(lite_f32.profile(), Profile)
    indexes_like_the_old_dict(p, OLD_KEYS["profile"])
    assert p["macs"] > 0 and p == {"macs": p.macs, "activation_bytes": p.activation_bytes}
    m = shows_itself(he.report.measure(lite_int8io, xt, yt, runs=20), Measurement)
    indexes_like_the_old_dict(m, OLD_KEYS["measure_lite"])
    assert m["size_bytes"] == lite_int8io.size and m["macs"] == p.macs and m["accuracy"] > 0.9
    k = shows_itself(he.report.measure(trained, xt, yt, runs=20), Measurement)
    assert set(OLD_KEYS["measure_keras"]) < set(k) and k["kind"] == "keras"
    assert k.macs is None and k.cold_start_ms is None  # not measured for Keras: None (an empty cell in compare)
    table = he.report.compare({"keras": trained, "f32": lite_f32}, xt, yt, runs=20)
    assert pd.isna(table.loc["keras", "macs"]) and table.loc["f32", "macs"] == p.macs
    assert {**m}["kind"] == m.kind and json.loads(json.dumps(dict(p))) == dict(p)


def test_micro_run(lite_int8io, lite_f32, data):
    from homl_edge.lite import MicroRun

    _, xt, yt = data
    run = shows_itself(lite_int8io.on_micro(xt[:10], yt[:10]), MicroRun)
    indexes_like_the_old_dict(run, OLD_KEYS["micro"])
    assert run["arena_bytes"] > 0 and run["accuracy"] is not None and run["compared_with"] is None
    assert "compared_with" not in repr(run) and "outputs" not in run.to_frame().index  # measured fields only
    unlabelled = lite_f32.on_micro(xt[:3])
    assert unlabelled["accuracy"] is None and unlabelled.max_abs_diff < 1e-4
    assert run == run and not (run == unlabelled)


def test_gpu_results(trained):
    from homl_edge import gpu

    info = shows_itself(gpu.devices(), gpu.Devices)
    indexes_like_the_old_dict(info, OLD_KEYS["devices"])
    assert info["summary"] and isinstance(info["cpus"], list)
    if not info.gpus:
        assert gpu.memory_info() is None and info.to_frame().empty  # nothing to report: None stays None
    done = shows_itself(gpu.configure(), gpu.Configured)
    indexes_like_the_old_dict(done, OLD_KEYS["configure"])
    assert done == {"applied": [], "notes": []}
    tf = he.tensorflow()
    placed = shows_itself(gpu.placements(lambda: tf.reduce_sum(tf.ones((4, 4)) @ tf.ones((4, 4)))), gpu.Placements)
    assert float(placed.value) == 64.0 and placed.to_frame() is placed.table
    assert "MatMul" in list(placed.table.op) and set(placed.table.columns) == {"op", "device"}
    with pytest.raises(TypeError):  # no longer a tuple: read .value and .table
        value, table = placed


def test_export_results(lite_int8io, lite_f32, trained, data, tmp_path):
    from homl_edge import export

    _, xt, _ = data
    sig = shows_itself(export.signature(lite_int8io), export.Signature)
    indexes_like_the_old_dict(sig, OLD_KEYS["signature"])
    (name, (shape, dtype, _)), = sig["inputs"].items()
    assert dtype == "int8" and shape == (1, 8, 8, 1)
    assert list(sig.to_frame().direction) == ["input", "output"]
    snippets = shows_itself(export.deployment_snippets(lite_int8io, "digits.tflite"), export.Snippets)
    indexes_like_the_old_dict(snippets, OLD_KEYS["snippets"])
    assert snippets["signature"] == sig and f"run({name}=x)" in snippets["python"]
    assert "<pre>" in snippets._repr_html_()
    c = shows_itself(he.export_c_array(lite_int8io, tmp_path / "model_data.cc"), export.CArrayExport)
    indexes_like_the_old_dict(c, OLD_KEYS["c_array"])
    assert c["flash_bytes"] == lite_int8io.size and c["source"].is_file() and "bytes of flash" in c._repr_html_()
    web = shows_itself(export.export_web(lite_f32, tmp_path / "web"), export.WebExport)
    size = (web.path / "model.tflite").stat().st_size  # its batch fixed at 1 (web.batch_fixed): not lite_f32's size
    assert web.model_bytes == size == web.to_frame().loc["model.tflite", "bytes"]
    assert repr(web).startswith("<WebExport") and "\n" not in repr(web)
    tfjs = shows_itself(he.export_tfjs(trained, tmp_path / "tfjs"), export.TfjsExport)
    assert tfjs.weights_bytes > 0 and "model.json" in tfjs.to_frame().index and tfjs.served is None


def test_a_notebook_registers_a_frozen_export_once(lite_f32, tmp_path, monkeypatch):
    """The exports are frozen: the path a notebook registered for one is kept by the face, per export."""
    from homl_edge import _display, browser, export

    calls = []
    monkeypatch.setattr(browser, "jupyter_server_running", lambda: True)
    monkeypatch.setattr(browser, "register_page", lambda folder: calls.append(folder) or f"page/{len(calls)}/")
    web = export.export_web(lite_f32, tmp_path / "web")
    first = _display.live_page_html(web)
    assert "page/1/" in first and "page/1/" in _display.live_page_html(web) and len(calls) == 1
    again = export.WebExport(path=web.path, files=web.files)  # another export: registered on its own
    assert "page/2/" in _display.live_page_html(again) and web.served is None


def test_quantization_results(lite_f32, lite_int8io, data):
    from homl_edge import quantization

    _, xt, _ = data
    a = shows_itself(quantization.agreement(lite_f32, lite_int8io, xt), quantization.Agreement)
    indexes_like_the_old_dict(a, OLD_KEYS["agreement"])
    assert a["n"] == len(xt) and a["argmax"] > 0.9 and 0 < a["max_abs_diff"] < 0.1
    ch = shows_itself(quantization.precision_changes(lite_f32.content, lite_int8io.content),
                      quantization.PrecisionChanges)
    indexes_like_the_old_dict(ch, OLD_KEYS["precision_changes"])
    assert len(ch["changed"]) == 3 and ch.to_frame().changed.all()


def test_autoquantize_result(trained, data):
    from homl_edge import precision

    x, xt, yt = data
    r = shows_itself(he.autoquantize(trained, x[:100], (xt, yt), max_variants=2, progress=False),
                     precision.AutoQuantResult)
    assert r.to_frame().chosen.sum() == 1 and r.size_ratio > 1 and "chosen" in r._repr_html_()


def test_predict_in_browser_result(lite_f32, data, tmp_path):
    from homl_edge import browser, export

    if browser.find_chromium() is None:
        pytest.skip("no Chromium here")
    _, xt, _ = data
    web = export.export_web(lite_f32, tmp_path / "web")
    run = shows_itself(browser.predict_in_browser(web.path, xt[:5]), browser.BrowserRun)
    indexes_like_the_old_dict(run, OLD_KEYS["browser"])
    assert run["probs"].shape == (5, 10) and (run["probs"].argmax(1) == lite_f32.predict(xt[:5]).argmax(1)).all()
    assert all(r.startswith("/") for r in run["requests"])


def test_equality_hashing_and_frames_hold_no_surprises(lite_f32, trained, digits):
    """A measurement without labels (accuracy NaN) equals itself and its dict; a record with arrays compares with a
    dict of the same arrays; a result that holds a model is hashable (the model it replaces was); an int field stays
    an int in to_frame(); a result's own fields come first in its one-line repr."""
    (x, y), _ = digits
    m = he.report.measure(lite_f32, x[:50], None, runs=5, latency=False)
    assert np.isnan(m.accuracy) and m == m and m == dict(m)
    run = lite_f32.on_micro(x[:3])
    assert run == dict(run, outputs=np.array(run.outputs, copy=True))
    agree = he.quantization.agreement(lite_f32, lite_f32, x[:20])
    assert agree.to_frame().loc["n", "value"] == 20 and type(agree.to_frame().loc["n", "value"]) is int
    pruned = he.prune(trained, (x[:128], y[:128]), sparsity=0.5, epochs=1, progress=False)
    assert {pruned: 1}[pruned] == 1 and len({pruned, pruned}) == 1
    opt = he.optimize(trained, "quantize", mode="float16", progress=False)
    assert "technique='quantize'" in repr(opt), repr(opt)
