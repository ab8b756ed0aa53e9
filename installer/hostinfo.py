"""What the installer can see of this machine: disks, NICs, CPU virtualization flags, memory.

Every function takes the paths it reads (or the command output it parses) as arguments, so tests
feed fixture trees instead of the real /proc and /sys.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from hcicore import command
from hcicore.errors import HciError

LSBLK_ARGV = ["lsblk", "-J", "-b", "-o", "NAME,PATH,SIZE,TYPE,MODEL,SERIAL,ROTA,TRAN"]
GIB = 1024**3


@dataclass(frozen=True)
class Disk:
    name: str
    path: str
    size: int
    model: str = ""
    serial: str = ""
    rotational: bool = False
    transport: str = ""
    partitions: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a menu: path, size, model, and whether it holds partitions."""
        bits = [self.path, f"{self.size / GIB:.1f} GiB"]
        if self.model:
            bits.append(self.model)
        if self.transport:
            bits.append(self.transport)
        if self.partitions:
            bits.append(f"{len(self.partitions)} partition(s)")
        return "  ".join(bits)


@dataclass(frozen=True)
class Nic:
    name: str
    mac: str
    link_up: bool
    physical: bool

    def describe(self) -> str:
        return f"{self.name}  {self.mac}  link {'up' if self.link_up else 'down'}"


@dataclass(frozen=True)
class HostInfo:
    disks: list[Disk] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    virt_flags: frozenset[str] = frozenset()
    mem_total: int = 0
    root: Path = Path("/")

    def disk(self, path: str) -> Disk | None:
        """The disk named by ``path`` (a /dev path or a /dev/disk/by-* link), or None."""
        wanted = resolve_device(path, self.root)
        for d in self.disks:
            if d.path in (path, wanted):
                return d
        return None


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def parse_lsblk(text: str) -> list[Disk]:
    """Whole disks from ``lsblk -J -b`` output (loop, CD-ROM, zram and empty devices left out)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HciError(f"lsblk gave output that is not JSON: {exc}") from exc
    disks: list[Disk] = []
    for dev in data.get("blockdevices", []):
        size = int(dev.get("size") or 0)
        name = _text(dev.get("name"))
        if dev.get("type") != "disk" or size == 0 or name.startswith(("zram", "ram")):
            continue
        children = dev.get("children") or []
        rota = dev.get("rota")
        disks.append(Disk(
            name=name,
            path=_text(dev.get("path")) or f"/dev/{name}",
            size=size,
            model=_text(dev.get("model")),
            serial=_text(dev.get("serial")),
            rotational=rota in (True, "1", 1),
            transport=_text(dev.get("tran")),
            partitions=tuple(_text(c.get("path") or c.get("name")) for c in children),
        ))
    return disks


def list_disks(lsblk_json: str | None = None) -> list[Disk]:
    """Disks seen by lsblk; pass ``lsblk_json`` to parse given output instead of running it."""
    if lsblk_json is None:
        lsblk_json = command.run(LSBLK_ARGV).stdout
    return parse_lsblk(lsblk_json)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def list_nics(sys_class_net: Path = Path("/sys/class/net")) -> list[Nic]:
    """Network interfaces except loopback, sorted by name, with MAC and link state."""
    nics: list[Nic] = []
    if not sys_class_net.is_dir():
        return nics
    for entry in sorted(sys_class_net.iterdir()):
        if entry.name == "lo":
            continue
        carrier = _read(entry / "carrier")
        operstate = _read(entry / "operstate")
        nics.append(Nic(
            name=entry.name,
            mac=_read(entry / "address").lower(),
            link_up=carrier == "1" or operstate == "up",
            physical=(entry / "device").exists(),
        ))
    return nics


def cpu_virt_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The hardware virtualization flags (``vmx`` Intel VT-x, ``svm`` AMD-V) the CPU reports."""
    found: set[str] = set()
    for line in _read(cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            found.update({"vmx", "svm"} & set(value.split()))
    return frozenset(found)


def mem_total(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemTotal in bytes (0 if it cannot be read)."""
    for line in _read(meminfo).splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return 0


def resolve_device(path: str, root: Path = Path("/")) -> str:
    """Follow /dev/disk/by-* links (inside ``root``) to the kernel name, e.g. /dev/vda."""
    if not path.startswith("/"):
        return path
    real = os.path.realpath(root / path.lstrip("/"))
    rootstr = os.path.realpath(root)
    if rootstr != "/" and real.startswith(rootstr + "/"):
        real = real[len(rootstr):]
    return real


def discover(root: Path = Path("/"), lsblk_json: str | None = None) -> HostInfo:
    """Everything above, read from ``root`` (``/`` on a real machine)."""
    return HostInfo(
        disks=list_disks(lsblk_json),
        nics=list_nics(root / "sys/class/net"),
        virt_flags=cpu_virt_flags(root / "proc/cpuinfo"),
        mem_total=mem_total(root / "proc/meminfo"),
        root=root,
    )
