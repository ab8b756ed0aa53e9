"""The storage agent on an installed node (node2 of test_upgrade.py, which has two blank data
disks): `hci storage` creates, exports, snapshots and clones through the agent and each engine:
SPDK (the node's agent, started by socket activation, on install.data_device) and the kernel
(LVM thin + nvmet, a second agent on the second disk); nvme-cli in a second network namespace
connects over NVMe/TCP, writes and reads back; a host NQN not on the allow-list is refused.
Later, after reboots and an hci-upgrade, the volumes and their bytes are still there."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .upgrade_rig import Node

HOST_OK = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
HOST_BAD = "nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555"
TARGET = "192.168.78.1"

SETUP = f"""set -e
modprobe nvme-tcp
ip netns add ini 2>/dev/null || true
ip link show st0 >/dev/null 2>&1 || {{
  ip link add st0 type veth peer name st1 netns ini
  ip addr add {TARGET}/24 dev st0; ip link set st0 up
  ip -n ini addr add 192.168.78.2/24 dev st1; ip -n ini link set st1 up; ip -n ini link set lo up
}}
mkdir -p /run/st
# SPDK serves a subsystem only at its listener's own address: listen where the initiator is
mkdir -p /etc/hcios && echo 'HCI_STORAGE_ARGS=--listen {TARGET}:4420' > /etc/hcios/storage.env
"""



@dataclass(frozen=True)
class Engine:
    name: str
    port: int
    cli: str  # the storage CLI of this engine's agent
    start: str  # how the test starts its agent ("" = socket activation)
    stop: str
    units: tuple[str, ...]


SPDK = Engine("spdk", 4420, "hci-storage", "", "systemctl stop hci-storage.service",
              ("hci-storage.service", "hci-spdk-tgt.service"))
# the node's agent runs SPDK; a second agent with the kernel engine, its own socket, state and port
KSOCK = "/run/hcios/storage-kernel.sock"
KERNEL = Engine("kernel", 4421, f"hci-storage --socket {KSOCK}",
                "systemd-run --unit hci-storage-kernel --property=Type=exec /usr/bin/hci-storage-agent --backend kernel "
                f"--device /dev/disk/by-id/virtio-hcios-vdc --api-socket {KSOCK} "
                f"--state /var/lib/hcios/storage-kernel/state.json --listen {TARGET}:4421 && "
                f"for i in $(seq 120); do [ -S {KSOCK} ] && exit 0; sleep 0.5; done; "
                "journalctl -u hci-storage-kernel -o cat --no-pager >&2; exit 1",
                "systemctl stop hci-storage-kernel.service", ("hci-storage-kernel.service",))

# connect from the initiator namespace, wait for the namespace's block device, print its path
CONNECT = """set -e
ip netns exec ini nvme connect -t tcp -a {target} -s {port} -n {nqn} --hostnqn {host} >&2
for i in $(seq 60); do
  for s in /sys/class/nvme-subsystem/*; do
    [ "$(cat $s/subsysnqn 2>/dev/null)" = "{nqn}" ] || continue
    for b in $s/nvme*n*; do [ -b /dev/$(basename $b) ] && {{ echo /dev/$(basename $b); exit 0; }}; done
  done
  sleep 0.5
done
echo "no block device for {nqn}" >&2; exit 1
"""


def hci(node: Node, *args: str, tool: str = SPDK.cli) -> object:
    """``hci-storage`` (the same commands as ``hci storage``, loading only them: under TCG
    ``hci`` takes some 20 s to start)."""
    return json.loads(node.ssh(f"{tool} {' '.join(args)} --json", timeout=300)[1])


def _connect(node: Node, nqn: str, port: int, host: str = HOST_OK) -> str:
    return node.ssh(CONNECT.format(target=TARGET, port=port, nqn=nqn, host=host), timeout=120)[1].strip()


def _read_sha(node: Node, nqn: str, port: int) -> str:
    dev = _connect(node, nqn, port)
    try:
        return node.ssh(f"dd if={dev} bs=1M count=1 iflag=direct status=none | sha256sum")[1].split()[0]
    finally:
        node.ssh(f"nvme disconnect -n {nqn}")


def _stop(node: Node, engine: Engine) -> None:
    node.ssh(engine.stop)
    deadline = time.monotonic() + 60
    inactive = ["inactive"] * len(engine.units)
    while True:  # the SPDK engine stops with the agent (StopWhenUnneeded: asynchronously)
        _, out, _ = node.ssh(f"systemctl is-active {' '.join(engine.units)}", check=False)
        if out.split() in (inactive, []) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert out.split() in (inactive, []), out


def round_trip(node: Node, engine: Engine = SPDK) -> str:
    """Volume, export, write and read back over NVMe/TCP, refusal, snapshot, clone; returns the
    sha256 of the 1 MiB written (exports are removed again, so nothing runs at the next boots)."""
    node.ssh(SETUP)
    if engine.start:
        node.ssh(engine.start, timeout=300)
    # the SPDK agent's first request goes through `hci storage` (the full CLI)
    vol = hci(node, "volume", "create", "vol1", "--size", "64M", tool="hci storage" if engine is SPDK else engine.cli)
    assert (vol["name"], vol["kind"], vol["size"]) == ("vol1", "volume", 64 << 20), vol
    _, units, _ = node.ssh(f"systemctl is-active {' '.join(engine.units)}", check=False)
    assert units.split() == ["active"] * len(engine.units)  # SPDK: started by the first request on the socket
    nqn = hci(node, "export", "add", "vol1", "--host", HOST_OK, tool=engine.cli)["nqn"]
    dev = _connect(node, nqn, engine.port)
    try:
        sha = node.ssh(f"head -c 1048576 /dev/urandom > /run/st/pattern && dd if=/run/st/pattern of={dev} bs=1M "
                       "oflag=direct status=none && sha256sum < /run/st/pattern")[1].split()[0]
        back = node.ssh(f"dd if={dev} bs=1M count=1 iflag=direct status=none | sha256sum")[1].split()[0]
        assert back == sha
    finally:
        node.ssh(f"nvme disconnect -n {nqn}")
    rc, _, err = node.ssh(f"ip netns exec ini nvme connect -t tcp -a {TARGET} -s {engine.port} -n {nqn} "
                          f"--hostnqn {HOST_BAD}", check=False)
    assert rc != 0, "a host NQN not on the allow-list connected"
    assert hci(node, "snapshot", "create", "vol1", "snap1", tool=engine.cli)["kind"] == "snapshot"
    assert hci(node, "volume", "clone", "snap1", "clone1", tool=engine.cli)["parent"] == "snap1"
    cnqn = hci(node, "export", "add", "clone1", "--host", HOST_OK, tool=engine.cli)["nqn"]
    assert _read_sha(node, cnqn, engine.port) == sha  # the clone holds the volume's bytes as of the snapshot
    node.ssh(f"{engine.cli} export remove clone1 && {engine.cli} export remove vol1")
    _stop(node, engine)
    return sha


def intact(node: Node, sha: str, engine: Engine = SPDK) -> None:
    """After reboots and an upgrade: the agent finds the volume store, the volumes are there and
    vol1 reads back the bytes written before."""
    node.ssh(SETUP)
    if engine.start:
        node.ssh(engine.start, timeout=300)
    assert [v["name"] for v in hci(node, "volume", "list", tool=engine.cli)] == ["clone1", "vol1"]
    assert [(s["name"], s["parent"]) for s in hci(node, "snapshot", "list", tool=engine.cli)] == [("snap1", "vol1")]
    nqn = hci(node, "export", "add", "vol1", "--host", HOST_OK, tool=engine.cli)["nqn"]
    assert _read_sha(node, nqn, engine.port) == sha
    node.ssh(f"{engine.cli} export remove vol1")
    _stop(node, engine)
