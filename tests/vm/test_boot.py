"""Boot the built ISO (SeaBIOS and OVMF) and the PXE artifacts under qemu TCG to the live banner.

Artifacts: see tests/vm/conftest.py (HCIOS_TEST_OUT or the pipeline's ``built_image``).
Each test waits for the fixed marker the live system prints on the serial console; on a timeout
the error carries the last 40 lines of the serial log.
"""
from __future__ import annotations

import os
import time

import pytest

from iso.httpserve import serve_directory
from iso.lab import LIVE_MARKER
from iso.pxe import pxe_cmdline

pytestmark = pytest.mark.vm

# TCG on 2 cores: 55-110 s on an idle host, up to 180 s while other builds load it.
BOOT_TIMEOUT = float(os.environ.get("HCIOS_BOOT_TIMEOUT", "300"))


def _boot_and_wait(vm, artifacts) -> float:
    match = vm.wait_for_serial(LIVE_MARKER, BOOT_TIMEOUT)
    seconds = time.monotonic() - vm.started
    assert match.group(1) == artifacts.version
    assert "hci install" in vm.serial_text()  # the banner tells what to do next
    assert "SSH takes keys only" in vm.serial_text()  # and the truth about SSH
    # A login (autologin shell on the live medium) follows the banner on the serial console.
    vm.wait_for_serial(r"root@[\w.-]+:~#|login:", 120, since=match.end())
    prompt = time.monotonic() - vm.started
    print(f"{vm.name}: live marker after {seconds:.0f}s, login after {prompt:.0f}s")
    return seconds


@pytest.mark.parametrize("firmware", ["bios", "uefi-secboot"])
def test_iso_boots_to_live_marker(lab, artifacts, firmware: str) -> None:
    # BIOS: the only serial port is COM2, as on a server whose serial-over-LAN is COM2 (iDRAC,
    # iLO): grub's menu shows there, and its ttyS1 entry is chosen with the keyboard.
    # UEFI: Secure Boot enforced, Microsoft's keys enrolled (OVMF secboot): shim, Debian's signed
    # grub and kernel.
    com2 = firmware == "bios"
    vm = lab.start_vm(f"iso-{firmware}", cdrom=artifacts.iso, firmware=firmware, serial_port=int(com2))
    if com2:
        vm.wait_for_serial("Other consoles", BOOT_TIMEOUT)
        mark = vm.mark()
        vm.send_keys("down", "down", "down", "enter")  # the 4th item: the "Other consoles" submenu
        vm.wait_for_serial("serial console ttyS1", 60, since=mark)
        vm.send_keys("down", "down", "down", "enter")  # ttyS0's three entries, then install on ttyS1
    _boot_and_wait(vm, artifacts)
    text = vm.serial_text()
    # grub's menu was drawn on the serial port too (terminal_output ... serial_com0/serial_com1)
    assert f"Install hcios {artifacts.version}" in text
    if com2:
        assert "console=ttyS1,115200n8 hcios.live=install" in text  # the kernel line, on COM2
    if firmware == "uefi-secboot":  # the kernel says so itself, and so locks itself down
        assert "EFI stub: UEFI Secure Boot is enabled." in text
        assert "secureboot: Secure boot enabled" in text and "Kernel is locked down from EFI Secure Boot" in text
    # the overlay root over the squashfs mounted at once (dracut#1820 fixed by hci-live)
    assert "Mounted sysroot.mount" in text
    assert "failed to resolve '/run/overlayfs'" not in text
    assert "Failed to mount sysroot.mount" not in text


def test_pxe_boot_fetches_rootfs_over_http(lab, artifacts) -> None:
    server = serve_directory(artifacts.pxe)
    with server as port:
        vm = lab.start_vm(
            "pxe",
            kernel=artifacts.pxe / "vmlinuz",
            initrd=artifacts.pxe / "initrd.img",
            cmdline=pxe_cmdline(f"10.0.2.2:{port}", action="shell"),
        )
        _boot_and_wait(vm, artifacts)
    # the initramfs (dracut livenet) downloaded the whole squashfs from the loopback server
    assert ("GET", "/rootfs.squashfs", 200) in server.requests, server.requests
    assert f"root=live:http://10.0.2.2:{port}/rootfs.squashfs" in vm.serial_text()


def test_ipxe_boot_script_chains_kernel_initrd_and_rootfs(lab, artifacts, tmp_path) -> None:
    """The real PXE path: qemu's iPXE ROM gets a boot file over DHCP, runs the operator's start
    script, which chains pxe/boot.ipxe; that loads vmlinuz and initrd.img over HTTP and the
    initramfs fetches rootfs.squashfs. ``hci-args`` must reach the kernel command line, after the
    installer's marker URL for this machine. A machine whose marker is there is not installed
    again: the script leaves iPXE without loading the installer."""
    for name in ("vmlinuz", "initrd.img", "rootfs.squashfs", "boot.ipxe"):
        (tmp_path / name).symlink_to(artifacts.pxe / name)
    server = serve_directory(tmp_path)
    with server as port:
        (tmp_path / "start.ipxe").write_text(
            "#!ipxe\n"
            f"set base-url 10.0.2.2:{port}\n"
            "set hci-args hci.install.automatic=false\n"
            "chain http://${base-url}/boot.ipxe && exit\n"
            "echo start.ipxe: still here\n"
            "chain http://${base-url}/not-reached\n")
        vm = lab.start_vm("ipxe", netboot_url=f"http://10.0.2.2:{port}/start.ipxe")
        _boot_and_wait(vm, artifacts)
        vm.destroy()
        paths = [path for _, path, status in server.requests if status == 200]
        assert paths[:3] == ["/start.ipxe", "/boot.ipxe", "/vmlinuz"], server.requests
        assert "/initrd.img" in paths and "/rootfs.squashfs" in paths
        cmdline = next(line for line in vm.serial_text().splitlines() if "Command line:" in line)
        assert f"root=live:http://10.0.2.2:{port}/rootfs.squashfs" in cmdline
        marker = f"/installed/{vm.spec.mac.replace(':', '-')}"
        assert cmdline.rstrip().endswith(f"hci.install.installed_url=http://10.0.2.2:{port}{marker} "
                                         "hci.install.automatic=false"), cmdline
        assert ("GET", marker, 404) in server.requests  # looked for, not there: installed
        # the same machine once installed (the installer PUT its marker): no installer this time
        (tmp_path / "installed").mkdir()
        (tmp_path / marker.lstrip("/")).write_text('{"hostname": "node1"}')
        seen = len(server.requests)
        again = lab.start_vm("ipxe-installed", netboot_url=f"http://10.0.2.2:{port}/start.ipxe", mac=vm.spec.mac)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while ("GET", marker, 200) not in server.requests[seen:]:
            assert time.monotonic() < deadline, server.requests[seen:]
            time.sleep(1)
        time.sleep(10)  # iPXE would ask for the kernel at once
        again.destroy()
    # (and the start script's `&& exit` left iPXE: its next line would fetch /not-reached)
    assert [path for _, path, _ in server.requests[seen:]] == ["/start.ipxe", "/boot.ipxe", marker], \
        server.requests[seen:]
