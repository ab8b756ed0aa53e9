"""The k3s configuration of a node (``/etc/rancher/k3s/config.yaml``) from its node config.

server + create: first server, ``cluster-init`` (embedded etcd) so more servers can join.
server + join:   another server of the cluster at ``server``.
witness:         a server that only runs etcd (no API server, controller manager or scheduler),
                 tainted so no workload lands on it.
agent:           a worker joining ``server``; agents take no cluster-wide options.

The token never sits in ``config.yaml``: it goes to ``token-file`` (``TOKEN_PATH``, 0600), so the
config can be shown and copied without leaking the join secret. Every server of a cluster renders
the same critical values (``CRITICAL_KEYS``: k3s refuses a server whose values differ), and
``hci config validate`` checks them across the nodes' files. k3s's documented flags are pinned in
``tests/data/k3s-flags.yaml``; a unit test holds every key rendered here against them.
"""
from __future__ import annotations

from typing import Any

from hcicore.config import NodeConfig

CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
TOKEN_PATH = "/etc/rancher/k3s/token"
# k3s's "critical configuration values" this config sets: equal on every server (and witness)
CRITICAL_KEYS = ("cluster-cidr", "service-cidr", "cluster-dns", "flannel-backend")
ROLE_LABEL = "hcios.io/role"


def k3s_service(cfg: NodeConfig) -> str:
    """The systemd unit that runs this node's k3s: ``k3s`` (server, witness) or ``k3s-agent``."""
    return "k3s-agent" if cfg.install.role == "agent" else "k3s"


def k3s_config(cfg: NodeConfig) -> dict[str, Any]:
    c, role = cfg.cluster, cfg.install.role
    out: dict[str, Any] = {"node-name": cfg.node.hostname,
                           "node-label": [f"{ROLE_LABEL}={role}"]}
    if cfg.node.network.method == "static" and cfg.node.network.address:
        out["node-ip"] = [cfg.node.network.address.split("/")[0]]
    if cfg.install.mode == "create":
        out["cluster-init"] = True
    else:
        out["server"] = c.server_url
    if c.token is not None:
        out["token-file"] = TOKEN_PATH
    if role == "agent":
        return out
    out["cluster-cidr"] = c.pod_cidr
    out["service-cidr"] = c.service_cidr
    out["cluster-dns"] = c.cluster_dns
    out["flannel-backend"] = c.flannel_backend
    if c.vip:
        out["tls-san"] = [c.vip]
    if role == "witness":
        out.update({"disable-apiserver": True, "disable-controller-manager": True,
                    "disable-scheduler": True,
                    "node-taint": ["node-role.kubernetes.io/etcd=true:NoExecute"]})
    return out


def k3s_token(cfg: NodeConfig) -> str | None:
    """The text of ``TOKEN_PATH`` (one line), or None when k3s makes its own (create, no token)."""
    return None if cfg.cluster.token is None else cfg.cluster.token + "\n"
