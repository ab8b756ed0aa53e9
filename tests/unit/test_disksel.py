"""Naming disks: stable names, matches, and which devices are offered at all."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcicore.errors import ValidationError
from installer import hostinfo
from installer.blockdev import parse_lsblk, stable_names
from installer.disksel import is_match, kernel_name_problems, select

pytestmark = pytest.mark.unit
GiB = 1024**3


def dev(name: str, size: int, **extra) -> dict:
    return {"name": name, "path": f"/dev/{name}", "type": "disk", "size": size, "ro": False, "rm": False, **extra}


NODES = parse_lsblk(json.dumps({"blockdevices": [
    dev("fd0", 0, rm=True),                                      # the BMC's virtual floppy
    dev("sr0", 700 * 1024**2, type="rom", rm=True),
    dev("sda", 480 * GiB, model="MZ7LH480", serial="S1"),
    dev("sdb", 480 * GiB, model="MZ7LH480", serial="S2"),
    dev("nvme0n1", 1920 * GiB, model="KIOXIA CD6", serial="K1"),
    dev("sdc", 32 * GiB, model="Cruzer", serial="U1", rm=True),  # a USB stick
    dev("sdd", 100 * GiB, ro=True, serial="RO1"),
]}))


def test_only_real_disks_are_offered_with_serial_and_by_path(tmp_path: Path) -> None:
    bypath = tmp_path / "disk" / "by-path"
    bypath.mkdir(parents=True)
    (bypath / "pci-0000:3b:00.0-sas-phy0-lun-0").symlink_to("../../sda")
    text = json.dumps({"blockdevices": [dev("fd0", 0, rm=True), dev("sda", 480 * GiB, model="MZ7LH480", serial="S1"),
                                        dev("sdd", 100 * GiB, ro=True)]})
    disks = hostinfo.disks_from_lsblk(text, tmp_path)
    assert [d.path for d in disks] == ["/dev/sda"]
    line = disks[0].describe()
    assert "serial S1" in line and "by-path/pci-0000:3b:00.0-sas-phy0-lun-0" in line and "MZ7LH480" in line


@pytest.mark.parametrize("name,want", [
    ("serial:S2", "/dev/sdb"), ("model:KIOXIA CD6", "/dev/nvme0n1"), ("largest", "/dev/nvme0n1"),
    ("/dev/disk/by-id/wwn-0x5", "/dev/disk/by-id/wwn-0x5"),  # a path: resolved and checked later
])
def test_a_match_names_exactly_one_non_removable_disk(name: str, want: str) -> None:
    assert select(name, NODES, path="install.device") == want


@pytest.mark.parametrize("name,says", [
    ("model:MZ7LH480", "matches 2 disks"), ("smallest", "matches 2 disks"), ("serial:U1", "matches no disk"),
])
def test_a_match_that_is_not_one_disk_is_refused_listing_the_candidates(name: str, says: str) -> None:
    with pytest.raises(ValidationError) as exc:
        select(name, NODES, path="install.device")
    (problem,) = exc.value.problems
    assert problem.path == "install.device" and says in problem.message and "/dev/sda" in problem.fix


def test_kernel_names_are_fine_on_a_one_disk_machine() -> None:
    one = parse_lsblk(json.dumps({"blockdevices": [dev("sda", 480 * GiB), dev("sdc", 32 * GiB, rm=True)]}))
    assert kernel_name_problems({"install.device": "/dev/sda"}, one) == []
    (problem,) = kernel_name_problems({"install.device": "/dev/sda", "install.data_device": "serial:S2"}, NODES)
    assert problem.path == "install.device" and "3 disks" in problem.message


def test_stable_names_and_matches_are_recognised(tmp_path: Path) -> None:
    byid = tmp_path / "disk" / "by-id"
    byid.mkdir(parents=True)
    (byid / "ata-MZ7LH480_S1").symlink_to("../../sda")
    (byid / "ata-MZ7LH480_S1-part1").symlink_to("../../sda1")
    assert stable_names("/dev/sda", tmp_path) == ["/dev/disk/by-id/ata-MZ7LH480_S1"]
    assert is_match("serial:S1") and is_match("largest") and not is_match("/dev/sda") and not is_match("sda")


def test_the_wizard_and_preflight_see_the_same_match() -> None:
    host = hostinfo.HostInfo(disks=hostinfo.disks_from_lsblk(json.dumps({"blockdevices": [
        dev("sda", 480 * GiB, serial="S1"), dev("nvme0n1", 1920 * GiB, serial="K1")]})))
    assert host.disk("serial:K1").path == "/dev/nvme0n1" and host.disk("smallest").path == "/dev/sda"
    assert host.disk("serial:nope") is None


def test_the_wizard_writes_stable_names_and_asks_before_a_disk_with_only_a_signature(tmp_path: Path) -> None:
    from installer.wizard import Wizard

    byid = tmp_path / "dev" / "disk" / "by-id"
    byid.mkdir(parents=True)
    (byid / "virtio-OS").symlink_to("../../vda")
    (byid / "virtio-DATA").symlink_to("../../vdb")
    host = hostinfo.HostInfo(disks=hostinfo.disks_from_lsblk(json.dumps({"blockdevices": [
        dev("vda", 100 * GiB), dev("vdb", 200 * GiB, fstype="LVM2_member")]}), tmp_path / "dev"), root=tmp_path)
    w = Wizard(host, validator=None)
    w.answer("")  # install.mode: create
    assert [c.value for c in w.current().choices(w)] == ["/dev/disk/by-id/virtio-OS", "/dev/disk/by-id/virtio-DATA"]
    w.answer("1")
    assert w.current().key == "install.data_device"  # vda is blank: no wipe question
    w.answer("2")  # the LVM disk: no partitions, but a signature
    assert w.current().key == "install.data_wipe" and "LVM2_member" in w.current().detail(w)
