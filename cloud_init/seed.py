"""The cloud-init NoCloud seed of a node: ``user-data``, ``meta-data`` and ``network-config``.

Built as data and dumped with ``yaml.safe_dump`` (no templates), so any value - a key comment,
a token - stays a quoted YAML scalar. The seed holds the password hash and the cluster token:
:func:`write_seed` writes its files mode 0600.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from hcicore.files import write_private
from hcicore.config import NodeConfig, to_dict

from .k3s import CONFIG_PATH, TOKEN_PATH, k3s_config, k3s_service, k3s_token
from .network import network_config

SEED_FILES = ("user-data", "meta-data", "network-config")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (file contents) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def instance_id(cfg: NodeConfig) -> str:
    """Stable id derived from the config: the same config gives the same id, any change a new one."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return "hcios-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def proxy_env(cfg: NodeConfig) -> str | None:
    """``KEY=value`` lines for the proxy, or None without one."""
    p = cfg.node.proxy
    if p is None:
        return None
    lines = []
    for key, value in (("HTTP_PROXY", p.http), ("HTTPS_PROXY", p.https), ("NO_PROXY", p.no_proxy)):
        if value:
            lines += [f"{key}={value}", f"{key.lower()}={value}"]
    return "\n".join(lines) + "\n" if lines else None


def user_data(cfg: NodeConfig) -> dict[str, Any]:
    n = cfg.node
    root: dict[str, Any] = {"name": "root", "lock_passwd": n.password_hash is None}
    if n.password_hash:
        root["hashed_passwd"] = n.password_hash
    if n.ssh_authorized_keys:
        root["ssh_authorized_keys"] = list(n.ssh_authorized_keys)
    files: list[dict[str, Any]] = [{
        "path": CONFIG_PATH, "owner": "root:root", "permissions": "0600",
        "content": _yaml(k3s_config(cfg)),
    }]
    token = k3s_token(cfg)
    if token is not None:
        files.append({"path": TOKEN_PATH, "owner": "root:root", "permissions": "0600", "content": token})
    env = proxy_env(cfg)
    if env:
        files.append({"path": f"/etc/systemd/system/{k3s_service(cfg)}.service.env", "owner": "root:root",
                      "permissions": "0600", "content": env})
    data: dict[str, Any] = {
        "hostname": n.hostname,
        "preserve_hostname": False,
        "manage_etc_hosts": True,
        "disable_root": False,
        # sshd takes keys only (sshd_config.d/50-hcios.conf); "unchanged" keeps cloud-init from
        # editing sshd_config and restarting sshd late in the first boot, under open SSH sessions
        "ssh_pwauth": "unchanged",
        # host keys are made once per node and kept: cloud-init's default deletes and remakes them
        # on the instance's first boot, racing hci-ssh-keygen.service (ordered after cloud-init,
        # which only adds missing ones now), and a node's key would change under its operators
        "ssh_deletekeys": False,
        # no DSA host key (cloud-init's default list still makes one; OpenSSH disables DSA)
        "ssh_genkeytypes": ["ed25519", "ecdsa", "rsa"],
        # the image has no locales package: for its default en_US.UTF-8 cloud-init's locale module
        # fails (update-locale: invalid locale settings) and the node starts "degraded"; C.UTF-8
        # is built into libc and needs no locale-gen
        "locale": "C.UTF-8",
        "users": [root],
    }
    if n.ntp:
        data["ntp"] = {"enabled": True, "servers": list(n.ntp)}
    data["write_files"] = files
    return data


def meta_data(cfg: NodeConfig) -> dict[str, Any]:
    return {"instance-id": instance_id(cfg), "local-hostname": cfg.node.hostname}


def render_seed(cfg: NodeConfig) -> dict[str, str]:
    """File name -> text of the NoCloud seed for ``cfg``."""
    return {
        "user-data": "#cloud-config\n" + _yaml(user_data(cfg)),
        "meta-data": _yaml(meta_data(cfg)),
        "network-config": _yaml(network_config(cfg)),
    }


def write_seed(cfg: NodeConfig, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the seed files into ``out_dir`` (created 0700 if missing), each 0600, atomically."""
    out = Path(out_dir)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, text in render_seed(cfg).items():
        written.append(write_private(out / name, text))
    return written
