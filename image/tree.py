"""Helpers for root filesystem trees: digests, copies, mtime clamping."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from hcicore.command import run

SKIP_NAMES = {"__pycache__", ".pytest_cache"}


def tree_digest(root: Path, *, skip: set[str] = SKIP_NAMES) -> str:
    """sha256 over the sorted relative paths, file types, modes, symlink targets and contents."""
    h = hashlib.sha256()
    if not root.exists():
        return hashlib.sha256(b"absent").hexdigest()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            if name.endswith(".pyc"):
                continue
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            elif p.is_file():
                with p.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            h.update(b"\0")
    return h.hexdigest()



def copy_tree(src: Path, dst: Path) -> None:
    """Copy a rootfs tree keeping owners, modes, links, xattrs (reflinks where supported)."""
    run(["cp", "-a", "--reflink=auto", f"{src}/.", str(dst)])


def clamp_mtimes(root: Path, epoch: int) -> int:
    """Set every mtime newer than ``epoch`` to ``epoch`` (symlinks too). Returns how many changed."""
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if st.st_mtime > epoch:
                os.utime(p, (epoch, epoch), follow_symlinks=False)
                changed += 1
    if os.lstat(root).st_mtime > epoch:
        os.utime(root, (epoch, epoch))
    return changed
