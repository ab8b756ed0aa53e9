"""NoCloud seed rendered from node configs, parsed back and checked."""
from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_init import instance_id, render_seed, write_seed
from hcicore.config import load_config, load_config_file

from .config_cases import ED25519, EXAMPLES, HASH, good, with_

pytestmark = pytest.mark.unit


def _seed(data: dict[str, Any]) -> dict[str, Any]:
    texts = render_seed(load_config(data, source="t"))
    assert texts["user-data"].startswith("#cloud-config\n")
    return {name: yaml.safe_load(text) for name, text in texts.items()}


def _k3s(user_data: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [f for f in user_data["write_files"] if f["path"] == "/etc/rancher/k3s/config.yaml"]
    assert entry["permissions"] == "0600"
    return yaml.safe_load(entry["content"])


def test_user_data_identity_and_login() -> None:
    ud = _seed(good())["user-data"]
    assert ud["hostname"] == "node1"
    (root,) = ud["users"]
    assert root == {"name": "root", "lock_passwd": False, "hashed_passwd": HASH, "ssh_authorized_keys": [ED25519]}
    assert ud["disable_root"] is False and ud["ssh_pwauth"] == "unchanged"  # no sshd restart
    assert ud["ssh_deletekeys"] is False  # a node's host keys are made once and kept
    assert ud["ssh_genkeytypes"] == ["ed25519", "ecdsa", "rsa"]  # no DSA host key
    assert ud["locale"] == "C.UTF-8"  # no locales in the image: only libc's C.UTF-8 needs no locale-gen
    assert ud["ntp"] == {"enabled": True, "servers": ["0.pool.ntp.org"]}


def test_key_only_node_locks_password() -> None:
    data = good()
    del data["node"]["password_hash"]
    ud = _seed(data)["user-data"]
    assert ud["users"][0]["lock_passwd"] is True and "hashed_passwd" not in ud["users"][0]
    assert ud["ssh_pwauth"] == "unchanged"


def test_k3s_first_server() -> None:
    k3s = _k3s(_seed(good())["user-data"])
    assert k3s == {"node-name": "node1", "node-label": ["hcios.io/role=server"], "node-ip": ["192.168.10.11"],
                   "cluster-init": True, "token-file": "/etc/rancher/k3s/token", "cluster-cidr": "10.42.0.0/16",
                   "service-cidr": "10.43.0.0/16", "cluster-dns": "10.43.0.10", "flannel-backend": "vxlan",
                   "tls-san": ["192.168.10.100"]}


def test_k3s_agent_and_witness_join() -> None:
    data = with_(good(), "install.mode", "join")
    data = with_(data, "cluster.server_url", "https://192.168.10.100:6443")
    agent = _k3s(_seed(with_(data, "install.role", "agent"))["user-data"])
    assert agent["server"] == "https://192.168.10.100:6443" and agent["token-file"] == "/etc/rancher/k3s/token"
    assert "cluster-init" not in agent and "cluster-cidr" not in agent
    witness = _k3s(_seed(with_(data, "install.role", "witness"))["user-data"])
    assert witness["disable-apiserver"] is True and witness["node-taint"] == [
        "node-role.kubernetes.io/etcd=true:NoExecute"]
    assert witness["server"] == "https://192.168.10.100:6443"


def test_proxy_env_file_for_the_k3s_service() -> None:
    data = with_(good(), "node.proxy", {"http": "http://p:3128", "no_proxy": "localhost,10.0.0.0/8"})
    files = {f["path"]: f for f in _seed(data)["user-data"]["write_files"]}
    env = files["/etc/systemd/system/k3s.service.env"]
    assert env["permissions"] == "0600"
    assert env["content"].splitlines() == ["HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128",
                                           "NO_PROXY=localhost,10.0.0.0/8", "no_proxy=localhost,10.0.0.0/8"]
    assert "/etc/systemd/system/k3s.service.env" not in {f["path"] for f in _seed(good())["user-data"]["write_files"]}


def test_meta_data_instance_id_is_stable_and_changes_with_config() -> None:
    a, b = load_config(good(), source="t"), load_config(good(), source="t")
    assert instance_id(a) == instance_id(b)
    assert instance_id(a) != instance_id(load_config(with_(good(), "node.ntp", []), source="t"))
    assert yaml.safe_load(render_seed(a)["meta-data"]) == {"instance-id": instance_id(a), "local-hostname": "node1"}


def test_network_static_single_nic_on_br_mgmt() -> None:
    net = _seed(good())["network-config"]
    assert net == {"version": 2, "ethernets": {"eth0": {"match": {"name": "eth0"}, "dhcp4": False}},
                   "bridges": {"br-mgmt": {
                       "interfaces": ["eth0"], "openvswitch": {}, "dhcp4": False, "addresses": ["192.168.10.11/24"],
                       "routes": [{"to": "0.0.0.0/0", "via": "192.168.10.1"}],
                       "nameservers": {"addresses": ["192.168.10.1"]}}}}


def test_network_lacp_bond_vlan_mtu_by_mac() -> None:
    data = with_(good(), "node.network", {
        "interfaces": [{"mac": "52:54:00:12:34:56"}, {"name": "eth1"}], "method": "dhcp", "vlan_id": 30,
        "mtu": 9000, "bond": {"mode": "802.3ad", "lacp_rate": "fast", "miimon": 0}})
    data = with_(data, "cluster.vip", None)
    net = _seed(data)["network-config"]
    # bond members are optional: one without link does not hold up network-online
    assert net["ethernets"] == {"nic0": {"match": {"macaddress": "52:54:00:12:34:56"}, "set-name": "nic0",
                                         "dhcp4": False, "mtu": 9000, "optional": True},
                                "eth1": {"match": {"name": "eth1"}, "dhcp4": False, "mtu": 9000, "optional": True}}
    # LACP is OVS's balance-tcp with lacp active, falling back to active-backup without a
    # partner; miimon 0 leaves OVS watching the carrier
    assert net["bonds"] == {"bond0": {"interfaces": ["nic0", "eth1"], "mtu": 9000,
                                      "parameters": {"mode": "balance-tcp"},
                                      "openvswitch": {"lacp": "active", "other-config": {
                                          "lacp-fallback-ab": "true", "lacp-time": "fast"}}}}
    # with a VLAN, the untagged bridge takes no address: no DHCP, no router advertisements
    assert net["bridges"] == {"br-mgmt": {"interfaces": ["bond0"], "openvswitch": {}, "mtu": 9000,
                                          "dhcp4": False, "dhcp6": False, "accept-ra": False}}
    assert net["vlans"] == {"br-mgmt.30": {"id": 30, "link": "br-mgmt", "mtu": 9000, "dhcp4": True}}


def test_network_active_backup_bond_watches_links_and_prefers_the_primary() -> None:
    data = with_(good(), "node.network", {
        "interfaces": [{"mac": "52:54:00:12:34:56"}, {"mac": "52:54:00:12:34:57"}], "method": "dhcp",
        "bond": {"primary": "nic1"}})
    bond = _seed(with_(data, "cluster.vip", None))["network-config"]["bonds"]["bond0"]
    assert bond == {"interfaces": ["nic0", "nic1"], "parameters": {"mode": "active-backup"}, "openvswitch": {
        "lacp": "off", "other-config": {"bond-detect-mode": "miimon", "bond-miimon-interval": "100",
                                        "bond-primary": "nic1"}}}


def test_network_dhcp_without_interfaces_matches_all_ethernets() -> None:
    data = with_(with_(good(), "node.network", {"method": "dhcp"}), "cluster.vip", None)
    net = _seed(data)["network-config"]
    assert [e["match"]["name"] for e in net["ethernets"].values()] == ["en*", "eth*"]
    assert all(e["dhcp4"] is True for e in net["ethernets"].values())


def test_write_seed_files_are_private(tmp_path: Path) -> None:
    cfg = load_config_file(EXAMPLES / "join.yaml")
    out = tmp_path / "seed"
    paths = write_seed(cfg, out)
    assert sorted(p.name for p in paths) == ["meta-data", "network-config", "user-data"]
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert p.read_text() == render_seed(cfg)[p.name]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert sorted(x.name for x in out.iterdir()) == ["meta-data", "network-config", "user-data"]
