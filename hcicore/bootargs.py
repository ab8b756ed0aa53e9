"""Kernel and grub console settings shared by the live medium (iso/), the installer and the node.

``iso/`` and ``image/`` import nothing from ``installer/``; the words both sides read or write
(the image digest argument, the consoles) live here.
"""
from __future__ import annotations

import shlex

SERIAL_BAUD = 115200
IMAGE_SHA256_ARG = "hcios.image_sha256="  # a network boot's squashfs digest, checked by the installer
# The last console= becomes /dev/console (systemd status, emergency shell), so a serial port goes
# last: a headless server's serial-over-LAN gets the prompts.
DEFAULT_CONSOLE_ARGS = f"console=tty0 console=ttyS0,{SERIAL_BAUD}n8"

# grub listens and writes on the screen and on COM1 and COM2 (iDRAC, iLO and many Supermicro
# boards put serial-over-LAN on COM2). A port the machine lacks is skipped: `terminal_output`
# with an unknown terminal would change nothing at all, so each port is added on its own.
GRUB_SERIAL = "\n".join([
    "terminal_input console",
    "terminal_output console",
    *(f"if serial --unit={unit} --speed={SERIAL_BAUD} --word=8 --parity=no --stop=1; then\n"
      f"  terminal_input --append serial_com{unit}\n"
      f"  terminal_output --append serial_com{unit}\n"
      "fi" for unit in (0, 1)),
])


def console_args(cmdline: str) -> str:
    """The ``console=`` arguments of a kernel command line, in order ("" when there are none)."""
    try:
        words = shlex.split(cmdline)
    except ValueError:
        words = cmdline.split()
    return " ".join(w for w in words if w.startswith("console="))
