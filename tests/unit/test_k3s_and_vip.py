"""k3s's config per role against k3s's documented flags, the token file, cross-node validation
(`hci config validate A B ...`) and keepalived's config for the VIP."""
from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cloud_init import render_seed
from cloud_init.k3s import CRITICAL_KEYS, TOKEN_PATH, k3s_config
from hcicore.cli import main
from hcicore.config import load_config
from hcicore.errors import HciError
from node_services import vip

from .config_cases import good, with_

pytestmark = pytest.mark.unit

FLAGS = yaml.safe_load((Path(__file__).parents[1] / "data" / "k3s-flags.yaml").read_text())
SERVER_URL = "https://192.168.10.100:6443"
KIND_OK = {"bool": lambda v: isinstance(v, bool), "value": lambda v: isinstance(v, str),
           "list": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)}


def _cfg(data: dict[str, Any]):
    return load_config(data, source="t")


def _joining(role: str, address: str) -> dict[str, Any]:
    data = with_(with_(good(), "install.mode", "join"), "cluster.server_url", SERVER_URL)
    data = with_(with_(data, "node.hostname", f"{role}-1"), "install.role", role)
    return with_(data, "node.network.address", address)


ROLES = {
    "create": good(),
    "join-server": _joining("server", "192.168.10.21/24"),
    "join-agent": _joining("agent", "192.168.10.31/24"),
    "witness": _joining("witness", "192.168.10.41/24"),
}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_k3s_config_uses_only_documented_flags_of_its_subcommand(role: str) -> None:
    cfg = _cfg(ROLES[role])
    rendered = k3s_config(cfg)
    documented = dict(FLAGS["agent"])
    if cfg.install.role != "agent":
        documented.update(FLAGS["server"])  # a server also takes every agent flag
    for key, value in rendered.items():
        assert key in documented, f"{role}: {key} is not a documented k3s {'agent' if role == 'join-agent' else 'server'} flag"
        assert KIND_OK[documented[key]](value), f"{role}: {key}={value!r} is not a {documented[key]}"
    assert "token" not in rendered and rendered["token-file"] == TOKEN_PATH


def test_k3s_roles() -> None:
    create, server, agent, witness = (k3s_config(_cfg(ROLES[r])) for r in ("create", "join-server", "join-agent", "witness"))
    assert create["cluster-init"] is True and "server" not in create
    assert server["server"] == agent["server"] == witness["server"] == SERVER_URL
    assert "cluster-init" not in server
    # the VIP is in the server certificate from the first boot
    assert create["tls-san"] == server["tls-san"] == ["192.168.10.100"]
    # agents take no cluster-wide option
    assert not set(agent) & set(FLAGS["server"])
    assert witness["disable-apiserver"] is witness["disable-controller-manager"] is witness["disable-scheduler"] is True
    assert witness["node-taint"] == ["node-role.kubernetes.io/etcd=true:NoExecute"]
    assert "disable-etcd" not in witness
    # the critical values are rendered the same on every server, and k3s calls them critical
    assert set(CRITICAL_KEYS) <= set(FLAGS["critical"])
    assert {k: create[k] for k in CRITICAL_KEYS} == {k: server[k] for k in CRITICAL_KEYS} == {
        k: witness[k] for k in CRITICAL_KEYS}
    assert create["flannel-backend"] == "vxlan"


def test_token_goes_to_a_private_token_file_only() -> None:
    texts = render_seed(_cfg(ROLES["join-agent"]))
    files = {f["path"]: f for f in yaml.safe_load(texts["user-data"])["write_files"]}
    assert files[TOKEN_PATH] == {"path": TOKEN_PATH, "owner": "root:root", "permissions": "0600",
                                 "content": "sekrit-token\n"}
    assert "sekrit-token" not in files["/etc/rancher/k3s/config.yaml"]["content"]
    # create without a token: k3s makes one, no token file
    no_token = render_seed(_cfg(with_(good(), "cluster.token", None)))["user-data"]
    assert TOKEN_PATH not in no_token and "token-file" not in no_token


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _validate(*files: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["config", "validate", *files])
    return result.exit_code, result.stdout, result.stderr


def test_validate_a_whole_cluster(tmp_path: Path) -> None:
    files = [_write(tmp_path, f"{name}.yaml", data) for name, data in ROLES.items()]
    assert _validate(*files) == (0, "ok\n", "")
    # one file alone is still checked the old way
    assert _validate(files[0]) == (0, "ok\n", "")


def test_validate_cluster_mismatches_name_file_and_field(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", good())
    bad = with_(with_(ROLES["join-server"], "cluster.pod_cidr", "10.52.0.0/16"), "cluster.token", "other-secret")
    bad = with_(with_(bad, "node.hostname", "node1"), "cluster.flannel_backend", "host-gw")
    b = _write(tmp_path, "b.yaml", bad)
    c = _write(tmp_path, "c.yaml", with_(good(), "node.hostname", "node3"))
    code, out, err = _validate(a, b, c)
    assert code == 2 and out == ""
    paths = [line.split(": ", 2)[1] + ": " + line.split(": ", 3)[2] for line in err.splitlines()]
    assert f"{c}: install.mode" in paths
    assert f"{b}: cluster.pod_cidr" in paths and f"{b}: cluster.flannel_backend" in paths
    assert f"{b}: cluster.token" in paths and f"{b}: node.hostname" in paths
    # same address as a.yaml (192.168.10.11): c collides
    assert f"{c}: node.network.address" in paths
    assert "other-secret" not in err and "sekrit-token" not in err
    # agents need not repeat the servers' settings
    agent = with_(ROLES["join-agent"], "cluster.pod_cidr", "10.62.0.0/16")
    assert _validate(a, _write(tmp_path, "agent.yaml", agent))[0] == 0


def test_validate_cluster_reports_each_bad_file(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", with_(good(), "node.hostname", "Bad_Host"))
    b = _write(tmp_path, "b.yaml", with_(ROLES["join-server"], "cluster.flannel_backend", "geneve"))
    code, _, err = _validate(a, b)
    assert code == 2
    assert f"error: {a}: node.hostname:" in err and f"error: {b}: cluster.flannel_backend:" in err


def test_keepalived_conf_for_the_creator_and_a_joining_server() -> None:
    first = vip.keepalived_conf(_cfg(good()), "eth0")
    second = vip.keepalived_conf(_cfg(ROLES["join-server"]), "eth0")
    assert "virtual_router_id 100\n" in first and "virtual_router_id 100\n" in second  # the VIP's last byte
    assert "priority 150\n" in first and "priority 100\n" in second
    assert "192.168.10.100/24 dev eth0" in first
    assert f'script "{vip.TRACK_SCRIPT}"' in first and f"weight -{vip.TRACK_WEIGHT}" in first
    # a creator whose API fails falls below a healthy joiner, and stays above a failing one
    assert vip.PRIORITY_CREATOR - vip.TRACK_WEIGHT < vip.PRIORITY_JOINER
    assert vip.PRIORITY_CREATOR - vip.TRACK_WEIGHT > vip.PRIORITY_JOINER - vip.TRACK_WEIGHT > 0
    assert "state BACKUP" in first and "nopreempt" not in first
    assert "virtual_router_id 7\n" in vip.keepalived_conf(_cfg(with_(good(), "cluster.vrrp_router_id", 7)), "eth0")
    for role in ("join-agent", "witness"):
        with pytest.raises(HciError, match="holds no VIP"):
            vip.keepalived_conf(_cfg(ROLES[role]), "eth0")


@pytest.mark.parametrize(("network", "device"), [
    ({"interfaces": [{"name": "eno1"}], "method": "dhcp"}, "br-mgmt"),
    ({"interfaces": [{"mac": "52:54:00:00:00:01"}], "method": "dhcp"}, "br-mgmt"),
    ({"interfaces": [{"name": "eno1"}, {"name": "eno2"}], "method": "dhcp", "bond": {}}, "br-mgmt"),
    ({"interfaces": [{"name": "eno1"}, {"name": "eno2"}], "method": "dhcp", "bond": {}, "vlan_id": 30},
     "br-mgmt.30"),
    ({"method": "dhcp"}, None),
])
def test_vip_interface_is_the_device_with_the_node_address(network: dict[str, Any], device: str | None) -> None:
    assert vip.management_interface(_cfg(with_(good(), "node.network", network))) == device


def test_apply_writes_and_removes_the_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "keepalived" / "keepalived.conf"
    sys_net = tmp_path / "sys-class-net"
    (sys_net / "br-mgmt").mkdir(parents=True)
    assert "wrote" in vip.apply(_cfg(good()), conf, sys_net)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640 and "interface br-mgmt\n" in conf.read_text()
    # a node whose network config never made br-mgmt keeps its VIP on the default route's device
    (sys_net / "br-mgmt").rmdir()
    monkeypatch.setattr(vip, "default_route_device", lambda: "eno1")
    said = vip.apply(_cfg(good()), conf, sys_net)
    assert "on eno1" in said and "br-mgmt (from the node config) does not exist here" in said
    assert "interface eno1\n" in conf.read_text()
    assert "removed" in vip.apply(_cfg(ROLES["join-agent"]), conf)
    assert not conf.exists()
    assert vip.apply(None, conf) == "no VIP on this node"
