"""A static file server for exported web pages, on 127.0.0.1, with the headers they need.

onnxruntime-web runs several WebAssembly threads only on a cross-origin isolated page, which a
server grants with two headers: ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``. Any static web space that sends them (or none:
the page then runs on one thread) serves the page as well; this server is for trying it on your
own machine. It also sends the MIME types browsers insist on for ``.mjs`` and ``.wasm``.
"""

import functools
import http.server
import mimetypes
import socketserver
from pathlib import Path

#: The headers that make a page cross-origin isolated (several wasm threads).
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin",
                     "Cross-Origin-Embedder-Policy": "require-corp",
                     "Cross-Origin-Resource-Policy": "same-origin"}

TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".onnx": "application/octet-stream", ".json": "application/json"}


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one folder with :data:`ISOLATION_HEADERS` (unless ``isolate`` is False) and no
    caching (a re-exported model is picked up on reload)."""

    extensions_map = {**mimetypes.types_map, **TYPES}

    def __init__(self, *args, isolate=True, quiet=True, **kwargs):
        self.isolate, self.quiet = isolate, quiet
        super().__init__(*args, **kwargs)

    def end_headers(self):
        if self.isolate:
            for key, value in ISOLATION_HEADERS.items():
                self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not self.quiet:
            super().log_message(format, *args)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(folder, port=8000, host="127.0.0.1", isolate=True, quiet=True):
    """An HTTP server for ``folder`` (not yet serving: call ``serve_forever()``); ``port=0``
    picks a free one (``server.server_address[1]``). ``FileNotFoundError`` for a missing
    folder, ``OSError`` for a port in use."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder to serve.")
    handler = functools.partial(PageHandler, directory=str(folder), isolate=isolate, quiet=quiet)
    return _Server((host, port), handler)


def url_of(server):
    """The page's address on this machine."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
