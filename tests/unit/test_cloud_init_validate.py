"""The rendered seed checked by cloud-init itself (Debian's cloud-init package, seconds per file).

`cloud-init schema` validates user-data; `cloud-init devel net-convert` parses network-config
with cloud-init's own v2 parser and renders it to netplan, the node's renderer. Skipped when the cloud-init package is absent
(`apt-get install --no-install-recommends cloud-init`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cloud_init import write_seed
from hcicore.command import run
from hcicore.config import load_config, load_config_file

from .config_cases import EXAMPLES, good, with_

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init package not installed"),
]


def _eni(seed: Path, tmp_path: Path) -> str:
    out = tmp_path / "eni"
    run(["cloud-init", "devel", "net-convert", "-p", str(seed / "network-config"), "-k", "yaml",
         "-d", str(out), "-D", "debian", "-O", "eni"], timeout=60)
    return "\n".join(p.read_text() for p in sorted(out.rglob("*")) if p.is_file())


@pytest.mark.parametrize("name", ["create.yaml", "join.yaml"])
def test_user_data_passes_cloud_init_schema(name: str, tmp_path: Path) -> None:
    write_seed(load_config_file(EXAMPLES / name), tmp_path)
    result = run(["cloud-init", "schema", "--config-file", str(tmp_path / "user-data")], timeout=60)
    assert "Valid cloud-config" in result.stdout


def test_cloud_init_schema_catches_a_broken_user_data(tmp_path: Path) -> None:
    """The validator used above really rejects bad input."""
    write_seed(load_config(good(), source="t"), tmp_path)
    ud = tmp_path / "user-data"
    data = yaml.safe_load(ud.read_text())
    data["users"][0]["lock_passwd"] = "maybe"
    ud.write_text("#cloud-config\n" + yaml.safe_dump(data))
    result = run(["cloud-init", "schema", "--config-file", str(ud)], check=False, timeout=60)
    assert result.returncode != 0 and "users.0" in result.stderr


def _netplan(seed: Path, tmp_path: Path) -> dict:
    out = tmp_path / "netplan"
    run(["cloud-init", "devel", "net-convert", "-p", str(seed / "network-config"), "-k", "yaml",
         "-d", str(out), "-D", "debian", "-O", "netplan"], timeout=60)
    (plan,) = [p for p in out.rglob("*.yaml")]
    return yaml.safe_load(plan.read_text())["network"]


@pytest.mark.parametrize("name", ["create.yaml", "join.yaml"])
def test_br_mgmt_reaches_netplan_whole(name: str, tmp_path: Path) -> None:
    """The node's renderer is netplan (the image has no ifupdown): cloud-init passes the bridge,
    the OVS bond and the VLAN port through with their openvswitch settings (tests/build runs
    the image's netplan on them)."""
    write_seed(load_config_file(EXAMPLES / name), tmp_path)
    given = yaml.safe_load((tmp_path / "network-config").read_text())
    plan = _netplan(tmp_path, tmp_path)
    assert plan == given
    assert plan["bridges"]["br-mgmt"]["openvswitch"] == {}


def test_dhcp_all_ethernets_is_understood(tmp_path: Path) -> None:
    data = with_(with_(good(), "node.network", {"method": "dhcp", "mtu": 1400}), "cluster.vip", None)
    write_seed(load_config(data, source="t"), tmp_path)
    ethernets = _netplan(tmp_path, tmp_path)["ethernets"]
    assert {k: v["match"]["name"] for k, v in ethernets.items()} == {"all-en": "en*", "all-eth": "eth*"}
    assert all(v["dhcp4"] is True and v["mtu"] == 1400 for v in ethernets.values())
