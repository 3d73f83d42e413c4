"""A Jupyter server extension (a face): serves the web pages that ``export_tfjs(..., page=True)`` writes, so that
a notebook shows the live page in an IFrame on the server it already talks to, on localhost and on Binder alike.

Jupyter's own ``/files/`` handler sends ``Content-Security-Policy: sandbox allow-scripts``: a page served there has
an opaque origin, so its stylesheet and scripts lose the session's cookies, and it can register no service worker
and open no IndexedDB. This handler serves without that sandbox, behind the server's authentication, and only
from folders that carry the marker ``export_tfjs`` writes: arbitrary HTML under the root is never served here.
Enabled by ``etc/jupyter/jupyter_server_config.d/homl_edge.json``, installed with the package.
"""
from __future__ import annotations

from pathlib import Path

MARKER = ".homl-edge-page"
ROUTE = "homl-edge/page"


def _handler_class():
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web

    class PageHandler(JupyterHandler, web.StaticFileHandler):
        """GET {base_url}homl-edge/page/<folder below the root>/<file>: files of a marked export folder only."""

        def initialize(self, path):
            web.StaticFileHandler.initialize(self, path, default_filename="index.html")

        @web.authenticated
        async def get(self, path, include_body=True):
            return await web.StaticFileHandler.get(self, path, include_body)

        def validate_absolute_path(self, root, absolute_path):
            absolute = super().validate_absolute_path(root, absolute_path)
            if absolute is None or not (Path(absolute).parent / MARKER).is_file():
                raise web.HTTPError(404)
            return absolute

        def set_extra_headers(self, path):
            self.set_header("Cache-Control", "no-cache")

    return PageHandler


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], ROUTE, "(.*)")
    web_app.add_handlers(".*$", [(route, _handler_class(), {"path": str(Path(serverapp.root_dir).expanduser())})])
    serverapp.log.info("homl-edge: exported pages served at %s", route)
