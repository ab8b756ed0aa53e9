"""Build the dracut initramfs inside the rootfs (never on the build host) and link kernel+initrd.

It runs before the node-services stage so that a change to the node's Python code does not
rebuild the initramfs: only this repository's dracut modules (``DRACUT_MODULES``) feed it.
"""
from __future__ import annotations

from pathlib import Path

from hcicore.command import run
from hcicore.errors import HciError

from ..chroot import chroot_mounts, chroot_run
from .base import BuildContext


DRACUT_MODULES = Path("node_services/files/usr/lib/dracut/modules.d")


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


# Per-machine identities packages make at install time. nvme-cli's postinst writes a random host
# NQN and host id (every node would share them), and dracut's nvmf module copies them into the
# initramfs: they go before dracut runs (finalize removes them again, as a guard). Without them
# nvme-cli derives both per machine (from the DMI product UUID).
PER_MACHINE_FILES = ("etc/nvme/hostnqn", "etc/nvme/hostid")
# dracut modules left out: nvmf is for booting the root from NVMe-oF, which hcios nodes never do
OMIT_DRACUT_MODULES = ("nvmf",)


def build_initramfs(ctx: BuildContext, base: Path | None, out: Path) -> None:
    root = out / "tree"
    for rel in PER_MACHINE_FILES:
        (root / rel).unlink(missing_ok=True)
    ours = ctx.repo_root / DRACUT_MODULES
    if ours.is_dir():
        run(["cp", "-a", "--no-preserve=ownership", f"{ours}/.", str(root / "usr/lib/dracut/modules.d")])
    kver = kernel_version(root)
    modules = ctx.profile.initramfs_modules
    _check_modules(root, modules)
    boot = root / "boot"
    for stale in boot.glob("initrd.img-*"):
        stale.unlink()
    argv = ["dracut", "--force", "--no-hostonly", "--reproducible", "--no-hostonly-cmdline",
            "--compress", "zstd", "--kver", kver, "--omit", " ".join(OMIT_DRACUT_MODULES)]
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
