"""Semantic checks of a node config, run after the schema: each is a small named function.

A check takes the model and returns its problems (empty when fine). ``CHECKS`` lists them by
name in registration order; :func:`run_checks` runs all of them and returns every problem.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from hcicore.errors import Problem

from .model import NodeConfig

Check = Callable[[NodeConfig], list[Problem]]
CHECKS: dict[str, Check] = {}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
CRYPT_HASH = re.compile(r"^(\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}"
                        r"|\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43})$")
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
                 "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-dss")
MTU_RANGE = (576, 9216)
VLAN_RANGE = (1, 4094)
BOND_XMIT_MODES = ("balance-xor", "802.3ad", "balance-tlb")
BOND_PRIMARY_MODES = ("active-backup", "balance-tlb", "balance-alb")


def check(name: str) -> Callable[[Check], Check]:
    """Register a semantic check under ``name``."""
    def reg(fn: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"duplicate config check {name}")
        CHECKS[name] = fn
        return fn
    return reg


def run_checks(cfg: NodeConfig) -> list[Problem]:
    problems: list[Problem] = []
    for fn in CHECKS.values():
        problems.extend(fn(cfg))
    return problems


# ---- parsing helpers: None when the text is not valid ------------------------------------------
def _ip(text: str | None) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text) if text else None
    except ValueError:
        return None


def _network(text: str | None) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text) if text else None
    except ValueError:
        return None


def _interface(text: str | None) -> IPInterface | None:
    if not text or "/" not in text:
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def _url_problem(path: str, url: str, schemes: tuple[str, ...], example: str) -> list[Problem]:
    """A problem when ``url`` is not an absolute URL with one of ``schemes`` and a host."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or not port_ok or any(c.isspace() for c in url):
        return [Problem(path, f"{url!r} is not a valid URL", f"write it like {example}")]
    if parts.scheme not in schemes:
        want = " or ".join(f"{s}://" for s in schemes)
        return [Problem(path, f"{url!r} must start with {want}", f"write it like {example}")]
    if not parts.hostname:
        return [Problem(path, f"{url!r} has no host", f"write it like {example}")]
    return []


def _is_host(text: str) -> bool:
    """A host name (RFC 1123, any case) or an IP address."""
    if _ip(text):
        return True
    labels = text.rstrip(".").lower().split(".")
    return len(text) <= 253 and all(HOSTNAME_LABEL.match(label) for label in labels)


# ---- node identity and login -------------------------------------------------------------------
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


# ---- install -----------------------------------------------------------------------------------
@check("devices")
def devices_are_paths(cfg: NodeConfig) -> list[Problem]:
    problems = []
    for key in ("device", "data_device"):
        dev = getattr(cfg.install, key)
        if dev is not None and not re.match(r"^/dev/[^\s]+$", dev):
            problems.append(Problem(f"install.{key}", f"{dev!r} is not a device path",
                                    "use a path under /dev, e.g. /dev/vda or /dev/disk/by-id/..."))
    return problems


@check("device-differs")
def device_differs_from_data_device(cfg: NodeConfig) -> list[Problem]:
    i = cfg.install
    if i.device is not None and i.device == i.data_device:
        return [Problem("install.data_device", f"is the install disk {i.device}",
                        "name a different disk, or remove data_device")]
    return []


@check("automatic-needs-device")
def automatic_needs_device(cfg: NodeConfig) -> list[Problem]:
    if cfg.install.automatic and not cfg.install.device:
        return [Problem("install.device", "is required for an automatic install",
                        "set install.device (hci.install.device=/dev/... on the kernel command line)")]
    return []


@check("config-url")
def config_url_http(cfg: NodeConfig) -> list[Problem]:
    url = cfg.install.config_url
    if url is None:
        return []
    return _url_problem("install.config_url", url, ("http", "https"), "https://host/node1.yaml")


@check("webhooks")
def webhooks_http(cfg: NodeConfig) -> list[Problem]:
    problems = []
    for event in ("started", "succeeded", "failed"):
        url = getattr(cfg.install.webhooks, event)
        if url is not None:
            problems += _url_problem(f"install.webhooks.{event}", url, ("http", "https"),
                                     "https://host/hooks/install")
    return problems


@check("role-mode")
def role_needs_join(cfg: NodeConfig) -> list[Problem]:
    i = cfg.install
    if i.mode == "create" and i.role != "server":
        return [Problem("install.role", f"a {i.role} cannot create a cluster",
                        "use install.mode: join, or role: server for the first node")]
    return []


# ---- cluster -----------------------------------------------------------------------------------
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
    return _url_problem("cluster.server_url", url, ("https",), "https://10.0.0.5:6443")


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
    dns = _ip(c.cluster_dns)
    if dns is None:
        return [Problem("cluster.cluster_dns", f"{c.cluster_dns!r} is not an IP address",
                        "use an address inside service_cidr, e.g. 10.43.0.10")]
    svc = _network(c.service_cidr)
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
    vip = _ip(text)
    if vip is None:
        return [Problem("cluster.vip", f"{text!r} is not an IP address", "use a free address on the node's network")]
    for key in ("pod_cidr", "service_cidr"):
        net = _network(getattr(cfg.cluster, key))
        if net is not None and vip in net:
            return [Problem("cluster.vip", f"{vip} is inside {key} {net}",
                            "use a free address on the node's network")]
    iface = _interface(cfg.node.network.address) if cfg.node.network.method == "static" else None
    if iface is not None:
        if vip == iface.ip:
            return [Problem("cluster.vip", f"{vip} is the node's own address",
                            "use another free address on the node's network")]
        if vip not in iface.network:
            return [Problem("cluster.vip", f"{vip} is outside the node's subnet {iface.network}",
                            "use a free address in the node's subnet")]
    return []


# ---- network -----------------------------------------------------------------------------------
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
    return problems


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
    iface = _interface(text)
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
    gw = _ip(net.gateway)
    if gw is None:
        return [Problem("node.network.gateway", f"{net.gateway!r} is not an IP address",
                        "write the gateway's address, e.g. 192.168.1.1")]
    iface = _interface(net.address)
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
    iface = _interface(cfg.node.network.address)
    if iface is None:
        return []
    for key in ("pod_cidr", "service_cidr"):
        net = _network(getattr(cfg.cluster, key))
        if net is not None and iface.network.overlaps(net):
            return [Problem("node.network.address", f"subnet {iface.network} overlaps cluster.{key} {net}",
                            f"change cluster.{key} so it does not overlap the node network")]
    return []


@check("dns")
def dns_are_ips(cfg: NodeConfig) -> list[Problem]:
    return [Problem(f"node.network.dns[{i}]", f"{s!r} is not an IP address", "write a name server's IP")
            for i, s in enumerate(cfg.node.network.dns) if _ip(s) is None]


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
    if bond.xmit_hash_policy is not None and bond.mode not in BOND_XMIT_MODES:
        problems.append(Problem("node.network.bond.xmit_hash_policy", f"does not apply to mode {bond.mode}",
                                f"remove it or use one of {', '.join(BOND_XMIT_MODES)}"))
    if bond.primary is not None:
        names = [n.name for n in net.interfaces if n.name]
        if bond.mode not in BOND_PRIMARY_MODES:
            problems.append(Problem("node.network.bond.primary", f"does not apply to mode {bond.mode}",
                                    f"remove it or use one of {', '.join(BOND_PRIMARY_MODES)}"))
        elif bond.primary not in names:
            problems.append(Problem("node.network.bond.primary", f"{bond.primary!r} is not one of the interfaces",
                                    f"use one of: {', '.join(names) or '(interfaces given by name)'}"))
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
            for i, s in enumerate(cfg.node.ntp) if not _is_host(s)]


@check("proxy")
def proxy_urls(cfg: NodeConfig) -> list[Problem]:
    proxy = cfg.node.proxy
    if proxy is None:
        return []
    problems = []
    for key in ("http", "https"):
        url = getattr(proxy, key)
        if url is not None:
            problems += _url_problem(f"node.proxy.{key}", url, ("http", "https"), "http://proxy.example:3128")
    if proxy.no_proxy is not None and any(c.isspace() for c in proxy.no_proxy.replace(", ", ",")):
        problems.append(Problem("node.proxy.no_proxy", "contains white space inside an entry",
                                "separate entries with commas, e.g. localhost,127.0.0.1,10.0.0.0/8"))
    return problems
