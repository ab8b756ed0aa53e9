"""Parsing helpers the checks share: None when the text is not valid, and the URL rule."""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from hcicore.errors import Problem
from hcicore.redact import redact_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def ip(text: str | None) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text) if text else None
    except ValueError:
        return None


def network(text: str | None) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text) if text else None
    except ValueError:
        return None


def interface(text: str | None) -> IPInterface | None:
    if not text or "/" not in text:
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def url_problem(path: str, url: str, schemes: tuple[str, ...], example: str, *,
                keep_path: bool = True) -> list[Problem]:
    """A problem when ``url`` is not an absolute URL with one of ``schemes`` and a host. The URL is
    shown without its credentials, query and fragment (:func:`hcicore.redact.redact_url`)."""
    shown = redact_url(url, keep_path=keep_path)
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or not port_ok or any(c.isspace() for c in url):
        return [Problem(path, f"{shown!r} is not a valid URL", f"write it like {example}")]
    if parts.scheme not in schemes:
        want = " or ".join(f"{s}://" for s in schemes)
        return [Problem(path, f"{shown!r} must start with {want}", f"write it like {example}")]
    if not parts.hostname:
        return [Problem(path, f"{shown!r} has no host", f"write it like {example}")]
    return []


def is_host(text: str) -> bool:
    """A host name (RFC 1123, any case) or an IP address."""
    if ip(text):
        return True
    labels = text.rstrip(".").lower().split(".")
    return len(text) <= 253 and all(HOSTNAME_LABEL.match(label) for label in labels)
