"""Showing URLs in logs and on consoles without the credentials they may carry."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str, *, keep_path: bool = True) -> str:
    """Keep scheme, host, port and path; drop ``user:pass@``, the query and the fragment
    (webhook and config URLs often carry a token there). Text that is not a URL with a scheme
    and a host (a token pasted into a URL field, say) is not shown at all."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not host:
        return "<not a URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    hidden = "?…" if parts.query or parts.fragment else ""
    if not keep_path:  # webhook URLs (Slack, Teams...) carry their secret in the path
        return urlunsplit((parts.scheme, netloc, "/…" if parts.path not in ("", "/") else parts.path, "", ""))
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + hidden


_URL = re.compile(r"https?://[^\s'\"<>]+")
_REQUEST_TARGET = re.compile(r"(\burl: )(/[^\s'\"?#]*)[?#][^\s'\"]*")  # urllib3: "...with url: /c?token=x"


def redact_text(text: str) -> str:
    """``text`` (an error message, say) with every URL in it redacted as :func:`redact_url` does,
    including the bare request target urllib3 quotes in its errors."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    return _REQUEST_TARGET.sub(lambda m: f"{m.group(1)}{m.group(2)}?…", text)
