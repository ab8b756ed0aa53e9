"""Which disk this node booted from, and its partitions, by PARTUUID only.

The kernel line (written by the installer into grub.cfg) names the booted slot's root, hci-oem and
hci-persistent by PARTUUID; ``install.json`` on that hci-oem names all six partitions. Everything
the node services touch is resolved from those UUIDs, never from a GPT name: a second disk with
an old hcios install carries the same names (harvester#3070).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hcicore.command import Result, run
from hcicore.config.cmdline import cmdline_value, split_args
from hcicore.errors import HciError
from hcicore.layout import OEM_INSTALL_INFO, OEM_MOUNT, PERSISTENT_MOUNT

BY_PARTUUID = Path("/dev/disk/by-partuuid")


class NotAnInstalledNode(HciError):
    """The node services run on an installed node only (not the live system, not a build host)."""


@dataclass(frozen=True)
class BootDisk:
    slot: str  # the booted slot (hci.slot=)
    trial: bool  # hci.trial on the kernel line: grub booted this slot as a trial
    oem_root: Path
    persistent_root: Path
    partuuids: dict[str, str]  # GPT name -> PARTUUID, from install.json
    disk_guid: str = ""
    dev_dir: Path = BY_PARTUUID

    def device(self, label: str) -> Path:
        """The device node of partition ``label`` of the boot disk."""
        uuid = self.partuuids.get(label)
        if not uuid:
            raise HciError(f"install.json on hci-oem names no PARTUUID for {label}")
        link = self.dev_dir / uuid
        if not link.exists():
            raise HciError(f"partition {label} (PARTUUID {uuid}) of the boot disk is missing ({link})")
        return Path(os.path.realpath(link))

    def slot_device(self, slot: str) -> Path:
        return self.device(f"hci-root-{slot}")

    def check_same_disk(self, device: Path, *, sys_block: Path = Path("/sys/class/block"),
                        runner: Callable[..., Result] = run) -> None:
        """Refuse to write ``device`` unless it is on the disk hci-oem is on and no other
        partition carries its PARTUUID (a cloned disk). A file the kernel has no block entry for
        passes when it is not a block device (the apply tests' slot files)."""
        if not (sys_block / device.name).exists():
            if device.is_block_device():
                raise HciError(f"{device} has no entry in {sys_block}: cannot tell which disk it is on; "
                               "refusing to write it")
            return

        def disk_of(dev: Path) -> str:
            return (sys_block / dev.name).resolve().parent.name

        oem = self.device("hci-oem")
        if disk_of(device) != disk_of(oem):
            raise HciError(f"{device} is on disk {disk_of(device)}, but this node booted from {disk_of(oem)} "
                           f"({oem} is its hci-oem): refusing to write another disk")
        uuid = next((u for u in self.partuuids.values() if os.path.realpath(self.dev_dir / u) == str(device)), "")
        found = runner(["blkid", "-o", "device", "-t", f"PARTUUID={uuid}"], check=False).stdout.split()
        if len(found) > 1:
            raise HciError(f"{len(found)} partitions carry PARTUUID {uuid} ({', '.join(found)}): a cloned disk; "
                           "give the other one new GUIDs (sgdisk --randomize-guids) before upgrading")


def read_boot_disk(*, cmdline: Path = Path("/proc/cmdline"), oem_root: Path = Path(OEM_MOUNT),
                   persistent_root: Path = Path(PERSISTENT_MOUNT), dev_dir: Path = BY_PARTUUID) -> BootDisk:
    """The boot disk as the kernel line and hci-oem describe it; checks they agree."""
    try:
        text = cmdline.read_text()
    except FileNotFoundError as exc:
        raise NotAnInstalledNode(f"cannot read {cmdline}") from exc
    slot = cmdline_value(text, "hci.slot=")
    if slot not in ("a", "b"):
        raise NotAnInstalledNode("this is not an installed hcios node (no hci.slot= on the kernel line); "
                                 "hci-upgrade runs on installed nodes")
    info_path = oem_root / OEM_INSTALL_INFO
    try:
        info = json.loads(info_path.read_text())
    except (FileNotFoundError, ValueError) as exc:
        raise HciError(f"cannot read {info_path}: {exc}") from exc
    partuuids = {k: str(v).lower() for k, v in (info.get("partuuids") or {}).items()}
    given = {"hci-oem": cmdline_value(text, "hci.oem="), "hci-persistent": cmdline_value(text, "hci.persistent="),
             f"hci-root-{slot}": cmdline_value(text, "root=")}
    for label, value in given.items():
        uuid = (value or "").removeprefix("PARTUUID=").lower()
        if not partuuids:
            break  # an install from before PARTUUIDs: nothing to compare
        if not value or uuid != partuuids.get(label):
            raise HciError(f"the kernel line names {label} as {value!r}, but {info_path} records PARTUUID "
                           f"{partuuids.get(label)}: hci-oem is not from the disk this node booted")
    if not partuuids:
        raise HciError(f"{info_path} records no PARTUUIDs (an install from an older installer): "
                       "reinstall to use hci-upgrade")
    trial = any(arg == "hci.trial" or arg.startswith("hci.trial=") for arg in split_args(text))
    return BootDisk(slot=slot, trial=trial, oem_root=oem_root, persistent_root=persistent_root,
                    partuuids=partuuids, disk_guid=str(info.get("disk_guid") or ""), dev_dir=dev_dir)


def install_info(oem_root: Path) -> dict:
    try:
        return json.loads((oem_root / OEM_INSTALL_INFO).read_text())
    except (FileNotFoundError, ValueError):
        return {}
