"""JupyterLab itself renders the extension: %quantize, the OptimizerPanel and the TradeoffExplorer, in Chromium."""
import json
import re
import time
from pathlib import Path

import pytest

from browser import chromium, notebook_json, open_and_run_all, screenshot_on_failure, start_jupyter_server

pytestmark = pytest.mark.browser


NOTEBOOK_CELLS = [
    "%load_ext homl_edge\nimport homl_edge as he\nfrom pathlib import Path",
    "model, ((x_train, y_train), (x_test, y_test)) = he.models.trained_digits_cnn(epochs=3)",
    "%quantize model --mode int8 --data x_train[:200] --eval x_test y_test -o lite",
    "panel = he.OptimizerPanel(model, train=(x_train[:256], y_train[:256]), test=(x_test, y_test))\npanel",
    "variants = {'float32': he.quantize(model, 'float32'), 'int8': lite}\n"
    "explorer = he.TradeoffExplorer(he.compare(variants, x_test, y_test, runs=20), variants=variants)\n"
    "explorer.observe(lambda change: Path('selected.txt').write_text(change['new']), names='selected')\n"
    "explorer",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    (root / "ext.ipynb").write_text(notebook_json(NOTEBOOK_CELLS))
    (root / "sub").mkdir()   # the chapter below the root: the page's path must be right from there too
    chapter = json.loads((Path(__file__).resolve().parents[2] / "notebooks/06_models_in_the_browser.ipynb").read_text())
    # the chapter up to the cell that shows its first page (the rest, run by nbval, drives Chromium from the kernel),
    # less the cell that compares the export with the official command line's (nbval runs it; nothing shown needs it)
    shown = next(i for i, c in enumerate(chapter["cells"]) if "".join(c["source"]).startswith("exports[None]"))
    chapter["cells"] = [c for c in chapter["cells"][:shown + 1]
                        if c["cell_type"] != "code" or "tensorflowjs_converter" not in "".join(c["source"])]
    assert len(chapter["cells"]) == shown, "the chapter's command-line cell moved: say which cells JupyterLab runs"
    for cell in chapter["cells"]:
        cell.pop("outputs", None) if cell["cell_type"] != "code" else cell.update(outputs=[], execution_count=None)
    (root / "sub" / "chapter06.ipynb").write_text(json.dumps(chapter))
    env = {"JUPYTER_CONFIG_DIR": str(root / ".cfg"), "JUPYTER_RUNTIME_DIR": str(root / ".run"),
           "JUPYTER_DATA_DIR": str(root / ".data"), "HOME": str(root), "HOML_EDGE_CACHE": "off"}
    with start_jupyter_server("lab", root, root / "lab.log", env=env,
                              args=["--IdentityProvider.token=", "--ServerApp.password=", "--LabApp.news_url=",
                                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]) as url:
        yield url, root


def test_widgets_render_in_jupyterlab_and_a_click_reaches_python(lab, artifacts):
    url, root = lab
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        with screenshot_on_failure(page, artifacts / "jupyterlab-failure.png"):
            quantize_table = _drive(page, url)
        page.screenshot(path=str(artifacts / "jupyterlab-widgets.png"), full_page=True)
        deadline = time.time() + 30
        while not (root / "selected.txt").exists() and time.time() < deadline:
            time.sleep(0.2)
    assert (root / "selected.txt").read_text() == "int8"  # the click reached Python through the traitlet
    assert "accuracy" in quantize_table and "int8" in quantize_table


def test_chapter_06_shows_its_page_in_the_notebook(lab, artifacts):
    """Binder's way, on the chapter itself: run in JupyterLab up to its export cell (all but the command-line
    comparison), from a folder below the server's root, the cell shows the export's live page in an IFrame served
    by the notebook's own Jupyter server, a click inside it predicts, and nothing is fetched from the network."""
    url, root = lab
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        requests = []
        context.on("request", lambda r: requests.append(r.url))  # the context sees service-worker requests too
        page = context.new_page()
        page.set_default_timeout(240_000)
        with screenshot_on_failure(page, artifacts / "jupyterlab-chapter06-failure.png"):
            open_and_run_all(page, url, "sub/chapter06.ipynb")
            frame_el = page.locator("iframe.homl-edge-frame").first
            frame_el.wait_for(state="attached")
            src = frame_el.get_attribute("src")
            frame = page.frame_locator("iframe.homl-edge-frame").first
            frame.locator("#status", has_text="model ready").wait_for()
            first = frame.locator("#samples canvas").first
            label = first.get_attribute("title").split("label ")[1].rstrip(")")
            first.click()
            frame.locator("#answer").filter(has_text="%").wait_for()
            answer = frame.locator("#answer").inner_text()
            frame_el.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts / "jupyterlab-chapter06-page.png"))
    assert re.fullmatch(r"/homl-edge/page/[0-9a-f]{32}/index\.html", src), src  # a registered page's key
    assert answer.split()[0] == label  # the chapter's model reads its first test digit right, in the notebook
    # blob: and data: URLs of the same origin are made in the browser itself (JupyterLab's workers): no network
    local = (url, f"blob:{url}", "data:")
    assert requests and all(r.startswith(local) for r in requests), [r for r in requests if not r.startswith(local)]


def _drive(page, url):
    if True:
        open_and_run_all(page, url, "ext.ipynb")
        # %quantize printed its table; the panel and the explorer rendered as widgets
        page.wait_for_selector(".jp-OutputArea-output table", state="attached")
        page.wait_for_selector(".he-tradeoff svg .he-point", state="attached")
        run_button = page.locator(".widget-button", has_text="Run").first
        run_button.wait_for()
        points = page.locator(".he-tradeoff .he-point")
        assert points.count() == 2
        names = sorted(points.nth(i).get_attribute("data-name") for i in range(2))
        assert names == ["float32", "int8"]
        page.locator(".he-tradeoff .he-point[data-name='int8'] circle").scroll_into_view_if_needed()
        page.locator(".he-tradeoff .he-point[data-name='int8'] circle").hover()
        # (the panel holds a second, still empty explorer in its tab: the cell's explorer is the last one)
        page.wait_for_function("Array.from(document.querySelectorAll('.he-tradeoff-info')).pop()"
                               ".textContent.startsWith('int8:')")
        page.locator(".he-tradeoff .he-point[data-name='int8'] circle").click()
        page.wait_for_selector(".he-tradeoff .he-selected[data-name='int8']", state="attached")
        # tick values on both axes (the panel's own explorer has no points yet: these are the cell's)
        ticks = page.evaluate("() => ['x', 'y'].map((a) => Array.from("
                              "document.querySelectorAll(`.he-tradeoff .he-tick-${a} text`)).map((t) => {"
                              "const r = t.getBoundingClientRect();"
                              "return [r[a], a === 'x' ? r.width : r.height, t.textContent]; }))")
        for axis, shown in zip("xy", ticks):
            values = [float(text.replace(",", "")) for _, _, text in shown]
            assert len(values) >= 2, (axis, shown)
            order = sorted(range(len(shown)), key=lambda i: shown[i][0])  # left to right, top to bottom
            assert [values[i] for i in order] == sorted(values, reverse=axis == "y"), (axis, shown)
            assert all(shown[i][0] + shown[i][1] <= shown[j][0] for i, j in zip(order, order[1:])), (axis, shown)
        # the panel's Run button runs quantize in the kernel and fills the table
        run_button.scroll_into_view_if_needed()
        run_button.click()
        page.wait_for_function("Array.from(document.querySelectorAll('.widget-html-content'))"
                               ".some(e => e.textContent.includes('quantize int8'))")
        # the panel's table: each header on one line (its tab is narrow: they wrapped word by word)
        page.wait_for_selector(".widget-html-content table.homl-edge-table", state="attached")
        lines = page.evaluate("() => Array.from(document.querySelector('.widget-html-content table.homl-edge-table')"
                              ".querySelectorAll('th')).filter((th) => th.textContent).map((th) => {"
                              "const r = document.createRange(); r.selectNodeContents(th);"
                              "return [th.textContent, r.getClientRects().length]; })")
        assert len(lines) >= 5 and all(n == 1 for _, n in lines), lines
        scroll = page.evaluate("() => { const t = document.querySelector('.widget-html-content table.homl-edge-table');"
                               "const w = t.closest('.widget-html'); return [getComputedStyle(w).overflowX, "
                               "w.scrollWidth + 1 >= t.getBoundingClientRect().width]; }")
        assert scroll == ["auto", True], scroll  # one line per header makes it wide: it scrolls, nothing is cut off
        return page.locator(".jp-OutputArea-output table").first.inner_text()
