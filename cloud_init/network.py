"""cloud-init network-config version 2 from the node's management network settings.

NICs are matched by name or by MAC (a MAC-matched NIC is renamed ``nic<index>``). The IP settings go on the top device: the VLAN if there is
one, else the bond, else the single NIC; devices below it carry no address. With DHCP and no NIC
listed, every ethernet NIC (``en*``, ``eth*``) tries DHCP.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from hcicore.config import Bond, Network, NodeConfig

BOND_NAME = "bond0"


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


def _bond_parameters(bond: Bond) -> dict[str, Any]:
    params: dict[str, Any] = {"mode": bond.mode, "mii-monitor-interval": bond.miimon}
    if bond.lacp_rate:
        params["lacp-rate"] = bond.lacp_rate
    if bond.xmit_hash_policy:
        params["transmit-hash-policy"] = bond.xmit_hash_policy
    if bond.primary:
        params["primary"] = bond.primary
    return params


def network_config(cfg: NodeConfig) -> dict[str, Any]:
    net = cfg.node.network
    mtu = {"mtu": net.mtu} if net.mtu else {}
    ethernets: dict[str, Any] = {}
    if not net.interfaces:
        for pattern in ("en*", "eth*"):
            ethernets[f"all-{pattern.rstrip('*')}"] = {"match": {"name": pattern}, **mtu, **_ip_settings(net)}
        return {"version": 2, "ethernets": ethernets}
    names = []
    for i, nic in enumerate(net.interfaces):
        key = nic.name or f"nic{i}"
        if nic.name:
            ethernets[key] = {"match": {"name": nic.name}}
        else:  # renamed to its key, so every renderer (netplan, eni, networkd) calls it the same
            ethernets[key] = {"match": {"macaddress": (nic.mac or "").lower()}, "set-name": key}
        ethernets[key].update({"dhcp4": False, **mtu})
        names.append(key)
    out: dict[str, Any] = {"version": 2, "ethernets": ethernets}
    top = names[0]
    if net.bond is not None:
        out["bonds"] = {BOND_NAME: {"interfaces": names, "parameters": _bond_parameters(net.bond),
                                    "dhcp4": False, **mtu}}
        top = BOND_NAME
    if net.vlan_id is not None:
        name = f"vlan{net.vlan_id}"
        out["vlans"] = {name: {"id": net.vlan_id, "link": top, **mtu}}
        top = name
    section = "vlans" if net.vlan_id is not None else "bonds" if net.bond is not None else "ethernets"
    out[section][top].update(_ip_settings(net))
    return out
