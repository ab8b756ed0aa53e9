"""Signatures in cosign's format, made and checked with ``cryptography``.

What ``hci publish --sign-key`` pushes, and what the node checks, is what ``cosign sign --key``
would push, so an operator can also run ``cosign verify --key cosign.pub --insecure-ignore-tlog
REF`` (no transparency log here; cosign falls back to plain HTTP for 127.0.0.1 on its own):

* the tag ``sha256-<hex of the manifest digest>.sig`` in the artifact's repository holds an OCI
  image manifest with one layer per signature, media type ``SIMPLESIGNING``, whose blob is the
  "simple signing" payload (compact JSON naming the manifest digest) and whose annotation
  ``dev.cosignproject.cosign/signature`` is the base64 of an ECDSA P-256 / SHA-256 DER signature
  of exactly those payload bytes;
* a verifier checks the signature over the payload bytes with a trusted public key (PEM
  ``PUBLIC KEY``), then that the payload's ``docker-manifest-digest`` is the manifest it was
  asked about (``docker-reference`` is informational, as in cosign).

Keys: ``--sign-key`` takes a PEM PKCS#8 (or SEC1 ``EC PRIVATE KEY``) P-256 private key;
``cosign import-key-pair --key KEY`` turns the same key into cosign's own format.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import HciError

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
PAYLOAD_TYPE = "cosign container image signature"
KEY_PASSWORD_ENV = "HCI_SIGN_KEY_PASSWORD"  # for an encrypted PKCS#8 key


class SignatureError(HciError):
    """An artifact's signature is missing or does not verify: the artifact is refused."""

    exit_code = 2


def signature_tag(manifest_digest: str) -> str:
    """``sha256:abc...`` -> ``sha256-abc....sig``."""
    algo, _, hexdigest = manifest_digest.partition(":")
    return f"{algo}-{hexdigest}.sig"


def payload(repository: str, manifest_digest: str) -> bytes:
    """The simple-signing payload, byte for byte as cosign (Go's json.Marshal) writes it."""
    body = {"critical": {"identity": {"docker-reference": repository},
                         "image": {"docker-manifest-digest": manifest_digest},
                         "type": PAYLOAD_TYPE},
            "optional": None}
    return json.dumps(body, separators=(",", ":")).encode()


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    password = os.environ.get(KEY_PASSWORD_ENV)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise HciError(f"--sign-key {path}: not a PEM private key this tool can read ({exc}); use an "
                       f"unencrypted PKCS#8 P-256 key, or set {KEY_PASSWORD_ENV} for an encrypted one") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise HciError(f"--sign-key {path}: cosign keys are ECDSA P-256; this key is not "
                       "(make one: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)")
    return key


def load_public_key(pem: str, *, where: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise HciError(f"{where}: not a PEM public key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise HciError(f"{where}: not an ECDSA P-256 public key (cosign's key type)")
    return key


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    """base64 (standard, padded) of the DER ECDSA-P256-SHA256 signature of ``data``."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def blob_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SignatureManifest:
    """The ``.sig`` manifest and the blobs it references."""

    manifest: dict
    blobs: dict[str, bytes]  # digest -> content (payload and config)


def signature_manifest(payloads_and_sigs: list[tuple[bytes, str]]) -> SignatureManifest:
    """An OCI manifest holding one simple-signing layer per (payload, base64 signature)."""
    blobs: dict[str, bytes] = {}
    layers = []
    for data, sig in payloads_and_sigs:
        digest = blob_digest(data)
        blobs[digest] = data
        layers.append({"mediaType": SIMPLESIGNING, "size": len(data), "digest": digest,
                       "annotations": {SIGNATURE_ANNOTATION: sig}})
    # go-containerregistry's empty config with the payloads as diff_ids, as cosign writes it
    config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z",
                         "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
                         "config": {}}, separators=(",", ":")).encode()
    config_digest = blob_digest(config)
    blobs[config_digest] = config
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
                "layers": layers}
    return SignatureManifest(manifest, blobs)


def verify(manifest_digest: str, layers: list[tuple[bytes, str | None]],
           keys: dict[str, ec.EllipticCurvePublicKey]) -> str:
    """Check that one (payload, base64 signature) pair is signed by a trusted key and names
    ``manifest_digest``. Returns the name of the key that verified; raises SignatureError."""
    if not layers:
        raise SignatureError(f"artifact {manifest_digest} is not signed (no {signature_tag(manifest_digest)} "
                             "tag); sign it with `hci publish --sign-key` or remove upgrade.trusted_keys")
    seen: list[str] = []
    for data, sig in layers:
        if not sig:
            seen.append("a layer without a signature annotation")
            continue
        try:
            raw = base64.b64decode(sig, validate=True)
        except ValueError:
            seen.append("a signature that is not base64")
            continue
        signer = next((name for name, key in keys.items() if _valid(key, raw, data)), None)
        if signer is None:
            seen.append("a signature no trusted key verifies")
            continue
        try:
            named = json.loads(data)["critical"]["image"]["docker-manifest-digest"]
        except (ValueError, KeyError, TypeError):
            seen.append("a signed payload that is not cosign's simple-signing JSON")
            continue
        if named != manifest_digest:
            seen.append(f"a valid signature of another manifest ({named})")
            continue
        return signer
    raise SignatureError(f"artifact {manifest_digest}: no valid signature by a trusted key "
                         f"(found {'; '.join(seen)})")


def _valid(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False
