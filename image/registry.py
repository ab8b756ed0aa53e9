"""Container images pinned by manifest digest: pulled with skopeo, verified, packed as OCI archives.

``skopeo copy docker://REPO@sha256:D dir:X`` keeps the registry's manifest byte for byte; we
check sha256(manifest) == D ourselves, then write an OCI image layout around the same blobs
(the index may point at a Docker schema 2 manifest; containerd and k3s import both) and pack it
as a reproducible tar, ready for k3s's airgap image directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from hcicore.command import run
from hcicore.errors import CommandError, DigestMismatch

from .fetch import FetchError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _tls_flag(ref: str) -> list[str]:
    # TLS is only ever relaxed for a registry on this machine's loopback (test registries).
    host = urlsplit("//" + ref).hostname or ""
    return ["--src-tls-verify=false"] if host in LOOPBACK else []


def pull_image(url: str, sha256: str, cache_dir: Path) -> Path:
    """Return ``<cache_dir>/<sha256>.oci.tar`` for the image, pulling and verifying if needed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"{sha256}.oci.tar"
    if final.exists():
        return final
    ref = url[len("docker://"):]
    work = cache_dir / f"{sha256}.pull"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        run(["skopeo", "copy", "--retry-times", "3", *_tls_flag(ref), f"docker://{ref}", f"dir:{work / 'dir'}"])
    except CommandError as exc:
        shutil.rmtree(work)
        raise FetchError(f"{url}: {exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc}") from exc
    try:
        manifest = (work / "dir" / "manifest.json").read_bytes()
        got = hashlib.sha256(manifest).hexdigest()
        if got != sha256:
            raise DigestMismatch(f"{url} has manifest digest {got}, the lock file pins {sha256}")
        layout = work / "layout"
        _oci_layout(work / "dir", layout, manifest, ref)
        tmp = cache_dir / f"{sha256}.oci.tar.part"
        run(["tar", "--create", f"--file={tmp}", f"--directory={layout}", "--sort=name", "--numeric-owner",
             "--owner=0", "--group=0", "--format=posix", "--mtime=@0",
             "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "."])
        os.replace(tmp, final)
    finally:
        shutil.rmtree(work)
    return final


def _oci_layout(src: Path, layout: Path, manifest: bytes, ref: str) -> None:
    man = json.loads(manifest)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    digests = [man["config"]["digest"]] + [layer["digest"] for layer in man["layers"]]
    for d in digests:
        hexd = d.split(":", 1)[1]
        shutil.copyfile(src / hexd, blobs / hexd)
    mdigest = hashlib.sha256(manifest).hexdigest()
    (blobs / mdigest).write_bytes(manifest)
    name = ref.split("@", 1)[0]
    media = man.get("mediaType", "application/vnd.docker.distribution.manifest.v2+json")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": media, "digest": f"sha256:{mdigest}", "size": len(manifest),
                            "annotations": {"io.containerd.image.name": f"{name}@sha256:{mdigest}",
                                            "org.opencontainers.image.ref.name": name}}]}
    (layout / "index.json").write_text(json.dumps(index, sort_keys=True, separators=(",", ":")))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
