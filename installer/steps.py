"""Ordered install steps with progress, and the mounts they use.

A step is a name and a function. :func:`run_steps` runs them in order, reports each through
:class:`hcicore.progress.Progress` (``--json`` gives one JSON line per event) and stops at the
first failure, reporting the step that failed and re-raising its error: nothing after it runs.
"""
from __future__ import annotations

import errno
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from hcicore.command import run
from hcicore.errors import HciError
from hcicore.progress import Progress

from .disk import Runner

log = logging.getLogger("hcios.installer")


@dataclass(frozen=True)
class Step:
    name: str
    action: Callable[[], Any]
    detail: str = ""


def run_steps(steps: Sequence[Step], progress: Progress) -> None:
    for step in steps:
        log.info("step %s: start %s", step.name, step.detail)
        progress.start(step.name, detail=step.detail)
        try:
            step.action()
        except HciError as exc:
            log.error("step %s failed: %s", step.name, exc)
            progress.failed(step.name, str(exc))
            raise
        except (OSError, ValueError, LookupError, TypeError, RuntimeError, jinja2.TemplateError,
                yaml.YAMLError) as exc:
            # An unexpected error still ends as a failed step: reported, logged on hci-oem, and
            # (automatic mode) the FAILED marker on the console instead of a bare traceback.
            # the traceback goes to the install log (kept on hci-oem): an unexpected error is a bug
            log.error("step %s failed: %s: %s", step.name, type(exc).__name__, exc, exc_info=exc)
            progress.failed(step.name, f"{type(exc).__name__}: {exc}")
            raise HciError(f"{step.name}: {type(exc).__name__}: {exc}") from exc
        log.info("step %s: done", step.name)
        progress.done(step.name)


@contextmanager
def mounted(device: str, mountpoint: Path, *, fstype: str | None = None, options: str | None = None,
            runner: Runner = run) -> Iterator[Path]:
    """Mount ``device`` on ``mountpoint`` for the ``with`` block; unmount it afterwards.

    When the block raised and the unmount fails too, the unmount failure is logged and the
    block's error is the one that propagates."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    argv = ["mount"]
    if fstype:
        argv += ["-t", fstype]
    if options:
        argv += ["-o", options]
    runner([*argv, device, str(mountpoint)])
    try:
        yield mountpoint
    except BaseException:
        try:
            runner(["umount", str(mountpoint)])
        except HciError as exc:
            log.error("could not unmount %s after a failure: %s", mountpoint, exc)
        raise
    runner(["umount", str(mountpoint)])


@contextmanager
def install_log(path: Path) -> Iterator[Path]:
    """Send the ``hcios`` loggers (commands run, progress, warnings) to ``path`` for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # owner-only from the start
    os.chmod(path, 0o600)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("hcios")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # INFO lines go to the log file only; the console gets the progress lines.
    logger.propagate = False
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(old_level)
        logger.propagate = old_propagate


CONSOLE_RETRY = (errno.EIO, errno.EAGAIN)


def write_console(line: str, devices: Sequence[str], *, patience: float = 5.0,
                  sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Write one line to each console device that can be opened; returns those written.

    Non-blocking, so a serial line held by flow control cannot stall the installer. A write
    that fails with EIO (the tty is being hung up: a getty or login on it calls vhangup()) or
    EAGAIN (output buffer full) is tried again, on a fresh open, for up to ``patience``
    seconds per device. A console that still cannot be written is reported on stderr, never
    fatal."""
    written: list[str] = []
    data = (line.rstrip("\n") + "\r\n").encode()
    step = 0.25
    for dev in devices:
        waited = 0.0
        rest = data
        while True:
            rest, error = _write_once(dev, rest)
            if error is None:
                written.append(dev)
                break
            if error.errno not in CONSOLE_RETRY or waited >= patience:
                verb = "open" if isinstance(error, _OpenError) else "write to"
                print(f"hci install: cannot {verb} {dev}: {error.strerror}", file=sys.stderr)
                break
            sleep(step)
            waited += step
    return written


class _OpenError(OSError):
    pass


def _write_once(dev: str, data: bytes) -> tuple[bytes, OSError | None]:
    """One open and write; what is left unwritten and the error (None when all was written)."""
    try:
        fd = os.open(dev, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        return data, _OpenError(exc.errno, exc.strerror)
    try:
        while data:
            data = data[os.write(fd, data):]
        return data, None
    except OSError as exc:
        return data, exc
    finally:
        os.close(fd)
