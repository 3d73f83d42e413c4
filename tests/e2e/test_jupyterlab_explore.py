"""he.explore in JupyterLab: Model Explorer's own web app, served by the notebook's Jupyter
server through homl-edge's extension, draws the graph in the notebook (WebGL, SwiftShader in headless Chromium) and
shows homl-edge's per-node values; nothing is fetched from anywhere else."""
import io
import time
import urllib.request

import pytest

import homl_edge as he
from browser import chromium, notebook_json, open_and_run_all, screenshot_on_failure, start_jupyter_server

pytestmark = pytest.mark.browser


CELLS = ["import homl_edge as he\n"
         "ex = he.explore(he.load_lite('digits.tflite'), overlay=['macs', 'bits'])\n"
         "ex"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, lite_f32):
    root = tmp_path_factory.mktemp("explore-lab")
    lite_f32.save(root / "digits.tflite")
    (root / "explore.ipynb").write_text(notebook_json(CELLS))
    env = {"JUPYTER_CONFIG_DIR": str(root / ".cfg"), "JUPYTER_RUNTIME_DIR": str(root / ".run"),
           "JUPYTER_DATA_DIR": str(root / ".data"), "HOME": str(root), "HOML_EDGE_CACHE": "off"}
    with start_jupyter_server("lab", root, root / "lab.log", env=env,
                              args=["--IdentityProvider.token=", "--ServerApp.password=", "--LabApp.news_url=",
                                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]) as url:
        yield url, root, lite_f32


def test_model_explorer_draws_the_graph_with_an_overlay_in_jupyterlab(lab, artifacts):
    from PIL import Image

    url, root, lite = lab
    expected = he.explore(lite, overlay="macs")  # the same values, computed here without a server
    dense = next(o["id"] for o in expected.ops if any("/dense/" in t for t in o["tensors"]))
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        requests = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.set_default_timeout(60_000)
        with screenshot_on_failure(page, artifacts / "jupyterlab-explore-failure.png"):
            open_and_run_all(page, url, "explore.ipynb")
            page.wait_for_selector("iframe.homl-edge-explore", state="attached")
            src = page.locator("iframe.homl-edge-explore").get_attribute("src")
            frame = page.frame_locator("iframe.homl-edge-explore")
            # the node-data panel lists every node with each overlay's value (a sandboxed frame: read it inside)
            row = frame.locator("tr", has_text="fully_connected").first
            row.wait_for()
            rows = frame.locator("tr").all_inner_texts()
            frame.locator("canvas").first.wait_for()
            time.sleep(1.0)  # the layout worker's result is drawn on the next frames
            element = page.locator("iframe.homl-edge-explore")
            element.scroll_into_view_if_needed()
            shot = element.screenshot()
            page.screenshot(path=str(artifacts / "jupyterlab-explore.png"))
    (artifacts / "jupyterlab-explore-frame.png").write_bytes(shot)
    assert src.startswith("/homl-edge/explore/") and "?data=" in src, src
    # the macs overlay's value for the dense layer's node is in the panel, beside that node
    macs = int(expected.overlays["macs"][dense])
    assert macs == 6 * 6 * 32 * 128
    assert any("fully_connected" in r and str(macs) in r for r in rows), rows
    # the graph was drawn: the canvas area (left of the side panel) holds node boxes and labels, not one colour
    img = Image.open(io.BytesIO(shot)).convert("L")
    w, h = img.size
    graph_area = img.crop((w // 10, h // 8, int(w * 0.6), h - 10))
    dark = sum(1 for p in graph_area.getdata() if p < 140)
    assert dark > 500, dark  # node outlines and text drawn by WebGL (SwiftShader)
    # the layers are open and the first overlay colours the ops: the dense op (most MACs) in the gradient's red
    rgb = Image.open(io.BytesIO(shot)).convert("RGB").crop((w // 10, h // 8, int(w * 0.6), h - 10))
    red = sum(1 for r, g, b in rgb.getdata() if abs(r - 0xc6) < 24 and abs(g - 0x28) < 24 and abs(b - 0x28) < 24)
    assert red > 300, red
    local = (url, "blob:null/", "data:", f"blob:{url}")
    assert all(r.startswith(local) for r in requests), [r for r in requests if not r.startswith(local)]
    assert any("/api/v1/load_node_data?node_data_index=0" in r for r in requests)


def test_the_explore_route_serves_only_registered_views_and_their_calls(lab, tmp_path):
    """A page's key opens no view, a view's key no page, and the view answers only the calls it has files for."""
    import urllib.error

    url, root, _ = lab
    run = root / ".run"
    page = tmp_path / "page"
    page.mkdir()
    (page / "index.html").write_text("<p>a page</p>")
    page_path = he.register_page(page, runtime_dir=run)
    view = he.explore(root / "digits.tflite", overlay="macs", folder=tmp_path / "view")
    view_path = he.register_page(view.folder, runtime_dir=run, app="model-explorer")

    def status(path):
        try:
            with urllib.request.urlopen(f"{url}/{path}", timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    page_key, view_key = page_path.split("/")[2], view_path.split("/")[2]
    assert status(page_path) == 200 and status(view_path) == 200
    assert status(f"homl-edge/explore/{page_key}/") == 404  # a page is not a view
    assert status(f"homl-edge/page/{view_key}/graphs.json") == 404  # a view's files are not a page
    assert status(f"{view_path}api/v1/load_node_data?node_data_index=0") == 200
    for bad in ("api/v1/read_text_file?path=/etc/passwd", "api/v1/send_command?json={}", "graphs.json",
                "storage.js", "../page/index.html", "api/v1/load_node_data?node_data_index=1"):
        assert status(f"{view_path}{bad}") == 404, bad
    assert status(f"homl-edge/explore/{'0' * 32}/") == 404
