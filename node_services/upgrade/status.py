"""``hci-upgrade status [--json]``: what boots, what is good, what each slot holds, what happened.

The JSON is a contract (operators' scripts and independent checks read it)::

    {"booted": "b", "good": "b", "trial": null, "tries_left": 0,
     "slots": {"a": {"version", "sha256", "state", ...}, "b": {...}},
     "last": {"result": "success" | "staged" | "rolled-back" | ..., "reason": "...", ...},
     "etc_conflicts": [...], "rolled_back": [...], "boot_state": {...}}

Slot states: ``good`` (booted healthy, kept as a fallback), ``trial`` (on trial: grub boots it
next, or it runs now and waits for the health gate), ``bad`` (rolled back from, or given up),
``empty`` (no image, or one whose write did not finish).
"""
from __future__ import annotations

from typing import Any

from hcicore.bootstate import SLOTS

from .node import Node


def slot_state(slot: str, *, trial: str | None, markers: tuple[str, ...], info: dict[str, Any]) -> str:
    if trial == slot:
        return "trial"
    if slot in markers:
        return "good"
    if info.get("bad"):
        return "bad"
    return "empty"


def status(node: Node) -> dict[str, Any]:
    reading = node.reading()
    state = reading.effective
    record = node.record()
    slots = {}
    for slot in SLOTS:
        info = record.slot(slot)
        slots[slot] = {
            "version": info.get("version"), "sha256": info.get("sha256"),
            "state": slot_state(slot, trial=state.trial, markers=reading.markers, info=info),
            "size": info.get("size"), "source": info.get("ref"), "written_at": info.get("written_at"),
            "reason": info.get("bad"),
            "partuuid": node.disk.partuuids.get(f"hci-root-{slot}"),
        }
    last = record.body.get("last") or {"action": None, "result": None, "reason": ""}
    return {
        "booted": node.disk.slot,
        "good": state.good,
        "trial": state.trial,
        "tries_left": state.tries if state.trial else 0,
        "trial_boot": node.disk.trial,
        "slots": slots,
        "last": {"result": last.get("result"), "reason": last.get("reason") or "", **last},
        "etc_conflicts": record.body.get("etc_conflicts") or [],
        "rolled_back": record.body.get("rolled_back") or [],
        "boot_state": {"seq": state.seq, "valid_copies": [i for i, c in enumerate(reading.copies) if c is not None],
                       "good_markers": list(reading.markers), "disk_guid": node.disk.disk_guid},
    }


def human(doc: dict[str, Any]) -> str:
    lines = [f"booted slot {doc['booted']}, good slot {doc['good']}"
             + (f", trial: slot {doc['trial']} ({doc['tries_left']} tries left)" if doc["trial"] else "")]
    for slot, info in doc["slots"].items():
        mark = "*" if slot == doc["booted"] else " "
        sha = (info["sha256"] or "")[:16]
        extra = f"  ({info['reason']})" if info.get("reason") else ""
        lines.append(f"{mark} {slot}: {info['state']:<6} {info['version'] or '-':<12} {sha}{extra}")
    last = doc["last"]
    if last.get("result"):
        reason = f": {last['reason']}" if last.get("reason") else ""
        lines.append(f"last: {last.get('action')} {last['result']}{reason}")
    for conflict in doc["etc_conflicts"]:
        lines.append(f"/etc conflict: {conflict['path']} ({conflict['kind']}; kept {conflict['kept']})")
    return "\n".join(lines)
