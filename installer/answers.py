"""Parsing and checking of single answers typed into the installer wizard.

Each parser takes the raw text and returns the value for the config, or raises AnswerError with a
message that says what is wrong and what to type instead.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from hcicore.redact import redact_url
from urllib.parse import urlsplit

HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SSH_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
PASSWORD_MIN = 8
K3S_PORT = 6443


class AnswerError(ValueError):
    """An answer that cannot be used; the message is shown and the question asked again."""


def words(raw: str) -> list[str]:
    """Split a list typed as ``a, b c`` into its items."""
    return [w for w in re.split(r"[\s,]+", raw.strip()) if w]


def yes_no(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("y", "yes"):
        return True
    if word in ("n", "no"):
        return False
    raise AnswerError("answer yes or no")


def hostname(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise AnswerError("a hostname is required")
    if len(name) > 253:
        raise AnswerError("at most 253 characters")
    if name != name.lower():
        raise AnswerError(f"{name!r} has upper-case letters; use lower case (RFC 1123)")
    for label in name.split("."):
        if not HOSTNAME_LABEL.match(label):
            raise AnswerError(
                f"{label!r} is not a valid RFC 1123 label: use a-z, 0-9 and '-', 1-63 characters, "
                "not starting or ending with '-'")
    return name


def ip(raw: str, what: str = "address") -> str:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise AnswerError(f"{raw.strip()!r} is not an IP {what}, e.g. 10.0.0.1") from None


def cidr_address(raw: str) -> str:
    """A host address with its prefix length, e.g. 10.0.0.5/24."""
    text = raw.strip()
    if "/" not in text:
        raise AnswerError(f"{text!r} needs a prefix length, e.g. {text or '10.0.0.5'}/24")
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise AnswerError(f"{text!r} is not an address with prefix length, e.g. 10.0.0.5/24") from None
    net = iface.network
    if net.prefixlen < net.max_prefixlen - 1 and iface.ip in (net.network_address,
                                                              net.broadcast_address):
        raise AnswerError(f"{iface.ip} is the network or broadcast address of {net}; "
                          "use a host address")
    return str(iface)


def gateway(raw: str, address: str | None) -> str:
    gw = ip(raw, "gateway")
    if address:
        iface = ipaddress.ip_interface(address)
        if ipaddress.ip_address(gw) not in iface.network:
            raise AnswerError(f"gateway {gw} is outside {iface.network} (the node's subnet)")
        if ipaddress.ip_address(gw) == iface.ip:
            raise AnswerError(f"gateway {gw} is the node's own address")
    return gw


def ip_list(raw: str, what: str = "DNS server") -> list[str]:
    return [ip(w, what) for w in words(raw)]


def host_list(raw: str) -> list[str]:
    """NTP servers: IP addresses or host names."""
    out = []
    for w in words(raw):
        try:
            out.append(str(ipaddress.ip_address(w)))
        except ValueError:
            out.append(hostname(w.lower()))
    return out


def vlan_id(raw: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 4094:
        raise AnswerError(f"{text!r} is not a VLAN id: use 1-4094, or leave blank for none")
    return int(text)


def server_url(raw: str) -> str:
    """An existing cluster's server: a URL, or just a host/IP (https and port 6443 added)."""
    text = raw.strip()
    if not text:
        raise AnswerError("the server URL of the cluster to join is required")
    if "://" not in text:
        try:
            bare = ipaddress.ip_address(text)
            text = f"https://[{bare}]" if bare.version == 6 else f"https://{bare}"
        except ValueError:
            text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise AnswerError(f"{raw.strip()!r} must use https, e.g. https://10.0.0.100:{K3S_PORT}")
    try:
        port = parts.port
    except ValueError:
        raise AnswerError(f"{raw.strip()!r} has a bad port") from None
    host = parts.hostname or ""
    try:
        ip(host)
    except AnswerError:
        hostname(host)
    if parts.path not in ("", "/") or parts.query:
        raise AnswerError(f"{raw.strip()!r}: give only scheme, host and port")
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port or K3S_PORT}"


def proxy_url(raw: str) -> str:
    text = raw.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AnswerError(f"{redact_url(text)!r} is not a proxy URL, e.g. http://proxy.example.com:3128")
    return text


def token(raw: str) -> str:
    text = raw.strip()
    if any(c.isspace() for c in text):
        raise AnswerError("the token cannot contain spaces")
    if len(text) < 8:
        raise AnswerError("the token is too short: at least 8 characters")
    return text


def ssh_keys(raw: str) -> list[str]:
    """One public key per line, as in authorized_keys (options prefixes are not accepted)."""
    keys = []
    for n, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        fields = line.split()
        if fields[0] not in SSH_KEY_TYPES or len(fields) < 2:
            raise AnswerError(f"line {n}: not an SSH public key (want e.g. 'ssh-ed25519 AAAA... "
                              "user@host')")
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except binascii.Error:
            raise AnswerError(f"line {n}: the key data is not base64") from None
        if fields[0].encode() not in blob[:64]:
            raise AnswerError(f"line {n}: the key data does not match its type {fields[0]}")
        keys.append(line)
    return keys


def new_password(first: str, again: str, *, required: bool) -> str | None:
    """Check a password typed twice; returns it (caller hashes it at once) or None if blank."""
    if first != again:
        raise AnswerError("the two passwords differ; type them again")
    if not first:
        if required:
            raise AnswerError("a password is required when no SSH key is given")
        return None
    if len(first) < PASSWORD_MIN:
        raise AnswerError(f"too short: at least {PASSWORD_MIN} characters")
    if first.strip() != first:
        raise AnswerError("the password starts or ends with a space; remove it")
    return first
