"""Start virtlogd and libvirtd by hand when they are not running (no systemd as PID 1 here).

Idempotent and safe against parallel callers (a lock file). Creates the ``kvm`` group and the
``libvirt-qemu`` user when missing (libvirtd refuses to start without them), and, when there is no
``/etc/libvirt/qemu.conf``, writes one that runs guests as root (a lab machine: guests then read
the ISO and disks wherever they are, and only get files the lab hands them).
"""
from __future__ import annotations

import fcntl
import grp
import logging
import os
import pwd
import socket
import time
from pathlib import Path

import libvirt

from hcicore.command import run
from hcicore.errors import HciError

from .domain import URI

log = logging.getLogger("hcios.lab")

RUN_DIR = Path("/run/libvirt")
LIBVIRT_SOCK = RUN_DIR / "libvirt-sock"
VIRTLOGD_SOCK = RUN_DIR / "virtlogd-sock"
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
LOCK = Path("/run/hcios-libvirtd.lock")
DIRS = (
    RUN_DIR,
    Path("/var/log/libvirt/qemu"),
    Path("/var/lib/libvirt/qemu"),
    Path("/var/cache/libvirt/qemu"),
)



def _log_libvirt_error(_ctx: object, error: tuple) -> None:
    # libvirt prints every error to stderr by default; they are raised as libvirtError
    # anyway, so only log them (at debug level) here.
    log.debug("libvirt: %s", error[2] if len(error) > 2 else error)


libvirt.registerErrorHandler(_log_libvirt_error, None)

_QEMU_CONF_TEXT = """\
# Written by hcios (iso/libvirtd.py) for the VM lab: there is no libvirt-qemu user on this host.
# Guests run as root and libvirt leaves file ownership alone.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
"""


def socket_alive(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _prepare_host() -> None:
    for d in DIRS:
        d.mkdir(parents=True, exist_ok=True)
    # libvirtd resolves its compiled-in default user before it reads qemu.conf, so the
    # user must exist even though our qemu.conf runs guests as root.
    if not _group_exists("kvm"):
        run(["groupadd", "--system", "kvm"])
    if not _group_exists("libvirt-qemu"):
        run(["groupadd", "--system", "libvirt-qemu"])
    if not _user_exists("libvirt-qemu"):
        run(["useradd", "--system", "--gid", "libvirt-qemu", "--groups", "kvm",
             "--home-dir", "/var/lib/libvirt", "--no-create-home",
             "--shell", "/usr/sbin/nologin", "libvirt-qemu"])
    if not QEMU_CONF.exists():
        QEMU_CONF.parent.mkdir(parents=True, exist_ok=True)
        QEMU_CONF.write_text(_QEMU_CONF_TEXT)
        log.warning("wrote %s (guests run as root)", QEMU_CONF)


def _wait_socket(path: Path, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if socket_alive(path):
            return
        time.sleep(0.2)
    raise HciError(f"{what} did not open {path} within {timeout:.0f}s (see /var/log/libvirt)")


def qemu_driver_ready(uri: str = URI) -> bool:
    """True when libvirtd answers on ``uri`` with a working QEMU driver."""
    if not socket_alive(LIBVIRT_SOCK):
        return False
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return False
    try:
        conn.getVersion()
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()
    return True


def _wait_ready(uri: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if qemu_driver_ready(uri):
            return
        time.sleep(0.5)
    raise HciError(
        f"libvirtd did not serve {uri} within {timeout:.0f}s "
        "(see the errors at the end of /var/log/libvirt/libvirtd.log)"
    )


def ensure_libvirtd(timeout: float = 60, uri: str = URI) -> None:
    """Make sure virtlogd and libvirtd (with the QEMU driver) answer; start them if needed."""
    if socket_alive(VIRTLOGD_SOCK) and qemu_driver_ready(uri):
        return
    if os.geteuid() != 0:
        raise HciError("libvirtd is not running and starting it needs root (run as root)")
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _prepare_host()
        if not socket_alive(VIRTLOGD_SOCK):
            log.info("starting virtlogd")
            run(["virtlogd", "-d"], timeout=timeout)
            _wait_socket(VIRTLOGD_SOCK, timeout, "virtlogd")
        if not qemu_driver_ready(uri):
            log.info("starting libvirtd")
            run(["libvirtd", "-d"], timeout=timeout)
            _wait_ready(uri, timeout)
