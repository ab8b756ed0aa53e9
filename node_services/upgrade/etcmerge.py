"""The three-way /etc merge that gives a new slot its own /etc overlay layer (ostree's rule).

Each slot boots with ``hci-persistent:/etc/<slot>/upper`` over its image's /etc. Before a new
image in slot X goes on trial, X's layer is made from the booted slot's layer (the node's local
state) with the old image (the booted slot's /etc) as the base:

=========================================  ==================================================
local layer entry                          in the new slot's layer
=========================================  ==================================================
same as the old image (content, mode,      dropped: the node never changed it, so the new
owner, link target): copied up unchanged   image's version shows (or it is gone, if the new
                                           image dropped it)
changed or added locally, image unchanged  kept
changed locally and the new image equals   dropped (both sides agree)
the local version
changed locally and changed by the image   kept (local wins), reported as a conflict
deleted locally (whiteout)                 kept; reported when the new image changed the file;
                                           dropped when the new image no longer has it
directory                                  kept (opaque or not), with its metadata
=========================================  ==================================================

The layer is built in a new directory and swapped in with rename (``<slot>.new`` ->
``<slot>``); the booted slot's layer is only read. Copies keep owners, modes, xattrs (file
capabilities) and hard links (``cp -a``); overlayfs' own ``trusted.overlay.origin`` is dropped,
since it points into the old image.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from hcicore.command import run
from hcicore.files import fsync_dir

ORIGIN_XATTR = "trusted.overlay.origin"


@dataclass
class MergeResult:
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def same(a: Path, sa: os.stat_result, b: Path, sb: os.stat_result | None) -> bool:
    """Same type, mode, owner and content (or link target)."""
    if sb is None or stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
        return False
    if (stat.S_IMODE(sa.st_mode), sa.st_uid, sa.st_gid) != (stat.S_IMODE(sb.st_mode), sb.st_uid, sb.st_gid):
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISREG(sa.st_mode):
        if sa.st_size != sb.st_size:
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            while True:
                ca, cb = fa.read(1 << 16), fb.read(1 << 16)
                if ca != cb:
                    return False
                if not ca:
                    return True
    return stat.S_ISDIR(sa.st_mode)


def _judge(rel: str, local: Path, sl: os.stat_result, old_etc: Path, new_etc: Path,
           result: MergeResult) -> bool:
    """True to keep the local entry in the new layer."""
    old, new = old_etc / rel, new_etc / rel
    so, sn = _lstat(old), _lstat(new)
    if stat.S_ISDIR(sl.st_mode):
        return True
    if _is_whiteout(sl):
        if sn is None:
            return False
        if so is not None and not same(old, so, new, sn):
            result.conflicts.append({"path": f"/etc/{rel}", "kind": "deleted locally, changed by the new image",
                                     "kept": "deleted"})
        return True
    if so is not None and same(local, sl, old, so):
        return False  # never changed here: the new image's version (or its absence) shows
    image_changed = not ((so is None and sn is None) or (so is not None and same(old, so, new, sn)))
    if not image_changed:
        return True
    if sn is not None and same(local, sl, new, sn):
        return False
    result.conflicts.append({"path": f"/etc/{rel}", "kind": "changed locally and by the new image",
                             "kept": "local"})
    return True


def plan_merge(local_upper: Path, old_etc: Path, new_etc: Path) -> MergeResult:
    """Decide, entry by entry, what the new slot's layer keeps (reads only)."""
    result = MergeResult()
    for dirpath, dirnames, filenames in os.walk(local_upper):
        base = Path(dirpath)
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            path = base / name
            rel = path.relative_to(local_upper).as_posix()
            keep = _judge(rel, path, os.lstat(path), old_etc, new_etc, result)
            (result.kept if keep else result.dropped).append(rel)
    return result


def build_layer(local_upper: Path, old_etc: Path, new_etc: Path, target: Path) -> MergeResult:
    """Make ``target`` (``<slot dir>``, holding ``upper`` and ``work``) from ``local_upper``.

    Built next to it as ``<target>.new`` and swapped into place with one atomic exchange; a
    crash leaves the old layer or the new one, and a leftover ``.new`` is removed by the next run."""
    result = plan_merge(local_upper, old_etc, new_etc)
    staging = target.with_name(target.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(mode=0o755, parents=True)
    run(["cp", "-a", "--preserve=all", f"{local_upper}/.", str(staging / "upper")]) if local_upper.is_dir() \
        else (staging / "upper").mkdir()
    (staging / "work").mkdir()
    for rel in reversed(result.dropped):
        (staging / "upper" / rel).unlink()
    _drop_origin(staging / "upper")
    os.sync()
    if target.exists():
        exchange(staging, target)  # atomic: target is the old layer or the new one, never neither
        fsync_dir(target.parent)
        shutil.rmtree(staging)  # now the old layer
    else:
        os.rename(staging, target)
        fsync_dir(target.parent)
    return result


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE; glibc 2.28+, ext4 and tmpfs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot exchange {a} and {b}: {os.strerror(err)}")


def _drop_origin(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            try:
                os.removexattr(path, ORIGIN_XATTR, follow_symlinks=False)
            except OSError:
                continue  # no such attribute (the usual case), or a filesystem without xattrs
