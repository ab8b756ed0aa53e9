"""The storage agent's input checks and its local API (a unix socket, one JSON request and
reply), with an in-memory engine behind the interface; the SPDK engine itself runs in
tests/build/test_storage_spdk.py."""
from __future__ import annotations

import socket
import stat
import threading
from pathlib import Path

import pytest

from hcicore.errors import HciError, ValidationError
from node_services.storage import api
from node_services.storage.model import Conflict, Export, NotFound, Volume, check_nqn, parse_size
from node_services.storage.state import State

pytestmark = pytest.mark.unit

OK = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize(("text", "size"), [("64M", 64 << 20), ("1G", 1 << 30), ("1GiB", 1 << 30),
                                            ("2t", 2 << 40), (str(8 << 20), 8 << 20)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "12K", "1.5G", "-1G", "1048577", "ten"])
def test_bad_sizes_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_size(text, "size")
    assert err.value.problems[0].path == "size"


@pytest.mark.parametrize("nqn", [OK, "nqn.2024-12.io.hcios:node1", "nqn.1992-08.com.netapp:sn.1234"])
def test_good_nqns(nqn: str) -> None:
    assert check_nqn("host", nqn) == nqn


@pytest.mark.parametrize("nqn", ["iqn.2024-12.io.x:y", "nqn.2014-08.org.nvmexpress:uuid:not-a-uuid",
                                 "nqn.24-12.io.x", "nqn.2024-12.io.x:" + "a" * 220])
def test_bad_nqns(nqn: str) -> None:
    with pytest.raises(ValidationError):
        check_nqn("host", nqn)


class MemoryBackend:
    """The Backend interface over a dict, for the API layer's tests."""

    name = "memory"

    def __init__(self) -> None:
        self.vols: dict[str, Volume] = {}
        self.exps: dict[str, Export] = {}

    def claim(self) -> str:
        return "memory"

    def volumes(self) -> list[Volume]:
        return sorted(self.vols.values(), key=lambda v: v.name)

    def create_volume(self, name: str, size: int) -> Volume:
        if name in self.vols:
            raise Conflict(f"{name} exists already")
        self.vols[name] = Volume(name, size, "volume")
        return self.vols[name]

    def delete(self, name: str, kind: str | None = None) -> None:
        if name not in self.vols:
            raise NotFound(f"no volume named {name}")
        del self.vols[name]

    def snapshot(self, volume: str, name: str) -> Volume:
        self.vols[name] = Volume(name, self.vols[volume].size, "snapshot", volume)
        return self.vols[name]

    def clone(self, snapshot: str, name: str) -> Volume:
        self.vols[name] = Volume(name, self.vols[snapshot].size, "clone", snapshot)
        return self.vols[name]

    def exports(self) -> list[Export]:
        return list(self.exps.values())

    def export(self, volume: str, hosts: list[str]) -> Export:
        self.exps[volume] = Export(volume, f"nqn.2024-12.io.hcios:t:{volume}", "127.0.0.1", 4420, hosts)
        return self.exps[volume]

    def unexport(self, volume: str) -> None:
        del self.exps[volume]

    def allow(self, volume: str, host: str) -> Export:
        self.exps[volume].hosts.append(host)
        return self.exps[volume]

    def deny(self, volume: str, host: str) -> Export:
        self.exps[volume].hosts.remove(host)
        return self.exps[volume]


@pytest.fixture
def served(tmp_path: Path):
    path = tmp_path / "run" / "storage.sock"
    server = api.serve(MemoryBackend(), path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


def test_api_round_trip_and_errors(served: Path) -> None:
    assert stat.S_IMODE(served.stat().st_mode) == 0o600
    vol = api.request("volume.create", {"name": "db", "size": "1G"}, served)
    assert vol == {"name": "db", "size": 1 << 30, "kind": "volume", "parent": None, "allocated": None}
    assert api.request("snapshot.create", {"volume": "db", "name": "s1"}, served)["kind"] == "snapshot"
    assert [v["name"] for v in api.request("volume.list", {}, served)] == ["db"]
    assert [v["name"] for v in api.request("snapshot.list", {}, served)] == ["s1"]
    assert api.request("export.add", {"volume": "db", "hosts": [OK]}, served)["hosts"] == [OK]
    for op, args, code, text in (
            ("volume.create", {"name": "db", "size": "1G"}, 2, "db exists already"),
            ("volume.create", {"name": "Bad", "size": "1G"}, 2, "name: 'Bad' is not a valid name"),
            ("volume.create", {"name": "x"}, 2, "missing argument 'size'"),
            ("export.add", {"volume": "db", "hosts": ["bad"]}, 2, "hosts[0]: 'bad'"),
            ("volume.delete", {"name": "nosuch"}, 2, "no volume named nosuch"),
            # JSON of the wrong types is refused as clearly as bad strings (no crash, no hang)
            ("volume.create", {"name": 7, "size": "1G"}, 2, "name: 7 is not a valid name"),
            ("volume.create", {"name": "x", "size": True}, 2, "size: True is not a size"),
            ("volume.create", {"name": "x", "size": ["1G"]}, 2, "size: ['1G'] is not a size"),
            ("export.add", {"volume": "db", "hosts": OK}, 2, "hosts: is not a list"),
            ("export.allow", {"volume": "db", "host": None}, 2, "host: None is not an NVMe qualified name"),
            ("volume.list", ["not", "an", "object"], 2, "bad request"),
            ("no.such", {}, 2, "bad request")):
        with pytest.raises(api.ApiError) as err:
            api.request(op, args, served)
        assert err.value.exit_code == code and text in str(err.value), (op, str(err.value))


def test_api_takes_a_socket_from_systemd(tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    server = api.serve(MemoryBackend(), path, listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert api.request("volume.list", {}, path) == []
    finally:
        server.shutdown()
        server.server_close()


def test_no_agent_is_a_clear_failure(tmp_path: Path) -> None:
    with pytest.raises(api.ApiError, match="does not answer") as err:
        api.request("volume.list", {}, tmp_path / "none.sock")
    assert err.value.exit_code == 1


def test_state_round_trips_and_marks_serving(tmp_path: Path) -> None:
    state = State(tmp_path / "s" / "state.json")
    state.exports["db"] = {"nqn": "nqn.2024-12.io.hcios:t:db", "hosts": [OK]}
    state.origins["s1"] = {"kind": "snapshot", "parent": "db"}
    state.save()
    assert (tmp_path / "s" / "serving").exists()
    again = State(tmp_path / "s" / "state.json")
    assert (again.exports, again.origins) == (state.exports, state.origins)
    again.exports.clear()
    again.save()
    assert not (tmp_path / "s" / "serving").exists()
    (tmp_path / "s" / "state.json").write_text("{not json")
    with pytest.raises(HciError, match="unreadable storage state"):
        State(tmp_path / "s" / "state.json")
