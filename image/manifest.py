"""build-manifest.json: what was built, from what, with every artifact's digest and an SBOM."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcicore.digest import sha256_file

from .stages.bootstrap_debian import APT_SOURCES

if TYPE_CHECKING:
    from .pipeline import BuildResult
    from .stages.base import BuildContext

MANIFEST = "build-manifest.json"


def artifact_entry(path: Path, out: Path) -> dict[str, Any]:
    """A file: its sha256 and size. A directory (oci/): every file in it, sorted."""
    if path.is_dir():
        files = {}
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath, name)
                files[p.relative_to(out).as_posix()] = {"sha256": sha256_file(p), "size": p.stat().st_size}
        return {"path": path.relative_to(out).as_posix(), "type": "directory", "files": files}
    return {"path": path.relative_to(out).as_posix(), "type": "file", "sha256": sha256_file(path),
            "size": path.stat().st_size}


def write_manifest(ctx: BuildContext, result: BuildResult, dirs: dict[str, Path]) -> Path:
    comps = json.loads((dirs["components"] / "components.json").read_text())
    manifest = {
        "schema_version": 1,
        "name": ctx.profile.name,
        "version": result.version,
        "arch": ctx.profile.arch,
        "distro": ctx.profile.distro,
        "source_date_epoch": ctx.epoch,
        "profile_digest": ctx.profile.digest,
        "stages": result.stages,
        "artifacts": {name: artifact_entry(path, result.out) for name, path in sorted(result.artifacts.items())},
        # a built component (kind spdk-source): sha256 is its source tarball's; "build" is the
        # build's cache id and "files" each installed binary's sha256
        "components": [{"name": c["name"], "version": c["version"], "kind": c["kind"], "sha256": c["sha256"],
                        "url": c["url"], "dest": c["dest"], "status": c["status"],
                        **{k: c[k] for k in ("build", "files") if k in c}} for c in comps],
        "packages": json.loads((dirs["finalize"] / "packages.json").read_text()),
    }
    sources = dirs["bootstrap"] / APT_SOURCES
    if sources.exists():  # Debian: each suite's Release (the dnf bootstrap records none yet)
        apt = json.loads(sources.read_text())
        manifest["apt_sources"] = apt["sources"]
        for pkg in manifest["packages"]:  # the suites each taken version came from
            if pkg["arch"] != "python" and pkg["name"] in apt["origins"]:
                pkg["suites"] = apt["origins"][pkg["name"]]
    path = result.out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path
