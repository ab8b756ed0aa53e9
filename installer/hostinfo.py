"""What the installer can see of this machine: disks, NICs, CPU virtualization flags, memory.

Every function takes the paths it reads (or the command output it parses) as arguments, so tests
feed fixture trees instead of the real /proc and /sys.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hcicore import command, signedboot

from .blockdev import LSBLK_COLUMNS, parse_lsblk, real_disks, resolve_device, stable_names
from .disksel import is_match, matching

LSBLK_ARGV = ["lsblk", "--json", "--bytes", "--output", LSBLK_COLUMNS]
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
    removable: bool = False
    stable: tuple[str, ...] = ()  # /dev/disk/by-id and by-path names
    signature: str = ""  # a filesystem or partition table on the whole disk (lsblk FSTYPE/PTTYPE)

    @property
    def used(self) -> bool:
        """Anything on it that an install would erase."""
        return bool(self.partitions or self.signature)

    def contents(self) -> str:
        parts = f"partitions ({', '.join(self.partitions)})" if self.partitions else ""
        return " and ".join(p for p in (parts, self.signature and f"a {self.signature} signature") if p)

    @property
    def name_for_config(self) -> str:
        """by-id if it has one (it follows the disk), else by-path, else the kernel name."""
        return self.stable[0] if self.stable else self.path

    @property
    def by_path(self) -> str:
        return next((s for s in self.stable if s.startswith("/dev/disk/by-path/")), "")

    def describe(self) -> str:
        """One line for a menu: path, size, model, serial and by-path name (so identical disks
        can be told apart), and whether it holds partitions."""
        bits = [self.path, f"{self.size / GIB:.1f} GiB"]
        bits += [b for b in (self.model, f"serial {self.serial}" if self.serial else "", self.transport,
                             "removable" if self.removable else "", self.by_path.removeprefix("/dev/disk/"))
                 if b]
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
    firmware: str = "bios"  # bios, uefi, uefi-secure-boot
    signed_boot: bool = False  # this system carries Debian's signed shim and grub (hcicore.signedboot)
    root: Path = Path("/")

    def disk(self, path: str) -> Disk | None:
        """The disk named by ``path`` (a /dev path, a /dev/disk/by-* link, or a match that fits
        exactly one disk: :mod:`installer.disksel`), or None."""
        if is_match(path):
            found = matching(path, self.disks)
            return found[0] if len(found) == 1 else None
        wanted = resolve_device(path, self.root)
        for d in self.disks:
            if d.path in (path, wanted):
                return d
        return None


def disks_from_lsblk(text: str, dev_dir: Path = Path("/dev")) -> list[Disk]:
    """The disks one may install on, from ``lsblk`` output (:func:`installer.blockdev.real_disks`:
    no floppy, CD-ROM, RAM disk, 0-byte or read-only device), each with its stable names."""
    return [Disk(
        name=n.name, path=n.path, size=n.size, model=n.model or "", serial=n.serial or "",
        rotational=n.rotational, transport=n.transport or "", removable=n.removable,
        partitions=tuple(c.path for c in n.children), stable=tuple(stable_names(n.path, dev_dir)),
        signature=n.fstype or n.pttype or "",
    ) for n in real_disks(parse_lsblk(text))]


def list_disks(lsblk_json: str | None = None, dev_dir: Path = Path("/dev")) -> list[Disk]:
    """Disks seen by lsblk; pass ``lsblk_json`` to parse given output instead of running it."""
    if lsblk_json is None:
        lsblk_json = command.run(LSBLK_ARGV).stdout
    return disks_from_lsblk(lsblk_json, dev_dir)


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


SECURE_BOOT_VAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"  # EFI global variable


def firmware_state(efi: Path = Path("/sys/firmware/efi")) -> str:
    """``bios``, ``uefi`` (Secure Boot off), ``uefi-secure-boot``, or ``uefi`` when the variable
    can't be read. The efivar file is 4 bytes of attributes, then the value byte."""
    if not efi.is_dir():
        return "bios"
    try:
        data = (efi / "efivars" / SECURE_BOOT_VAR).read_bytes()
    except OSError:
        return "uefi"
    return "uefi-secure-boot" if len(data) >= 5 and data[4] == 1 else "uefi"


def discover(root: Path = Path("/"), lsblk_json: str | None = None) -> HostInfo:
    """Everything above, read from ``root`` (``/`` on a real machine)."""
    return HostInfo(
        disks=list_disks(lsblk_json, root / "dev"),
        nics=list_nics(root / "sys/class/net"),
        virt_flags=cpu_virt_flags(root / "proc/cpuinfo"),
        mem_total=mem_total(root / "proc/meminfo"),
        firmware=firmware_state(root / "sys/firmware/efi"),
        signed_boot=signedboot.signed_files(root) is not None,
        root=root,
    )
