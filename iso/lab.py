"""The VM lab: boot ISOs, disks and kernels under libvirt/qemu (TCG) and watch the serial console.

Usage (tests, operators)::

    with Lab() as lab:
        vm = lab.start_vm("bios", cdrom=iso, disks=[lab.create_disk("root", "20G")])
        vm.wait_for_serial(r"HCIOS-LIVE-READY version=(\\S+)", timeout=300)
        # vm.ssh_port: 127.0.0.1:<port> forwards to the guest's port 22

Every domain is transient (it disappears when it stops) and every file lives in the lab's work
directory; leaving the ``with`` block destroys the domains and deletes that directory, also when
the body raised. ``HCIOS_LAB_KEEP=1`` keeps the work directory (serial logs) for debugging.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import libvirt
import libvirt_qemu

from hcicore.command import run
from hcicore.errors import HciError

from .domain import OVMF_VARS, OVMF_VARS_MS, Firmware, SerialMode, Uplinked, VMSpec, domain_xml
from .libvirtd import URI, ensure_libvirtd

log = logging.getLogger("hcios.lab")

DEFAULT_MEMORY_MIB = 2048   # the live overlay is a tmpfs in RAM
# Printed on every console by hci-live-banner.service once the live system is up.
LIVE_MARKER = r"HCIOS-LIVE-READY version=(\S+)"
TAIL_LINES = 40
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
_GONE = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID)


KEYCODES = {"enter": 28, "up": 103, "down": 108, "esc": 1}  # Linux input event codes

def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_text(raw: bytes) -> str:
    """Serial bytes as text without colour codes and carriage returns."""
    return _ANSI.sub("", raw.decode("utf-8", errors="replace"))


class VM:
    """A running lab domain and its serial log."""

    def __init__(self, conn: libvirt.virConnect, spec: VMSpec, started: float):
        self._conn = conn
        self.spec = spec
        self.name = spec.name
        self.serial_log = spec.serial_log
        self.ssh_port = spec.ssh_port
        self.started = started

    def serial_text(self) -> str:
        try:
            return clean_text(self.serial_log.read_bytes())
        except FileNotFoundError:
            return ""

    def serial_tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.serial_text().splitlines()[-lines:])

    def mark(self) -> int:
        """Current length of the serial text: pass it as ``since`` to wait for new output only."""
        return len(self.serial_text())

    def is_running(self) -> bool:
        try:
            return bool(self._conn.lookupByName(self.name).isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in _GONE:
                return False
            raise

    def wait_for_serial(self, pattern: str | re.Pattern[str], timeout: float,
                        since: int = 0, poll: float = 0.5) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears in the serial output after offset ``since``.

        Raises HciError with the last lines of the serial log on timeout or when the VM stops.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            text = self.serial_text()
            match = regex.search(text, since)
            if match:
                return match
            if not self.is_running():
                raise HciError(self._report(f"VM {self.name} stopped before {regex.pattern!r} "
                                            "appeared on its serial console"))
            if time.monotonic() >= deadline:
                raise HciError(self._report(f"timed out after {timeout:.0f}s waiting for "
                                            f"{regex.pattern!r} on the serial console of {self.name}"))
            time.sleep(poll)

    def _report(self, message: str) -> str:
        return (f"{message}\n--- last {TAIL_LINES} lines of {self.serial_log} ---\n"
                f"{self.serial_tail()}\n--- end of serial log ---")

    def send_keys(self, *keys: str, gap: float = 0.3) -> None:
        """Press keys on the VM's keyboard (grub reads it as well as the serial port), one at a
        time: names from KEYCODES."""
        dom = self._conn.lookupByName(self.name)
        for key in keys:
            dom.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, 0, [KEYCODES[key]], 1, 0)
            time.sleep(gap)

    def set_link(self, device: str, up: bool) -> None:
        """Plug or unplug a NIC's cable (qemu's ``set_link``): the guest sees the carrier go."""
        dom = self._conn.lookupByName(self.name)
        out = libvirt_qemu.qemuMonitorCommand(dom, f"set_link {device} {'on' if up else 'off'}",
                                              libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
        if out.strip():
            raise HciError(f"set_link {device}: {out.strip()}")

    def reset(self) -> None:
        """Press the reset button: the guest restarts at once, with no shutdown and no sync (a
        power cut for the guest; what it wrote to its virtual disk stays written)."""
        self._conn.lookupByName(self.name).reset(0)

    def destroy(self) -> None:
        """Power off now (pulls the plug). A domain that is already gone is fine."""
        try:
            self._conn.lookupByName(self.name).destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in _GONE:
                raise
            log.info("domain %s was already gone", self.name)


class Lab:
    """Context manager owning libvirt domains and files for one test or one operator session."""

    def __init__(self, workdir: Path | None = None, *, prefix: str = "hcilab", uri: str = URI,
                 keep: bool | None = None):
        self.prefix = prefix
        self.uri = uri
        self._given_workdir = workdir
        self.keep = os.environ.get("HCIOS_LAB_KEEP") == "1" if keep is None else keep
        self.workdir: Path = Path()
        self._conn: libvirt.virConnect | None = None
        self._stack = ExitStack()
        self._detached = False
        self.vms: list[VM] = []

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        ensure_libvirtd(uri=self.uri)
        with ExitStack() as stack:
            if self._given_workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/var/tmp"))
                if not self.keep:
                    stack.callback(self._remove_workdir)
            else:
                self.workdir = self._given_workdir
                self.workdir.mkdir(parents=True, exist_ok=True)
            self._conn = libvirt.open(self.uri)
            stack.callback(self._conn.close)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def detach(self) -> None:
        """Leave the VMs running when the lab closes (``hci lab boot-iso``); they and the work
        directory then belong to the caller."""
        self._detached = True

    def _destroy(self, vm: VM) -> None:
        if self._detached:
            log.info("leaving %s running", vm.name)
            return
        vm.destroy()

    def _remove_workdir(self) -> None:
        log.info("removing lab directory %s", self.workdir)
        shutil.rmtree(self.workdir)

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None:
            raise HciError("the lab is not open (use it as a context manager)")
        return self._conn

    # -- resources -----------------------------------------------------------------------------
    def create_disk(self, name: str, size: str = "20G", backing: Path | None = None) -> Path:
        """A qcow2 disk in the lab directory; with ``backing``, an overlay on that image."""
        path = self.workdir / f"{name}.qcow2"
        argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
        if backing is not None:
            argv += ["-F", "qcow2", "-b", str(Path(backing).resolve())]
        run([*argv, str(path), size])
        return path

    def start_vm(
        self,
        name: str,
        *,
        cdrom: Path | None = None,
        disks: list[Path] | None = None,
        firmware: Firmware = "bios",
        kernel: Path | None = None,
        initrd: Path | None = None,
        cmdline: str | None = None,
        memory_mib: int = DEFAULT_MEMORY_MIB,
        vcpus: int = 2,
        ssh: bool = True,
        serial_mode: SerialMode = "file",
        serial_port: int = 0,
        vnc: bool = False,
        disk_cache: str | None = None,
        sector_size: int = 512,
        domain_name: str | None = None,
        netboot_url: str | None = None,
        ssh_port: int | None = None,
        watchdog: bool = False,
        mac: str | None = None,
        nvram: Path | None = None,
        uplinked: Uplinked | None = None,
        data_nic: bool = False,
    ) -> VM:
        """Create and start a transient domain; it is destroyed when the lab closes.

        Boots, in this order of precedence: ``kernel`` (direct kernel boot), ``netboot_url``
        (the NIC's iPXE ROM gets it as DHCP boot file, e.g. an iPXE script over HTTP), then
        ``cdrom`` and the first disk. ``nvram``: UEFI variables another VM of this lab left (its
        ``spec.nvram``), as the same machine keeps them across boots; else fresh ones."""
        full_name = domain_name or f"{self.prefix}-{name}-{secrets.token_hex(3)}"
        if firmware in ("uefi", "uefi-secboot") and nvram is None:
            nvram = self.workdir / f"{name}-OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS if firmware == "uefi" else OVMF_VARS_MS, nvram)
        spec = VMSpec(
            name=full_name,
            serial_log=self.workdir / f"{name}-serial.log",
            memory_mib=memory_mib,
            vcpus=vcpus,
            firmware=firmware,
            nvram=nvram,
            cdrom=Path(cdrom).resolve() if cdrom else None,
            disks=[Path(d).resolve() for d in disks or []],
            disk_cache=disk_cache,
            sector_size=sector_size,
            kernel=Path(kernel).resolve() if kernel else None,
            initrd=Path(initrd).resolve() if initrd else None,
            cmdline=cmdline,
            ssh_port=(ssh_port or free_port()) if ssh else None,
            netboot_url=netboot_url,
            mac=mac or "52:54:00:%02x:%02x:%02x" % tuple(secrets.token_bytes(3)),
            serial_mode=serial_mode,
            serial_port=serial_port,
            vnc=vnc,
            watchdog=watchdog,
            uplinked=uplinked,
            data_nic=data_nic,
        )
        xml = domain_xml(spec)
        (self.workdir / f"{name}-domain.xml").write_text(xml)
        log.info("starting %s (%s)", full_name, firmware)
        started = time.monotonic()
        self.conn.createXML(xml, 0)
        vm = VM(self.conn, spec, started)
        self._stack.callback(self._destroy, vm)
        self.vms.append(vm)
        return vm
