"""The state changes after an image is in a slot: mark good, fail a trial, roll back, and the
bookkeeping at boot (docs/upgrade.md: every write and which slot boots if it is cut short).

Order inside each transition, so a power cut at any instant leaves a bootable node:
* mark good: the slot's good marker first, then the boot state (good = the slot, no trial),
  then the record. Cut after the marker only: grub still boots the trial (tries left) or the old
  good slot; both are fine, and the next health run finishes the job.
* fail a trial: the boot state first (good = the old slot, no trial), then the record.
* roll back to the other slot: only when it has a good marker; the boot state names it good.
"""
from __future__ import annotations

import logging
import time

from hcicore.bootstate import BootState, other

from .node import Node, Refused

log = logging.getLogger("hcios.upgrade")


def mark_good(node: Node, *, manual: bool = False) -> str:
    """Make the booted slot the good one. On a trial boot: the trial passed. On the good slot:
    its marker is kept, and a trial staged for the other slot stays staged. A slot picked by hand
    in the grub menu (neither good nor on trial) only with ``manual`` (the operator's
    ``hci-upgrade mark-good``), never from the health gate."""
    slot = node.disk.slot
    reading = node.reading()
    state = reading.effective
    record = node.record()
    if state.trial != slot and state.good == slot:
        if slot not in reading.markers:
            node.boot.set_marker(slot, True)
        return f"slot {slot} is already the good slot"
    info = record.slot(slot)
    if state.trial != slot and not (manual and info.get("sha256") and not info.get("bad")):
        raise Refused(f"slot {slot} is neither the good slot nor on trial (picked by hand?); "
                      "`hci-upgrade mark-good` keeps it if that is what you want")
    node.boot.set_marker(slot, True)
    node.boot.write(state.next(good=slot, trial=None, tries=0), after=reading)
    info["bad"] = None
    record.body["trial_report"] = None
    was_trial = state.trial == slot
    record.set_last("upgrade" if was_trial else "mark-good", "success",
                    version=info.get("version"), sha256=info.get("sha256"), slot=slot)
    node.records.write(record)
    log.info("slot %s marked good", slot)
    return f"slot {slot} ({info.get('version')}) marked good"


def _roll_back(node: Node, slot: str, reason: str, *, remember: bool) -> None:
    """Record that ``slot``'s image did not make it; with ``remember`` it is refused again."""
    record = node.record()
    info = record.slot(slot)
    info["bad"] = reason
    if remember and info.get("sha256"):
        if not record.rolled_back_entry(info["sha256"], str(info.get("version"))):
            record.body["rolled_back"].append({"sha256": info["sha256"], "version": info.get("version"),
                                               "reason": reason, "at": int(time.time())})
    record.body["trial_report"] = None
    record.set_last("upgrade", "rolled-back", reason, version=info.get("version"), sha256=info.get("sha256"),
                    slot=slot)
    node.records.write(record)


def fail_trial(node: Node, reason: str) -> None:
    """On a trial boot whose health check failed for good: the old slot is good again, now."""
    slot = node.disk.slot
    reading = node.reading()
    state = reading.effective
    if state.trial != slot:
        raise Refused(f"slot {slot} is not on trial")
    node.boot.write(state.next(trial=None, tries=0), after=reading)
    _roll_back(node, slot, reason, remember=True)
    log.error("trial of slot %s failed: %s; slot %s is good again", slot, reason, state.good)


def note_trial_problem(node: Node, reason: str) -> None:
    """A trial boot ran out of time: keep the reason for the boot that falls back."""
    record = node.record()
    record.body["trial_report"] = {"slot": node.disk.slot, "reason": reason, "at": int(time.time())}
    node.records.write(record)


def reconcile(node: Node) -> list[str]:
    """At every boot, before the health checks: repair a damaged boot state copy and finish
    the books of a trial that grub gave up on. Returns what it did."""
    done = [f"rewrote boot state copy {i}" for i in node.boot.repair()]
    reading = node.reading()
    state = reading.effective
    booted = node.disk.slot
    if reading.state is None:
        # no valid copy at all: grub booted by marker; write a fresh state naming what runs
        good = booted if booted in reading.markers else state.good
        node.boot.write(BootState(1, good), after=reading)
        done.append(f"boot state rebuilt from the good-slot markers (good: {good})")
        state = node.reading().effective
    if state.trial is not None and state.tries == 0 and booted == state.good:
        record = node.record()
        report = record.body.get("trial_report") or {}
        reason = (report.get("reason") if report.get("slot") == state.trial else None) or (
            f"slot {state.trial} did not come up healthy in its boots (no health report: a kernel, initramfs "
            "or early-boot failure, a hang, or lost power)")
        node.boot.write(state.next(trial=None), after=node.reading())
        _roll_back(node, state.trial, reason, remember=True)
        done.append(f"trial of slot {state.trial} failed, its tries used up: {reason}")
    return done


def rollback(node: Node) -> str:
    """``hci-upgrade rollback``: cancel a staged trial, fail the running trial, or switch to the
    other slot when it is known good. Returns what happened; the caller reboots."""
    booted = node.disk.slot
    reading = node.reading()
    state = reading.effective
    if state.trial is not None and booted != state.trial:
        node.boot.write(state.next(trial=None, tries=0), after=reading)
        _roll_back(node, state.trial, "upgrade cancelled by the operator (hci-upgrade rollback)", remember=False)
        return f"cancelled the trial of slot {state.trial}; slot {state.good} stays good"
    if state.trial == booted:
        fail_trial(node, "rolled back by the operator (hci-upgrade rollback)")
        return f"slot {booted} given up; slot {state.good} is good again"
    target = other(state.good)
    if target not in reading.markers:
        raise Refused(f"slot {target} holds no image known to be good; nothing to roll back to")
    node.boot.write(state.next(good=target), after=reading)
    record = node.record()
    record.set_last("rollback", "success", f"switched from slot {state.good} to slot {target}",
                    version=record.slot(target).get("version"), slot=target)
    node.records.write(record)
    return f"slot {target} ({record.slot(target).get('version')}) is the good slot now"
