"""The ``hci`` command: assembles the command groups each package owns."""
from __future__ import annotations

import logging
import signal
import sys

import click

from .clierrors import HciGroup


@click.group(cls=HciGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log every command run.")
def main(verbose: bool) -> None:
    """hcios: build, install and manage the node OS."""
    # SIGTERM unwinds like an error, so every mount, loop device and chroot is undone.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:  # retries are reported once, by the caller, when they run out
        logging.getLogger("urllib3").setLevel(logging.ERROR)


# Each package owns its commands. The node image carries only the node-side packages (no image/
# or iso/), so a package that is absent as a whole is skipped; any other import error is raised.
COMMAND_MODULES = ("image.cli", "iso.cli", "installer.cli", "cloud_init.cli", "node_services.cli")


def _register() -> None:
    import importlib  # noqa: PLC0415

    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name not in (modname, modname.split(".")[0]):
                raise
            continue
        for cmd in mod.commands:
            main.add_command(cmd)


_register()
