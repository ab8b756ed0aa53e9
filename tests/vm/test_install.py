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
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hcicore.command import run
from hcicore.digest import sha256_file
from iso.httpserve import serve_directory
from iso.lab import Lab
from iso.pxe import pxe_cmdline

from . import dpdk_checks, mgmt_checks
from .nodes import (BOOT_TIMEOUT, HOSTNAME, INSTALL_TIMEOUT, RESULT, Installed, boot_live_installer, host_for,
                    node_config, signatures, wait_ssh, wait_stopped)

pytestmark = pytest.mark.vm


def test_install_log_and_markers(installed_disk: Installed) -> None:
    text = installed_disk.serial
    assert "HCIOS-INSTALL-OK device=/dev/vda" in text
    assert "HCIOS-INSTALL-FAILED" not in text


def test_data_disk_is_left_blank_for_the_storage_agent(installed_disk: Installed) -> None:
    """install.data_device with data_wipe: true: the old ext4 is gone and nothing new was put there
    (the SPDK agent takes the disk raw)."""
    assert signatures(installed_disk.data) == []


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


# The network-booted machine's disk has 4096-byte sectors (4Kn), as many new server disks do.
SECTOR = 4096


def _pxe_install(lab: Lab, artifacts: Any, name: str, disk: Path, port: int, digest: str, config: str):
    """An automatic install from a network boot, the config from the test's HTTP server; the
    machine's only serial port is COM2 (a BMC's serial-over-LAN), the kernel's console ttyS1;
    its disk is 4Kn, its firmware UEFI (Secure Boot off: OVMF's direct kernel boot loads only
    kernels its own keys sign)."""
    return lab.start_vm(name, disks=[disk], kernel=artifacts.pxe / "vmlinuz", initrd=artifacts.pxe / "initrd.img",
                        disk_cache="unsafe", serial_port=1, sector_size=SECTOR, firmware="uefi",
                        cmdline=pxe_cmdline(f"10.0.2.2:{port}", console="ttyS1", sha256=digest,
                                            extra=f"hci.install.automatic=true hci.install.config_url="
                                                  f"http://10.0.2.2:{port}/{config} hci.install.installed_url="
                                                  f"http://10.0.2.2:{port}/installed/{name}"))


def test_network_boot_install_checks_the_image_then_boots_from_disk(install_lab: Lab, artifacts: Any,
                                                                   ssh_key: Path) -> None:
    """A rack's unattended path: network boot (kernel and initrd, the squashfs fetched over HTTP
    by the initramfs, its digest on the boot line as pxe/boot.ipxe puts it), the config from a URL,
    an install from the downloaded image to a blank 4Kn disk, then the node boots from that disk
    with UEFI (4Kn disks boot only so): Debian's shim and grub, Secure Boot off. Its management
    network is br-mgmt (an active-backup bond of two NICs, VLAN 100): the test reaches it only
    there, and again with one NIC unplugged (tests/vm/mgmt_checks.py). Its DPDK data network
    passes traffic to the host (tests/vm/dpdk_checks.py)."""
    lab = install_lab
    serve = lab.workdir / "serve-pxe"
    serve.mkdir()
    for name in ("vmlinuz", "initrd.img", "rootfs.squashfs"):
        (serve / name).symlink_to(artifacts.pxe / name)
    # br-mgmt on two bonded NICs with a VLAN, and a DPDK data network on a NIC behind an
    # emulated IOMMU: the node gets those NICs below
    network = {**mgmt_checks.NETWORK, "dpdk": dpdk_checks.DPDK}
    (serve / "config.yaml").write_text(node_config(ssh_key, network=network, vip=mgmt_checks.VIP))
    digest = sha256_file(artifacts.pxe / "rootfs.squashfs")
    disk = lab.create_disk("pxe-installed", "20G")
    server = serve_directory(serve)
    with server as port:
        vm = _pxe_install(lab, artifacts, "pxe-install", disk, port, digest, "config.yaml")
        match = vm.wait_for_serial(RESULT, INSTALL_TIMEOUT)
    assert match.group(1) == "OK", f"install failed: {match.group(0)}\n{vm.serial_tail(80)}"
    assert ("GET", "/rootfs.squashfs", 200) in server.requests
    # the marker boot.ipxe checks: this machine is installed (test_boot's iPXE test follows it)
    assert ("PUT", "/installed/pxe-install", 201) in server.requests
    assert json.loads((serve / "installed/pxe-install").read_text())["hostname"] == HOSTNAME
    wait_stopped(vm, 180)
    # the node kept the installer's console: grub's menu and the login prompt on COM2 (ttyS1)
    # the same machine: the UEFI variables the installer's efibootmgr wrote come along
    with mgmt_checks.access_port() as port:
        node_vm = lab.start_vm("pxe-node", disks=[lab.create_disk("pxe-node", backing=disk)], serial_port=1,
                               firmware="uefi", sector_size=SECTOR, nvram=vm.spec.nvram, ssh=False,
                               uplinked=port.uplinked, data_nic=True)
        node_vm.wait_for_serial(r"login:", BOOT_TIMEOUT + 120)
        wait_ssh(port.ssh_port, ssh_key, 180)
        dpdk_checks.wait_for_hci_dpdk(host_for(port.ssh_port, ssh_key))  # its restart of OVS is over
        _check_pxe_node(node_vm, ssh_key, port.ssh_port, digest)
        mgmt_checks.check_br_mgmt(node_vm, port, ssh_key)
        # last (its poll thread keeps a vCPU busy): the DPDK data path passes traffic to the host
        dpdk_checks.passes_traffic_to_the_host(host_for(port.ssh_port, ssh_key), lab.workdir)
    node_vm.destroy()
    # PXE still first in the boot order: the installer boots again with a config that may wipe.
    # An installed node is not erased without install.reinstall; the disk is left as it was.
    (serve / "config-wipe.yaml").write_text(node_config(ssh_key, wipe=True))
    again = lab.create_disk("pxe-again", backing=disk)
    with serve_directory(serve) as port:
        vm = _pxe_install(lab, artifacts, "pxe-again", again, port, digest, "config-wipe.yaml")
        match = vm.wait_for_serial(RESULT, INSTALL_TIMEOUT)
    assert match.group(1) != "OK" and "install.reinstall" in match.group(0), match.group(0)
    assert not (serve / "installed/pxe-again").exists()  # a refused install marks nothing
    vm.destroy()
    assert _same_content(again, disk)


def _check_pxe_node(node_vm: Any, ssh_key: Path, ssh_port: int, digest: str) -> None:
    host = host_for(ssh_port, ssh_key)
    log = host.file("/run/hci/oem/hcios/install.log").content_string
    # the downloaded image was checked against the boot line's digest before the disk was touched
    assert f"image matches the expected sha256 {digest}" in log
    assert log.index("image matches the expected") < log.index("sgdisk --clear")
    assert f"slot A verified: sha256 {digest}" in log
    assert host.check_output("hostname") == HOSTNAME
    assert "console=ttyS1,115200n8" in host.file("/proc/cmdline").content_string
    assert "hcios: booting slot a" in node_vm.serial_text()  # grub's own line, on COM2
    assert host.check_output("blockdev --getss /dev/vda") == str(SECTOR)
    assert "UEFI boot loader: Debian's signed shim and grub" in log
    assert host.check_output("mokutil --sb-state").splitlines()[0] == "SecureBoot disabled"
    # it booted through the NVRAM entry the install made, first in the boot order
    efi = host.check_output("efibootmgr")
    current = re.search(r"^BootCurrent: (\w+)$", efi, re.M).group(1)
    assert re.search(rf"^Boot{current}\* hcios(\t|$)", efi, re.M), efi
    assert re.search(r"^BootOrder: (\w+)", efi, re.M).group(1) == current, efi
    assert "UEFI boot entry not set" not in log
