"""cloud-init network-config version 2 from the node's management network settings.

The management network is an Open vSwitch bridge, ``br-mgmt``, over the configured NICs (or
their OVS bond); the node address sits on the bridge, or with a VLAN on the bridge's VLAN port
``br-mgmt.<id>`` (an OVS fake bridge: an internal port with that tag). cloud-init hands version 2
to netplan unchanged, and netplan's ``openvswitch:`` renders the bridge as ``ovs-vsctl`` units
started before the network is up and the addresses as systemd-networkd files (docs/platform.md
has the choice and the alternatives).

NICs are matched by name or by MAC (a MAC-matched NIC is renamed ``nic<index>``). With DHCP and no
NIC listed, every ethernet NIC (``en*``, ``eth*``) tries DHCP on its own: no bridge, since an OVS
bridge needs its ports by name.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from hcicore.config import Bond, Network, NodeConfig
from hcicore.config.model import BOND_NAME, MGMT_BRIDGE

# OVS bond modes by the config's names; 802.3ad is LACP, hashed by L3/L4 (balance-tcp)
OVS_BOND_MODE = {"active-backup": "active-backup", "balance-slb": "balance-slb", "802.3ad": "balance-tcp"}


def _ip_settings(net: Network) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if net.method == "dhcp":
        out["dhcp4"] = True
    else:
        assert net.address and net.gateway  # guaranteed by the config checks
        out["dhcp4"] = False
        out["addresses"] = [net.address]
        default = "0.0.0.0/0" if ipaddress.ip_address(net.gateway).version == 4 else "::/0"
        out["routes"] = [{"to": default, "via": net.gateway}]
    if net.dns:
        out["nameservers"] = {"addresses": list(net.dns)}
    return out


def _ovs_bond(bond: Bond, ports: list[str], mtu: dict[str, Any]) -> dict[str, Any]:
    other: dict[str, str] = {}
    if bond.miimon:
        other.update({"bond-detect-mode": "miimon", "bond-miimon-interval": str(bond.miimon)})
    if bond.mode == "802.3ad":
        # no LACP partner (a switch not set up yet) would disable every member: fall back to
        # active-backup instead, as a kernel 802.3ad bond keeps passing traffic
        other["lacp-fallback-ab"] = "true"
    if bond.lacp_rate:
        other["lacp-time"] = bond.lacp_rate
    if bond.primary:
        other["bond-primary"] = bond.primary
    ovs: dict[str, Any] = {"lacp": "active" if bond.mode == "802.3ad" else "off"}
    if other:
        ovs["other-config"] = other
    return {"interfaces": ports, "parameters": {"mode": OVS_BOND_MODE[bond.mode]}, "openvswitch": ovs, **mtu}


def network_config(cfg: NodeConfig) -> dict[str, Any]:
    net = cfg.node.network
    mtu = {"mtu": net.mtu} if net.mtu else {}
    ethernets: dict[str, Any] = {}
    if not net.interfaces:
        for pattern in ("en*", "eth*"):
            ethernets[f"all-{pattern.rstrip('*')}"] = {"match": {"name": pattern}, **mtu, **_ip_settings(net)}
        return {"version": 2, "ethernets": ethernets}
    for key, nic in zip(net.port_names, net.interfaces):
        if nic.name:
            ethernets[key] = {"match": {"name": nic.name}}
        else:  # renamed to its key, so every renderer (netplan, eni, networkd) calls it the same
            ethernets[key] = {"match": {"macaddress": (nic.mac or "").lower()}, "set-name": key}
        ethernets[key].update({"dhcp4": False, **mtu})
        if len(net.interfaces) > 1:  # a bond member without link must not hold up network-online
            ethernets[key]["optional"] = True
    out: dict[str, Any] = {"version": 2, "ethernets": ethernets}
    ports = net.port_names
    if net.bond is not None:
        out["bonds"] = {BOND_NAME: _ovs_bond(net.bond, ports, mtu)}
        ports = [BOND_NAME]
    bridge: dict[str, Any] = {"interfaces": ports, "openvswitch": {}, **mtu}
    out["bridges"] = {MGMT_BRIDGE: bridge}
    top = bridge
    if net.vlan_id is not None:
        top = {"id": net.vlan_id, "link": MGMT_BRIDGE, **mtu}
        out["vlans"] = {net.management_device: top}
        # the untagged side of a trunk is not the node's network: no DHCP and no router
        # advertisements there (its IPv6 link-local address stays: without any address networkd
        # would not count it as online, and wait-online would hold the boot up)
        bridge.update({"dhcp4": False, "dhcp6": False, "accept-ra": False})
    top.update(_ip_settings(net))
    return out
