"""An OCI image layout of the OS rootfs (one layer), so a derived OS can be built FROM it."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hcicore.command import run

from hcicore.digest import sha256_file
from .base import BuildContext

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _blob(blobs: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_layer(tree: Path, blobs: Path, epoch: int, scratch: Path) -> tuple[dict[str, Any], str]:
    """Reproducible tar of the tree (sorted, numeric owners, clamped mtimes), gzip without a name/time."""
    raw = scratch / "layer.tar"
    run(["tar", "--create", f"--file={raw}", f"--directory={tree}", "--sort=name", "--numeric-owner",
         "--format=posix", f"--mtime=@{epoch}", "--clamp-mtime", "--xattrs", "--xattrs-include=security.*",
         "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "."])
    diff_id = f"sha256:{sha256_file(raw)}"
    gz = scratch / "layer.tar.gz"
    # -n: no name or time in the header; pigz output is deterministic for a given version.
    run(["sh", "-c", 'pigz -p 2 -n -6 -c "$1" > "$2"', "sh", str(raw), str(gz)])
    raw.unlink()
    digest = sha256_file(gz)
    size = gz.stat().st_size
    gz.rename(blobs / digest)
    return {"mediaType": MT_LAYER, "digest": f"sha256:{digest}", "size": size}, diff_id


def build_oci(ctx: BuildContext, base: Path | None, out: Path) -> None:
    assert base is not None
    layout = out / "oci"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layer, diff_id = write_layer(base / "tree", blobs, ctx.epoch, out)
    created = datetime.fromtimestamp(ctx.epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": "hcios",
        "org.opencontainers.image.version": ctx.version,
        "dev.hcios.profile": ctx.profile.name,
        "dev.hcios.profile.digest": ctx.profile.digest,
    }
    config = {
        "created": created,
        "architecture": ctx.profile.arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/bash"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"hci build ({ctx.profile.name} {ctx.version})"}],
    }
    cfg = {"mediaType": MT_CONFIG, **_blob(blobs, _json_bytes(config))}
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cfg, "layers": [layer],
                "annotations": {"org.opencontainers.image.version": ctx.version,
                                "org.opencontainers.image.created": created}}
    man = {"mediaType": MT_MANIFEST, **_blob(blobs, _json_bytes(manifest)),
           "annotations": {"org.opencontainers.image.ref.name": ctx.version}}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [man]}
    (layout / "index.json").write_bytes(_json_bytes(index))
