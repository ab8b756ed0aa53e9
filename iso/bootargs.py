"""Kernel command lines of the live medium: one place for the ISO menu and the PXE script.

Live-media behaviour is chosen with ``hcios.live=install|shell``. It deliberately sits outside
the ``hci.*`` namespace, which belongs to the installer's config model (``hci.<path>=value``):
``hci.install.mode`` means create|join there. Automatic installs add
``hci.install.automatic=true`` (a real config key).

Hang policy (see docs): live entries do NOT carry ``panic=10``/``rd.emergency=reboot``. Those make
an *installed* node reboot into its fallback slot; a live medium has no fallback, so a failed live
boot stays on the console with its error instead of looping through reboots.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from hcicore.bootargs import IMAGE_SHA256_ARG, SERIAL_BAUD  # read back by the installer on the node

# The last console= becomes /dev/console (systemd status, emergency shell), so the serial
# port goes last: a headless server's serial-over-LAN gets the prompts.
CONSOLES: dict[str, str] = {
    "both": f"console=tty0 console=ttyS0,{SERIAL_BAUD}n8",
    "ttyS0": f"console=ttyS0,{SERIAL_BAUD}n8",
    "ttyS1": f"console=ttyS1,{SERIAL_BAUD}n8",
    "vga": "console=tty0",
}

ACTIONS: dict[str, tuple[str, str]] = {
    # id: (menu title, kernel args)
    "install": ("Install hcios", "hcios.live=install"),
    "auto": ("Automatic install (config from hci.install.config_url)",
             "hcios.live=install hci.install.automatic=true"),
    "shell": ("Live system shell (no installer)", "hcios.live=shell"),
}

CONSOLE_TITLES: dict[str, str] = {
    "both": "",
    "ttyS0": " - serial console ttyS0",
    "ttyS1": " - serial console ttyS1",
    "vga": " - VGA console only",
}

_LABEL_OK = re.compile(r"[^A-Z0-9_]")


def volume_label(version: str, prefix: str = "HCIOS") -> str:
    """ISO 9660 volume id for a version: upper case, [A-Z0-9_] only, at most 32 characters."""
    label = _LABEL_OK.sub("_", f"{prefix}_{version}".upper())
    return label[:32]


def live_root_cdlabel(label: str) -> str:
    return f"root=live:CDLABEL={label} rd.live.image"


def image_digest_arg(sha256: str | None) -> str:
    """``hcios.image_sha256=<hex>``: a network boot's squashfs comes without its digest file, so
    the boot line carries it and the installer checks the downloaded image before writing it."""
    return f"{IMAGE_SHA256_ARG}{sha256}" if sha256 else ""


def live_root_http(url: str) -> str:
    # ip=dhcp brings the network up in the initramfs; rd.neednet keeps it for the fetch.
    return f"root=live:{url} rd.live.image ip=dhcp rd.neednet=1"


@dataclass(frozen=True)
class MenuEntry:
    id: str
    title: str
    args: str


def menu_entries(version: str) -> tuple[list[MenuEntry], list[MenuEntry]]:
    """(main entries, entries of the "other consoles" submenu); the first main entry is default."""
    main: list[MenuEntry] = []
    other: list[MenuEntry] = []
    for console, console_args in CONSOLES.items():
        for action, (title, action_args) in ACTIONS.items():
            entry = MenuEntry(
                id=f"{action}-{console}",
                title=f"{title} {version}{CONSOLE_TITLES[console]}",
                args=f"{console_args} {action_args}",
            )
            (main if console == "both" else other).append(entry)
    return main, other
