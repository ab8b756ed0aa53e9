"""The management network br-mgmt on a booted node: an OVS bridge over an active-backup bond of
two NICs, the node address on its VLAN port, reached only over that VLAN (tests/vm/switchport.py
is the switch's access port, in a network namespace), and still reached with one NIC unplugged."""
from __future__ import annotations

import logging
import re
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from iso.domain import Uplinked
from iso.lab import VM, free_port

from .nodes import host_for, wait_ssh

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
VLAN = 100
NODE_ADDRESS = "192.168.100.10"
SWITCH_ADDRESS = "192.168.100.1/24"
VIP = "192.168.100.100"
MACS = ("52:54:00:b0:0d:01", "52:54:00:b0:0d:02")
# the node config's management network: NICs by MAC (renamed nic0, nic1), an active-backup bond
# preferring nic0, VLAN 100, a static address
NETWORK = {"interfaces": [{"mac": mac} for mac in MACS], "method": "static",
           "address": f"{NODE_ADDRESS}/24", "gateway": "192.168.100.1", "vlan_id": VLAN,
           "bond": {"mode": "active-backup", "primary": "nic0"}}


@dataclass(frozen=True)
class AccessPort:
    uplinked: Uplinked   # give it to Lab.start_vm
    ssh_port: int        # 127.0.0.1:<ssh_port> reaches the node's SSH over the VLAN


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def access_port() -> Iterator[AccessPort]:
    """A namespace with the switch's side of VLAN 100 and a forward of the node's SSH."""
    netns = f"hcimgmt-{secrets.token_hex(3)}"
    uplinked = Uplinked(macs=MACS, port=_free_udp_port(), peer_port=_free_udp_port())
    ssh_port = free_port()
    with ExitStack() as stack:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        stack.callback(_delete_netns, netns)
        errors = stack.enter_context(tempfile.TemporaryFile("w+"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.vm.switchport", "--netns", netns, "--vlan", str(VLAN),
             "--address", SWITCH_ADDRESS, "--udp", f"{uplinked.peer_port}:{uplinked.port}",
             "--forward", f"{ssh_port}:{NODE_ADDRESS}:22"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True)
        stack.callback(_stop, proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "READY":
            errors.seek(0)
            raise AssertionError(f"switchport did not start: {line!r} {errors.read()}")
        yield AccessPort(uplinked=uplinked, ssh_port=ssh_port)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _delete_netns(netns: str) -> None:
    done = subprocess.run(["ip", "netns", "delete", netns], capture_output=True, text=True)
    if done.returncode != 0:  # reported, not raised: the test's own error matters more
        log.warning("could not delete network namespace %s: %s", netns, done.stderr.strip())


def _active_member(host) -> str | None:
    """The bond member OVS sends on (``member nic0: enabled`` then ``active member``)."""
    out = host.check_output("ovs-appctl bond/show bond0")
    match = re.search(r"^member (\w+): enabled\n\s+active member", out, re.M)
    return match.group(1) if match else None


def check_br_mgmt(vm: VM, port: AccessPort, key: Path) -> None:
    """br-mgmt, its bond and VLAN port as configured; SSH over it; SSH again with nic0 unplugged."""
    host = host_for(port.ssh_port, key)
    show = host.check_output("ovs-vsctl show")
    assert re.search(r'Bridge br-mgmt\n(?:\s+.*\n)*?\s+Port bond0\n(?:\s+.*\n)*?\s+Interface nic0', show), show
    assert "Interface nic1" in show, show
    assert re.search(r'Port br-mgmt\.100\n\s+tag: 100\n\s+Interface br-mgmt\.100\n\s+type: internal', show), show
    # cloud-init took the node's network config from hci-oem's seed (a link the initramfs makes),
    # and only the NICs it names carry the node: the third NIC (qemu's user network) has no address
    assert host.check_output("readlink /var/lib/cloud/seed/nocloud") == "/run/hci/oem/hcios/nocloud"
    addrs = host.check_output("ip -4 -o address show scope global").splitlines()
    assert {a.split()[1] for a in addrs} == {"br-mgmt.100"}, addrs  # the VIP may be there too
    assert any(f"inet {NODE_ADDRESS}/24 " in a for a in addrs), addrs
    bond = host.check_output("ovs-appctl bond/show bond0")
    assert "bond_mode: active-backup" in bond, bond
    assert _active_member(host) == "nic0", bond
    # the node's VIP goes on the same device (keepalived's config, rendered at boot)
    assert "interface br-mgmt.100" in host.file("/etc/keepalived/keepalived.conf").content_string
    vm.set_link("uplinked0", up=False)  # pull nic0's cable
    deadline = time.monotonic() + 60
    while _active_member(host) != "nic1":
        assert time.monotonic() < deadline, host.check_output("ovs-appctl bond/show bond0")
        time.sleep(2)
    wait_ssh(port.ssh_port, key, 60)  # a new connection, over nic1
    again = host_for(port.ssh_port, key)
    assert again.check_output("cat /sys/class/net/nic0/carrier") == "0"
    assert again.check_output("hostname")
    vm.set_link("uplinked0", up=True)
