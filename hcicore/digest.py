"""sha256 of a file, streamed; of a block device's first bytes, past the page cache."""
from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

from .errors import HciError

CHUNK = 4 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path | str, length: int, *, direct: bool = False) -> str:
    """sha256 of the first ``length`` bytes of ``path``.

    ``direct`` reads with O_DIRECT (past the page cache) when the file allows it, so a read-back
    sees what is on the disk, not what is still in memory."""
    h = hashlib.sha256()
    flags = os.O_RDONLY
    if direct:
        flags |= os.O_DIRECT
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not direct:
            raise
        if exc.errno != 22:  # EINVAL: the filesystem does not do O_DIRECT (tmpfs)
            raise
        fd = os.open(path, os.O_RDONLY)
    buf = mmap.mmap(-1, CHUNK)  # page aligned, as O_DIRECT needs
    try:
        left = length
        while left > 0:
            n = os.readv(fd, [buf])
            if n <= 0:
                raise HciError(f"{path}: ended after {length - left} of {length} bytes")
            take = min(n, left)
            h.update(buf[:take])
            left -= take
    finally:
        buf.close()
        os.close(fd)
    return h.hexdigest()
