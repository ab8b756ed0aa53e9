"""Block devices as the installer sees them: the one ``lsblk`` parser, the one name resolver,
the stable names of a disk, and which devices are disks one may install on.

Everything here reads; nothing writes. The wizard's disk list (:mod:`installer.hostinfo`) and
the install's disk checks (:mod:`installer.disk`) both build on it, so what the menu offers and
what the install accepts can't drift apart.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcicore.command import Result, run
from hcicore.errors import HciError

Runner = Callable[..., Result]

# NAME must be listed: without it lsblk prints a flat list (no "children"), not the tree.
LSBLK_COLUMNS = "NAME,PATH,TYPE,SIZE,FSTYPE,PTTYPE,PARTLABEL,MOUNTPOINT,MODEL,SERIAL,ROTA,TRAN,RM,RO,LOG-SEC"
WHOLE_DISK_TYPES = ("disk", "loop")
# kernel name prefixes never offered: floppies, RAM disks, CD-ROMs, bcache devices (made of disks)
NOT_DISKS = ("fd", "zram", "ram", "sr", "bcache")
STABLE_DIRS = ("by-id", "by-path")


@dataclass(frozen=True)
class BlockNode:
    """One node of ``lsblk``'s tree: a disk, a partition, or a holder (md, LVM, dm-crypt...)."""

    path: str
    type: str
    size: int
    fstype: str | None = None
    pttype: str | None = None
    partlabel: str | None = None
    mountpoint: str | None = None
    model: str | None = None
    serial: str | None = None
    rotational: bool = False
    transport: str | None = None
    removable: bool = False
    read_only: bool = False
    sector_size: int = 512
    children: tuple[BlockNode, ...] = ()

    @property
    def name(self) -> str:
        return Path(self.path).name

    def walk(self) -> Iterator[BlockNode]:
        """This node and every node below it, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    return int(value)


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _node(raw: dict[str, Any]) -> BlockNode:
    name = _text(raw.get("name")) or ""
    return BlockNode(
        path=_text(raw.get("path")) or f"/dev/{name}",
        type=str(raw.get("type") or ""),
        size=_int(raw.get("size")),
        fstype=_text(raw.get("fstype")),
        pttype=_text(raw.get("pttype")),
        partlabel=_text(raw.get("partlabel")),
        mountpoint=_text(raw.get("mountpoint")),
        model=_text(raw.get("model")),
        serial=_text(raw.get("serial")),
        rotational=_flag(raw.get("rota")),
        transport=_text(raw.get("tran")),
        removable=_flag(raw.get("rm")),
        read_only=_flag(raw.get("ro")),
        sector_size=_int(raw.get("log-sec"), 512),
        children=tuple(_node(c) for c in raw.get("children") or ()),
    )


def parse_lsblk(text: str) -> list[BlockNode]:
    """The devices of ``lsblk --json --bytes --output LSBLK_COLUMNS [DEVICE]``, each as a tree."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HciError(f"lsblk gave output that is not JSON: {exc}") from exc
    return [_node(raw) for raw in data.get("blockdevices") or []]


def lsblk(*, runner: Runner = run, device: str | None = None) -> list[BlockNode]:
    """Every block device (or ``device`` alone) as lsblk sees it now."""
    argv = ["lsblk", "--json", "--bytes", "--output", LSBLK_COLUMNS]
    return parse_lsblk(runner([*argv, device] if device else argv).stdout)


def resolve_device(name: str, root: Path = Path("/")) -> str:
    """Follow ``/dev/disk/by-*`` and other links (inside ``root``) to the kernel name, e.g. /dev/vda."""
    if not name.startswith("/"):
        return name
    real = os.path.realpath(root / name.lstrip("/"))
    top = os.path.realpath(root)
    if top != "/" and real.startswith(top + "/"):
        real = real[len(top):]
    return real


def is_kernel_name(name: str) -> bool:
    """``/dev/sda``, ``/dev/vdb``, ``/dev/nvme0n1``: a name the kernel gives in probe order, which
    can change between boots. ``/dev/disk/by-*`` names (and matches) are stable."""
    return name.startswith("/dev/") and "/" not in name[len("/dev/"):]


def stable_names(device: str, dev_dir: Path = Path("/dev")) -> list[str]:
    """The ``/dev/disk/by-id`` and ``by-path`` links that lead to the whole disk ``device``,
    by-id first (it follows the disk when it moves), sorted."""
    target = Path(device).name
    found: list[str] = []
    for sub in STABLE_DIRS:
        directory = dev_dir / "disk" / sub
        if not directory.is_dir():
            continue
        for link in sorted(directory.iterdir()):
            if link.is_symlink() and Path(os.readlink(link)).name == target:
                found.append(f"/dev/disk/{sub}/{link.name}")
    return found


def not_installable(node: BlockNode) -> str | None:
    """Why ``node`` is not a disk to install on or store data on (None: it is one)."""
    if node.type != "disk" or node.name.startswith(NOT_DISKS):
        return "not a disk"
    if node.size == 0:
        return "0 bytes (no medium)"
    if node.read_only:
        return "read-only"
    return None


def real_disks(nodes: list[BlockNode]) -> list[BlockNode]:
    """The whole disks one may install on: no floppy, RAM disk, CD-ROM, empty or read-only device."""
    return [n for n in nodes if not_installable(n) is None]
