"""The install disk: resolve its name, look at what is on it, refuse or clear it.

Reading (``inspect_disk``) changes nothing. The only functions that write are
``deactivate_holders`` and ``wipe_disk``, and the installer calls them only on the disks named in
the config (``install.device``, ``install.data_device``), after the operator (or
``--auto``/``--yes``) confirmed, and only when the disk is empty or its consent key
(``install.wipe``, ``install.data_wipe``)
is true (:func:`refusal`).

Every command goes through a runner with the signature of :func:`hcicore.command.run`, so tests
feed recorded ``lsblk``/``wipefs`` output and record what would have been run.
"""
from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hcicore.command import run
from hcicore.errors import HciError, Problem, ValidationError
from hcicore.layout import LABELS

from . import blockdev
from .blockdev import WHOLE_DISK_TYPES, BlockNode, Runner

RAID_PREFIX = "raid"  # lsblk TYPE of md arrays: raid0, raid1, raid10, ...
CLEARABLE_TYPES = ("part", "lvm")  # holders the install takes down itself (md: RAID_PREFIX)
HOLDER_FIX = {
    "crypt": "close it first: cryptsetup close {name}",
    "mpath": "the disk is a multipath member (installing on a multipath device is not supported): "
             "flush the map first (multipath -f {name}) and name one path's disk",
    "dm": "remove the device-mapper target first: dmsetup remove {name}",
}


@dataclass(frozen=True)
class Signature:
    offset: str
    type: str
    usage: str = ""


@dataclass(frozen=True)
class DiskInfo:
    """What is on the install disk right now."""

    name: str  # as given in the config (maybe /dev/disk/by-id/...)
    node: BlockNode  # the resolved whole disk and everything on it
    signatures: tuple[Signature, ...] = field(default_factory=tuple)

    @property
    def path(self) -> str:
        return self.node.path

    @property
    def size(self) -> int:
        return self.node.size

    def describe(self) -> str:
        model = f", {self.node.model.strip()}" if self.node.model else ""
        alias = f" ({self.name})" if self.name != self.node.path else ""
        return f"{self.node.path}{alias}, {self.node.size / 1024**3:.1f} GiB{model}"

    def contents(self) -> list[str]:
        """What makes the disk not empty, one phrase each (empty list: the disk is blank)."""
        found = [f"{s.type} signature at offset {s.offset}" for s in self.signatures]
        if self.node.pttype and not any(s.type in ("gpt", "PMBR", "dos") for s in self.signatures):
            found.append(f"{self.node.pttype} partition table")
        if self.node.fstype and not any(s.type == self.node.fstype for s in self.signatures):
            found.append(f"{self.node.fstype} filesystem")
        for child in self.node.walk():
            if child is self.node:
                continue
            what = child.fstype or child.pttype or "no filesystem"
            label = f" '{child.partlabel}'" if child.partlabel else ""
            found.append(f"{child.type} {child.path}{label} ({what})")
        return found

    def mounted(self) -> list[BlockNode]:
        return [n for n in self.node.walk() if n.mountpoint]


def other_installs(exclude: set[str], nodes: list[BlockNode]) -> dict[str, list[str]]:
    """Whole disks, besides those in ``exclude``, whose partitions carry hcios GPT names: disk
    path -> the names found. A node must never find another install's slots or state (the
    installed node looks everything up by PARTUUID, but an operator swapping disks should know)."""
    found: dict[str, list[str]] = {}
    for node in nodes:
        if node.path in exclude or node.type not in WHOLE_DISK_TYPES:
            continue
        labels = hcios_labels(node)
        if labels:
            found[node.path] = labels
    return found


def hcios_labels(node: BlockNode) -> list[str]:
    """The hcios GPT names on a disk (empty: it holds no hcios install)."""
    return sorted({n.partlabel for n in node.walk() if n.partlabel in LABELS})


def parse_wipefs(text: str) -> tuple[Signature, ...]:
    """Signatures from ``wipefs --no-act --json DEVICE`` (empty output: none)."""
    if not text.strip():
        return ()
    data = json.loads(text)
    return tuple(Signature(str(s.get("offset", "")), str(s.get("type", "")), str(s.get("usage") or ""))
                 for s in data.get("signatures") or ())


def checked_device(name: str, *, path: str = "install.device",
                   is_block: Callable[[str], bool] | None = None) -> str:
    """Follow ``/dev/disk/by-id/...``, ``by-path`` and other links to the kernel's device node.

    Raises ValidationError (at ``path``) when the name is not a block device."""
    if not name.startswith("/dev/"):
        raise ValidationError([Problem(path, f"{name!r} is not a device path",
                                       "use /dev/<name>, /dev/disk/by-id/... or /dev/disk/by-path/...")])
    real = blockdev.resolve_device(name)
    check = is_block or _is_block_device
    if not check(real):
        raise ValidationError([Problem(path, f"{name} is not a block device on this machine",
                                       "list the disks with `lsblk -d` and name one of them")])
    return real


def _is_block_device(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def inspect_disk(name: str, *, runner: Runner = run, path: str = "install.device",
                 is_block: Callable[[str], bool] | None = None) -> DiskInfo:
    """Resolve ``name`` and read its partitions, holders and signatures. Writes nothing."""
    device = checked_device(name, path=path, is_block=is_block)
    devices = blockdev.lsblk(runner=runner, device=device)
    if not devices:
        raise HciError(f"lsblk listed nothing for {device}")
    node = devices[0]
    if node.type not in WHOLE_DISK_TYPES:
        raise ValidationError([Problem(path, f"{name} is a {node.type or 'device'} ({node.path}), not a whole disk",
                                       "name the whole disk, e.g. /dev/vda rather than /dev/vda1")])
    wipefs = runner(["wipefs", "--no-act", "--json", device])
    return DiskInfo(name=name, node=node, signatures=parse_wipefs(wipefs.stdout))


def refusal(disk: DiskInfo, *, wipe: bool, path: str = "install.device",
            consent: str = "install.wipe") -> list[Problem]:
    """Why the installer must not touch ``disk``; an empty list means it may go on. Every reason
    is found before confirmation, so nothing fails halfway through a wipe.

    A disk with anything on it needs its consent key (``consent``: ``install.wipe`` for the
    install disk, ``install.data_wipe`` for the data disk) set true. A mounted or read-only disk is refused even
    with ``wipe: true``: it is in use (maybe the live medium itself)."""
    problems = held(disk, path=path)
    if disk.node.read_only:
        problems.append(Problem(path, f"{disk.describe()} is read-only", "choose a writable disk"))
    found = disk.contents()
    if found and not wipe:
        problems.append(Problem(path, f"{disk.describe()} is not empty: {'; '.join(found)}",
                                f"set {consent}: true to erase it, or choose an empty disk"))
    return problems


def held(disk: DiskInfo, *, path: str = "install.device") -> list[Problem]:
    """What holds the disk that the install does not take down itself (it does partitions, LVM
    and md): an active swap, a mounted filesystem, dm-crypt, multipath, bcache or another
    device-mapper target, anywhere on the disk. Each is named with how to release it."""
    problems: list[Problem] = []
    for node in disk.node.walk():
        if node.mountpoint == "[SWAP]":
            problems.append(Problem(path, f"{disk.describe()} is in use: {node.path} is active swap",
                                    f"turn it off first (swapoff {node.path}), or choose another disk"))
        elif node.mountpoint:
            problems.append(Problem(path, f"{disk.describe()} is in use: {node.path} is mounted on "
                                          f"{node.mountpoint}", f"unmount it (umount {node.mountpoint}), "
                                                                "or choose another disk"))
        if node is disk.node or node.type in CLEARABLE_TYPES or node.type.startswith(RAID_PREFIX):
            continue
        kind = "bcache" if node.name.startswith("bcache") else node.type
        if kind == "bcache":
            fix = f"stop it first: echo 1 > /sys/block/{node.name}/bcache/stop"
        else:
            fix = HOLDER_FIX.get(kind, "release it first (lsblk shows what holds the disk)").format(name=node.name)
        problems.append(Problem(path, f"{disk.describe()} is held by {kind} device {node.path}", fix))
    return problems


def holders(disk: DiskInfo) -> tuple[list[str], list[str]]:
    """(LVM physical volumes, md arrays) on ``disk``; arrays deepest first."""
    pvs = [n.path for n in disk.node.walk() if n.fstype == "LVM2_member"]
    arrays: list[str] = []
    for n in disk.node.walk():
        if n.type.startswith(RAID_PREFIX) and n.path not in arrays:
            arrays.append(n.path)
    return pvs, list(reversed(arrays))


def shared_groups(disk: DiskInfo, *, runner: Runner = run, path: str = "install.device") -> list[Problem]:
    """LVM volume groups on ``disk`` that also have physical volumes on another disk: wiping this
    one would take down (and break) volumes on a disk the config does not name."""
    pvs, _ = holders(disk)
    if not pvs:
        return []
    out = runner(["pvs", "--noheadings", "--separator", "|", "--options", "pv_name,vg_name"], check=False)
    if out.returncode != 0:
        return [Problem(path, f"cannot list LVM physical volumes: {out.stderr.strip()}",
                        "check lvm2, or clear the disk's LVM signatures by hand")]
    members: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        pv, _, vg = (part.strip() for part in line.partition("|"))
        if vg:
            members.setdefault(vg, []).append(pv)
    ours = {n.path for n in disk.node.walk()}
    problems = []
    for vg, vg_pvs in sorted(members.items()):
        if any(pv in pvs for pv in vg_pvs):
            elsewhere = [pv for pv in vg_pvs if pv not in ours]
            if elsewhere:
                problems.append(Problem(path, f"LVM volume group {vg} on {disk.path} also uses "
                                              f"{', '.join(elsewhere)}",
                                        f"remove {vg} (vgremove) or move it off {disk.path} first: "
                                        "the installer never touches a disk the config does not name"))
    return problems


def shared_arrays(disk: DiskInfo, *, sys_block: Path = Path("/sys/class/block"),
                  path: str = "install.device") -> list[Problem]:
    """md arrays on ``disk`` with members on another disk: stopping one to wipe this disk would
    take the array down on a disk the config does not name (a RAID1 mirror would lose its
    running copy). Members come from sysfs (``<array>/slaves/``), the kernel's own list."""
    _, arrays = holders(disk)
    ours = {Path(n.path).name for n in disk.node.walk()}
    problems = []
    for md in arrays:
        slaves = sys_block / Path(md).name / "slaves"
        if not slaves.is_dir():
            problems.append(Problem(path, f"md array {md} on {disk.path}: cannot read its members "
                                          f"from {slaves}", f"stop it by hand (mdadm --stop {md}) first"))
            continue
        elsewhere = sorted(f"/dev/{m.name}" for m in slaves.iterdir() if m.name not in ours)
        if elsewhere:
            problems.append(Problem(path, f"md array {md} on {disk.path} also uses {', '.join(elsewhere)}",
                                    f"stop the array and remove {disk.path} from it (mdadm --stop, "
                                    "mdadm --zero-superblock) first: the installer never touches a disk "
                                    "the config does not name"))
    return problems


def deactivate_holders(disk: DiskInfo, *, runner: Runner = run) -> list[str]:
    """Deactivate LVM volume groups and stop md arrays built on ``disk``. Returns what was done."""
    done: list[str] = []
    pvs, arrays = holders(disk)
    groups: list[str] = []
    for pv in pvs:
        out = runner(["pvs", "--noheadings", "--options", "vg_name", pv], check=False)
        vg = out.stdout.strip()
        if out.returncode == 0 and vg and vg not in groups:
            groups.append(vg)
    for vg in groups:
        runner(["vgchange", "--activate", "n", vg])
        done.append(f"deactivated LVM volume group {vg}")
    for md in arrays:
        runner(["mdadm", "--stop", md])
        done.append(f"stopped md array {md}")
    return done


def wipe_disk(disk: DiskInfo, *, runner: Runner = run) -> None:
    """Erase every signature on the disk's partitions, then on the disk itself."""
    for node in disk.node.children:
        if node.type == "part":
            runner(["wipefs", "--all", node.path])
    runner(["wipefs", "--all", disk.path])


def _partition_names(disk_path: str, sys_block: Path) -> dict[int, str]:
    """Partition number -> kernel name, from sysfs (no udev involved)."""
    disk = Path(disk_path).name
    found: dict[int, str] = {}
    for entry in sys_block.glob(f"{disk}*"):
        number = entry / "partition"
        if entry.name != disk and number.is_file() and (entry / "..").resolve().name == disk:
            found[int(number.read_text().strip())] = entry.name
    return found


def partition_paths(disk_path: str, numbers: dict[str, int], *, runner: Runner = run,
                    sys_block: Path = Path("/sys/class/block"), dev_dir: Path = Path("/dev"),
                    timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Partition label -> device node after partitioning, for the labels and numbers of the layout.

    Waits (bounded) for the kernel's partition devices, then checks each one's GPT name with a
    low-level ``blkid`` probe, so a stale or foreign table is never taken for ours."""
    deadline = time.monotonic() + timeout
    while True:
        names = _partition_names(disk_path, sys_block)
        paths = {label: dev_dir / names[n] for label, n in numbers.items() if n in names}
        if len(paths) == len(numbers) and all(p.exists() for p in paths.values()):
            break
        if time.monotonic() >= deadline:
            missing = [label for label in numbers if label not in paths or not paths[label].exists()]
            raise HciError(f"after partitioning {disk_path}, no device node for {', '.join(missing)} "
                           f"within {timeout:.0f}s; the kernel did not re-read the partition table")
        sleep(0.5)
    for label, path in paths.items():
        got = runner(["blkid", "--probe", "--output", "value", "--match-tag", "PART_ENTRY_NAME",
                      str(path)]).stdout.strip()
        if got != label:
            raise HciError(f"partition {path} is named {got!r}, expected {label!r}: the new table was not read")
    return {label: str(path) for label, path in paths.items()}
