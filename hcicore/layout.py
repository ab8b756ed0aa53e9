"""The install disk's GPT layout (ARCHITECTURE.md section 3) as data, and the sgdisk command for it.

========  ==============  ==========  ======================================================
number    label           type code   size
========  ==============  ==========  ======================================================
1         hci-bios        EF02        1 MiB (BIOS boot partition for grub)
2         hci-esp         EF00        300 MiB (FAT32 ESP: enough clusters on a 4Kn disk too)
3         hci-oem         8300        256 MiB (ext4: grub env, node config, seed, install log)
4         hci-root-a      8300        slot size (raw squashfs)
5         hci-root-b      8300        slot size (raw squashfs)
6         hci-persistent  8300        the rest, at least ``PERSISTENT_MIN`` (ext4)
========  ==============  ==========  ======================================================

Slot size: twice the image, at least ``SLOT_MIN`` (2 GiB), rounded up to a whole MiB, so an
upgrade to an image up to twice today's size still fits. Every partition starts on a 1 MiB
boundary; the first MiB holds the primary GPT and the last MiB is left for the backup GPT.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from .errors import Problem, ValidationError

MiB = 1024**2
GiB = 1024**3
SLOT_MIN = 2 * GiB
PERSISTENT_MIN = 10 * GiB
GPT_HEAD = 1 * MiB  # protective MBR + primary GPT, and alignment of partition 1
GPT_TAIL = 1 * MiB  # backup GPT (33 sectors), rounded to the alignment
FIXED = (("hci-bios", 1 * MiB, "EF02", None),
         # FAT32 needs 65525 clusters: with 4096-byte sectors and one sector per cluster that
         # is 256 MiB, so the ESP is FAT32 on 512-byte and 4Kn disks alike (UEFI requires FAT32
         # on fixed disks; a 64 MiB ESP was FAT16)
         ("hci-esp", 300 * MiB, "EF00", "vfat"),
         ("hci-oem", 256 * MiB, "8300", "ext4"))
LABELS = ("hci-bios", "hci-esp", "hci-oem", "hci-root-a", "hci-root-b", "hci-persistent")
# Where things live inside the hci-oem filesystem (paths relative to its root).
OEM_MOUNT = "/run/hci/oem"  # where the installed node mounts hci-oem (dracut module hci-root)
OEM_DIR = "hcios"  # our directory on hci-oem: boot state, node config, seed, install log
OEM_NODE_CONFIG = f"{OEM_DIR}/config.yaml"  # the validated node config (dump_config), mode 0600
OEM_SEED_DIR = f"{OEM_DIR}/nocloud"  # cloud-init NoCloud seed (render_seed), files mode 0600
OEM_INSTALL_INFO = f"{OEM_DIR}/install.json"  # what the installer wrote: version, digest, PARTUUIDs
PERSISTENT_MOUNT = "/run/hci/persistent"  # where the installed node mounts hci-persistent


@dataclass(frozen=True)
class Partition:
    number: int
    label: str
    start: int  # bytes from the start of the disk
    size: int  # bytes
    type_code: str  # sgdisk short type code
    filesystem: str | None  # what the installer puts there: vfat, ext4, squashfs or nothing

    @property
    def end(self) -> int:
        """First byte after the partition."""
        return self.start + self.size


@dataclass(frozen=True)
class Layout:
    disk_bytes: int
    slot_bytes: int
    partitions: tuple[Partition, ...]

    def by_label(self, label: str) -> Partition:
        for part in self.partitions:
            if part.label == label:
                return part
        raise KeyError(label)


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def slot_bytes(image_bytes: int) -> int:
    """Size of one root slot for an image of ``image_bytes``."""
    if image_bytes <= 0:
        raise ValueError(f"image size must be positive, got {image_bytes}")
    return _round_up(max(2 * image_bytes, SLOT_MIN), MiB)


def min_disk_bytes(image_bytes: int) -> int:
    """Smallest disk that holds the layout for this image."""
    fixed = sum(size for _, size, _, _ in FIXED)
    return GPT_HEAD + fixed + 2 * slot_bytes(image_bytes) + PERSISTENT_MIN + GPT_TAIL


def _human(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def plan_layout(disk_bytes: int, image_bytes: int, *, device: str = "the install disk",
                path: str = "install.device") -> Layout:
    """Plan the partitions for a disk of ``disk_bytes`` and a slot image of ``image_bytes``.

    Raises ValidationError (at ``path``) saying which disk is too small and by how much."""
    need = min_disk_bytes(image_bytes)
    if disk_bytes < need:
        raise ValidationError([Problem(
            path,
            f"disk {device} is too small: it has {_human(disk_bytes)} ({disk_bytes} bytes), the layout "
            f"needs {_human(need)} ({need} bytes), {_human(need - disk_bytes)} more",
            f"use a disk of at least {_round_up(need, GiB) // GiB} GiB")])
    slot = slot_bytes(image_bytes)
    parts: list[Partition] = []
    start = GPT_HEAD
    rows = [*FIXED, ("hci-root-a", slot, "8300", "squashfs"), ("hci-root-b", slot, "8300", "squashfs")]
    for number, (label, size, code, fs) in enumerate(rows, start=1):
        parts.append(Partition(number, label, start, size, code, fs))
        start += size
    rest = (disk_bytes - GPT_TAIL) // MiB * MiB - start
    parts.append(Partition(len(parts) + 1, "hci-persistent", start, rest, "8300", "ext4"))
    return Layout(disk_bytes, slot, tuple(parts))


@dataclass(frozen=True)
class DiskIdentity:
    """The GUIDs the installer gives the disk and each partition: the node finds everything by
    them (kernel line, boot state), so a second disk with the same GPT names is never used."""

    disk_guid: str
    partuuids: dict[str, str]  # label -> PARTUUID (lower-case)

    @classmethod
    def new(cls, labels: tuple[str, ...] = LABELS) -> DiskIdentity:
        return cls(str(uuid.uuid4()), {label: str(uuid.uuid4()) for label in labels})


def sgdisk_argv(layout: Layout, device: str, *, sector_size: int = 512,
                identity: DiskIdentity | None = None) -> list[str]:
    """The sgdisk command that writes ``layout`` to ``device`` as a fresh GPT.

    ``--clear`` replaces any partition table: the caller must have checked the disk may be
    wiped. Start and end sectors are explicit, so the disk gets exactly the planned layout;
    with ``identity`` the disk and partition GUIDs are the given ones instead of random ones."""
    if MiB % sector_size:
        raise ValueError(f"unsupported sector size {sector_size}")
    argv = ["sgdisk", "--clear"]
    if identity is not None:
        argv.append(f"--disk-guid={identity.disk_guid}")
    for p in layout.partitions:
        first = p.start // sector_size
        last = p.end // sector_size - 1
        argv += [f"--new={p.number}:{first}:{last}", f"--typecode={p.number}:{p.type_code}",
                 f"--change-name={p.number}:{p.label}"]
        if identity is not None:
            argv.append(f"--partition-guid={p.number}:{identity.partuuids[p.label]}")
    argv.append(device)
    return argv
