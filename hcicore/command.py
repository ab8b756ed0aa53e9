"""The one command runner: logs argv, captures stderr, raises CommandError on failure.

Secrets never reach the log: pass them through ``stdin`` or ``env`` and list
any argv element that must be hidden in ``secret_args``.
"""
from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import CommandError

log = logging.getLogger("hcios.command")


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def _shown(argv: Sequence[str], secret_args: Sequence[str]) -> str:
    return " ".join("***" if a in secret_args else shlex.quote(a) for a in argv)


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: str | bytes | None = None,
    capture: bool = True,
    secret_args: Sequence[str] = (),
    timeout: float | None = None,
) -> Result:
    """Run ``argv`` (never through a shell). Output is captured unless ``capture`` is False,
    in which case stdout streams to the caller's stdout and only stderr is kept."""
    argv = [os.fspath(a) for a in argv]
    log.info("run: %s", _shown(argv, secret_args))
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    text = not isinstance(stdin, bytes)
    try:
        proc = subprocess.run(
            argv,
            input=stdin,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            text=text,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]}: not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout}s") from exc
    out = proc.stdout if proc.stdout is not None else ""
    err = proc.stderr if proc.stderr is not None else ""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    if isinstance(err, bytes):
        err = err.decode(errors="replace")
    if check and proc.returncode != 0:
        raise CommandError(list(_shown(argv, secret_args).split(" ")), proc.returncode, err)
    return Result(argv, proc.returncode, out, err)
