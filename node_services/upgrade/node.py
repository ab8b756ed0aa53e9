"""The node as hci-upgrade and hci-health see it: boot disk, boot state, record, config, lock.

Everything is injectable (paths, the command runner, the pause hook), so the unit tests run the
real transitions on files standing in for partitions.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hcicore.bootstate import BootStateStore, Reading
from hcicore.command import Result, run
from hcicore.config import NodeConfig, load_config_file
from hcicore.config.model import Upgrade
from hcicore.errors import HciError
from hcicore.layout import OEM_NODE_CONFIG

from ..bootdisk import BootDisk, install_info, read_boot_disk
from ..record import Record, RecordStore

log = logging.getLogger("hcios.upgrade")

LOCK = Path("/run/hci/upgrade.lock")
STAGING = Path("/var/lib/hcios/upgrade")
SLOT_MOUNTS = Path("/run/hci/slots")
# Fault injection for the power-cut tests: at the named point, say so on the console and stop
# (the test then cuts the power). Points: download-half, write-half, after-write,
# bootstate-copy-1, bootstate-copy-2. Never set on a production node.
PAUSE_ENV = "HCIOS_TEST_PAUSE_AT"
Runner = Callable[..., Result]
MACHINES = {"x86_64": "amd64", "aarch64": "arm64"}  # uname -m -> the artifact's arch


class Refused(HciError):
    """The request is refused before anything was written: exit 2, the reason said."""

    exit_code = 2


def pause_hook(point: str) -> None:
    if os.environ.get(PAUSE_ENV) != point:
        return
    line = f"HCIOS-PAUSED-AT {point}"
    print(line, file=sys.stderr, flush=True)
    try:
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(f"<3>hci-upgrade: {line}\n")  # level err: shown on the console
    except OSError:
        pass
    while True:  # until the power is cut
        time.sleep(3600)


@dataclass
class Node:
    disk: BootDisk
    staging: Path = STAGING
    slot_mounts: Path = SLOT_MOUNTS
    lock_path: Path = LOCK
    runner: Runner = run
    hook: Callable[[str], None] = pause_hook
    config: NodeConfig | None = None
    arch: str = field(default_factory=lambda: MACHINES.get(platform.machine(), platform.machine()))
    _boot: BootStateStore | None = field(default=None, repr=False)

    @classmethod
    def open(cls, **overrides: object) -> Node:
        disk = read_boot_disk()
        node = cls(disk=disk, **overrides)  # type: ignore[arg-type]
        node.config = node.load_config()
        return node

    def load_config(self) -> NodeConfig | None:
        path = self.disk.oem_root / OEM_NODE_CONFIG
        if not path.exists():
            return None
        return load_config_file(path)

    @property
    def upgrade_settings(self) -> Upgrade:
        return self.config.upgrade if self.config is not None else Upgrade()

    @property
    def boot(self) -> BootStateStore:
        if self._boot is None:
            self._boot = BootStateStore(self.disk.oem_root, hook=self.hook)
        return self._boot

    @property
    def records(self) -> RecordStore:
        return RecordStore(self.disk.oem_root)

    def reading(self) -> Reading:
        return self.boot.read()

    def record(self) -> Record:
        return self.records.read(install=install_info(self.disk.oem_root))

    def etc_layer(self, slot: str) -> Path:
        return self.disk.persistent_root / "etc" / slot

    @contextmanager
    def lock(self, *, wait: float = 0.0) -> Iterator[None]:
        """One state-changing hci-upgrade at a time. A second one is refused (``wait`` 0), or
        waits up to ``wait`` seconds (the health gate) and is then refused."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    if time.monotonic() < deadline:
                        time.sleep(1)
                        continue
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    raise Refused(f"another hci-upgrade is running (pid {holder or '?'}); wait for it to "
                                  "finish (hci-upgrade status)") from exc
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def mounted_slot(self, slot: str) -> Iterator[Path]:
        """The slot's squashfs mounted read-only (its image's /etc is the merge base)."""
        where = self.slot_mounts / slot
        where.mkdir(parents=True, exist_ok=True)
        self.runner(["mount", "-t", "squashfs", "-o", "ro", str(self.disk.slot_device(slot)), str(where)])
        try:
            yield where
        except BaseException:
            try:
                self.runner(["umount", str(where)])
            except HciError as exc:  # the block's error is the one to report
                log.error("could not unmount %s after a failure: %s", where, exc)
            raise
        self.runner(["umount", str(where)])
