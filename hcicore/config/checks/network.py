"""Checks of the node network (and time, proxy) settings."""
from __future__ import annotations

import re

from hcicore.errors import Problem

from ..model import BOND_NAME, MGMT_BRIDGE, NodeConfig
from .parse import interface, ip, is_host, network, url_problem
from .registry import check

MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
MTU_RANGE = (576, 9216)
VLAN_RANGE = (1, 4094)

@check("interfaces")
def interfaces_name_xor_mac(cfg: NodeConfig) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, nic in enumerate(cfg.node.network.interfaces):
        path = f"node.network.interfaces[{i}]"
        if (nic.name is None) == (nic.mac is None):
            problems.append(Problem(path, "needs exactly one of name or mac",
                                    "give the NIC's name (eth0) or its MAC address, not both"))
            continue
        if nic.mac is not None and not MAC.match(nic.mac):
            problems.append(Problem(f"{path}.mac", f"{nic.mac!r} is not a MAC address",
                                    "write six hex pairs separated by ':', e.g. 52:54:00:12:34:56"))
            continue
        if nic.name is not None and not IFNAME.match(nic.name):
            problems.append(Problem(f"{path}.name", f"{nic.name!r} is not an interface name",
                                    "use the kernel name, 1-15 characters, e.g. eth0 or enp1s0"))
            continue
        key = (nic.name or "") + (nic.mac or "").lower()
        if key in seen:
            problems.append(Problem(path, f"{nic.label} is listed twice", "list each NIC once"))
        seen.add(key)
        if nic.name is not None and is_reserved_name(nic.name):
            problems.append(Problem(f"{path}.name", f"{nic.name!r} is a name hcios gives its own devices",
                                    f"name a NIC, not {MGMT_BRIDGE}, its VLAN ports or {BOND_NAME}"))
    ifaces = cfg.node.network.interfaces
    renamed = {f"nic{j}" for j, nic in enumerate(ifaces) if nic.name is None and nic.mac is not None}
    for i, nic in enumerate(ifaces):  # a NIC given by MAC is renamed nic<index>
        if nic.name is not None and nic.name in renamed:
            problems.append(Problem(f"node.network.interfaces[{i}].name",
                                    f"{nic.name!r} is also the name the NIC given by MAC gets",
                                    "give that NIC by MAC too, or by its own name"))
    return problems


def is_reserved_name(name: str) -> bool:
    """br-mgmt, its VLAN ports br-mgmt.<id>, the bond, and OVS's own datapath device."""
    return name in (MGMT_BRIDGE, BOND_NAME, "ovs-system") or name.startswith(f"{MGMT_BRIDGE}.")


@check("static-needs-address")
def static_needs_address_and_gateway(cfg: NodeConfig) -> list[Problem]:
    net = cfg.node.network
    if net.method != "static":
        return []
    problems = []
    if not net.address:
        problems.append(Problem("node.network.address", "is required with method static",
                                "set an address in CIDR form, e.g. 192.168.1.10/24"))
    if not net.gateway:
        problems.append(Problem("node.network.gateway", "is required with method static",
                                "set the default gateway, e.g. 192.168.1.1"))
    if not net.interfaces:
        problems.append(Problem("node.network.interfaces", "is empty with method static",
                                "name the NIC that carries the address (name or mac)"))
    return problems


@check("dhcp-no-static-fields")
def dhcp_has_no_address(cfg: NodeConfig) -> list[Problem]:
    net = cfg.node.network
    if net.method != "dhcp":
        return []
    return [Problem(f"node.network.{key}", "is set but method is dhcp",
                    "remove it, or set node.network.method: static")
            for key in ("address", "gateway") if getattr(net, key) is not None]


@check("address")
def address_is_cidr(cfg: NodeConfig) -> list[Problem]:
    text = cfg.node.network.address
    if text is None:
        return []
    iface = interface(text)
    if iface is None:
        return [Problem("node.network.address", f"{text!r} is not an address in CIDR form",
                        "write address/prefix, e.g. 192.168.1.10/24")]
    net = iface.network
    if net.num_addresses > 2 and iface.ip in (net.network_address, net.broadcast_address):
        return [Problem("node.network.address", f"{iface.ip} is the network or broadcast address of {net}",
                        "use a host address inside the subnet")]
    return []


@check("gateway-in-subnet")
def gateway_in_subnet(cfg: NodeConfig) -> list[Problem]:
    net = cfg.node.network
    if net.gateway is None:
        return []
    gw = ip(net.gateway)
    if gw is None:
        return [Problem("node.network.gateway", f"{net.gateway!r} is not an IP address",
                        "write the gateway's address, e.g. 192.168.1.1")]
    iface = interface(net.address)
    if iface is None:
        return []
    if gw not in iface.network:
        return [Problem("node.network.gateway", f"{gw} is outside the subnet {iface.network} of the address",
                        "use a gateway inside the subnet, or fix the address's prefix length")]
    if gw == iface.ip:
        return [Problem("node.network.gateway", f"{gw} is the node's own address",
                        "set the router's address")]
    return []


@check("node-address-vs-cluster")
def node_address_outside_cluster_cidrs(cfg: NodeConfig) -> list[Problem]:
    iface = interface(cfg.node.network.address)
    if iface is None:
        return []
    for key in ("pod_cidr", "service_cidr"):
        net = network(getattr(cfg.cluster, key))
        if net is not None and iface.network.overlaps(net):
            return [Problem("node.network.address", f"subnet {iface.network} overlaps cluster.{key} {net}",
                            f"change cluster.{key} so it does not overlap the node network")]
    return []


@check("dns")
def dns_are_ips(cfg: NodeConfig) -> list[Problem]:
    return [Problem(f"node.network.dns[{i}]", f"{s!r} is not an IP address", "write a name server's IP")
            for i, s in enumerate(cfg.node.network.dns) if ip(s) is None]


@check("bond")
def bond_settings(cfg: NodeConfig) -> list[Problem]:
    net = cfg.node.network
    bond = net.bond
    if bond is None:
        if len(net.interfaces) > 1:
            return [Problem("node.network.bond", f"{len(net.interfaces)} interfaces are listed without a bond",
                            "add node.network.bond, or list one interface")]
        return []
    problems = []
    if len(net.interfaces) < 2:
        problems.append(Problem("node.network.interfaces", "a bond needs at least 2 interfaces",
                                "list two or more NICs, or remove node.network.bond"))
    if bond.lacp_rate is not None and bond.mode != "802.3ad":
        problems.append(Problem("node.network.bond.lacp_rate", f"only applies to mode 802.3ad, not {bond.mode}",
                                "remove lacp_rate or use mode 802.3ad"))
    if bond.primary is not None:
        names = net.port_names
        if bond.mode != "active-backup":
            problems.append(Problem("node.network.bond.primary", f"does not apply to mode {bond.mode}",
                                    "remove it or use mode active-backup"))
        elif bond.primary not in names:
            problems.append(Problem("node.network.bond.primary", f"{bond.primary!r} is not one of the interfaces",
                                    f"use one of: {', '.join(names)} (a NIC given by MAC is nic<index>)"))
    return problems


@check("vlan-id")
def vlan_id_range(cfg: NodeConfig) -> list[Problem]:
    vid = cfg.node.network.vlan_id
    lo, hi = VLAN_RANGE
    if vid is not None and not lo <= vid <= hi:
        return [Problem("node.network.vlan_id", f"{vid} is out of range", f"use a VLAN id from {lo} to {hi}")]
    return []


@check("mtu")
def mtu_range(cfg: NodeConfig) -> list[Problem]:
    mtu = cfg.node.network.mtu
    lo, hi = MTU_RANGE
    if mtu is not None and not lo <= mtu <= hi:
        return [Problem("node.network.mtu", f"{mtu} is out of range", f"use {lo}..{hi} (1500 is usual)")]
    return []


@check("ntp")
def ntp_hosts(cfg: NodeConfig) -> list[Problem]:
    return [Problem(f"node.ntp[{i}]", f"{s!r} is not a host name or IP address", "e.g. 0.pool.ntp.org")
            for i, s in enumerate(cfg.node.ntp) if not is_host(s)]


@check("proxy")
def proxy_urls(cfg: NodeConfig) -> list[Problem]:
    proxy = cfg.node.proxy
    if proxy is None:
        return []
    problems = []
    for key in ("http", "https"):
        url = getattr(proxy, key)
        if url is not None:
            problems += url_problem(f"node.proxy.{key}", url, ("http", "https"), "http://proxy.example:3128")
    if proxy.no_proxy is not None and any(c.isspace() for c in proxy.no_proxy.replace(", ", ",")):
        problems.append(Problem("node.proxy.no_proxy", "contains white space inside an entry",
                                "separate entries with commas, e.g. localhost,127.0.0.1,10.0.0.0/8"))
    return problems


PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
SOCKET_MEM = re.compile(r"^\d+(,\d+)*$")


@check("dpdk")
def dpdk_nics_and_memory(cfg: NodeConfig) -> list[Problem]:
    dpdk = cfg.node.network.dpdk
    if dpdk is None:
        return []
    problems = []
    for i, nic in enumerate(dpdk.nics):
        if not PCI_ADDRESS.match(nic):
            problems.append(Problem(f"node.network.dpdk.nics[{i}]", f"{nic!r} is not a PCI address",
                                    "write domain:bus:device.function in lower-case hex, e.g. 0000:3b:00.0 "
                                    "(lspci -D shows it)"))
    if len(set(dpdk.nics)) != len(dpdk.nics):
        problems.append(Problem("node.network.dpdk.nics", "lists a NIC twice", "list each PCI address once"))
    if not IFNAME.match(dpdk.bridge) or is_reserved_name(dpdk.bridge):
        problems.append(Problem("node.network.dpdk.bridge", f"{dpdk.bridge!r} cannot be the data bridge",
                                "use an interface name of 1-15 characters other than br-mgmt, its VLAN ports or bond0, e.g. br-data"))
    if not SOCKET_MEM.match(dpdk.socket_mem):
        problems.append(Problem("node.network.dpdk.socket_mem", f"{dpdk.socket_mem!r} is not a memory list",
                                "give MiB per NUMA node, comma-separated, e.g. 1024 or 1024,1024"))
    elif sum(int(x) for x in dpdk.socket_mem.split(",")) > dpdk.hugepages * 2:
        problems.append(Problem("node.network.dpdk.socket_mem",
                                f"asks for {dpdk.socket_mem} MiB but hugepages reserve {dpdk.hugepages * 2} MiB",
                                "raise node.network.dpdk.hugepages (2 MiB each) or lower socket_mem"))
    return problems
