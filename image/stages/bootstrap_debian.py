"""Bootstrap a Debian root filesystem with mmdebstrap."""
from __future__ import annotations

from pathlib import Path

from hcicore.command import run

from .base import BuildContext

# Docs and manuals are not needed on an immutable node; copyright files stay (licences).
DPKG_OPTS = [
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
]


def mmdebstrap_argv(ctx: BuildContext, target: Path) -> list[str]:
    boot = ctx.profile.bootstrap
    archives = ctx.cache.apt_archives
    argv = [
        "mmdebstrap", "--mode=root", "--format=directory",
        f"--variant={boot.get('variant', 'apt')}",
        f"--architectures={ctx.profile.arch}",
        f"--components={','.join(boot.get('components', ['main']))}",
        f"--include={','.join(boot['packages'])}",
        "--aptopt=Acquire::Retries \"3\"",
        "--setup-hook=mkdir -p \"$1/var/cache/apt/archives\"",
        f"--setup-hook=sync-in {archives} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {archives}",
        "--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb",
    ]
    argv += [f"--dpkgopt={o}" for o in DPKG_OPTS]
    argv += [boot["suite"], str(target), boot["mirror"]]
    return argv


def bootstrap_debian(ctx: BuildContext, base: Path | None, out: Path) -> None:
    tree = out / "tree"
    run(mmdebstrap_argv(ctx, tree), env={**ctx.env, "INITRD": "No"})
