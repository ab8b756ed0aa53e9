"""Install webhooks against a real HTTP receiver on 127.0.0.1."""
from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from hcicore.config import load_config
from installer.webhooks import notify

pytestmark = pytest.mark.unit


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, json.loads(body)))  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def receiver() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.received = []  # type: ignore[attr-defined]
    srv.status = 204  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def config(port: int):  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{port}"
    return load_config({
        "install": {"device": "/dev/vda", "webhooks": {"started": f"{base}/started?token=s3cret",
                                                       "failed": f"{base}/failed?token=s3cret"}},
        "node": {"hostname": "n1", "password": "hunter2-long-enough"},
        "cluster": {"token": "cluster-secret-token"}}, source="test")


def test_webhook_posts_the_event_without_secrets(receiver) -> None:  # type: ignore[no-untyped-def]
    cfg = config(receiver.server_address[1])
    assert notify(cfg, "started", version="0.1.0") is None
    assert notify(cfg, "succeeded") is None  # not configured: nothing sent
    ((path, body),) = receiver.received
    assert path == "/started?token=s3cret"
    assert body == {"event": "started", "hostname": "n1", "device": "/dev/vda", "version": "0.1.0"}
    raw = json.dumps(body)
    assert "hunter2" not in raw and "cluster-secret-token" not in raw and "$6$" not in raw


def test_failing_webhook_is_a_redacted_warning(receiver) -> None:  # type: ignore[no-untyped-def]
    receiver.status = 500
    cfg = config(receiver.server_address[1])
    warning = notify(cfg, "failed", error="disk gone")
    assert warning is not None and "HTTP 500" in warning and "s3cret" not in warning
    receiver.shutdown()
    receiver.server_close()
    warning = notify(cfg, "started")
    assert warning is not None and "ConnectionError" in warning and "s3cret" not in warning


def test_the_installed_marker_is_put_where_boot_ipxe_looks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from iso.httpserve import serve_directory  # noqa: PLC0415

    server = serve_directory(tmp_path)
    with server as port:
        cfg = load_config({"install": {"device": "/dev/vda",
                                       "installed_url": f"http://127.0.0.1:{port}/installed/52-54-00-12-34-56"},
                           "node": {"hostname": "n1", "password": "hunter2-long-enough"}}, source="test")
        assert notify(cfg, "started") is None  # only a success marks the machine installed
        assert not (tmp_path / "installed").exists()
        assert notify(cfg, "succeeded", version="0.1.0") is None
        marker = json.loads((tmp_path / "installed/52-54-00-12-34-56").read_text())
        assert marker == {"hostname": "n1", "device": "/dev/vda", "version": "0.1.0"}
        # the lab's server takes markers and nothing else
        bad = load_config({"install": {"installed_url": f"http://127.0.0.1:{port}/boot.ipxe"},
                           "node": {"hostname": "n1", "password": "hunter2-long-enough"}}, source="test")
        warning = notify(bad, "succeeded")
        assert warning is not None and "installed marker" in warning and "HTTP 403" in warning
    assert ("PUT", "/installed/52-54-00-12-34-56", 201) in server.requests


def test_the_lab_server_takes_markers_only_with_a_sane_length(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import http.client  # noqa: PLC0415

    from iso.httpserve import serve_directory  # noqa: PLC0415

    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    with serve_directory(tmp_path) as port:
        def put(path: str, headers: dict[str, str], body: bytes = b"") -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("PUT", path)
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.endheaders(body)
            status = conn.getresponse().status
            conn.close()
            return status

        assert put("/vmlinuz", {"Content-Length": "1"}, b"x") == 403
        assert put("/installed/../vmlinuz", {"Content-Length": "1"}, b"x") == 403
        assert put("/installed/.hidden", {"Content-Length": "1"}, b"x") == 403
        assert put("/installed/m1", {"Content-Length": "-1"}) == 400
        assert put("/installed/m1", {"Content-Length": "abc"}) == 400
        assert put("/installed/m1", {"Content-Length": str(10**9)}) == 400
        assert put("/installed/m1", {"Content-Length": "2"}, b"{}") == 201
    assert (tmp_path / "vmlinuz").read_bytes() == b"kernel"
    assert sorted(p.name for p in (tmp_path / "installed").iterdir()) == ["m1"]
