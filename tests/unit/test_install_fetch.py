"""config_url fetching: retries against a loopback server, bounded failure, cmdline merge."""
from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hcicore.errors import ValidationError
from installer.auto import config_from_cmdline, config_from_source, failure_marker
from installer.fetch_config import FetchError, FetchPolicy, fetch_text

pytestmark = pytest.mark.unit

CONFIG = """\
install:
  device: /dev/vda
  power_action: poweroff
node:
  hostname: from-url
  password_hash: "$6$hcisalt$Qec6ivgWo6OAkJqL7FWGjqYP3eYgVBjnN3zBjO6ckA8TXaqsndi62pcOgFWZxbVy1DLi5y46kHrtx8k6S62Ww."
"""
FAST = FetchPolicy(budget=10.0, connect_timeout=1.0, read_timeout=2.0, first_delay=0.05, max_delay=0.2)


class FlakyServer:
    """Answers 503 ``fail`` times, then serves ``body`` (or 404 for other paths)."""

    def __init__(self, body: str, fail: int, status: int = 503):
        outer = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                if self.path.split("?")[0] != "/config.yaml":  # a query (token) is allowed
                    self.send_error(404)
                    return
                if outer.hits <= fail:
                    self.send_error(status)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/config.yaml"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    yield


def test_retries_until_the_server_serves() -> None:
    retries: list[tuple[int, str]] = []
    with FlakyServer(CONFIG, fail=3) as srv:
        text = fetch_text(srv.url, policy=FAST, on_retry=lambda n, err, d: retries.append((n, err)))
    assert text == CONFIG and srv.hits == 4
    assert [n for n, _ in retries] == [1, 2, 3] and all("503" in err for _, err in retries)


def test_not_found_fails_at_once_naming_the_url() -> None:
    with FlakyServer(CONFIG, fail=0) as srv:
        url = srv.url.replace("config.yaml", "missing.yaml")
        with pytest.raises(FetchError, match=r"missing.yaml: HTTP 404 .*not retried"):
            fetch_text(url, policy=FAST)
        assert srv.hits == 1


def test_unreachable_url_gives_a_clear_error_within_the_budget() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = FetchPolicy(budget=3.0, connect_timeout=1.0, read_timeout=1.0, first_delay=0.2, max_delay=1.0)
    start = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch_text(f"http://127.0.0.1:{port}/config.yaml", policy=policy)
    elapsed = time.monotonic() - start
    assert elapsed < 5.0
    message = str(err.value)
    assert f"127.0.0.1:{port}/config.yaml" in message and "gave up after" in message
    assert "ConnectionError" in message
    assert failure_marker(message).startswith("HCIOS-INSTALL-FAILED: config URL http://127.0.0.1:")


def test_server_that_never_answers_cannot_hang_the_fetch() -> None:
    with socket.socket() as s:  # accepts connections (backlog) but never replies
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/config.yaml"
        policy = FetchPolicy(budget=2.0, connect_timeout=0.5, read_timeout=0.5, first_delay=0.1, max_delay=0.5)
        start = time.monotonic()
        with pytest.raises(FetchError, match="gave up"):
            fetch_text(url, policy=policy)
        assert time.monotonic() - start < 4.0


def test_only_http_urls() -> None:
    with pytest.raises(FetchError, match="only http"):
        fetch_text("ftp://example.invalid/c.yaml", policy=FAST)


def test_cmdline_keys_override_the_fetched_file() -> None:
    with FlakyServer(CONFIG, fail=1) as srv:
        cmdline = (f"BOOT_IMAGE=/boot/vmlinuz root=live:CDLABEL=HCIOS rd.live.image hcios.live=install "
                   f"hci.install.automatic=true hci.install.config_url={srv.url} hci.node.hostname=node7")
        cfg = config_from_cmdline(cmdline, policy=FAST)
    assert cfg.node.hostname == "node7"
    assert cfg.install.device == "/dev/vda" and cfg.install.automatic is True
    assert cfg.install.power_action == "poweroff"


def test_invalid_fetched_config_lists_problems() -> None:
    with FlakyServer("install:\n  device: /dev/vda\nnode:\n  hostname: Bad_Name\n", fail=0) as srv:
        with pytest.raises(ValidationError) as err:
            config_from_cmdline(f"hci.install.config_url={srv.url}", policy=FAST)
    assert any(p.path == "node.hostname" for p in err.value.problems)


def test_fetch_budget_from_the_kernel_command_line() -> None:
    from installer.auto import fetch_policy

    assert fetch_policy("quiet hcios.fetch_budget=30").budget == 30.0
    assert fetch_policy("quiet").budget == FetchPolicy().budget
    with pytest.raises(ValidationError, match="not a number"):
        fetch_policy("hcios.fetch_budget=soon")


def test_token_in_the_config_url_never_reaches_an_error() -> None:
    """requests quotes the request target (query included) in its errors; the retry lines, the
    FetchError and the FAILED marker must not carry the token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    retries: list[str] = []
    policy = FetchPolicy(budget=1.5, connect_timeout=0.5, read_timeout=0.5, first_delay=0.2, max_delay=0.5)
    with pytest.raises(FetchError) as err:
        fetch_text(f"http://ops:pa55@127.0.0.1:{port}/c.yaml?token=s3cret", policy=policy,
                   on_retry=lambda n, error, delay: retries.append(error))
    assert retries and "ConnectionError" in retries[0] and "/c.yaml" in retries[0]
    for text in [*retries, str(err.value)]:
        assert "s3cret" not in text and "pa55" not in text, text
    # a config that does not parse names the URL without its query
    with FlakyServer("install: [unclosed\n", fail=0) as srv:
        with pytest.raises(ValidationError) as bad:
            config_from_cmdline(f"hci.install.config_url={srv.url}?token=s3cret", policy=FAST)
    assert "not valid YAML" in str(bad.value) and "s3cret" not in str(bad.value)
    with FlakyServer("- a list\n", fail=0) as srv:
        with pytest.raises(ValidationError) as bad:
            config_from_source(f"{srv.url}?token=s3cret", policy=FAST)
    assert "s3cret" not in str(bad.value)
