"""One redaction rule for every field that holds a secret, whatever the type of the value."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from hcicore.config import load_config, parse_cmdline, schema
from hcicore.errors import ValidationError
from hcicore.secrets import scrub_problems, secret_paths, secret_texts

pytestmark = pytest.mark.unit

BASE = {"install": {"device": "/dev/vda"}, "node": {"hostname": "n1", "ssh_authorized_keys": []},
        "cluster": {}}
SECRET_PATHS = sorted(secret_paths(schema()))
# Values of every type, each with a marker that must never come back in a message.
VALUES: list[Any] = [
    987654321,
    ["hunter2-in-a-list", 4242],
    {"hunter2-key": "hunter2-value", "n": [31337]},
    "http://admin:hunter2pw@10.0.0.9/x?token=hunter2tok word",
    "hunter2 with\nnewline",
    "   ",
]


def _markers(value: Any) -> list[str]:
    out = {"hunter2", "987654321", "4242", "31337", "admin", "hunter2pw", "hunter2tok"}
    return [m for m in out if m in repr(value)]


def _put(data: dict, path: tuple[str, ...], value: Any) -> dict:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return data


def test_the_schema_marks_every_secret_field() -> None:
    paths = {".".join(p) for p in SECRET_PATHS}
    assert {"node.password", "node.password_hash", "cluster.token", "install.config_url",
            "install.webhooks.started", "node.proxy.http", "cluster.server_url"} <= paths


@pytest.mark.parametrize("path", SECRET_PATHS, ids=lambda p: ".".join(p))
@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__ + str(len(repr(v))))
def test_a_bad_secret_is_named_by_path_never_by_value(path: tuple[str, ...], value: Any) -> None:
    data = _put(BASE, path, value)
    if path == ("cluster", "server_url"):
        data["install"]["mode"] = "join"
        data["cluster"]["token"] = "x" * 24
    try:
        load_config(data, source="t.yaml")
    except ValidationError as exc:
        text = str(exc) + "".join(p.fix for p in exc.problems)
        dotted = ".".join(path)
        assert any(p.path == dotted or p.path.startswith(dotted + "[") for p in exc.problems), text
        leaked = [m for m in _markers(value) if m in text]
        assert not leaked, (leaked, text)
    else:  # accepted: only a well-formed string may be
        assert isinstance(value, str), value


def test_a_secret_echoed_by_any_check_is_scrubbed() -> None:
    """The net under the rule: whatever check words a problem, the secret texts of the input go."""
    from hcicore.errors import Problem

    data = _put(BASE, ("cluster", "token"), {"k": "s3cr3t-token"})
    out = scrub_problems([Problem("x", "saw s3cr3t-token here", "not s3cr3t-token")], data, schema())
    assert out[0].message == "saw <hidden> here" and "s3cr3t" not in out[0].fix
    assert "s3cr3t-token" in secret_texts(data, schema())


def test_cmdline_secrets_are_not_echoed() -> None:
    args = parse_cmdline("hci.install.device=/dev/vda hci.node.hostname=n1 hci.install.mode=join "
                         "hci.cluster.server_url=ftp://u:hunter2pw@10.0.0.5 hci.cluster.token=has\\ space")
    with pytest.raises(ValidationError) as exc:
        load_config(args, source="kernel command line")
    assert "hunter2pw" not in str(exc.value)
    assert any(p.path == "cluster.server_url" for p in exc.value.problems)


@pytest.mark.parametrize("section,value", [
    (("node", "proxy"), "http://bob:S3cretPw@proxy:3128"),
    (("install", "webhooks"), "https://h/hook?token=TOPSECRETX"),
    (("cluster",), ["token-TOPSECRETX"]),
    (("node",), {"password": "S3cretPw"}),  # fine: a real section, the password is checked as such
])
def test_a_section_written_as_a_scalar_does_not_show_the_secret_in_it(section, value) -> None:
    data = _put(BASE, section, value)
    try:
        load_config(data, source="t.yaml")
    except ValidationError as exc:
        text = str(exc) + "".join(p.fix for p in exc.problems)
        assert "S3cretPw" not in text and "TOPSECRETX" not in text, text
        assert "bob" not in text


def test_a_webhook_url_is_shown_without_its_path() -> None:
    data = _put(BASE, ("install", "webhooks", "failed"), "ftp://hooks.slack.example/services/T0/B0/XXSECRETXX")
    with pytest.raises(ValidationError) as exc:
        load_config(data, source="t.yaml")
    assert "XXSECRETXX" not in str(exc.value) and "hooks.slack.example" in str(exc.value)


def test_an_unbalanced_quote_on_the_kernel_line_names_the_key_only() -> None:
    with pytest.raises(ValidationError) as exc:  # a ValueError made into one
        parse_cmdline('hci.node.hostname=n1 hci.node.password="my secret pw')
    assert "hci.node.password=" in str(exc.value) and "secret" not in str(exc.value)
