"""Copy the profile's overlay tree over the rootfs (owned by root, modes kept)."""
from __future__ import annotations

from pathlib import Path

from hcicore.command import run

from .base import BuildContext


def apply_overlay(ctx: BuildContext, base: Path | None, out: Path) -> None:
    overlay = ctx.profile.overlay
    if overlay is None:
        return
    run(["cp", "-a", "--no-preserve=ownership", f"{overlay}/.", str(out / "tree")])
