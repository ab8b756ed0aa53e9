"""Writing files atomically; files that hold secrets (password hashes, tokens) owner-only from the
first byte."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600, dir_mode: int = 0o700) -> Path:
    """Write ``data`` to ``path`` atomically: a temp file in the same directory (created with
    ``mode``), fsynced, renamed over ``path``, then the directory fsynced. A failed write removes
    the temp file, so no partial copy (of a secret, say) is left behind. A missing directory is
    made with ``dir_mode``."""
    path.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(path: Path) -> None:
    """Make the directory entries of ``path`` (a rename, a new or removed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, mode 0600, in a directory made 0700 if missing."""
    return write_atomic(path, text.encode())
