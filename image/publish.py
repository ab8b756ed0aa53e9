"""``hci publish OUT_DIR REF``: push a build's slot image as an hcios upgrade artifact.

The slot image is checked first (xz squashfs, kernel and initrd in /boot, the digest the build
manifest recorded), then pushed with the ``oras`` package (chunked, so a 300 MB image is
streamed, not read into memory): the squashfs, a metadata blob, the empty config, and the
manifest (:mod:`hcicore.artifact`) under REF's tag. With ``--sign-key`` a cosign-format
signature (:mod:`hcicore.cosign`) is pushed to ``sha256-<digest>.sig`` next to it.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import oras.container
import oras.provider
import requests

from hcicore import cosign
from hcicore.artifact import EMPTY_BLOB, METADATA_TYPE, SQUASHFS_TYPE, Descriptor, manifest_for
from hcicore.digest import sha256_file
from hcicore.errors import DigestMismatch, Problem, ValidationError
from hcicore.oci import Reference, Registry, RegistryError, parse_reference
from hcicore.progress import Progress
from hcicore.squashfs import check_slot_image

from .manifest import MANIFEST

log = logging.getLogger("hcios.publish")
CHUNK = 16 << 20


@dataclass(frozen=True)
class Published:
    reference: str  # host/repo@sha256:...
    manifest_digest: str
    sha256: str
    size: int
    version: str
    signed: bool


def read_build(out: Path) -> tuple[dict, Path]:
    """The build manifest and the slot image of an ``hci build`` output directory."""
    manifest_path = out / MANIFEST
    image = out / "rootfs.squashfs"
    problems = []
    if not manifest_path.is_file():
        problems.append(Problem("OUT_DIR", f"{out} has no {MANIFEST}", "give the --out directory of `hci build`"))
    if not image.is_file():
        problems.append(Problem("OUT_DIR", f"{out} has no rootfs.squashfs", "give the --out directory of `hci build`"))
    if problems:
        raise ValidationError(problems)
    return json.loads(manifest_path.read_text()), image


class Pusher:
    """Blob and manifest uploads through oras-py's Registry (token auth, chunked uploads)."""

    def __init__(self, ref: Reference, *, plain_http: bool):
        self.ref = ref
        self.oras = oras.provider.Registry(hostname=ref.host, insecure=plain_http)
        self.reader = Registry(ref.host, plain_http=plain_http)

    def _container(self, tag: str) -> oras.container.Container:
        return self.oras.get_container(f"{self.ref.name}:{tag}")

    def _check(self, resp: requests.Response, what: str) -> None:
        if resp.status_code >= 300:
            raise RegistryError(f"registry {self.ref.host}: pushing {what}: HTTP {resp.status_code} {resp.text[:300]}")

    def blob_file(self, path: Path, desc: Descriptor, tag: str) -> None:
        try:
            resp = self.oras.upload_blob(str(path), self._container(tag), desc.as_dict(), do_chunked=True,
                                         chunk_size=CHUNK)
        except requests.RequestException as exc:
            raise RegistryError(f"registry {self.ref.host}: pushing blob {desc.digest}: {exc}") from exc
        self._check(resp, f"blob {desc.digest}")

    def blob_bytes(self, data: bytes, media_type: str, tag: str) -> Descriptor:
        desc = Descriptor(media_type, cosign.blob_digest(data), len(data))
        with tempfile.NamedTemporaryFile(prefix="hci-publish-") as tmp:
            tmp.write(data)
            tmp.flush()
            self.blob_file(Path(tmp.name), desc, tag)
        return desc

    def manifest(self, manifest: dict, tag: str) -> str:
        """PUT the manifest at ``tag``; returns its digest, read back from the registry."""
        try:
            resp = self.oras.upload_manifest(manifest, self._container(tag))
        except requests.RequestException as exc:
            raise RegistryError(f"registry {self.ref.host}: pushing manifest {tag}: {exc}") from exc
        self._check(resp, f"manifest {tag}")
        got = self.reader.manifest(self.ref.repository, tag)
        assert got is not None
        if got.data != manifest:  # a concurrent push, or a registry that serves something else
            raise RegistryError(f"registry {self.ref.host}: {self.ref.name}:{tag} is not the manifest just pushed; "
                                "nothing was signed")
        return got.digest


def publish(out: Path, ref_text: str, *, sign_key: Path | None, plain_http: bool,
            progress: Progress) -> Published:
    ref = parse_reference(ref_text)
    if not ref.tag or ref.digest:
        raise ValidationError([Problem("REF", f"{ref_text}: publish needs a tag, not a digest",
                                       "use HOST[:PORT]/REPOSITORY:TAG")])
    key = cosign.load_private_key(sign_key) if sign_key else None
    build, image = read_build(out)
    progress.start("check image", detail=str(image))
    sb = check_slot_image(image)
    digest = sha256_file(image)
    recorded = (build.get("artifacts", {}).get("rootfs.squashfs") or {}).get("sha256")
    if recorded and recorded != digest:
        raise DigestMismatch(f"{image} has sha256 {digest} but {MANIFEST} records {recorded}: "
                             "the output directory was changed after the build")
    progress.done("check image")
    epoch = build.get("source_date_epoch")
    created = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch is not None else None
    return push_slot_image(image, ref, version=str(build["version"]), arch=str(build.get("arch", "")),
                           compression=sb.compression, metadata={"build": _build_summary(build)},
                           key=key, plain_http=plain_http, progress=progress, digest=digest, created=created)


def _build_summary(build: dict) -> dict:
    keep = ("name", "version", "arch", "distro", "profile_digest", "source_date_epoch")
    return {k: build[k] for k in keep if k in build}


def existing_signatures(reader: Registry, repository: str, tag: str) -> list[tuple[bytes, str]]:
    """The (payload, signature) pairs of an existing ``.sig`` manifest (none: empty)."""
    found = reader.manifest(repository, tag, optional=True)
    pairs: list[tuple[bytes, str]] = []
    for layer in (found.data.get("layers") or []) if found is not None else []:
        sig = (layer.get("annotations") or {}).get(cosign.SIGNATURE_ANNOTATION)
        if sig and layer.get("mediaType") == cosign.SIMPLESIGNING:
            pairs.append((reader.blob_bytes(repository, layer["digest"], limit=1 << 20), sig))
    return pairs


def push_slot_image(image: Path, ref: Reference, *, version: str, arch: str, compression: str,
                    metadata: dict, key: object | None, plain_http: bool, progress: Progress,
                    digest: str | None = None, created: dt.datetime | None = None) -> Published:
    """Push ``image`` as an upgrade artifact to ``ref`` (and its signature with ``key``).

    No checks of the image here: :func:`publish` makes them. Tests use this directly to put
    artifacts the node must refuse (too big, not a slot image) into a registry."""
    assert ref.tag
    pusher = Pusher(ref, plain_http=plain_http)
    size = image.stat().st_size
    digest = digest or sha256_file(image)
    squash = Descriptor(SQUASHFS_TYPE, f"sha256:{digest}", size)
    progress.start("push image", detail=f"{size} bytes to {ref.name}")
    pusher.blob_file(image, squash, ref.tag)
    progress.done("push image")
    meta = json.dumps({"version": version, "arch": arch, "sha256": digest, "size": size,
                       "compression": compression, "kernel": "/boot/vmlinuz", "initrd": "/boot/initrd.img",
                       **metadata}, sort_keys=True).encode()
    meta_desc = pusher.blob_bytes(meta, METADATA_TYPE, ref.tag)
    pusher.blob_bytes(EMPTY_BLOB, "application/vnd.oci.empty.v1+json", ref.tag)
    # the build's time (SOURCE_DATE_EPOCH), not the push's: publishing the same build again gives
    # the same manifest digest, and a second key's signature joins the first
    stamp = (created or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = manifest_for(squashfs=squash, metadata=meta_desc, version=version, arch=arch,
                            compression=compression, created=stamp)
    progress.start("push manifest", detail=f"{ref}")
    manifest_digest = pusher.manifest(manifest, ref.tag)
    progress.done("push manifest", digest=manifest_digest)
    if key is not None:
        tag = cosign.signature_tag(manifest_digest)
        progress.start("sign", detail=tag)
        data = cosign.payload(ref.name, manifest_digest)
        # like cosign: the signatures already there (other keys, earlier pushes) stay beside ours
        pairs = existing_signatures(pusher.reader, ref.repository, tag)
        pairs.append((data, cosign.sign(key, data)))  # type: ignore[arg-type]
        sig = cosign.signature_manifest(pairs)
        for blob_digest, blob in sig.blobs.items():
            media = next((layer["mediaType"] for layer in sig.manifest["layers"] if layer["digest"] == blob_digest),
                         sig.manifest["config"]["mediaType"])
            pusher.blob_bytes(blob, media, ref.tag)
        pusher.manifest(sig.manifest, tag)
        progress.done("sign", signatures=len(pairs))
    else:
        progress.warning("the artifact is not signed: nodes with upgrade.trusted_keys will refuse it")
    return Published(f"{ref.name}@{manifest_digest}", manifest_digest, digest, size, version, key is not None)

