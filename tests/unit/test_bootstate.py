"""The boot state's two copies: format, validity, which copy readers take, write order, repair."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hcicore.bootstate import (COPIES, ENV_SIZE, BootState, BootStateStore, choose, decode, encode, encode_env,
                               parse_env)

pytestmark = pytest.mark.unit


def test_round_trip_and_one_sector() -> None:
    state = BootState(12, "a", "b", 2)
    block = encode(state)
    assert len(block) == ENV_SIZE
    assert block.startswith(b"# GRUB Environment Block\nhci_seq=12\nhci_good=a\nhci_try=b\nhci_tries=2\n"
                            b"hci_check=12:a:b:2\n#")
    # everything that matters sits in the first 512-byte sector (a sector write is atomic)
    assert block[512:] == b"#" * 512
    assert decode(block) == state
    assert decode(encode(BootState(3, "b"))) == BootState(3, "b", None, 0)


@pytest.mark.parametrize("damage", [
    lambda b: b[:700],                                      # short file
    lambda b: b"X" + b[1:],                                 # signature gone
    lambda b: b.replace(b"hci_tries=2", b"hci_tries=1"),    # field disagrees with the check
    lambda b: b.replace(b"hci_check=12:a:b:2", b"hci_check=12:a:b:3"),
    lambda b: b[:60] + bytes(80) + b[140:],                 # zeroed middle (a torn write)
    lambda b: b.replace(b"hci_good=a", b"hci_good=c").replace(b"12:a:b:2", b"12:c:b:2"),
    lambda b: b.replace(b"hci_try=b", b"hci_try=a").replace(b"12:a:b:2", b"12:a:a:2"),  # trial of the good slot
    lambda b: b.replace(b"hci_tries=2", b"hci_tries=9").replace(b"12:a:b:2", b"12:a:b:9"),
])
def test_a_damaged_copy_is_not_valid(damage) -> None:
    assert decode(damage(encode(BootState(12, "a", "b", 2)))) is None


def test_readers_take_the_newest_then_the_fewest_tries() -> None:
    old, new = BootState(4, "a"), BootState(5, "a", "b", 3)
    assert choose([old, new]) == (new, 1)
    assert choose([new, old]) == (new, 0)
    counted = BootState(5, "a", "b", 2)  # grub saved its countdown into one copy only
    assert choose([new, counted]) == (counted, 1)
    assert choose([None, old]) == (old, 1)
    assert choose([None, None]) == (None, None)


def test_write_goes_to_the_unused_copy_first(tmp_path: Path) -> None:
    seen: list[tuple[str, tuple]] = []
    store = BootStateStore(tmp_path, hook=lambda p: seen.append((p, store.read().copies)))
    store.initialize("a")
    reading = store.read()
    assert reading.state == BootState(1, "a") and reading.markers == ("a",)
    seen.clear()
    store.write(BootState(2, "a", "b", 3))
    # after the first copy: one new copy with the higher seq: readers already take the new state
    first_point, copies = seen[0]
    assert first_point == "bootstate-copy-1"
    assert reading.index == 0 and [c.seq for c in copies] == [1, 2]  # copy 1, not in use, went first
    assert store.read().state == BootState(2, "a", "b", 3)
    assert [s.seq for s in store.read().copies] == [2, 2]
    # with copy 1 the one in use (copy 0 torn), copy 0 goes first
    (store.dir / COPIES[0]).write_bytes(b"torn")
    assert store.read().index == 1
    seen.clear()
    store.write(BootState(3, "a"))
    assert [c.seq if c else None for c in seen[0][1]] == [3, 2]


def test_repair_rewrites_a_torn_copy(tmp_path: Path) -> None:
    store = BootStateStore(tmp_path)
    store.initialize("a")
    store.write(BootState(2, "a", "b", 3))
    (store.dir / COPIES[1]).write_bytes(b"# GRUB Environment Block\nhci_seq=2\nhci_go" + b"\0" * 978)
    reading = store.read()
    assert reading.state == BootState(2, "a", "b", 3) and reading.damaged == [1]
    assert store.repair() == [1]
    assert store.read().copies == (BootState(2, "a", "b", 3), BootState(2, "a", "b", 3))


def test_no_valid_copy_falls_back_to_a_marked_slot(tmp_path: Path) -> None:
    store = BootStateStore(tmp_path)
    store.initialize("a")
    store.set_marker("b", True)
    store.set_marker("a", False)
    for name in COPIES:
        (store.dir / name).write_bytes(b"garbage")
    reading = store.read()
    assert reading.state is None and reading.effective == BootState(0, "b")


def test_env_parser_matches_grub_editenv(tmp_path: Path) -> None:
    if shutil.which("grub-editenv") is None:
        pytest.skip("grub-editenv not installed")
    path = tmp_path / "env"
    subprocess.run(["grub-editenv", str(path), "create"], check=True)
    subprocess.run(["grub-editenv", str(path), "set", "hci_seq=7", "hci_good=b", "hci_try=", "hci_tries=0",
                    "hci_check=7:b::0"], check=True)
    assert decode(path.read_bytes()) == BootState(7, "b")
    ours = tmp_path / "ours"
    ours.write_bytes(encode(BootState(7, "b")))
    out = subprocess.run(["grub-editenv", str(ours), "list"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["hci_seq=7", "hci_good=b", "hci_try=", "hci_tries=0", "hci_check=7:b::0"]
    assert parse_env(encode_env({"x": "1"})) == {"x": "1"}
