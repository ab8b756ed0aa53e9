"""The ``hci`` command: assembles the command groups each package owns."""
from __future__ import annotations

import logging
import sys

import click

from .errors import HciError, ValidationError


class HciGroup(click.Group):
    """Maps project errors to the exit-code contract: 2 bad input, 1 failure."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            sys.exit(2)
        except HciError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=HciGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log every command run.")
def main(verbose: bool) -> None:
    """hcios: build, install and manage the node OS."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _register() -> None:
    from image.cli import build  # noqa: PLC0415  (keep import cost out of --help of others)

    main.add_command(build)
    for modname, attr in (
        ("installer.cli", "commands"),
        ("iso.cli", "commands"),
        ("cloud_init.cli", "commands"),
    ):
        try:
            mod = __import__(modname, fromlist=[attr])
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        for cmd in getattr(mod, attr):
            main.add_command(cmd)


_register()
