"""Best-effort install webhooks (``install.webhooks.started|succeeded|failed``) and the
``installed`` marker (``install.installed_url``, a PUT after success that pxe/boot.ipxe checks).

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


def _send(method: str, what: str, url: str, body: dict[str, Any], session: requests.Session | None) -> str | None:
    shown = redact_url(url, keep_path=False)
    try:
        resp = (session or requests.Session()).request(method, url, json=body, timeout=TIMEOUT)
    except requests.RequestException as exc:
        warning = f"{what} ({shown}) failed: {type(exc).__name__}"
        log.warning("%s", warning)
        return warning
    if resp.status_code >= 400:
        warning = f"{what} ({shown}) answered HTTP {resp.status_code}"
        log.warning("%s", warning)
        return warning
    log.info("%s sent to %s (HTTP %d)", what, shown, resp.status_code)
    return None


def notify(cfg: NodeConfig, event: str, *, session: requests.Session | None = None,
           **fields: Any) -> str | None:
    """POST ``event`` to its webhook if one is configured; after ``succeeded`` also PUT the
    installed marker. Returns a warning text on failure (all failures, joined)."""
    body = {"event": event, "hostname": cfg.node.hostname, "device": cfg.install.device, **fields}
    warnings = []
    url = getattr(cfg.install.webhooks, event)
    if url:
        warnings.append(_send("POST", f"webhook {event}", url, body, session))
    if event == "succeeded" and cfg.install.installed_url:
        marker = {k: v for k, v in body.items() if k != "event"}
        warnings.append(_send("PUT", "installed marker", cfg.install.installed_url, marker, session))
    found = [w for w in warnings if w]
    return "; ".join(found) if found else None
