"""``hci config ...`` and ``hci kickstart``; the installer's own commands join them here.

Each command is a click command or group in ``commands``, which hcicore/cli.py registers.
Bad input raises ValidationError (exit 2, one ``error: <path>: <what> (<fix>)`` line each).
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from hcicore.config import load_config_file, schema
from hcicore.config.fleet import fleet_problems
from hcicore.errors import Problem, ValidationError


@click.group("config")
def config_group() -> None:
    """Node config: validate a file, print the schema."""


@config_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate_cmd(files: tuple[str, ...]) -> None:
    """Check FILES (schema and semantic checks); print `ok` or every problem. Changes nothing.

    Several files are one cluster's nodes: they must also agree with each other (one creator,
    the same critical k3s values and VIP on every server, no shared hostname or address).
    """
    problems: list[Problem] = []
    nodes = []
    for file in files:
        try:
            nodes.append((file, load_config_file(file)))
        except ValidationError as err:
            if len(files) == 1:
                raise
            problems += [Problem(f"{file}: {p.path}", p.message, p.fix) for p in err.problems]
    problems += fleet_problems(nodes) if not problems else []
    if problems:
        raise ValidationError(problems)
    click.echo("ok")


@config_group.command("schema")
def schema_cmd() -> None:
    """Print the node config JSON Schema."""
    click.echo(json.dumps(schema(), indent=2))


@click.command("kickstart")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="Node config YAML file.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False),
              help="Write the kickstart here (mode 0600: it holds the token); default stdout.")
@click.option("--image-size", "image_bytes", type=click.IntRange(min=1), default=1024**3, show_default=True,
              help="Size of the OS slot image in bytes; slots get twice that, at least 2 GiB.")
def kickstart_cmd(config_file: str, out_file: str | None, image_bytes: int) -> None:
    """Render the node config as an Anaconda kickstart for Anolis."""
    from .kickstart import render_kickstart  # noqa: PLC0415  (pulls in cloud_init)

    text = render_kickstart(load_config_file(config_file), image_bytes=image_bytes)
    if out_file is None:
        click.echo(text, nl=False)
        return
    path = Path(out_file)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


# ---- `hci install` (the install steps, TUI and automatic mode) is added below by the installer
# work: define it in its own module and append it to `commands`.

from .install_cli import install_cmd  # noqa: E402  (hci install: installer/install.py)

commands: list[click.Command] = [config_group, kickstart_cmd, install_cmd]
