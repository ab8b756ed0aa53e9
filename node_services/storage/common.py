"""What both engines do the same way: the refusals (names taken, kinds mixed up, exported
volumes), the exports and allow-lists as recorded in the agent's state (recorded before a
revocation reaches the engine: a crash never restores an access that was taken away), their
restore at start, and the blank-disk check before a disk is claimed. An engine supplies its
volumes and the few calls that touch it (``_delete``, ``_make_subsystem``, ``_remove_subsystem``,
``_add_host``, ``_remove_host``, ``_live_subsystems``)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from hcicore.command import run

from .model import Conflict, Export, NotFound, Volume
from .state import State


def blank_device(device: Path, magic: bytes | None = None) -> str | None:
    """None when ``device`` holds nothing blkid (or ``magic`` at offset 0) recognizes; else what."""
    if magic is not None:
        with device.open("rb") as fh:
            if fh.read(len(magic)) == magic:
                return "an SPDK blobstore that did not load as an lvstore"
    probe = run(["blkid", "-p", "-o", "export", str(device)], check=False)
    if probe.returncode == 2:  # blkid: nothing found; anything else is not "blank"
        return None
    if probe.returncode == 0:
        kind = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
        return f"a {kind.get('TYPE') or kind.get('PTTYPE') or 'known'} signature"
    return f"something blkid cannot name (exit {probe.returncode}: {probe.stderr.strip() or 'ambiguous'})"


class EngineBase(ABC):
    name = "engine"

    def __init__(self, device: Path, state: State, *, address: str, port: int, nqn_prefix: str):
        self.device = device
        self.state = state
        self.address, self.port = address, port
        self.nqn_prefix = nqn_prefix
        self.warnings: list[str] = []

    # ---- what an engine supplies ----------------------------------------------------------------
    @abstractmethod
    def volumes(self) -> list[Volume]: ...

    @abstractmethod
    def _delete(self, name: str) -> None: ...

    @abstractmethod
    def _make_subsystem(self, volume: str, nqn: str, hosts: list[str]) -> None: ...

    @abstractmethod
    def _remove_subsystem(self, nqn: str) -> None: ...

    @abstractmethod
    def _add_host(self, nqn: str, host: str) -> None: ...

    @abstractmethod
    def _remove_host(self, nqn: str, host: str) -> None: ...

    @abstractmethod
    def _live_subsystems(self) -> dict[str, set[str]]:
        """Every subsystem the engine serves now: NQN -> allowed host NQNs."""

    # ---- shared ---------------------------------------------------------------------------------
    def _refuse_used(self, held: str | None, what: str) -> None:
        if held is not None:
            raise Conflict(f"{self.device} holds {held}: refusing to make a {what} on it "
                           "(install.data_device with data_wipe: true hands the agent a blank disk)")

    def _restore(self) -> int:
        """Make the engine serve what the state records, no more: our subsystems the state does
        not know (a revocation recorded before the engine saw it, then a crash) are removed, the
        allow-lists of the others set to the recorded ones, the missing ones made again."""
        live = self._live_subsystems()
        recorded = {exp["nqn"]: exp for exp in self.state.exports.values()}
        for nqn, hosts in sorted(live.items()):
            if not nqn.startswith(f"{self.nqn_prefix}:"):
                continue  # not this agent's (SPDK's discovery subsystem, an operator's own)
            if nqn not in recorded:
                self._remove_subsystem(nqn)
                self.warnings.append(f"removed {nqn}: served but not in the agent's state")
                continue
            want = set(recorded[nqn]["hosts"])
            for host in sorted(hosts - want):
                self._remove_host(nqn, host)
                self.warnings.append(f"removed {host} from {nqn}: not on the recorded allow-list")
            for host in sorted(want - hosts):
                self._add_host(nqn, host)
        names = {v.name for v in self.volumes()}
        count = 0
        for volume, exp in sorted(self.state.exports.items()):
            if exp["nqn"] in live:
                continue
            if volume not in names:  # keep serving the others; export remove clears the record
                self.warnings.append(f"export of {volume} is recorded but the volume is gone: not restored")
                continue
            self._make_subsystem(volume, exp["nqn"], exp["hosts"])
            count += 1
        return count

    def _get(self, name: str, kind: str | None = None) -> Volume:
        for vol in self.volumes():
            if vol.name == name:
                if kind == "snapshot" and vol.kind != "snapshot":
                    raise Conflict(f"{name} is a {vol.kind}, not a snapshot: clone a snapshot")
                return vol
        raise NotFound(f"no volume or snapshot named {name} (hci storage volume list shows them)")

    def _free(self, name: str) -> None:
        if any(v.name == name for v in self.volumes()):
            raise Conflict(f"{name} exists already: pick another name")

    def delete(self, name: str, kind: str | None = None) -> None:
        vol = self._get(name)
        if kind == "snapshot" and vol.kind != "snapshot" or kind == "volume" and vol.kind == "snapshot":
            raise Conflict(f"{name} is a {vol.kind}: delete it with hci storage "
                           f"{'snapshot' if vol.kind == 'snapshot' else 'volume'} delete")
        if name in self.state.exports:
            raise Conflict(f"{name} is exported: hci storage export remove {name} first")
        self._delete(name)
        if self.state.origins.pop(name, None) is not None:
            self.state.save()

    def _export(self, volume: str) -> Export:
        exp = self.state.exports[volume]
        return Export(volume=volume, nqn=exp["nqn"], address=self.address, port=self.port, hosts=list(exp["hosts"]))

    def exports(self) -> list[Export]:
        return [self._export(v) for v in sorted(self.state.exports)]

    def export(self, volume: str, hosts: list[str]) -> Export:
        self._get(volume)
        if volume in self.state.exports:
            raise Conflict(f"{volume} is exported already: add hosts with hci storage export allow")
        nqn = f"{self.nqn_prefix}:{volume}"
        self._make_subsystem(volume, nqn, hosts)
        self.state.exports[volume] = {"nqn": nqn, "hosts": sorted(set(hosts))}
        self.state.save()
        return self._export(volume)

    def _exported(self, volume: str) -> dict[str, Any]:
        if volume not in self.state.exports:
            raise NotFound(f"{volume} is not exported (hci storage export list shows the exports)")
        return self.state.exports[volume]

    def unexport(self, volume: str) -> None:
        exp = self._exported(volume)
        del self.state.exports[volume]  # recorded first (see the module's docstring)
        self.state.save()
        self._remove_subsystem(exp["nqn"])

    def allow(self, volume: str, host: str) -> Export:
        exp = self._exported(volume)
        if host not in exp["hosts"]:
            self._add_host(exp["nqn"], host)
            exp["hosts"] = sorted({*exp["hosts"], host})
            self.state.save()
        return self._export(volume)

    def deny(self, volume: str, host: str) -> Export:
        exp = self._exported(volume)
        if host not in exp["hosts"]:
            raise NotFound(f"{host} is not on the allow-list of {volume}")
        exp["hosts"] = [h for h in exp["hosts"] if h != host]
        self.state.save()  # recorded first, as in unexport
        self._remove_host(exp["nqn"], host)
        return self._export(volume)
