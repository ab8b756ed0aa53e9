"""The installed node's grub.cfg (A/B logic) and grub environment block."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from hcicore.layout import plan_layout
from installer.bootloader import ENV_SIZE, grubenv_block, kernel_args, render_grub_cfg, write_boot_state

pytestmark = pytest.mark.unit

GiB = 1024**3


@pytest.fixture
def cfg_text() -> str:
    return render_grub_cfg(plan_layout(40 * GiB, 300 * 1024**2, device="/dev/vda"), version="1.2.3")


def test_kernel_args_contract() -> None:
    args = kernel_args("a")
    for word in ("root=PARTLABEL=hci-root-a", "rootfstype=squashfs", "ro", "console=tty0",
                 "console=ttyS0,115200n8", "panic=10", "systemd.crash_reboot=yes", "hci.slot=a"):
        assert word in args.split()
    assert "rd.emergency=reboot" not in args  # only a trial boot reboots from the initramfs
    assert "'ds=nocloud;s=file:///run/hci/oem/hcios/nocloud/'" in args
    assert "hci.slot=b" in kernel_args("b") and "PARTLABEL=hci-root-b" in kernel_args("b")


def test_grub_cfg_boots_each_slot_from_its_partition_number(cfg_text: str) -> None:
    # layout: 4 = hci-root-a, 5 = hci-root-b, 3 = hci-oem
    assert 'menuentry "hcios slot A" --id hci-a {\n  set root=($hci_disk,gpt4)' in cfg_text
    assert 'menuentry "hcios slot B" --id hci-b {\n  set root=($hci_disk,gpt5)' in cfg_text
    assert "regexp --set=1:hci_disk '^(.*),gpt[0-9]+$' \"$root\"" in cfg_text
    for mod in ("part_gpt", "squash4", "xzio", "loadenv"):
        assert f"insmod {mod}\n" in cfg_text
    assert cfg_text.count("linux /boot/vmlinuz ") == 2
    assert cfg_text.count("initrd /boot/initrd.img") == 2


def test_trial_decrements_before_boot_and_falls_back_at_zero(cfg_text: str) -> None:
    # every non-zero count steps down by one and selects the trial slot
    for n in (3, 2, 1):
        assert f'if [ "$hci_tries" = {n} ]; then\n      set hci_tries={n - 1}\n      set default=hci-$hci_try' in cfg_text
    assert '= 0 ]; then' not in cfg_text  # zero tries never selects the trial
    save = cfg_text.index('save_env --file "$hci_env" hci_tries')
    assert save < cfg_text.index("menuentry")
    assert "set fallback=hci-$hci_active" in cfg_text


def test_only_a_counted_trial_gets_the_reboot_on_emergency(cfg_text: str) -> None:
    """rd.emergency=reboot is added to the slot on trial, and only after its try was saved; a
    failed save_env boots the good slot (an uncounted trial could loop forever)."""
    save = cfg_text.index('if save_env --file "$hci_env" hci_tries; then\n        set hci_trial_slot=$hci_try')
    failed = cfg_text.index("else\n        set default=hci-$hci_active", save)
    assert save < failed < cfg_text.index("menuentry")
    assert cfg_text.count("set hci_trial_slot=$hci_try") == 1
    assert "set hci_trial_slot=\nexport hci_trial_slot" in cfg_text
    for slot in ("a", "b"):
        entry = cfg_text[cfg_text.index(f"--id hci-{slot} {{"):]
        entry = entry[:entry.index("\n}")]
        assert (f'if [ "$hci_trial_slot" = {slot} ]; then\n    set hci_trial_args="rd.emergency=reboot"'
                in entry)
        assert entry.split("linux /boot/vmlinuz ")[1].split("\n")[0].endswith(" $hci_trial_args")


@pytest.mark.skipif(shutil.which("grub-script-check") is None, reason="grub-script-check not installed")
def test_grub_script_check_accepts_it(cfg_text: str, tmp_path) -> None:
    path = tmp_path / "grub.cfg"
    path.write_text(cfg_text)
    proc = subprocess.run(["grub-script-check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    broken = tmp_path / "broken.cfg"
    broken.write_text(cfg_text.replace("\nfi\n", "\n", 1))
    assert subprocess.run(["grub-script-check", str(broken)], capture_output=True).returncode != 0


def test_grubenv_block_is_one_kib_and_both_copies_written(tmp_path) -> None:
    block = grubenv_block({"hci_active": "a", "hci_try": "", "hci_tries": "0"})
    assert len(block) == ENV_SIZE
    assert block.startswith(b"# GRUB Environment Block\nhci_active=a\nhci_try=\nhci_tries=0\n#")
    write_boot_state(tmp_path, active="b")
    for name in ("grubenv", "grubenv.bak"):
        data = (tmp_path / "hcios" / name).read_bytes()
        assert len(data) == ENV_SIZE and b"hci_active=b\n" in data
    assert not list((tmp_path / "hcios").glob(".*tmp"))


@pytest.mark.skipif(shutil.which("grub-editenv") is None, reason="grub-editenv not installed")
def test_grub_editenv_reads_our_block(tmp_path) -> None:
    write_boot_state(tmp_path)
    out = subprocess.run(["grub-editenv", str(tmp_path / "hcios" / "grubenv"), "list"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["hci_active=a", "hci_try=", "hci_tries=0"]
