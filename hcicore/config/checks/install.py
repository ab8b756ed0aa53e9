"""Checks of the install section."""
from __future__ import annotations

import re

from hcicore.errors import Problem

from ..model import NodeConfig
from .parse import url_problem
from .registry import check

DEVICE = re.compile(r"^(/dev/\S+|smallest|largest|(serial|model):\S.*)$")

@check("devices")
def devices_are_paths(cfg: NodeConfig) -> list[Problem]:
    """A disk is a path under /dev or a match the installer resolves (installer/disksel.py)."""
    problems = []
    for key in ("device", "data_device"):
        dev = getattr(cfg.install, key)
        if dev is not None and not DEVICE.match(dev):
            problems.append(Problem(f"install.{key}", f"{dev!r} is not a device path or a disk match",
                                    "use /dev/disk/by-id/..., /dev/disk/by-path/..., /dev/vda, or a match: "
                                    "serial:<serial>, model:<model>, smallest, largest"))
    return problems


@check("device-differs")
def device_differs_from_data_device(cfg: NodeConfig) -> list[Problem]:
    i = cfg.install
    if i.device is not None and i.device == i.data_device:
        return [Problem("install.data_device", f"is the install disk {i.device}",
                        "name a different disk, or remove data_device")]
    return []


@check("automatic-needs-device")
def automatic_needs_device(cfg: NodeConfig) -> list[Problem]:
    if cfg.install.automatic and not cfg.install.device:
        return [Problem("install.device", "is required for an automatic install",
                        "set install.device (hci.install.device=/dev/... on the kernel command line)")]
    return []


@check("config-url")
def config_url_http(cfg: NodeConfig) -> list[Problem]:
    url = cfg.install.config_url
    if url is None:
        return []
    return url_problem("install.config_url", url, ("http", "https"), "https://host/node1.yaml")


@check("webhooks")
def webhooks_http(cfg: NodeConfig) -> list[Problem]:
    problems = []
    for event in ("started", "succeeded", "failed"):
        url = getattr(cfg.install.webhooks, event)
        if url is not None:
            problems += url_problem(f"install.webhooks.{event}", url, ("http", "https"),
                                    "https://host/hooks/install", keep_path=False)
    if cfg.install.installed_url is not None:
        problems += url_problem("install.installed_url", cfg.install.installed_url, ("http", "https"),
                                "http://pxe-server/hcios/installed/<mac>", keep_path=False)
    return problems


@check("role-mode")
def role_needs_join(cfg: NodeConfig) -> list[Problem]:
    i = cfg.install
    if i.mode == "create" and i.role != "server":
        return [Problem("install.role", f"a {i.role} cannot create a cluster",
                        "use install.mode: join, or role: server for the first node")]
    return []


