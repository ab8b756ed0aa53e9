"""Download the slot image into /var (hci-persistent) before a byte goes to the slot.

``<dir>/<sha256>.partial`` grows as the blob streams in; every ``SYNC_EVERY`` bytes it is fsynced
and the length that is now durable is written next to it (``.partial.json``). After a power cut
the next ``apply`` cuts the file back to that length, hashes what is there, and asks the registry
for the rest (HTTP Range). The finished file is checked against the layer digest and renamed to
``<sha256>.img``; only a verified image is ever written to a slot, so a changed byte, a truncated
blob or a wrong layer is refused with the slot untouched.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from hcicore.errors import DigestMismatch, HciError
from hcicore.files import write_atomic
from hcicore.oci import Registry

log = logging.getLogger("hcios.upgrade")

SYNC_EVERY = 32 << 20
HEADROOM = 64 << 20  # left free on /var besides the image
Progress = Callable[[int, int], None]
Hook = Callable[[str], None]


class NoSpace(HciError):
    exit_code = 2


def _durable(meta: Path) -> int:
    try:
        return int(json.loads(meta.read_text())["durable"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0


def _hash_prefix(path: Path, length: int) -> hashlib._Hash:
    h = hashlib.sha256()
    with path.open("rb") as f:
        left = length
        while left:
            block = f.read(min(4 << 20, left))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h


def fetch_image(registry: Registry, repository: str, digest: str, size: int, directory: Path, *,
                progress: Progress, hook: Hook, note: Callable[[str], None] = log.info) -> Path:
    """The verified image at ``directory/<hex>.img``, downloading (or resuming) as needed."""
    hexdigest = digest.removeprefix("sha256:")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = directory / f"{hexdigest}.img"
    if final.exists() and final.stat().st_size == size:
        return final  # verified before it got this name
    for stale in directory.iterdir():  # other images' leftovers: one download at a time
        if not stale.name.startswith(hexdigest):
            stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    partial = directory / f"{hexdigest}.partial"
    meta = directory / f"{hexdigest}.partial.json"
    have = min(_durable(meta), partial.stat().st_size if partial.exists() else 0)
    free = shutil.disk_usage(directory).free
    if free < size - have + HEADROOM:
        raise NoSpace(f"/var has {free >> 20} MiB free; the image needs {(size - have) >> 20} MiB more "
                      f"plus {HEADROOM >> 20} MiB headroom: free space on hci-persistent first")
    with partial.open("ab") as f:
        f.truncate(have)
    h = _hash_prefix(partial, have)
    start, chunks = registry.blob_stream(repository, digest, offset=have)
    if start != have:
        note("the registry ignored the range request: downloading from the start")
        have, h = 0, hashlib.sha256()
    if have:
        note(f"resuming the download at {have} of {size} bytes")
    got = have
    synced = have
    half_reported = False
    with partial.open("r+b") as f:
        f.truncate(have)
        f.seek(have)
        for chunk in chunks:
            if got + len(chunk) > size:
                raise DigestMismatch(f"blob {digest} is longer than the {size} bytes its manifest says")
            f.write(chunk)
            h.update(chunk)
            got += len(chunk)
            if got - synced >= SYNC_EVERY:
                f.flush()
                os.fsync(f.fileno())
                synced = got
                write_atomic(meta, json.dumps({"durable": synced}).encode(), mode=0o600)
            progress(got, size)
            if not half_reported and got >= size // 2:
                half_reported = True
                hook("download-half")
        f.flush()
        os.fsync(f.fileno())
    if got != size or h.hexdigest() != hexdigest:
        partial.unlink()
        meta.unlink(missing_ok=True)
        raise DigestMismatch(f"the downloaded image has sha256 {h.hexdigest()} ({got} bytes), its manifest says "
                             f"{hexdigest} ({size} bytes): refused, nothing was written to the slot; the "
                             "partial download was removed")
    os.rename(partial, final)
    meta.unlink(missing_ok=True)
    return final


def discard(directory: Path) -> None:
    """Remove staged images (after they were written, or when the operator cancels)."""
    if directory.is_dir():
        shutil.rmtree(directory)
