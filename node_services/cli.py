"""``hci upgrade-plan`` and ``hci upgrade-cluster``: rolling upgrades, from an operator's machine."""
from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from hcicore.progress import Progress


@click.command("upgrade-plan")
@click.argument("ref")
@click.option("--sha256", help="sha256 of the slot image (default: read from REF's manifest).")
@click.option("--name", default="hcios-os", show_default=True, help="Plan name.")
@click.option("--namespace", default="system-upgrade", show_default=True)
@click.option("--plain-http", is_flag=True, help="The registry speaks plain HTTP.")
def upgrade_plan_cmd(ref: str, sha256: str | None, name: str, namespace: str, plain_http: bool) -> None:
    """Print a system-upgrade-controller Plan that upgrades the cluster to REF, one node at a time."""
    from .plan import render_plan  # noqa: PLC0415

    if sha256 is None:
        from hcicore.artifact import parse_manifest  # noqa: PLC0415
        from hcicore.oci import Registry, parse_reference  # noqa: PLC0415

        parsed = parse_reference(ref)
        manifest = Registry(parsed.host, plain_http=plain_http).resolve(parsed)
        sha256 = parse_manifest(manifest.raw, ref=ref).sha256

    click.echo(yaml.safe_dump(render_plan(ref, sha256=sha256, name=name, namespace=namespace,
                                          plain_http=plain_http), sort_keys=False), nl=False)


@click.command("upgrade-cluster")
@click.argument("ref")
@click.argument("hosts", nargs=-1, required=True)
@click.option("--key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="SSH private key.")
@click.option("--accept-new-host-keys", is_flag=True, help="Trust host keys not yet in known_hosts.")
@click.option("--plain-http", is_flag=True, help="The registry speaks plain HTTP.")
@click.option("--tries", type=click.IntRange(1, 5), help="Boots each node gives the new image (default: its config).")
@click.option("--timeout", type=float, default=1800.0, show_default=True, help="Seconds per node to come back good.")
@click.option("--json", "as_json", is_flag=True, help="Progress and the result as JSON lines.")
def upgrade_cluster_cmd(ref: str, hosts: tuple[str, ...], key: Path | None, accept_new_host_keys: bool,
                        plain_http: bool, tries: int | None, timeout: float, as_json: bool) -> None:
    """Upgrade HOSTS ([user@]host[:port]) to REF one after the other; stop at the first failure."""
    from .cluster import ClusterUpgrade, SshTarget  # noqa: PLC0415  (paramiko)

    targets = [SshTarget.parse(h, key=key, accept_new=accept_new_host_keys) for h in hosts]
    progress = Progress(as_json=as_json)
    done = ClusterUpgrade(ref, targets, progress, plain_http=plain_http, tries=tries, wait_timeout=timeout).run()
    click.echo(json.dumps({"event": "result", "nodes": done}) if as_json else "\n".join(done))


from .storage.cli import storage_group  # noqa: E402  (hci storage: node_services/storage/)

commands = [upgrade_plan_cmd, upgrade_cluster_cmd, storage_group]
