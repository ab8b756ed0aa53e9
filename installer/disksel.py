"""Which disk a config means: a path (``/dev/vda``, ``/dev/disk/by-id/...``, ``by-path``) or a
match (``serial:S5XYZ``, ``model:SAMSUNG MZ7LH960``, ``smallest``, ``largest``), and the rule that
keeps an unattended wipe off the wrong disk.

Kernel names (``/dev/sda``) follow probe order and can change between boots, so an install that
nobody confirms and that may erase a disk is refused when the machine has more than one
non-removable disk and the disk is named only by its kernel name; the message lists every disk's
stable names. Harvester's configs use kernel names; on a one-disk machine they still work.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from hcicore.errors import Problem, ValidationError

from .blockdev import BlockNode, is_kernel_name, real_disks, stable_names

MATCH_KEYS = ("serial", "model")
PICKS = ("smallest", "largest")


def is_match(name: str) -> bool:
    """``name`` is a match, not a path."""
    return name in PICKS or name.split(":", 1)[0] in MATCH_KEYS and ":" in name


class DiskLike(Protocol):
    """What a match looks at: a BlockNode (install) or a hostinfo.Disk (wizard, preflight)."""

    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def removable(self) -> bool: ...


D = TypeVar("D", bound=DiskLike)


def matching(name: str, disks: Sequence[D]) -> list[D]:
    """The non-removable disks of ``disks`` that the match ``name`` fits."""
    fixed = [d for d in disks if not d.removable]
    if name in PICKS:
        if not fixed:
            return []
        size = (min if name == "smallest" else max)(d.size for d in fixed)
        return [d for d in fixed if d.size == size]
    key, _, want = name.partition(":")
    return [d for d in fixed if (getattr(d, key, None) or "").strip() == want.strip()]


def _fixed(nodes: list[BlockNode]) -> list[BlockNode]:
    return [n for n in real_disks(nodes) if not n.removable]


def _listing(disks: list[BlockNode], dev_dir: Path) -> str:
    rows = []
    for d in disks:
        names = ", ".join(stable_names(d.path, dev_dir)) or "no /dev/disk/by-id or by-path name"
        serial = f"serial:{d.serial}" if d.serial else "no serial"
        rows.append(f"{d.path} ({d.size / 1024**3:.1f} GiB, {serial}): {names}")
    return "; ".join(rows)


def select(name: str, nodes: list[BlockNode], *, path: str, dev_dir: Path = Path("/dev")) -> str:
    """The device path ``name`` means. A path is returned as given (checked later); a match must
    fit exactly one non-removable disk, else ValidationError at ``path`` (a data-disk match that
    is the install disk is refused by the install, never moved to another disk)."""
    if not is_match(name):
        return name
    disks = _fixed(nodes)
    found = matching(name, disks)
    if len(found) == 1:
        return found[0].path
    what = "no disk" if not found else f"{len(found)} disks"
    candidates = found or disks
    raise ValidationError([Problem(path, f"{name!r} matches {what} on this machine",
                                   f"name exactly one; the disks here: {_listing(candidates, dev_dir) or 'none'}")])


def kernel_name_problems(named: dict[str, str], nodes: list[BlockNode], *,
                         dev_dir: Path = Path("/dev")) -> list[Problem]:
    """For an unattended install: a problem for each field (``install.device`` -> name) whose
    disk may be wiped and is named by a kernel name while the machine has more than one
    non-removable disk."""
    disks = _fixed(nodes)
    if len(disks) <= 1:
        return []
    return [Problem(field, f"{name} is a kernel name, which can point at another disk after a reboot, and "
                           f"this machine has {len(disks)} disks: an unattended install that may erase "
                           "a disk needs a stable name",
                    f"use a /dev/disk/by-id or by-path name, or a match (serial:..., model:..., smallest, "
                    f"largest); the disks here: {_listing(disks, dev_dir)}")
            for field, name in named.items() if is_kernel_name(name)]
