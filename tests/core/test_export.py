"""TF.js export checked by TF.js in Chromium; the C array checked by gcc; load_tfjs back into Keras."""
import json
import subprocess

import numpy as np
import pytest

import homl_edge as he
from browser import TFJS, chromium, serve
from conftest import ROOT, sha

# Documented tolerances (max abs difference of the probabilities against Keras, 20 test digits). Measured here
# with tfjs 4.22.0 on software WebGL: float32 3.6e-7, float16 weights 1.4e-4, uint8 (affine, per tensor) 3.3e-3.
# each published agreement at its own order of magnitude (README: float32 4e-7, float16 1.4e-4, uint8 3.3e-3)
TOLERANCE = {None: 1e-6, "float16": 1e-3, "uint16": 1e-3, "uint8": 1e-2}


@pytest.fixture(scope="module")
def samples(digits):
    (_, _), (xt, yt) = digits
    return xt[:20], yt[:20]


def page_predict(page, x):
    return np.array(page.evaluate("async (xs) => await window.homl.predict(xs)", [s.ravel().tolist() for s in x]))


@pytest.mark.browser
@pytest.mark.parametrize("quantize", [None, "float16", "uint8"])
def test_tfjs_export_predicts_like_keras_in_chromium(trained, samples, quantize, tmp_path, artifacts):
    x, y = samples
    out = he.export_tfjs(trained, tmp_path / "web", quantize=quantize, page=True, tfjs_url=str(TFJS),
                         samples=(x, y))
    manifest = json.loads((out.path / "model.json").read_text())
    dtypes = {w.get("quantization", {}).get("dtype") for g in manifest["weightsManifest"] for w in g["weights"]}
    assert dtypes == ({None} if quantize is None else {quantize})
    keras_p = trained.predict(x, verbose=0)
    with serve(out.path) as url, chromium() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.homl !== undefined")
        page.evaluate("async () => { await window.homl.ready; }")
        probs = page_predict(page, x)
        backend = page.evaluate("window.homl.backend()")
        # a person's path: click the first sample, the answer appears
        page.click("#samples canvas >> nth=0")
        page.wait_for_function("document.querySelector('#answer').textContent.length > 0")
        answer = page.text_content("#answer")
        page.screenshot(path=str(artifacts / f"tfjs-page-{quantize or 'float32'}.png"), full_page=True)
    assert not errors, errors
    diff = np.abs(probs - keras_p).max()
    assert diff < TOLERANCE[quantize], (quantize, diff, backend)
    agree = (probs.argmax(1) == keras_p.argmax(1)).mean()
    assert agree == 1.0 if quantize is None else agree >= 0.95
    assert answer.split()[0] == str(int(keras_p[0].argmax()))
    print(f"tfjs {quantize or 'float32'}: max abs diff {diff:.2e}, argmax agreement {agree:.0%}, backend {backend}")


@pytest.mark.browser
def test_page_keeps_predicting_offline(trained, samples, tmp_path, artifacts):
    x, _ = samples
    out = he.export_tfjs(trained, tmp_path / "web", page=True, tfjs_url=str(TFJS), samples=samples)
    with serve(out.path) as url, chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.homl !== undefined")
        assert page.evaluate("async () => { await window.homl.ready; return await window.homl.offlineReady; }")
        online = page_predict(page, x)
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        context.set_offline(True)
        page.reload()
        page.wait_for_function("window.homl !== undefined")
        page.evaluate("async () => { await window.homl.ready; }")
        offline = page_predict(page, x)
        status = page.text_content("#status")
        page.screenshot(path=str(artifacts / "tfjs-page-offline.png"))
        context.close()
    assert "offline" in status
    assert np.array_equal(online, offline)


@pytest.mark.browser
@pytest.mark.parametrize("flavour", ["tfjs", "litert"])
def test_drawing_on_the_pad_gives_a_prediction(flavour, trained, lite_f32, tmp_path):
    # both pages import the one drawing pad (widgets/page/pad.js), copied into each export
    out = (he.export_tfjs(trained, tmp_path / "web", page=True, tfjs_url=str(TFJS)) if flavour == "tfjs"
           else he.export_web(lite_f32, tmp_path / "web"))
    assert (out.path / "pad.js").read_bytes() == (ROOT / "widgets/page/pad.js").read_bytes()
    assert '"pad.js"' in (out.path / "sw.js").read_text()  # cached for offline use
    with serve(out.path) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.homl !== undefined")
        page.evaluate("async () => { await window.homl.ready; }")
        box = page.locator("#pad").bounding_box()
        cx = box["x"] + box["width"] / 2
        page.mouse.move(cx, box["y"] + 20)
        page.mouse.down()
        for step in range(1, 11):  # a vertical stroke: a "1"
            page.mouse.move(cx, box["y"] + 20 + step * (box["height"] - 40) / 10)
        page.mouse.up()
        page.wait_for_function("document.querySelector('#bars').children.length === 10")
        small = page.evaluate("Array.from(document.querySelector('#small').getContext('2d')"
                              ".getImageData(0, 0, 8, 8).data).filter((v, i) => i % 4 === 0)")
    assert max(small) > 150 and min(small) == 0  # the stroke reached the 8x8 input, the background stayed black


def test_a_notebook_shows_the_live_page_a_saved_one_the_still(tmp_path, monkeypatch):
    """The core's HTML is what a saved notebook can show (no script); the face (homl_edge/_display.py, installed in
    IPython's HTML formatter by `import homl_edge`) adds the live frame at the page's registered path."""
    from IPython.core.interactiveshell import InteractiveShell

    from homl_edge import _display
    from homl_edge.export import TfjsExport, WebExport

    served = "homl-edge/page/" + "0" * 32 + "/index.html"
    page = TfjsExport(path=tmp_path, quantize="uint8", files={"group1-shard1of1.bin": 1234}, page=True, served=served)
    web = WebExport(path=tmp_path, files={"model.tflite": 4321}, served=served)
    bare = TfjsExport(path=tmp_path, quantize=None, files={"model.json": 10, "group1-shard1of1.bin": 99})
    for export in (page, web, bare):
        assert "<script" not in export._repr_html_()
    assert "the live page appears here" in page._repr_html_() and "4,321 bytes" in web._repr_html_()
    shell = InteractiveShell.instance()
    assert _display.install(shell)
    html = shell.display_formatter.formatters["text/html"]
    for export in (page, web):
        live = html(export)
        assert "iframe" in live and json.dumps(served) in live and "homl-edge-frame" in live
        assert live.startswith(export._html_parts()[0])  # the heading stays above the frame
    assert "<script" not in html(bare) and "99 bytes" in html(bare)  # no page: the file table only
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-server"))  # no Jupyter server runs there
    unserved = TfjsExport(path=tmp_path, quantize=None, files={}, page=True)  # so: the still
    assert "<script" not in html(unserved) and unserved.served is None


def test_tfjs_export_refuses_to_clobber(trained, tmp_path):
    target = tmp_path / "web"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(he.HomlEdgeError, match="not empty"):
        he.export_tfjs(trained, target)
    assert (target / "keep.txt").read_text() == "mine"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(he.HomlEdgeError, match="is a file"):
        he.export_tfjs(trained, f)
    with pytest.raises(he.HomlEdgeError, match="quantize must be"):
        he.export_tfjs(trained, tmp_path / "w2", quantize="int4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "web"]  # nothing half-written


def test_load_tfjs_round_trip(trained, samples, tmp_path):
    x, _ = samples
    out = he.export_tfjs(trained, tmp_path / "web")
    back = he.load_tfjs(out.path)
    assert np.abs(back.predict(x, verbose=0) - trained.predict(x, verbose=0)).max() < 1e-6


C_MAIN = r"""
#include <stdint.h>
#include <stdio.h>
#include "model_data.h"
int main(int argc, char **argv) {
  if ((uintptr_t)g_model % 16 != 0) { fprintf(stderr, "misaligned\n"); return 3; }
  FILE *f = fopen(argv[1], "wb");
  if (!f) return 2;
  fwrite(g_model, 1, g_model_len, f);
  fclose(f);
  printf("%u\n", g_model_len);
  return 0;
}
"""


def test_c_array_compiles_and_gives_back_the_exact_bytes(lite_int8io, tmp_path):
    r = he.export_c_array(lite_int8io, tmp_path / "model_data.cc")
    assert r["flash_bytes"] == lite_int8io.size
    src = r["source"].read_text()
    assert "alignas(16) const unsigned char g_model[]" in src and f"g_model_len = {lite_int8io.size};" in src
    (tmp_path / "main.c").write_text(C_MAIN)
    build = subprocess.run(["gcc", "-O1", "-Wall", "-Werror", "-o", "prog", "main.c", "-x", "c++", "model_data.cc"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["./prog", "back.tflite"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == lite_int8io.size
    assert (tmp_path / "back.tflite").read_bytes() == lite_int8io.content
    # flash: the object file's read-only data holds the whole model
    subprocess.run(["gcc", "-c", "-x", "c++", "model_data.cc", "-o", "model_data.o"], cwd=tmp_path, check=True)
    size = subprocess.run(["size", "-A", "model_data.o"], cwd=tmp_path, capture_output=True, text=True).stdout
    rodata = sum(int(l.split()[1]) for l in size.splitlines() if l.startswith(".rodata"))
    assert lite_int8io.size <= rodata < lite_int8io.size + 64


def test_c_array_refuses_to_overwrite_and_bad_input(lite_int8io, trained, tmp_path):
    p = tmp_path / "model_data.cc"
    he.export_c_array(lite_int8io, p)
    before = sha(p)
    with pytest.raises(he.HomlEdgeError, match="exists already"):
        he.export_c_array(lite_int8io, p)
    assert sha(p) == before
    with pytest.raises(he.HomlEdgeError, match="convert a Keras model first"):
        he.export_c_array(trained, tmp_path / "k.cc")
    with pytest.raises(he.HomlEdgeError, match=r"give a \.cc"):
        he.export_c_array(lite_int8io, tmp_path / "m.txt")


def test_an_optimized_result_is_exported_as_the_file_it_made(trained, digits, lite_int8io, tmp_path):
    """export_c_array, signature and deployment_snippets given optimize()'s result use its .lite (it was refused:
    'got Optimized (convert a Keras model first)'), the int8 file it made, not a conversion of its .model."""
    (x, _), _ = digits
    o = he.optimize(trained, "quantize", mode="int8-io", data=x[:200], progress=False)
    assert o.lite.content == lite_int8io.content != he.quantize(trained, "float32").content
    import re

    r = he.export_c_array(o, tmp_path / "o.cc")
    written = bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", r.source.read_text().split("g_model[]")[1]))
    assert r.flash_bytes == o.lite.size and written == o.lite.content  # the array is the file optimize() made
    assert he.export.signature(o) == he.export.signature(o.lite)
    assert he.export.signature(o)["inputs"]["image"][1] == "int8"
    s = he.export.deployment_snippets(o)
    assert s["kotlin"] == he.export.deployment_snippets(o.lite)["kotlin"] and "ByteArray(10)" in s["kotlin"]
    # the snippets' JSON as the old dict gave it: the signature nested as a plain dict (it failed on a Signature)
    back = json.loads(json.dumps(dict(s)))
    assert back["signature"]["key"] == "serving_default" and back["signature"]["inputs"]["image"][0] == [1, 8, 8, 1]
    assert type(s["signature"]) is dict and s["signature"] == dict(he.export.signature(o))


@pytest.mark.browser
def test_predict_in_browser_helper_works_inside_a_running_event_loop(trained, samples, tmp_path):
    """The helper the browser chapter calls: it must work where an asyncio loop runs (a Jupyter kernel)."""
    import asyncio

    x, _ = samples
    out = he.export_tfjs(trained, tmp_path / "web", page=True, tfjs_url=str(TFJS))

    async def inside_loop():
        return he.browser.predict_in_browser(out.path, x[:5])

    result = asyncio.run(inside_loop())
    assert np.abs(result["probs"] - trained.predict(x[:5], verbose=0)).max() < 1e-4
    assert all(r.startswith("/") for r in result["requests"])  # only its own origin was asked for anything


def sig_shape(snippets):
    return snippets["signature"]["inputs"]["image"][0]


@pytest.mark.parametrize("mode", ["float32", "int8-io"])
def test_deployment_snippets_run_and_match_the_signature(trained, digits, tmp_path, mode):
    """Chapter 01: the Raspberry Pi code runs here, on the saved file, and predicts like LiteModel; the Kotlin and
    Swift code name the model's real signature, tensors and byte sizes."""
    import subprocess
    import sys

    from homl_edge import export

    (x, _), (xt, _) = digits
    lite = he.quantize(trained, mode, data=x[:200])
    lite.save(tmp_path / "digits.tflite", overwrite=True)
    lite.predict(xt[:5])  # resizes the interpreter to a batch of 5: the snippets still show the signature's batch 1
    s = export.deployment_snippets(lite, "digits.tflite")
    assert sig_shape(s) == (1, 8, 8, 1)
    sig = s["signature"]
    assert sig["key"] == "serving_default" and list(sig["inputs"]) == ["image"] and list(sig["outputs"]) == ["classifier"]
    np.save(tmp_path / "x.npy", xt[:1])
    script = s["python"] + "\nimport sys\nnp.save('y.npy', predict(np.load('x.npy')))\n"
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    got, want = np.load(tmp_path / "y.npy"), lite.predict(xt[:1])
    tolerance = 1e-6 if mode == "float32" else 1e-7  # the snippet dequantizes like LiteModel does
    assert got.shape == want.shape and np.abs(got - want).max() <= tolerance
    nbytes = 64 * (4 if mode == "float32" else 1)
    assert 'mapOf("image" to input), mapOf("classifier" to output), "serving_default"' in s["kotlin"]
    assert f"allocateDirect({nbytes})" in s["kotlin"] and f"Data of {nbytes} bytes" in s["swift"]
    assert ("FloatArray(10)" if mode == "float32" else "ByteArray(10)") in s["kotlin"]
    assert 'input 0 is "image"' in s["swift"] and 'output 0 is "classifier"' in s["swift"]


# the official command line imports every converter with its own dependencies (TensorFlow 2.19's decision forests,
# JAX): it runs in the lock's environment only; beside TensorFlow 2.21 homl-edge's import of the converter is tested
@pytest.mark.lock
@pytest.mark.chapter("06_models_in_the_browser")   # its cell 3 compares the same two exports with the same command
@pytest.mark.parametrize("quantize, flags", [(None, []), ("uint8", ["--quantize_uint8", "*"])])
def test_export_tfjs_writes_what_the_official_command_line_writes(trained, tmp_path, quantize, flags):
    """Chapter 06: `tensorflowjs_converter` on a saved .h5 and he.export_tfjs give the same topology, the same
    weights manifest and byte-identical weight shards."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    trained.save(tmp_path / "digits.h5")
    ours = he.export_tfjs(trained, tmp_path / "ours", quantize=quantize)
    exe = Path(sys.executable).parent / "tensorflowjs_converter"
    r = subprocess.run([str(exe), "--input_format=keras", *flags, str(tmp_path / "digits.h5"), str(tmp_path / "cli")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = (json.loads((tmp_path / d / "model.json").read_text()) for d in ("ours", "cli"))
    assert a["modelTopology"] == b["modelTopology"] and a["weightsManifest"] == b["weightsManifest"]
    shards = sorted(p.name for p in (tmp_path / "cli").glob("*.bin"))
    assert shards == sorted(p.name for p in ours.path.glob("*.bin"))
    assert all((tmp_path / "cli" / s).read_bytes() == (ours.path / s).read_bytes() for s in shards)
