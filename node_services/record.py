"""What each slot holds and what the last upgrade did: a JSON record on hci-oem, two copies.

The boot decision never depends on it (that is :mod:`hcicore.bootstate`); it holds what
``hci-upgrade status`` reports and what ``apply`` checks: per slot the version, sha256 and
source of the image, whether it was rolled back and why, the result of the last operation, the
images this node rolled back from (refused again without ``--force``) and the /etc merge
conflicts of the last upgrade.

Each copy (``upgrade.0.json``, ``upgrade.1.json``) is ``{"seq": n, "sha256": <of the body>,
"body": {...}}``, written like the boot state: the older copy first, by temp file, fsync and
rename. Readers take the valid copy with the highest ``seq``; with none (a fresh install) the
record starts from ``install.json``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcicore.files import write_atomic
from hcicore.layout import OEM_DIR

COPIES = ("upgrade.0.json", "upgrade.1.json")
MAX_HISTORY = 20


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def empty_slot() -> dict[str, Any]:
    return {"version": None, "sha256": None, "size": None, "ref": None, "written_at": None, "bad": None}


@dataclass
class Record:
    seq: int = 0
    body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.body.setdefault("slots", {"a": empty_slot(), "b": empty_slot()})
        self.body.setdefault("last", None)
        self.body.setdefault("rolled_back", [])
        self.body.setdefault("etc_conflicts", [])
        self.body.setdefault("trial_report", None)
        self.body.setdefault("history", [])

    def slot(self, name: str) -> dict[str, Any]:
        return self.body["slots"][name]

    def set_last(self, action: str, result: str, reason: str = "", **fields: Any) -> None:
        entry = {"action": action, "result": result, "reason": reason, "at": int(time.time()), **fields}
        self.body["last"] = entry
        self.body["history"] = ([entry] + self.body["history"])[:MAX_HISTORY]

    def rolled_back_entry(self, sha256: str, version: str) -> dict[str, Any] | None:
        for entry in self.body["rolled_back"]:
            if entry.get("sha256") == sha256 or entry.get("version") == version:
                return entry
        return None


class RecordStore:
    def __init__(self, oem_root: Path):
        self.dir = oem_root / OEM_DIR

    def _read_copy(self, name: str) -> Record | None:
        try:
            data = json.loads((self.dir / name).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("body"), dict) or not isinstance(data.get("seq"), int):
            return None
        if data.get("sha256") != _digest(data["body"]):
            return None
        return Record(data["seq"], data["body"])

    def read(self, *, install: dict | None = None) -> Record:
        """The newest valid copy; without one, a record that knows what the installer wrote."""
        copies = [self._read_copy(name) for name in COPIES]
        valid = [c for c in copies if c is not None]
        if valid:
            return max(valid, key=lambda r: r.seq)
        record = Record()
        info = install or {}
        if info.get("slot_a_sha256"):
            record.slot("a").update(version=info.get("version"), sha256=info.get("slot_a_sha256"),
                                    size=info.get("image_bytes"), ref="install", written_at=info.get("installed_at"))
        return record

    def write(self, record: Record) -> Record:
        """Write ``record`` with the next sequence number to both copies (older copy first)."""
        current = [self._read_copy(name) for name in COPIES]
        seqs = [c.seq if c is not None else -1 for c in current]
        new = Record(max(max(seqs), record.seq) + 1, copy.deepcopy(record.body))
        data = json.dumps({"seq": new.seq, "sha256": _digest(new.body), "body": new.body},
                          indent=1, sort_keys=True).encode() + b"\n"
        first = 0 if seqs[0] <= seqs[1] else 1
        for index in (first, 1 - first):
            write_atomic(self.dir / COPIES[index], data, mode=0o644, dir_mode=0o700)
        record.seq = new.seq
        return new
