"""Check an export in a real browser: serve it on 127.0.0.1 and run it in headless Chromium (Playwright).

Used by the browser chapter and the tests; it needs the ``playwright`` package and a Chromium binary (Debian's
``/usr/bin/chromium``: Playwright's own browser download is not needed). Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from ._result import Record, result
from .errors import HomlEdgeError

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def find_chromium() -> str | None:
    """Debian's Chromium (these machines), else the Chromium that Playwright installed (Binder's postBuild)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    for pattern in ("chromium-*/chrome-linux*/chrome", "chromium_headless_shell-*/chrome-linux*/headless_shell"):
        found = sorted(cache.glob(pattern))
        if found:
            return str(found[-1])
    return None


def jupyter_files_path(folder) -> str | None:
    """The path below a running Jupyter server's root at which its ``/files/`` handler serves ``folder``.

    The kernel and its server share a file system (on localhost and on Binder alike): the server's runtime file
    names its root; the deepest root that holds ``folder`` wins. None when no server holds it.
    """
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    folder = Path(folder).expanduser().resolve()
    best = None
    try:
        servers = list(list_running_servers())
    except Exception:
        return None
    for info in servers:
        root = info.get("root_dir") or info.get("notebook_dir")
        if not root:
            continue
        root = Path(root).expanduser().resolve()
        try:
            rel = folder.relative_to(root)
        except ValueError:
            continue
        if best is None or len(root.parts) > best[0]:
            best = (len(root.parts), rel.as_posix())
    return best[1] if best else None


# ------------------------------------------------------------------------ the pages a Jupyter server may serve
PAGE_ROUTE = "homl-edge/page"
PAGES_DIR = "homl-edge-pages"  # below the Jupyter runtime dir, which only this user can write
_KEY = re.compile(r"^[0-9a-f]{32}$")
_MAX_PAGE_FILES = 500
APPS = {"page": PAGE_ROUTE, "model-explorer": "homl-edge/explore"}  # what a registered folder is shown by: its route


def _runtime_dir(runtime_dir=None) -> Path:
    if runtime_dir is not None:
        return Path(runtime_dir)
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def page_files(folder) -> dict:
    """``{relative path: sha256}`` of what a page folder may serve: regular files only, no symlink, no dotfile
    and nothing below a dot folder (``.git``, ``.env``, ``.ipynb_checkpoints``)."""
    folder = Path(folder)
    files = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.is_symlink() or not p.is_file():
            continue
        if len(files) >= _MAX_PAGE_FILES:
            raise HomlEdgeError(f"{folder} holds more than {_MAX_PAGE_FILES} files: register the export folder "
                                "itself, not a folder above it")
        files[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


def register_page(folder, *, runtime_dir=None, app: str = "page") -> str:
    """Let the running Jupyter server show the web page in ``folder`` (what ``export_tfjs(..., page=True)`` does).

    Writes an entry into the Jupyter runtime dir (a folder only this user can write, never a file a repository can
    carry): a random key, the folder and the sha256 of every file it holds now (no dotfiles, no symlinks). The
    server serves ``{base_url}homl-edge/page/<key>/<file>`` only for entries written during its own lifetime,
    only those files and only while their bytes are unchanged, in a sandbox (its own opaque origin: no access
    to the Jupyter API or the session's cookies). Returns that path below the server's base URL. The key is the
    capability: whoever holds it (this notebook's output) can fetch those files until the server stops.
    ``app="model-explorer"`` registers a folder of graph data that only the Model Explorer route serves
    (:mod:`homl_edge.graph`); a page route never serves it, nor that route a page.
    """
    folder = Path(folder).expanduser().resolve()
    if app not in APPS:
        raise HomlEdgeError(f"unknown app {app!r}: one of {', '.join(APPS)}")
    if app == "page" and not (folder / "index.html").is_file():
        raise HomlEdgeError(f"{folder} has no index.html: register the folder of a page export (page=True)")
    files = page_files(folder)
    where = _runtime_dir(runtime_dir) / PAGES_DIR
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = time.time()
    for old in where.glob("*.json"):  # the same folder's earlier entries, and anything a week old
        try:
            entry = json.loads(old.read_text())
            if entry.get("folder") == str(folder) or now - float(entry.get("created", 0)) > 7 * 86400:
                old.unlink()
        except (OSError, ValueError):
            continue
    key = secrets.token_hex(16)
    entry = {"folder": str(folder), "files": files, "created": now, "app": app}
    tmp = where / f".{key}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(entry, f)
    os.replace(tmp, where / f"{key}.json")
    return f"{PAGE_ROUTE}/{key}/index.html" if app == "page" else f"{APPS[app]}/{key}/"


def registered_page(key: str, runtime_dir, *, since: float = 0.0) -> dict | None:
    """The entry :func:`register_page` wrote under ``key`` (written at or after ``since``), or None."""
    if not _KEY.match(key or ""):
        return None
    try:
        entry = json.loads((Path(runtime_dir) / PAGES_DIR / f"{key}.json").read_text())
        folder, files, created = Path(entry["folder"]), dict(entry["files"]), float(entry["created"])
        app = str(entry.get("app", "page"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if created < since or not folder.is_absolute():
        return None
    return {"folder": folder, "files": files, "created": created, "app": app}


def page_file(entry: dict, rel: str) -> bytes | None:
    """The bytes of ``rel`` in a registered page, or None: not listed, a dotfile, a symlink, outside the folder,
    or changed since it was registered."""
    rel = rel or "index.html"
    digest = entry["files"].get(rel)
    parts = rel.split("/")
    if digest is None or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    folder = entry["folder"]
    path = folder.joinpath(*parts)
    try:
        if path.resolve() != folder.resolve().joinpath(*parts) or path.is_symlink() or not path.is_file():
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == digest else None


def jupyter_server_running() -> bool:
    """Whether a Jupyter server has its runtime file in this process's Jupyter runtime dir."""
    try:
        from jupyter_server.serverapp import list_running_servers

        return any(True for _ in list_running_servers())
    except Exception:
        return False


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve(directory):
    """Serve ``directory`` on 127.0.0.1 at a free port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(executable: str | None = None):
    """A headless Chromium with a fresh profile; yields a Playwright ``Browser`` (sync API)."""
    exe = executable or find_chromium()
    if not exe:
        raise HomlEdgeError("no Chromium found: install it (Debian: apt-get install chromium) or pass executable=")
    from playwright.sync_api import sync_playwright

    # requests that a page's service worker makes (its install-time cache.addAll, its fetch fallbacks) are
    # reported on the browser context only with this set, before the driver starts (Chromium only)
    os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _in_thread(fn):
    """Run ``fn`` in a fresh thread: Playwright's sync API refuses to run inside Jupyter's asyncio loop."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@result
class BrowserRun(Record):
    """What :func:`predict_in_browser` got from the page: ``probs`` (one row per sample), the TF.js or LiteRT.js
    ``backend`` the page used ("webgl", "cpu", "wasm", ...), the ``seconds`` of the whole round trip and the
    ``requests`` the page made (paths on its own origin). A frozen record, also a read-only mapping
    (``run["probs"]``)."""

    probs: object  # numpy array
    backend: str
    seconds: float
    requests: list


def predict_in_browser(folder, x, *, screenshot=None, executable: str | None = None,
                       timeout_s: float = 120) -> BrowserRun:
    """Open the web page of an export (``export_tfjs(..., page=True)``) in headless Chromium and predict ``x``.

    Returns a :class:`BrowserRun`: ``probs`` (an array), ``backend`` ("webgl" | "cpu" | ...), ``seconds``,
    ``requests`` (urls); ``run["probs"]`` works as it did when this was a dict.
    The page must be able to load TF.js without the internet: export with ``tfjs_url=<local tf.min.js>``.
    """
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise HomlEdgeError(f"{folder} has no index.html: export with page=True")
    samples = [np.asarray(s, dtype=np.float32).ravel().tolist() for s in np.asarray(x)]

    def run():
        t0 = time.perf_counter()
        with serve(folder) as url, chromium(executable) as browser:
            page = browser.new_page()
            page.set_default_timeout(timeout_s * 1000)
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/index.html")
            page.wait_for_function("window.homl !== undefined")
            page.evaluate("async () => { await window.homl.ready; }")
            probs = np.array(page.evaluate("async (xs) => await window.homl.predict(xs)", samples))
            backend = page.evaluate("window.homl.backend()")
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=True)
        if errors:
            raise HomlEdgeError(f"the page raised an error: {errors[0]}")
        return BrowserRun(probs=probs, backend=backend, seconds=time.perf_counter() - t0,
                          requests=[r.replace(url, "") for r in requests])

    return _in_thread(run)


def time_in_browser(folders: dict, x, *, runs: int = 200, rounds: int = 3, executable: str | None = None,
                    timeout_s: float = 120) -> dict:
    """Median milliseconds of one prediction in headless Chromium, for each page export in ``folders``
    (``{name: folder}``, TF.js and LiteRT.js pages alike), in one browser page that visits them round after round
    (``rounds``; each keeps its best median of ``runs`` one-sample predictions over ``x``, read back to JavaScript).
    Returns ``{name: {"median_ms": float, "backend": str}}``."""
    samples = [np.asarray(s, dtype=np.float32).ravel().tolist() for s in np.asarray(x)]
    folders = {name: Path(f) for name, f in folders.items()}
    for name, f in folders.items():
        if not (f / "index.html").is_file():
            raise HomlEdgeError(f"{f} ({name}) has no index.html: export with page=True or export_web")

    def run():
        best = {}
        with contextlib.ExitStack() as stack:
            urls = {name: stack.enter_context(serve(f)) for name, f in folders.items()}
            browser = stack.enter_context(chromium(executable))
            page = browser.new_page()
            page.set_default_timeout(timeout_s * 1000)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            for _ in range(rounds):
                for name, url in urls.items():
                    page.goto(f"{url}/index.html")
                    page.wait_for_function("window.homl !== undefined")
                    ms = page.evaluate("async ([xs, n]) => await window.homl.time(xs, n)", [samples, runs])
                    backend = page.evaluate("window.homl.backend()")
                    if name not in best or ms < best[name]["median_ms"]:
                        best[name] = {"median_ms": float(ms), "backend": backend}
            if errors:
                raise HomlEdgeError(f"a page raised an error: {errors[0]}")
        return best

    return _in_thread(run)


@result
class BrowserFinetune(Record):
    """What :func:`finetune_in_browser` measured in the page: accuracy before and after on the test samples and
    after on the training samples, the ``seconds`` and per-epoch ``loss`` of the training, where the model came from
    after a reload (``source_after_reload``: "indexeddb" when the fine-tuned model was kept), the probabilities
    after training and after the reload, the ``requests`` of the browser context and how many the service worker
    made. A frozen record, also a read-only mapping (``r["accuracy_after"]``)."""

    accuracy_before: float
    accuracy_after: float
    train_accuracy_after: float
    seconds: float
    loss: list
    source_after_reload: str
    probs_after: object  # numpy array
    probs_after_reload: object  # numpy array
    requests: list
    service_worker_requests: int


def finetune_in_browser(folder, x, y, *, test=None, options: dict | None = None, screenshot=None,
                        executable: str | None = None, timeout_s: float = 180) -> BrowserFinetune:
    """Fine-tune a ``trainable=True`` export inside headless Chromium with the page's own function and defaults.

    Trains on ``(x, y)`` and measures the page's accuracy before and after on ``test=(x_test, y_test)``, samples
    the page never trained on (without ``test``, on the training samples themselves, which only shows that it
    learned them). Reloads the page to check that the fine-tuned model comes back from IndexedDB, and records
    every request of the browser context, its service worker's included. Returns a :class:`BrowserFinetune` with
    ``accuracy_before``, ``accuracy_after`` (on ``test``), ``train_accuracy_after``, ``seconds``, ``loss``,
    ``source_after_reload``, ``probs_after``, ``probs_after_reload`` (on ``x``), ``requests`` (paths on the
    page's own origin; anything else is listed in full) and ``service_worker_requests`` (how many of them
    the service worker made).
    """
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise HomlEdgeError(f"{folder} has no index.html: export with page=True, trainable=True")

    def as_lists(xs, ys, what):
        xs, ys = np.asarray(xs), np.asarray(ys)
        if len(xs) != len(ys) or not len(xs):
            raise HomlEdgeError(f"{what} needs as many labels as samples (at least one): got {len(xs)} and {len(ys)}")
        return [np.asarray(s, dtype=np.float32).ravel().tolist() for s in xs], [int(v) for v in ys.ravel()]

    samples, labels = as_lists(x, y, "fine-tuning")
    if test is not None:
        if not (isinstance(test, (tuple, list)) and len(test) == 2):
            raise HomlEdgeError("test= takes a pair (x_test, y_test) of samples the page does not train on")
        test_samples, test_labels = as_lists(*test, "test=")
    else:
        test_samples, test_labels = samples, labels

    def run():
        with serve(folder) as url, chromium(executable) as browser:
            context = browser.new_context()
            requests, from_worker = [], []

            def seen(r):
                requests.append(r.url)
                if r.service_worker is not None:
                    from_worker.append(r.url)

            context.on("request", seen)  # the context sees the service worker's requests too, a page does not
            page = context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            page.goto(f"{url}/index.html")
            page.wait_for_function("window.homl !== undefined")
            page.evaluate("async () => { await window.homl.ready; await window.homl.offlineReady; }")
            if not page.evaluate("window.homl.config.trainable"):
                raise HomlEdgeError("this export has no fine-tuning: export with trainable=True")
            accuracy = "async ([xs, ys]) => await window.homl.accuracy(xs, ys)"
            before = page.evaluate(accuracy, [test_samples, test_labels])
            result = page.evaluate("async ([xs, ys, o]) => await window.homl.fineTune(xs, ys, o)",
                                   [samples, labels, options or {}])
            after = page.evaluate(accuracy, [test_samples, test_labels])
            train_after = page.evaluate(accuracy, [samples, labels])
            probs_after = page.evaluate("async (xs) => await window.homl.predict(xs)", samples)
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=True)
            page.reload()
            page.wait_for_function("window.homl !== undefined")
            page.evaluate("async () => { await window.homl.ready; }")
            source = page.evaluate("window.homl.source()")
            probs_reload = page.evaluate("async (xs) => await window.homl.predict(xs)", samples)
            context.close()
        own = [r[len(url):] if r.startswith(url) else r for r in requests]
        return BrowserFinetune(accuracy_before=before, accuracy_after=after, train_accuracy_after=train_after,
                               seconds=result["seconds"], loss=result["loss"], source_after_reload=source,
                               probs_after=np.array(probs_after), probs_after_reload=np.array(probs_reload),
                               requests=own, service_worker_requests=len(from_worker))

    return _in_thread(run)
