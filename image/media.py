"""Boot media from the built slot image: the hybrid ISO and the PXE directory (iso/ does the work)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from hcicore import signedboot
from hcicore.digest import sha256_file
from hcicore.errors import HciError
from iso.bootfiles import resolve_in_tree
from iso.build import build_iso
from iso.pxe import write_pxe

from .stages.base import BuildContext


def boot_files(tree: Path) -> tuple[Path, Path]:
    """The kernel and initrd inside the slot tree (``/boot/vmlinuz`` and ``/boot/initrd.img``),
    symlinks resolved inside the tree, never on the build host."""
    found = []
    for rel in ("boot/vmlinuz", "boot/initrd.img"):
        path = resolve_in_tree(tree, rel)
        if path is None:
            raise HciError(f"the slot tree has no /{rel} (the initramfs stage links it)")
        found.append(path)
    return found[0], found[1]


def airgap_files(ctx: BuildContext, out: Path) -> Path | None:
    wanted = [c for c in ctx.profile.components if c.airgap and c.name in ctx.fetched]
    if not wanted:
        return None
    bundle = out / ".airgap"
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir()
    index = []
    for c in wanted:
        name = Path(c.dest).name
        shutil.copyfile(ctx.fetched[c.name], bundle / name)
        index.append({"name": c.name, "version": c.version, "file": name, "sha256": c.sha256})
    (bundle / "index.json").write_text(json.dumps(index, indent=1))
    return bundle


def write_boot_media(ctx: BuildContext, dirs: dict[str, Path], out: Path) -> dict[str, Path]:
    tree = dirs["finalize"] / "tree"
    kernel, initrd = boot_files(tree)
    squashfs = out / "rootfs.squashfs"
    airgap = airgap_files(ctx, out)
    digest = sha256_file(squashfs)  # once, for the ISO's .sha256 file and the PXE boot line
    try:
        iso = build_iso(squashfs=squashfs, kernel=kernel, initrd=initrd, out_dir=out, version=ctx.version,
                        arch=ctx.profile.arch, airgap_dir=airgap, progress=ctx.progress,
                        source_date_epoch=ctx.epoch, squashfs_sha256=digest,
                        signed_efi=signedboot.signed_files(tree, "cd"))
        pxe = write_pxe(squashfs=squashfs, kernel=kernel, initrd=initrd, out_dir=out, version=ctx.version,
                        squashfs_sha256=digest)
    finally:
        if airgap is not None:
            shutil.rmtree(airgap)
    return {iso.name: iso, "pxe": pxe}
