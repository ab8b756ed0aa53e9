"""Disk refusal and clearing logic, fed with recorded lsblk/wipefs JSON (no real disk)."""
from __future__ import annotations

import time

import pytest

from hcicore.command import Result
from hcicore.errors import HciError

from hcicore.errors import ValidationError
from installer.disk import (deactivate_holders, inspect_disk, partition_paths, refusal, checked_device,
                            shared_arrays, shared_groups, wipe_disk)

from .install_fakes import FakeRunner, lsblk_json, part, wipefs_json

pytestmark = pytest.mark.unit


def _inspect(runner: FakeRunner, name: str = "/dev/vda"):
    return inspect_disk(name, runner=runner, is_block=lambda p: True)


def test_blank_disk_is_accepted_without_wipe() -> None:
    runner = FakeRunner(lsblk_json())
    disk = _inspect(runner)
    assert disk.contents() == []
    assert refusal(disk, wipe=False) == []
    # reading the disk ran only the read-only tools
    assert [c[0] for c in runner.calls] == ["lsblk", "wipefs"]
    assert runner.calls[1][:2] == ["wipefs", "--no-act"]


def test_partitioned_disk_is_refused_without_wipe_and_names_what_is_there() -> None:
    runner = FakeRunner(lsblk_json(pttype="gpt", children=[part("/dev/vda1", fstype="ext4", label="data")]),
                        wipefs_json("gpt", "PMBR"))
    disk = _inspect(runner)
    problems = refusal(disk, wipe=False)
    assert len(problems) == 1
    text = str(problems[0])
    assert text.startswith("error: install.device: /dev/vda")
    assert "not empty" in text and "/dev/vda1 'data' (ext4)" in text and "gpt signature" in text
    assert "install.wipe: true" in text
    assert refusal(disk, wipe=True) == []


def test_filesystem_signature_on_whole_disk_is_refused() -> None:
    disk = _inspect(FakeRunner(lsblk_json(fstype="xfs"), wipefs_json("xfs")))
    assert "xfs signature" in str(refusal(disk, wipe=False)[0])


def test_mounted_disk_is_refused_even_with_wipe() -> None:
    runner = FakeRunner(lsblk_json(children=[part("/dev/vda1", fstype="ext4", mountpoint="/mnt")]))
    problems = refusal(_inspect(runner), wipe=True)
    assert len(problems) == 1 and "in use: /dev/vda1 is mounted on /mnt" in str(problems[0])


def test_partition_is_not_a_disk() -> None:
    runner = FakeRunner(lsblk_json(path="/dev/vda1", type="part"))
    with pytest.raises(ValidationError) as err:
        _inspect(runner, "/dev/vda1")
    assert "not a whole disk" in str(err.value)
    assert [c[0] for c in runner.calls] == ["lsblk"]


def test_non_block_device_is_refused_before_any_command(tmp_path) -> None:
    runner = FakeRunner(lsblk_json())
    with pytest.raises(ValidationError) as err:
        inspect_disk("/dev/does-not-exist-hci", runner=runner)
    assert "not a block device" in str(err.value)
    with pytest.raises(ValidationError):
        checked_device("vda")
    assert runner.calls == []


def test_by_id_link_resolves_to_the_kernel_name(tmp_path) -> None:
    target = tmp_path / "vdz"
    target.touch()
    link = tmp_path / "by-id-virtio-abc"
    link.symlink_to(target)
    # checked_device only accepts /dev/ paths; check link following with a checker that records
    seen: list[str] = []
    assert checked_device("/dev/../" + str(link).lstrip("/"), is_block=lambda p: seen.append(p) or True) == str(target)
    assert seen == [str(target)]


def test_lvm_on_md_holders_are_taken_down_in_order_then_wiped() -> None:
    lv = part("/dev/mapper/vg0-data", type_="lvm")
    md = part("/dev/md127", type_="raid1", fstype="LVM2_member", children=[lv])
    runner = FakeRunner(
        lsblk_json(pttype="gpt", children=[part("/dev/vda1", fstype="linux_raid_member", children=[md]),
                                           part("/dev/vda2", fstype="ext4")]),
        wipefs_json("gpt"), pvs={"/dev/md127": "  vg0\n"})
    disk = _inspect(runner)
    runner.calls.clear()
    assert deactivate_holders(disk, runner=runner) == ["deactivated LVM volume group vg0",
                                                       "stopped md array /dev/md127"]
    wipe_disk(disk, runner=runner)
    assert runner.commands() == [
        "pvs --noheadings --options vg_name /dev/md127",
        "vgchange --activate n vg0",
        "mdadm --stop /dev/md127",
        "wipefs --all /dev/vda1",
        "wipefs --all /dev/vda2",
        "wipefs --all /dev/vda",
    ]


def _sysfs(tmp_path, parts: dict[str, int]) -> None:
    for name, number in parts.items():
        d = tmp_path / "devices" / "vda" / name
        d.mkdir(parents=True)
        (d / "partition").write_text(f"{number}\n")
        (tmp_path / "sys").mkdir(exist_ok=True)
        (tmp_path / "sys" / name).symlink_to(d)
        (tmp_path / "dev").mkdir(exist_ok=True)
        (tmp_path / "dev" / name).touch()
    (tmp_path / "sys" / "vdaa").mkdir()  # another disk whose name starts the same: ignored


class BlkidRunner(FakeRunner):
    def __init__(self, names: dict[str, str]):
        super().__init__(lsblk_json())
        self.names = names

    def __call__(self, argv, check=True, **kw):
        if argv[0] == "blkid":
            self.calls.append(list(argv))
            return Result(argv, 0, self.names.get(argv[-1].rsplit("/", 1)[-1], "") + "\n", "")
        return super().__call__(argv, check=check, **kw)


def test_partition_paths_finds_nodes_by_number_and_checks_gpt_names(tmp_path) -> None:
    _sysfs(tmp_path, {"vda1": 1, "vda2": 2})
    runner = BlkidRunner({"vda1": "hci-bios", "vda2": "hci-esp"})
    got = partition_paths("/dev/vda", {"hci-bios": 1, "hci-esp": 2}, runner=runner,
                          sys_block=tmp_path / "sys", dev_dir=tmp_path / "dev")
    assert got == {"hci-bios": str(tmp_path / "dev/vda1"), "hci-esp": str(tmp_path / "dev/vda2")}
    wrong = BlkidRunner({"vda1": "hci-bios", "vda2": "EFI system"})
    with pytest.raises(HciError, match="named 'EFI system', expected 'hci-esp'"):
        partition_paths("/dev/vda", {"hci-bios": 1, "hci-esp": 2}, runner=wrong,
                        sys_block=tmp_path / "sys", dev_dir=tmp_path / "dev")


def test_partition_paths_gives_up_after_the_timeout(tmp_path) -> None:
    _sysfs(tmp_path, {"vda1": 1})
    sleeps: list[float] = []
    with pytest.raises(HciError, match="no device node for hci-esp within 1s"):
        partition_paths("/dev/vda", {"hci-bios": 1, "hci-esp": 2}, runner=BlkidRunner({}),
                        sys_block=tmp_path / "sys", dev_dir=tmp_path / "dev", timeout=1.0,
                        sleep=lambda s: (sleeps.append(s), time.sleep(s)))
    assert sleeps


def test_volume_group_spanning_another_disk_is_refused() -> None:
    listing = "  /dev/vda2|vg0\n  /dev/sdb1|vg0\n  /dev/sdc1|other\n"
    runner = FakeRunner(lsblk_json(pttype="gpt", children=[part("/dev/vda2", fstype="LVM2_member")]),
                        wipefs_json("gpt"), pvs={"pv_name,vg_name": listing})
    disk = _inspect(runner)
    (problem,) = shared_groups(disk, runner=runner)
    assert problem.path == "install.device" and "vg0" in problem.message and "/dev/sdb1" in problem.message
    assert "other" not in problem.message
    assert runner.destructive() == []


def test_volume_group_only_on_the_install_disk_may_be_wiped() -> None:
    runner = FakeRunner(lsblk_json(pttype="gpt", children=[part("/dev/vda2", fstype="LVM2_member"),
                                                           part("/dev/vda3", fstype="LVM2_member")]),
                        wipefs_json("gpt"), pvs={"pv_name,vg_name": "  /dev/vda2|vg0\n  /dev/vda3|vg0\n"})
    assert shared_groups(_inspect(runner), runner=runner) == []


def _md_runner(*member_parts: str) -> FakeRunner:
    md = part("/dev/md127", type_="raid1", fstype="ext4")
    return FakeRunner(lsblk_json(pttype="gpt", children=[part(p, fstype="linux_raid_member", children=[md])
                                                         for p in member_parts]), wipefs_json("gpt"))


def _md_sysfs(tmp_path, *members: str):
    slaves = tmp_path / "sys" / "md127" / "slaves"
    slaves.mkdir(parents=True)
    for m in members:
        (slaves / m).symlink_to(tmp_path / "devices" / m)  # dangling is fine: only names are read
    return tmp_path / "sys"


def test_md_array_spanning_another_disk_is_refused(tmp_path) -> None:
    runner = _md_runner("/dev/vda1")
    (problem,) = shared_arrays(_inspect(runner), sys_block=_md_sysfs(tmp_path, "vda1", "sdb1"))
    assert problem.path == "install.device"
    assert "md array /dev/md127 on /dev/vda also uses /dev/sdb1" in problem.message
    assert "mdadm --stop" in problem.fix
    assert runner.destructive() == []


def test_md_array_only_on_the_install_disk_may_be_wiped(tmp_path) -> None:
    runner = _md_runner("/dev/vda1", "/dev/vda2")
    assert shared_arrays(_inspect(runner), sys_block=_md_sysfs(tmp_path, "vda1", "vda2")) == []


def test_md_array_whose_members_cannot_be_read_is_refused(tmp_path) -> None:
    (problem,) = shared_arrays(_inspect(_md_runner("/dev/vda1")), sys_block=tmp_path / "nothing")
    assert "cannot read its members" in problem.message and "mdadm --stop /dev/md127" in problem.fix
