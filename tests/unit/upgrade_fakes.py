"""A node made of files for the hci-upgrade unit tests: slots are regular files named by their
PARTUUID (as /dev/disk/by-partuuid/ names them), hci-oem and hci-persistent are directories, and
slot images are small real xz squashfs images the test builds."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hcicore.bootstate import BootStateStore
from hcicore.command import Result
from hcicore.config import load_config
from hcicore.cosign import public_pem
from hcicore.layout import LABELS, OEM_INSTALL_INFO
from hcicore.progress import Progress
from image.publish import push_slot_image
from hcicore.oci import parse_reference
from node_services.bootdisk import BootDisk
from node_services.upgrade.node import Node

SLOT_BYTES = 24 << 20


def make_image(tmp: Path, name: str, *, version: str, etc: dict[str, str] | None = None,
               var: dict[str, str] | None = None, comp: str = "xz", boot: bool = True, pad: int = 0) -> Path:
    """A small slot image: /boot/vmlinuz and /boot/initrd.img (links, as Debian has them),
    os-release, /etc/hcios/version and the given /etc and /var files."""
    tree = tmp / f"{name}-tree"
    if tree.exists():
        shutil.rmtree(tree)
    (tree / "boot").mkdir(parents=True)
    if boot:
        (tree / "boot/vmlinuz-6.1.0-test").write_bytes(os.urandom(4096))
        (tree / "boot/initrd.img-6.1.0-test").write_bytes(os.urandom(4096))
        os.symlink("vmlinuz-6.1.0-test", tree / "boot/vmlinuz")
        os.symlink("initrd.img-6.1.0-test", tree / "boot/initrd.img")
    (tree / "usr/lib").mkdir(parents=True)
    (tree / "usr/lib/os-release").write_text(f'VERSION_ID="{version}"\nBUILD_ID="test"\n')
    files = {"etc/hcios/version": f"{version}\n", **{f"etc/{k}": v for k, v in (etc or {}).items()},
             **{f"var/{k}": v for k, v in (var or {}).items()}}
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    out = tmp / f"{name}.squashfs"
    subprocess.run(["mksquashfs", str(tree), str(out), "-comp", comp, "-noappend", "-quiet", "-no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    if pad:
        with out.open("ab") as f:
            f.write(os.urandom(pad))  # not zeros: a half-written slot must not read back like a whole one
    return out


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], check: bool = True, **_: Any) -> Result:
        self.calls.append([str(a) for a in argv])
        return Result([str(a) for a in argv], 0, "", "")

    @property
    def reboots(self) -> list[list[str]]:
        return [c for c in self.calls if c[:2] == ["systemctl", "reboot"]]


class FileNode(Node):
    """Node whose slot "mounts" are unsquashfs extractions (no root, no loop devices)."""

    @contextmanager
    def mounted_slot(self, slot: str) -> Iterator[Path]:
        where = self.slot_mounts / slot
        if where.exists():
            shutil.rmtree(where)
        where.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["unsquashfs", "-n", "-d", str(where), str(self.disk.slot_device(slot))], check=True,
                       stdout=subprocess.DEVNULL)
        try:
            yield where
        finally:
            shutil.rmtree(where)


@dataclass
class Rig:
    root: Path
    partuuids: dict[str, str]
    runner: FakeRunner
    config_data: dict[str, Any]
    hooks: list[str] = field(default_factory=list)
    pause_at: str | None = None

    @property
    def oem(self) -> Path:
        return self.root / "oem"

    @property
    def persistent(self) -> Path:
        return self.root / "persistent"

    @property
    def dev(self) -> Path:
        return self.root / "dev"

    def slot_file(self, slot: str) -> Path:
        return self.dev / self.partuuids[f"hci-root-{slot}"]

    def hook(self, point: str) -> None:
        self.hooks.append(point)
        if point == self.pause_at:
            raise PowerCut(point)

    def node(self, slot: str = "a", *, trial: bool = False) -> FileNode:
        disk = BootDisk(slot=slot, trial=trial, oem_root=self.oem, persistent_root=self.persistent,
                        partuuids=self.partuuids, disk_guid="guid", dev_dir=self.dev)
        node = FileNode(disk=disk, staging=self.persistent / "var/lib/hcios/upgrade", slot_mounts=self.root / "mnt",
                        lock_path=self.root / "upgrade.lock", runner=self.runner, hook=self.hook,
                        config=load_config(self.config_data, source="test"))
        (node.etc_layer(slot) / "upper").mkdir(parents=True, exist_ok=True)
        return node

    def sha_of_slot(self, slot: str) -> str:
        import hashlib  # noqa: PLC0415

        return hashlib.sha256(self.slot_file(slot).read_bytes()).hexdigest()


class PowerCut(BaseException):
    """Raised by a rig's hook: the process "dies" at that point (nothing after it runs)."""


def make_rig(tmp: Path, image_a: Path, *, version: str = "1.0.0", trusted: list[str] | None = None,
             insecure: list[str] | None = None) -> Rig:
    partuuids = {label: str(uuid.uuid4()) for label in LABELS}
    rig = Rig(tmp / "node", partuuids, FakeRunner(), {
        "install": {"device": "/dev/vda"},
        "node": {"hostname": "node1", "password_hash": "$6$abcdefgh$" + "a" * 86},
        "upgrade": {"trusted_keys": trusted or [], "insecure_registries": insecure or []}})
    rig.dev.mkdir(parents=True)
    for slot in ("a", "b"):
        with rig.slot_file(slot).open("wb") as f:
            f.truncate(SLOT_BYTES)
    data = image_a.read_bytes()
    with rig.slot_file("a").open("r+b") as f:
        f.write(data)
    import hashlib  # noqa: PLC0415

    (rig.oem / "hcios").mkdir(parents=True)
    (rig.oem / OEM_INSTALL_INFO).write_text(json.dumps({
        "version": version, "slot_a_sha256": hashlib.sha256(data).hexdigest(), "image_bytes": len(data),
        "partuuids": partuuids, "disk_guid": "guid", "installed_at": 1}))
    BootStateStore(rig.oem).initialize("a")
    return rig


def new_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, public_pem(key)


def key_file(tmp: Path, key: ec.EllipticCurvePrivateKey, name: str = "key.pem") -> Path:
    path = tmp / name
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def publish(image: Path, ref: str, *, version: str, key: object | None = None, metadata: dict | None = None) -> str:
    """Push ``image`` as an upgrade artifact; returns the manifest digest."""
    done = push_slot_image(image, parse_reference(ref), version=version, arch="amd64", compression="xz",
                           metadata=metadata or {}, key=key, plain_http=True, progress=Progress(as_json=True, stream=io.StringIO()))
    return done.manifest_digest
