"""UEFI Secure Boot through Debian's signed boot chain: which files, and where they go.

shim (signed by Microsoft's UEFI CA, so firmware with Microsoft's keys starts it) starts grub
(signed by Debian), and grub has shim verify the kernel (signed by Debian). Debian's signed grub
is one monolithic image that cannot load modules under Secure Boot, so hcios's menus use only
commands built into it (part_gpt, ext2, squash4, xzio, loadenv, regexp, test, serial, linux...).

The images read their first config from a fixed place: ``grubx64.efi`` (disks) from
``/EFI/debian/grub.cfg`` on the partition it was started from; ``gcdx64.efi`` (CDs) from
``/boot/grub/grub.cfg`` on the medium it was started from. A profile whose packages don't carry
these files boots with hcios's own unsigned grub, and Secure Boot must be off (docs/installer.md).
"""
from __future__ import annotations

from pathlib import Path

SHIM = "usr/lib/shim/shimx64.efi.signed"
MOK_MANAGER = "usr/lib/shim/mmx64.efi.signed"
GRUB_DISK = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
GRUB_CD = "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"

# The removable path: shim as BOOTX64.EFI finds grubx64.efi (and MokManager) beside it. No
# fbx64.efi: shim's fallback would make its own NVRAM entries and reset the machine.
REMOVABLE_DIR = "EFI/BOOT"
LOADER = "BOOTX64.EFI"
# Where Debian's signed grubx64.efi reads its config on a disk's ESP
DISK_CONFIG = "EFI/debian/grub.cfg"
# Where gcdx64.efi reads its config on the medium it started from
CD_CONFIG = "boot/grub/grub.cfg"


def signed_files(root: Path, medium: str = "disk") -> dict[str, Path] | None:
    """The files for ``EFI/BOOT/`` by their name there, from the tree at ``root``, or None when
    the tree lacks any of them (no shim-signed or grub-efi-amd64-signed in the profile)."""
    grub = GRUB_CD if medium == "cd" else GRUB_DISK
    files = {LOADER: root / SHIM, "grubx64.efi": root / grub, "mmx64.efi": root / MOK_MANAGER}
    if all(p.is_file() for p in files.values()):
        return files
    return None
