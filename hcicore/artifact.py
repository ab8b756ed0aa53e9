"""The upgrade artifact: an OCI artifact manifest whose layers are the slot image and its metadata.

::

    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "artifactType": "application/vnd.hcios.slot.v1",
     "config": <the empty descriptor, application/vnd.oci.empty.v1+json>,
     "layers": [{"mediaType": "application/vnd.hcios.slot.squashfs.v1", digest, size},
                {"mediaType": "application/vnd.hcios.slot.metadata.v1+json", digest, size}],
     "annotations": {"dev.hcios.version": "0.2.0", "dev.hcios.sha256": "<hex>",
                     "dev.hcios.size": "<bytes>", "dev.hcios.arch": "amd64",
                     "dev.hcios.compression": "xz", "org.opencontainers.image.version": "0.2.0"}}

The manifest digest is what a signature covers, and the manifest names the squashfs layer's
digest: a verified signature therefore pins every byte that is written to the slot.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import HciError

ARTIFACT_TYPE = "application/vnd.hcios.slot.v1"
SQUASHFS_TYPE = "application/vnd.hcios.slot.squashfs.v1"
METADATA_TYPE = "application/vnd.hcios.slot.metadata.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ANN_VERSION = "dev.hcios.version"
ANN_SHA256 = "dev.hcios.sha256"
ANN_SIZE = "dev.hcios.size"
ANN_ARCH = "dev.hcios.arch"
ANN_COMPRESSION = "dev.hcios.compression"


class NotAnUpgradeArtifact(HciError):
    exit_code = 2


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_dict(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class SlotArtifact:
    """What the manifest says about the slot image."""

    version: str
    sha256: str  # hex, of the squashfs
    size: int
    arch: str
    compression: str
    image: Descriptor
    metadata: Descriptor | None


def manifest_for(*, squashfs: Descriptor, metadata: Descriptor, version: str, arch: str,
                 compression: str, created: str | None = None) -> dict:
    annotations = {ANN_VERSION: version, ANN_SHA256: squashfs.digest.removeprefix("sha256:"),
                   ANN_SIZE: str(squashfs.size), ANN_ARCH: arch, ANN_COMPRESSION: compression,
                   "org.opencontainers.image.version": version}
    if created:
        annotations["org.opencontainers.image.created"] = created
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
            "config": Descriptor(EMPTY_TYPE, EMPTY_DIGEST, len(EMPTY_BLOB)).as_dict(),
            "layers": [squashfs.as_dict(), metadata.as_dict()], "annotations": annotations}


def _descriptor(raw: object, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise NotAnUpgradeArtifact(f"{where} is not a descriptor")
    digest, size, mtype = raw.get("digest"), raw.get("size"), raw.get("mediaType")
    if not (isinstance(digest, str) and digest.startswith("sha256:") and len(digest) == 71
            and isinstance(size, int) and size >= 0 and isinstance(mtype, str)):
        raise NotAnUpgradeArtifact(f"{where} has no valid sha256 digest, size and media type")
    return Descriptor(mtype, digest, size)


def parse_manifest(raw: bytes, *, ref: str) -> SlotArtifact:
    """Read an upgrade artifact's manifest; raises NotAnUpgradeArtifact saying what is wrong."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise NotAnUpgradeArtifact(f"{ref}: the manifest is not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("schemaVersion") != 2:
        raise NotAnUpgradeArtifact(f"{ref}: not an OCI image manifest (schemaVersion 2)")
    layers = [_descriptor(layer, f"{ref}: layer {i}") for i, layer in enumerate(data.get("layers") or [])]
    images = [d for d in layers if d.media_type == SQUASHFS_TYPE]
    if data.get("artifactType") != ARTIFACT_TYPE or len(images) != 1:
        kind = data.get("artifactType") or (data.get("config") or {}).get("mediaType") or "unknown"
        raise NotAnUpgradeArtifact(f"{ref} is not an hcios upgrade artifact (type {kind}, "
                                   f"{len(images)} slot image layers); publish one with `hci publish`")
    image = images[0]
    ann = data.get("annotations") or {}
    version = str(ann.get(ANN_VERSION) or "")
    if not version:
        raise NotAnUpgradeArtifact(f"{ref}: the manifest has no {ANN_VERSION} annotation")
    if ann.get(ANN_SHA256) and "sha256:" + str(ann[ANN_SHA256]) != image.digest:
        raise NotAnUpgradeArtifact(f"{ref}: annotation {ANN_SHA256} disagrees with the layer digest {image.digest}")
    if ann.get(ANN_SIZE) and str(ann[ANN_SIZE]) != str(image.size):
        raise NotAnUpgradeArtifact(f"{ref}: annotation {ANN_SIZE} disagrees with the layer size {image.size}")
    metadata = next((d for d in layers if d.media_type == METADATA_TYPE), None)
    return SlotArtifact(version=version, sha256=image.digest.removeprefix("sha256:"), size=image.size,
                        arch=str(ann.get(ANN_ARCH) or ""), compression=str(ann.get(ANN_COMPRESSION) or ""),
                        image=image, metadata=metadata)


def version_key(version: str) -> tuple:
    """Order versions like 0.9.0 < 0.10.0 < 1.0.0-rc1 < 1.0.0 (numbers compare as numbers; a
    pre-release suffix sorts before the release)."""
    main, _, pre = version.partition("-")
    main = main.split("+")[0]
    nums = tuple((0, int(p)) if p.isdigit() else (1, p) for p in main.split("."))
    return (nums, 0 if pre else 1, tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")))
