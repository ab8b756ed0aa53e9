"""BootDisk.check_same_disk: hci-upgrade writes a slot only on the disk the node booted from, and
not while a second partition carries the slot's PARTUUID (a cloned disk)."""
from __future__ import annotations

from pathlib import Path

import pytest

from hcicore.command import Result
from hcicore.errors import HciError
from node_services.bootdisk import BootDisk

pytestmark = pytest.mark.unit

UUIDS = {"hci-oem": "0e0e0e0e-0000-4000-8000-000000000001",
         "hci-root-a": "0e0e0e0e-0000-4000-8000-00000000000a",
         "hci-root-b": "0e0e0e0e-0000-4000-8000-00000000000b"}


def _disk(tmp: Path, disks: dict[str, str]) -> tuple[BootDisk, Path]:
    """Partition files named like kernel devices under dev/, a by-partuuid dir of links to them,
    and a /sys/class/block whose entries resolve to .../<disk>/<partition> as the kernel's do."""
    dev, by_uuid, sys_block = tmp / "dev", tmp / "by-partuuid", tmp / "sys/class/block"
    for d in (dev, by_uuid, sys_block):
        d.mkdir(parents=True)
    for n, (label, uuid) in enumerate(UUIDS.items(), start=1):
        disk = disks[label]
        part = dev / f"{disk}{n}"
        part.write_bytes(b"")
        (by_uuid / uuid).symlink_to(part)
        entry = tmp / "sys/devices" / disk / part.name
        entry.mkdir(parents=True)
        (sys_block / part.name).symlink_to(entry)
    return BootDisk(slot="a", trial=False, oem_root=tmp, persistent_root=tmp, partuuids=UUIDS,
                    dev_dir=by_uuid), sys_block


def _blkid(*devices: str):
    calls: list[list[str]] = []

    def runner(argv: list[str], **_: object) -> Result:
        calls.append(argv)
        return Result(argv, 0, "".join(f"{d}\n" for d in devices), "")
    return runner, calls


def test_the_boot_disks_own_slot_may_be_written(tmp_path: Path) -> None:
    disk, sys_block = _disk(tmp_path, {"hci-oem": "vda", "hci-root-a": "vda", "hci-root-b": "vda"})
    target = disk.slot_device("b")
    runner, calls = _blkid(str(target))
    disk.check_same_disk(target, sys_block=sys_block, runner=runner)
    assert calls == [["blkid", "-o", "device", "-t", f"PARTUUID={UUIDS['hci-root-b']}"]]


def test_a_slot_on_another_disk_is_refused(tmp_path: Path) -> None:
    disk, sys_block = _disk(tmp_path, {"hci-oem": "vda", "hci-root-a": "vda", "hci-root-b": "vdb"})
    runner, calls = _blkid()
    with pytest.raises(HciError, match="is on disk vdb, but this node booted from vda"):
        disk.check_same_disk(disk.slot_device("b"), sys_block=sys_block, runner=runner)
    assert calls == []


def test_a_cloned_partuuid_is_refused(tmp_path: Path) -> None:
    disk, sys_block = _disk(tmp_path, {"hci-oem": "vda", "hci-root-a": "vda", "hci-root-b": "vda"})
    runner, _ = _blkid("/dev/vda3", "/dev/vdb3")
    with pytest.raises(HciError, match=f"2 partitions carry PARTUUID {UUIDS['hci-root-b']}.*randomize-guids"):
        disk.check_same_disk(disk.slot_device("b"), sys_block=sys_block, runner=runner)
