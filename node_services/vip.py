"""``hci-vip``: the cluster's floating API address (``cluster.vip``) held by keepalived.

Why keepalived and not kube-vip: docs/platform.md. Every server (not agents, not the etcd-only
witness) runs Debian's keepalived with a config rendered at each boot from the node config on
hci-oem, before k3s starts, so the VIP answers from the first boot on (k3s puts it in
``tls-san``) and does not depend on the API it fronts.

* One VRRP instance, ``state BACKUP`` everywhere; the node that created the cluster starts with
  the higher priority, so it holds the VIP first.
* A track script (``TRACK_SCRIPT``) asks the local API server's ``/readyz`` with k3s's admin
  client certificate (k3s runs the API server with anonymous auth off). A failing check lowers
  the priority by ``TRACK_WEIGHT``, more than the gap between servers: the VIP moves to a
  server whose API answers. When none answers (cluster bootstrap, an outage), priorities fall
  alike and the VIP stays where it is instead of disappearing.
* The router id comes from ``cluster.vrrp_router_id`` or the VIP's last byte; it must be unique
  on the management network.
"""
from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import click

from hcicore.command import run
from hcicore.config import NodeConfig, load_config_file
from hcicore.errors import HciError
from hcicore.files import write_atomic
from hcicore.layout import OEM_MOUNT, OEM_NODE_CONFIG

CONF_PATH = Path("/etc/keepalived/keepalived.conf")
TRACK_SCRIPT = "/usr/libexec/hcios/hci-apiserver-ready"
PRIORITY_CREATOR = 150
PRIORITY_JOINER = 100
TRACK_WEIGHT = 60  # > PRIORITY_CREATOR - PRIORITY_JOINER: a server with a failing API always yields
ADVERT_SECONDS = 1
PREEMPT_DELAY = 30  # seconds a higher-priority server waits before taking the VIP back


def runs_vip(cfg: NodeConfig) -> bool:
    """Servers with a VIP configured hold it; agents and witnesses (no API server) never do."""
    return bool(cfg.cluster.vip) and cfg.install.role == "server"


def router_id(cfg: NodeConfig) -> int:
    if cfg.cluster.vrrp_router_id is not None:
        return cfg.cluster.vrrp_router_id
    last = ipaddress.ip_address(cfg.cluster.vip or "0.0.0.0").packed[-1]
    return last or 1


def management_interface(cfg: NodeConfig) -> str | None:
    """The device carrying the node address (``br-mgmt`` or its VLAN port); None when the config
    names no NIC (DHCP on any): ask :func:`default_route_device`."""
    return cfg.node.network.management_device


SYS_NET = Path("/sys/class/net")


def default_route_device() -> str:
    out = run(["ip", "-j", "route", "show", "default"]).stdout
    routes = json.loads(out or "[]")
    if not routes or "dev" not in routes[0]:
        raise HciError("no default route: keepalived needs the management interface "
                       "(name it in node.network.interfaces)")
    return str(routes[0]["dev"])


def _prefix(cfg: NodeConfig) -> int:
    net = cfg.node.network
    if net.method == "static" and net.address:
        return ipaddress.ip_interface(net.address).network.prefixlen
    return ipaddress.ip_address(cfg.cluster.vip or "0.0.0.0").max_prefixlen


def keepalived_conf(cfg: NodeConfig, interface: str) -> str:
    """The whole ``keepalived.conf`` of a server node."""
    if not runs_vip(cfg):
        raise HciError("this node holds no VIP (it needs role server and cluster.vip)")
    priority = PRIORITY_CREATOR if cfg.install.mode == "create" else PRIORITY_JOINER
    return f"""\
# Rendered by hci-vip from the node config at every boot: edit the node config, not this file.
global_defs {{
    router_id {cfg.node.hostname}
    enable_script_security
    script_user root
}}

vrrp_script apiserver_ready {{
    script "{TRACK_SCRIPT}"
    interval 2
    timeout 3
    fall 3
    rise 2
    weight -{TRACK_WEIGHT}
}}

vrrp_instance hci_vip {{
    state BACKUP
    interface {interface}
    virtual_router_id {router_id(cfg)}
    priority {priority}
    advert_int {ADVERT_SECONDS}
    preempt_delay {PREEMPT_DELAY}
    virtual_ipaddress {{
        {cfg.cluster.vip}/{_prefix(cfg)} dev {interface}
    }}
    track_script {{
        apiserver_ready
    }}
}}
"""


def vip_device(cfg: NodeConfig, sys_net: Path = SYS_NET) -> tuple[str, str]:
    """The device for the VIP and a note for the journal: the config's management device when
    it exists here, else the default route's (a node whose network config was never applied,
    such as one installed before br-mgmt, keeps its VIP where its address is)."""
    wanted = management_interface(cfg)
    if wanted is not None and (sys_net / wanted).exists():
        return wanted, ""
    device = default_route_device()
    if wanted is None:
        return device, ""
    return device, (f"; {wanted} (from the node config) does not exist here, so the VIP goes on "
                    f"{device}, the default route's device")


def apply(cfg: NodeConfig | None, conf: Path = CONF_PATH, sys_net: Path = SYS_NET) -> str:
    """Write (or remove) ``conf`` for this node; returns what was done, for the journal."""
    if cfg is None or not runs_vip(cfg):
        if conf.exists():
            conf.unlink()  # keepalived.service has ConditionFileNotEmpty on it: it stays off
            return f"no VIP on this node: removed {conf}"
        return "no VIP on this node"
    interface, note = vip_device(cfg, sys_net)
    write_atomic(conf, keepalived_conf(cfg, interface).encode(), mode=0o640, dir_mode=0o755)
    return f"VIP {cfg.cluster.vip} on {interface} (router id {router_id(cfg)}): wrote {conf}{note}"


@click.command("hci-vip")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help=f"Node config (default: {OEM_MOUNT}/{OEM_NODE_CONFIG}).")
@click.option("--interface", help="Render for this device and print, instead of writing the node's file.")
def main(config_file: str | None, interface: str | None) -> None:
    """Render keepalived's config for the cluster VIP from the node config."""
    path = Path(config_file) if config_file else Path(OEM_MOUNT) / OEM_NODE_CONFIG
    try:
        cfg = load_config_file(path) if path.exists() else None
        if interface is not None:
            if cfg is None:
                raise HciError(f"{path}: no node config")
            click.echo(keepalived_conf(cfg, interface), nl=False)
            return
        click.echo(apply(cfg))
    except HciError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
