"""Serve a directory over HTTP on 127.0.0.1 in a thread: the PXE server of the lab and tests.

It also takes the installer's ``installed`` markers: a PUT to ``/installed/<name>`` (one path
segment of letters, digits, ``-``, ``_``, ``.``) writes ``<directory>/installed/<name>``, which
``pxe/boot.ipxe`` then finds. Any other PUT is refused (403).

qemu user networking maps the guest's 10.0.2.2 to the host's loopback, so a guest fetches
``http://10.0.2.2:<port>/rootfs.squashfs`` from here without touching any real network.
"""
from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path

MARKER_DIR = "installed"
_MARKER = re.compile(rf"^/{MARKER_DIR}/([A-Za-z0-9_.-]{{1,64}})$")
MAX_MARKER = 64 * 1024


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Records each request path on the server instead of logging it to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.requests.append((self.command, self.path, int(code)))  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def do_PUT(self) -> None:  # noqa: N802
        match = _MARKER.match(self.path)
        if match is None or match.group(1).startswith("."):
            self.send_error(403, "only PUT /installed/<name> is accepted")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_MARKER:
            self.send_error(400, f"a marker needs a Content-Length of at most {MAX_MARKER} bytes")
            return
        markers = Path(self.directory) / MARKER_DIR
        markers.mkdir(exist_ok=True)
        (markers / match.group(1)).write_bytes(self.rfile.read(int(length)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.requests: list[tuple[str, str, int]] = []


class serve_directory:  # noqa: N801  (used like a function in `with`)
    """Serve a directory over HTTP on 127.0.0.1:<free port> in a thread; ``with`` gives the port.

    ``requests`` lists (method, path, status) of every request served, in order.
    """

    def __init__(self, directory: Path):
        handler = functools.partial(_Handler, directory=str(directory))
        self._server = _Server(("127.0.0.1", 0), handler)
        self.requests = self._server.requests
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> int:
        self._thread.start()
        return int(self._server.server_address[1])

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
