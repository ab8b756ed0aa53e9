"""The DPDK data path on an installed node (test_install.py's network-booted node, which has a
data NIC behind an emulated Intel IOMMU: iso/domain.py ``data_nic``): the installer put the
hugepages and the IOMMU on the kernel line, hci-dpdk bound the NIC to vfio-pci, switched OVS to
its DPDK build and added the NIC as a ``type=dpdk`` port of ``br-data`` (datapath netdev), and an
HTTP request from the node over that bridge reaches the host."""
from __future__ import annotations

import secrets
from pathlib import Path

from iso.domain import DATA_NIC_PCI
from iso.httpserve import serve_directory

DPDK = {"nics": [DATA_NIC_PCI], "hugepages": 256, "socket_mem": "512"}


def wait_for_hci_dpdk(host) -> int:  # noqa: ANN001  (a testinfra host)
    """hci-dpdk runs beside the rest of the boot (nothing waits for the data network) and
    restarts ovs-vswitchd into its DPDK build: wait until it has finished, one way or the other."""
    return host.run("timeout 300 sh -c 'while s=$(systemctl show -P ActiveState hci-dpdk.service); "
                    "[ \"$s\" != active ] && [ \"$s\" != failed ]; do sleep 2; done'").rc


def passes_traffic_to_the_host(host, workdir: Path) -> None:  # noqa: ANN001  (a testinfra host)
    cmdline = host.file("/proc/cmdline").content_string
    assert "hugepages=256" in cmdline and "intel_iommu=on" in cmdline, cmdline
    waited = wait_for_hci_dpdk(host)
    journal = host.check_output("journalctl -b -u hci-dpdk.service -o cat --no-pager")
    ovs_log = host.run("tail -n 40 /var/log/openvswitch/ovs-vswitchd.log").stdout
    assert waited == 0 and host.service("hci-dpdk.service").is_running, f"{journal}\n{ovs_log}"
    assert "datapath netdev" in journal and "warning" not in journal, journal
    assert host.check_output(f"basename $(readlink /sys/bus/pci/devices/{DATA_NIC_PCI}/driver)") == "vfio-pci"
    assert host.check_output("ovs-vsctl get Open_vSwitch . dpdk_initialized") == "true"
    assert host.check_output("ovs-vsctl get bridge br-data datapath_type") == "netdev"
    assert host.check_output("ovs-vsctl get interface dpdk0 type") == "dpdk"
    # the port's link comes up once the PMD has started the device
    link = host.run("for i in $(seq 60); do s=$(ovs-vsctl get interface dpdk0 link_state); [ \"$s\" = up ] && break; "
                    "sleep 1; done; echo $s; ovs-vsctl get interface dpdk0 error")
    assert link.stdout.split()[0] == "up", link.stdout + link.stderr + ovs_log
    token = secrets.token_hex(8)
    www = workdir / "dpdk-www"
    www.mkdir()
    (www / "token").write_text(token + "\n")
    server = serve_directory(www)
    with server as port:
        got = host.run("ip addr add 10.0.3.15/24 dev br-data && ip link set br-data up && "
                       f"curl -sS --retry 10 --retry-connrefused --retry-delay 2 http://10.0.3.2:{port}/token")
    assert got.rc == 0 and got.stdout.strip() == token, got.stderr
    assert ("GET", "/token", 200) in server.requests  # the host's side saw it
