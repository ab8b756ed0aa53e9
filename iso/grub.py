"""GRUB pieces of the ISO: the menu (grub.cfg) and the BIOS and UEFI boot images.

Both core images embed every module the menu needs and an early config that finds the medium
by its volume label, so no module directory is needed on the ISO and the result depends only on
its inputs (no random UUIDs, unlike grub-mkrescue, which stamps the build time into the image).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import jinja2

from hcicore.command import run

from hcicore import signedboot
from hcicore.bootargs import GRUB_SERIAL

from .bootargs import live_root_cdlabel, menu_entries

GRUB_LIB = Path("/usr/lib/grub")
BIOS_HYBRID_MBR = GRUB_LIB / "i386-pc" / "boot_hybrid.img"

_COMMON_MODULES = [
    "iso9660", "part_msdos", "part_gpt", "fat", "normal", "configfile", "linux", "search",
    "search_label", "search_fs_file", "search_fs_uuid", "echo", "test", "serial", "terminal",
    "ls", "cat", "halt", "reboot", "sleep", "gzio", "xzio", "minicmd", "loadenv", "true",
]
BIOS_MODULES = _COMMON_MODULES + ["biosdisk", "vga", "vbe"]
EFI_MODULES = _COMMON_MODULES + ["efi_gop", "efi_uga", "all_video", "efifwsetup", "chain"]

# The BIOS El Torito image as the ISO tree names it (xorriso -b).
ELTORITO_PATH = "boot/grub/i386-pc/eltorito.img"


def render_grub_cfg(*, version: str, arch: str, label: str, timeout: int = 5) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    main, other = menu_entries(version)
    return env.get_template("grub.cfg.j2").render(
        version=version,
        arch=arch,
        timeout=timeout,
        grub_serial=GRUB_SERIAL,
        live_args=live_root_cdlabel(label),
        main_entries=main,
        other_entries=other,
        default_id=main[0].id,
    )


def _early_cfg(work: Path, label: str) -> Path:
    path = work / "early.cfg"
    path.write_text(
        f"search --no-floppy --label {label} --set=root\n"
        "set prefix=($root)/boot/grub\n"
    )
    return path


def build_bios_image(work: Path, label: str, out: Path) -> None:
    """El Torito no-emulation image (cdboot.img + core), also reached by the hybrid MBR on USB."""
    run([
        "grub-mkimage", "-O", "i386-pc-eltorito", "-d", str(GRUB_LIB / "i386-pc"),
        "-p", "/boot/grub", "-c", str(_early_cfg(work, label)), "-o", str(out), *BIOS_MODULES,
    ])


def cd_stub_cfg(label: str) -> str:
    """``/boot/grub/grub.cfg`` inside the EFI image, read by Debian's signed gcdx64.efi when it
    starts from that image (a USB stick's ESP, or the El Torito image): the medium's menu."""
    return (
        f"search --no-floppy --label {label} --set=root\n"
        "set prefix=($root)/boot/grub\n"
        "configfile $prefix/grub.cfg\n"
    )


def build_efi_image(work: Path, label: str, out: Path, epoch: int,
                    signed: dict[str, Path] | None = None) -> None:
    """A FAT image holding EFI/BOOT/BOOTX64.EFI: the El Torito EFI image and the ESP on USB.

    With ``signed`` (hcicore.signedboot: shim, Debian's signed CD grub, MokManager) the medium
    boots with Secure Boot on; without, hcios's own grub image (Secure Boot off)."""
    tree = work / "efi-tree"
    efi_dir = tree / "EFI" / "BOOT"
    efi_dir.mkdir(parents=True, exist_ok=True)
    if signed is None:
        run([
            "grub-mkimage", "-O", "x86_64-efi", "-d", str(GRUB_LIB / "x86_64-efi"),
            "-p", "/boot/grub", "-c", str(_early_cfg(work, label)), "-o", str(efi_dir / "BOOTX64.EFI"),
            *EFI_MODULES,
        ])
    else:
        for name, src in signed.items():
            shutil.copyfile(src, efi_dir / name)
        stub = tree / signedboot.CD_CONFIG
        stub.parent.mkdir(parents=True)
        stub.write_text(cd_stub_cfg(label))
    paths = sorted(tree.rglob("*"))
    size_kib = sum(p.stat().st_size for p in paths if p.is_file()) // 1024 + 1024  # room for FAT metadata
    size_kib += -size_kib % 1024
    for p in paths:
        os.utime(p, (epoch, epoch))
    out.unlink(missing_ok=True)
    env = {"SOURCE_DATE_EPOCH": str(epoch), "MTOOLS_SKIP_CHECK": "1"}
    # --invariant: fixed volume id and times, so the image is reproducible.
    run(["mkfs.fat", "-C", "--invariant", "-n", "HCIOS_EFI", str(out), str(size_kib)], env=env)
    dirs = [p for p in paths if p.is_dir()]
    run(["mmd", "-i", str(out), *(f"::/{d.relative_to(tree).as_posix()}" for d in dirs)], env=env)
    for f in (p for p in paths if p.is_file()):
        run(["mcopy", "-m", "-i", str(out), str(f), f"::/{f.relative_to(tree).as_posix()}"], env=env)
