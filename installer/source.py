"""The slot image the installer writes: where it is on the live system and its sha256.

Looked for in this order (first that exists):
  1. a path given with ``hci install --image``;
  2. the live medium's ``/run/initramfs/live/LiveOS/squashfs.img`` (ISO or USB stick; dracut's
     dmsquash-live mounts the medium at /run/initramfs/live), with the digest from the
     ``squashfs.img.sha256`` file next to it;
  3. the loop device that backs the live root (``/run/rootfsbase``; PXE boots, where livenet
     downloaded the squashfs into the initramfs), with the digest from the kernel command line
     (``hcios.image_sha256=``, which ``pxe/boot.ipxe`` sets).
The installer hashes the source before it touches the disk and stops when a known digest
differs (a bad USB stick, a truncated download); the read-back after the write is compared with
the same digest. Without any known digest the source's own hash is what the read-back must match.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hcicore.bootargs import IMAGE_SHA256_ARG
from hcicore.config.cmdline import cmdline_value
from hcicore.errors import HciError

LIVE_IMAGE = Path("/run/initramfs/live/LiveOS/squashfs.img")
LIVE_ROOT = "/run/rootfsbase"
SQUASHFS_MAGIC = b"hsqs"


@dataclass(frozen=True)
class ImageSource:
    path: Path
    size: int
    sha256: str | None  # the digest the image must have; None: nothing to check it against


def _sha256_word(word: str, where: str) -> str:
    if len(word) != 64 or any(c not in "0123456789abcdef" for c in word.lower()):
        raise HciError(f"{where} does not hold a sha256 (got {word[:80]!r})")
    return word.lower()


def _read_digest_file(path: Path) -> str | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return _sha256_word(text.split()[0] if text.split() else "", str(path))


def digest_from_cmdline(cmdline: str) -> str | None:
    """The ``hcios.image_sha256=`` value of a kernel command line, or None."""
    value = cmdline_value(cmdline, IMAGE_SHA256_ARG)
    return None if value is None else _sha256_word(value, f"kernel command line {IMAGE_SHA256_ARG}")


def _size(path: Path) -> int:
    with path.open("rb") as f:
        return f.seek(0, os.SEEK_END)


def _loop_of_live_root(mountinfo: Path = Path("/proc/self/mountinfo")) -> Path | None:
    try:
        lines = mountinfo.read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) > 4 and fields[4] == LIVE_ROOT:
            source = right.split()[1] if len(right.split()) > 1 else ""
            if source.startswith("/dev/"):
                return Path(source)
    return None


def squashfs_bytes(path: Path) -> int:
    """Bytes used by the squashfs at ``path`` (from its superblock), padded to 4 KiB like
    mksquashfs pads its output; a loop device can be longer than the image it holds."""
    with path.open("rb") as f:
        sb = f.read(96)
    if sb[:4] != SQUASHFS_MAGIC:
        raise HciError(f"{path} is not a squashfs image (magic {sb[:4]!r})")
    used = int.from_bytes(sb[40:48], "little")
    return -(-used // 4096) * 4096


def find_image(given: Path | None = None, *, cmdline: Path = Path("/proc/cmdline")) -> ImageSource:
    """The slot image to install; raises HciError saying where it looked."""
    if given is not None:
        if not given.exists():
            raise HciError(f"image {given} does not exist")
        return ImageSource(given, _size(given), _read_digest_file(given.with_name(given.name + ".sha256")))
    if LIVE_IMAGE.exists():
        return ImageSource(LIVE_IMAGE, _size(LIVE_IMAGE),
                           _read_digest_file(LIVE_IMAGE.with_name(LIVE_IMAGE.name + ".sha256")))
    loop = _loop_of_live_root()
    if loop is not None:
        try:
            expected = digest_from_cmdline(cmdline.read_text())
        except FileNotFoundError:
            expected = None
        return ImageSource(loop, squashfs_bytes(loop), expected)
    raise HciError(f"no slot image: not at {LIVE_IMAGE} and nothing mounted on {LIVE_ROOT}; "
                   "run the installer on the live system, or pass --image PATH")
