"""What a slot image must be for grub to boot it: an xz squashfs with a kernel and an initrd.

GRUB 2.06's squash4 reads gzip, xz and lzo; hcios builds xz (ARCHITECTURE.md section 3), and a
slot image is refused before it is written when it is anything else, or when ``/boot/vmlinuz``
or ``/boot/initrd.img`` (or what they link to) is missing: grub would fail on it and the node
would spend its tries on an image that never had a chance.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from .command import run
from .errors import CommandError, HciError

MAGIC = b"hsqs"
COMPRESSORS = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
BOOT_FILES = ("boot/vmlinuz", "boot/initrd.img")


class NotASlotImage(HciError):
    exit_code = 2


@dataclass(frozen=True)
class Superblock:
    compression: str
    bytes_used: int
    block_size: int


def superblock(header: bytes, *, where: str) -> Superblock:
    """Parse the first 96 bytes of a squashfs (little-endian superblock, format 4.0)."""
    if len(header) < 96 or header[:4] != MAGIC:
        raise NotASlotImage(f"{where} is not a squashfs image (magic {header[:4]!r})")
    comp = int.from_bytes(header[20:22], "little")
    major = int.from_bytes(header[28:30], "little")
    if major != 4:
        raise NotASlotImage(f"{where} is squashfs version {major}, not 4")
    return Superblock(COMPRESSORS.get(comp, f"unknown ({comp})"), int.from_bytes(header[40:48], "little"),
                      int.from_bytes(header[12:16], "little"))


def boot_listing(image: Path) -> dict[str, str]:
    """``boot/`` of the image: path -> symlink target ('' for other entries), via unsquashfs."""
    try:
        out = run(["unsquashfs", "-lls", "-d", "", str(image), "boot"]).stdout
    except CommandError as exc:
        raise NotASlotImage(f"{image}: unsquashfs cannot read it: {exc.stderr.strip()[-300:]}") from exc
    entries: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/boot"):
            continue
        name, _, target = parts[5].partition(" -> ")
        entries[name.lstrip("/")] = target
    return entries


def check_slot_image(image: Path, *, where: str | None = None) -> Superblock:
    """Raise NotASlotImage unless ``image`` is an xz squashfs holding a kernel and an initrd."""
    where = where or str(image)
    with image.open("rb") as f:
        sb = superblock(f.read(96), where=where)
    if sb.compression != "xz":
        raise NotASlotImage(f"{where} is a {sb.compression} squashfs; grub boots slot images in xz "
                            "(build it with squashfs.compression: xz)")
    listing = boot_listing(image)
    for name in BOOT_FILES:
        path, seen = name, set()
        while listing.get(path):  # follow symlinks inside boot/
            seen.add(path)
            target = listing[path]
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target)).lstrip("/")
            if path in seen:
                break
        if path not in listing or listing[path]:
            raise NotASlotImage(f"{where} has no /{name} (grub loads the kernel and initrd from there)")
    return sb
