"""``hci install``: interactive without a config, from a file or URL with ``--config``, or
automatic from the kernel command line with ``--auto`` (the live system's hci-autoinstall.service).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from hcicore.config import NodeConfig
from hcicore.config.cmdline import PREFIX, cmdline_value
from hcicore.errors import HciError, ValidationError
from hcicore.progress import Progress

from . import auto
from .install import (WORK_DIR, Install, InstallContext, InstallResult, default_preflight, os_version,
                      power_action)
from .source import find_image


def _read_cmdline(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _confirm(text: str) -> bool:
    return click.confirm(text, default=False, err=True)


def with_marker_url(cfg: NodeConfig, cmdline: str) -> NodeConfig:
    """A network boot's marker URL (pxe/boot.ipxe puts hci.install.installed_url on the kernel
    line) also for installs from a file or the wizard, unless the config names its own: the
    next network boot of this machine must find it installed, however it was installed."""
    if cfg.install.installed_url is None:
        cfg.install.installed_url = cmdline_value(cmdline, f"{PREFIX}install.installed_url=")
    return cfg


def _load(config_src: str, auto_mode: bool, cmdline_file: Path, progress: Progress) -> NodeConfig:
    def on_retry(attempt: int, error: str, delay: float) -> None:
        progress.warning(f"config URL: attempt {attempt} failed ({error}); retrying in {delay:.0f}s")

    if auto_mode:
        return auto.config_from_cmdline(cmdline_file.read_text(), on_retry=on_retry)
    return auto.config_from_source(config_src, on_retry=on_retry)


@click.command("install")
@click.option("--config", "config_src", metavar="FILE|URL",
              help="Node config file or http(s) URL; without it the installer asks (TUI or line mode).")
@click.option("--auto", "auto_mode", is_flag=True,
              help="Automatic mode: the config comes from the kernel command line "
                   "(hci.install.config_url= and hci.* keys).")
@click.option("--json", "as_json", is_flag=True, help="Progress as JSON lines on stdout.")
@click.option("--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--image", "image", type=click.Path(path_type=Path, dir_okay=False),
              help="Slot image to write (default: the live medium's squashfs).")
@click.option("--no-power-action", is_flag=True, help="Stay up after the install (no reboot/poweroff).")
@click.option("--cmdline-file", type=click.Path(path_type=Path, dir_okay=False), default="/proc/cmdline",
              show_default=True, hidden=True)
def install_cmd(config_src: str | None, auto_mode: bool, as_json: bool, assume_yes: bool,
                image: Path | None, no_power_action: bool, cmdline_file: Path) -> None:
    """Install hcios on the disk named by install.device (erases it; asks first unless --auto or --yes)."""
    progress = Progress(as_json=as_json)

    def install(cfg: NodeConfig) -> tuple[NodeConfig, InstallContext, InstallResult]:
        cfg = with_marker_url(cfg, _read_cmdline(cmdline_file))
        ctx = InstallContext(image=find_image(image, cmdline=cmdline_file), progress=progress, confirm=_confirm,
                             preflight=default_preflight, assume_yes=assume_yes, auto_mode=auto_mode,
                             live_cmdline=_read_cmdline(cmdline_file), version=os_version())
        return cfg, ctx, Install(cfg, ctx).execute()

    try:
        if auto_mode or config_src is not None:
            cfg, ctx, result = install(_load(config_src or "", auto_mode, cmdline_file, progress))
        else:  # interactive: a failed install goes back to the wizard with every answer kept
            from .interactive import install_with_retries  # noqa: PLC0415  (TUI only when asked for)

            WORK_DIR.mkdir(parents=True, exist_ok=True)
            cfg, ctx, result = install_with_retries(lambda path: install(auto.config_from_source(str(path))),
                                                    out_path=WORK_DIR / "config.yaml")
    except (HciError, OSError, ValueError) as exc:
        # OSError/ValueError: an unreadable image or command line, outside any install step
        if isinstance(exc, ValidationError):
            reason = "; ".join(str(p) for p in exc.problems)
        else:
            reason = str(exc) if isinstance(exc, HciError) else f"{type(exc).__name__}: {exc}"
        if auto_mode:
            auto.announce(auto.failure_marker(reason))
            auto.announce("hcios: the automatic install stopped; nothing reboots. "
                          "Fix the config (or the disk) and boot the installer again.")
        if isinstance(exc, HciError):
            raise
        raise HciError(reason) from exc
    progress.info(f"installed hcios {ctx.version} on {result.device} in {result.seconds:.0f}s",
                  device=result.device, seconds=round(result.seconds, 1), sha256=result.image_sha256)
    if auto_mode:
        auto.announce(f"{auto.OK_MARKER} device={result.device} seconds={result.seconds:.1f}")
    else:
        click.echo(f"{auto.OK_MARKER} device={result.device}", err=as_json)
    if no_power_action:
        return
    sys.stdout.flush()
    power_action(cfg)
