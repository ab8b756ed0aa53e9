"""The A/B slot image: one squashfs of the whole tree, kernel and initrd inside /boot.

xz by default: GRUB 2.06's squash4 reads xz/gzip/lzo, not zstd, and grub boots the kernel
straight out of the slot.
"""
from __future__ import annotations

from pathlib import Path

from hcicore.command import run

from .base import BuildContext


def mksquashfs_argv(ctx: BuildContext, tree: Path, target: Path) -> list[str]:
    # SOURCE_DATE_EPOCH (in ctx.env) sets the mkfs time and every inode time; mksquashfs
    # refuses -mkfs-time/-all-time alongside it.
    return ["mksquashfs", str(tree), str(target), "-noappend", "-no-progress", "-quiet",
            "-comp", ctx.profile.squashfs_compression, "-b", str(ctx.profile.squashfs_block_size)]


def build_squashfs(ctx: BuildContext, base: Path | None, out: Path) -> None:
    assert base is not None
    run(mksquashfs_argv(ctx, base / "tree", out / "rootfs.squashfs"), env=ctx.env)
