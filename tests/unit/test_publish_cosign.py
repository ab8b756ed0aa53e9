"""`hci publish` against a real registry, and cosign-format signatures (made and checked here)."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hcicore import cosign
from hcicore.artifact import ARTIFACT_TYPE, METADATA_TYPE, SQUASHFS_TYPE, parse_manifest, version_key
from hcicore.digest import sha256_file
from hcicore.oci import Registry, parse_reference

from .upgrade_fakes import key_file, make_image, new_key

pytestmark = pytest.mark.unit

HCI = [str(Path(sys.executable).with_name("hci"))]


def build_out(tmp_path: Path, image: Path, version: str = "0.2.0") -> Path:
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "rootfs.squashfs").write_bytes(image.read_bytes())
    (out / "build-manifest.json").write_text(json.dumps({
        "version": version, "arch": "amd64", "name": "default", "source_date_epoch": 1735689600,
        "artifacts": {"rootfs.squashfs": {"sha256": sha256_file(out / "rootfs.squashfs")}}}))
    return out


def hci(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HCI, *args], capture_output=True, text=True)


def test_publish_pushes_a_signed_artifact(tmp_path: Path, oci_registry) -> None:
    out = build_out(tmp_path, make_image(tmp_path, "v2", version="0.2.0"))
    key, pub = new_key()
    ref = f"{oci_registry.host}/hcios/os:0.2.0"
    proc = hci("publish", str(out), ref, "--plain-http", "--json", "--sign-key", str(key_file(tmp_path, key)))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["signed"] and result["version"] == "0.2.0"
    assert result["sha256"] == sha256_file(out / "rootfs.squashfs")
    reg = Registry(oci_registry.host, plain_http=True)
    manifest = reg.resolve(parse_reference(ref))
    assert manifest.digest == result["digest"]
    data = manifest.data
    assert data["artifactType"] == ARTIFACT_TYPE
    assert [layer["mediaType"] for layer in data["layers"]] == [SQUASHFS_TYPE, METADATA_TYPE]
    assert data["annotations"]["dev.hcios.version"] == "0.2.0"
    assert data["annotations"]["dev.hcios.sha256"] == result["sha256"]
    assert data["annotations"]["dev.hcios.size"] == str((out / "rootfs.squashfs").stat().st_size)
    art = parse_manifest(manifest.raw, ref=ref)
    meta = json.loads(reg.blob_bytes("hcios/os", art.metadata.digest))
    assert meta["kernel"] == "/boot/vmlinuz" and meta["compression"] == "xz"
    # cosign's layout: the .sig tag, one simple-signing layer, the signature in its annotation
    sig = reg.manifest("hcios/os", cosign.signature_tag(manifest.digest))
    layer = sig.data["layers"][0]
    assert layer["mediaType"] == cosign.SIMPLESIGNING and sig.data["config"]["mediaType"] == cosign.OCI_CONFIG
    payload = reg.blob_bytes("hcios/os", layer["digest"])
    assert json.loads(payload) == {"critical": {"identity": {"docker-reference": f"{oci_registry.host}/hcios/os"},
                                                "image": {"docker-manifest-digest": manifest.digest},
                                                "type": "cosign container image signature"}, "optional": None}
    assert b": " not in payload and b", " not in payload  # compact, as Go's json.Marshal writes it
    keys = {"k": cosign.load_public_key(pub, where="k")}
    assert cosign.verify(manifest.digest, [(payload, layer["annotations"][cosign.SIGNATURE_ANNOTATION])], keys) == "k"


def test_a_second_signature_is_added_not_replaced(tmp_path: Path, oci_registry) -> None:
    """Two keys sign the same artifact (the same manifest digest): both signatures stay, as with
    cosign, and each key alone verifies it."""
    out = build_out(tmp_path, make_image(tmp_path, "v2", version="0.2.0"))
    ref = f"{oci_registry.host}/hcios/os:0.2.0"
    keys = [new_key(), new_key()]
    for i, (key, _) in enumerate(keys):
        proc = hci("publish", str(out), ref, "--plain-http", "--sign-key", str(key_file(tmp_path, key, f"k{i}.pem")))
        assert proc.returncode == 0, proc.stderr
    reg = Registry(oci_registry.host, plain_http=True)
    digest = reg.resolve(parse_reference(ref)).digest
    sig = reg.manifest("hcios/os", cosign.signature_tag(digest))
    layers = [(reg.blob_bytes("hcios/os", layer["digest"]), layer["annotations"][cosign.SIGNATURE_ANNOTATION])
              for layer in sig.data["layers"]]
    assert len(layers) == 2  # the same build published twice: one manifest, both signatures
    for _, pub in keys:
        assert cosign.verify(digest, layers, {"k": cosign.load_public_key(pub, where="k")}) == "k"
    assert reg.manifest("hcios/os", "0.2.0").data["annotations"]["org.opencontainers.image.created"] == \
        "2025-01-01T00:00:00Z"


def test_publish_refuses_what_grub_cannot_boot(tmp_path: Path, oci_registry) -> None:
    out = build_out(tmp_path, make_image(tmp_path, "gz", version="0.2.0", comp="gzip"))
    proc = hci("publish", str(out), f"{oci_registry.host}/hcios/os:x", "--plain-http")
    assert proc.returncode == 2 and "gzip squashfs" in proc.stderr
    out2 = build_out(tmp_path / "o2", make_image(tmp_path, "nk", version="0.2.0", boot=False))
    proc = hci("publish", str(out2), f"{oci_registry.host}/hcios/os:x", "--plain-http")
    assert proc.returncode == 2 and "/boot/vmlinuz" in proc.stderr
    (out / "rootfs.squashfs").write_bytes(make_image(tmp_path, "other", version="0.2.0").read_bytes())
    proc = hci("publish", str(out), f"{oci_registry.host}/hcios/os:x", "--plain-http")
    assert proc.returncode == 2 and "records" in proc.stderr  # changed after the build
    proc = hci("publish", str(out), "no-registry-here", "--plain-http")
    assert proc.returncode == 2 and "error: REF:" in proc.stderr


def test_signature_checks() -> None:
    key, pub = new_key()
    other, _ = new_key()
    digest = "sha256:" + "1" * 64
    payload = cosign.payload("r/x", digest)
    keys = {"trusted": cosign.load_public_key(pub, where="t")}
    assert cosign.verify(digest, [(payload, cosign.sign(key, payload))], keys) == "trusted"
    with pytest.raises(cosign.SignatureError, match="no trusted key verifies"):
        cosign.verify(digest, [(payload, cosign.sign(other, payload))], keys)
    elsewhere = cosign.payload("r/x", "sha256:" + "2" * 64)
    with pytest.raises(cosign.SignatureError, match="another manifest"):
        cosign.verify(digest, [(elsewhere, cosign.sign(key, elsewhere))], keys)
    with pytest.raises(cosign.SignatureError, match="not signed"):
        cosign.verify(digest, [], keys)
    with pytest.raises(cosign.SignatureError, match="not base64"):
        cosign.verify(digest, [(payload, "%%%")], keys)
    tampered = payload.replace(b"r/x", b"r/y")
    with pytest.raises(cosign.SignatureError):
        cosign.verify(digest, [(tampered, cosign.sign(key, payload))], keys)
    assert len(base64.b64decode(cosign.sign(key, payload))) > 60  # DER, not raw r||s


def test_versions_order() -> None:
    assert version_key("0.9.0") < version_key("0.10.0") < version_key("1.0.0-rc1") < version_key("1.0.0")
    assert version_key("0.2.0") > version_key("0.1.0")
