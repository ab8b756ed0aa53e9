"""GRUB for BIOS and UEFI on the install disk, its A/B menu and the first boot state.

Both grubs keep their modules and ``grub.cfg`` on ``hci-oem`` (``/boot/grub``): the BIOS core
image sits in ``hci-bios``, the UEFI one at ``EFI/BOOT/BOOTX64.EFI`` on ``hci-esp`` (the removable
path, so no NVRAM entry is needed; Debian's signed shim and grub when the system has them, with
``EFI/debian/grub.cfg`` pointing to hci-oem). The kernel and initramfs are read from the slot's squashfs.
The boot state (two copies and the good-slot markers) is :mod:`hcicore.bootstate`; the protocol
is in docs/upgrade.md.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2

from hcicore import signedboot
from hcicore.bootargs import DEFAULT_CONSOLE_ARGS, GRUB_SERIAL
from hcicore.bootstate import COPIES, MAX_TRIES, BootStateStore
from hcicore.command import run
from hcicore.errors import HciError
from hcicore.layout import OEM_DIR, OEM_MOUNT, OEM_SEED_DIR, Layout

from .disk import Runner

# Every boot: a kernel panic or a crashed PID 1 reboots instead of hanging.
HANG_ARGS = "panic=10 systemd.crash_reboot=yes"
# A trial boot only (grub.cfg adds it to the slot on trial): an initramfs failure reboots, and
# grub's counted tries then fall back to the good slot. dracut's emergency service honours
# rd.emergency only without a shell (rd.shell=0), and its die() halts whatever rd.emergency
# says, so the hci-root module's shutdown-emergency hook reboots when hci.trial is set; hci.trial
# also tells the node services (the health gate, the trial deadline) that this boot is a trial.
# The good slot itself stops in dracut's emergency shell on the consoles instead, with its error
# shown: rebooting it could only loop.
TRIAL_ARGS = "rd.emergency=reboot rd.shell=0 hci.trial=1"
# cloud-init's NoCloud seed on hci-oem, which the hci-root dracut module mounts at /run/hci/oem.
SEED_URL = f"file://{OEM_MOUNT}/{OEM_SEED_DIR}/"


@dataclass(frozen=True)
class SlotEntry:
    name: str
    number: int
    args: str


def kernel_args(slot: str, partuuids: dict[str, str], *, extra: str = "",
                consoles: str = DEFAULT_CONSOLE_ARGS) -> str:
    """Kernel command line of an installed node booting ``slot`` (a or b).

    Every partition is named by its PARTUUID, which the installer chose for this disk: the root
    slot, ``hci-oem`` and ``hci-persistent`` are then always the ones of the disk grub booted
    from, never a same-named partition of another disk (harvester#3070)."""
    parts = [
        f"root=PARTUUID={partuuids[f'hci-root-{slot}']} rootfstype=squashfs ro",
        consoles,
        HANG_ARGS,
        f"hci.slot={slot}",
        f"hci.oem=PARTUUID={partuuids['hci-oem']}",
        f"hci.persistent=PARTUUID={partuuids['hci-persistent']}",
        # grub quoting keeps the ';' inside one kernel argument
        f"'ds=nocloud;s={SEED_URL}'",
        # the slots and the ESP are mounted by hcios, not guessed by systemd-gpt-auto-generator
        "systemd.gpt_auto=0",
        extra,
    ]
    return " ".join(p for p in parts if p)


def render_grub_cfg(layout: Layout, partuuids: dict[str, str], *, version: str, timeout: int = 3,
                    extra_args: str = "", consoles: str = DEFAULT_CONSOLE_ARGS) -> str:
    """The installed node's grub.cfg; ``consoles`` are the kernel's console= arguments (those the
    live system was booted with, or ``node.console``), grub itself uses the screen, COM1 and COM2."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    slots = [SlotEntry(s, layout.by_label(f"hci-root-{s}").number, kernel_args(s, partuuids, extra=extra_args,
                                                                              consoles=consoles))
             for s in ("a", "b")]
    return env.get_template("grub.cfg.j2").render(
        version=version, timeout=timeout, max_tries=MAX_TRIES, env_dir=f"/{OEM_DIR}", copies=COPIES,
        trial_args=TRIAL_ARGS, oem=layout.by_label("hci-oem").number,
        labels=[p.label for p in layout.partitions], slots=slots, grub_serial=GRUB_SERIAL)


def write_boot_state(oem_root: Path, *, good: str = "a") -> None:
    """The first boot state: slot ``good`` marked good, no trial, both copies."""
    BootStateStore(oem_root).initialize(good)


def esp_stub_cfg(oem_number: int) -> str:
    """``EFI/debian/grub.cfg`` on the ESP, read by Debian's signed grub: the menu on hci-oem of
    the same disk (partition number, as the menu finds the slots)."""
    return (
        "# hcios: Debian's signed grub (started by shim) reads this file; the boot menu and the\n"
        "# boot state are on hci-oem of this disk. Written by `hci install`; do not edit.\n"
        "regexp --set=1:hci_esp_disk '^(.*),gpt[0-9]+$' \"$root\"\n"
        f"set root=($hci_esp_disk,gpt{oem_number})\n"
        "set prefix=($root)/boot/grub\n"
        "configfile $prefix/grub.cfg\n"
    )


def install_grub(disk: str, *, oem_root: Path, esp_root: Path, grub_cfg: str, oem_number: int,
                 runner: Runner = run, system_root: Path = Path("/")) -> str:
    """Install BIOS and UEFI grub on ``disk`` with the menu (``grub.cfg``) on hci-oem.

    UEFI: Debian's signed shim and grub from the running system (hcicore.signedboot) on the
    ESP's removable path, so the node boots with Secure Boot on or off; without them, hcios's
    own unsigned grub (Secure Boot must be off). Returns which of the two was installed."""
    boot_dir = oem_root / "boot"
    runner(["grub-install", "--target=i386-pc", f"--boot-directory={boot_dir}",
            "--modules=part_gpt ext2", disk])
    signed = signedboot.signed_files(system_root)
    if signed is None:
        runner(["grub-install", "--target=x86_64-efi", "--removable", "--no-nvram",
                "--no-uefi-secure-boot", f"--efi-directory={esp_root}", f"--boot-directory={boot_dir}",
                "--modules=part_gpt ext2", disk])
        kind = "unsigned"
    else:
        removable = esp_root / signedboot.REMOVABLE_DIR
        removable.mkdir(parents=True, exist_ok=True)
        for name, src in signed.items():
            shutil.copyfile(src, removable / name)
        stub = esp_root / signedboot.DISK_CONFIG
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text(esp_stub_cfg(oem_number))
        kind = "signed"
    cfg = boot_dir / "grub" / "grub.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(grub_cfg)
    return kind


EFI_LABEL = "hcios"
EFI_LOADER = "\\EFI\\BOOT\\BOOTX64.EFI"  # the removable path: shim, or the unsigned grub
_BOOT_ENTRY = re.compile(r"^Boot([0-9A-Fa-f]{4})\*?\s+(.*)$")


def set_uefi_boot_entry(disk: str, esp_number: int, *, runner: Runner = run,
                        efi_dir: Path = Path("/sys/firmware/efi")) -> str | None:
    """After an install booted in UEFI mode: an NVRAM entry for the disk, first in BootOrder, so
    the node boots its disk next and not the network again (the removable path stays as the
    fallback for firmware that forgets NVRAM). Older ``hcios`` entries are removed first.
    Returns a warning when the firmware refuses (some do); BIOS boots have nothing to set."""
    if not efi_dir.is_dir():
        return None
    try:
        listing = runner(["efibootmgr"], check=False)
    except HciError as exc:  # efibootmgr missing: the removable path still boots the disk
        return f"UEFI boot entry not set: {exc}"
    if listing.returncode != 0:
        return f"UEFI boot entry not set: efibootmgr failed: {listing.stderr.strip()}"
    for line in listing.stdout.splitlines():
        match = _BOOT_ENTRY.match(line.strip())
        if match and match.group(2).split("\t")[0].strip() == EFI_LABEL:
            runner(["efibootmgr", "--quiet", "--bootnum", match.group(1), "--delete-bootnum"], check=False)
    made = runner(["efibootmgr", "--quiet", "--create", "--disk", disk, "--part", str(esp_number),
                   "--label", EFI_LABEL, "--loader", EFI_LOADER], check=False)
    if made.returncode != 0:
        return (f"UEFI boot entry not set ({made.stderr.strip()}): the firmware boots the disk through "
                "the removable path; put the disk before the network in the boot order")
    return None
