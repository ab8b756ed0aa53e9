"""Get the kernel and initramfs out of a rootfs.squashfs (``/boot/vmlinuz``, ``/boot/initrd.img``).

Debian names them with the kernel version and points ``/boot/vmlinuz`` (or ``/vmlinuz``) at them
with symlinks, relative or absolute; symlinks are resolved inside the extracted tree, never on the
host.
"""
from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from hcicore.command import run
from hcicore.errors import HciError

KERNEL_PATHS = ("boot/vmlinuz", "vmlinuz")
INITRD_PATHS = ("boot/initrd.img", "initrd.img")


def resolve_in_tree(root: Path, rel: str, *, max_links: int = 16) -> Path | None:
    """Resolve ``rel`` inside ``root`` as if ``root`` were ``/``; None if it does not exist."""
    parts = list(PurePosixPath(rel).parts)
    current = PurePosixPath("/")
    links = 0
    while parts:
        part = parts.pop(0)
        if part in ("/", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        host = root / candidate.relative_to("/")
        if host.is_symlink():
            links += 1
            if links > max_links:
                raise HciError(f"too many symlinks resolving /{rel} in {root}")
            target = PurePosixPath(host.readlink().as_posix())
            if target.is_absolute():
                current = PurePosixPath("/")
            parts = list(target.parts) + parts
            continue
        if not host.exists():
            return None
        current = candidate
    return root / current.relative_to("/")


def extract_boot_files(squashfs: Path, dest: Path) -> tuple[Path, Path]:
    """Copy the kernel and initrd of ``squashfs`` to ``dest/vmlinuz`` and ``dest/initrd.img``
    (mode 0644: dracut writes the initrd 0600)."""
    dest.mkdir(parents=True, exist_ok=True)
    tree = dest / "squashfs-boot"
    if tree.exists():
        shutil.rmtree(tree)
    # Only /boot and the top-level links: a few tens of MB, not the whole OS.
    run(["unsquashfs", "-no-progress", "-d", str(tree), str(squashfs),
         "boot", "vmlinuz", "initrd.img"])
    found: list[Path] = []
    for names, what in ((KERNEL_PATHS, "kernel"), (INITRD_PATHS, "initramfs")):
        path = next((p for p in (resolve_in_tree(tree, n) for n in names) if p and p.is_file()), None)
        if path is None:
            raise HciError(
                f"{squashfs}: no {what} at /{' or /'.join(names)} "
                "(the image pipeline must install the kernel and run dracut)"
            )
        found.append(path)
    kernel = dest / "vmlinuz"
    initrd = dest / "initrd.img"
    shutil.copyfile(found[0], kernel)
    shutil.copyfile(found[1], initrd)
    kernel.chmod(0o644)
    initrd.chmod(0o644)
    shutil.rmtree(tree)
    return kernel, initrd
