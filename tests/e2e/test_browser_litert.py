"""The same .tflite in the browser: export_web's LiteRT.js page in Chromium predicts what LiteRT predicts on the
desktop (float32 within 1e-5, int8 argmax equal on every test digit), offline too, with nothing from a CDN.
LiteRT.js 2.5.3 takes float32, int32 and uint8 tensors in and out: an int8-I/O file is refused in one line."""
import numpy as np
import pytest

import homl_edge as he
from browser import chromium, serve

pytestmark = pytest.mark.browser


def _open(page, url):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/index.html")
    page.wait_for_function("window.homl !== undefined")
    page.evaluate("async () => { await window.homl.ready; }")
    return errors


def _predict(page, x):
    return np.array(page.evaluate("async (xs) => await window.homl.predict(xs)", [s.ravel().tolist() for s in x]))


@pytest.fixture(scope="module")
def lite_int8(trained, digits):
    (x, _), _ = digits
    return he.quantize(trained, "int8", data=x[:200])  # int8 inside, float32 input and output


def test_litert_page_predicts_like_litert_on_the_desktop(lite_f32, lite_int8, digits, tmp_path, artifacts):
    _, (xt, yt) = digits
    exports = {name: he.export_web(lite, tmp_path / name, samples=(xt[:20], yt[:20]))
               for name, lite in {"float32": lite_f32, "int8": lite_int8}.items()}
    for name, out in exports.items():
        html = (out.path / "index.html").read_text() + (out.path / "app.js").read_text()
        assert "://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing from a CDN
        # the same file but for its batch dimension, fixed at 1 (LiteRT.js cannot resize a [-1, 8, 8, 1] input)
        original = lite_f32 if name == "float32" else lite_int8
        assert out.batch_fixed and abs(out.model_bytes - original.size) < 512, (out.model_bytes, original.size)
    got = {}
    with chromium() as browser:
        for name, out in exports.items():
            with serve(out.path) as url:
                page = browser.new_page()
                requests = []
                page.on("request", lambda r: requests.append(r.url))
                errors = _open(page, url)
                got[name] = _predict(page, xt)
                if name == "int8":
                    page.click("#samples canvas >> nth=0")
                    page.wait_for_function("document.querySelector('#answer').textContent.length > 0")
                    answer = page.text_content("#answer")
                    page.screenshot(path=str(artifacts / "litert-page-int8.png"), full_page=True)
                page.close()
            assert not errors, (name, errors)
            assert requests and all(r.startswith(url) for r in requests), requests
    desktop = {"float32": lite_f32.predict(xt), "int8": lite_int8.predict(xt)}
    diff = np.abs(got["float32"] - desktop["float32"]).max()
    assert diff < 1e-5, diff
    agree = (got["int8"].argmax(1) == desktop["int8"].argmax(1)).mean()
    assert agree == 1.0, agree
    assert answer.split()[0] == str(int(desktop["int8"][0].argmax()))
    print(f"LiteRT.js vs LiteRT on {len(xt)} test digits: float32 max abs diff {diff:.1e}; int8 argmax agreement "
          f"{agree:.0%} (max prob diff {np.abs(got['int8'] - desktop['int8']).max():.1e})")


def test_litert_page_keeps_predicting_offline(lite_int8, digits, tmp_path):
    _, (xt, yt) = digits
    out = he.export_web(lite_int8, tmp_path / "web", samples=(xt[:20], yt[:20]), screenshot=True)
    assert out.files["preview.png"] > 1000 and "data:image/png;base64," in out._repr_html_()  # a saved notebook's still
    with serve(out.path) as url, chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        _open(page, url)
        assert page.evaluate("async () => await window.homl.offlineReady")
        online = _predict(page, xt[:20])
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        context.set_offline(True)
        page.reload()
        page.wait_for_function("window.homl !== undefined")
        page.evaluate("async () => { await window.homl.ready; }")
        offline = _predict(page, xt[:20])
        status = page.text_content("#status")
        context.close()
    assert "offline" in status
    np.testing.assert_array_equal(online, offline)


def test_export_web_refuses_what_it_cannot_show(lite_f32, lite_int8io, tmp_path):
    with pytest.raises(he.errors.HomlEdgeError, match="int8 input, and LiteRT.js 2.5.3 takes only float32"):
        he.export_web(lite_int8io, tmp_path / "io")
    assert not (tmp_path / "io").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(he.errors.HomlEdgeError, match="not empty"):
        he.export_web(lite_f32, tmp_path / "taken")
    with pytest.raises(he.errors.HomlEdgeError, match="did not write"):
        he.export_web(lite_f32, tmp_path / "taken", overwrite=True)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    with pytest.raises(he.errors.HomlEdgeError, match="labels"):
        he.export_web(lite_f32, tmp_path / "w", labels=["a", "b"])


def test_each_variant_names_its_quantization_path(lite_f32, lite_int8):
    """int8 and dynamic go through the converter (better or equal to LiteRT Quantizer: benchmarks/RESULTS.md)."""
    assert lite_int8.meta["path"] == lite_f32.meta["path"] == "tflite-converter"
