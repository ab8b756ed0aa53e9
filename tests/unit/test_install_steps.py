"""Install step order and safety, with a recording runner standing in for the disk tools.

The runner answers lsblk/wipefs like the real tools; after ``sgdisk`` its lsblk lists six
partitions that are plain files in tmp_path, and ``dd`` really copies, so the slot write is
read back and checked by the real code.
"""
from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from hcicore.command import Result
from hcicore.config import load_config
from hcicore.errors import DigestMismatch, HciError, Problem, ValidationError
from hcicore.layout import LABELS, OEM_NODE_CONFIG, OEM_SEED_DIR
from hcicore.progress import Progress
from installer.install import Install, InstallContext
from hcicore.digest import sha256_of
from installer.source import ImageSource

from .install_fakes import FakeRunner, lsblk_json, part, wipefs_json

pytestmark = pytest.mark.unit

GiB = 1024**3
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJtzD8hnUz8S5ntZyq3kQ3h3rTuL7WkPzQ6sE1fWq2b ops@example.com"
HASH = "$6$hcisalt$Qec6ivgWo6OAkJqL7FWGjqYP3eYgVBjnN3zBjO6ckA8TXaqsndi62pcOgFWZxbVy1DLi5y46kHrtx8k6S62Ww."


def config(**install: Any):
    return load_config({
        "install": {"device": "/dev/vda", "automatic": False, **install},
        "node": {"hostname": "node1", "password_hash": HASH, "ssh_authorized_keys": [KEY]},
        "cluster": {"token": "secret-token-1234"},
    }, source="test")


class SimRunner(FakeRunner):
    def __init__(self, tmp: Path, *, lsblk: str | None = None, wipefs: str = "", corrupt: bool = False):
        super().__init__(lsblk or lsblk_json(size=40 * GiB), wipefs)
        self.tmp = tmp
        self.corrupt = corrupt
        self.parts = {label: tmp / f"vda{n}" for n, label in enumerate(LABELS, start=1)}

    def __call__(self, argv: list[str], check: bool = True, **kw: Any) -> Result:
        argv = [str(a) for a in argv]
        if argv[0] == "sgdisk":
            sysdev = self.tmp / "sysdevices" / "vda"
            (self.tmp / "sys").mkdir(exist_ok=True)
            for n, (label, path) in enumerate(self.parts.items(), start=1):
                path.write_bytes(b"")
                (sysdev / path.name).mkdir(parents=True, exist_ok=True)
                (sysdev / path.name / "partition").write_text(f"{n}\n")
                if not (self.tmp / "sys" / path.name).is_symlink():
                    (self.tmp / "sys" / path.name).symlink_to(sysdev / path.name)
            self.lsblk = lsblk_json(size=40 * GiB, pttype="gpt", children=[
                part(str(p), label=label) for label, p in self.parts.items()])
        if argv[0] == "dd":
            src = Path(argv[1].removeprefix("if="))
            dst = Path(argv[2].removeprefix("of="))
            data = src.read_bytes()
            if self.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.write_bytes(data)
        if argv[0] == "blkid":
            self.calls.append(argv)
            label = next(lb for lb, p in self.parts.items() if str(p) == argv[-1])
            return Result(argv, 0, label + "\n", "")
        return super().__call__(argv, check=check, **kw)


@pytest.fixture
def image(tmp_path: Path) -> ImageSource:
    path = tmp_path / "rootfs.squashfs"
    path.write_bytes(b"hsqs" + bytes(range(256)) * 64)
    return ImageSource(path, path.stat().st_size, None)


def make(tmp_path: Path, cfg, image: ImageSource, runner, *, confirm: bool = True,
         preflight=lambda cfg, size: [], **kw: Any):
    asked: list[str] = []
    out = io.StringIO()

    def _confirm(text: str) -> bool:
        asked.append(text)
        return confirm

    ctx = InstallContext(image=image, progress=Progress(as_json=True, stream=out), confirm=_confirm,
                         preflight=preflight, runner=runner, work_dir=tmp_path / "work",
                         is_block=lambda p: True, version="9.9.9",
                         sys_block=tmp_path / "sys", dev_dir=tmp_path, notify=lambda *a, **k: None,
                         **{"efi_dir": tmp_path / "no-efi", **kw})
    return Install(cfg, ctx), asked, out


def events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_full_install_runs_steps_in_order_and_fills_oem(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path)
    inst, asked, out = make(tmp_path, config(), image, runner)
    result = inst.execute()
    assert len(asked) == 1 and "/dev/vda" in asked[0] and "it is empty" in asked[0]
    cmds = runner.commands()
    order = [next(i for i, c in enumerate(cmds) if c.startswith(p)) for p in
             ("lsblk", "wipefs --no-act", "wipefs --all /dev/vda", "sgdisk --clear", "partprobe /dev/vda",
              "mkfs.vfat", "mkfs.ext4 -q -F -L hci-oem", "dd ", "mount -t ext4", "grub-install --target=i386-pc",
              "grub-install --target=x86_64-efi", "umount")]
    assert order == sorted(order)
    # the slot holds the image, checked by reading it back
    assert result.image_sha256 == sha256_of(image.path, image.size)
    assert runner.parts["hci-root-a"].read_bytes() == image.path.read_bytes()
    oem = tmp_path / "work" / "oem"
    cfg_file = oem / OEM_NODE_CONFIG
    assert stat.S_IMODE(cfg_file.stat().st_mode) == 0o600
    assert "hostname: node1" in cfg_file.read_text()
    assert sorted(p.name for p in (oem / OEM_SEED_DIR).iterdir()) == ["meta-data", "network-config", "user-data"]
    assert (oem / "boot/grub/grub.cfg").read_text().count("menuentry") == 2
    for copy in ("bootstate.0", "bootstate.1"):
        assert (oem / "hcios" / copy).stat().st_size == 1024
    assert (oem / "hcios/slot-a.good").exists() and not (oem / "hcios/slot-b.good").exists()
    # every partition gets the GUID the install chose; grub.cfg and install.json name the same ones
    sgdisk = next(c for c in cmds if c.startswith("sgdisk --clear"))
    info = json.loads((oem / "hcios/install.json").read_text())
    assert f"--disk-guid={info['disk_guid']}" in sgdisk
    for number, label in enumerate(("hci-bios", "hci-esp", "hci-oem", "hci-root-a", "hci-root-b",
                                    "hci-persistent"), start=1):
        assert f"--partition-guid={number}:{info['partuuids'][label]}" in sgdisk
    grub_cfg = (oem / "boot/grub/grub.cfg").read_text()
    assert f"root=PARTUUID={info['partuuids']['hci-root-b']} " in grub_cfg
    assert f"hci.persistent=PARTUUID={info['partuuids']['hci-persistent']} " in grub_cfg
    assert "PARTLABEL" not in grub_cfg
    log_text = (oem / "hcios/install.log").read_text()
    assert "sgdisk --clear" in log_text and "secret-token-1234" not in log_text and HASH not in log_text
    assert "no expected digest to check it against" in log_text  # the fixture image has none
    assert "image matches the expected" not in log_text
    steps = [e["name"] for e in events(out) if e.get("status") == "done"]
    assert steps == ["preflight", "inspect disk", "verify image", "clear disk", "partition", "filesystems",
                     "write slot A", "mount", "bootloader", "node config"]


def test_operator_saying_no_writes_nothing(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path)
    inst, asked, _ = make(tmp_path, config(), image, runner, confirm=False)
    with pytest.raises(HciError, match="cancelled; nothing was written"):
        inst.execute()
    assert asked and runner.destructive() == []


def test_auto_or_yes_skips_the_question(tmp_path: Path, image: ImageSource) -> None:
    for cfg, kw in ((config(automatic=True), {"auto_mode": True}), (config(), {"assume_yes": True})):
        runner = SimRunner(tmp_path)
        inst, asked, _ = make(tmp_path, cfg, image, runner, confirm=False, **kw)
        inst.execute()
        assert asked == [] and any(c.startswith("sgdisk") for c in runner.commands())


def test_automatic_true_in_a_file_still_asks_at_a_console(tmp_path: Path, image: ImageSource) -> None:
    """`hci install --config FILE` typed by a person: the file's install.automatic does not confirm."""
    runner = SimRunner(tmp_path)
    inst, asked, _ = make(tmp_path, config(automatic=True), image, runner, confirm=False)
    with pytest.raises(HciError, match="cancelled; nothing was written"):
        inst.execute()
    assert len(asked) == 1 and runner.destructive() == []


def test_disk_with_partitions_is_refused_before_confirmation(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path, lsblk=lsblk_json(size=40 * GiB, pttype="gpt", children=[part("/dev/vda1", fstype="ext4")]),
                       wipefs=wipefs_json("gpt", "PMBR"))
    inst, asked, out = make(tmp_path, config(automatic=True), image, runner, auto_mode=True)
    with pytest.raises(ValidationError) as err:
        inst.execute()
    assert "not empty" in str(err.value) and "install.wipe" in str(err.value)
    assert asked == [] and runner.destructive() == []
    assert any(e.get("status") == "failed" and e["name"] == "inspect disk" for e in events(out))


def test_wipe_true_clears_a_used_disk(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path, lsblk=lsblk_json(size=40 * GiB, pttype="gpt", children=[part("/dev/vda1", fstype="ext4")]),
                       wipefs=wipefs_json("gpt"))
    inst, asked, _ = make(tmp_path, config(wipe=True), image, runner)
    inst.execute()
    assert "everything on it will be erased" in asked[0]
    cmds = runner.commands()
    assert cmds.index("wipefs --all /dev/vda1") < cmds.index("wipefs --all /dev/vda") < \
        next(i for i, c in enumerate(cmds) if c.startswith("sgdisk"))


def test_small_disk_is_refused_with_the_shortfall(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path, lsblk=lsblk_json(size=8 * GiB))
    inst, _, _ = make(tmp_path, config(), image, runner)
    with pytest.raises(ValidationError, match="too small"):
        inst.execute()
    assert runner.destructive() == []


def test_failed_preflight_stops_before_the_disk_is_read(tmp_path: Path, image: ImageSource) -> None:
    def preflight(cfg, size):
        raise ValidationError([Problem("preflight.memory", "1.0 GiB of memory, needs 2 GiB")])
    runner = SimRunner(tmp_path)
    inst, _, _ = make(tmp_path, config(automatic=True), image, runner, preflight=preflight, auto_mode=True)
    with pytest.raises(ValidationError, match="preflight.memory"):
        inst.execute()
    assert runner.calls == []


def test_readback_mismatch_fails_and_never_reaches_the_bootloader(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path, corrupt=True)
    inst, _, out = make(tmp_path, config(), image, runner)
    with pytest.raises(DigestMismatch, match="reads back sha256"):
        inst.execute()
    assert not any(c.startswith("grub-install") for c in runner.commands())
    failed = [e for e in events(out) if e.get("status") == "failed"]
    assert [e["name"] for e in failed] == ["write slot A"]
    # the log of the failed install is kept on hci-oem (it was formatted before the failure)
    assert "install failed" in (tmp_path / "work/oem/hcios/install.log").read_text()


def test_failing_command_stops_the_sequence(tmp_path: Path, image: ImageSource) -> None:
    runner = SimRunner(tmp_path)
    runner.fail = {"mkfs.vfat": 1}
    inst, _, _ = make(tmp_path, config(), image, runner)
    with pytest.raises(HciError, match="mkfs.vfat"):
        inst.execute()
    assert not any(c.startswith(("dd", "grub-install", "mkfs.ext4")) for c in runner.commands())


def test_no_device_is_a_validation_error(tmp_path: Path, image: ImageSource) -> None:
    cfg = config()
    cfg.install.device = None
    with pytest.raises(ValidationError, match="install.device"):
        make(tmp_path, cfg, image, SimRunner(tmp_path))


def test_damaged_image_is_refused_before_the_disk_is_touched(tmp_path: Path, image: ImageSource) -> None:
    """A known digest (the medium's .sha256 file, or hcios.image_sha256= on a PXE boot) that the
    image does not have stops the install before the first destructive step."""
    damaged = ImageSource(image.path, image.size, "0" * 64)
    runner = SimRunner(tmp_path)
    inst, _, out = make(tmp_path, config(), damaged, runner)
    with pytest.raises(DigestMismatch, match="nothing was written to the disk"):
        inst.execute()
    assert runner.destructive() == []
    assert [e["name"] for e in events(out) if e.get("status") == "failed"] == ["verify image"]


def test_known_digest_is_checked_and_said_so(tmp_path: Path, image: ImageSource) -> None:
    known = ImageSource(image.path, image.size, sha256_of(image.path, image.size))
    result = make(tmp_path, config(), known, SimRunner(tmp_path))[0].execute()
    assert result.image_sha256 == known.sha256
    log_text = (tmp_path / "work/oem/hcios/install.log").read_text()
    assert f"image matches the expected sha256 {known.sha256}" in log_text
    assert "no expected digest" not in log_text


def _data_disk(runner: FakeRunner, *, used: bool) -> None:
    children = [part("/dev/vdb1", fstype="xfs")] if used else None
    runner.other_disks["/dev/vdb"] = (lsblk_json("/dev/vdb", size=100 * GiB, pttype="gpt" if used else None,
                                                 children=children),
                                      wipefs_json("gpt") if used else "")


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


class TwoDiskRunner(SimRunner):
    """lsblk of all disks also lists /dev/vdb, which carries another hcios install."""

    def __call__(self, argv: list[str], check: bool = True, **kw: Any) -> Result:
        argv = [str(a) for a in argv]
        if argv[0] == "lsblk" and not argv[-1].startswith("/dev/"):
            self.calls.append(argv)
            vda = json.loads(self.lsblk)["blockdevices"]
            vdb = json.loads(lsblk_json("/dev/vdb", pttype="gpt", children=[
                part("/dev/vdb4", label="hci-root-a"), part("/dev/vdb6", label="hci-persistent"),
                part("/dev/vdb7", label="data")], serial="DATA1"))["blockdevices"]
            return Result(argv, 0, json.dumps({"blockdevices": vda + vdb}), "")
        return super().__call__(argv, check, **kw)


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


@pytest.mark.parametrize("console,live,want", [
    (None, "BOOT_IMAGE=/boot/vmlinuz root=live:CDLABEL=X console=ttyS1,115200n8 hcios.live=install",
     "console=ttyS1,115200n8"),
    ("console=tty0 console=ttyS1,57600n8", "console=ttyS0,115200n8", "console=tty0 console=ttyS1,57600n8"),
    (None, "root=live:CDLABEL=X", "console=tty0 console=ttyS0,115200n8"),
], ids=["from-live", "node.console", "default"])
def test_node_consoles(tmp_path: Path, image: ImageSource, console: str | None, live: str, want: str) -> None:
    cfg = config()
    cfg.node.console = console
    inst, _, _ = make(tmp_path, cfg, image, SimRunner(tmp_path), live_cmdline=live)
    assert inst.consoles() == want


def test_an_unexpected_error_keeps_its_traceback_in_the_install_log(tmp_path: Path, image: ImageSource,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise KeyError("hci-oem-missing")

    monkeypatch.setattr("installer.bootloader.write_boot_state", broken)
    inst, _, _ = make(tmp_path, config(), image, SimRunner(tmp_path))
    with pytest.raises(HciError, match="bootloader: KeyError"):
        inst.execute()
    text = (tmp_path / "work/oem/hcios/install.log").read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text and "hci-oem-missing" in text


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



def test_a_uefi_install_puts_the_disk_first_in_the_boot_order(tmp_path: Path, image: ImageSource) -> None:
    efi = tmp_path / "efi"
    efi.mkdir()

    class Firmware(SimRunner):
        def __call__(self, argv, check=True, **kw):
            if argv == ["efibootmgr"]:
                self.calls.append(argv)
                return Result(argv, 0, "BootCurrent: 0001\nBootOrder: 0001,0003\nBoot0001* UEFI PXEv4\n"
                                       "Boot0003* hcios\tHD(2,GPT,...)\n", "")
            return super().__call__(argv, check=check, **kw)

    runner = Firmware(tmp_path)
    inst, _, _ = make(tmp_path, config(), image, runner, efi_dir=efi)
    result = inst.execute()
    cmds = runner.commands()
    assert "efibootmgr --quiet --bootnum 0003 --delete-bootnum" in cmds  # the old entry, not PXE's
    assert "efibootmgr --quiet --create --disk /dev/vda --part 2 --label hcios --loader \\EFI\\BOOT\\BOOTX64.EFI" in cmds
    assert not any("0001" in c and "delete" in c for c in cmds) and result.warnings == []
    # BIOS: nothing to set
    runner = SimRunner(tmp_path)
    make(tmp_path, config(), image, runner)[0].execute()
    assert not any(c.startswith("efibootmgr") for c in runner.commands())
