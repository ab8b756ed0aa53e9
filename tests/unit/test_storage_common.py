"""What both storage engines share (node_services/storage/common.py), on an engine that keeps its
volumes and subsystems in memory: the refusals, the state kept before revocations reach the
engine, and the restore at start that makes the engine serve exactly what the state records."""
from __future__ import annotations

from pathlib import Path

import pytest

from node_services.storage.common import EngineBase
from node_services.storage.model import Conflict, NotFound, Volume
from node_services.storage.state import State

pytestmark = pytest.mark.unit

PREFIX = "nqn.2024-12.io.hcios:n1"
A = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
B = "nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555"


class MemEngine(EngineBase):
    name = "memory"

    def __init__(self, state: State):
        super().__init__(Path("/dev/null"), state, address="192.0.2.1", port=4420, nqn_prefix=PREFIX)
        self.vols = {"vol1": Volume("vol1", 1 << 20, "volume"), "snap1": Volume("snap1", 1 << 20, "snapshot", "vol1")}
        self.subs: dict[str, set[str]] = {}

    def volumes(self) -> list[Volume]:
        return sorted(self.vols.values(), key=lambda v: v.name)

    def _delete(self, name: str) -> None:
        del self.vols[name]

    def _make_subsystem(self, volume: str, nqn: str, hosts: list[str]) -> None:
        self.subs[nqn] = set(hosts)

    def _remove_subsystem(self, nqn: str) -> None:
        del self.subs[nqn]

    def _add_host(self, nqn: str, host: str) -> None:
        self.subs[nqn].add(host)

    def _remove_host(self, nqn: str, host: str) -> None:
        self.subs[nqn].discard(host)

    def _live_subsystems(self) -> dict[str, set[str]]:
        return {nqn: set(hosts) for nqn, hosts in self.subs.items()}


def test_exports_and_allow_lists_are_recorded(tmp_path: Path) -> None:
    eng = MemEngine(State(tmp_path / "state.json"))
    exp = eng.export("vol1", [A])
    assert (exp.nqn, exp.hosts, exp.port) == (f"{PREFIX}:vol1", [A], 4420)
    eng.allow("vol1", B)
    assert eng.subs[exp.nqn] == {A, B} and State(tmp_path / "state.json").exports["vol1"]["hosts"] == [A, B]
    eng.deny("vol1", A)
    assert eng.subs[exp.nqn] == {B}
    with pytest.raises(NotFound, match="not on the allow-list"):
        eng.deny("vol1", A)
    with pytest.raises(Conflict, match="vol1 is exported: hci storage export remove vol1 first"):
        eng.delete("vol1")
    with pytest.raises(Conflict, match="exported already"):
        eng.export("vol1", [A])
    eng.unexport("vol1")
    assert eng.subs == {} and State(tmp_path / "state.json").exports == {}
    with pytest.raises(Conflict, match="snap1 is a snapshot: delete it with hci storage snapshot delete"):
        eng.delete("snap1", "volume")
    with pytest.raises(Conflict, match="vol1 is a volume, not a snapshot"):
        eng._get("vol1", "snapshot")
    eng.delete("vol1")
    assert [v.name for v in eng.volumes()] == ["snap1"]


def test_restore_serves_exactly_what_the_state_records(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    state.exports = {"vol1": {"nqn": f"{PREFIX}:vol1", "hosts": [A]},
                     "gone": {"nqn": f"{PREFIX}:gone", "hosts": [A]}}
    state.save()
    eng = MemEngine(State(tmp_path / "state.json"))
    # the engine kept running while the agent crashed twice: after B was denied (recorded, not
    # yet sent) and after snap1's export was removed (recorded, not yet sent)
    eng.subs = {f"{PREFIX}:vol1": {A, B}, f"{PREFIX}:snap1": {A},
                "nqn.2014-08.org.nvmexpress.discovery": set(), "nqn.2020-01.example:theirs": {B}}
    assert eng._restore() == 0
    assert eng.subs == {f"{PREFIX}:vol1": {A}, "nqn.2014-08.org.nvmexpress.discovery": set(),
                        "nqn.2020-01.example:theirs": {B}}  # not ours: left alone
    assert any(f"removed {PREFIX}:snap1" in w for w in eng.warnings)
    assert any(f"removed {B} from {PREFIX}:vol1" in w for w in eng.warnings)
    assert any("export of gone is recorded but the volume is gone" in w for w in eng.warnings)
    # a restarted engine serves nothing: the recorded export is made again, with its hosts
    eng.subs = {}
    assert eng._restore() == 1 and eng.subs == {f"{PREFIX}:vol1": {A}}
