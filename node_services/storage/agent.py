"""``hci-storage-agent``: claim the data disk, restore the exports, serve the local API.

On a node it claims the data disk the installer resolved (``data_device`` in install.json on
hci-oem: a stable /dev/disk/by-id name, never a match run again) and talks to the SPDK target of
``hci-spdk-tgt.service``; systemd passes the API socket (``hci-storage.socket``: the agent
starts on first use, and at boot when something is exported). Every option can be given
instead (the tests run it on the host against an ``nvmf_tgt`` they start, on a file)."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import click

from hcicore.command import run
from hcicore.errors import HciError
from hcicore.layout import OEM_INSTALL_INFO, OEM_MOUNT

from .api import DEFAULT_SOCKET, serve
from .kernel import KernelBackend
from .spdk import SpdkBackend
from .state import DEFAULT_PATH, State

SPDK_SOCKET = "/run/hcios/spdk.sock"
NQN_DOMAIN = "nqn.2024-12.io.hcios"
SPDK_WAIT = 60.0  # seconds for the target's RPC socket to appear (hci-spdk-tgt.service starting)


def _data_device(info: Path) -> Path:
    try:
        device = json.loads(info.read_text()).get("data_device")
    except (OSError, ValueError) as err:
        raise HciError(f"{info}: cannot read the install record ({err})") from None
    if not device:
        raise HciError(f"{info}: no data_device: this node was installed without install.data_device, "
                       "so it has no disk for volumes")
    return Path(device)


def _management_address() -> str:
    """The first IPv4 address of the device with the default route (the management network)."""
    from node_services.vip import default_route_device  # noqa: PLC0415

    device = default_route_device()
    addrs = json.loads(run(["ip", "-j", "-4", "addr", "show", "dev", device]).stdout or "[]")
    for entry in addrs:
        for info in entry.get("addr_info", []):
            if info.get("scope") == "global":
                return str(info["local"])
    raise HciError(f"{device} has no IPv4 address to serve NVMe/TCP on: give --listen ADDRESS:PORT "
                   "(HCI_STORAGE_ARGS in /etc/hcios/storage.env)")


def _client(path: str):  # noqa: ANN202  (spdk's client)
    from spdk.rpc.client import JSONRPCClient, JSONRPCException  # noqa: PLC0415

    deadline = time.monotonic() + SPDK_WAIT
    while True:
        try:
            return JSONRPCClient(path, timeout=120.0)
        except (JSONRPCException, OSError) as err:
            if time.monotonic() > deadline:
                raise HciError(f"no SPDK target answers on {path}: {str(err).strip()}") from None
            time.sleep(0.5)


def _activated_socket() -> socket.socket | None:
    """The listening socket systemd passed (socket activation), if any."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        return socket.socket(fileno=3)
    return None


@click.command("hci-storage-agent")
@click.option("--device", type=click.Path(path_type=Path), help="The data disk (default: the node config's "
              "install.data_device).")
@click.option("--backend", type=click.Choice(["spdk", "kernel"]), default="spdk", show_default=True,
              help="The engine: SPDK's target, or the kernel's (LVM thin + nvmet) where no SPDK target runs.")
@click.option("--spdk-socket", default=SPDK_SOCKET, show_default=True, help="The SPDK target's RPC socket.")
@click.option("--api-socket", type=click.Path(path_type=Path), default=DEFAULT_SOCKET, show_default=True)
@click.option("--state", "state_path", type=click.Path(path_type=Path), default=DEFAULT_PATH, show_default=True)
@click.option("--listen", help="NVMe/TCP listener ADDRESS:PORT (default: the address of the device with the "
              "default route, port 4420; SPDK serves a subsystem only at its listener's own address).")
@click.option("--nqn-prefix", help=f"Subsystem NQN prefix (default: {NQN_DOMAIN}:<hostname>).")
def main(device: Path | None, backend: str, spdk_socket: str, api_socket: Path, state_path: Path, listen: str | None,
         nqn_prefix: str | None) -> None:
    """Run the storage agent in the foreground."""
    try:
        device = device or _data_device(Path(OEM_MOUNT) / OEM_INSTALL_INFO)
        address, _, port = (listen or f"{_management_address()}:4420").rpartition(":")
        where = {"address": address.strip("[]"), "port": int(port),
                 "nqn_prefix": nqn_prefix or f"{NQN_DOMAIN}:{socket.gethostname()}"}
        engine: SpdkBackend | KernelBackend
        if backend == "kernel":
            engine = KernelBackend(device, State(state_path), **where)
        else:
            engine = SpdkBackend(_client(spdk_socket), device, State(state_path), **where)
        click.echo(f"hci-storage-agent: {engine.name} engine: {engine.claim()}", err=True)
        server = serve(engine, api_socket, _activated_socket())
    except HciError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo(f"hci-storage-agent: serving on {api_socket}", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
