"""graph.py, he.explore: Model Explorer's graph of a real .tflite, made by its own adapter, with homl-edge's
results keyed to its node ids, the still a saved notebook keeps, the files the Jupyter extension serves, and the
one-line refusals."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import homl_edge as he
from homl_edge import graph
from homl_edge.errors import HomlEdgeError

from conftest import run_py


@pytest.fixture(scope="module")
def int8(trained, digits):
    (x, _), _ = digits
    return he.quantize(trained, "int8", data=x[:200])


def _node_of(ex, layer):
    """The op node whose first output tensor carries ``layer`` (the converter's fused names)."""
    ids = [o["id"] for o in ex.ops if any(f"/{layer}/" in t for t in o["tensors"])]
    assert len(ids) == 1, (layer, ids)
    return ids[0]


def test_graph_is_the_adapters_and_op_nodes_are_the_ops_litert_runs(int8):
    g = graph.graph_json(int8)
    main = g["graphCollections"][0]["graphs"][0]
    assert main["id"] == "main"
    ops = graph.op_nodes(g)
    runs = [op["op_name"].lower() for op in he.lite.op_details(he.lite.new_interpreter(int8.content, delegates=False))]
    assert [o["op"] for o in ops] == runs  # node id i is op i, in order
    assert [o["id"] for o in ops] == [str(i) for i in range(len(runs))]
    assert {"GraphInputs", "GraphOutputs"} <= {n["label"] for n in main["nodes"]}
    import sys

    assert "ai_edge_model_explorer_adapter" not in sys.modules  # the 500 MB adapter ran in a child, not here


def test_overlays_from_the_file_land_on_their_nodes(int8, lite_f32):
    ex = he.explore(int8, overlay=["macs", "bits", "sparsity"])
    assert list(ex.overlays) == ["macs", "bits", "sparsity"]
    macs = ex.overlays["macs"]
    assert sum(macs.values()) == int8.profile()["macs"]  # op by op, the same count as lite.profile()
    dense = _node_of(ex, "dense")
    assert macs[dense] == 6 * 6 * 32 * 128  # 6x6x32 inputs x 128 units, once per sample
    assert ex.overlays["bits"] == {_node_of(ex, n): 8.0 for n in ("relu", "dense", "classifier")}
    f32 = he.explore(lite_f32, overlay="bits")
    assert set(f32.overlays["bits"].values()) == {32.0}
    # the node-data JSON Model Explorer reads: graph id -> results keyed by node id
    nd = ex.node_data("macs")
    assert nd["main"]["results"][dense] == {"value": 147456.0}
    assert [s["stop"] for s in nd["main"]["gradient"]] == [0, 0.5, 1]
    frame = ex.to_frame()
    assert frame.set_index("node").loc[dense, "macs"] == 147456.0


def test_sparsity_and_precision_overlays_read_what_the_file_stores(trained, digits):
    pruned = he.models.digits_cnn(seed=0)
    pruned.set_weights(trained.get_weights())
    w = pruned.get_layer("dense").kernel.numpy()
    w[: w.shape[0] // 2] = 0
    pruned.get_layer("dense").kernel.assign(w)  # half of the dense kernel zeroed, as pruning leaves it
    ex = he.explore(he.quantize(pruned, "float32"), overlay=["sparsity", he.sparsity_report(pruned)])
    dense = _node_of(ex, "dense")
    assert ex.overlays["sparsity"][dense] == pytest.approx(float((w == 0).mean()))  # read from the .tflite
    assert ex.overlays["sparsity'"][dense] == pytest.approx(float((w == 0).mean()))  # from the Keras table
    mixed = he.quantize(trained, "int4", precision={"/dense/": "int8"})
    mixed_ex = he.explore(mixed, overlay="bits")
    bits = mixed_ex.overlays["bits"]
    assert bits[_node_of(mixed_ex, "dense")] == 8.0 and bits[_node_of(mixed_ex, "classifier")] == 4.0


def test_error_overlay_is_quantization_error_keyed_to_nodes(trained, int8, digits):
    (x, _), _ = digits
    table = he.quantization_error(trained, int8, x[:200])
    ex = he.explore(int8, overlay="error", model=trained, data=x[:200])
    from_table = he.explore(int8, overlay=table).overlays["error"]
    assert ex.overlays["error"] == from_table
    for row in table.to_dict("records"):
        assert from_table[_node_of(ex, row["layer"])] == pytest.approx(row["snr_db"])
    assert "error" in ex.svg and "SNR dB" in ex.svg


def test_an_autoquantize_recipe_is_drawn_as_bits(trained, digits):
    (x, y), (xt, yt) = digits
    result = he.autoquantize(trained, x[:200], test=(xt, yt), max_drop=0.05, max_variants=3, progress=False)
    ex = he.explore(result.lite, overlay=result)
    bits = {"float": 32.0, "int8": 8.0, "int4": 4.0}
    assert set(result.recipe) == {"conv", "dense", "classifier"}, result.recipe
    for layer, precision in result.recipe.items():
        node = _node_of(ex, "relu" if layer == "conv" else layer)
        assert ex.overlays["bits"][node] == bits[precision], (layer, precision)


def test_still_lists_every_op_with_its_value(int8, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # no Jupyter server runs for this process
    ex = he.explore(int8, overlay="macs")
    root = ET.fromstring(ex.svg)  # well-formed SVG
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for op in ex.ops:
        assert op["op"] in text
    assert "147.5 k" in text and "10.4 k" in text
    html = ex._repr_html_()  # what a saved notebook keeps: the still, no script
    assert "data:image/svg+xml;base64," in html and "<script" not in html
    from IPython.core.interactiveshell import InteractiveShell

    from homl_edge import _display

    shell = InteractiveShell.instance()
    assert _display.install(shell)  # what `import homl_edge` does in a kernel
    formatter = shell.display_formatter.formatters["text/html"]
    assert formatter(ex) == html and ex.served is None  # no Jupyter server here: nothing registered, the still
    ex.served = "homl-edge/explore/" + "0" * 32 + "/?data=x"
    live = formatter(ex)  # in a kernel of a Jupyter server: the frame replaces the still
    assert "iframe" in live and json.dumps(ex.served) in live and "homl-edge-explore" in live
    assert live.startswith(ex._html_parts()[0])


def test_the_extension_serves_the_app_and_the_registered_files(int8, tmp_path):
    ex = he.explore(int8, overlay=["macs", "bits"], folder=tmp_path / "view")
    path = he.register_page(ex.folder, runtime_dir=tmp_path / "run", app="model-explorer")
    key = path.split("/")[2]
    entry = he.browser.registered_page(key, tmp_path / "run")
    assert entry["app"] == "model-explorer" and path == f"homl-edge/explore/{key}/"
    base = f"/lab/{path}"

    def get(rel, **query):
        return graph.web_file(entry, rel, {k: str(v) for k, v in query.items()}, base)

    status, kind, index = get("")
    assert status == 200 and f'<base href="{base}">'.encode() in index and b"fonts.gstatic.com" not in index
    assert b'<script src="homl-edge-storage.js">' in index and b"onload=" not in index
    main = next(r for r in graph._app_files(str(graph.web_app_dir())) if r.startswith("main-"))
    js = get(main)[2]
    assert b'"/api/' not in js and b'"/apipost/' not in js and b"EventSource(" not in js
    assert b"URL.createObjectURL(new Blob([\"importScripts(\"" in js
    assert json.loads(get("api/v1/load_graphs_json", graph_index=0)[2]) == ex.graph
    content = json.loads(get("api/v1/load_node_data", node_data_index=1)[2])["content"]
    assert json.loads(content) == ex.node_data("bits")
    assert get("api/v1/load_node_data", node_data_index=2) is None
    assert get("api/v1/read_text_file", path="/etc/passwd") is None  # only the calls answered from the files
    assert get("../graphs.json") is None and get("graphs.json") is None and get("static_files/../index.html") is None
    assert get("apistream/server_director")[0] == 204
    (ex.folder / "graphs.json").write_text("{}")  # changed after it was registered: not served
    assert get("api/v1/load_graphs_json", graph_index=0) is None


def test_refusals_are_one_line(int8, tmp_path):
    text = tmp_path / "notes.tflite"
    text.write_text("not a model at all, just some words")
    cases = [lambda: he.explore(text), lambda: he.explore(np.zeros(3)),
             lambda: he.explore(int8, overlay={"no_such_layer": 1.0}),
             lambda: he.explore(int8, overlay="colour"),
             lambda: he.explore(int8, overlay="error")]
    messages = []
    for case in cases:
        with pytest.raises(HomlEdgeError) as e:
            case()
        messages.append(str(e.value))
    assert all("\n" not in m for m in messages), messages
    assert "no_such_layer" in messages[2] and "dense" in messages[2]
    assert "model" in messages[4] and "data" in messages[4]


def test_an_optimized_result_is_explored_as_the_file_it_made(trained, digits, int8):
    """explore(optimize()'s result) draws its .lite, the int8 file it made (refused before: 'pass a LiteModel ...
    not Optimized')."""
    (x, _), _ = digits
    o = he.optimize(trained, "quantize", mode="int8", data=x[:200], progress=False)
    assert o.lite.content == int8.content
    ex = he.explore(o, overlay="bits")
    assert ex.name == o.lite.name and set(ex.overlays["bits"].values()) == {8.0}
    assert [op["op"] for op in ex.ops] == [op["op"] for op in graph.op_nodes(graph.graph_json(int8))]


def test_without_model_explorer_it_names_the_pip_line():
    r = run_py("import sys; sys.modules['ai_edge_model_explorer_adapter'] = None\n"
               "import homl_edge as he\n"
               "from homl_edge import graph\n"
               "try:\n    graph._require()\nexcept he.HomlEdgeError as e:\n    print('REFUSED', e)\n")
    assert r.returncode == 0, r.stderr[-2000:]
    line = next(l for l in r.stdout.splitlines() if l.startswith("REFUSED"))
    assert "pip install 'homl-edge[explore]'" in line and "ai-edge-model-explorer==0.1.34" in line


def test_the_default_folder_lives_as_long_as_its_process(int8, tmp_path):
    """explore()'s default folder (the files its live view serves) is removed when its process ends, and one left
    by a killed process is removed by the next explore(); a folder the caller gave stays."""
    int8.save(tmp_path / "m.tflite")
    env = {"TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    code = ("import os, sys, homl_edge as he\n"
            "ex = he.explore(sys.argv[1], overlay='bits')\nmine = he.explore(sys.argv[1], folder=sys.argv[2])\n"
            "print(ex.folder, os.path.isfile(os.path.join(ex.folder, 'graphs.json')), flush=True)\n"
            "os._exit(0) if sys.argv[3] == 'killed' else None\n")
    for how in ("killed", "ends"):   # the second run sweeps the first one's folder, then removes its own at exit
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.tflite"), str(tmp_path / f"mine-{how}"),
                            how], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        folder, written = r.stdout.split()
        assert written == "True" and folder.startswith(str(tmp_path / "tmp" / "homl-edge-explore-"))
        if how == "killed":   # its root folder and the root's lock are left
            assert _ours(tmp_path / "tmp") == sorted([Path(folder).parent.name, Path(folder).parent.name + ".lock"])
    assert _ours(tmp_path / "tmp") == []
    assert (tmp_path / "mine-killed" / "graphs.json").is_file() and (tmp_path / "mine-ends" / "graphs.json").is_file()


def _ours(folder) -> list:
    """homl-edge's entries in a temp folder (TensorFlow and others may write there too)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("homl-edge-"))
