"""Build the dracut initramfs inside the rootfs (never on the build host) and link kernel+initrd."""
from __future__ import annotations

from pathlib import Path

from hcicore.errors import HciError

from ..chroot import chroot_mounts, chroot_run
from .base import BuildContext


def kernel_version(root: Path) -> str:
    kvers = sorted(p.name for p in (root / "lib/modules").iterdir() if p.is_dir())
    if len(kvers) != 1:
        raise HciError(f"expected exactly one kernel in {root}/lib/modules, found {kvers or 'none'}")
    return kvers[0]


def _check_modules(root: Path, modules: list[str]) -> None:
    have = {p.name[2:] for p in (root / "usr/lib/dracut/modules.d").iterdir()}
    missing = [m for m in modules if m not in have]
    if missing:
        raise HciError(f"initramfs.modules: dracut modules not in the image: {', '.join(missing)} "
                       "(install the package that ships them or remove them from the profile)")


def build_initramfs(ctx: BuildContext, base: Path | None, out: Path) -> None:
    root = out / "tree"
    kver = kernel_version(root)
    modules = ctx.profile.initramfs_modules
    _check_modules(root, modules)
    boot = root / "boot"
    for stale in boot.glob("initrd.img-*"):
        stale.unlink()
    argv = ["dracut", "--force", "--no-hostonly", "--reproducible", "--no-hostonly-cmdline",
            "--compress", "xz", "--kver", kver]
    if modules:
        argv += ["--add", " ".join(modules)]
    if ctx.profile.initramfs_drivers:
        argv += ["--add-drivers", " ".join(ctx.profile.initramfs_drivers)]
    argv.append(f"/boot/initrd.img-{kver}")
    with chroot_mounts(root):
        chroot_run(root, argv, env=ctx.env)
    initrd = boot / f"initrd.img-{kver}"
    initrd.chmod(0o644)  # dracut writes 0600; the ISO and PXE need to read it
    for link, target in (("vmlinuz", f"vmlinuz-{kver}"), ("initrd.img", f"initrd.img-{kver}")):
        p = boot / link
        if p.is_symlink() or p.exists():
            p.unlink()
        p.symlink_to(target)
