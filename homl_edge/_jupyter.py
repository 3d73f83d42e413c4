"""A Jupyter server extension (a face): serves the web pages that ``export_tfjs(..., page=True)`` writes, so that
a notebook shows the live page in an IFrame on the server it already talks to, on localhost and on Binder alike.

What it serves is decided by a registry, not by anything a folder carries: ``homl_edge.browser.register_page``
(called by the export in the kernel) writes an entry into the Jupyter runtime dir, which only this user can write,
under a random key, with the sha256 of every file of the folder. ``GET {base_url}homl-edge/page/<key>/<file>``
answers only for entries written during this server's lifetime, only with a listed file (never a dotfile, never a
symlink) whose bytes are still the registered ones. Everything else is a 404.

Each answer carries ``Content-Security-Policy: sandbox allow-scripts``: the page gets an opaque origin of its own,
so its scripts cannot read the session's cookies or call the Jupyter API (a PUT to ``/api/contents`` is a
cross-origin request without credentials, refused), and it may load only from this server (``default-src
'self'``). The page's own files are fetched across that origin boundary, so they are sent with
``Access-Control-Allow-Origin: *`` and without authentication: the unguessable key is the capability, as a
Jupyter token is. Enabled by ``etc/jupyter/jupyter_server_config.d/homl_edge.json``, installed with the package.
"""
from __future__ import annotations

import mimetypes
import time

from .browser import APPS  # the one spelling of each route: register_page returns paths below these

ROUTE = APPS["page"]
EXPLORE_ROUTE = APPS["model-explorer"]  # Model Explorer views (homl_edge.graph): same registry, same sandbox
CSP = ("sandbox allow-scripts allow-downloads; default-src 'self' blob: data:; "
       "script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; "
       "frame-ancestors 'self'")
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".webmanifest": "application/manifest+json", ".json": "application/json", ".tflite": "application/octet-stream",
         ".bin": "application/octet-stream", ".svg": "image/svg+xml", ".css": "text/css", ".html": "text/html"}


def _handler_classes():
    """The two GET-only handlers, on one base: a registered entry of this server's lifetime or 404, the sandbox CSP,
    and the same headers."""
    from jupyter_server.auth.decorator import allow_unauthenticated
    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join
    from tornado import web

    from .browser import page_file, registered_page

    class SandboxedHandler(JupyterHandler):
        app = ""

        def initialize(self, runtime_dir, since):
            self.runtime_dir = runtime_dir
            self.since = since

        @property
        def content_security_policy(self):
            return CSP

        def check_xsrf_cookie(self):
            return None  # GET only, nothing changes

        def entry(self, key):
            entry = registered_page(key, self.runtime_dir, since=self.since)
            if entry is None or entry["app"] != self.app:
                raise web.HTTPError(404)
            return entry

        def send(self, rel, data, kind=None, status=200):
            if data is None:
                raise web.HTTPError(404)
            name = (rel or "index.html").rsplit("/", 1)[-1]
            suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
            kind = kind or TYPES.get(suffix.lower()) or mimetypes.guess_type(name)[0] or "application/octet-stream"
            self.set_status(status)
            self.set_header("Content-Type", kind)
            self.set_header("Access-Control-Allow-Origin", "*")
            self.set_header("Cache-Control", "no-cache")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.finish(data)

    class PageHandler(SandboxedHandler):
        """GET {base_url}homl-edge/page/<key>/<file>: a file of a page registered during this server's lifetime."""

        app = "page"

        @allow_unauthenticated
        def get(self, key, rel):
            self.send(rel, page_file(self.entry(key), rel))

    class ExploreHandler(SandboxedHandler):
        """GET {base_url}homl-edge/explore/<key>/<file>: Model Explorer's web app (from the installed package) and
        the graph and overlays of a view registered during this server's lifetime (homl_edge.graph.web_file)."""

        app = "model-explorer"

        @allow_unauthenticated
        def get(self, key, rel):
            from .graph import web_file

            entry = self.entry(key)
            query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
            base = url_path_join(self.settings["base_url"], EXPLORE_ROUTE, key) + "/"
            answer = web_file(entry, rel, query, base)
            if answer is None:
                raise web.HTTPError(404)
            status, kind, data = answer
            self.send(rel, data, kind, status)

    return PageHandler, ExploreHandler


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], ROUTE, "([^/]*)/?(.*)")
    args = {"runtime_dir": serverapp.runtime_dir, "since": time.time()}
    explore = url_path_join(web_app.settings["base_url"], EXPLORE_ROUTE, "([^/]*)/?(.*)")
    page, view = _handler_classes()
    web_app.add_handlers(".*$", [(route, page, args), (explore, view, args)])
    serverapp.log.info("homl-edge: registered pages served at %s, Model Explorer views at %s", route, explore)
