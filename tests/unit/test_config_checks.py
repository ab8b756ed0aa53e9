"""Every semantic check of the node config, one bad example each, with the exact field path."""
from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hcicore.config import CHECKS, load_config
from hcicore.errors import ValidationError

from .config_cases import DELETE, ED25519, good, with_

pytestmark = pytest.mark.unit

DHCP = {"interfaces": [{"name": "eth0"}], "method": "dhcp"}
STATIC = {"interfaces": [{"name": "eth0"}], "method": "static", "address": "192.168.10.11/24",
          "gateway": "192.168.10.1"}
TWO_NICS = [{"name": "eth0"}, {"name": "eth1"}]


def _join(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = with_(cfg, "install.mode", "join")
    return with_(cfg, "cluster.server_url", "https://10.0.0.5:6443")


def _no_login(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = with_(cfg, "node.password_hash", DELETE)
    return with_(cfg, "node.ssh_authorized_keys", [])


# (check name, id, bad config, expected problem path, a word the message contains)
RSA_PUBLIC_PEM = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("hostname", "missing", with_(good(), "node.hostname", DELETE), "node.hostname", "required"),
    ("hostname", "upper-underscore", with_(good(), "node.hostname", "Node_1"), "node.hostname", "RFC 1123"),
    ("hostname", "leading-dash", with_(good(), "node.hostname", "-node"), "node.hostname", "RFC 1123"),
    ("hostname", "label-too-long", with_(good(), "node.hostname", "a" * 64), "node.hostname", "RFC 1123"),
    ("login-credential", "none", _no_login(good()), "node.password", "no way to log in"),
    ("password-or-hash", "both", with_(good(), "node.password", "pw"), "node.password", "both"),
    ("password-plain", "empty", with_(with_(good(), "node.password_hash", DELETE), "node.password", ""),
     "node.password", "empty"),
    ("password-plain", "newline", with_(with_(good(), "node.password_hash", DELETE), "node.password", "a\nb"),
     "node.password", "line break"),
    ("password-hash-format", "md5", with_(good(), "node.password_hash", "$1$abc$def"),
     "node.password_hash", "sha512-crypt"),
    ("password-hash-format", "plain-text", with_(good(), "node.password_hash", "hunter2"),
     "node.password_hash", "sha512-crypt"),
    ("console", "not-console", with_(good(), "node.console", "ttyS1,115200"), "node.console", "console= arguments"),
    ("console", "bad-device", with_(good(), "node.console", "console=tty0 console=/dev/ttyS1"), "node.console",
     "console= arguments"),
    ("ssh-keys", "not-a-key", with_(good(), "node.ssh_authorized_keys", [ED25519, "hello"]),
     "node.ssh_authorized_keys[1]", "not an SSH public key"),
    ("ssh-keys", "wrong-type", with_(good(), "node.ssh_authorized_keys", [ED25519.replace("AAAAC3Nz", "AAAAB3Nz")]),
     "node.ssh_authorized_keys[0]", "damaged"),
    ("ssh-keys", "truncated", with_(good(), "node.ssh_authorized_keys", [ED25519[:30]]),
     "node.ssh_authorized_keys[0]", "damaged"),
    ("devices", "relative", with_(good(), "install.device", "vda"), "install.device", "not a device path"),
    ("device-differs", "same", with_(good(), "install.data_device", "/dev/vda"), "install.data_device",
     "install disk"),
    ("automatic-needs-device", "no-device", with_(good(), "install.device", DELETE), "install.device",
     "automatic"),
    ("config-url", "ftp", with_(good(), "install.config_url", "ftp://h/x.yaml"), "install.config_url", "http"),
    ("webhooks", "no-scheme", with_(good(), "install.webhooks", {"failed": "hooks.example/x"}),
     "install.webhooks.failed", "http"),
    ("role-mode", "agent-create", with_(good(), "install.role", "agent"), "install.role", "cannot create"),
    ("join-needs-server", "no-url", with_(good(), "install.mode", "join"), "cluster.server_url", "required"),
    ("join-needs-server", "no-token", with_(_join(good()), "cluster.token", DELETE), "cluster.token", "required"),
    ("create-no-server-url", "url", with_(good(), "cluster.server_url", "https://10.0.0.5:6443"),
     "cluster.server_url", "creates the cluster"),
    ("server-url", "http", with_(_join(good()), "cluster.server_url", "http://10.0.0.5:6443"),
     "cluster.server_url", "https://"),
    ("server-url", "bad-port", with_(_join(good()), "cluster.server_url", "https://10.0.0.5:99999"),
     "cluster.server_url", "not a valid URL"),
    ("token", "blank", with_(good(), "cluster.token", "  "), "cluster.token", "empty"),
    ("cluster-cidrs", "host-bits", with_(good(), "cluster.pod_cidr", "10.42.0.1/16"), "cluster.pod_cidr",
     "not a network"),
    ("cluster-cidrs", "overlap", with_(good(), "cluster.pod_cidr", "10.43.0.0/17"), "cluster.service_cidr",
     "overlaps"),
    ("cluster-dns", "outside", with_(good(), "cluster.cluster_dns", "10.42.0.10"), "cluster.cluster_dns",
     "inside service_cidr"),
    ("cluster-dns", "not-ip", with_(good(), "cluster.cluster_dns", "dns.local"), "cluster.cluster_dns",
     "not an IP"),
    ("vip", "not-ip", with_(good(), "cluster.vip", "vip.example"), "cluster.vip", "not an IP"),
    ("vip", "in-pod-cidr", with_(good(), "cluster.vip", "10.42.1.1"), "cluster.vip", "pod_cidr"),
    ("vip", "outside-subnet", with_(good(), "cluster.vip", "192.168.11.100"), "cluster.vip", "outside"),
    ("vip", "own-address", with_(good(), "cluster.vip", "192.168.10.11"), "cluster.vip", "own address"),
    ("interfaces", "both", with_(good(), "node.network.interfaces", [{"name": "eth0", "mac": "52:54:00:00:00:01"}]),
     "node.network.interfaces[0]", "exactly one"),
    ("interfaces", "neither", with_(good(), "node.network.interfaces", [{}]), "node.network.interfaces[0]",
     "exactly one"),
    ("interfaces", "bad-mac", with_(good(), "node.network.interfaces", [{"mac": "52:54:00:00:00"}]),
     "node.network.interfaces[0].mac", "not a MAC"),
    ("interfaces", "bad-name", with_(good(), "node.network.interfaces", [{"name": "a very long nic name"}]),
     "node.network.interfaces[0].name", "not an interface name"),
    ("interfaces", "duplicate", with_(with_(good(), "node.network.interfaces", TWO_NICS[:1] * 2),
                                      "node.network.bond", {}), "node.network.interfaces[1]", "twice"),
    ("interfaces", "reserved", with_(good(), "node.network.interfaces", [{"name": "br-mgmt.7"}]),
     "node.network.interfaces[0].name", "hcios gives its own devices"),
    ("interfaces", "renamed-clash", with_(with_(good(), "node.network.interfaces",
                                                [{"mac": "52:54:00:00:00:01"}, {"name": "nic0"}]),
                                          "node.network.bond", {}), "node.network.interfaces[1].name",
     "the NIC given by MAC gets"),
    ("dpdk", "bridge-vlan-port", with_(good(), "node.network.dpdk", {"nics": ["0000:3b:00.0"], "bridge": "br-mgmt.5"}),
     "node.network.dpdk.bridge", "cannot be the data bridge"),
    ("dpdk", "bad-pci", with_(good(), "node.network.dpdk", {"nics": ["3b:00.0"]}), "node.network.dpdk.nics[0]",
     "not a PCI address"),
    ("static-needs-address", "no-address", with_(good(), "node.network.address", DELETE),
     "node.network.address", "required"),
    ("static-needs-address", "no-gateway", with_(good(), "node.network.gateway", DELETE),
     "node.network.gateway", "required"),
    ("static-needs-address", "no-interface", with_(good(), "node.network.interfaces", []),
     "node.network.interfaces", "empty"),
    ("dhcp-no-static-fields", "address", with_(with_(good(), "node.network", dict(DHCP, address="192.168.10.11/24")),
                                                "cluster.vip", DELETE), "node.network.address", "dhcp"),
    ("address", "no-prefix", with_(good(), "node.network.address", "192.168.10.11"), "node.network.address",
     "CIDR"),
    ("address", "network-address", with_(good(), "node.network.address", "192.168.10.0/24"),
     "node.network.address", "network or broadcast"),
    ("gateway-in-subnet", "outside", with_(good(), "node.network.gateway", "192.168.11.1"),
     "node.network.gateway", "outside the subnet"),
    ("gateway-in-subnet", "not-ip", with_(good(), "node.network.gateway", "router"), "node.network.gateway",
     "not an IP"),
    ("node-address-vs-cluster", "overlap",
     with_(with_(with_(good(), "node.network", dict(STATIC, address="10.43.5.5/16", gateway="10.43.0.1")),
                 "cluster.vip", DELETE), "cluster.cluster_dns", "10.43.0.10"),
     "node.network.address", "overlaps cluster.service_cidr"),
    ("dns", "name", with_(good(), "node.network.dns", ["1.1.1.1", "dns.google"]), "node.network.dns[1]",
     "not an IP"),
    ("bond", "one-nic", with_(good(), "node.network.bond", {"mode": "802.3ad"}), "node.network.interfaces",
     "at least 2"),
    ("bond", "two-nics-no-bond", with_(good(), "node.network.interfaces", TWO_NICS), "node.network.bond",
     "without a bond"),
    ("bond", "lacp-rate", with_(with_(good(), "node.network.interfaces", TWO_NICS), "node.network.bond",
                                {"lacp_rate": "fast"}), "node.network.bond.lacp_rate", "802.3ad"),
    ("bond", "primary-slb", with_(with_(good(), "node.network.interfaces", TWO_NICS), "node.network.bond",
                                  {"mode": "balance-slb", "primary": "eth0"}), "node.network.bond.primary",
     "does not apply"),
    ("bond", "primary-unknown", with_(with_(good(), "node.network.interfaces", TWO_NICS), "node.network.bond",
                                      {"primary": "eth7"}), "node.network.bond.primary", "not one of"),
    ("vlan-id", "zero", with_(good(), "node.network.vlan_id", 0), "node.network.vlan_id", "out of range"),
    ("vlan-id", "4095", with_(good(), "node.network.vlan_id", 4095), "node.network.vlan_id", "out of range"),
    ("mtu", "small", with_(good(), "node.network.mtu", 500), "node.network.mtu", "out of range"),
    ("mtu", "jumbo", with_(good(), "node.network.mtu", 9217), "node.network.mtu", "out of range"),
    ("ntp", "bad", with_(good(), "node.ntp", ["pool.ntp.org", "bad host"]), "node.ntp[1]", "not a host"),
    ("upgrade-trusted-keys", "not-pem", with_(good(), "upgrade.trusted_keys", ["ssh-ed25519 AAAA"]),
     "upgrade.trusted_keys[0]", "P-256"),
    ("upgrade-trusted-keys", "rsa-key", with_(good(), "upgrade.trusted_keys", [RSA_PUBLIC_PEM]),
     "upgrade.trusted_keys[0]", "P-256"),
    ("upgrade-insecure-registries", "url", with_(good(), "upgrade.insecure_registries", ["http://10.0.0.5:5000"]),
     "upgrade.insecure_registries[0]", "HOST:PORT"),
    ("upgrade-deadline", "shorter", with_(with_(good(), "upgrade.health_timeout", 900), "upgrade.trial_deadline", 600),
     "upgrade.trial_deadline", "health_timeout"),
    ("proxy", "scheme", with_(good(), "node.proxy", {"http": "proxy:3128"}), "node.proxy.http", "must start with http"),
    ("proxy", "socks", with_(good(), "node.proxy", {"https": "socks5://proxy:1080"}), "node.proxy.https", "http"),
    ("proxy", "no-proxy-space", with_(good(), "node.proxy", {"no_proxy": "localhost 10.0.0.0/8"}),
     "node.proxy.no_proxy", "white space"),
]


def _problems(data: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        load_config(data, source="test")
    return info.value.problems


def test_good_config_passes_every_check() -> None:
    cfg = load_config(good(), source="test")
    assert cfg.node.hostname == "node1"
    for name, fn in CHECKS.items():
        assert fn(cfg) == [], name


@pytest.mark.parametrize(("name", "data", "path", "word"), [pytest.param(n, d, p, w, id=f"{n}:{i}")
                                                             for n, i, d, p, w in CASES])
def test_check_reports_exact_path(name: str, data: dict[str, Any], path: str, word: str) -> None:
    problems = _problems(data)
    assert [p.path for p in problems] == [path], problems
    assert word in problems[0].message
    assert problems[0].fix, "every problem says how to fix it"
    # The registered check itself finds it, not another one.
    from hcicore.config.io import from_dict
    assert [p.path for p in CHECKS[name](from_dict(data))] == [path]


def test_every_registered_check_has_a_case() -> None:
    assert set(CHECKS) == {c[0] for c in CASES}


def test_all_problems_at_once_one_line_each() -> None:
    data = with_(good(), "node.hostname", "Bad_Name")
    data = with_(data, "node.network.gateway", "10.9.9.9")
    data = with_(data, "node.network.mtu", 10)
    data = with_(data, "install.data_device", "/dev/vda")
    problems = _problems(data)
    assert sorted(p.path for p in problems) == ["install.data_device", "node.hostname",
                                                "node.network.gateway", "node.network.mtu"]
    for p in problems:
        assert str(p).startswith(f"error: {p.path}: ") and str(p).endswith(")") and "\n" not in str(p)


def test_join_agent_with_server_and_token_is_fine() -> None:
    data = _join(good())
    data = with_(data, "install.role", "agent")
    data = with_(data, "node.network", DHCP)
    data = with_(data, "cluster.vip", DELETE)
    cfg = load_config(data, source="test")
    assert (cfg.install.mode, cfg.install.role) == ("join", "agent")
