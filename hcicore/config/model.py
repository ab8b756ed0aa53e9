"""The node config as typed dataclasses: built from a schema-valid dict, turned back into one.

Defaults here equal the ``default`` values in ``schema.json`` (a unit test holds them together).
The plain ``node.password`` only lives between parsing and hashing: it is excluded from ``repr``,
from equality and from :func:`to_dict`; :func:`hcicore.config.load_config` replaces it with
``password_hash``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

SCHEMA_VERSION = 1

Mode = Literal["create", "join"]
Role = Literal["server", "agent", "witness"]
PowerAction = Literal["reboot", "poweroff"]
Method = Literal["dhcp", "static"]


@dataclass
class Webhooks:
    started: str | None = None
    succeeded: str | None = None
    failed: str | None = None


@dataclass
class Install:
    mode: Mode = "create"
    role: Role = "server"
    device: str | None = None
    data_device: str | None = None
    wipe: bool = False
    data_wipe: bool = False
    reinstall: bool = False
    automatic: bool = False
    skip_checks: bool = False
    config_url: str | None = None
    power_action: PowerAction = "reboot"
    installed_url: str | None = None
    webhooks: Webhooks = field(default_factory=Webhooks)


@dataclass
class Interface:
    name: str | None = None
    mac: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.mac or "?"


# The management network's devices (docs/platform.md): an OVS bridge over the NICs or their
# bond, the node address on the bridge or on its VLAN port.
MGMT_BRIDGE = "br-mgmt"
BOND_NAME = "bond0"


@dataclass
class Bond:
    mode: str = "active-backup"      # OVS: active-backup, balance-slb, 802.3ad (LACP, balance-tcp)
    miimon: int = 100
    lacp_rate: str | None = None
    primary: str | None = None


@dataclass
class Dpdk:
    nics: list[str] = field(default_factory=list)
    bridge: str = "br-data"
    hugepages: int = 1024
    socket_mem: str = "1024"


@dataclass
class Network:
    interfaces: list[Interface] = field(default_factory=list)
    method: Method = "dhcp"
    address: str | None = None
    gateway: str | None = None
    dns: list[str] = field(default_factory=list)
    vlan_id: int | None = None
    bond: Bond | None = None
    mtu: int | None = None
    dpdk: Dpdk | None = None

    @property
    def port_names(self) -> list[str]:
        """The NICs' names on the node: as given, or ``nic<index>`` for one given by MAC (the
        network config renames it so)."""
        return [nic.name or f"nic{i}" for i, nic in enumerate(self.interfaces)]

    @property
    def management_device(self) -> str | None:
        """The device with the node address: ``br-mgmt``, or its VLAN port ``br-mgmt.<id>``;
        None when no NIC is named (every NIC tries DHCP, no bridge)."""
        if not self.interfaces:
            return None
        if self.vlan_id is not None:
            return f"{MGMT_BRIDGE}.{self.vlan_id}"
        return MGMT_BRIDGE


@dataclass
class Proxy:
    http: str | None = None
    https: str | None = None
    no_proxy: str | None = None


@dataclass
class Node:
    hostname: str = ""
    password: str | None = field(default=None, repr=False, compare=False)
    password_hash: str | None = None
    ssh_authorized_keys: list[str] = field(default_factory=list)
    console: str | None = None
    network: Network = field(default_factory=Network)
    ntp: list[str] = field(default_factory=list)
    proxy: Proxy | None = None


@dataclass
class Cluster:
    server_url: str | None = None
    token: str | None = field(default=None, repr=False)
    vip: str | None = None
    pod_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: str = "10.43.0.10"
    flannel_backend: str = "vxlan"
    vrrp_router_id: int | None = None
    kubevirt_emulation: bool = False


@dataclass
class Upgrade:
    trusted_keys: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    tries: int = 3
    health_timeout: int = 600
    trial_deadline: int = 1200


@dataclass
class NodeConfig:
    install: Install = field(default_factory=Install)
    node: Node = field(default_factory=Node)
    cluster: Cluster = field(default_factory=Cluster)
    upgrade: Upgrade = field(default_factory=Upgrade)
    schema_version: int = SCHEMA_VERSION


# Nested dataclass types, by (class, field name); lists of dataclasses are marked with a 1-tuple.
_NESTED: dict[tuple[type, str], type | tuple[type]] = {
    (NodeConfig, "install"): Install,
    (NodeConfig, "node"): Node,
    (NodeConfig, "cluster"): Cluster,
    (NodeConfig, "upgrade"): Upgrade,
    (Install, "webhooks"): Webhooks,
    (Node, "network"): Network,
    (Node, "proxy"): Proxy,
    (Network, "interfaces"): (Interface,),
    (Network, "bond"): Bond,
    (Network, "dpdk"): Dpdk,
}


def _build(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        nested = _NESTED.get((cls, f.name))
        if isinstance(nested, tuple) and value is not None:
            value = [_build(nested[0], item) for item in value]
        elif isinstance(nested, type) and value is not None:
            value = _build(nested, value)
        elif isinstance(value, list):
            value = list(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> NodeConfig:
    """Build the model from a dict that satisfies ``schema.json``; absent keys take defaults."""
    return _build(NodeConfig, data)


def _plain(obj: Any, *, include_none: bool) -> Any:
    if isinstance(obj, list):
        return [_plain(v, include_none=include_none) for v in obj]
    if not hasattr(obj, "__dataclass_fields__"):
        return obj
    out: dict[str, Any] = {}
    for f in fields(obj):
        if (type(obj), f.name) == (Node, "password"):
            continue  # the plain password never leaves the model
        value = getattr(obj, f.name)
        if value is None and not include_none:
            continue
        out[f.name] = _plain(value, include_none=include_none)
    return out


def to_dict(cfg: NodeConfig, *, include_none: bool = False) -> dict[str, Any]:
    """The config as plain data, ``schema_version`` first, without the plain password."""
    body = _plain(cfg, include_none=include_none)
    return {"schema_version": body.pop("schema_version"), **body}
