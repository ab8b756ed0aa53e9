"""Make the tree a reproducible, per-node-clean slot image: identity, no secrets, clamped times."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from hcicore.command import run

from ..tree import clamp_mtimes
from .base import BuildContext
from .initramfs import PER_MACHINE_FILES
from .node_services import vendored

# Files that must be made per node at first boot, or that only record when the build ran.
REMOVE_GLOBS = [
    "etc/ssh/ssh_host_*",
    "var/lib/dbus/machine-id",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dpkg/*-old",
    "var/cache/debconf/*-old",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/partial",  # its owner depends on the .deb cache it was synced from
    "var/cache/apt/archives/lock",
    "var/lib/apt/lists/*",
    "var/lib/systemd/random-seed",
    *PER_MACHINE_FILES,  # nvme-cli's random host NQN and id (removed before dracut already)
    "var/lib/systemd/catalog/database",
    "var/log/**/*.log",
    "var/log/apt/*",
    "var/log/journal/*",
    "root/.bash_history",
    "tmp/*",
    "var/tmp/*",
    "etc/*-",  # passwd-, shadow-, group- backups
]


# where the image keeps Python modules (Debian's and the distro-neutral paths, our vendored wheels)
PYTHON_DIRS = ("usr/lib/python3*", "usr/lib64/python3*", "usr/lib/hcios/python")


def os_release(ctx: BuildContext) -> str:
    p = ctx.profile
    fields = {
        "NAME": "hcios",
        "ID": "hcios",
        "ID_LIKE": p.distro,
        "PRETTY_NAME": f"hcios {ctx.version} ({p.name})",
        "VERSION": ctx.version,
        "VERSION_ID": ctx.version,
        "VARIANT_ID": p.name,
        "BUILD_ID": p.digest[:12],
        "HOME_URL": "https://hcios.dev/",
    }
    return "".join(f'{k}="{v}"\n' for k, v in fields.items())


def _remove(root: Path) -> None:
    for pattern in REMOVE_GLOBS:
        for p in root.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def _pycache(root: Path) -> None:
    """Every module's bytecode, made here one fixed way (docs/build.md "Python bytecode").

    The root is read-only on a node, so a module without a .pyc is compiled again at every
    import: under TCG that made each Python service's start take 20-30 s (cloud-init's four
    stages, hci-vip, hci-platform, the health gate). What the packages' postinst scripts left
    is removed: marshal's output depends on the compiling interpreter's refcounts, so it
    differs with the environment and with what else that process imported. It is then made
    again in one process with a fixed environment (``env -i``, ``-I -S``) over the same sorted
    tree, which gives the same bytes on every build host; ``unchecked-hash`` pycs carry no
    mtime and are never checked against their source, which in a slot image cannot change."""
    for p in root.rglob("__pycache__"):
        shutil.rmtree(p)
    if not (root / "usr/bin/python3").exists():
        return
    dirs = sorted("/" + str(p.relative_to(root)) for pattern in PYTHON_DIRS for p in root.glob(pattern) if p.is_dir())
    # -B: the compiling interpreter writes no pyc of its own while it imports (those would be
    # timestamp pycs, which compileall then takes as up to date); -f: compile every file anyway
    run(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "chroot", str(root), "/usr/bin/python3", "-I", "-S", "-B",
         "-m", "compileall", "-q", "-f", "-j1", "--invalidation-mode", "unchecked-hash", *dirs])


def package_list(root: Path) -> list[dict[str, str]]:
    if not (root / "var/lib/dpkg/status").exists():
        res = run(["rpm", "--root", str(root), "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"])
    else:
        res = run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W",
                   "-f=${Package}\t${Version}\t${Architecture}\n"])
    pkgs = []
    for line in sorted(res.stdout.splitlines()):
        name, version, arch = line.split("\t")
        pkgs.append({"name": name, "version": version, "arch": arch})
    return pkgs


def finalize(ctx: BuildContext, base: Path | None, out: Path) -> None:
    root = out / "tree"
    _remove(root)
    _pycache(root)
    usr_release = root / "usr/lib/os-release"
    usr_release.write_text(os_release(ctx))
    etc_release = root / "etc/os-release"
    if etc_release.exists() or etc_release.is_symlink():
        etc_release.unlink()
    etc_release.symlink_to("../usr/lib/os-release")
    (root / "etc/hcios").mkdir(parents=True, exist_ok=True)
    (root / "etc/hcios/version").write_text(ctx.version + "\n")
    # Empty machine-id: systemd makes one per boot (and persists it on the installed node).
    (root / "etc/machine-id").write_text("")
    (out / "packages.json").write_text(json.dumps(package_list(root) + vendored(root), indent=1))
    clamp_mtimes(root, ctx.epoch)
