"""The command line every boot-time service shares: read the node config from hci-oem (or
``--config``), do the service's work, print one line per step (warnings to stderr, for the
journal), and exit with the project error's code."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from hcicore.config import NodeConfig, load_config_file
from hcicore.errors import HciError
from hcicore.layout import OEM_MOUNT, OEM_NODE_CONFIG

config_option = click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
                             help=f"Node config (default: {OEM_MOUNT}/{OEM_NODE_CONFIG}).")


def run_service(config_file: str | None, work: Callable[[NodeConfig | None], list[str]]) -> None:
    path = Path(config_file) if config_file else Path(OEM_MOUNT) / OEM_NODE_CONFIG
    try:
        cfg = load_config_file(path) if path.exists() else None
        for line in work(cfg):
            click.echo(line, err=line.startswith("warning:"))
    except HciError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
