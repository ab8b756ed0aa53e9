"""Fast checks of the ISO, PXE and lab building blocks (no root, no qemu)."""
from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest
from click.testing import CliRunner

from hcicore.errors import HciError
from iso.bootargs import menu_entries, volume_label
from iso.bootfiles import resolve_in_tree
from iso.domain import DATA_NIC_PCI, QEMU_NS, Uplinked, VMSpec, domain_xml
from iso.grub import render_grub_cfg
from iso.lab import VM, clean_text, free_port
from iso.pxe import pxe_cmdline, render_boot_ipxe
from installer.source import digest_from_cmdline

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("version,label", [
    ("1.2.0", "HCIOS_1_2_0"),
    ("0.0.1-dev+g1a2b", "HCIOS_0_0_1_DEV_G1A2B"),
    ("2024.10.1-rc.1-very-long-suffix-here", "HCIOS_2024_10_1_RC_1_VERY_LONG_S"),
])
def test_volume_label_follows_iso9660_rules(version: str, label: str) -> None:
    assert volume_label(version) == label
    assert len(volume_label(version)) <= 32
    assert re.fullmatch(r"[A-Z0-9_]+", volume_label(version))


def test_default_entry_writes_to_vga_and_serial_with_serial_last() -> None:
    main, other = menu_entries("1.0")
    default = main[0]
    assert default.id == "install-both"
    consoles = re.findall(r"console=(\S+)", default.args)
    assert consoles == ["tty0", "ttyS0,115200n8"]  # the last one is /dev/console
    ids = {e.id for e in main + other}
    for action in ("install", "auto", "shell"):
        for console in ("both", "ttyS0", "ttyS1", "vga"):
            assert f"{action}-{console}" in ids
    assert all("hci.install.mode" not in e.args for e in main + other)


def test_grub_cfg_boots_the_live_squashfs_by_label() -> None:
    cfg = render_grub_cfg(version="1.0", arch="amd64", label="HCIOS_1_0")
    for unit in (0, 1):  # COM1 and COM2, each only if the machine has it
        assert f"if serial --unit={unit} --speed=115200" in cfg
        assert f"terminal_input --append serial_com{unit}" in cfg and f"terminal_output --append serial_com{unit}" in cfg
    entries = re.findall(r"linux /boot/vmlinuz \$\{hcios_live\} (.*)", cfg)
    assert len(entries) == 12
    assert 'set hcios_live="root=live:CDLABEL=HCIOS_1_0 rd.live.image"' in cfg
    assert "\nexport hcios_live\n" in cfg  # else the submenu's entries boot with no root= at all
    assert cfg.count("initrd /boot/initrd.img") == 12


def test_boot_ipxe_fetches_rootfs_over_http_and_passes_hci_args() -> None:
    script = render_boot_ipxe("1.0", "ab" * 32)
    kernel_line = next(line for line in script.splitlines() if line.startswith("kernel "))
    assert kernel_line.startswith("kernel http://${base-url}/vmlinuz initrd=initrd.img ")
    assert "root=live:http://${base-url}/rootfs.squashfs rd.live.image ip=dhcp rd.neednet=1" in kernel_line
    assert kernel_line.endswith(" hci.install.installed_url=${hci-markers}/${mac:hexhyp} ${hci-args}")
    assert "isset ${hci-markers} || set hci-markers http://${base-url}/installed\n" in script
    # an installed machine (its marker is there) leaves iPXE, unless hci-reinstall is set
    assert "isset ${hci-reinstall} && goto install ||\n" in script
    assert "imgfetch --name hci-installed ${hci-markers}/${mac:hexhyp} && goto installed ||" in script
    assert script.index(":installed") > script.index("\nboot\n") and "booting its disk\nexit\n" in script
    assert "set hci-installed 1\n" in script
    assert pxe_cmdline("10.0.2.2:8080", action="shell", extra="hci.x=1").split() == [
        "root=live:http://10.0.2.2:8080/rootfs.squashfs", "rd.live.image", "ip=dhcp",
        "rd.neednet=1", "console=tty0", "console=ttyS0,115200n8", "hcios.live=shell", "hci.x=1"]


def test_resolve_in_tree_never_leaves_the_tree(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "vmlinuz-6").write_text("k")
    (tmp_path / "boot" / "vmlinuz").symlink_to("vmlinuz-6")
    (tmp_path / "vmlinuz").symlink_to("/boot/vmlinuz")
    (tmp_path / "escape").symlink_to("/etc/passwd")
    (tmp_path / "loop").symlink_to("loop")
    assert resolve_in_tree(tmp_path, "vmlinuz") == tmp_path / "boot" / "vmlinuz-6"
    assert resolve_in_tree(tmp_path, "escape") is None  # /etc/passwd of the tree, not the host
    with pytest.raises(HciError):
        resolve_in_tree(tmp_path, "loop")


def test_domain_xml_uefi_direct_kernel_and_port_forward(tmp_path: Path) -> None:
    spec = VMSpec(name="t", serial_log=tmp_path / "s.log", firmware="uefi",
                  nvram=tmp_path / "vars.fd", kernel=Path("/k"), initrd=Path("/i"),
                  cmdline="console=ttyS0", ssh_port=2222, disks=[tmp_path / "d.qcow2"])
    root = ET.fromstring(domain_xml(spec))
    assert root.get("type") == "qemu"
    assert root.find("os/type").get("machine") == "q35"
    assert root.find("os/loader").text.endswith("OVMF_CODE.fd")
    assert root.find("os/nvram").text == str(tmp_path / "vars.fd")
    assert root.find("os/cmdline").text == "console=ttyS0"
    assert root.find("os/boot") is None
    assert root.find("memory").text == "2048"
    serial = root.find("devices/serial")
    assert serial.get("type") == "file"
    assert serial.find("source").get("path") == str(tmp_path / "s.log")
    args = [a.get("value") for a in root.iter(f"{{{QEMU_NS}}}arg")]
    assert "user,id=hcinet0,hostfwd=tcp:127.0.0.1:2222-:22" in args
    assert root.find("devices/disk/target").get("dev") == "vda"
    assert not any("iommu" in a for a in args)
    spec.data_nic = True  # a DPDK data NIC: behind an emulated IOMMU, at the PCI address configs name
    args = [a.get("value") for a in ET.fromstring(domain_xml(spec)).iter(f"{{{QEMU_NS}}}arg")]
    assert "intel-iommu,intremap=on,aw-bits=48" in args
    nic = next(a for a in args if "netdev=hcidata0" in a)
    assert "iommu_platform=on" in nic and "disable-legacy=on" in nic and "addr=0x11" in nic
    assert DATA_NIC_PCI == "0000:00:11.0"


def test_domain_xml_uplinked_nics_share_a_hub_with_a_udp_uplink(tmp_path: Path) -> None:
    up = Uplinked(macs=("52:54:00:b0:0d:01", "52:54:00:b0:0d:02"), port=40000, peer_port=40001)
    root = ET.fromstring(domain_xml(VMSpec(name="t", serial_log=tmp_path / "s.log", uplinked=up)))
    args = [a.get("value") for a in root.iter(f"{{{QEMU_NS}}}arg")]
    assert "socket,id=hciuphubup,udp=127.0.0.1:40001,localaddr=127.0.0.1:40000" in args
    assert "hubport,id=hciuphub0,hubid=7,netdev=hciuphubup" in args
    nics = [a for a in args if a.startswith("virtio-net-pci,netdev=hciuphub")]
    assert nics == ["virtio-net-pci,netdev=hciuphub1,mac=52:54:00:b0:0d:01,id=uplinked0,bus=pcie.0,addr=0x12",
                    "virtio-net-pci,netdev=hciuphub2,mac=52:54:00:b0:0d:02,id=uplinked1,bus=pcie.0,addr=0x13"]


def test_switchport_tags_like_an_access_port() -> None:
    from tests.vm.switchport import tag, untag
    frame = bytes.fromhex("ffffffffffff" "525400b00d01" "0806") + b"payload"
    tagged = tag(frame, 100)
    assert tagged[12:16] == bytes.fromhex("81000064")
    assert untag(tagged, 100) == frame
    assert untag(tagged, 101) is None and untag(frame, 100) is None  # other VLANs, untagged: dropped


def test_domain_xml_secure_boot_firmware_and_4kn_disks(tmp_path: Path) -> None:
    spec = VMSpec(name="t", serial_log=tmp_path / "s.log", firmware="uefi-secboot", nvram=tmp_path / "vars.fd",
                  disks=[tmp_path / "d.qcow2"], sector_size=4096)
    root = ET.fromstring(domain_xml(spec))
    loader = root.find("os/loader")
    assert loader.text.endswith("OVMF_CODE_4M.secboot.fd") and loader.get("secure") == "yes"
    assert root.find("features/smm").get("state") == "on"
    blockio = root.find("devices/disk/blockio")
    assert (blockio.get("logical_block_size"), blockio.get("physical_block_size")) == ("4096", "4096")
    plain = ET.fromstring(domain_xml(VMSpec(name="t", serial_log=tmp_path / "s.log", firmware="uefi",
                                            nvram=tmp_path / "vars.fd", disks=[tmp_path / "d.qcow2"])))
    assert plain.find("features/smm") is None and plain.find("devices/disk/blockio") is None
    assert plain.find("os/loader").get("secure") is None


def test_domain_xml_bios_cdrom_boot_order(tmp_path: Path) -> None:
    root = ET.fromstring(domain_xml(VMSpec(name="t", serial_log=tmp_path / "s",
                                           cdrom=Path("/x.iso"))))
    assert root.find("os/loader") is None
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]
    cd = root.find("devices/disk[@device='cdrom']")
    assert cd.find("source").get("file") == "/x.iso"
    assert cd.find("readonly") is not None


def test_clean_text_strips_colour_codes() -> None:
    assert clean_text(b"[\x1b[0;32m  OK  \x1b[0m] Started\r\n") == "[  OK  ] Started\n"


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.fixture
def test_conn():
    # libvirt's built-in test driver: a real libvirt connection with a running domain "test".
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


def test_wait_for_serial_finds_marker_after_offset(tmp_path: Path, test_conn) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"HCIOS-LIVE-READY version=1\nreboot\nHCIOS-LIVE-READY version=2\n")
    vm = VM(test_conn, VMSpec(name="test", serial_log=log), time.monotonic())
    first = vm.wait_for_serial(r"version=(\d)", 5)
    assert first.group(1) == "1"
    assert vm.wait_for_serial(r"version=(\d)", 5, since=first.end()).group(1) == "2"


def test_wait_for_serial_timeout_reports_serial_tail(tmp_path: Path, test_conn) -> None:
    log = tmp_path / "serial.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    vm = VM(test_conn, VMSpec(name="test", serial_log=log), time.monotonic())
    with pytest.raises(HciError) as err:
        vm.wait_for_serial("never", 1, poll=0.1)
    message = str(err.value)
    assert "timed out after 1s" in message
    assert "line 99" in message and "line 60" in message and "line 59" not in message


def test_wait_for_serial_stops_early_when_vm_is_gone(tmp_path: Path, test_conn) -> None:
    log = tmp_path / "serial.log"
    log.write_text("Kernel panic\n")
    test_conn.lookupByName("test").destroy()
    vm = VM(test_conn, VMSpec(name="test", serial_log=log), time.monotonic())
    start = time.monotonic()
    with pytest.raises(HciError, match="stopped before") as err:
        vm.wait_for_serial("never", 60)
    assert time.monotonic() - start < 5
    assert "Kernel panic" in str(err.value)


def test_hci_lab_is_registered() -> None:
    from hcicore.cli import main

    result = CliRunner().invoke(main, ["lab", "--help"])
    assert result.exit_code == 0, result.output
    for sub in ("boot-iso", "boot-pxe", "destroy", "list"):
        assert sub in result.output


def test_hci_works_without_libvirt_python() -> None:
    """libvirt-python is optional (the lab extra): hci and `hci lab --help` must not need it."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['libvirt'] = None\n"
        "from click.testing import CliRunner\n"
        "from hcicore.cli import main\n"
        "r = CliRunner().invoke(main, ['lab', '--help']); assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(main, ['lab', 'list']); print(r.exit_code, r.output)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1 error: hci lab needs libvirt-python"), proc.stdout


def test_network_boot_carries_the_image_digest_for_the_installer() -> None:
    digest = "ab" * 32
    line = pxe_cmdline("10.0.2.2:8080", sha256=digest)
    assert f"hcios.image_sha256={digest}" in line.split()
    assert digest_from_cmdline(line) == digest
    kernel_line = next(ln for ln in render_boot_ipxe("1.0", digest).splitlines() if ln.startswith("kernel "))
    assert digest_from_cmdline(kernel_line) == digest and kernel_line.endswith("${hci-args}")
    assert digest_from_cmdline("quiet hcios.live=install") is None
    with pytest.raises(HciError, match="does not hold a sha256"):
        digest_from_cmdline("hcios.image_sha256=nothex")
