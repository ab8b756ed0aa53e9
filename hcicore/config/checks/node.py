"""Checks of node identity and login."""
from __future__ import annotations

import base64
import binascii
import re

from hcicore.errors import Problem

from ..model import NodeConfig
from .parse import HOSTNAME_LABEL
from .registry import check

CRYPT_HASH = re.compile(r"^(\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}"
                        r"|\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43})$")
CONSOLE = re.compile(r"^console=(tty\d*|ttyS\d+|ttyAMA\d+|hvc\d+)(,[0-9]+[noe]?[5-8]?r?)?$")
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
                 "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-dss")

@check("hostname")
def hostname_rfc1123(cfg: NodeConfig) -> list[Problem]:
    name = cfg.node.hostname
    if not name:
        return [Problem("node.hostname", "is required", "set a lower-case name such as node1")]
    if len(name) > 253 or not all(HOSTNAME_LABEL.match(label) for label in name.split(".")):
        return [Problem("node.hostname", f"{name!r} is not an RFC 1123 host name",
                        "use lower-case letters, digits and '-', 1-63 characters per dot-separated "
                        "label, not starting or ending with '-'")]
    return []


@check("login-credential")
def login_credential_required(cfg: NodeConfig) -> list[Problem]:
    n = cfg.node
    if n.password or n.password_hash or n.ssh_authorized_keys:
        return []
    return [Problem("node.password", "no way to log in: no password, password_hash or SSH key",
                    "set node.password, node.password_hash or node.ssh_authorized_keys")]


@check("password-or-hash")
def password_xor_hash(cfg: NodeConfig) -> list[Problem]:
    if cfg.node.password is not None and cfg.node.password_hash is not None:
        return [Problem("node.password", "both password and password_hash are set",
                        "keep only one of them")]
    return []


@check("password-plain")
def password_plain(cfg: NodeConfig) -> list[Problem]:
    pw = cfg.node.password
    if pw is None:
        return []
    if pw == "":
        return [Problem("node.password", "is empty", "set a password or remove the key")]
    if "\n" in pw or "\r" in pw or "\0" in pw:
        return [Problem("node.password", "contains a line break or NUL character",
                        "use a single-line password")]
    return []


@check("password-hash-format")
def password_hash_format(cfg: NodeConfig) -> list[Problem]:
    h = cfg.node.password_hash
    if h is None or CRYPT_HASH.match(h):
        return []
    return [Problem("node.password_hash", "is not a sha512-crypt ($6$) or yescrypt ($y$) hash",
                    "make one with `openssl passwd -6` or `mkpasswd -m yescrypt`, or set "
                    "node.password instead")]


@check("console")
def console_words(cfg: NodeConfig) -> list[Problem]:
    text = cfg.node.console
    if text is None:
        return []
    if not text.split() or not all(CONSOLE.match(w) for w in text.split()):
        return [Problem("node.console", f"{text!r} is not a list of console= arguments",
                        "write e.g. 'console=tty0 console=ttyS1,115200n8'")]
    return []


@check("ssh-keys")
def ssh_keys_wellformed(cfg: NodeConfig) -> list[Problem]:
    problems = []
    for i, key in enumerate(cfg.node.ssh_authorized_keys):
        path = f"node.ssh_authorized_keys[{i}]"
        words = key.split()
        kind = words[0] if words else ""
        if kind not in SSH_KEY_TYPES or len(words) < 2:
            problems.append(Problem(path, "is not an SSH public key",
                                    "paste one line of a .pub file, e.g. 'ssh-ed25519 AAAA... user@host'"))
            continue
        try:
            blob = base64.b64decode(words[1], validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        size = int.from_bytes(blob[:4], "big")
        if len(blob) < 4 + size or blob[4:4 + size] != kind.encode():
            problems.append(Problem(path, f"the {kind} key data is damaged or truncated",
                                    "copy the whole key again from the .pub file"))
    return problems


