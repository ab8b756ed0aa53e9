"""Shared node config examples for the config, cloud-init and kickstart unit tests."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJtzD8hnUz8S5ntZyq3kQ3h3rTuL7WkPzQ6sE1fWq2b test@hcios"
# openssl passwd -6 -salt hcitestsalt example
HASH = "$6$hcitestsalt$bJ6gTAlU8ufOEKeCtJz0qkjPE27MTsbqK5W4jkavcs2wh9WYM7H6Giayijy/xBX0A9NgLiYubz5BLmBLQQl9i0"

GOOD: dict[str, Any] = {
    "schema_version": 1,
    "install": {"mode": "create", "role": "server", "device": "/dev/vda", "automatic": True, "wipe": True},
    "node": {
        "hostname": "node1",
        "password_hash": HASH,
        "ssh_authorized_keys": [ED25519],
        "network": {"interfaces": [{"name": "eth0"}], "method": "static",
                    "address": "192.168.10.11/24", "gateway": "192.168.10.1", "dns": ["192.168.10.1"]},
        "ntp": ["0.pool.ntp.org"],
    },
    "cluster": {"token": "sekrit-token", "vip": "192.168.10.100"},
}


def good() -> dict[str, Any]:
    return copy.deepcopy(GOOD)


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with the dotted ``path`` set (``a.b.c``); value DELETE removes the key."""
    out = copy.deepcopy(base)
    node = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return out


DELETE = object()
