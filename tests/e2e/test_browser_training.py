"""export_tfjs(trainable=True) in Chromium: the page learns, privately and offline; the fine-tuned model comes back to Python."""
import json

import numpy as np
import pytest

import homl_edge as he
from browser import TFJS, chromium, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shifted(digits):
    (_, _), (xt, yt) = digits
    return xt[:50], (yt[:50] + 1) % 10  # a task the exported model gets wrong


@pytest.fixture(scope="module")
def unseen(digits):
    (_, _), (xt, yt) = digits
    return xt[50:350], (yt[50:350] + 1) % 10  # the same relabelling, on 300 digits the page never trains on


@pytest.fixture()
def export(trained, tmp_path, digits):
    (_, _), (xt, yt) = digits
    return he.export_tfjs(trained, tmp_path / "web", page=True, trainable=True, tfjs_url=str(TFJS),
                          samples=(xt[:20], yt[:20]))


def test_page_fine_tunes_on_relabelled_digits_and_keeps_it(export, shifted, unseen, trained, artifacts):
    x, y = shifted
    r = he.browser.finetune_in_browser(export.path, x, y, test=unseen, screenshot=artifacts / "tfjs-finetune.png")
    assert isinstance(r, he.browser.BrowserFinetune) and list(r) == [  # a record with the old dict's keys
        "accuracy_before", "accuracy_after", "train_accuracy_after", "seconds", "loss", "source_after_reload",
        "probs_after", "probs_after_reload", "requests", "service_worker_requests"] and "\n" not in repr(r)
    print(f"in-page accuracy on 300 unseen relabelled digits: {r['accuracy_before']:.1%} -> {r['accuracy_after']:.1%}"
          f" (on its 50 training digits {r['train_accuracy_after']:.0%}) in {r['seconds']:.1f} s;"
          f" {len(r['requests'])} requests, {r['service_worker_requests']} by the service worker")
    # the exported model's accuracy on the relabelled task, computed in Python: what the page starts from
    keras_before = float((trained.predict(unseen[0], verbose=0).argmax(1) == unseen[1]).mean())
    assert r["accuracy_before"] == pytest.approx(keras_before, abs=1 / 300)
    assert r["accuracy_before"] < 0.05 and r["accuracy_after"] >= 0.90  # README: "0% to 9x% on unseen digits"
    assert r["train_accuracy_after"] == 1.0
    assert len(r["loss"]) == 20 and r["loss"][-1] < 0.1 * r["loss"][0]
    assert r["source_after_reload"] == "indexeddb"  # the fine-tuned model came back on the next visit
    assert np.abs(r["probs_after_reload"] - r["probs_after"]).max() < 1e-6
    # privacy: the context (page and service worker) asked nothing of anybody but its own origin
    assert r["service_worker_requests"] > 0  # the listener does see the worker's own fetches
    assert r["requests"] and all(req.startswith("/") for req in r["requests"]), r["requests"]
    assert {"/index.html", "/model.json", "/tf.min.js"} <= set(r["requests"])


def test_finetune_refuses_mismatched_test_set(export, shifted):
    x, y = shifted
    with pytest.raises(he.HomlEdgeError, match="needs as many labels as samples"):
        he.browser.finetune_in_browser(export.path, x, y, test=(x[:5], y[:4]))


def test_offline_training_and_download_back_to_keras(export, shifted, tmp_path, artifacts):
    x, y = shifted
    samples = [s.ravel().tolist() for s in x]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with serve(export.path) as url, chromium() as browser:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.homl !== undefined")
        assert page.evaluate("async () => { await window.homl.ready; return await window.homl.offlineReady; }")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        context.set_offline(True)
        page.reload()
        page.wait_for_function("window.homl !== undefined")
        page.evaluate("async () => { await window.homl.ready; }")
        assert "offline" in page.text_content("#status")
        result = page.evaluate("async ([xs, ys]) => await window.homl.fineTune(xs, ys)", [samples, y.tolist()])
        acc = page.evaluate("async ([xs, ys]) => await window.homl.accuracy(xs, ys)", [samples, y.tolist()])
        probs = np.array(page.evaluate("async (xs) => await window.homl.predict(xs)", samples))
        page.locator("#loss").screenshot(path=str(artifacts / "tfjs-loss-curve.png"))
        # draw on the pad, label it: the page's own example collection
        box = page.locator("#pad").bounding_box()
        page.mouse.move(box["x"] + 96, box["y"] + 30)
        page.mouse.down()
        page.mouse.move(box["x"] + 96, box["y"] + 160, steps=8)
        page.mouse.up()
        page.click("#labels button >> nth=1")
        assert page.text_content("#counts").startswith("0:0 1:1")
        page.locator(".pad").screenshot(path=str(artifacts / "tfjs-drawing-pad.png"))
        saved = []
        page.on("download", lambda d: saved.append(d))
        page.click("#download")
        page.wait_for_function("true")
        for _ in range(100):
            if len(saved) >= 2:
                break
            page.wait_for_timeout(100)
        for d in saved:
            d.save_as(downloads / d.suggested_filename)
        context.close()
    assert acc == 1.0 and len(result["loss"]) == 20  # it trained with the network gone
    files = sorted(p.name for p in downloads.iterdir())
    assert files == ["homl-edge-finetuned.json", "homl-edge-finetuned.weights.bin"], files
    keras_model = he.load_tfjs(downloads / "homl-edge-finetuned.json")
    diff = np.abs(keras_model.predict(x, verbose=0) - probs).max()
    print(f"downloaded model in Keras vs the page: max abs difference {diff:.1e}")
    assert diff < 1e-4
    lite = he.quantize(keras_model, "int8", data=x)  # and on to the phone
    assert lite.evaluate(x, y) > 0.75


def test_trainable_needs_a_page(trained, tmp_path):
    with pytest.raises(he.HomlEdgeError, match="pass page=True too"):
        he.export_tfjs(trained, tmp_path / "w", trainable=True)
    assert not (tmp_path / "w").exists()
