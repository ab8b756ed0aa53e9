"""What the engine does not keep on the disk, kept on /var: the exports (an SPDK target holds
its NVMe-oF subsystems in memory only) and each volume's origin (SPDK turns a volume into a
clone of its own snapshot, so "snapshot of X" and "clone of S" are recorded here). Written
atomically (0600); the agent restores the exports from it at every start."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hcicore.errors import HciError
from hcicore.files import write_atomic

DEFAULT_PATH = Path("/var/lib/hcios/storage/state.json")
# present while something is exported: hci-storage-boot.service starts the agent at boot then
SERVING = "serving"
VERSION = 1


class State:
    def __init__(self, path: Path = DEFAULT_PATH):
        self.path = path
        self.exports: dict[str, dict[str, Any]] = {}  # volume -> {"nqn": ..., "hosts": [...]}
        self.origins: dict[str, dict[str, str]] = {}  # name -> {"kind": snapshot|clone, "parent": ...}
        if path.exists():
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise HciError(f"{path}: unreadable storage state ({err}); move it aside to start "
                               "without exports") from err
            if doc.get("version") != VERSION:
                raise HciError(f"{path}: state version {doc.get('version')!r}, this agent reads {VERSION}")
            self.exports = doc.get("exports", {})
            self.origins = doc.get("origins", {})

    def save(self) -> None:
        doc = {"version": VERSION, "exports": self.exports, "origins": self.origins}
        write_atomic(self.path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode(),
                     mode=0o600, dir_mode=0o700)
        marker = self.path.parent / SERVING
        if self.exports:
            marker.touch(mode=0o600)
        else:
            marker.unlink(missing_ok=True)
