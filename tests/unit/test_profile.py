"""Profiles and lock files: schema errors and semantic checks name the field; nothing is touched."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hcicore.cli import main
from hcicore.errors import ValidationError
from hcicore.yamlio import load_yaml_text
from image.profile import CHECKS, builtin_profile, load_profile

pytestmark = pytest.mark.unit

DEFAULT = builtin_profile("default")


def write_profile(tmp_path: Path, mutate=None, lock=None) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(DEFAULT.read_text())
    raw.pop("overlay")
    if lock is not None:
        (tmp_path / "lock.yaml").write_text(yaml.safe_dump(lock))
        raw["components"] = {"lock": "lock.yaml"}
    else:
        raw.pop("components")
    if mutate:
        mutate(raw)
    p = tmp_path / "profile.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def problems(path: Path) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        load_profile(path)
    return [str(p) for p in exc.value.problems]


def test_default_profile_is_valid() -> None:
    prof = load_profile(DEFAULT)
    assert prof.distro == "debian" and prof.version
    assert "linux-image-amd64" in prof.bootstrap["packages"]
    assert {c.name for c in prof.components} >= {"k3s", "k3s-airgap-images"}
    assert len(prof.digest) == 64


def test_anolis_profile_is_valid() -> None:
    prof = load_profile(builtin_profile("anolis"))
    assert prof.distro == "anolis"
    assert prof.bootstrap["repos"]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    p = write_profile(tmp_path, lambda r: r["bootstrap"].update(pakages=["x"]))
    out = problems(p)
    assert out == [out[0]] and out[0].startswith("error: bootstrap.pakages: unknown key (")


def test_wrong_type_is_named(tmp_path: Path) -> None:
    p = write_profile(tmp_path, lambda r: r.update(source_date_epoch="yesterday"))
    (line,) = problems(p)
    assert line.startswith("error: source_date_epoch: must be of type integer")


def test_all_problems_at_once(tmp_path: Path) -> None:
    def bad(r: dict) -> None:
        r["bogus"] = 1
        r["distro"] = "gentoo"
        r["squashfs"]["compression"] = "zstd"
    out = problems(write_profile(tmp_path, bad))
    paths = sorted(line.split(":")[1].strip() for line in out)
    assert paths == ["bogus", "distro", "squashfs.compression"]


@pytest.mark.parametrize("name,mutate,path", [
    ("required-packages", lambda r: r["bootstrap"]["packages"].remove("dracut"), "bootstrap.packages"),
    ("duplicate-packages", lambda r: r["bootstrap"]["packages"].append("systemd"), "bootstrap.packages["),
    ("overlay-exists", lambda r: r.update(overlay="nope"), "overlay"),
    ("mirror-scheme", lambda r: r["bootstrap"].update(mirror="deb.debian.org"), "bootstrap.mirror"),
    ("distro-bootstrap", lambda r: r["bootstrap"].update(repos=[{"name": "x", "baseurl": "http://x"}]),
     "bootstrap.repos"),
])
def test_semantic_checks(tmp_path: Path, name: str, mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    assert name in CHECKS
    out = problems(write_profile(tmp_path, mutate))
    assert len(out) == 1 and out[0].startswith(f"error: {path}"), out


LOCK = {"schema_version": 1, "components": [
    {"name": "k3s", "version": "v1", "url": "http://127.0.0.1:1/k3s", "sha256": "a" * 64,
     "kind": "binary", "dest": "/usr/local/bin/k3s"}]}


def test_missing_component_digest(tmp_path: Path) -> None:
    lock = yaml.safe_load(yaml.safe_dump(LOCK))
    del lock["components"][0]["sha256"]
    (line,) = problems(write_profile(tmp_path, lock=lock))
    assert line.startswith("error: components.lock(lock.yaml).components[0].sha256: is required")


def test_malformed_component_digest(tmp_path: Path) -> None:
    lock = yaml.safe_load(yaml.safe_dump(LOCK))
    lock["components"][0]["sha256"] = "md5:abc"
    (line,) = problems(write_profile(tmp_path, lock=lock))
    assert line.startswith("error: components.lock(lock.yaml).components[0].sha256: 'md5:abc' has the wrong form")


def test_duplicate_component(tmp_path: Path) -> None:
    lock = yaml.safe_load(yaml.safe_dump(LOCK))
    lock["components"].append(dict(lock["components"][0]))
    out = problems(write_profile(tmp_path, lock=lock))
    assert any(".components[1].name" in line for line in out)
    assert any(".components[1].dest" in line for line in out)


def test_cli_bad_profile_exits_2_before_any_work(tmp_path: Path) -> None:
    p = write_profile(tmp_path, lambda r: (r.update(bogus=1), r["bootstrap"].update(suite=5)))
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(p), "--out", str(out), "--cache", str(cache)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln]
    assert lines == [ln for ln in lines if ln.startswith("error: ")] and len(lines) == 2
    assert not cache.exists() and not out.exists()


def test_cli_digest_mismatch_exits_2_naming_the_field(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    (http_server.root / "k3s").write_bytes(b"not the pinned bytes")
    lock = yaml.safe_load(yaml.safe_dump(LOCK))
    lock["components"][0]["url"] = http_server.url("k3s")
    lock["components"][0]["sha256"] = hashlib.sha256(b"the pinned bytes").hexdigest()
    p = write_profile(tmp_path, lock=lock)
    res = CliRunner().invoke(main, ["build", str(p), "--out", str(tmp_path / "out"),
                                    "--cache", str(tmp_path / "cache"), "--json"])
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1
    assert errors[0].startswith("error: components.lock(lock.yaml).components[0].sha256: ")
    assert "the lock file pins" in errors[0]
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache" / "stages").iterdir())


def test_duplicate_key_and_yaml11_booleans_are_caught(tmp_path: Path) -> None:
    """Profiles are read with the same YAML 1.2 reader as node configs: a repeated key is an
    error at its line, and ``no`` is the string "no" (a schema error for a boolean), not False."""
    text = write_profile(tmp_path).read_text()
    dup = tmp_path / "dup.yaml"
    dup.write_text(text + "version: 9.9.9\n" if "\nversion:" in text else text + "name: again\n")
    (line,) = problems(dup)
    assert line.startswith(f"error: {dup}:") and "duplicate key" in line
    assert load_yaml_text("a: no\nb: 0755\nc: 12:34:56\n", source="x") == {"a": "no", "b": "0755", "c": "12:34:56"}
    for name in ("no", "0755"):  # YAML 1.1 would make these False and 493: schema errors
        plain = tmp_path / f"plain-{name}.yaml"
        plain.write_text("\n".join(f"name: {name}" if ln.startswith("name:") else ln for ln in text.splitlines()))
        assert load_profile(plain).name == name


def test_extra_suites_become_sources_lines_and_their_release_is_recorded() -> None:
    from image.stages.bootstrap_debian import parse_origins, parse_sources, source_lines  # noqa: PLC0415

    boot = {"components": ["main", "non-free-firmware"], "extra_suites": [
        {"suite": "bookworm-security", "mirror": "http://deb.debian.org/debian-security"}]}
    assert source_lines(boot) == ["deb http://deb.debian.org/debian-security bookworm-security main non-free-firmware"]
    assert source_lines({"suite": "bookworm"}) == []
    record = ("List: deb.debian.org_debian_dists_bookworm_InRelease\nOrigin: Debian\nSuite: oldstable\n"
              "Codename: bookworm\nVersion: 12.15\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n\n"
              "List: x_bookworm-security_InRelease\nOrigin: Debian\nSuite: oldstable-security\n"
              "Codename: bookworm-security\nDate: Mon, 30 Nov 2026 00:22:33 UTC\n\nList: broken_Release\n\n")
    parsed = parse_sources(record)
    assert [s["codename"] for s in parsed] == ["bookworm", "bookworm-security"]
    assert parsed[0] == {"list": "deb.debian.org_debian_dists_bookworm_InRelease", "origin": "Debian",
                         "suite": "oldstable", "codename": "bookworm", "version": "12.15",
                         "date": "Sat, 11 Jul 2026 10:16:37 UTC"}
    listing = ("Listing...\nlinux-image-amd64/oldstable-security,now 6.1.192-3 amd64 [installed]\n"
               "systemd/oldstable,now 252.39-1~deb12u1 amd64 [installed]\nlocal-only/now 1.0 all [installed,local]\n")
    assert parse_origins(listing, parsed) == {"linux-image-amd64": ["bookworm-security"], "systemd": ["bookworm"],
                                              "local-only": []}
