"""Panels through their Python state (the browser test renders them in JupyterLab)."""
import numpy as np
import pytest

import homl_edge as he


@pytest.fixture
def panel(trained, digits):
    """A fresh panel per test: no test depends on another's runs (pytest-randomly proves it, see test_order.py)."""
    (x, y), (xt, yt) = digits
    return he.OptimizerPanel(trained, train=(x[:512], y[:512]), test=(xt, yt))


def test_optimizer_panel_runs_and_keeps_history(panel, tmp_path):
    entry = panel.run("quantize", "int8")
    assert [h["name"] for h in panel.history] == ["float32 (baseline)", "quantize int8"]
    assert entry["lite"].meta["mode"] == "int8"
    panel.run("prune", "int8", sparsity=0.5, epochs=1)
    table = panel.table()
    assert list(table.index) == ["float32 (baseline)", "quantize int8", "prune int8 sparsity=0.5"]
    assert table.loc["quantize int8", "size_ratio"] > 3.5
    assert table.loc["prune int8 sparsity=0.5", "gzip_ratio"] > table.loc["quantize int8", "gzip_ratio"]
    assert len(panel.explorer.points) == 3  # the explorer follows the runs
    assert "prune int8 sparsity=0.5" in panel.table_out.value and panel.plot_out.value[:4] == b"\x89PNG"
    folder = panel.save(tmp_path / "runs")
    saved = sorted(p.name for p in folder.iterdir())
    assert "runs.csv" in saved and sum(n.endswith(".tflite") for n in saved) == 3
    assert he.load_lite(folder / "quantize_int8.tflite").content == panel.history[1]["lite"].content


def test_optimizer_panel_buttons_call_the_same_path(panel):
    assert panel.history == []  # a fresh panel: the baseline is measured with the first run
    panel.technique.value = "cluster"
    assert panel.sparsity.disabled and not panel.clusters.disabled
    panel.clusters.value = 8
    panel.epochs.value = 1
    panel.run_button.click()
    assert [h["name"] for h in panel.history] == ["float32 (baseline)", "cluster int8 clusters=8"]
    assert panel.history[-1]["settings"] == {"technique": "cluster", "mode": "int8", "clusters": 8, "epochs": 1}
    assert "accuracy" in panel.status.value
    panel.run_button.click()  # the same settings again: a distinct name, nothing lost
    assert panel.history[-1]["name"].endswith("#2")


def test_optimizer_panel_shows_errors_in_the_panel(trained, digits):
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance()  # as in a notebook: an Output widget then captures exceptions raised inside it
    (x, y), (xt, yt) = digits
    p = he.OptimizerPanel(trained, test=(xt, yt))  # no training data: only quantize is offered
    assert p.technique.options == ("quantize",)
    p.mode.value = "int8"
    p.run_button.click()
    assert "needs calibration data" in p.status.value and p.history == []
    with pytest.raises(he.HomlEdgeError, match="needs test="):
        he.OptimizerPanel(trained)


def test_tradeoff_explorer_selection(trained, digits, lite_f32, lite_int8io):
    (_, _), (xt, yt) = digits
    variants = {"float32": lite_f32, "int8-io": lite_int8io}
    table = he.compare(variants, xt, yt, runs=20)
    ex = he.TradeoffExplorer(table, variants=variants)
    assert [p["name"] for p in ex.points] == ["float32", "int8-io"]
    assert ex.points[1]["size_bytes"] == lite_int8io.size
    ex.selected = "int8-io"  # what a click in the browser does through the synced traitlet
    assert ex.selected_variant is lite_int8io
    import traitlets

    with pytest.raises(traitlets.TraitError, match="no variant named"):
        ex.selected = "nope"
    with pytest.raises(he.HomlEdgeError, match="axis must be"):
        he.TradeoffExplorer(table, x="colour")
    assert "export default" in ex._esm and ".he-tradeoff" in ex._css


def test_weight_histogram_levels(trained, digits):
    (x, _), _ = digits
    h = he.WeightHistogram(trained)
    w, q, scale, source = h.levels("dense")
    assert source == "symmetric per-tensor mapping"
    assert q.max() == 127 or q.min() == -127  # the largest |w| maps to +-127
    assert np.abs(q * scale - w).max() <= scale / 2 + 1e-7
    lite = he.quantize(trained, "int8", data=x[:200])
    h2 = he.WeightHistogram(trained, lite, layer="dense")
    w, q, scale, source = h2.levels("dense")
    assert source == "stored in the .tflite" and q.dtype == np.int8 and q.size == w.size
    h2.layer.value = "classifier"
    assert h2.figure is not None and h2.out.value[:4] == b"\x89PNG"
    with pytest.raises(he.HomlEdgeError, match="no layer 'bn'"):
        he.WeightHistogram(trained, layer="bn")


def test_faces_take_results_and_refuse_wrong_kinds_in_one_line(trained, digits, lite_f32):
    """WeightHistogram given a pruning result shows its .model, and with lite=optimize()'s result the levels stored in
    its .lite (an AttributeError each); the trade-off plot, the explorer and the autoquantize plot given one variant
    refuse it in one line (a KeyError or an AttributeError)."""
    (x, y), (xt, yt) = digits
    p = he.prune(trained, (x[:256], y[:256]), sparsity=0.5, epochs=1, progress=False)
    h = he.WeightHistogram(p, layer="dense")
    w, _, _, source = h.levels("dense")
    assert h.model is p.model and source == "symmetric per-tensor mapping" and (w == 0).mean() >= 0.45
    o = he.optimize(trained, "quantize", mode="int8", data=x[:200], progress=False)
    w, q, _, source = he.WeightHistogram(trained, lite=o, layer="dense").levels("dense")
    assert source == "stored in the .tflite" and q.dtype == np.int8 and q.size == w.size
    m = he.report.measure(lite_f32, xt[:50], yt[:50], runs=5)
    cases = [(lambda: he.plot_tradeoff(o), "plot_tradeoff takes a table of variants, one row each, from he.compare"),
             (lambda: he.plot_tradeoff(m), "plot_tradeoff takes a table of variants, .* got Measurement"),
             (lambda: he.TradeoffExplorer(o), "TradeoffExplorer takes a table of variants, .* got Optimized"),
             (lambda: he.plots.autoquantize(o), "plots.autoquantize draws what he.autoquantize.* got Optimized"),
             (lambda: he.WeightHistogram(lite_f32), "is a .tflite file"),
             (lambda: he.WeightHistogram(trained, lite=p), r"WeightHistogram \(lite=\) takes a \.tflite model; "
                                                           "this Pruned holds a Keras model")]
    for call, says in cases:
        with pytest.raises(he.HomlEdgeError, match=says) as e:
            call()
        assert "\n" not in str(e.value)


def test_symmetric_mapping_of_the_chapter():
    w = np.array([-1.5, -0.75, 0.0, 0.8])
    q, scale = he.symmetric_quantize(w)
    assert scale == pytest.approx(1.5 / 127)
    assert q.tolist() == [-127, -64, 0, 68]


def test_gpu_panel(capsys):
    import tensorflow as tf

    p = he.GpuPanel()
    if not tf.config.list_physical_devices("GPU"):
        assert "no GPU: running on CPU" in p.info.value
    p.growth.value = True
    p.apply_button.click()
    assert "memory growth" in p.message.value or "memory_growth" in p.message.value
    tf.constant(1.0)  # the runtime is up (whichever test ran first): a split is refused, shown as a message
    p.cpu_split.value = 4
    p.growth.value = False
    p.apply_button.click()
    assert "cannot be changed in this kernel" in p.message.value


def _bundle(widget):
    b = widget._repr_mimebundle_()
    return b[0] if isinstance(b, tuple) else b


def test_saved_notebooks_show_a_static_copy_of_every_panel(panel, trained, digits, lite_f32, lite_int8io):
    """GitHub shows text/plain or text/html of a widget output: a picture or table, not a constructor repr."""
    (_, _), (xt, yt) = digits
    empty = _bundle(panel)
    assert empty["text/plain"] == "OptimizerPanel of digits_cnn: 0 runs" and "press Run" in empty["text/html"]
    panel.run("quantize", "int8")
    done = _bundle(panel)
    assert "application/vnd.jupyter.widget-view+json" in done  # the live view is still first for JupyterLab
    assert done["text/plain"] == "OptimizerPanel of digits_cnn: 2 runs"
    assert "quantize int8" in done["text/html"] and "data:image/png;base64," in done["text/html"]
    table = he.compare({"float32": lite_f32, "int8-io": lite_int8io}, xt, yt, runs=5)
    ex = _bundle(he.TradeoffExplorer(table))
    assert ex["text/plain"] == "TradeoffExplorer of 2 variants (size_bytes against accuracy)"
    assert "data:image/png;base64," in ex["text/html"] and "int8-io" in ex["text/html"]
    hist = _bundle(he.WeightHistogram(trained, layer="dense"))
    assert hist["text/plain"].startswith("WeightHistogram of layer 'dense'") and "<img" in hist["text/html"]
    gpu = _bundle(he.GpuPanel())
    assert gpu["text/plain"].startswith("GpuPanel: ") and "logical devices" in gpu["text/html"]
    for b in (done, ex, hist, gpu):
        assert "\n" not in b["text/plain"] and "children=" not in b["text/plain"]


def test_a_saved_progress_bar_shows_where_it_finished(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import homl_edge as he\nfrom homl_edge import _progress\nb = _progress.bar(True, 7, 'steps')\n"
        "for _ in range(7):\n    b.update(1)\nb.close()"))
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    (out,) = nb.cells[0].outputs
    assert out["data"]["text/plain"].startswith("steps: 100%") and "7/7" in out["data"]["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in out["data"]
