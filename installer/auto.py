"""Where ``hci install`` gets its config: a file, a URL, or (automatic mode) the kernel command line.

Automatic mode (``hci install --auto``, run by ``hci-autoinstall.service`` on the live system
when the kernel command line has ``hci.install.automatic=true``): the ``hci.*`` arguments of
``/proc/cmdline`` are parsed; with ``hci.install.config_url=`` the file there is fetched (bounded
retries) and the command-line keys are merged over it. The result is validated like any file.

The outcome goes to every console as one fixed marker line that people and test harnesses look
for: ``HCIOS-INSTALL-OK`` or ``HCIOS-INSTALL-FAILED: <reason>``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hcicore.config import NodeConfig, load_config, load_config_file, merge, parse_cmdline, parse_yaml
from hcicore.config.cmdline import cmdline_value
from hcicore.errors import Problem, ValidationError
from hcicore.redact import redact_url

from .fetch_config import FetchPolicy, fetch_text
from .steps import write_console

OK_MARKER = "HCIOS-INSTALL-OK"
FAILED_MARKER = "HCIOS-INSTALL-FAILED"
CONSOLE_ACTIVE = Path("/sys/class/tty/console/active")
FETCH_BUDGET_ARG = "hcios.fetch_budget="


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def config_from_source(source: str, *, policy: FetchPolicy = FetchPolicy(),
                       on_retry: Callable[[int, str, float], None] | None = None) -> NodeConfig:
    """Load and validate a node config from a file path or an http(s) URL."""
    if is_url(source):
        text = fetch_text(source, policy=policy, on_retry=on_retry)
        shown = redact_url(source)  # problems are printed and logged: no token from the query
        return load_config(parse_yaml(text, source=shown), source=shown)
    return load_config_file(source)


def fetch_policy(cmdline: str, default: FetchPolicy = FetchPolicy()) -> FetchPolicy:
    """``hcios.fetch_budget=<seconds>`` (outside the config's ``hci.*`` namespace, like
    ``hcios.live=``) shortens or lengthens the config URL's time budget."""
    value = cmdline_value(cmdline, FETCH_BUDGET_ARG)
    if value is None:
        return default
    word = f"{FETCH_BUDGET_ARG}{value}"
    try:
        budget = float(value)
    except ValueError:
        raise ValidationError([Problem("kernel command line", f"{word}: not a number of seconds",
                                       "e.g. hcios.fetch_budget=120")]) from None
    if not 1 <= budget <= 3600:
        raise ValidationError([Problem("kernel command line", f"{word}: out of range",
                                       "between 1 and 3600 seconds")])
    return replace(default, budget=budget)


def config_from_cmdline(cmdline: str, *, policy: FetchPolicy | None = None,
                        on_retry: Callable[[int, str, float], None] | None = None) -> NodeConfig:
    """The node config of an automatic install: ``hci.*`` kernel arguments over the config URL's file."""
    policy = policy or fetch_policy(cmdline)
    args = parse_cmdline(cmdline)
    url = (args.get("install") or {}).get("config_url")
    base: dict = {}
    source = "kernel command line"
    if url:
        text = fetch_text(url, policy=policy, on_retry=on_retry)
        shown = redact_url(url)  # problems are printed and logged: no token from the query
        fetched = parse_yaml(text, source=shown)
        if not isinstance(fetched, dict):
            raise ValidationError([Problem(shown, "must be a mapping of sections",
                                           "serve a node config YAML file (see `hci config schema`)")])
        base = fetched
        source = f"{shown} + kernel command line"
    return load_config(merge(base, args), source=source)


def console_devices(active: Path = CONSOLE_ACTIVE) -> list[str]:
    """The kernel's active consoles (e.g. tty0, ttyS0) as device paths, plus /dev/ttyS0."""
    try:
        names = active.read_text().split()
    except OSError:
        names = []
    devices = [f"/dev/{n}" for n in names]
    if "/dev/ttyS0" not in devices and Path("/dev/ttyS0").exists():
        devices.append("/dev/ttyS0")
    return devices or ["/dev/console"]


def announce(line: str, devices: list[str] | None = None) -> None:
    """Print ``line`` on every console (VGA and serial), whoever is watching."""
    write_console(line, devices if devices is not None else console_devices())


def failure_marker(reason: str) -> str:
    first = " ".join(reason.split())
    return f"{FAILED_MARKER}: {first[:400]}"
