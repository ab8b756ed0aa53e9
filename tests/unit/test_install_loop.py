"""The disk checks on a real block device: a sparse file on a loop device (root only).

Loop devices here get no partition nodes, so this covers what needs none: reading a disk with a
partition table, refusing it and leaving it byte-for-byte unchanged, wiping it when allowed, and
the O_DIRECT read-back of a written image. The partitioned install itself runs in the VM test.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcicore.command import run
from hcicore.digest import sha256_file
from installer.disk import inspect_disk, refusal, wipe_disk
from hcicore.digest import sha256_of

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("losetup") is None or shutil.which("sgdisk") is None,
                       reason="needs root, losetup and sgdisk"),
]

MiB = 1024**2


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    backing = tmp_path / "disk.img"
    with backing.open("wb") as f:
        f.truncate(64 * MiB)
    proc = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"losetup failed: {proc.stderr.strip()}")
    device = proc.stdout.strip()
    try:
        yield device, backing
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)


def test_partitioned_loop_disk_is_refused_and_left_unchanged(loop: tuple[str, Path]) -> None:
    device, backing = loop
    run(["sgdisk", "--new=1:2048:+16M", "--change-name=1:olddata", device])
    run(["sync"])
    before = sha256_file(backing)
    disk = inspect_disk(device)
    problems = refusal(disk, wipe=False)
    assert len(problems) == 1
    assert "gpt" in str(problems[0]) and "install.wipe: true" in str(problems[0])
    run(["sync"])
    assert sha256_file(backing) == before


def test_wipe_clears_every_signature(loop: tuple[str, Path]) -> None:
    device, _ = loop
    run(["sgdisk", "--new=1:2048:+16M", device])
    disk = inspect_disk(device)
    assert disk.signatures
    wipe_disk(disk)
    again = inspect_disk(device)
    assert again.signatures == () and refusal(again, wipe=False) == []


def test_direct_readback_sees_the_written_bytes(loop: tuple[str, Path], tmp_path: Path) -> None:
    device, _ = loop
    image = tmp_path / "img"
    image.write_bytes(os.urandom(3 * MiB + 4096))
    run(["dd", f"if={image}", f"of={device}", "bs=4M", "oflag=direct", "conv=fsync", "status=none"])
    run(["blockdev", "--flushbufs", device])
    assert sha256_of(device, image.stat().st_size, direct=True) == sha256_file(image)
