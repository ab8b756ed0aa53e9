"""The kernel engine's LVM side without a kernel (this host has neither device-mapper thin nor
nvmet; the VM test in test_upgrade.py runs it for real): what it asks LVM for, how it reads
`lvs --reportformat json`, and that a disk holding something is refused before any LVM call
writes to it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcicore.command import Result
from node_services.storage import common, kernel
from node_services.storage.model import Conflict, NotFound
from node_services.storage.state import State

pytestmark = pytest.mark.unit

LVS = {"report": [{"lv": [
    {"lv_name": "pool", "lv_size": "966787072", "pool_lv": "", "data_percent": "1.20", "lv_tags": ""},
    {"lv_name": "v-vol1", "lv_size": "67108864", "pool_lv": "pool", "data_percent": "50.00",
     "lv_tags": "hci.kind.volume"},
    {"lv_name": "v-snap1", "lv_size": "67108864", "pool_lv": "pool", "data_percent": "50.00",
     "lv_tags": "hci.kind.snapshot,hci.parent.vol1"},
    {"lv_name": "v-clone1", "lv_size": "67108864", "pool_lv": "pool", "data_percent": "",
     "lv_tags": "hci.kind.clone,hci.parent.snap1"},
    {"lv_name": "someone-else", "lv_size": "1048576", "pool_lv": "pool", "data_percent": "0.00", "lv_tags": ""},
]}]}


class FakeRun:
    """Answers the read-only LVM reports and blkid; records every other command."""

    def __init__(self, pvs: list[dict], blkid_rc: int = 2):
        self.pvs, self.blkid_rc, self.calls = pvs, blkid_rc, []

    def __call__(self, argv, check=True, **_):
        self.calls.append(argv)
        out, rc = "", 0
        if argv[0] == "pvs":
            out = json.dumps({"report": [{"pv": self.pvs}]})
        elif argv[0] == "lvs":
            out = json.dumps(LVS)
        elif argv[0] == "blkid":
            rc, out = self.blkid_rc, "TYPE=ext4\n" if self.blkid_rc == 0 else ""
        return Result(argv, rc, out, "")


@pytest.fixture
def engine(tmp_path: Path) -> kernel.KernelBackend:
    (tmp_path / "nvmet").mkdir()
    return kernel.KernelBackend(Path("/dev/vdc"), State(tmp_path / "state.json"), address="192.0.2.1", port=4421,
                                nqn_prefix="nqn.2024-12.io.hcios:n1", configfs=tmp_path / "nvmet")


def test_volumes_are_read_from_the_lv_tags(engine, monkeypatch) -> None:
    monkeypatch.setattr(kernel, "run", FakeRun([]))
    vols = {v.name: v for v in engine.volumes()}
    assert sorted(vols) == ["clone1", "snap1", "vol1"]  # the pool and foreign LVs are not ours
    assert (vols["vol1"].kind, vols["vol1"].size, vols["vol1"].allocated) == ("volume", 64 << 20, 32 << 20)
    assert (vols["snap1"].kind, vols["snap1"].parent) == ("snapshot", "vol1")
    assert (vols["clone1"].kind, vols["clone1"].parent, vols["clone1"].allocated) == ("clone", "snap1", None)


def test_a_used_disk_is_refused_before_lvm_writes(engine, monkeypatch) -> None:
    fake = FakeRun([], blkid_rc=0)
    monkeypatch.setattr(kernel, "run", fake)
    monkeypatch.setattr(common, "run", fake)
    with pytest.raises(Conflict, match="holds a ext4 signature: refusing to make a volume group"):
        engine.claim()
    assert [c[0] for c in fake.calls] == ["pvs", "blkid"]  # only reads


def test_snapshot_and_clone_ask_lvm_for_thin_snapshots(engine, monkeypatch) -> None:
    fake = FakeRun([])
    monkeypatch.setattr(kernel, "run", fake)
    with pytest.raises(Conflict, match="vol1 is a volume, not a snapshot"):
        engine.clone("vol1", "c2")
    with pytest.raises(Conflict, match="snap1 exists already"):
        engine.snapshot("vol1", "snap1")
    with pytest.raises(NotFound):
        engine.snapshot("nope", "s2")
    with pytest.raises(NotFound):  # the LV "s2" never appears in the canned report
        engine.snapshot("vol1", "s2")
    made = [c for c in fake.calls if c[0] == "lvcreate"]
    assert made == [["lvcreate", "-q", "-s", "-kn", "-p", "r", "hci/v-vol1", "-n", "v-s2",
                     "--addtag", "hci.kind.snapshot", "--addtag", "hci.parent.vol1"]]
