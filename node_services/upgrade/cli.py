"""``hci-upgrade``: A/B upgrades on an installed node (docs/upgrade.md).

Exit codes: 0 done (or nothing to do), 2 refused (bad input, a refusal named with its reason,
another hci-upgrade running), 1 failure.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from hcicore.clierrors import HciGroup
from hcicore.progress import Progress

from . import transitions
from .apply import REBOOT_REQUEST, ApplyOptions, apply, finalize
from .node import Node
from .status import human, status

log = logging.getLogger("hcios.upgrade")
REBOOT_GRACE = 30.0  # seconds for the kubelet to report the finished Job before the reboot


def reboot(node: Node, why: str) -> None:
    log.warning("rebooting: %s", why)
    click.echo(f"rebooting: {why}", err=True)
    os.sync()
    node.runner(["systemctl", "reboot"])


@click.group(cls=HciGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log every command run.")
def main(verbose: bool) -> None:
    """A/B upgrades of this node: apply, status, rollback, mark-good."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


@main.command("apply")
@click.argument("ref")
@click.option("--allow-downgrade", is_flag=True, help="Apply an older version than the running one.")
@click.option("--force", is_flag=True, help="Apply an image this node rolled back from before.")
@click.option("--no-reboot", is_flag=True, help="Stage the trial and stay up; it starts at the next reboot.")
@click.option("--reboot-after-job", is_flag=True,
              help="With --no-reboot (system-upgrade-controller): a host unit reboots once this command has exited.")
@click.option("--plain-http", is_flag=True, help="The registry speaks plain HTTP (127.0.0.1 in tests).")
@click.option("--tries", type=click.IntRange(1, 5), help="Boots the new image gets (default upgrade.tries).")
@click.option("--json", "as_json", is_flag=True, help="Progress and the result as JSON lines on stdout.")
def apply_cmd(ref: str, allow_downgrade: bool, force: bool, no_reboot: bool, reboot_after_job: bool,
              plain_http: bool, tries: int | None, as_json: bool) -> None:
    """Download REF (HOST/REPO:TAG or @sha256:...), verify it, write it to the other slot, try it."""
    node = Node.open()
    progress = Progress(as_json=as_json)
    opts = ApplyOptions(ref, allow_downgrade=allow_downgrade, force=force,
                        reboot=not (no_reboot or reboot_after_job),
                        plain_http=plain_http, tries=tries, reboot_after_job=reboot_after_job)
    res = apply(node, opts, progress)
    doc = {"event": "result", "result": res.result, "message": res.message, "slot": res.slot,
           "version": res.version, "sha256": res.sha256, "digest": res.manifest_digest,
           "etc_conflicts": res.conflicts, "reboot": res.reboot}
    click.echo(json.dumps(doc, sort_keys=True) if as_json else res.message)
    if res.reboot:
        reboot(node, f"trying {res.version} in slot {res.slot}")


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="The status as one JSON document.")
def status_cmd(as_json: bool) -> None:
    """Booted and good slot, the trial, each slot's image and state, the last result."""
    doc = status(Node.open())
    click.echo(json.dumps(doc, indent=2, sort_keys=True) if as_json else human(doc))


@main.command("rollback")
@click.option("--no-reboot", is_flag=True, help="Change the boot state only.")
def rollback_cmd(no_reboot: bool) -> None:
    """Cancel a staged trial, give up the running one, or switch to the other good slot."""
    node = Node.open()
    with node.lock():
        message = transitions.rollback(node)
    click.echo(message)
    if not no_reboot and not message.startswith("cancelled"):
        reboot(node, message)


@main.command("mark-good")
def mark_good_cmd() -> None:
    """Make the booted slot the good one (the health gate calls this when every check passed)."""
    node = Node.open()
    with node.lock():
        click.echo(transitions.mark_good(node, manual=True))


@main.command("finalize", hidden=True)
def finalize_cmd() -> None:
    """(hci-upgrade-finalize.service, at shutdown) Carry late /etc changes into a staged slot."""
    node = Node.open()
    with node.lock():
        click.echo(finalize(node, Progress()))


@main.command("reboot-after-job", hidden=True)
def reboot_after_job_cmd() -> None:
    """(hci-upgrade-reboot.service) Wait for the apply that asked for it to exit, then reboot."""
    node = Node.open()
    try:
        request = json.loads(REBOOT_REQUEST.read_text())
        pid = int(request.get("pid", 0))
    except (FileNotFoundError, ValueError, TypeError, AttributeError):
        click.echo(f"no readable reboot request at {REBOOT_REQUEST}", err=True)
        return
    while pid and Path(f"/proc/{pid}").exists():
        time.sleep(1)
    time.sleep(REBOOT_GRACE)
    REBOOT_REQUEST.unlink(missing_ok=True)
    state = node.reading().effective
    if state.trial != request.get("slot") or not state.trial_pending:
        click.echo(f"the trial of slot {request.get('slot')} is no longer pending; not rebooting", err=True)
        return
    reboot(node, f"the upgrade job finished; trying slot {state.trial}")


@main.command("trial-deadline", hidden=True)
def trial_deadline_cmd() -> None:
    """(hci-trial-deadline.service) Reboot a trial boot still not marked good at the deadline."""
    node = Node.open()
    deadline = node.upgrade_settings.trial_deadline
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    time.sleep(max(0.0, deadline - uptime))
    state = node.reading().effective
    if state.trial != node.disk.slot:
        return  # marked good, or given up, in time
    reason = f"slot {node.disk.slot} was not marked good within {deadline}s of boot (a hang?)"
    with node.lock():
        transitions.note_trial_problem(node, reason)
    click.echo(f"HCIOS-TRIAL-FAILED slot={node.disk.slot}: {reason}; rebooting")
    os.sync()
    # --force: no orderly stop of units that may be what hangs; file systems are still unmounted
    node.runner(["systemctl", "reboot", "--force"])


@main.command("cluster-gate", hidden=True)
@click.option("--plan", required=True)
@click.option("--hash", "plan_hash", required=True)
@click.option("--sha256", required=True)
@click.option("--node", "me", required=True)
@click.option("--timeout", type=float, default=3600.0, show_default=True)
def cluster_gate_cmd(plan: str, plan_hash: str, sha256: str, me: str, timeout: float) -> None:
    """(the Plan's prepare step) Wait until the nodes upgraded before this one are healthy."""
    from ..plan import cluster_gate  # noqa: PLC0415

    click.echo(cluster_gate(plan=plan, plan_hash=plan_hash, sha256=sha256, me=me, timeout=timeout))
