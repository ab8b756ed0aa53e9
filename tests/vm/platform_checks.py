"""Checks of the platform services on a running installed node (run from test_upgrade.py's
first boot, so they cost no boot of their own): the cluster token is nowhere readable, the
node holds its VIP, and keepalived moves a VIP to the second server when the first stops (two
network namespaces inside the node, each running the node's keepalived on a config rendered by
the node's ``hci-vip``)."""
from __future__ import annotations

import base64
import time

import yaml

from .nodes import CLUSTER_TOKEN, VIP
from .upgrade_rig import Node

# where a node may keep the token: owner-only files (cloud-init keeps the user-data it ran)
SEARCHED = "/etc /var /run /run/hci/oem /root /home /tmp /usr/local"
FAILOVER_VIP = "192.168.77.100"
# openssl passwd -6 -salt hcitestsalt example (the configs need a login credential)
HASH = "$6$hcitestsalt$bJ6gTAlU8ufOEKeCtJz0qkjPE27MTsbqK5W4jkavcs2wh9WYM7H6Giayijy/xBX0A9NgLiYubz5BLmBLQQl9i0"


def token_is_private(node: Node) -> None:
    """The token is in k3s's 0600 token file, not in config.yaml, no log and no file anyone
    but root can read."""
    _, out, _ = node.ssh("stat -c '%a %U' /etc/rancher/k3s/token && cat /etc/rancher/k3s/token")
    mode_owner, content = out.splitlines()
    assert mode_owner == "600 root" and content == CLUSTER_TOKEN
    _, config, _ = node.ssh("cat /etc/rancher/k3s/config.yaml")
    assert CLUSTER_TOKEN not in config and "token-file: /etc/rancher/k3s/token" in config
    # every file holding it, with its mode: grep -F on the live trees (-s: skip unreadable, -I: no binaries)
    _, out, _ = node.ssh(f"for d in {SEARCHED}; do find $d -xdev -type f -size -50M -print0 2>/dev/null; done "
                         f"| xargs -0 -r grep -lsF -- {CLUSTER_TOKEN} | xargs -r stat -c '%a %n'", check=False)
    holders = dict(reversed(line.split(" ", 1)) for line in out.splitlines())
    assert "/etc/rancher/k3s/token" in holders and "/run/hci/oem/hcios/config.yaml" in holders, holders
    readable = {path: mode for path, mode in holders.items() if int(mode, 8) & 0o077}
    assert not readable, f"token in files others can read: {readable}"
    assert not [p for p in holders if p.startswith("/var/log/")], holders
    rc, journal, _ = node.ssh(f"journalctl -b -o cat --no-pager | grep -cF -- {CLUSTER_TOKEN}", check=False)
    assert journal.strip() == "0", "the token is in the journal"
    print(f"token holders (all owner-only): {sorted(holders)}")


def holds_its_vip(node: Node) -> None:
    """hci-vip rendered keepalived's config from the node config and keepalived holds the VIP."""
    _, out, _ = node.ssh("systemctl is-active hci-vip.service keepalived.service; "
                         "stat -c %a /etc/keepalived/keepalived.conf; ip -o -4 addr show")
    assert out.splitlines()[:3] == ["active", "active", "640"], out
    assert f"inet {VIP}/32" in out, out


def _config(hostname: str, mode: str, address: str) -> str:
    data = {"install": {"mode": mode, "role": "server"},
            "node": {"hostname": hostname, "password_hash": HASH,
                     "network": {"interfaces": [{"name": "hv0"}], "method": "static", "address": address,
                                 "gateway": "192.168.77.254"}},
            "cluster": {"token": "t", "vip": FAILOVER_VIP}}
    if mode == "join":
        data["cluster"]["server_url"] = "https://192.168.77.1:6443"
    return base64.b64encode(yaml.safe_dump(data).encode()).decode()


SETUP = """set -e
d=/run/hv; mkdir -p $d
ip netns add hva; ip netns add hvb
ip link add hv0 netns hva type veth peer name hv0 netns hvb
for n in a b; do ip -n hv$n link set lo up; ip -n hv$n link set hv0 up; done
ip -n hva addr add 192.168.77.1/24 dev hv0; ip -n hvb addr add 192.168.77.2/24 dev hv0
echo {a} | base64 -d > $d/a.yaml; echo {b} | base64 -d > $d/b.yaml
for n in a b; do
  mkdir -p $d/www-$n; echo srv-$n > $d/www-$n/name
  ip netns exec hv$n setsid -f python3 -m http.server 8080 --directory $d/www-$n > /dev/null 2>&1
  hci-vip --config $d/$n.yaml --interface hv0 > $d/$n.conf
  ip netns exec hv$n setsid -f keepalived --vrrp --dont-fork --log-console --log-detail -f $d/$n.conf \\
     -p $d/$n.pid -r $d/$n-vrrp.pid -c $d/$n-chk.pid > $d/$n.log 2>&1
done
"""


def _holder(node: Node) -> set[str]:
    _, out, _ = node.ssh("for n in a b; do ip -n hv$n -o -4 addr show dev hv0 | grep -q ' "
                         f"{FAILOVER_VIP}/' && echo $n; done; true")
    return set(out.split())


def _wait_holder(node: Node, want: set[str], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _holder(node) == want:
            return time.monotonic() - start
        time.sleep(0.5)
    _, logs, _ = node.ssh("tail -n 20 /run/hv/a.log /run/hv/b.log", check=False)
    raise AssertionError(f"VIP held by {_holder(node)}, want {want}\n{logs}")


def _ask_vip(node: Node, netns: str) -> str:
    """Who answers HTTP on the VIP, asked from ``netns`` (each server serves its name)."""
    _, out, _ = node.ssh(f"ip netns exec {netns} curl -sf --retry 5 --retry-connrefused --retry-delay 1 "
                         f"--max-time 20 http://{FAILOVER_VIP}:8080/name")
    return out.strip()


def vip_moves_when_the_first_server_stops(node: Node) -> None:
    node.ssh(SETUP.format(a=_config("srv-a", "create", "192.168.77.1/24"),
                          b=_config("srv-b", "join", "192.168.77.2/24")))
    try:
        # no API server answers in either namespace: both track scripts fail, the creator stays first
        _wait_holder(node, {"a"}, 60)
        time.sleep(4)  # and keeps it (no flapping while both APIs are down)
        assert _holder(node) == {"a"}
        assert _ask_vip(node, "hvb") == "srv-a"  # traffic to the VIP reaches the first server
        node.ssh("kill $(cat /run/hv/a.pid)")  # the first server's keepalived stops
        moved = _wait_holder(node, {"b"}, 30)
        print(f"VIP moved to the second server {moved:.1f}s after the first stopped")
        assert _ask_vip(node, "hva") == "srv-b"
    finally:
        node.ssh("for n in a b; do kill $(cat /run/hv/$n.pid) 2>/dev/null; "
                 "ip netns pids hv$n | xargs -r kill; done; sleep 1; ip netns del hva; ip netns del hvb",
                 check=False)


def k3s_starts_with_its_bundle(node: Node, manifest: dict) -> None:
    """hci-platform chose k3s.service (the creator: a server), linked the image's airgap archives
    where k3s imports them and put KubeVirt's operator and CR in k3s's auto-deploy directory
    (no useEmulation: the config does not ask; this TCG guest has no /dev/kvm, the journal says
    so). k3s here is the test suite's stand-in (tests/conftest.py), which records what it read."""
    _, out, _ = node.ssh("systemctl is-active hci-platform.service k3s.service k3s-agent.service", check=False)
    assert out.split() == ["active", "active", "inactive"], out
    _, out, _ = node.ssh("cat /run/k3s-stand-in/argv /run/k3s-stand-in/images.sha256")
    argv, *images = out.splitlines()
    assert argv == "server"
    archives = {c["dest"].rsplit("/", 1)[1]: c["sha256"] for c in manifest["components"]
                if c["dest"].startswith("/usr/share/hcios/images/")}
    assert archives and dict(reversed(line.split("  ", 1)) for line in images) == archives
    config = yaml.safe_load(node.ssh("cat /run/k3s-stand-in/config.yaml")[1])
    assert config["cluster-init"] is True and VIP in config["tls-san"]
    _, out, _ = node.ssh("ls /var/lib/rancher/k3s/server/manifests; "
                         "cat /var/lib/rancher/k3s/server/manifests/hcios-kubevirt-cr.yaml")
    assert out.splitlines()[:2] == ["hcios-kubevirt-cr.yaml", "kubevirt-operator.yaml"], out
    assert "kind: KubeVirt" in out and "useEmulation" not in out
    _, journal, _ = node.ssh("journalctl -b -u hci-platform.service -o cat --no-pager")
    assert "warning: /dev/kvm is missing" in journal and "cluster.kubevirt_emulation: true" in journal, journal
