"""The image's own cloud-init and netplan turn a node config into br-mgmt: cloud-init renders
the seed's network-config to netplan as on a node's first boot, and the image's netplan
generator writes the ovs-vsctl units and the systemd-networkd files a booted node runs."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from cloud_init.network import network_config
from hcicore.config import load_config
from tests.build.test_build import mounted_squashfs
from tests.conftest import BuiltImage
from tests.unit.config_cases import good, with_

pytestmark = pytest.mark.build

NETWORK = {"interfaces": [{"mac": "52:54:00:aa:00:01"}, {"mac": "52:54:00:aa:00:02"}], "method": "static",
           "address": "192.168.10.11/24", "gateway": "192.168.10.1", "vlan_id": 100,
           "bond": {"mode": "active-backup", "primary": "nic1"}}


def _chroot(root: Path, *argv: str) -> str:
    ran = subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, f"{argv}: {ran.stderr}"
    return ran.stdout + ran.stderr


def test_the_images_netplan_renders_br_mgmt_with_its_bond_and_vlan(built_image: BuiltImage,
                                                                      tmp_path: Path) -> None:
    cfg = load_config(with_(good(), "node.network", NETWORK), source="test")
    with mounted_squashfs(built_image.out / "rootfs.squashfs", tmp_path / "mnt") as root:
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "tmp")], check=True)
        try:
            (root / "tmp/seed").mkdir()
            (root / "tmp/seed/network-config").write_text(yaml.safe_dump(network_config(cfg)))
            _chroot(root, "cloud-init", "devel", "net-convert", "-p", "/tmp/seed/network-config", "-k", "yaml",
                    "-d", "/tmp/out", "-D", "debian", "-O", "netplan")
            _chroot(root, "/usr/libexec/netplan/generate", "--root-dir", "/tmp/out")
            run = root / "tmp/out/run/systemd"
            units = sorted(p.name for p in (run / "system").glob("netplan-ovs-*.service"))
            wanted = sorted(p.name for p in (run / "system/systemd-networkd.service.wants").iterdir())
            bridge = (run / "system/netplan-ovs-br-mgmt.service").read_text()
            bond = (run / "system/netplan-ovs-bond0.service").read_text()
            vlan = (run / "system/netplan-ovs-br-mgmt.100.service").read_text()
            address = (run / "network/10-netplan-br-mgmt.100.network").read_text()
            untagged = (run / "network/10-netplan-br-mgmt.network").read_text()
            nic1 = (run / "network/10-netplan-nic1.link").read_text()
            member = (run / "network/10-netplan-nic1.network").read_text()
        finally:
            subprocess.run(["umount", str(root / "tmp")], check=True)
    assert units == ["netplan-ovs-bond0.service", "netplan-ovs-br-mgmt.100.service",
                     "netplan-ovs-br-mgmt.service", "netplan-ovs-cleanup.service"]
    assert wanted == units  # started with systemd-networkd, before network.target
    assert "ExecStart=/usr/bin/ovs-vsctl --may-exist add-br br-mgmt\n" in bridge
    assert "set-fail-mode br-mgmt standalone" in bridge  # a plain L2 switch without a controller
    for line in ("--may-exist add-bond br-mgmt bond0 nic0 nic1", "set Port bond0 bond_mode=active-backup",
                 "set Port bond0 lacp=off", "set Port bond0 other-config:bond-primary=nic1",
                 "set Port bond0 other-config:bond-detect-mode=miimon"):
        assert f"ExecStart=/usr/bin/ovs-vsctl {line}\n" in bond, line
    # the VLAN is an OVS fake bridge: an internal port of br-mgmt tagged 100, holding the address
    assert "ExecStart=/usr/bin/ovs-vsctl --may-exist add-br br-mgmt.100 br-mgmt 100\n" in vlan
    assert "Address=192.168.10.11/24" in address and "Gateway=192.168.10.1" in address
    assert "PermanentMACAddress=52:54:00:aa:00:02" in nic1 and "Name=nic1" in nic1
    # a member without link does not hold up network-online; the untagged bridge takes no address
    assert "RequiredForOnline=no" in member
    assert "IPv6AcceptRA=no" in untagged
    assert "Address=" not in untagged and "DHCP=" not in untagged
