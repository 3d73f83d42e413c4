"""homl_edge/_jupyter.py, the Jupyter server extension serves, and how; the exported page needs no CDN.

A real `jupyter server` (token auth, fresh config/runtime/data dirs) with homl-edge's extension, a real Chromium
logged in to it. Each test failed on the marker-file extension it replaced (a `.homl-edge-page` file anyone can
plant made a folder servable, unsandboxed, dotfiles included; the page loaded TF.js from jsDelivr).
"""
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

import homl_edge as he
from browser import TFJS, chromium, start_jupyter_server

TOKEN = "hostile-test-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("jroot")
    run = tmp_path_factory.mktemp("jrun")
    env = {"JUPYTER_CONFIG_DIR": str(root.parent / "jcfg"), "JUPYTER_RUNTIME_DIR": str(run),
           "JUPYTER_DATA_DIR": str(root.parent / "jdata"), "HOML_EDGE_CACHE": "off"}
    with start_jupyter_server("server", root, root.parent / "jserver.log", env=env,
                              args=[f"--IdentityProvider.token={TOKEN}"]) as url:
        yield url, root, run


def _get(url, token=True):
    req = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), b""


def _register(folder, root, run, monkeypatch):
    """The page's URL below the server, the way a kernel of that server registers a folder (before the fix: the
    marker file, which was all the old extension asked for)."""
    if hasattr(he, "register_page"):
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(run))
        return he.register_page(folder)
    (folder / ".homl-edge-page").write_text("{}")
    return f"homl-edge/page/{folder.relative_to(root).as_posix()}/index.html"


HOSTILE = '<!doctype html><html><body><p id="out">running</p><script src="evil.js"></script></body></html>'
EVIL = """(async () => {
  let xsrf = '';
  try { xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || ''; } catch (e) { xsrf = 'no-cookie-access'; }
  let status = 'no request';
  try {
    const r = await fetch('/api/contents/pwned.txt', {method: 'PUT', credentials: 'include',
      headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf},
      body: JSON.stringify({type: 'file', format: 'text', content: 'written by a planted page'})});
    status = 'status ' + r.status;
  } catch (e) { status = 'blocked: ' + e.name; }
  document.getElementById('out').textContent = 'done: ' + status;
})();
"""


def test_a_planted_marker_file_does_not_make_a_folder_servable(server):
    url, root, _ = server
    cloned = root / "cloned-repo" / "demo"
    cloned.mkdir(parents=True)
    (cloned / ".homl-edge-page").write_text(json.dumps({"homl-edge": "tfjs page"}))
    (cloned / "index.html").write_text(HOSTILE)
    for path in ("cloned-repo/demo/index.html", "cloned-repo/demo/", "cloned-repo/demo/.homl-edge-page"):
        status, _, _ = _get(f"{url}/homl-edge/page/{path}")
        assert status == 404, (path, status)


def test_a_registered_page_runs_sandboxed_and_cannot_reach_the_jupyter_api(server, tmp_path, monkeypatch):
    url, root, run = server
    folder = root / "mine"
    folder.mkdir()
    (folder / "index.html").write_text(HOSTILE)
    (folder / "evil.js").write_text(EVIL)
    path = _register(folder, root, run, monkeypatch)
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/login")  # its form sets the _xsrf cookie, as JupyterLab's page does
        page.goto(f"{url}/api/status?token={TOKEN}")  # logged in: the session's login cookie is set
        names = {c["name"].split("-")[0] for c in context.cookies()}
        assert {"_xsrf", "username"} <= names, names
        page.goto(f"{url}/{path}")
        page.wait_for_function("document.getElementById('out').textContent.startsWith('done')", timeout=30_000)
        outcome = page.text_content("#out")
        context.close()
    assert not (root / "pwned.txt").exists(), outcome  # the page ran (done: ...) but wrote nothing
    status, headers, _ = _get(f"{url}/{path}")
    assert status == 200
    csp = headers.get("Content-Security-Policy", "")
    assert "sandbox allow-scripts" in csp and "allow-same-origin" not in csp, csp
    print(f"planted page's PUT /api/contents: {outcome}")


def test_dotfiles_and_files_changed_after_registration_are_not_served(server, monkeypatch):
    url, root, run = server
    folder = root / "exported"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<p>page</p>")
    (folder / "model.json").write_text('{"ok": 1}')
    (folder / ".env").write_text("SECRET=1")
    (folder / "sub" / ".git").mkdir()
    (folder / "sub" / ".git" / "config").write_text("[secret]")
    path = _register(folder, root, run, monkeypatch)
    base = f"{url}/{path.rsplit('/', 1)[0]}"
    assert _get(f"{base}/model.json")[0] == 200
    assert _get(f"{base}/.env")[0] == 404
    assert _get(f"{base}/sub/.git/config")[0] == 404
    (folder / "model.json").write_text('{"ok": 2}')  # replaced after registration (a git pull, another process)
    assert _get(f"{base}/model.json")[0] == 404
    (folder / "late.js").write_text("alert(1)")  # planted after registration
    assert _get(f"{base}/late.js")[0] == 404


def test_the_exported_page_loads_nothing_from_a_cdn(trained, tmp_path):
    assert TFJS.is_file()
    out = he.export_tfjs(trained, tmp_path / "web", page=True)  # no tfjs_url: TF.js must come with the export
    html = (out.path / "index.html").read_text()
    sw = (out.path / "sw.js").read_text()
    assert "://" not in html and "cdn" not in html.lower(), html
    assert "://" not in sw
    assert (out.path / "tf.min.js").read_bytes() == TFJS.read_bytes()
    assert ".homl-edge-page" not in out.files


def test_a_litert_page_runs_inside_the_sandbox(server, trained, digits, tmp_path, monkeypatch):
    """The LiteRT.js page through the extension, as a notebook's frame loads it: an opaque origin, its module
    scripts and Wasm fetched across it (CORS), nothing else reachable."""
    url, root, run = server
    _, (xt, yt) = digits
    lite = he.quantize(trained, "int8", data=xt[:100])
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(run))
    out = he.export_web(lite, root / "litert-web", samples=(xt[:20], yt[:20]))
    path = out.served or he.register_page(out.path)
    with chromium() as browser:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/{path}")
        page.wait_for_function("window.homl !== undefined")
        page.evaluate("async () => { await window.homl.ready; }")
        probs = np.array(page.evaluate("async (xs) => await window.homl.predict(xs)",
                                       [s.ravel().tolist() for s in xt[:50]]))
        origin = page.evaluate("window.origin")
        offline = page.evaluate("async () => await window.homl.offlineReady")
    assert not errors, errors
    assert origin == "null"  # sandboxed: no service worker there, so no offline copy inside Jupyter
    assert offline is False
    assert (probs.argmax(1) == lite.predict(xt[:50]).argmax(1)).all()
