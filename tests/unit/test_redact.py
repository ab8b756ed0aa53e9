from __future__ import annotations

import pytest

from hcicore.redact import redact_text, redact_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("url,shown", [
    ("https://hooks.example.com/services/T000/B000/XXXX?token=s3cret", "https://hooks.example.com/services/T000/B000/XXXX?…"),
    ("http://user:pa55@10.0.2.2:8080/node.yaml", "http://10.0.2.2:8080/node.yaml"),
    ("http://[fd00::1]:80/c.yaml#frag", "http://[fd00::1]:80/c.yaml?…"),
    ("https://cfg.example.com/n1.yaml", "https://cfg.example.com/n1.yaml"),
])
def test_redact_url_drops_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url) and "pa55" not in redact_url(url)


def test_redact_text_hides_urls_and_request_targets_inside_messages() -> None:
    msg = ("HTTPConnectionPool(host='10.0.2.2', port=9): Max retries exceeded with url: /c.yaml?token=s3cret "
           "(caused by ...) see https://u:pa55@h.example/x?k=s3cret")
    shown = redact_text(msg)
    assert "s3cret" not in shown and "pa55" not in shown
    assert "with url: /c.yaml?…" in shown and "https://h.example/x?…" in shown
    assert redact_text("no url here") == "no url here"
