"""Checks of the cluster section."""
from __future__ import annotations

import ipaddress

from hcicore.errors import Problem

from ..model import NodeConfig
from .parse import IPNetwork, interface, ip, network, url_problem
from .registry import check

@check("join-needs-server")
def join_needs_server_and_token(cfg: NodeConfig) -> list[Problem]:
    if cfg.install.mode != "join":
        return []
    problems = []
    if not cfg.cluster.server_url:
        problems.append(Problem("cluster.server_url", "is required to join a cluster",
                                "set the URL of an existing server, e.g. https://10.0.0.5:6443"))
    if cfg.cluster.token is None:
        problems.append(Problem("cluster.token", "is required to join a cluster",
                                "copy the token from /var/lib/rancher/k3s/server/token on a server"))
    return problems


@check("create-no-server-url")
def create_has_no_server_url(cfg: NodeConfig) -> list[Problem]:
    if cfg.install.mode == "create" and cfg.cluster.server_url:
        return [Problem("cluster.server_url", "is set, but the first server creates the cluster",
                        "remove server_url, or use install.mode: join")]
    return []


@check("server-url")
def server_url_https(cfg: NodeConfig) -> list[Problem]:
    url = cfg.cluster.server_url
    if not url:
        return []
    return url_problem("cluster.server_url", url, ("https",), "https://10.0.0.5:6443")


@check("token")
def token_not_empty(cfg: NodeConfig) -> list[Problem]:
    token = cfg.cluster.token
    if token is None:
        return []
    if not token.strip():
        return [Problem("cluster.token", "is empty", "paste the cluster token, or remove the key")]
    if any(c.isspace() for c in token):
        return [Problem("cluster.token", "contains white space", "paste the token without spaces")]
    return []


@check("cluster-cidrs")
def cluster_cidrs(cfg: NodeConfig) -> list[Problem]:
    problems = []
    nets: dict[str, IPNetwork] = {}
    for key in ("pod_cidr", "service_cidr"):
        text = getattr(cfg.cluster, key)
        try:
            nets[key] = ipaddress.ip_network(text)
        except ValueError as exc:
            problems.append(Problem(f"cluster.{key}", f"{text!r} is not a network: {exc}",
                                    "write a CIDR with no host bits, e.g. 10.42.0.0/16"))
    pod, svc = nets.get("pod_cidr"), nets.get("service_cidr")
    if pod and svc and pod.overlaps(svc):
        problems.append(Problem("cluster.service_cidr", f"overlaps pod_cidr {pod}",
                                "choose ranges that do not overlap, e.g. 10.42.0.0/16 and 10.43.0.0/16"))
    return problems


@check("cluster-dns")
def cluster_dns_in_service_cidr(cfg: NodeConfig) -> list[Problem]:
    c = cfg.cluster
    dns = ip(c.cluster_dns)
    if dns is None:
        return [Problem("cluster.cluster_dns", f"{c.cluster_dns!r} is not an IP address",
                        "use an address inside service_cidr, e.g. 10.43.0.10")]
    svc = network(c.service_cidr)
    if svc is None:
        return []  # reported by cluster-cidrs
    if dns not in svc or dns in (svc.network_address, svc.broadcast_address):
        return [Problem("cluster.cluster_dns", f"{dns} is not a host address inside service_cidr {svc}",
                        f"use an address such as {svc.network_address + 10}")]
    return []


@check("vip")
def vip_valid(cfg: NodeConfig) -> list[Problem]:
    text = cfg.cluster.vip
    if text is None:
        return []
    vip = ip(text)
    if vip is None:
        return [Problem("cluster.vip", f"{text!r} is not an IP address", "use a free address on the node's network")]
    for key in ("pod_cidr", "service_cidr"):
        net = network(getattr(cfg.cluster, key))
        if net is not None and vip in net:
            return [Problem("cluster.vip", f"{vip} is inside {key} {net}",
                            "use a free address on the node's network")]
    iface = interface(cfg.node.network.address) if cfg.node.network.method == "static" else None
    if iface is not None:
        if vip == iface.ip:
            return [Problem("cluster.vip", f"{vip} is the node's own address",
                            "use another free address on the node's network")]
        if vip not in iface.network:
            return [Problem("cluster.vip", f"{vip} is outside the node's subnet {iface.network}",
                            "use a free address in the node's subnet")]
    return []


