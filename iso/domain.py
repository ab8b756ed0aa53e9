"""libvirt domain XML for lab VMs: TCG (domain type ``qemu``), q35, SeaBIOS or OVMF.

Networking is qemu user mode added through the qemu XML namespace: libvirt 9.0's
``<interface type='user'>`` only supports ``<portForward>`` with the passt backend, which Debian
12 does not ship by default, so the SSH forward is a plain ``hostfwd`` on ``-netdev user``.
In user mode the guest is 10.0.2.15 and the host's loopback is reachable as 10.0.2.2.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

URI = "qemu:///system"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")
# Secure Boot enforced: OVMF built with SMM (its variable store can't be written around the
# firmware) and a variable store with Microsoft's keys enrolled, as servers ship.
OVMF_CODE_SECBOOT = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_VARS_MS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
EMULATOR = Path("/usr/bin/qemu-system-x86_64")

Firmware = Literal["bios", "uefi", "uefi-secboot"]
DATA_NIC_SLOT = "0x11"
DATA_NIC_PCI = "0000:00:11.0"
SerialMode = Literal["file", "pty"]


@dataclass(frozen=True)
class Uplinked:
    """NICs on one qemu hub whose uplink is a UDP socket pair on 127.0.0.1 (one datagram per
    frame): a test's process at ``peer_port`` plays the switch. The NICs' device ids are
    ``<prefix>0``, ``<prefix>1``... (for ``set_link``)."""
    macs: tuple[str, ...]
    port: int          # qemu's end
    peer_port: int     # the switch's end
    prefix: str = "uplinked"
    first_slot: int = 0x12


@dataclass
class VMSpec:
    name: str
    serial_log: Path
    memory_mib: int = 2048
    vcpus: int = 2
    # TCG's default qemu64 lacks SSE4.2 and POPCNT (x86-64-v2), which every server since 2008 has
    # and which the SPDK engine and OVS-DPDK are built for: the lab's machines are Nehalem
    cpu_model: str | None = "Nehalem"
    firmware: Firmware = "bios"
    nvram: Path | None = None            # per-VM copy of OVMF_VARS (uefi) or OVMF_VARS_MS (uefi-secboot)
    cdrom: Path | None = None
    disks: list[Path] = field(default_factory=list)   # qcow2, virtio vda, vdb, ... with serial hcios-vda, ...
    disk_cache: str | None = None        # e.g. "unsafe" for throwaway disks; None = qemu default
    sector_size: int = 512               # logical and physical: 4096 makes 4Kn disks
    kernel: Path | None = None           # direct kernel boot
    initrd: Path | None = None
    cmdline: str | None = None
    ssh_port: int | None = None          # host 127.0.0.1:<port> -> guest :22
    netboot_url: str | None = None       # iPXE (qemu's NIC ROM) boots this URL first
    mac: str = "52:54:00:12:34:56"
    serial_mode: SerialMode = "file"     # "pty": `virsh console` works, output still logged
    serial_port: int = 0                 # 0: COM1 (ttyS0); 1: COM2 (ttyS1) as the only serial port
    vnc: bool = False                    # VGA on a VNC server bound to 127.0.0.1
    boot_order: tuple[str, ...] = ("cdrom", "hd")
    # An i6300esb watchdog, as servers have one. Off by default: under TCG one guest hung in
    # shutdown with an interrupt flood while it was attached (docs/upgrade.md).
    watchdog: bool = False
    uplinked: Uplinked | None = None     # more NICs, on a hub with a UDP uplink
    # A NIC for a DPDK data network: virtio behind an emulated Intel IOMMU (vfio-pci needs one;
    # iommu_platform makes the NIC's DMA go through it; 48-bit addresses, since DPDK maps its
    # memory at virtual addresses as IOVAs), at PCI 0000:00:11.0, on its own user network
    # 10.0.3.0/24 (the host is 10.0.3.2 there)
    data_nic: bool = False


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _os(root: ET.Element, spec: VMSpec) -> None:
    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="q35")
    if spec.firmware in ("uefi", "uefi-secboot"):
        if spec.nvram is None:
            raise ValueError("uefi needs a per-VM nvram file")
        if spec.firmware == "uefi":
            _sub(os_el, "loader", str(OVMF_CODE), readonly="yes", type="pflash")
        else:  # libvirt adds -global driver=cfi.pflash01,property=secure,value=on
            _sub(os_el, "loader", str(OVMF_CODE_SECBOOT), readonly="yes", secure="yes", type="pflash")
        _sub(os_el, "nvram", str(spec.nvram))
    if spec.kernel is not None:
        _sub(os_el, "kernel", str(spec.kernel))
        if spec.initrd is not None:
            _sub(os_el, "initrd", str(spec.initrd))
        if spec.cmdline:
            _sub(os_el, "cmdline", spec.cmdline)
    elif spec.netboot_url is None:  # netboot: the NIC's bootindex decides
        for dev in spec.boot_order:
            _sub(os_el, "boot", dev=dev)


def _serial(devices: ET.Element, spec: VMSpec) -> None:
    if spec.serial_mode == "file":
        # A file, not a socket: a socket nobody reads stalls the guest.
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=str(spec.serial_log), append="off")
    else:
        serial = _sub(devices, "serial", type="pty")
        _sub(serial, "log", file=str(spec.serial_log), append="off")
    _sub(serial, "target", port=str(spec.serial_port))


def domain_xml(spec: VMSpec) -> str:
    ET.register_namespace("qemu", QEMU_NS)
    root = ET.Element("domain", type="qemu")
    _sub(root, "name", spec.name)
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus))
    if spec.cpu_model:
        cpu = _sub(root, "cpu", mode="custom", match="exact", check="none")
        _sub(cpu, "model", spec.cpu_model, fallback="forbid")
    _os(root, spec)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if spec.firmware == "uefi-secboot":
        _sub(features, "smm", state="on")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    devices = _sub(root, "devices")
    _sub(devices, "emulator", str(EMULATOR))
    if spec.cdrom is not None:
        cd = _sub(devices, "disk", type="file", device="cdrom")
        _sub(cd, "driver", name="qemu", type="raw")
        _sub(cd, "source", file=str(spec.cdrom))
        _sub(cd, "target", dev="sda", bus="sata")
        _sub(cd, "readonly")
    for index, disk in enumerate(spec.disks):
        d = _sub(devices, "disk", type="file", device="disk")
        driver = {"name": "qemu", "type": "qcow2"}
        if spec.disk_cache:
            driver["cache"] = spec.disk_cache
        _sub(d, "driver", **driver)
        _sub(d, "source", file=str(disk))
        if spec.sector_size != 512:
            size = str(spec.sector_size)
            _sub(d, "blockio", logical_block_size=size, physical_block_size=size)
        letter = "abcdefghijklmnopqrstuvwxyz"[index]
        _sub(d, "target", dev="vd" + letter, bus="virtio")
        # a serial as real disks have: /dev/disk/by-id/virtio-hcios-vd<letter> in the guest
        _sub(d, "serial", f"hcios-vd{letter}")
    _serial(devices, spec)
    if spec.vnc:
        _sub(devices, "graphics", type="vnc", listen="127.0.0.1", autoport="yes")
    # A VGA card like a server's, also without a display: grub's EFI linux loader wants a GOP
    # mode, and tty1 exists as on real hardware.
    video = _sub(devices, "video")
    _sub(video, "model", type="vga")
    # A hardware watchdog as servers have (iTCO, IPMI): systemd pets it on installed nodes
    # (RuntimeWatchdogSec), so a hung kernel or PID 1 resets the VM like a real server.
    if spec.watchdog:
        _sub(devices, "watchdog", model="i6300esb", action="reset")
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")
    _sub(devices, "memballoon", model="none")
    netdev = "user,id=hcinet0"
    if spec.ssh_port is not None:
        netdev += f",hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22"
    if spec.netboot_url is not None:
        netdev += f",bootfile={spec.netboot_url}"  # DHCP filename: iPXE fetches it over HTTP
    cmdline = ET.SubElement(root, f"{{{QEMU_NS}}}commandline")
    # An explicit slot: qemu sees these args before libvirt's own devices, which take the
    # low slots of pcie.0.
    device = f"virtio-net-pci,netdev=hcinet0,mac={spec.mac},bus=pcie.0,addr=0x10"
    if spec.netboot_url is not None:
        device += ",bootindex=1"
    args = ["-netdev", netdev, "-device", device]
    if spec.uplinked is not None:
        args += _uplinked_args(spec.uplinked)
    if spec.data_nic:
        args += ["-device", "intel-iommu,intremap=on,aw-bits=48",
                 "-netdev", "user,id=hcidata0,net=10.0.3.0/24",
                 "-device", f"virtio-net-pci,netdev=hcidata0,iommu_platform=on,disable-legacy=on,bus=pcie.0,"
                            f"addr={DATA_NIC_SLOT},mac=52:54:00:da:7a:01"]
    for arg in args:
        ET.SubElement(cmdline, f"{{{QEMU_NS}}}arg", value=arg)
    return ET.tostring(root, encoding="unicode")


def _uplinked_args(up: Uplinked) -> list[str]:
    hub = "hciuphub"
    args = ["-netdev", f"socket,id={hub}up,udp=127.0.0.1:{up.peer_port},localaddr=127.0.0.1:{up.port}",
            "-netdev", f"hubport,id={hub}0,hubid=7,netdev={hub}up"]
    for i, mac in enumerate(up.macs, start=1):
        args += ["-netdev", f"hubport,id={hub}{i},hubid=7",
                 "-device", f"virtio-net-pci,netdev={hub}{i},mac={mac},id={up.prefix}{i - 1},bus=pcie.0,"
                            f"addr={up.first_slot + i - 1:#x}"]
    return args
