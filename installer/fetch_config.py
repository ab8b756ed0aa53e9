"""Fetch a node config from ``install.config_url`` (``hci.install.config_url=`` on PXE/ISO boots).

Retries with exponential backoff within a fixed time budget, then fails with one clear message
naming the URL and the last error: an unreachable server never hangs the installer. Proxies come
from the environment (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, requests' own handling) and
https certificates are verified against the system CA store.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from hcicore.redact import redact_text, redact_url

from hcicore.errors import FetchError

log = logging.getLogger("hcios.installer.fetch")

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchPolicy:
    budget: float = 180.0  # seconds for all attempts together
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    first_delay: float = 1.0
    max_delay: float = 15.0


def fetch_text(url: str, *, policy: FetchPolicy = FetchPolicy(),
               session: requests.Session | None = None,
               on_retry: Callable[[int, str, float], None] | None = None,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep, what: str = "config URL") -> str:
    """GET ``url`` and return its text, retrying failures until ``policy.budget`` is spent.

    ``on_retry(attempt, error, delay)`` is called before each wait (progress on the console).
    Raises FetchError with the last error; a 4xx other than 408/425/429 fails at once."""
    if not url.startswith(("http://", "https://")):
        raise FetchError(f"{what} {redact_url(url)!r}: only http:// and https:// are supported")
    sess = session or requests.Session()
    deadline = clock() + policy.budget
    delay = policy.first_delay
    attempt = 0
    while True:
        attempt += 1
        left = deadline - clock()
        timeout = (min(policy.connect_timeout, max(left, 0.1)), min(policy.read_timeout, max(left, 0.1)))
        try:
            resp = sess.get(url, timeout=timeout, allow_redirects=True)
        except requests.exceptions.SSLError as exc:
            raise FetchError(f"{what} {redact_url(url)}: TLS verification failed: {_short(exc)}") from exc
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {_short(exc)}"
        else:
            if resp.status_code == 200:
                return resp.text
            error = f"HTTP {resp.status_code} {resp.reason}"
            if resp.status_code not in RETRY_STATUS:
                raise FetchError(f"{what} {redact_url(url)}: {error} (not retried: fix the URL or the server)")
        wait = min(delay, policy.max_delay, deadline - clock())
        if wait <= 0:
            raise FetchError(f"{what} {redact_url(url)}: gave up after {attempt} attempts in "
                             f"{policy.budget:.0f}s; last error: {error}")
        log.warning("%s %s: attempt %d failed (%s); retrying in %.1fs", what, redact_url(url), attempt, error, wait)
        if on_retry is not None:
            on_retry(attempt, error, wait)
        sleep(wait)
        delay *= 2


def _short(exc: BaseException) -> str:
    text = redact_text(str(exc))  # requests quotes the URL, query (tokens) included
    return text if len(text) <= 300 else text[:300] + "..."
