"""Write a verified image into a slot partition and read it back past the page cache.

Writes go in 4 MiB O_DIRECT blocks (what ``dd oflag=direct`` does), then fsync; the read-back
also uses O_DIRECT, so the sha256 is of what the disk holds, not of what is still in memory.
Where O_DIRECT is refused (tmpfs and regular files in tests) plain writes and reads are used.
"""
from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from pathlib import Path

from hcicore.digest import sha256_of
from hcicore.errors import HciError

BLOCK = 4 << 20
Progress = Callable[[int, int], None]
Hook = Callable[[str], None]


class SlotReadBackFailed(HciError):
    """The slot does not read back what was written (a disk problem): exit 1, not a refusal."""


def device_size(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def _open_direct(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return os.open(path, flags)


def write_slot(image: Path, device: Path, *, progress: Progress, hook: Hook) -> int:
    """Copy ``image`` to the start of ``device``; returns the bytes written."""
    size = image.stat().st_size
    if size > device_size(device):
        raise HciError(f"{image} ({size} bytes) does not fit {device} ({device_size(device)} bytes)")
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    src = os.open(image, os.O_RDONLY)
    dst = _open_direct(device, os.O_WRONLY)
    written = 0
    half_reported = False
    try:
        while written < size:
            n = os.readv(src, [buf])
            if n <= 0:
                raise HciError(f"{image} ended after {written} of {size} bytes")
            # O_DIRECT writes whole 4 KiB blocks; the tail is zero-padded (the slot is bigger)
            length = -(-n // 4096) * 4096
            if length != n:
                buf[n:length] = bytes(length - n)
            view = memoryview(buf)[:length]
            done = 0
            while done < length:
                done += os.write(dst, view[done:])
            view.release()
            written += n
            progress(written, size)
            if not half_reported and written >= size // 2:
                half_reported = True
                hook("write-half")
        os.fsync(dst)
    finally:
        os.close(dst)
        os.close(src)
        buf.close()
    return written


def verify_slot(device: Path, size: int, sha256: str) -> None:
    """Raise SlotReadBackFailed unless the first ``size`` bytes of ``device`` hash to ``sha256``."""
    got = sha256_of(device, size, direct=True)
    if got != sha256:
        raise SlotReadBackFailed(f"slot {device} reads back sha256 {got}, the image has {sha256}: the disk did not "
                             "keep the bytes; the slot stays not bootable")
