"""Which disks an install refuses before anything is written: used data disks, other installs,
holders, kernel names in unattended wipes, an installed node booted into the installer again."""
from __future__ import annotations

from pathlib import Path

import pytest

from hcicore.errors import ValidationError
from installer.source import ImageSource

from .install_fakes import lsblk_json, part, wipefs_json
from .install_sim import GiB, SimRunner, TwoDiskRunner, _data_disk, config, events, make

pytestmark = pytest.mark.unit


def test_used_data_disk_is_refused_without_wipe_and_nothing_is_touched(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path)
    _data_disk(runner, used=True)
    inst, asked, _ = make(tmp_path, config(data_device="/dev/vdb"), image, runner)
    with pytest.raises(ValidationError) as exc:
        inst.execute()
    (problem,) = exc.value.problems
    assert problem.path == "install.data_device" and "/dev/vdb" in problem.message and "xfs" in problem.message
    assert asked == [] and runner.destructive() == []


def test_wipe_true_alone_leaves_a_used_data_disk_untouched(tmp_path: Path, image: ImageSource) -> None:
    """Reinstalling the OS disk (wipe: true) must not erase the VM storage: that takes data_wipe."""
    runner = SimRunner(tmp_path)
    _data_disk(runner, used=True)
    inst, asked, _ = make(tmp_path, config(data_device="/dev/vdb", wipe=True), image, runner, auto_mode=True)
    with pytest.raises(ValidationError) as exc:
        inst.execute()
    (problem,) = exc.value.problems
    assert problem.path == "install.data_device" and "install.data_wipe: true" in problem.fix
    assert runner.destructive() == [] and not any("/dev/vdb" in c for c in runner.destructive())


def test_data_disk_is_cleared_whole_after_confirmation(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path)
    _data_disk(runner, used=True)
    inst, asked, out = make(tmp_path, config(data_device="/dev/vdb", data_wipe=True), image, runner)
    inst.execute()
    assert "Data disk for VM storage /dev/vdb" in asked[0] and "xfs" in asked[0]
    cmds = runner.commands()
    assert cmds.index("wipefs --all /dev/vdb1") < cmds.index("wipefs --all /dev/vdb") < \
        next(i for i, c in enumerate(cmds) if c.startswith("sgdisk --clear"))
    assert not any(c.startswith(("sgdisk", "mkfs")) and "/dev/vdb" in c for c in cmds)  # left raw
    assert "clear data disk" in [e["name"] for e in events(out) if e.get("status") == "done"]


def test_data_disk_alias_of_the_install_disk_is_refused(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path)
    runner.other_disks["/dev/vdb"] = (lsblk_json("/dev/vda"), "")  # e.g. a by-id link to the same disk
    inst, _, _ = make(tmp_path, config(data_device="/dev/vdb"), image, runner)
    with pytest.raises(ValidationError, match="is the install disk /dev/vda"):
        inst.execute()
    assert runner.destructive() == []


def test_another_install_on_another_disk_stops_an_automatic_install(tmp_path: Path, image: ImageSource) -> None:
    runner = TwoDiskRunner(tmp_path)
    inst, _, _ = make(tmp_path, config(automatic=True), image, runner, auto_mode=True)
    with pytest.raises(ValidationError) as err:
        inst.execute()
    problem = err.value.problems[0]
    assert problem.path == "install.device"
    assert "/dev/vdb carries partitions of another hcios install (hci-persistent, hci-root-a)" in problem.message
    assert "wipefs" in problem.fix
    assert runner.destructive() == []


def test_another_install_is_a_warning_when_a_person_confirms(tmp_path: Path, image: ImageSource) -> None:
    runner = TwoDiskRunner(tmp_path)
    inst, asked, out = make(tmp_path, config(), image, runner)
    result = inst.execute()
    assert "Warning: /dev/vdb carries partitions of another hcios install" in asked[0]
    assert any("this node will boot only its own disk" in w for w in result.warnings)
    assert not any("/dev/vdb" in c for c in runner.destructive())  # never touched


def test_another_install_on_the_data_disk_is_cleared_with_it(tmp_path: Path, image: ImageSource) -> None:
    runner = TwoDiskRunner(tmp_path)
    runner.other_disks["/dev/vdb"] = (lsblk_json("/dev/vdb", pttype="gpt", children=[
        part("/dev/vdb4", label="hci-root-a")]), wipefs_json("gpt"))
    inst, _, _ = make(tmp_path, config(automatic=True, data_wipe=True, data_device="serial:DATA1"), image, runner,
                      auto_mode=True)
    inst.execute()
    assert "wipefs --all /dev/vdb" in runner.commands()


@pytest.mark.parametrize("children,named,fix", [
    ([part("/dev/vda1", fstype="crypto_LUKS", children=[part("/dev/mapper/luks-1", type_="crypt", fstype="ext4")])],
     "held by crypt device /dev/mapper/luks-1", "cryptsetup close luks-1"),
    ([part("/dev/vda2", fstype="swap", mountpoint="[SWAP]")], "/dev/vda2 is active swap", "swapoff /dev/vda2"),
    ([part("/dev/mapper/mpatha", type_="mpath")], "held by mpath device /dev/mapper/mpatha", "multipath -f mpatha"),
    ([part("/dev/vda1", fstype="bcache", children=[part("/dev/bcache0", type_="disk", fstype="xfs")])],
     "held by bcache device /dev/bcache0", "/sys/block/bcache0/bcache/stop"),
    ([part("/dev/vda1", fstype="LVM2_member", children=[
        part("/dev/mapper/vg-lv", type_="lvm", fstype="ext4", mountpoint="/srv")])],
     "/dev/mapper/vg-lv is mounted on /srv", "umount /srv"),
], ids=["dm-crypt", "swap", "multipath", "bcache", "mounted-lv"])
def test_a_holder_the_install_cannot_take_down_is_refused_before_any_write(
        tmp_path: Path, image: ImageSource, children: list, named: str, fix: str) -> None:
    runner = SimRunner(tmp_path, lsblk=lsblk_json(size=40 * GiB, pttype="gpt", children=children),
                       wipefs=wipefs_json("gpt"))
    inst, asked, _ = make(tmp_path, config(wipe=True), image, runner, auto_mode=True)
    with pytest.raises(ValidationError) as exc:
        inst.execute()
    assert any(named in p.message and fix in p.fix for p in exc.value.problems), exc.value.problems
    assert asked == [] and runner.destructive() == []


def test_an_ambiguous_kernel_name_in_an_unattended_wipe_is_refused_with_the_stable_names(
        tmp_path: Path, image: ImageSource) -> None:
    runner = TwoDiskRunner(tmp_path)
    byid = tmp_path / "disk" / "by-id"
    byid.mkdir(parents=True)
    (byid / "virtio-DATA1").symlink_to("../../vdb")
    (byid / "virtio-OS").symlink_to("../../vda")
    inst, asked, _ = make(tmp_path, config(wipe=True, data_wipe=True, data_device="/dev/vdb"), image, runner,
                          auto_mode=True)
    with pytest.raises(ValidationError) as exc:
        inst.execute()
    named = {p.path: p for p in exc.value.problems if "kernel name" in p.message}
    assert set(named) == {"install.device", "install.data_device"}
    fix = named["install.device"].fix
    assert "/dev/vda (40.0 GiB, no serial): /dev/disk/by-id/virtio-OS" in fix
    assert "/dev/vdb (40.0 GiB, serial:DATA1): /dev/disk/by-id/virtio-DATA1" in fix
    assert asked == [] and runner.destructive() == []
    # a person who confirms may still use kernel names
    runner = TwoDiskRunner(tmp_path)
    runner.other_disks["/dev/vdb"] = (lsblk_json("/dev/vdb"), "")
    inst, asked, _ = make(tmp_path, config(wipe=True, data_wipe=True, data_device="/dev/vdb"), image, runner)
    inst.execute()
    assert asked and "wipefs --all /dev/vdb" in runner.commands()


def test_a_network_boot_does_not_wipe_an_installed_node_without_reinstall(tmp_path: Path, image: ImageSource) -> None:
    installed = lsblk_json(size=40 * GiB, pttype="gpt", children=[
        part("/dev/vda4", label="hci-root-a"), part("/dev/vda6", label="hci-persistent", fstype="ext4")])
    runner = SimRunner(tmp_path, lsblk=installed, wipefs=wipefs_json("gpt"))
    inst, asked, _ = make(tmp_path, config(automatic=True, wipe=True), image, runner, auto_mode=True)
    with pytest.raises(ValidationError) as exc:
        inst.execute()
    (problem,) = exc.value.problems
    assert problem.path == "install.reinstall" and "already holds hcios (hci-persistent, hci-root-a)" in problem.message
    assert "hci.install.reinstall=true" in problem.fix and runner.destructive() == []
    # asked for: it goes on
    runner = SimRunner(tmp_path, lsblk=installed, wipefs=wipefs_json("gpt"))
    inst, _, _ = make(tmp_path, config(automatic=True, wipe=True, reinstall=True), image, runner, auto_mode=True)
    inst.execute()
    assert "wipefs --all /dev/vda" in runner.commands()





def test_a_data_disk_match_that_is_the_install_disk_is_refused_not_moved(tmp_path: Path, image: ImageSource) -> None:
    """`device: /dev/vda, data_device: largest` on a machine where vda is the largest: refused,
    never quietly the next largest disk (which data_wipe would then erase)."""
    runner = TwoDiskRunner(tmp_path)
    runner.lsblk = lsblk_json(size=400 * GiB)  # vda, now the largest of vda and vdb (40 GiB)
    inst, asked, _ = make(tmp_path, config(data_device="largest", data_wipe=True), image, runner)
    with pytest.raises(ValidationError) as exc:
        inst.execute()
    assert [(p.path, p.message) for p in exc.value.problems] == [
        ("install.data_device", "largest is the install disk /dev/vda")]
    assert asked == [] and runner.destructive() == []
