"""Place the pinned, already verified components into the rootfs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from hcicore.digest import sha256_file

from .base import BuildContext


def place_components(ctx: BuildContext, base: Path | None, out: Path) -> None:
    root = out / "tree"
    placed = []
    for comp in ctx.profile.components:
        src = ctx.fetched.get(comp.name)
        if src is None:  # allowed to be missing (--allow-missing-components); recorded as such
            placed.append({**comp.as_dict(), "status": "missing"})
            continue
        dest = root / comp.dest.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():  # a built component (spdk-source): its bin/ and what it needs at run time
            # modes set here, not left to the umask: the squashfs must not depend on who built it
            shutil.copytree(src / "bin", dest / "bin", dirs_exist_ok=True)
            shutil.copyfile(src / "RUNTIME-DEBS", dest / "RUNTIME-DEBS")
            for d in (dest, dest / "bin"):
                d.chmod(0o755)
            (dest / "RUNTIME-DEBS").chmod(0o644)
            files = {}
            for f in sorted((dest / "bin").iterdir()):
                f.chmod(0o755)
                files[f"{comp.dest}/bin/{f.name}"] = sha256_file(f)
            placed.append({**comp.as_dict(), "status": "included", "build": src.name, "files": files})
            continue
        else:
            shutil.copyfile(src, dest)
            dest.chmod(int(comp.mode, 8))
        placed.append({**comp.as_dict(), "status": "included"})
    (out / "components.json").write_text(json.dumps(placed, indent=1, sort_keys=True))
