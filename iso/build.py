"""Build the hybrid live/installer ISO ``hcios-<version>-<arch>.iso``.

Layout of the medium:
  /boot/vmlinuz, /boot/initrd.img     kernel and dracut initramfs (dmsquash-live, hci-live)
  /boot/grub/grub.cfg                 menu (see grub.cfg.j2)
  /boot/grub/i386-pc/eltorito.img     BIOS El Torito image (also started by the hybrid MBR)
  /LiveOS/squashfs.img                the build's rootfs.squashfs, byte for byte
  /LiveOS/squashfs.img.sha256         its digest: the installer checks the image against it before writing
  /airgap/...                         component images, when an airgap bundle is given
  /.hcios/build.json                  version, arch, label, squashfs sha256
  appended partition 2 (GPT, EFI System): FAT image with EFI/BOOT/BOOTX64.EFI, also the
  El Torito EFI boot image: Debian's signed shim, grubx64.efi (the signed CD grub) and
  mmx64.efi, with /boot/grub/grub.cfg pointing to the medium's menu, when the image has them
  (then the ISO boots with Secure Boot on); else hcios's own unsigned grub.

Bootable as a CD (BIOS and UEFI El Torito) and written raw to a USB stick (MBR boot code for
BIOS, GPT/MBR with an EFI system partition for UEFI). Reproducible: SOURCE_DATE_EPOCH (or the
squashfs mtime) fixes every date, the FAT image is built with --invariant.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Protocol

from hcicore.command import run
from hcicore.digest import sha256_file
from hcicore.errors import Problem, ValidationError

from .bootargs import volume_label
from .grub import BIOS_HYBRID_MBR, ELTORITO_PATH, build_bios_image, build_efi_image, render_grub_cfg

EFI_SYSTEM_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BASIC_DATA_GUID = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"


class ProgressLike(Protocol):
    def start(self, name: str, **fields: object) -> None: ...
    def done(self, name: str, **fields: object) -> None: ...


def iso_name(version: str, arch: str) -> str:
    return f"hcios-{version}-{arch}.iso"



def _check_inputs(squashfs: Path, kernel: Path, initrd: Path, airgap_dir: Path | None,
                  version: str, arch: str) -> None:
    problems = [
        Problem(name, f"{path} is not a file", "build the image first (hci build)")
        for name, path in (("squashfs", squashfs), ("kernel", kernel), ("initrd", initrd))
        if not path.is_file()
    ]
    if airgap_dir is not None and not airgap_dir.is_dir():
        problems.append(Problem("airgap_dir", f"{airgap_dir} is not a directory", "pass a directory or none"))
    if not version or "/" in version:
        problems.append(Problem("version", f"{version!r} is not a usable version", "e.g. 1.2.0"))
    if arch not in ("amd64", "x86_64"):
        problems.append(Problem("arch", f"{arch!r}: the ISO boots x86-64 only", "build for amd64"))
    if problems:
        raise ValidationError(problems)


def _epoch(squashfs: Path, given: int | None) -> int:
    if given is not None:
        return given
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value:
        return int(value)
    return int(squashfs.stat().st_mtime)


def _xorriso_date(epoch: int) -> str:
    return time.strftime("%Y%m%d%H%M%S00", time.gmtime(epoch))


def build_iso(
    *,
    squashfs: Path,
    kernel: Path,
    initrd: Path,
    out_dir: Path,
    version: str,
    arch: str,
    airgap_dir: Path | None,
    progress: ProgressLike,
    timeout: int = 5,
    source_date_epoch: int | None = None,
    squashfs_sha256: str | None = None,
    signed_efi: dict[str, Path] | None = None,
) -> Path:
    """Write ``out_dir/hcios-<version>-<arch>.iso`` and return its path.

    Every date on the medium is ``source_date_epoch``, else ``$SOURCE_DATE_EPOCH``, else the
    squashfs's mtime. ``timeout`` is the grub menu's timeout in seconds. ``signed_efi``: the
    image's signed shim and CD grub (hcicore.signedboot) for a medium that boots with Secure Boot."""
    squashfs, kernel, initrd = Path(squashfs), Path(kernel), Path(initrd)
    _check_inputs(squashfs, kernel, initrd, airgap_dir, version, arch)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / iso_name(version, arch)
    label = volume_label(version)
    epoch = _epoch(squashfs, source_date_epoch)
    progress.start("iso", detail=out.name)
    with tempfile.TemporaryDirectory(prefix=".iso-work-", dir=out_dir) as tmp:
        work = Path(tmp)
        stage = work / "stage"
        (stage / "boot" / "grub" / "i386-pc").mkdir(parents=True)
        (stage / "LiveOS").mkdir()
        (stage / ".hcios").mkdir()
        digest = squashfs_sha256 or sha256_file(squashfs)
        (stage / "boot" / "grub" / "grub.cfg").write_text(
            render_grub_cfg(version=version, arch=arch, label=label, timeout=timeout))
        (stage / "LiveOS" / "squashfs.img.sha256").write_text(f"{digest}  squashfs.img\n")
        (stage / ".hcios" / "build.json").write_text(json.dumps(
            {"version": version, "arch": arch, "label": label, "squashfs_sha256": digest},
            indent=2, sort_keys=True) + "\n")
        build_bios_image(work, label, stage / ELTORITO_PATH)
        efi_img = work / "efi.img"
        build_efi_image(work, label, efi_img, epoch, signed_efi)
        for path in sorted(stage.rglob("*")) + [stage]:
            os.utime(path, (epoch, epoch), follow_symlinks=False)
        grafts = [
            f"/boot/vmlinuz={kernel}",
            f"/boot/initrd.img={initrd}",
            f"/LiveOS/squashfs.img={squashfs}",
        ]
        if airgap_dir is not None:
            grafts.append(f"/airgap={airgap_dir}")
        partial = work / out.name
        run(_xorriso_argv(label=label, date=_xorriso_date(epoch), efi_img=efi_img,
                          stage=stage, grafts=grafts, out=partial),
            env={"SOURCE_DATE_EPOCH": str(epoch)})
        partial.chmod(0o644)
        os.replace(partial, out)
    progress.done("iso", path=str(out), size=out.stat().st_size)
    return out


def _xorriso_argv(*, label: str, date: str, efi_img: Path, stage: Path, grafts: list[str],
                  out: Path) -> list[str]:
    return [
        "xorriso", "-as", "mkisofs",
        "-iso-level", "3",          # files over 4 GiB (airgap images)
        "-rational-rock",
        "-volid", label,
        "--modification-date=" + date,
        "-graft-points",
        # BIOS on a USB stick: MBR code that starts the El Torito image.
        "--grub2-mbr", str(BIOS_HYBRID_MBR),
        "--mbr-force-bootable",
        # Start the ISO filesystem at 16 blocks so it can also be a GPT partition.
        "-partition_offset", "16",
        # UEFI on a USB stick: the FAT image becomes GPT partition 2, type EFI System.
        "-append_partition", "2", EFI_SYSTEM_GUID, str(efi_img),
        "-appended_part_as_gpt",
        "-iso_mbr_part_type", BASIC_DATA_GUID,
        # El Torito: BIOS no-emulation image, then the EFI image (the appended partition).
        "-c", "/boot/boot.catalog",
        "-b", "/" + ELTORITO_PATH,
        "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "--grub2-boot-info",
        "-eltorito-alt-boot",
        "-e", "--interval:appended_partition_2:all::",
        "-no-emul-boot",
        "-o", str(out),
        str(stage),
        *grafts,
    ]


def copy_kernel_and_initrd(kernel: Path, initrd: Path, dest: Path) -> tuple[Path, Path]:
    """Copy kernel and initrd next to each other as vmlinuz/initrd.img, readable (0644)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = (dest / "vmlinuz", dest / "initrd.img")
    for src, dst in zip((kernel, initrd), out):
        shutil.copyfile(src, dst)
        dst.chmod(0o644)
    return out
