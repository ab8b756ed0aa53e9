"""Interactive install: pick the TUI or the line-mode dialog, run the wizard, write the config.

``hci install`` without ``--config`` calls :func:`run_interactive` and then installs from the
file it wrote, exactly as from a file given with ``--config``.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO, TypeVar

from hcicore.errors import HciError

from .hostinfo import HostInfo, discover
from .wizard import Wizard, save

T = TypeVar("T")
MIN_COLUMNS, MIN_LINES = 80, 24
LINE_MODE_TERMS = {"", "dumb", "unknown", "vt52", "vt100", "vt102", "vt220", "serial",
                   "linux-serial", "network", "cons25"}
SERIAL_CONSOLES = ("ttyS", "ttyAMA", "ttyUSB", "ttyPS", "hvc", "ttysclp", "ttymxc")


def use_line_mode(*, term: str | None, is_tty: bool, size: tuple[int, int] | None,
                  console: str | None) -> bool:
    """True when the full-screen TUI can't be trusted here: a serial console, a dumb or unknown
    terminal, output that is not a terminal, or a screen smaller than 80x24."""
    if console and os.path.basename(console).startswith(SERIAL_CONSOLES):
        return True
    if (term or "").strip().lower() in LINE_MODE_TERMS:
        return True
    if not is_tty:
        return True
    if size is None:
        return True
    columns, lines = size
    return columns < MIN_COLUMNS or lines < MIN_LINES


def _console_name(stream: TextIO) -> str | None:
    try:
        return os.ttyname(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None


def _size(stream: TextIO) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return size.columns, size.lines


def run_interactive(*, out_path: Path, console: str | None = None, host: HostInfo | None = None,
                    env: Mapping[str, str] | None = None, stdin: TextIO | None = None,
                    stdout: TextIO | None = None, wizard: Wizard | None = None,
                    error: str | None = None) -> Path:
    """Ask the operator for the node config and write it to ``out_path`` (YAML, 0600).

    ``console`` is the console device (e.g. ``ttyS0``); by default the terminal on stdin. Raises
    HciError when the operator quits or input ends; nothing is written then. ``wizard`` and
    ``error`` bring the operator back after a failed install: every answer kept, the summary
    open, the error shown (:func:`install_with_retries`).
    """
    env = os.environ if env is None else env
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    wizard = wizard if wizard is not None else Wizard(host if host is not None else discover())
    line = use_line_mode(term=env.get("TERM"), is_tty=stdout.isatty() and stdin.isatty(),
                         size=_size(stdout), console=console or _console_name(stdin))
    try:
        if line:
            from .linemode import LineDialog  # noqa: PLC0415

            if error:
                print(f"error: {error}", file=stdout)
            LineDialog(wizard, stdin=stdin, stdout=stdout).run()
        else:
            from .tui import run_tui  # noqa: PLC0415  (textual loads only when used)

            if not run_tui(wizard, Path(out_path), error=error):
                raise HciError("installer quit by the operator; nothing was written")
            return Path(out_path)
    except KeyboardInterrupt:
        raise HciError("installer interrupted; nothing was written") from None
    return save(wizard, Path(out_path))


def install_with_retries(install: Callable[[Path], T], *, out_path: Path, ask: Callable[..., Path] = run_interactive,
                         wizard: Wizard | None = None) -> T:
    """Ask, install from the written config, and when the install fails (bad input, a disk in
    use, a step that failed) ask again: the same wizard with every answer kept, back on the
    summary, the error on screen and the config saved at ``out_path``. The operator quitting
    the wizard ends it (HciError), never a bare shell with the answers lost."""
    wizard = wizard if wizard is not None else Wizard(discover())
    error: str | None = None
    while True:
        path = ask(out_path=out_path, wizard=wizard, error=error)
        try:
            return install(path)
        except HciError as exc:
            error = (f"the install stopped: {exc}\nNothing after the failed step ran; your answers are "
                     f"kept (config saved in {path}). Change what the error names, or answer yes again.")
            wizard.reopen_summary()
