"""Node config model: defaults, schema errors with field paths, YAML IO round trips, password hashing."""
from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from hcicore.config import (
    NodeConfig,
    dump_config,
    from_dict,
    load_config,
    load_config_file,
    parse_yaml,
    schema,
    to_dict,
    verify_password,
)
from hcicore.config.model import Bond, Interface, Proxy
from hcicore.errors import ValidationError

from hcicore.cosign import public_pem
from cryptography.hazmat.primitives.asymmetric import ec

from .config_cases import EXAMPLES, HASH, good, with_

TRUSTED_PEM = public_pem(ec.generate_private_key(ec.SECP256R1()))

pytestmark = pytest.mark.unit


def _problem_lines(data: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_config(data, source="test.yaml")
    return [str(p) for p in info.value.problems]


def test_defaults() -> None:
    cfg = NodeConfig()
    assert (cfg.install.mode, cfg.install.role, cfg.install.power_action) == ("create", "server", "reboot")
    assert (cfg.install.wipe, cfg.install.automatic, cfg.install.skip_checks) == (False, False, False)
    assert cfg.node.network.method == "dhcp"
    assert (cfg.cluster.pod_cidr, cfg.cluster.service_cidr, cfg.cluster.cluster_dns) == (
        "10.42.0.0/16", "10.43.0.0/16", "10.43.0.10")
    assert cfg.schema_version == 1


def _schema_defaults(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v["default"] for k, v in node["properties"].items() if "default" in v and not isinstance(
        v["default"], dict)}


@pytest.mark.parametrize(("schema_path", "instance"), [
    (["install"], NodeConfig().install), (["install", "webhooks"], NodeConfig().install.webhooks),
    (["node"], NodeConfig().node), (["node", "network"], NodeConfig().node.network),
    (["node", "network", "interfaces", "items"], Interface()),
    (["node", "network", "bond"], Bond()), (["node", "proxy"], Proxy()), (["cluster"], NodeConfig().cluster),
])
def test_schema_defaults_match_model(schema_path: list[str], instance: Any) -> None:
    node = schema()
    for key in schema_path:
        node = node[key] if key == "items" else node["properties"][key]
    assert set(node["properties"]) == {f.name for f in fields(instance)}
    for key, default in _schema_defaults(node).items():
        assert getattr(instance, key) == default, key


def test_minimal_config_takes_defaults() -> None:
    cfg = load_config({"node": {"hostname": "n1", "password_hash": HASH}}, source="t")
    assert cfg == from_dict({"node": {"hostname": "n1", "password_hash": HASH}})
    assert cfg.install.mode == "create" and cfg.cluster.service_cidr == "10.43.0.0/16"


def test_unknown_keys_each_reported_with_path() -> None:
    data = with_(good(), "install.colour", "blue")
    data = with_(data, "node.network.interfaces", [{"name": "eth0", "speed": 10}])
    lines = _problem_lines(data)
    assert [line.split(":")[1].strip() for line in lines] == ["install.colour", "node.network.interfaces[0].speed"]
    assert all("unknown key" in line and "allowed keys here" in line for line in lines)


def test_wrong_types_give_field_path_and_fix() -> None:
    data = with_(good(), "install.wipe", "yes")
    data = with_(data, "node.network.mtu", "1500")
    data = with_(data, "install.mode", "takeover")
    lines = _problem_lines(data)
    assert lines == [
        "error: install.mode: 'takeover' is not allowed (use one of \"create\", \"join\")",
        "error: install.wipe: must be of type boolean, got str 'yes' (write a boolean)",
        "error: node.network.mtu: must be of type integer or null, got str '1500' (write a integer or null)",
    ]


def test_schema_and_semantic_problems_together_without_repeats() -> None:
    # address has the wrong type: the schema says so; "static needs an address" is not added on top.
    data = with_(good(), "node.network.address", 5)
    data = with_(data, "node.hostname", "UPPER")
    paths = [line.split(":")[1].strip() for line in _problem_lines(data)]
    assert paths == ["node.network.address", "node.hostname"]


def test_top_level_not_a_mapping() -> None:
    assert _problem_lines(["a"])[0].startswith("error: test.yaml: must be a mapping")
    assert _problem_lines(None)[0].startswith("error: test.yaml: is empty")
    assert "schema_version" in _problem_lines(with_(good(), "schema_version", 2))[0]


def test_plain_password_is_hashed_and_never_kept(caplog: pytest.LogCaptureFixture) -> None:
    secret = "correct horse battery staple"
    data = with_(with_(good(), "node.password_hash", None), "node.password", secret)
    data["node"].pop("password_hash")
    with caplog.at_level(logging.DEBUG):
        cfg = load_config(data, source="t")
    assert cfg.node.password is None
    assert cfg.node.password_hash and cfg.node.password_hash.startswith("$6$")
    assert verify_password(secret, cfg.node.password_hash)
    assert secret not in repr(cfg) and secret not in dump_config(cfg) and secret not in caplog.text


def test_unhashed_model_never_dumps_plain_password() -> None:
    cfg = from_dict({"node": {"hostname": "n1", "password": "s3cret-pw"}})
    assert "s3cret-pw" not in repr(cfg)
    text = dump_config(cfg)
    assert "s3cret-pw" not in text and "password:" not in text
    assert verify_password("s3cret-pw", yaml.safe_load(text)["node"]["password_hash"])


def test_token_not_in_repr() -> None:
    cfg = load_config(good(), source="t")
    assert "sekrit-token" not in repr(cfg)


@pytest.mark.parametrize("name", ["create.yaml", "join.yaml"])
def test_examples_validate_and_round_trip(name: str, tmp_path: Path) -> None:
    cfg = load_config_file(EXAMPLES / name)
    out = tmp_path / name
    out.write_text(dump_config(cfg))
    again = load_config_file(out)
    assert again == cfg
    assert dump_config(again) == dump_config(cfg)


def test_round_trip_of_everything(tmp_path: Path) -> None:
    data = good()
    data["install"].update(data_device="/dev/vdb", data_wipe=True, reinstall=True, skip_checks=True, config_url="https://h/c.yaml",
                           power_action="poweroff", webhooks={"started": "http://h/s", "failed": "https://h/f"})
    data["node"]["network"] = {"interfaces": [{"name": "eth0"}, {"mac": "52:54:00:12:34:56"}],
                               "method": "static", "address": "192.168.10.11/24", "gateway": "192.168.10.1",
                               "dns": ["1.1.1.1"], "vlan_id": 42, "mtu": 9000,
                               "bond": {"mode": "802.3ad", "lacp_rate": "fast"}}
    data["node"]["proxy"] = {"http": "http://p:3128", "no_proxy": "localhost,10.0.0.0/8"}
    data["cluster"].update(flannel_backend="host-gw", vrrp_router_id=42, kubevirt_emulation=True)
    data["upgrade"] = {"trusted_keys": [TRUSTED_PEM], "insecure_registries": ["10.0.0.5:5000"], "tries": 2,
                       "health_timeout": 300, "trial_deadline": 900}
    cfg = load_config(data, source="t")
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    again = load_config_file(path)
    assert again == cfg
    assert to_dict(again) == {**data, "install": {**data["install"], "role": "server"}} | {
        "node": {**data["node"], "network": {**data["node"]["network"], "bond": {
            **data["node"]["network"]["bond"], "miimon": 100}}}} | {"cluster": {
                **data["cluster"], "pod_cidr": "10.42.0.0/16", "service_cidr": "10.43.0.0/16",
                "cluster_dns": "10.43.0.10"}}
    assert again.upgrade.trusted_keys == [TRUSTED_PEM] and again.upgrade.tries == 2


def test_yaml_keeps_macs_and_words_as_strings() -> None:
    data = parse_yaml("mac: 52:54:00:12:34:56\nhost: no\nmode: 0755\nn: 42\nb: true\nf: 1.5\n", source="t")
    assert data == {"mac": "52:54:00:12:34:56", "host": "no", "mode": "0755", "n": 42, "b": True, "f": 1.5}


def test_unquoted_mac_in_file_validates(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    text = yaml.safe_dump(with_(good(), "node.network.interfaces", [{"mac": "MAC"}]))
    path.write_text(text.replace("MAC", "52:54:00:12:34:56"))
    assert load_config_file(path).node.network.interfaces[0].mac == "52:54:00:12:34:56"


def test_yaml_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("node:\n  hostname: a\n  hostname: b\n")
    with pytest.raises(ValidationError) as info:
        load_config_file(path)
    assert str(info.value) == f"error: {path}:3: not valid YAML: duplicate key 'hostname' (fix the YAML syntax)"
    path.write_text("node: [\n")
    with pytest.raises(ValidationError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"error: {path}:2: not valid YAML")
    with pytest.raises(ValidationError, match="cannot read"):
        load_config_file(tmp_path / "missing.yaml")


def test_schema_is_valid_draft_2020_12_and_closed() -> None:
    import jsonschema
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["$schema"].endswith("2020-12/schema")

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node:
            assert node.get("additionalProperties") is False, path
            for key, sub in node["properties"].items():
                walk(sub, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], f"{path}[]")
    walk(s, "")
    assert json.loads(json.dumps(s)) == s
