"""``hci storage volume|snapshot|export ...``: the storage agent's local API from the shell.

Every command talks to the running agent (``--socket``); ``--json`` prints the agent's answer
as JSON, otherwise one line per item. Bad input exits 2 naming the field, a failure exits 1.
``hci-storage`` is the same group on its own: it loads only these commands, so it starts in a
fraction of ``hci``'s time (which loads every package's commands).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hcicore.clierrors import HciGroup

from .api import DEFAULT_SOCKET, request

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, factor in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def _line(item: dict[str, Any]) -> str:
    if "nqn" in item:
        return f"{item['volume']}  {item['nqn']}  {item['address']}:{item['port']}  hosts: {', '.join(item['hosts']) or '-'}"
    parent = f"  from {item['parent']}" if item.get("parent") else ""
    return f"{item['name']}  {item['kind']}  {_size(item['size'])}  used {_size(item.get('allocated'))}{parent}"


def _call(ctx: click.Context, op: str, as_json: bool, **args: Any) -> None:
    result = request(op, args, ctx.obj["socket"])
    if as_json:
        click.echo(json.dumps(result if result is not None else {"ok": True}, indent=1))
    elif isinstance(result, list):
        for item in result:
            click.echo(_line(item))
    elif isinstance(result, dict):
        click.echo(_line(result))


@click.group("storage", cls=HciGroup)
@click.option("--socket", "sock", type=click.Path(path_type=Path), default=DEFAULT_SOCKET, show_default=True,
              help="The storage agent's API socket.")
@click.pass_context
def storage_group(ctx: click.Context, sock: Path) -> None:
    """Volumes, snapshots, clones and NVMe/TCP exports of this node's storage agent."""
    ctx.obj = {"socket": sock}


@storage_group.group("volume")
def volume_group() -> None:
    """Thin volumes and clones."""


@volume_group.command("list")
@json_option
@click.pass_context
def volume_list(ctx: click.Context, as_json: bool) -> None:
    """List volumes and clones."""
    _call(ctx, "volume.list", as_json)


@volume_group.command("create")
@click.argument("name")
@click.option("--size", required=True, help="Size, e.g. 10G or 512M (thin: space is taken as written).")
@json_option
@click.pass_context
def volume_create(ctx: click.Context, name: str, size: str, as_json: bool) -> None:
    """Create a thin volume NAME."""
    _call(ctx, "volume.create", as_json, name=name, size=size)


@volume_group.command("clone")
@click.argument("snapshot")
@click.argument("name")
@json_option
@click.pass_context
def volume_clone(ctx: click.Context, snapshot: str, name: str, as_json: bool) -> None:
    """Create volume NAME as a writable clone of SNAPSHOT."""
    _call(ctx, "volume.clone", as_json, snapshot=snapshot, name=name)


@volume_group.command("delete")
@click.argument("name")
@json_option
@click.pass_context
def volume_delete(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete volume NAME (not while it is exported)."""
    _call(ctx, "volume.delete", as_json, name=name)


@storage_group.group("snapshot")
def snapshot_group() -> None:
    """Read-only snapshots of volumes."""


@snapshot_group.command("list")
@json_option
@click.pass_context
def snapshot_list(ctx: click.Context, as_json: bool) -> None:
    """List snapshots."""
    _call(ctx, "snapshot.list", as_json)


@snapshot_group.command("create")
@click.argument("volume")
@click.argument("name")
@json_option
@click.pass_context
def snapshot_create(ctx: click.Context, volume: str, name: str, as_json: bool) -> None:
    """Snapshot VOLUME as NAME."""
    _call(ctx, "snapshot.create", as_json, volume=volume, name=name)


@snapshot_group.command("delete")
@click.argument("name")
@json_option
@click.pass_context
def snapshot_delete(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete snapshot NAME."""
    _call(ctx, "snapshot.delete", as_json, name=name)


@storage_group.group("export")
def export_group() -> None:
    """NVMe/TCP exports and their host allow-lists."""


@export_group.command("list")
@json_option
@click.pass_context
def export_list(ctx: click.Context, as_json: bool) -> None:
    """List exports."""
    _call(ctx, "export.list", as_json)


@export_group.command("add")
@click.argument("volume")
@click.option("--host", "hosts", multiple=True, help="Host NQN allowed to connect (repeat); none: nobody yet.")
@json_option
@click.pass_context
def export_add(ctx: click.Context, volume: str, hosts: tuple[str, ...], as_json: bool) -> None:
    """Export VOLUME over NVMe/TCP to the hosts named."""
    _call(ctx, "export.add", as_json, volume=volume, hosts=list(hosts))


@export_group.command("remove")
@click.argument("volume")
@json_option
@click.pass_context
def export_remove(ctx: click.Context, volume: str, as_json: bool) -> None:
    """Stop exporting VOLUME."""
    _call(ctx, "export.remove", as_json, volume=volume)


@export_group.command("allow")
@click.argument("volume")
@click.argument("host")
@json_option
@click.pass_context
def export_allow(ctx: click.Context, volume: str, host: str, as_json: bool) -> None:
    """Add HOST (an NQN) to VOLUME's allow-list."""
    _call(ctx, "export.allow", as_json, volume=volume, host=host)


@export_group.command("deny")
@click.argument("volume")
@click.argument("host")
@json_option
@click.pass_context
def export_deny(ctx: click.Context, volume: str, host: str, as_json: bool) -> None:
    """Remove HOST from VOLUME's allow-list."""
    _call(ctx, "export.deny", as_json, volume=volume, host=host)


commands = [storage_group]


def main() -> None:
    """``hci-storage``: the storage commands without the rest of ``hci``."""
    storage_group.main(prog_name="hci-storage")


if __name__ == "__main__":
    main()
