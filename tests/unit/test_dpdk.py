"""The DPDK data network: its config (checks, kernel line, round trip) and hci-dpdk's choice of
datapath from what the hardware offers, with the commands for each (read from a made-up /proc
and /sys: the DPDK path itself needs a VM with an emulated IOMMU)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hcicore.config import dump_config, load_config
from hcicore.config.kernel import node_kernel_args
from hcicore.errors import ValidationError
from node_services import dpdk

from .config_cases import good, with_

pytestmark = pytest.mark.unit
NIC = "0000:00:05.0"


def _cfg(**over: Any):
    data = with_(good(), "node.network.dpdk", {"nics": [NIC], **over})
    return load_config(data, source="t")


def fake_root(tmp: Path, *, sse42: bool = True, iommu: bool = True, pages: int = 1024, nic: bool = True,
              driver: str = "virtio-pci") -> Path:
    (tmp / "proc").mkdir(parents=True)
    flags = "fpu sse2 ssse3" + (" sse4_1 sse4_2 popcnt" if sse42 else "")
    (tmp / "proc/cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    (tmp / "proc/meminfo").write_text(f"MemTotal:       8000000 kB\nHugePages_Total:    {pages}\n"
                                      "Hugepagesize:       2048 kB\n")
    groups = tmp / "sys/kernel/iommu_groups"
    groups.mkdir(parents=True)
    if iommu:
        (groups / "0").mkdir()
    if nic:
        dev = tmp / "sys/bus/pci/devices" / NIC
        (dev / "net/ens5").mkdir(parents=True)
        (tmp / "sys/bus/pci/drivers" / driver).mkdir(parents=True)
        (dev / "driver").symlink_to(tmp / "sys/bus/pci/drivers" / driver)
    return tmp


def test_config_checks_name_the_field() -> None:
    for over, path, text in (({"nics": ["3b:00.0"]}, "node.network.dpdk.nics[0]", "is not a PCI address"),
                             ({"nics": [NIC, NIC]}, "node.network.dpdk.nics", "lists a NIC twice"),
                             ({"bridge": "br-mgmt"}, "node.network.dpdk.bridge", "cannot be the data bridge"),
                             ({"socket_mem": "1G"}, "node.network.dpdk.socket_mem", "is not a memory list"),
                             ({"hugepages": 256}, "node.network.dpdk.socket_mem", "hugepages reserve 512 MiB")):
        with pytest.raises(ValidationError) as err:
            _cfg(**over)
        assert any(p.path == path and text in p.message for p in err.value.problems), (over, err.value)


def test_kernel_line_and_round_trip() -> None:
    cfg = _cfg(hugepages=2048, socket_mem="1024,1024")
    assert node_kernel_args(cfg) == "default_hugepagesz=2M hugepagesz=2M hugepages=2048 intel_iommu=on iommu=pt"
    assert node_kernel_args(load_config(good(), source="t")) == ""
    again = load_config(yaml.safe_load(dump_config(cfg)), source="t")
    assert again.node.network.dpdk == cfg.node.network.dpdk


def test_dpdk_when_the_hardware_has_it(tmp_path: Path) -> None:
    conf = _cfg().node.network.dpdk
    facts = dpdk.read_facts(conf, fake_root(tmp_path))
    assert (facts.sse42, facts.iommu, facts.hugepages_mib) == (True, True, 2048)
    assert facts.nics[NIC] == dpdk.Nic(True, "virtio-pci", ["ens5"])
    assert dpdk.decide(conf, facts) == ("netdev", [])
    cmds = dpdk.plan(conf, facts, "netdev")
    assert cmds[0] == ["driverctl", "--nosave", "set-override", NIC, "vfio-pci"]
    assert ["update-alternatives", "--set", "ovs-vswitchd", dpdk.OVS_DPDK] in cmds
    assert ["ovs-vsctl", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
            "other_config:dpdk-socket-mem=1024"] in cmds
    assert cmds[-2:] == [
        ["ovs-vsctl", "--may-exist", "add-br", "br-data", "--", "set", "bridge", "br-data", "datapath_type=netdev"],
        ["ovs-vsctl", "--may-exist", "add-port", "br-data", "dpdk0", "--", "set", "Interface", "dpdk0", "type=dpdk",
         f"options:dpdk-devargs={NIC}"]]
    assert dpdk.ports(conf, facts, "netdev") == ["dpdk0"] and dpdk.ports(conf, facts, "system") == ["ens5"]
    bound = dpdk.read_facts(conf, fake_root(tmp_path / "again", driver="vfio-pci"))
    assert not any(c[0] == "driverctl" for c in dpdk.plan(conf, bound, "netdev"))  # bound already


@pytest.mark.parametrize("lack,says", [({"sse42": False}, "no SSE4.2"), ({"iommu": False}, "no IOMMU is on"),
                                       ({"pages": 0}, "0 MiB of hugepages reserved, socket_mem needs 1024 MiB"),
                                       ({"nic": False}, f"no PCI device at {NIC}")])
def test_the_kernel_datapath_and_why_when_something_lacks(tmp_path: Path, lack: dict, says: str) -> None:
    conf = _cfg().node.network.dpdk
    facts = dpdk.read_facts(conf, fake_root(tmp_path, **lack))
    datapath, missing = dpdk.decide(conf, facts)
    assert datapath == "system" and len(missing) == 1 and says in missing[0]
    cmds = dpdk.plan(conf, facts, datapath)
    assert ["update-alternatives", "--set", "ovs-vswitchd", dpdk.OVS_PLAIN] in cmds
    assert not any(c[0] == "driverctl" or "type=dpdk" in c for c in cmds)
    assert ["ovs-vsctl", "--may-exist", "add-br", "br-data", "--", "set", "bridge", "br-data",
            "datapath_type=system"] in cmds
    ports = [c for c in cmds if "add-port" in c]
    assert ports == ([] if lack == {"nic": False} else [["ovs-vsctl", "--may-exist", "add-port", "br-data", "ens5"]])
