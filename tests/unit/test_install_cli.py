"""`hci install` front end: bad input exits 2 before anything is looked at; no image exits 1."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hcicore.cli import main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_system_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """These run the real `hci install` as root: any command other than password hashing would
    reach the host's disks, so it fails the test instead."""
    import subprocess

    real = subprocess.run

    def guard(argv, *args, **kwargs):  # type: ignore[no-untyped-def]
        if argv[0] != "openssl":
            raise AssertionError(f"hci install ran {argv[0]} on the test host")
        return real(argv, *args, **kwargs)

    monkeypatch.setattr("hcicore.command.subprocess.run", guard)


def test_invalid_config_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("install:\n  device: /dev/vda\n  power_action: explode\nnode:\n  hostname: Not_Valid\n")
    result = CliRunner().invoke(main, ["install", "--config", str(cfg), "--yes", "--no-power-action"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "error: install.power_action:" in result.output and "error: node.hostname:" in result.output


def test_missing_image_is_a_clear_failure(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("install:\n  device: /dev/vda\nnode:\n  hostname: n1\n  password_hash: "
                   "\"$6$s$Qec6ivgWo6OAkJqL7FWGjqYP3eYgVBjnN3zBjO6ckA8TXaqsndi62pcOgFWZxbVy1DLi5y46kHrtx8k6S62Ww.\"\n")
    result = CliRunner().invoke(main, ["install", "--config", str(cfg), "--image", str(tmp_path / "none.squashfs"),
                                       "--yes", "--no-power-action"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "none.squashfs does not exist" in result.output


def test_auto_mode_failure_prints_the_failed_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import installer.auto as auto

    lines: list[str] = []
    monkeypatch.setattr(auto, "announce", lambda line, devices=None: lines.append(line))
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("rd.live.image hci.install.automatic=true hci.node.hostname=Bad_Name\n")
    result = CliRunner().invoke(main, ["install", "--auto", "--cmdline-file", str(cmdline), "--no-power-action"], catch_exceptions=False)
    assert result.exit_code == 2
    assert lines[0].startswith("HCIOS-INSTALL-FAILED: error: node.hostname:")


def test_auto_mode_unreadable_image_still_prints_the_failed_marker(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An error outside the install steps (here: the image can't be opened, it is a socket) ends
    with the marker and exit 1, not a traceback the harness would wait on forever."""
    import socket

    import installer.auto as auto

    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "image.sock"))

    lines: list[str] = []
    monkeypatch.setattr(auto, "announce", lambda line, devices=None: lines.append(line))
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("rd.live.image hci.install.automatic=true hci.install.device=/dev/vda "
                       "hci.node.hostname=n1 hci.node.password=correct-horse-battery\n")
    result = CliRunner().invoke(main, ["install", "--auto", "--cmdline-file", str(cmdline), "--image",
                                       str(tmp_path / "image.sock"), "--no-power-action"], catch_exceptions=False)
    sock.close()
    assert result.exit_code == 1
    assert lines[0].startswith("HCIOS-INSTALL-FAILED: OSError:") and "image.sock" in lines[0], lines
    assert "correct-horse-battery" not in "".join(lines) + result.output


def test_installs_from_a_file_or_the_wizard_take_the_network_boots_marker_url() -> None:
    from hcicore.config import load_config  # noqa: PLC0415
    from installer.install_cli import with_marker_url  # noqa: PLC0415

    base = {"install": {"device": "/dev/vda"}, "node": {"hostname": "n1", "password": "hunter2-long-enough"}}
    line = "BOOT_IMAGE=x hci.install.installed_url=http://10.0.2.2:8080/installed/52-54-00-aa-bb-cc quiet"
    cfg = with_marker_url(load_config(base, source="t"), line)
    assert cfg.install.installed_url == "http://10.0.2.2:8080/installed/52-54-00-aa-bb-cc"
    assert with_marker_url(load_config(base, source="t"), "quiet").install.installed_url is None
    own = {**base, "install": {"device": "/dev/vda", "installed_url": "http://pxe/installed/n1"}}
    assert with_marker_url(load_config(own, source="t"), line).install.installed_url == "http://pxe/installed/n1"


@pytest.mark.unit
def test_console_line_survives_a_hangup_and_a_full_buffer(tmp_path, monkeypatch, capsys):
    """A getty's vhangup() makes a write fail with EIO for a moment, a full serial buffer with
    EAGAIN: the marker line is written again, whole and once, instead of being lost."""
    import errno as errno_mod
    from installer import steps

    console, dead = tmp_path / "console", tmp_path / "missing-dir" / "tty"
    console.write_bytes(b"")
    failures = [OSError(errno_mod.EIO, "Input/output error"), "half",
                OSError(errno_mod.EAGAIN, "Resource temporarily unavailable")]
    real_write = os.write

    def flaky_write(fd, data):
        if failures:
            failure = failures.pop(0)
            if failure == "half":
                return real_write(fd, bytes(data[:5]))
            raise failure
        return real_write(fd, data)

    monkeypatch.setattr(steps.os, "write", flaky_write)
    sleeps: list[float] = []
    written = steps.write_console("HCIOS-INSTALL-OK", [str(console), str(dead)], sleep=sleeps.append)
    assert written == [str(console)]
    assert console.read_bytes() == b"HCIOS-INSTALL-OK\r\n"
    assert len(sleeps) == 2
    assert f"cannot open {dead}" in capsys.readouterr().err

    failures[:] = [OSError(errno_mod.EIO, "Input/output error")] * 100
    sleeps.clear()
    assert steps.write_console("x", [str(console)], patience=1.0, sleep=sleeps.append) == []
    assert sum(sleeps) == pytest.approx(1.0)
    assert f"cannot write to {console}: Input/output error" in capsys.readouterr().err
