"""The installed node's grub.cfg (A/B logic over two boot state copies) and kernel line.

What grub really does with every boot state (torn copies, none valid, the countdown) is shown by
booting grub itself in tests/vm/test_grub_protocol.py; these check the rendered text."""
from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from hcicore.layout import LABELS, plan_layout
from installer.bootloader import kernel_args, render_grub_cfg, write_boot_state

pytestmark = pytest.mark.unit

GiB = 1024**3
PARTUUIDS = {label: str(uuid.uuid4()) for label in LABELS}


@pytest.fixture
def cfg_text() -> str:
    return render_grub_cfg(plan_layout(40 * GiB, 300 * 1024**2, device="/dev/vda"), PARTUUIDS, version="1.2.3")


def test_kernel_args_name_every_partition_by_partuuid() -> None:
    args = kernel_args("a", PARTUUIDS).split()
    for word in (f"root=PARTUUID={PARTUUIDS['hci-root-a']}", "rootfstype=squashfs", "ro", "console=tty0",
                 "console=ttyS0,115200n8", "panic=10", "systemd.crash_reboot=yes", "hci.slot=a",
                 f"hci.oem=PARTUUID={PARTUUIDS['hci-oem']}",
                 f"hci.persistent=PARTUUID={PARTUUIDS['hci-persistent']}"):
        assert word in args
    assert not any("PARTLABEL" in w or "LABEL=" in w for w in args)
    assert "rd.emergency=reboot" not in args and "hci.trial=1" not in args  # trial boots only
    assert "'ds=nocloud;s=file:///run/hci/oem/hcios/nocloud/'" in kernel_args("a", PARTUUIDS)
    assert f"root=PARTUUID={PARTUUIDS['hci-root-b']}" in kernel_args("b", PARTUUIDS)


def test_slots_by_partition_number_on_the_disk_of_grub_cfg(cfg_text: str) -> None:
    assert 'menuentry "hcios slot A" --id hci-a {\n  set root=($hci_disk,gpt4)' in cfg_text
    assert 'menuentry "hcios slot B" --id hci-b {\n  set root=($hci_disk,gpt5)' in cfg_text
    assert "regexp --set=1:hci_disk '^(.*),gpt[0-9]+$' \"$root\"" in cfg_text
    assert cfg_text.count("linux /boot/vmlinuz ") == 2 and cfg_text.count("initrd /boot/initrd.img") == 2


def test_both_copies_are_read_checked_and_countdown_saved_to_both(cfg_text: str) -> None:
    for copy in ("bootstate.0", "bootstate.1"):
        assert f"load_env --file /hcios/{copy} hci_seq hci_good hci_try hci_tries hci_check" in cfg_text
        assert f"save_env --file /hcios/{copy} hci_seq hci_good hci_try hci_tries hci_check" in cfg_text
    assert cfg_text.count('[ "$hci_check" = "$hci_seq:$hci_good:$hci_try:$hci_tries" ]') == 2
    for n in range(5, 0, -1):
        assert f'if [ "$hci_tries" = {n} ]; then\n      set hci_tries={n - 1}\n      set default=hci-$hci_try' in cfg_text
    assert '= 0 ]; then\n      set hci_tries' not in cfg_text  # zero tries never selects the trial
    assert cfg_text.index("save_env") < cfg_text.index("menuentry")
    assert "set fallback=hci-$hci_good" in cfg_text
    # with no valid copy, only a slot that has a good marker
    assert "if [ -f /hcios/slot-a.good ]; then" in cfg_text


def test_only_a_counted_trial_gets_the_trial_arguments(cfg_text: str) -> None:
    saved = cfg_text.index('if [ "$hci_saved" = 1 ]; then\n        set hci_trial_slot=$hci_try')
    assert cfg_text.index("else\n        set default=hci-$hci_good", saved) < cfg_text.index("menuentry")
    assert cfg_text.count("set hci_trial_slot=$hci_try") == 1
    for slot in ("a", "b"):
        entry = cfg_text[cfg_text.index(f"--id hci-{slot} {{"):]
        entry = entry[:entry.index("\n}")]
        assert 'set hci_trial_args="rd.emergency=reboot rd.shell=0 hci.trial=1"' in entry
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


def test_first_boot_state(tmp_path) -> None:
    write_boot_state(tmp_path)
    for name in ("bootstate.0", "bootstate.1"):
        data = (tmp_path / "hcios" / name).read_bytes()
        assert len(data) == 1024 and b"hci_good=a\nhci_try=\nhci_tries=0\nhci_check=1:a::0\n" in data
    assert (tmp_path / "hcios/slot-a.good").exists() and not (tmp_path / "hcios/slot-b.good").exists()
    assert not list((tmp_path / "hcios").glob(".*"))


def test_the_node_keeps_the_consoles_the_installer_was_booted_with() -> None:
    cfg = render_grub_cfg(plan_layout(40 * GiB, 300 * 1024**2, device="/dev/vda"), PARTUUIDS, version="1.2.3",
                          consoles="console=tty0 console=ttyS1,115200n8")
    assert cfg.count("console=tty0 console=ttyS1,115200n8") == 2 and "ttyS0" not in cfg
    assert "terminal_output --append serial_com1" in cfg and "terminal_output --append serial_com0" in cfg
