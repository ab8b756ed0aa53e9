"""Install step order and safety, with a recording runner standing in for the disk tools.

The runner answers lsblk/wipefs like the real tools; after ``sgdisk`` its lsblk lists six
partitions that are plain files in tmp_path, and ``dd`` really copies, so the slot write is
read back and checked by the real code.
"""
from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from hcicore import signedboot
from hcicore.command import Result
from hcicore.errors import DigestMismatch, HciError, Problem, ValidationError
from hcicore.layout import OEM_NODE_CONFIG, OEM_SEED_DIR
from hcicore.digest import sha256_of
from installer.source import ImageSource

from .install_fakes import lsblk_json, part, wipefs_json
from .install_sim import HASH, GiB, SimRunner, config, events, make

pytestmark = pytest.mark.unit

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
    def preflight(cfg, size, unattended=False):
        assert unattended  # --auto: the preflight stops on a failed check
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


def test_the_esp_gets_debians_signed_shim_and_grub_when_the_system_has_them(tmp_path: Path,
                                                                             image: ImageSource) -> None:
    system = tmp_path / "system"
    for rel, blob in ((signedboot.SHIM, b"shim"), (signedboot.GRUB_DISK, b"grub"), (signedboot.MOK_MANAGER, b"mm")):
        (system / rel).parent.mkdir(parents=True, exist_ok=True)
        (system / rel).write_bytes(blob)
    runner = SimRunner(tmp_path)
    inst, _, _ = make(tmp_path, config(), image, runner, system_root=system)
    inst.execute()
    cmds = runner.commands()
    assert any(c.startswith("grub-install --target=i386-pc") for c in cmds)  # BIOS as before
    assert not any("x86_64-efi" in c for c in cmds)  # no unsigned EFI grub
    boot = inst.esp_root / "EFI/BOOT"
    assert {p.name: p.read_bytes() for p in boot.iterdir()} == {
        "BOOTX64.EFI": b"shim", "grubx64.efi": b"grub", "mmx64.efi": b"mm"}
    stub = (inst.esp_root / "EFI/debian/grub.cfg").read_text()
    oem = inst.layout.by_label("hci-oem").number
    assert f"set root=($hci_esp_disk,gpt{oem})" in stub and "configfile $prefix/grub.cfg" in stub
    assert "UEFI boot loader: Debian's signed shim and grub" in (inst.oem_root / "hcios/install.log").read_text()
    # without them (this host has none): hcios's own grub, which needs Secure Boot off
    runner = SimRunner(tmp_path)
    make(tmp_path, config(), image, runner, system_root=tmp_path / "bare")[0].execute()
    assert any(c.startswith("grub-install --target=x86_64-efi") and "--no-uefi-secure-boot" in c
               for c in runner.commands())
