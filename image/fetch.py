"""Downloads keyed by sha256: retries with backoff, resumable, verified before use."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hcicore.digest import sha256_file
from hcicore.errors import DigestMismatch, FetchError

log = logging.getLogger("hcios.fetch")
CHUNK = 1 << 20



def session(retries: int = 4, backoff: float = 0.5) -> requests.Session:
    s = requests.Session()
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET", "HEAD"))
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    return s


def fetch(url: str, sha256: str, cache_dir: Path, *, sess: requests.Session | None = None,
          timeout: float = 30.0) -> Path:
    """Return the cached file for ``sha256``, downloading ``url`` if needed.

    A partial download is resumed with a Range request. The file only enters the
    cache (``<cache_dir>/<sha256>``) after its digest matched; a mismatch deletes it and raises
    DigestMismatch.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / sha256
    if final.exists():
        return final
    part = cache_dir / f"{sha256}.part"
    if url.startswith("file://"):
        src = Path(url[len("file://"):])
        mirror = os.environ.get("HCIOS_THIRD_PARTY")
        if not src.is_file() and mirror:  # the project's third-party sources, moved: same name, same sha256
            src = Path(mirror) / src.name
        if not src.is_file():
            raise FetchError(f"{url}: no such file")
        with src.open("rb") as fin, part.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
    else:
        _http_download(url, part, sess or session(), timeout)
    got = sha256_file(part)
    if got != sha256:
        part.unlink()
        raise DigestMismatch(f"{url} has sha256 {got}, the lock file pins {sha256}")
    os.replace(part, final)
    return final


def _http_download(url: str, part: Path, sess: requests.Session, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    log.info("download: %s (resume at %d)", url, offset)
    try:
        with sess.get(url, stream=True, timeout=timeout, headers=headers) as resp:
            if resp.status_code == 416:  # nothing left to fetch
                return
            if resp.status_code not in (200, 206):
                raise FetchError(f"{url}: HTTP {resp.status_code}")
            mode = "ab" if resp.status_code == 206 else "wb"
            with part.open(mode) as f:
                for chunk in resp.iter_content(CHUNK):
                    f.write(chunk)
    except requests.RequestException as exc:
        raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from exc
