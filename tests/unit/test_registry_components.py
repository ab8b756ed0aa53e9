"""Container-image components: pulled by digest from a real registry (Debian's docker-registry on
127.0.0.1), verified, packed as a reproducible OCI archive."""
from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from hcicore.errors import ValidationError
from image.components import load_lock
from image.fetch import FetchError
from image.registry import pull_image

pytestmark = pytest.mark.unit


def push_small_image(tmp_path: Path, registry: str, content: bytes) -> tuple[str, str]:
    """Make a one-layer OCI image with skopeo-readable layout, push it, return (repo, digest hex)."""
    layout = tmp_path / "src-layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer_tar = tmp_path / "layer.tar"
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "agent").write_bytes(content)
    subprocess.run(["tar", "-C", str(payload), "--mtime=@0", "--owner=0", "--group=0", "-cf", str(layer_tar),
                    "agent"], check=True)
    layer = layer_tar.read_bytes()

    def blob(data: bytes) -> str:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return d
    ld = blob(layer)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [f"sha256:{ld}"]}}).encode()
    cd = blob(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": f"sha256:{cd}", "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                  "digest": f"sha256:{ld}", "size": len(layer)}]}).encode()
    md = blob(man)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{md}",
         "size": len(man)}]}))
    repo = f"{registry}/hcios/spdk-agent"
    subprocess.run(["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout}",
                    f"docker://{repo}:test"], check=True, capture_output=True)
    return repo, md


def test_pull_verifies_digest_and_packs_oci_archive(tmp_path: Path, oci_registry) -> None:  # type: ignore[no-untyped-def]
    repo, digest = push_small_image(tmp_path, oci_registry.host, b"spdk agent stand-in")
    cache = tmp_path / "dl"
    archive = pull_image(f"docker://{repo}@sha256:{digest}", digest, cache)
    assert archive == cache / f"{digest}.oci.tar"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("./index.json"))  # type: ignore[arg-type]
        assert all(m.mtime == 0 for m in tar.getmembers())
    assert f"./blobs/sha256/{digest}" in names and "./oci-layout" in names
    assert index["manifests"][0]["digest"] == f"sha256:{digest}"
    # skopeo itself reads the archive back as an image with the same manifest
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{archive}"], check=True,
                         capture_output=True).stdout
    assert hashlib.sha256(raw).hexdigest() == digest
    first = archive.read_bytes()
    archive.unlink()
    assert pull_image(f"docker://{repo}@sha256:{digest}", digest, cache).read_bytes() == first


def test_pull_with_wrong_pin_fails_and_caches_nothing(tmp_path: Path, oci_registry) -> None:  # type: ignore[no-untyped-def]
    repo, digest = push_small_image(tmp_path, oci_registry.host, b"v1")
    wrong = "f" * 64
    # the registry is asked for the pinned digest; one that does not have it is a clear failure
    with pytest.raises(FetchError, match="manifest unknown"):
        pull_image(f"docker://{repo}@sha256:{wrong}", wrong, tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_lock_requires_pull_by_pinned_digest(tmp_path: Path) -> None:
    lock = tmp_path / "lock.yaml"
    lock.write_text(json.dumps({"schema_version": 1, "components": [
        {"name": "spdk-agent", "version": "v1", "url": "docker://127.0.0.1:5000/hcios/spdk-agent:latest",
         "sha256": "a" * 64, "kind": "oci-image", "dest": "/usr/share/hcios/images/spdk-agent.tar"}]}))
    with pytest.raises(ValidationError) as exc:
        load_lock(lock)
    (problem,) = exc.value.problems
    assert problem.path.endswith("components[0].url") and "@sha256:" + "a" * 64 in problem.fix
