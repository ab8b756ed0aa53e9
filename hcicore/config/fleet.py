"""Checks across the node configs of one cluster (``hci config validate A.yaml B.yaml ...``).

One node's file can be valid and still not join: k3s refuses a server whose critical values
(cluster and service CIDRs, cluster DNS, flannel backend) differ from the cluster's, two nodes
with one hostname or address collide, and keepalived needs the same VIP and router id on every
server. The first node that creates the cluster is the reference; each problem names the file.
Token values are compared, never printed.
"""
from __future__ import annotations

from collections.abc import Sequence

from hcicore.errors import Problem

from .model import NodeConfig

# cluster.<key> that every server and witness must share (the VIP's keys too: keepalived)
SHARED_BY_SERVERS = ("pod_cidr", "service_cidr", "cluster_dns", "flannel_backend", "vip", "vrrp_router_id")


def _address(cfg: NodeConfig) -> str | None:
    net = cfg.node.network
    return net.address.split("/")[0] if net.method == "static" and net.address else None


def _reference(nodes: Sequence[tuple[str, NodeConfig]]) -> list[Problem]:
    creators = [name for name, cfg in nodes if cfg.install.mode == "create"]
    if not creators:
        return [Problem(f"{nodes[0][0]}: install.mode", "no node in these files creates the cluster",
                        "set install.mode: create on the first server")]
    return [Problem(f"{name}: install.mode", f"is create, but {creators[0]} creates the cluster",
                    "use install.mode: join with cluster.server_url and cluster.token")
            for name in creators[1:]]


def _shared(nodes: Sequence[tuple[str, NodeConfig]], ref_name: str, ref: NodeConfig) -> list[Problem]:
    problems = []
    for name, cfg in nodes:
        if name == ref_name:
            continue
        keys = SHARED_BY_SERVERS if cfg.install.role != "agent" else ()
        for key in keys:
            mine, theirs = getattr(cfg.cluster, key), getattr(ref.cluster, key)
            if mine != theirs:
                problems.append(Problem(f"{name}: cluster.{key}", f"is {mine!r}, but {ref_name} has {theirs!r}",
                                        "use the same value on every server (k3s refuses a server whose "
                                        "critical values differ)"))
        if cfg.install.mode == "join" and ref.cluster.token is not None and cfg.cluster.token != ref.cluster.token:
            problems.append(Problem(f"{name}: cluster.token", f"differs from the token in {ref_name}",
                                    "use the cluster's token on every node"))
    return problems


def _unique(nodes: Sequence[tuple[str, NodeConfig]]) -> list[Problem]:
    problems = []
    seen: dict[tuple[str, str], str] = {}
    vips = {cfg.cluster.vip for _, cfg in nodes if cfg.cluster.vip}
    for name, cfg in nodes:
        for field, value in (("node.hostname", cfg.node.hostname), ("node.network.address", _address(cfg))):
            if value is None:
                continue
            if (field, value) in seen:
                problems.append(Problem(f"{name}: {field}", f"{value} is also in {seen[(field, value)]}",
                                        "give every node its own"))
            seen.setdefault((field, value), name)
        if _address(cfg) in vips:
            problems.append(Problem(f"{name}: node.network.address", f"{_address(cfg)} is the cluster's VIP",
                                    "give the node another address; the VIP floats between servers"))
    return problems


def fleet_problems(nodes: Sequence[tuple[str, NodeConfig]]) -> list[Problem]:
    """Problems of ``(file name, config)`` pairs taken as one cluster; empty when they fit."""
    if len(nodes) < 2:
        return []
    problems = _reference(nodes)
    ref_name, ref = next(((n, c) for n, c in nodes if c.install.mode == "create"), nodes[0])
    return problems + _shared(nodes, ref_name, ref) + _unique(nodes)
