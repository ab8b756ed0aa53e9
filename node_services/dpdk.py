"""``hci-dpdk``: the data network in DPDK mode (``node.network.dpdk``), set up at every boot.

What the hardware offers decides the datapath, and the journal says why:

* **DPDK** (``datapath_type=netdev``) when the CPU has SSE4.2 (Debian builds DPDK and
  ``ovs-vswitchd-dpdk`` for it), an IOMMU is on (``/sys/kernel/iommu_groups``: vfio-pci needs
  one) and the hugepages reserved on the kernel line (``hcicore/config/kernel.py``) cover
  ``socket_mem``. The NICs are bound to vfio-pci with driverctl (``--nosave``: the node config
  is the only place the choice is kept), ``ovs-vswitchd`` is switched to Debian's DPDK build
  (``update-alternatives``) and restarted, ``dpdk-init`` set, and each NIC added to the bridge
  as a ``type=dpdk`` port. The PMDs for common NICs are in the image (``librte-net-*``: Debian's
  OVS-DPDK package pulls in none).
* **The kernel datapath** otherwise: the same bridge with ``datapath_type=system`` and the NICs'
  kernel interfaces as ports, the plain ``ovs-vswitchd``, and a warning naming what is missing.

The decision (:func:`decide`) and the commands (:func:`plan`) are pure functions of the config
and the facts read from ``/proc`` and ``/sys`` (:func:`read_facts`, rooted for the tests).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from hcicore.command import run
from hcicore.config import Dpdk, NodeConfig
from hcicore.errors import HciError

from .bootcli import config_option, run_service

OVS_DPDK = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
OVS_PLAIN = "/usr/lib/openvswitch-switch/ovs-vswitchd"
DPDK_INIT_WAIT = 60.0
OVS_TIMEOUT = 180.0


@dataclass
class Nic:
    present: bool
    driver: str | None = None
    netdevs: list[str] = field(default_factory=list)


@dataclass
class Facts:
    sse42: bool
    iommu: bool
    hugepages_mib: int
    nics: dict[str, Nic]


def read_facts(dpdk: Dpdk, root: Path = Path("/")) -> Facts:
    cpuinfo = (root / "proc/cpuinfo").read_text()
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    groups = root / "sys/kernel/iommu_groups"
    meminfo = dict(line.split(":", 1) for line in (root / "proc/meminfo").read_text().splitlines() if ":" in line)
    pages = int(meminfo.get("HugePages_Total", "0").strip() or 0)
    page_kib = int((meminfo.get("Hugepagesize", "0 kB").split() or ["0"])[0])
    nics = {}
    for pci in dpdk.nics:
        dev = root / "sys/bus/pci/devices" / pci
        driver = (dev / "driver").resolve().name if (dev / "driver").exists() else None
        netdevs = sorted(p.name for p in (dev / "net").iterdir()) if (dev / "net").is_dir() else []
        nics[pci] = Nic(dev.exists(), driver, netdevs)
    return Facts("sse4_2" in flags, groups.is_dir() and any(groups.iterdir()), pages * page_kib // 1024, nics)


def decide(dpdk: Dpdk, facts: Facts) -> tuple[str, list[str]]:
    """("netdev", []) for DPDK, or ("system", what is missing) for the kernel datapath."""
    missing = []
    if not facts.sse42:
        missing.append("the CPU has no SSE4.2 (DPDK needs x86-64-v2: Nehalem or newer)")
    if not facts.iommu:
        missing.append("no IOMMU is on (enable VT-d/AMD-Vi in the firmware; the node's kernel line has "
                       "intel_iommu=on iommu=pt)")
    need = sum(int(x) for x in dpdk.socket_mem.split(","))
    if facts.hugepages_mib < need:
        missing.append(f"{facts.hugepages_mib} MiB of hugepages reserved, socket_mem needs {need} MiB "
                       "(node.network.dpdk.hugepages, applied at the next boot)")
    absent = [pci for pci, nic in facts.nics.items() if not nic.present]
    if absent:
        missing.append(f"no PCI device at {', '.join(absent)} (lspci -D lists the NICs)")
    return ("system" if missing else "netdev"), missing


def plan(dpdk: Dpdk, facts: Facts, datapath: str) -> list[list[str]]:
    """The commands that set the data bridge up (idempotent: run at every boot)."""
    br = dpdk.bridge
    cmds: list[list[str]] = []
    if datapath == "netdev":
        cmds += [["driverctl", "--nosave", "set-override", pci, "vfio-pci"]
                 for pci, nic in facts.nics.items() if nic.driver != "vfio-pci"]
        cmds.append(["update-alternatives", "--set", "ovs-vswitchd", OVS_DPDK])
        cmds.append(["ovs-vsctl", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                     f"other_config:dpdk-socket-mem={dpdk.socket_mem}"])
    else:
        cmds.append(["update-alternatives", "--set", "ovs-vswitchd", OVS_PLAIN])
        cmds.append(["ovs-vsctl", "remove", "Open_vSwitch", ".", "other_config", "dpdk-init"])
    cmds.append(["ovs-vsctl", "--may-exist", "add-br", br, "--", "set", "bridge", br, f"datapath_type={datapath}"])
    for i, (pci, nic) in enumerate(sorted(facts.nics.items())):
        if datapath == "netdev":
            cmds.append(["ovs-vsctl", "--may-exist", "add-port", br, f"dpdk{i}", "--", "set", "Interface",
                         f"dpdk{i}", "type=dpdk", f"options:dpdk-devargs={pci}"])
        else:
            cmds += [["ovs-vsctl", "--may-exist", "add-port", br, netdev] for netdev in nic.netdevs]
    return cmds


def ports(dpdk: Dpdk, facts: Facts, datapath: str) -> list[str]:
    """The bridge's ports as :func:`plan` names them."""
    if datapath == "netdev":
        return [f"dpdk{i}" for i in range(len(facts.nics))]
    return [netdev for _, nic in sorted(facts.nics.items()) for netdev in nic.netdevs]


def _port_error(port: str) -> str:
    error = run(["ovs-vsctl", "--if-exists", "get", "Interface", port, "error"], check=False).stdout.strip()
    return "" if error in ("", "[]") else error.strip('"')


def _dpdk_initialized() -> bool:
    return run(["ovs-vsctl", "get", "Open_vSwitch", ".", "dpdk_initialized"], check=False).stdout.strip() == "true"


def apply(dpdk: Dpdk) -> list[str]:
    facts = read_facts(dpdk)
    datapath, missing = decide(dpdk, facts)
    run(["systemctl", "start", "openvswitch-switch.service"])
    log = [f"warning: data network {dpdk.bridge} on the kernel datapath: {m}" for m in missing]
    before = Path("/etc/alternatives/ovs-vswitchd").resolve()
    for argv in plan(dpdk, facts, datapath):
        run(argv, timeout=OVS_TIMEOUT)  # ovs-vsctl waits for ovs-vswitchd, which may be initializing DPDK
        if argv[0] == "update-alternatives" and Path(argv[-1]) != before:
            run(["systemctl", "restart", "ovs-vswitchd.service"])  # the other build takes over now
    if datapath == "netdev":
        deadline = time.monotonic() + DPDK_INIT_WAIT
        while not _dpdk_initialized():
            if time.monotonic() > deadline:
                raise HciError(f"OVS did not initialize DPDK within {DPDK_INIT_WAIT:.0f}s: "
                               "journalctl -u ovs-vswitchd says why")
            time.sleep(1)
    # ovs-vsctl succeeds even when ovs-vswitchd cannot attach a port: its Interface row says so
    failed = [f"{port}: {error}" for port in ports(dpdk, facts, datapath) if (error := _port_error(port))]
    if failed:
        raise HciError(f"data network {dpdk.bridge}: OVS could not attach {'; '.join(failed)} "
                       "(/var/log/openvswitch/ovs-vswitchd.log says why)")
    log.append(f"data network {dpdk.bridge}: datapath {datapath}, ports for {', '.join(dpdk.nics)}")
    return log


def _boot(cfg: NodeConfig | None) -> list[str]:
    dpdk = cfg.node.network.dpdk if cfg is not None else None
    return ["no node.network.dpdk: no data network"] if dpdk is None else apply(dpdk)


@click.command("hci-dpdk")
@config_option
def main(config_file: str | None) -> None:
    """Set the data network up from node.network.dpdk (DPDK, or the kernel datapath)."""
    run_service(config_file, _boot)


if __name__ == "__main__":
    main()
