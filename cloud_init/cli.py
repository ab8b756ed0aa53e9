"""``hci cloud-init render``: write a node's NoCloud seed from its config file."""
from __future__ import annotations

import click

from hcicore.config import load_config_file

from .seed import write_seed


@click.group("cloud-init")
def cloud_init_group() -> None:
    """cloud-init NoCloud seed of a node."""


@cloud_init_group.command("render")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="Node config YAML file.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for user-data, meta-data and network-config (files are mode 0600).")
def render_cmd(config_file: str, out_dir: str) -> None:
    """Render user-data, meta-data and network-config into OUT."""
    cfg = load_config_file(config_file)
    for path in write_seed(cfg, out_dir):
        click.echo(str(path))


commands = [cloud_init_group]
