"""``hci-storage-agent``: claim the data disk, restore the exports, serve the local API.

On a node it reads the node config (``install.data_device``) and talks to the SPDK target of
``hci-spdk-tgt.service``; every option can be given instead (the tests run it on the host
against an ``nvmf_tgt`` they start, on a file as the disk)."""
from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import click

from hcicore.config import load_config_file
from hcicore.errors import HciError
from hcicore.layout import OEM_MOUNT, OEM_NODE_CONFIG

from .api import DEFAULT_SOCKET, serve
from .spdk import SpdkBackend
from .state import DEFAULT_PATH, State

SPDK_SOCKET = "/var/tmp/spdk.sock"
NQN_DOMAIN = "nqn.2024-12.io.hcios"


def _data_device(config: Path) -> Path:
    cfg = load_config_file(config)
    if not cfg.install.data_device:
        raise HciError(f"{config}: install.data_device is not set: this node has no disk for volumes")
    return Path(cfg.install.data_device)


@click.command("hci-storage-agent")
@click.option("--device", type=click.Path(path_type=Path), help="The data disk (default: the node config's "
              "install.data_device).")
@click.option("--spdk-socket", default=SPDK_SOCKET, show_default=True, help="The SPDK target's RPC socket.")
@click.option("--api-socket", type=click.Path(path_type=Path), default=DEFAULT_SOCKET, show_default=True)
@click.option("--state", "state_path", type=click.Path(path_type=Path), default=DEFAULT_PATH, show_default=True)
@click.option("--listen", default="0.0.0.0:4420", show_default=True, help="NVMe/TCP listener ADDRESS:PORT.")
@click.option("--nqn-prefix", help=f"Subsystem NQN prefix (default: {NQN_DOMAIN}:<hostname>).")
def main(device: Path | None, spdk_socket: str, api_socket: Path, state_path: Path, listen: str,
         nqn_prefix: str | None) -> None:
    """Run the storage agent in the foreground."""
    from spdk.rpc.client import JSONRPCClient, JSONRPCException  # noqa: PLC0415

    try:
        device = device or _data_device(Path(OEM_MOUNT) / OEM_NODE_CONFIG)
        address, _, port = listen.rpartition(":")
        try:
            client = JSONRPCClient(spdk_socket, timeout=120.0)
        except (JSONRPCException, OSError) as err:
            raise HciError(f"no SPDK target answers on {spdk_socket}: {str(err).strip()}") from None
        backend = SpdkBackend(client, device, State(state_path), address=address.strip("[]"), port=int(port),
                              nqn_prefix=nqn_prefix or f"{NQN_DOMAIN}:{socket.gethostname()}")
        click.echo(f"hci-storage-agent: {backend.claim()}", err=True)
        server = serve(backend, api_socket)
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
