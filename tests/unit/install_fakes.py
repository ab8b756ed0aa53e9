"""A recording runner for installer unit tests: canned lsblk/wipefs/pvs output, every argv kept."""
from __future__ import annotations

import json
import logging
from typing import Any

from hcicore.command import Result
from hcicore.errors import CommandError

GiB = 1024**3
DESTRUCTIVE = ("sgdisk", "wipefs --all", "mkfs", "dd", "grub-install", "vgchange", "mdadm", "partprobe",
               "mount")


def lsblk_json(path: str = "/dev/vda", size: int = 40 * GiB, children: list[dict[str, Any]] | None = None,
               **extra: Any) -> str:
    dev = {"path": path, "type": "disk", "size": size, "fstype": None, "pttype": None, "partlabel": None,
           "mountpoint": None, "model": "QEMU HARDDISK", "ro": False, "log-sec": 512, **extra}
    if children:
        dev["children"] = children
    return json.dumps({"blockdevices": [dev]})


def part(path: str, *, fstype: str | None = None, label: str | None = None,
         children: list[dict[str, Any]] | None = None, type_: str = "part", **extra: Any) -> dict[str, Any]:
    d = {"path": path, "type": type_, "size": GiB, "fstype": fstype, "pttype": None, "partlabel": label,
         "mountpoint": None, "model": None, "ro": False, "log-sec": 512, **extra}
    if children:
        d["children"] = children
    return d


def wipefs_json(*types: str) -> str:
    if not types:
        return ""
    return json.dumps({"signatures": [{"device": "vda", "offset": "0x200", "type": t, "uuid": None,
                                       "label": None} for t in types]})


class FakeRunner:
    """Answers like the real tools for the commands the installer reads with; records all."""

    def __init__(self, lsblk: str, wipefs: str = "", pvs: dict[str, str] | None = None,
                 fail: dict[str, int] | None = None):
        self.lsblk = lsblk
        self.wipefs = wipefs
        self.pvs = pvs or {}
        self.fail = fail or {}
        self.calls: list[list[str]] = []
        self.other_disks: dict[str, tuple[str, str]] = {}  # device -> (lsblk json, wipefs json)

    def __call__(self, argv: list[str], check: bool = True, **_: Any) -> Result:
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        logging.getLogger("hcios.command").info("run: %s", " ".join(argv))  # as hcicore.command.run does
        for prefix, code in self.fail.items():
            if " ".join(argv).startswith(prefix):
                if check:
                    raise CommandError(argv, code, f"{argv[0]}: failed (fake)")
                return Result(argv, code, "", "failed (fake)")
        out = ""
        other = self.other_disks.get(argv[-1])
        if argv[0] == "lsblk":
            out = other[0] if other else self.lsblk
        elif argv[:2] == ["wipefs", "--no-act"]:
            out = other[1] if other else self.wipefs
        elif argv[0] == "pvs":
            out = self.pvs.get(argv[-1], "")
        return Result(argv, 0, out, "")

    def commands(self) -> list[str]:
        return [" ".join(a) for a in self.calls]

    def destructive(self) -> list[str]:
        return [c for c in self.commands() if c.startswith(DESTRUCTIVE)]
