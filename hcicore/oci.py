"""Reading from an OCI registry over the distribution API: references, manifests, blobs.

This is the node's pull side (``hci-upgrade apply``); publishing uses the ``oras`` package
(:mod:`image.publish`). The pull is hand-written on ``requests`` because the node needs what
oras-py's pull does not do (docs/upgrade.md): resume with HTTP Range after a power cut, progress
events, a sha256 checked while streaming, and a bound on what a small blob may weigh.

Authentication: anonymous or basic credentials (``--creds``-less: ``HCI_REGISTRY_AUTH`` as
``user:password``) and the bearer-token dance of Docker Hub, quay.io, ghcr.io and Harbor. TLS is
verified; plain HTTP only for a registry the caller names as insecure.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import requests

from .errors import DigestMismatch, HciError, Problem, ValidationError
from .redact import redact_text

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
MAX_MANIFEST = 4 << 20
AUTH_ENV = "HCI_REGISTRY_AUTH"
TIMEOUT = (10, 60)  # connect, read (per chunk)
_REF = re.compile(r"^(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
                  r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


class RegistryError(HciError):
    """The registry could not be reached or answered with an error."""


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``host/repository``: what cosign signs as the docker-reference."""
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str, *, field: str = "REF") -> Reference:
    m = _REF.match(text.strip())
    if not m or not (m.group("tag") or m.group("digest")):
        raise ValidationError([Problem(field, f"{text!r} is not a registry reference with a tag or digest",
                                       "use HOST[:PORT]/REPOSITORY:TAG or HOST[:PORT]/REPOSITORY@sha256:<hex>")])
    return Reference(m.group("host"), m.group("repo"), m.group("tag"), m.group("digest"))


@dataclass(frozen=True)
class Manifest:
    digest: str  # sha256:<hex> of the bytes below
    raw: bytes

    @property
    def data(self) -> dict:
        return json.loads(self.raw)


class Registry:
    """One registry host; ``plain_http`` only when the operator named it insecure."""

    def __init__(self, host: str, *, plain_http: bool = False, session: requests.Session | None = None):
        self.host = host
        self.base = f"{'http' if plain_http else 'https'}://{host}/v2"
        self.session = session or requests.Session()
        self._token: str | None = None
        creds = os.environ.get(AUTH_ENV, "")
        self._basic = tuple(creds.split(":", 1)) if ":" in creds else None

    # -- HTTP with the token dance ----------------------------------------------------------------
    def _request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                 stream: bool = False) -> requests.Response:
        hdrs = dict(headers or {})
        for attempt in (1, 2):
            if self._token:
                hdrs["Authorization"] = f"Bearer {self._token}"
            try:
                resp = self.session.request(method, url, headers=hdrs, stream=stream, timeout=TIMEOUT,
                                            auth=None if self._token else self._basic)
            except requests.RequestException as exc:
                raise RegistryError(f"registry {self.host}: {redact_text(str(exc))}") from exc
            if resp.status_code == 401 and attempt == 1 and self._login(resp):
                resp.close()
                continue
            return resp
        return resp

    def _login(self, resp: requests.Response) -> bool:
        challenge = resp.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer "):
            return False
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in params:
            return False
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        try:
            got = self.session.get(params["realm"], params=query, auth=self._basic, timeout=TIMEOUT, stream=True)
            got.raise_for_status()
            body = json.loads(_bounded(got, 1 << 20, "token response"))
        except (requests.RequestException, ValueError) as exc:
            raise RegistryError(f"registry {self.host}: token request failed: {redact_text(str(exc))}") from exc
        self._token = body.get("token") or body.get("access_token")
        return bool(self._token)

    def _fail(self, resp: requests.Response, what: str) -> RegistryError:
        try:
            body = next(resp.iter_content(300), b"") if "octet" not in resp.headers.get("Content-Type", "") else b""
        except requests.RequestException:
            body = b""
        finally:
            resp.close()
        text = body.decode(errors="replace").strip()
        return RegistryError(f"registry {self.host}: {what}: HTTP {resp.status_code} {redact_text(text)}")

    # -- manifests ---------------------------------------------------------------------------------
    def manifest(self, repository: str, ref: str, *, optional: bool = False) -> Manifest | None:
        """The manifest at a tag or digest; with ``optional``, None when there is none (404).
        A manifest asked for by digest must hash to it."""
        resp = self._request("GET", f"{self.base}/{repository}/manifests/{ref}",
                             headers={"Accept": ", ".join(MANIFEST_TYPES)}, stream=True)
        if resp.status_code == 404 and optional:
            resp.close()
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"manifest {repository}:{ref}")
        raw = _bounded(resp, MAX_MANIFEST, f"registry {self.host}: manifest {repository}:{ref}")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch(f"manifest {repository}@{ref} has digest {digest}: the registry served other bytes")
        return Manifest(digest, raw)

    def resolve(self, ref: Reference) -> Manifest:
        got = self.manifest(ref.repository, ref.digest or ref.tag or "")
        assert got is not None
        return got

    # -- blobs -------------------------------------------------------------------------------------
    def blob_bytes(self, repository: str, digest: str, *, limit: int = MAX_MANIFEST) -> bytes:
        """A small blob (metadata, signature payload), checked against its digest."""
        resp = self._request("GET", f"{self.base}/{repository}/blobs/{digest}", stream=True)
        if resp.status_code != 200:
            raise self._fail(resp, f"blob {digest}")
        data = _bounded(resp, limit, f"registry {self.host}: blob {digest}")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise DigestMismatch(f"blob {digest} from {self.host}: the bytes have another sha256")
        return data

    def blob_stream(self, repository: str, digest: str, *, offset: int = 0,
                    chunk: int = 1 << 20) -> tuple[int, Iterator[bytes]]:
        """Stream a blob from ``offset``: returns the offset the data really starts at (0 when the
        registry ignored the Range header) and an iterator of chunks."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._request("GET", f"{self.base}/{repository}/blobs/{digest}", headers=headers, stream=True)
        if resp.status_code == 206:
            start = offset
        elif resp.status_code == 200:
            start = 0
        elif resp.status_code == 416 and offset:
            resp.close()
            return self.blob_stream(repository, digest, offset=0, chunk=chunk)
        else:
            raise self._fail(resp, f"blob {digest}")
        return start, _chunks(resp, chunk)


def _bounded(resp: requests.Response, limit: int, what: str) -> bytes:
    """The body of ``resp``, refused past ``limit`` bytes (never read whole into memory first)."""
    data = bytearray()
    try:
        for chunk in resp.iter_content(65536):
            data += chunk
            if len(data) > limit:
                raise RegistryError(f"{what} is over {limit} bytes")
    except requests.RequestException as exc:
        raise RegistryError(f"{what}: {redact_text(str(exc))}") from exc
    finally:
        resp.close()
    return bytes(data)


def _chunks(resp: requests.Response, size: int) -> Iterator[bytes]:
    try:
        yield from resp.iter_content(size)
    except requests.RequestException as exc:
        raise RegistryError(f"download interrupted: {redact_text(str(exc))}") from exc
    finally:
        resp.close()

