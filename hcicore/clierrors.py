"""The click group every hcios command line uses: project errors become the exit-code contract."""
from __future__ import annotations

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
