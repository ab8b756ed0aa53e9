"""Install hcios from the live ISO onto a virtio disk and boot the installed node (qemu TCG).

The live system is booted by direct kernel boot of the ISO's kernel and initramfs with the ISO
attached (``root=live:CDLABEL=...``), so the test adds ``hci.install.automatic=true`` and
``hci.install.config_url=http://10.0.2.2:PORT/config.yaml`` (a loopback HTTP server on the host)
without editing the ISO's menu. The install happens once per session (``installed_disk``); every
later boot runs on a qcow2 overlay backed by that disk.

Artifacts: see tests/vm/conftest.py (HCIOS_TEST_OUT or the pipeline's build).
"""
from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
import testinfra
import yaml

from hcicore.command import run
from hcicore.layout import LABELS
from hcicore.digest import sha256_file
from iso.bootargs import ACTIONS, CONSOLES, live_root_cdlabel, volume_label
from iso.httpserve import serve_directory
from iso.lab import Lab
from iso.pxe import pxe_cmdline


pytestmark = pytest.mark.vm

BOOT_TIMEOUT = 300.0  # TCG: boot takes 70-110 s on 2 cores (as tests/vm/conftest.py)
RESULT = r"HCIOS-INSTALL-(OK|FAILED)[^\r\n]*"
INSTALL_TIMEOUT = 1200.0  # live boot 70-110 s + install (dd + read-back + grub) under TCG
PASSWORD = "hcios-vm-test"
HOSTNAME = "hci-vm1"


@dataclass(frozen=True)
class Installed:
    lab: Lab
    disk: Path  # the installed disk: back overlays with it, never boot it directly
    key: Path
    serial: str
    data: Path  # install.data_device (/dev/vdb): had an ext4 filesystem before the install


def live_cmdline(artifacts: Any, extra: str) -> str:
    return " ".join([live_root_cdlabel(volume_label(artifacts.version)), CONSOLES["both"],
                     ACTIONS["install"][1], extra])


def node_config(key: Path, **install: object) -> str:
    cfg = {
        "install": {"device": "/dev/vda", "automatic": True, "power_action": "poweroff",
                    # TCG's CPU has no vmx/svm: the preflight warns instead of stopping
                    "skip_checks": True, **install},
        "node": {"hostname": HOSTNAME, "password": PASSWORD,
                 "ssh_authorized_keys": [key.with_suffix(".pub").read_text().strip()]},
    }
    return yaml.safe_dump(cfg)


def boot_live_installer(lab: Lab, artifacts: Any, name: str, disk: Path, extra: str, *, more: tuple[Path, ...] = ()):
    return lab.start_vm(name, cdrom=artifacts.iso, disks=[disk, *more], kernel=artifacts.pxe / "vmlinuz",
                        initrd=artifacts.pxe / "initrd.img", cmdline=live_cmdline(artifacts, extra),
                        disk_cache="unsafe")


def wait_stopped(vm, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while vm.is_running():
        if time.monotonic() > deadline:
            raise AssertionError(f"{vm.name} did not power off within {timeout:.0f}s:\n{vm.serial_tail()}")
        time.sleep(1)


@pytest.fixture(scope="session")
def install_lab() -> Iterator[Lab]:
    with Lab(prefix="hciinst") as lab:
        yield lab


@pytest.fixture(scope="session")
def ssh_key(install_lab: Lab) -> Path:
    key = install_lab.workdir / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hcios-vm-test", "-f", str(key)])
    return key


@pytest.fixture(scope="session")
def installed_disk(install_lab: Lab, artifacts: Any, ssh_key: Path) -> Installed:
    lab = install_lab
    serve = lab.workdir / "serve"
    serve.mkdir()
    (serve / "config.yaml").write_text(node_config(ssh_key, data_device="/dev/vdb", wipe=True))
    disk = lab.create_disk("installed", "20G")
    data = used_data_disk(lab)
    with serve_directory(serve) as port:
        vm = boot_live_installer(lab, artifacts, "install", disk,
                                 f"hci.install.automatic=true hci.install.config_url=http://10.0.2.2:{port}/config.yaml",
                                 more=(data,))
        match = vm.wait_for_serial(RESULT, INSTALL_TIMEOUT)
        seconds = time.monotonic() - vm.started
    serial = vm.serial_text()
    assert match.group(1) == "OK", f"install failed: {match.group(0)}\n{vm.serial_tail(80)}"
    wait_stopped(vm, 180)  # power_action: poweroff
    print(f"install VM: HCIOS-INSTALL-OK after {seconds:.0f}s (live boot + install)")
    return Installed(lab, disk, ssh_key, serial, data)


def used_data_disk(lab: Lab) -> Path:
    """A 2 GiB qcow2 disk holding an ext4 filesystem (made on the host, whole-disk)."""
    raw = lab.workdir / "data.img"
    with raw.open("wb") as f:
        f.truncate(2 * 1024**3)
    run(["mkfs.ext4", "-q", "-F", "-L", "old-data", str(raw)])
    disk = lab.workdir / "data.qcow2"
    run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(disk)])
    raw.unlink()
    return disk


def signatures(qcow2: Path) -> list[dict]:
    """What ``wipefs`` finds on a qcow2 disk as the guest sees it (read through a raw copy)."""
    raw = qcow2.with_suffix(".check.img")
    run(["qemu-img", "convert", "-O", "raw", str(qcow2), str(raw)])
    try:
        out = run(["wipefs", "--no-act", "--json", str(raw)]).stdout
    finally:
        raw.unlink()
    return json.loads(out)["signatures"] if out.strip() else []


def wait_ssh(port: int, key: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port=port, username="root", key_filename=str(key),
                           timeout=10, banner_timeout=10, auth_timeout=10, allow_agent=False,
                           look_for_keys=False)
            return
        except (paramiko.SSHException, OSError, EOFError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        finally:
            client.close()
        time.sleep(3)
    raise AssertionError(f"no SSH on 127.0.0.1:{port} within {timeout:.0f}s (last: {last})")


def host_for(port: int, key: Path) -> testinfra.host.Host:
    """A fresh testinfra host (no cached connection: the node reboots between uses)."""
    backend = testinfra.backend.get_backend(f"paramiko://root@127.0.0.1:{port}",
                                            ssh_identity_file=str(key), timeout=30)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


@pytest.fixture(scope="session")
def node(installed_disk: Installed) -> Iterator[tuple[object, Installed]]:
    lab = installed_disk.lab
    overlay = lab.create_disk("node1", backing=installed_disk.disk)
    vm = lab.start_vm("node1", disks=[overlay])
    vm.wait_for_serial(r"login:", BOOT_TIMEOUT + 120)
    print(f"installed node: login prompt after {time.monotonic() - vm.started:.0f}s")
    assert vm.ssh_port is not None
    wait_ssh(vm.ssh_port, installed_disk.key, 180)
    yield vm, installed_disk


def test_install_log_and_markers(installed_disk: Installed) -> None:
    text = installed_disk.serial
    assert "HCIOS-INSTALL-OK device=/dev/vda" in text
    assert "HCIOS-INSTALL-FAILED" not in text


def test_data_disk_is_left_blank_for_the_storage_agent(installed_disk: Installed) -> None:
    """install.data_device with wipe: true: the old ext4 is gone and nothing new was put there
    (the SPDK agent takes the disk raw)."""
    assert signatures(installed_disk.data) == []


def test_installed_node(node) -> None:
    vm, inst = node
    host = host_for(vm.ssh_port, inst.key)
    labels = host.check_output("lsblk -n -o PARTLABEL /dev/vda").split()
    assert labels == list(LABELS)
    assert host.check_output("hostname") == HOSTNAME
    shadow = host.check_output("getent shadow root").split(":")
    assert shadow[1].startswith(("$6$", "$y$")) and PASSWORD not in shadow[1]
    fstype, options = host.check_output("findmnt -n -o FSTYPE,OPTIONS /").split()
    assert fstype == "squashfs" and "ro" in options.split(",")
    assert host.check_output("findmnt -n -o FSTYPE /etc") == "overlay"
    assert "hci.slot=a" in host.file("/proc/cmdline").content_string
    assert host.file("/run/hci/oem/hcios/config.yaml").mode == 0o600
    log = host.file("/run/hci/oem/hcios/install.log").content_string
    assert "step write slot A: done" in log and PASSWORD not in log
    assert "step clear data disk: done" in log  # install.data_device, see the test above
    assert host.run("touch /hci-should-fail").rc != 0


def test_etc_and_var_survive_a_reboot(node) -> None:
    vm, inst = node
    token = secrets.token_hex(8)
    host = host_for(vm.ssh_port, inst.key)
    host_key = host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string
    host.check_output(f"echo {token} > /etc/hci-test-token && echo {token} > /var/lib/hci-test-token && sync")
    since = vm.mark()
    host.run("systemctl reboot")
    vm.wait_for_serial(r"login:", BOOT_TIMEOUT + 120, since=since + 1)
    wait_ssh(vm.ssh_port, inst.key, 180)
    again = host_for(vm.ssh_port, inst.key)
    assert again.file("/etc/hci-test-token").content_string.strip() == token
    assert again.file("/var/lib/hci-test-token").content_string.strip() == token
    # the SSH host key was made on the first boot and kept (cloud-init does not replace it)
    assert again.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string == host_key
    assert "hcios-vm-test" not in host_key and host_key.startswith("ssh-ed25519 ")


def test_installed_disk_boots_with_uefi(installed_disk: Installed) -> None:
    """The same disk boots through the ESP's removable-path grub (OVMF, no NVRAM entry)."""
    lab = installed_disk.lab
    overlay = lab.create_disk("node-uefi", backing=installed_disk.disk)
    vm = lab.start_vm("node-uefi", disks=[overlay], firmware="uefi")
    vm.wait_for_serial(r"login:", BOOT_TIMEOUT + 180)
    print(f"installed node (UEFI): login prompt after {time.monotonic() - vm.started:.0f}s")
    assert "hcios: booting slot a" in vm.serial_text()
    wait_ssh(vm.ssh_port, installed_disk.key, 180)
    assert host_for(vm.ssh_port, installed_disk.key).check_output("hostname") == HOSTNAME
    vm.destroy()


def _same_content(a: Path, b: Path) -> bool:
    """qemu-img compare: 0 when both images read back the same bytes (guest view)."""
    return subprocess.run(["qemu-img", "compare", "-q", str(a), str(b)]).returncode == 0


def test_used_disk_is_refused_and_left_unchanged(install_lab: Lab, artifacts: Any, ssh_key: Path) -> None:
    lab = install_lab
    raw = lab.workdir / "used.img"
    with raw.open("wb") as f:
        f.truncate(20 * 1024**3)
    run(["sgdisk", "--new=1:2048:+512M", "--change-name=1:somebody-else", "--new=2:0:+1G", str(raw)])
    disk = lab.workdir / "used.qcow2"
    run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(disk)])
    raw.unlink()
    before = lab.workdir / "used-before.qcow2"
    shutil.copyfile(disk, before)
    serve = lab.workdir / "serve-used"
    serve.mkdir()
    (serve / "config.yaml").write_text(node_config(ssh_key, wipe=False))
    with serve_directory(serve) as port:
        vm = boot_live_installer(lab, artifacts, "used", disk,
                                 f"hci.install.automatic=true hci.install.config_url=http://10.0.2.2:{port}/config.yaml")
        match = vm.wait_for_serial(RESULT, INSTALL_TIMEOUT)
    assert match.group(1) == "FAILED", match.group(0)
    assert "not empty" in match.group(0) and "install.wipe: true" in match.group(0)
    # the refusal names what is on the disk: the partition table and the foreign partition
    assert "gpt" in match.group(0) and "'somebody-else'" in match.group(0)
    assert vm.is_running()  # the live system stays up showing the error, no reboot
    vm.destroy()
    assert _same_content(before, disk), "the refused disk was changed"


def test_unreachable_config_url_fails_clearly(install_lab: Lab, artifacts: Any) -> None:
    lab = install_lab
    disk = lab.create_disk("blank", "20G")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    vm = boot_live_installer(lab, artifacts, "unreachable", disk,
                             f"hci.install.automatic=true hcios.fetch_budget=30 "
                             f"hci.install.config_url=http://10.0.2.2:{port}/config.yaml")
    match = vm.wait_for_serial(RESULT, BOOT_TIMEOUT + 240)
    assert match.group(1) == "FAILED", match.group(0)
    assert f"config URL http://10.0.2.2:{port}/config.yaml: gave up after" in match.group(0)
    assert vm.is_running()
    vm.destroy()
    # nothing was written: the disk still reads as all zeros, like a fresh one
    reference = lab.create_disk("blank-reference", "20G")
    assert _same_content(reference, disk), "nothing may be written after a failed config fetch"


def test_network_boot_install_checks_the_image_then_boots_from_disk(install_lab: Lab, artifacts: Any,
                                                                   ssh_key: Path) -> None:
    """A rack's unattended path: network boot (kernel and initrd, the squashfs fetched over HTTP
    by the initramfs, its digest on the boot line as pxe/boot.ipxe puts it), the config from a URL,
    an install from the downloaded image to a blank disk, then the node boots from that disk."""
    lab = install_lab
    serve = lab.workdir / "serve-pxe"
    serve.mkdir()
    for name in ("vmlinuz", "initrd.img", "rootfs.squashfs"):
        (serve / name).symlink_to(artifacts.pxe / name)
    (serve / "config.yaml").write_text(node_config(ssh_key))
    digest = sha256_file(artifacts.pxe / "rootfs.squashfs")
    disk = lab.create_disk("pxe-installed", "20G")
    server = serve_directory(serve)
    with server as port:
        vm = lab.start_vm("pxe-install", disks=[disk], kernel=artifacts.pxe / "vmlinuz",
                          initrd=artifacts.pxe / "initrd.img", disk_cache="unsafe",
                          cmdline=pxe_cmdline(f"10.0.2.2:{port}", sha256=digest,
                                              extra="hci.install.automatic=true hci.install.config_url="
                                                    f"http://10.0.2.2:{port}/config.yaml"))
        match = vm.wait_for_serial(RESULT, INSTALL_TIMEOUT)
    assert match.group(1) == "OK", f"install failed: {match.group(0)}\n{vm.serial_tail(80)}"
    assert ("GET", "/rootfs.squashfs", 200) in server.requests
    wait_stopped(vm, 180)
    node_vm = lab.start_vm("pxe-node", disks=[lab.create_disk("pxe-node", backing=disk)])
    node_vm.wait_for_serial(r"login:", BOOT_TIMEOUT + 120)
    wait_ssh(node_vm.ssh_port, ssh_key, 180)
    host = host_for(node_vm.ssh_port, ssh_key)
    log = host.file("/run/hci/oem/hcios/install.log").content_string
    # the downloaded image was checked against the boot line's digest before the disk was touched
    assert f"image matches the expected sha256 {digest}" in log
    assert log.index("image matches the expected") < log.index("sgdisk --clear")
    assert f"slot A verified: sha256 {digest}" in log
    assert host.check_output("hostname") == HOSTNAME
    node_vm.destroy()
