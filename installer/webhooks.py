"""Best-effort install webhooks (``install.webhooks.started|succeeded|failed``).

A JSON POST with a short timeout; a webhook that fails is a warning in the log and on screen,
never a reason to stop or to hang. The body carries no secrets: event, hostname, device,
version and, on failure, the error message.
"""
from __future__ import annotations

import logging
from typing import Any

import requests

from hcicore.redact import redact_url

from hcicore.config import NodeConfig

log = logging.getLogger("hcios.installer.webhooks")

TIMEOUT = (3.0, 5.0)  # connect, read


def notify(cfg: NodeConfig, event: str, *, session: requests.Session | None = None,
           **fields: Any) -> str | None:
    """POST ``event`` to its webhook if one is configured. Returns a warning text on failure."""
    url = getattr(cfg.install.webhooks, event)
    if not url:
        return None
    body = {"event": event, "hostname": cfg.node.hostname, "device": cfg.install.device, **fields}
    try:
        resp = (session or requests.Session()).post(url, json=body, timeout=TIMEOUT)
    except requests.RequestException as exc:
        warning = f"webhook {event} ({redact_url(url, keep_path=False)}) failed: {type(exc).__name__}"
        log.warning("%s", warning)
        return warning
    if resp.status_code >= 400:
        warning = f"webhook {event} ({redact_url(url, keep_path=False)}) answered HTTP {resp.status_code}"
        log.warning("%s", warning)
        return warning
    log.info("webhook %s sent to %s (HTTP %d)", event, redact_url(url, keep_path=False), resp.status_code)
    return None
