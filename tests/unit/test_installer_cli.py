"""`hci config validate|schema`, `hci kickstart` and `hci cloud-init render` through the real `hci` group."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hcicore.cli import main
from hcicore.config import load_config_file

from .config_cases import EXAMPLES, good, with_

pytestmark = pytest.mark.unit


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["create.yaml", "join.yaml"])
def test_validate_ok(name: str) -> None:
    before = (EXAMPLES / name).read_bytes()
    assert _run("config", "validate", str(EXAMPLES / name)) == (0, "ok\n", "")
    assert (EXAMPLES / name).read_bytes() == before  # touches nothing


def test_validate_bad_file_one_line_per_problem(tmp_path: Path) -> None:
    data = with_(good(), "node.hostname", "Bad_Host")
    data = with_(data, "install.mode", "join")
    data = with_(data, "install.colour", "red")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    before = path.read_bytes()
    code, out, err = _run("config", "validate", str(path))
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["install.colour", "node.hostname", "cluster.server_url"]
    assert all(line.startswith("error: ") for line in lines)
    assert path.read_bytes() == before


def test_validate_missing_file(tmp_path: Path) -> None:
    code, _, err = _run("config", "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and err.startswith(f"error: {tmp_path / 'nope.yaml'}: cannot read")


def test_schema_prints_the_schema() -> None:
    code, out, _ = _run("config", "schema")
    assert code == 0
    s = json.loads(out)
    assert set(s["properties"]) == {"schema_version", "install", "node", "cluster", "upgrade"}


def test_kickstart_to_file_is_private(tmp_path: Path) -> None:
    out = tmp_path / "ks.cfg"
    code, stdout, _ = _run("kickstart", "--config", str(EXAMPLES / "create.yaml"), "--out", str(out))
    assert code == 0 and stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "ignoredisk --only-use=vda" in out.read_text()
    code, stdout, _ = _run("kickstart", "--config", str(EXAMPLES / "join.yaml"))
    assert code == 0 and "--label=hci-persistent" in stdout


def test_cloud_init_render(tmp_path: Path) -> None:
    code, out, _ = _run("cloud-init", "render", "--config", str(EXAMPLES / "join.yaml"), "--out", str(tmp_path / "s"))
    assert code == 0
    assert sorted(Path(line).name for line in out.splitlines()) == ["meta-data", "network-config", "user-data"]
    cfg = load_config_file(EXAMPLES / "join.yaml")
    assert yaml.safe_load((tmp_path / "s" / "meta-data").read_text())["local-hostname"] == cfg.node.hostname


def test_cloud_init_render_bad_config_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(with_(good(), "node.network.mtu", 100)))
    code, _, err = _run("cloud-init", "render", "--config", str(path), "--out", str(tmp_path / "s"))
    assert code == 2 and err.startswith("error: node.network.mtu: 100 is out of range")
    assert not (tmp_path / "s").exists()
