"""The storage agent's SPDK engine against a real ``nvmf_tgt`` built from the pinned SPDK source
(image/spdk.py, cached), on this host: no VM, no hugepages (``--no-huge``), a sparse file as the
data disk, NVMe/TCP on 127.0.0.1. Everything goes through ``hci storage`` and the agent's API;
SPDK's own userspace initiators (``identify``, ``spdk_dd``) connect as the hosts."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from image.cache import default_cache_root
from image.spdk import build_spdk

from ..conftest import REPO

pytestmark = pytest.mark.build

TARBALL_SHA = "95d03185608eed718571d4bf9c3dfc80e88821ed54f71c420e66b2969f7933c8"
HOST_OK = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
HOST_BAD = "nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555"
NO_HUGE = ["-s", "512", "-u", "--iova-mode", "va", "--env-context=--no-huge --legacy-mem"]
BIN = Path(sys.executable).parent


def third_party() -> Path:
    return Path(os.environ.get("HCIOS_THIRD_PARTY", REPO.parent / "shared" / "third_party"))


@pytest.fixture(scope="session")
def spdk() -> Path:
    return build_spdk(third_party() / "spdk-23.01.1.tar.xz", TARBALL_SHA, default_cache_root())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rig:
    """One nvmf_tgt and one hci-storage-agent, each restartable, on a file disk."""

    def __init__(self, spdk: Path, work: Path):
        self.spdk, self.work = spdk, work
        self.disk = work / "data.img"
        self.rpc, self.api, self.state = work / "spdk.sock", work / "storage.sock", work / "state.json"
        self.port = _free_port()
        self.tgt: subprocess.Popen | None = None
        self.agent: subprocess.Popen | None = None
        with self.disk.open("wb") as f:
            f.truncate(256 << 20)

    def start_target(self) -> None:
        log = (self.work / "tgt.log").open("ab")
        self.tgt = subprocess.Popen([str(self.spdk / "bin/nvmf_tgt"), "-m", "0x1", *NO_HUGE, "--disable-cpumask-locks",
                                     "-r", str(self.rpc)],
                                    stdout=log, stderr=subprocess.STDOUT)
        self._wait(lambda: self.rpc.is_socket(), self.tgt, "nvmf_tgt's RPC socket")

    def start_agent(self) -> None:
        log = (self.work / "agent.log").open("ab")
        self.api.unlink(missing_ok=True)
        self.agent = subprocess.Popen(
            [str(BIN / "hci-storage-agent"), "--device", str(self.disk), "--spdk-socket", str(self.rpc),
             "--api-socket", str(self.api), "--state", str(self.state), "--listen", f"127.0.0.1:{self.port}",
             "--nqn-prefix", "nqn.2024-12.io.hcios:test"], stdout=log, stderr=subprocess.STDOUT)
        self._wait(lambda: self.api.is_socket(), self.agent, "the agent's API socket")

    def _wait(self, ready, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if proc.poll() is not None:
                raise AssertionError(f"{what}: process exited {proc.returncode}\n{self.logs()}")
            time.sleep(0.2)
        raise AssertionError(f"{what} did not appear in {timeout}s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.work.glob("*.log")))

    def stop(self, which: str) -> None:
        proc = getattr(self, which)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        setattr(self, which, None)

    def hci(self, *args: str) -> tuple[int, object, str]:
        p = subprocess.run([str(BIN / "hci"), "storage", "--socket", str(self.api), *args, "--json"],
                           capture_output=True, text=True, timeout=120)
        return p.returncode, json.loads(p.stdout) if p.returncode == 0 else None, p.stderr

    def ok(self, *args: str) -> object:
        rc, out, err = self.hci(*args)
        assert rc == 0, f"hci storage {' '.join(args)} exited {rc}: {err}\n{self.logs()}"
        return out

    def trid(self, nqn: str, host: str) -> str:
        return f"trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{self.port} subnqn:{nqn} hostnqn:{host}"

    def identify(self, nqn: str, host: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "SPDK_ENV_CONTEXT": "--no-huge --legacy-mem", "SPDK_IOVA_MODE": "va"}
        return subprocess.run([str(self.spdk / "bin/identify"), "-p", "1", "-r", self.trid(nqn, host)],
                              capture_output=True, text=True, timeout=90, env=env)

    def dd(self, nqn: str, *args: str) -> subprocess.CompletedProcess:
        conf = self.work / "dd.json"
        conf.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": [{
            "method": "bdev_nvme_attach_controller", "params": {
                "name": "N0", "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(self.port),
                "subnqn": nqn, "hostnqn": HOST_OK}}]}]}))
        return subprocess.run([str(self.spdk / "bin/spdk_dd"), "-m", "0x2", *NO_HUGE, "--json", str(conf), *args],
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rig(spdk: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = Rig(spdk, tmp_path_factory.mktemp("spdk"))
    r.start_target()
    r.start_agent()
    yield r
    r.stop("agent")
    r.stop("tgt")


def test_engine_is_portable_and_static(spdk: Path) -> None:
    """Built for x86-64-v2 (not -march=native), SPDK and DPDK linked in: the node needs only the
    system libraries the profile installs."""
    debs = set((spdk / "RUNTIME-DEBS").read_text().split())
    assert debs <= {"libc6", "libaio1", "libbsd0", "libfdt1", "libmd0", "libnuma1", "libssl3", "libuuid1"}, debs
    ldd = subprocess.run(["ldd", str(spdk / "bin/nvmf_tgt")], capture_output=True, text=True).stdout
    assert "librte" not in ldd and "libspdk" not in ldd


def test_volume_snapshot_clone_export_and_read_back(rig: Rig) -> None:
    vol = rig.ok("volume", "create", "vol1", "--size", "64M")
    # SPDK 23.01 does not report allocated clusters: None ("-"), not a made-up number
    assert vol == {"name": "vol1", "size": 64 << 20, "kind": "volume", "parent": None, "allocated": None}
    exp = rig.ok("export", "add", "vol1", "--host", HOST_OK)
    assert exp["nqn"] == "nqn.2024-12.io.hcios:test:vol1" and exp["hosts"] == [HOST_OK]
    # the allowed host identifies the namespace; one not on the list is refused by the target
    good = rig.identify(exp["nqn"], HOST_OK)
    assert good.returncode == 0, good.stderr[-2000:]
    assert f"NVMe over Fabrics controller at 127.0.0.1:{rig.port}: {exp['nqn']}" in good.stdout
    assert "Model Number:                          hcios volume" in good.stdout
    bad = rig.identify(exp["nqn"], HOST_BAD)
    assert bad.returncode != 0
    assert f"Subsystem '{exp['nqn']}' does not allow host '{HOST_BAD}'" in (rig.work / "tgt.log").read_text()
    # write 1 MiB over NVMe/TCP and read it back
    pattern = rig.work / "pattern.bin"
    pattern.write_bytes(os.urandom(1 << 20))
    w = rig.dd(exp["nqn"], f"--if={pattern}", "--ob=N0n1", "--bs=4096")
    assert w.returncode == 0, w.stdout + w.stderr
    back = rig.work / "back.bin"
    r = rig.dd(exp["nqn"], "--ib=N0n1", f"--of={back}", "--bs=4096", "--count=256")
    assert r.returncode == 0 and back.read_bytes() == pattern.read_bytes()
    # snapshot, clone, export the clone: it holds the volume's bytes as of the snapshot
    snap = rig.ok("snapshot", "create", "vol1", "snap1")
    assert (snap["kind"], snap["parent"]) == ("snapshot", "vol1")
    clone = rig.ok("volume", "clone", "snap1", "clone1")
    assert (clone["kind"], clone["parent"], clone["size"]) == ("clone", "snap1", 64 << 20)
    cexp = rig.ok("export", "add", "clone1", "--host", HOST_OK)
    back2 = rig.work / "back2.bin"
    r = rig.dd(cexp["nqn"], "--ib=N0n1", f"--of={back2}", "--bs=4096", "--count=256")
    assert r.returncode == 0 and back2.read_bytes() == pattern.read_bytes()
    assert [v["name"] for v in rig.ok("volume", "list")] == ["clone1", "vol1"]
    assert [s["name"] for s in rig.ok("snapshot", "list")] == ["snap1"]
    # the allow-list can change while exported
    assert rig.ok("export", "allow", "clone1", HOST_BAD)["hosts"] == sorted([HOST_OK, HOST_BAD])
    assert rig.identify(cexp["nqn"], HOST_BAD).returncode == 0
    assert rig.ok("export", "deny", "clone1", HOST_BAD)["hosts"] == [HOST_OK]
    assert rig.identify(cexp["nqn"], HOST_BAD).returncode != 0


def test_bad_requests_exit_2_and_name_the_field(rig: Rig) -> None:
    for args, needle in ((("volume", "create", "Bad_Name", "--size", "1G"), "name: 'Bad_Name'"),
                         (("volume", "create", "v2", "--size", "12K"), "size: 12K"),
                         (("volume", "create", "vol1", "--size", "8M"), "vol1 exists already"),
                         (("export", "add", "nosuch", "--host", HOST_OK), "no volume or snapshot named nosuch"),
                         (("export", "add", "snap1", "--host", "iqn.bad"), "hosts[0]: 'iqn.bad'"),
                         (("volume", "clone", "vol1", "c2"), "vol1 is a volume, not a snapshot"),
                         (("volume", "delete", "vol1"), "vol1 is exported"),
                         (("volume", "delete", "snap1"), "snap1 is a snapshot: delete it with hci storage snapshot"),
                         (("snapshot", "delete", "vol1"), "vol1 is a volume: delete it with hci storage volume")):
        rc, _, err = rig.hci(*args)
        assert rc == 2 and needle in err, (args, rc, err)
    assert [v["name"] for v in rig.ok("volume", "list")] == ["clone1", "vol1"]


def test_state_survives_restarts_of_the_agent_and_the_target(rig: Rig) -> None:
    before = (rig.ok("volume", "list"), rig.ok("snapshot", "list"), rig.ok("export", "list"))
    assert (rig.work / "serving").exists()  # hci-storage-boot.service starts the agent at boot
    assert oct(rig.state.stat().st_mode & 0o777) == "0o600"
    rig.stop("agent")
    rig.start_agent()
    assert (rig.ok("volume", "list"), rig.ok("snapshot", "list"), rig.ok("export", "list")) == before
    # the target restarts: the lvstore is found again on the disk, the exports are restored
    rig.stop("agent")
    rig.stop("tgt")
    rig.start_target()
    rig.start_agent()
    assert "found volume store hci" in (rig.work / "agent.log").read_text().splitlines()[-2]
    assert (rig.ok("volume", "list"), rig.ok("snapshot", "list"), rig.ok("export", "list")) == before
    back = rig.work / "back3.bin"
    nqn = "nqn.2024-12.io.hcios:test:vol1"
    r = rig.dd(nqn, "--ib=N0n1", f"--of={back}", "--bs=4096", "--count=256")
    assert r.returncode == 0 and back.read_bytes() == (rig.work / "pattern.bin").read_bytes()
    assert rig.identify(nqn, HOST_BAD).returncode != 0  # the allow-list came back too
    # and so did the deny on clone1 (HOST_BAD was allowed, then denied, before the restarts)
    assert rig.identify("nqn.2024-12.io.hcios:test:clone1", HOST_BAD).returncode != 0
    assert rig.identify("nqn.2024-12.io.hcios:test:clone1", HOST_OK).returncode == 0
    # unexport and delete, in dependency order
    rig.ok("export", "remove", "clone1")
    rig.ok("volume", "delete", "clone1")
    rig.ok("export", "remove", "vol1")
    assert rig.ok("export", "list") == []
    assert not (rig.work / "serving").exists()
    assert rig.identify(nqn, HOST_OK).returncode != 0


def test_a_disk_that_holds_something_is_not_claimed(spdk: Path, tmp_path: Path) -> None:
    r = Rig(spdk, tmp_path)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(r.disk)], check=True)
    r.start_target()
    try:
        with pytest.raises(AssertionError, match="exited 2"):
            r.start_agent()
        assert "holds a ext4 signature: refusing" in (tmp_path / "agent.log").read_text()
    finally:
        r.stop("tgt")
