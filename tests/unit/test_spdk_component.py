"""The SPDK engine as a lock-file component: kind spdk-source, found through HCIOS_THIRD_PARTY
when its file:// path moved, checked by sha256 before the build; the build's cache id moves with
every input."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from hcicore.errors import DigestMismatch
from image import spdk
from image.components import load_lock
from image.fetch import fetch

pytestmark = pytest.mark.unit

LOCK = Path(__file__).parents[2] / "image" / "profiles" / "default" / "components.lock.yaml"


def test_default_lock_pins_the_spdk_source() -> None:
    (comp,) = [c for c in load_lock(LOCK) if c.name == "spdk"]
    assert (comp.kind, comp.version, comp.dest) == ("spdk-source", "v23.01.1", "/usr/lib/hcios/spdk")
    assert comp.sha256 == "95d03185608eed718571d4bf9c3dfc80e88821ed54f71c420e66b2969f7933c8"
    assert not [c for c in load_lock(LOCK) if "mayastor" in c.url]  # no borrowed agent image


def test_moved_third_party_file_is_found_by_name_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = b"source tarball"
    (mirror / "src.tar.xz").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    monkeypatch.setenv("HCIOS_THIRD_PARTY", str(mirror))
    got = fetch("file:///nonexistent/place/src.tar.xz", sha, tmp_path / "cache")
    assert got.read_bytes() == data
    with pytest.raises(DigestMismatch):
        fetch("file:///nonexistent/place/src.tar.xz", "0" * 64, tmp_path / "cache2")


def test_build_refuses_a_tarball_with_another_digest(tmp_path: Path) -> None:
    tarball = tmp_path / "spdk.tar.xz"
    tarball.write_bytes(b"not spdk")
    with pytest.raises(DigestMismatch):
        spdk.build_spdk(tarball, "0" * 64, tmp_path / "cache")
    assert not (tmp_path / "cache" / "spdk").exists()


def test_build_id_follows_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spdk, "dpdk_version", lambda: "22.11.11")
    base = spdk.build_id("a" * 64)
    assert base == spdk.build_id("a" * 64)
    assert base != spdk.build_id("b" * 64)
    assert base != spdk.build_id("a" * 64, arch="x86-64-v3")
    monkeypatch.setattr(spdk, "dpdk_version", lambda: "22.11.12")
    assert base != spdk.build_id("a" * 64)
    assert yaml.safe_load(LOCK.read_text())["schema_version"] == 1
