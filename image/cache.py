"""Content-addressed stage cache (osbuild's scheme).

A stage id is sha256 over the stage name, its options, the digests of its inputs and the id of
the stage it builds on. A finished stage lives in ``<root>/stages/<id>/`` with ``stage.json``
written last; anything without it is an interrupted build and is rebuilt.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hcicore.command import run
from hcicore.errors import HciError

log = logging.getLogger("hcios.cache")


def mounts_below(path: Path) -> list[str]:
    """Mount points at or under ``path`` (from /proc/self/mountinfo), deepest first."""
    prefix = str(path.resolve())
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """rm -rf that first detaches anything still mounted below (a chroot's /dev, /proc, /sys of
    an interrupted stage): deleting through a bind mount of /dev would delete the host's nodes."""
    for point in mounts_below(path):
        log.warning("unmounting leftover mount %s", point)
        run(["umount", "--lazy", point])
    if mounts_below(path):
        raise HciError(f"refusing to delete {path}: something is still mounted below it")
    shutil.rmtree(path)


def default_cache_root() -> Path:
    env = os.environ.get("HCIOS_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hcios"


def stage_id(name: str, options: dict[str, Any], inputs: dict[str, str], prev: str | None) -> str:
    blob = json.dumps({"name": name, "options": options, "inputs": inputs, "prev": prev},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class StageCache:
    def __init__(self, root: Path):
        self.root = root
        self.stages = root / "stages"
        self.downloads = root / "downloads"
        self.apt_archives = root / "apt-archives"
        for d in (self.stages, self.downloads, self.apt_archives):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, sid: str) -> Path:
        return self.stages / sid

    def lookup(self, sid: str) -> Path | None:
        p = self.path(sid)
        if (p / "stage.json").is_file():
            os.utime(p)  # LRU hint for pruning
            return p
        return None

    @contextmanager
    def locked(self, sid: str) -> Iterator[bool]:
        """Hold the stage's lock (flock) while looking it up and building it, so two builds sharing
        a cache never build the same stage into the same scratch dir. Yields whether it had to wait."""
        with open(self.stages / f"{sid}.lock", "w") as f:
            waited = False
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waited = True
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield waited
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextmanager
    def building(self, sid: str, meta: dict[str, Any]) -> Iterator[Path]:
        """Yield a scratch dir; on success it becomes the cache entry, on failure it is removed."""
        final = self.path(sid)
        tmp = self.stages / f"{sid}.tmp"
        if tmp.exists():
            log.warning("removing leftover of an interrupted stage: %s", tmp)
            remove_tree(tmp)
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            log.info("stage %s failed; removing %s", meta.get("name"), tmp)
            remove_tree(tmp)
            raise
        (tmp / "stage.json").write_text(json.dumps({**meta, "id": sid, "finished": time.time()},
                                                   sort_keys=True, indent=1))
        if final.exists():
            remove_tree(final)
        os.rename(tmp, final)

    def prune(self, keep: set[str], max_entries: int) -> list[str]:
        """Remove the least recently used entries beyond ``max_entries``; never one in ``keep``, nor
        one whose lock another build holds."""
        entries = sorted((p for p in self.stages.iterdir() if p.is_dir() and (p / "stage.json").is_file()),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        room = max(max_entries - len(keep), 0)
        others = [p for p in entries if p.name not in keep]
        removed = []
        for p in others[room:]:
            with open(self.stages / f"{p.name}.lock", "w") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                if not p.exists():  # another build sharing the cache pruned it first
                    continue
                remove_tree(p)
                removed.append(p.name)
        return removed
