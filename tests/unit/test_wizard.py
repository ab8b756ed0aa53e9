"""The wizard's question flow, per-answer checks, and the config file it writes."""
from __future__ import annotations

import base64
import stat
import struct

import pytest
import yaml

from hcicore.config import load_config_file, verify_password
from installer import answers
from installer.answers import AnswerError
from installer.hostinfo import GIB, Disk, HostInfo, Nic
from installer.wizard import Wizard, save

pytestmark = pytest.mark.unit

PASSWORD = "correct horse 1"


def ssh_key(comment: str = "op@desk") -> str:
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + bytes(range(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def host() -> HostInfo:
    return HostInfo(
        disks=[Disk("vda", "/dev/vda", 100 * GIB, "QEMU HARDDISK", partitions=("/dev/vda1",)),
               Disk("vdb", "/dev/vdb", 200 * GIB, "QEMU")],
        nics=[Nic("eth0", "52:54:00:12:34:56", True, True),
              Nic("eth1", "52:54:00:12:34:57", False, True)],
        virt_flags=frozenset({"vmx"}), mem_total=16 * GIB)


def drive(w: Wizard, script: list) -> list[tuple[str, str]]:
    """Answer questions in order; each script item is (expected key, raw answer).
    Returns (key, error message) for every rejected answer."""
    errors = []
    for key, raw in script:
        q = w.current()
        assert q is not None and q.key == key, f"expected {key}, wizard asks {q and q.key}"
        try:
            w.answer(raw)
        except AnswerError as exc:
            errors.append((key, str(exc)))
    return errors


CREATE_STATIC = [
    ("install.mode", ""),                      # default: create
    ("install.device", "1"),                   # /dev/vda has a partition
    ("install.wipe", "yes"),
    ("install.data_device", "/dev/vdb"),
    ("node.network.interfaces", ""),           # default: the NIC with link
    ("node.network.method", "static"),
    ("node.network.address", "10.0.0.5/24"),
    ("node.network.gateway", "10.0.0.1"),
    ("node.network.dns", "10.0.0.1, 1.1.1.1"),
    ("node.network.vlan_id", ""),
    ("node.hostname", ""),                     # default from the MAC
    ("cluster.vip", "10.0.0.100"),
    ("cluster.token", ""),                     # generated
    ("node.ntp", "0.pool.ntp.org 10.0.0.1"),
    ("node.proxy.http", "http://proxy.lan:3128"),
    ("node.proxy.https", ""),
    ("node.proxy.no_proxy", ""),
    ("node.ssh_authorized_keys", ssh_key() + "\n"),
    ("node.password_hash", (PASSWORD, PASSWORD)),
    ("confirm", "yes"),
    ("copy_path", ""),
]


def test_create_static_writes_a_valid_config(tmp_path):
    w = Wizard(host())
    assert drive(w, CREATE_STATIC) == []
    assert w.done
    out = save(w, tmp_path / "cfg" / "node.yaml")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert PASSWORD not in text and "password:" not in text
    data = yaml.safe_load(text)
    assert data["install"] == {**data["install"], "mode": "create", "role": "server",
                               "device": "/dev/vda", "data_device": "/dev/vdb", "wipe": True,
                               "automatic": False}
    node = data["node"]
    assert node["hostname"] == "hci-123456"
    assert node["network"]["interfaces"] == [{"name": "eth0"}]
    assert node["network"]["address"] == "10.0.0.5/24" and node["network"]["gateway"] == "10.0.0.1"
    assert node["network"]["dns"] == ["10.0.0.1", "1.1.1.1"]
    assert node["ntp"] == ["0.pool.ntp.org", "10.0.0.1"]
    assert node["proxy"]["https"] == "http://proxy.lan:3128"
    assert "10.0.0.0/24" in node["proxy"]["no_proxy"] and "10.0.0.100" in node["proxy"]["no_proxy"]
    assert node["ssh_authorized_keys"] == [ssh_key()]
    assert verify_password(PASSWORD, node["password_hash"])
    assert len(data["cluster"]["token"]) == 48 and data["cluster"]["vip"] == "10.0.0.100"
    cfg = load_config_file(out)  # what `hci config validate` and `hci install --config` read
    assert cfg.install.device == "/dev/vda" and cfg.node.password is None


def test_plain_password_never_stored():
    w = Wizard(host())
    drive(w, CREATE_STATIC[:19])
    assert PASSWORD not in repr(w.answers)
    assert w.get("node.password_hash").startswith("$6$")
    assert "set (sha512-crypt hash)" in "\n".join(w.summary_lines())
    assert w.get("node.password_hash") not in "\n".join(w.summary_lines())


def test_generated_token_is_shown_once_with_its_place_and_a_typed_one_is_masked():
    w = Wizard(host())
    drive(w, CREATE_STATIC[:19])
    token = w.get("cluster.token")
    line = next(s for s in w.summary_lines() if s.startswith("cluster.token:"))
    assert token in line and "generated" in line and "hci-oem:/hcios/config.yaml" in line
    typed = Wizard(host())
    drive(typed, [(k, "typed-token-123" if k == "cluster.token" else v) for k, v in CREATE_STATIC[:19]])
    summary = "\n".join(typed.summary_lines())
    assert "cluster.token: set (typed, not shown)" in summary and "typed-token-123" not in summary


def test_join_flow_with_dhcp(tmp_path):
    w = Wizard(host())
    errors = drive(w, [
        ("install.mode", "join"),
        ("install.role", "3"),
        ("install.device", "/dev/vdb"),            # empty disk: no wipe question
        ("install.data_device", ""),
        ("node.network.interfaces", "eth1"),
        ("node.network.method", ""),
        ("node.network.dns", ""),
        ("node.network.vlan_id", "42"),
        ("node.hostname", "witness-1"),
        ("cluster.server_url", "10.0.0.100"),
        ("cluster.token", ""),                    # rejected: joining needs it
        ("cluster.token", "K10abc::server:secret"),
        ("node.ntp", ""),
        ("node.proxy.http", ""),
        ("node.ssh_authorized_keys", ""),
        ("node.password_hash", (PASSWORD, PASSWORD)),
        ("confirm", "yes"),
        ("copy_path", str(tmp_path / "pxe.yaml")),
    ])
    assert errors == [("cluster.token", "joining needs the cluster token (on a server: "
                                        "/var/lib/rancher/k3s/server/node-token)")]
    cfg = w.config()
    assert cfg["install"]["role"] == "witness" and "data_device" not in cfg["install"]
    assert cfg["install"]["wipe"] is False
    assert cfg["cluster"] == {"server_url": "https://10.0.0.100:6443",
                              "token": "K10abc::server:secret"}
    assert cfg["node"]["network"]["vlan_id"] == 42 and cfg["node"]["network"]["method"] == "dhcp"
    out = save(w, tmp_path / "node.yaml")
    assert (tmp_path / "pxe.yaml").read_text() == out.read_text()
    assert stat.S_IMODE((tmp_path / "pxe.yaml").stat().st_mode) == 0o600


def test_refusing_wipe_asks_for_another_disk():
    w = Wizard(host())
    drive(w, [("install.mode", "create"), ("install.device", "/dev/vda"), ("install.wipe", "no")])
    assert w.current().key == "install.device" and w.get("install.wipe") is None
    drive(w, [("install.device", "/dev/vdb"), ("install.data_device", "")])
    assert [c.value for c in w.questions[4].choices(w)] == ["none", "/dev/vda"]


def test_back_and_switching_method_drops_static_answers():
    w = Wizard(host())
    drive(w, CREATE_STATIC[:8])
    assert w.get("node.network.gateway") == "10.0.0.1"
    for _ in range(3):
        w.back()
    assert w.current().key == "node.network.method"
    drive(w, [("node.network.method", "dhcp"), ("node.network.dns", "")])
    cfg = w.config()["node"]["network"]
    assert cfg["method"] == "dhcp" and "address" not in cfg and "gateway" not in cfg


@pytest.mark.parametrize("key,raw,message", [
    ("node.network.address", "10.0.0.5", "needs a prefix length"),
    ("node.network.address", "10.0.0.0/24", "network or broadcast address"),
    ("node.network.address", "10.42.0.5/24", "overlaps cluster.pod_cidr"),   # the loader's check
    ("node.network.gateway", "10.0.1.1", "outside 10.0.0.0/24"),
    ("node.network.dns", "", "needs at least one DNS server"),
    ("node.network.dns", "dns.lan", "not an IP DNS server"),
    ("node.network.vlan_id", "4095", "not a VLAN id"),
    ("node.hostname", "Node_1", "upper-case"),
    ("node.hostname", "-n1", "not a valid RFC 1123 label"),
    ("cluster.vip", "10.0.0.5", "node's own address"),
    ("cluster.vip", "10.43.0.9", "inside service_cidr"),                      # the loader's check
    ("cluster.vip", "", "VIP is required"),
    ("cluster.token", "short", "too short"),
    ("node.proxy.http", "proxy:3128", "not a proxy URL"),
    ("node.ssh_authorized_keys", "ssh-rsa AAA!", "not base64"),
    ("node.ssh_authorized_keys", "ssh-rsa AAAA", "does not match its type ssh-rsa"),
    ("node.ssh_authorized_keys", "hello", "not an SSH public key"),
    ("node.password_hash", (PASSWORD, PASSWORD + "x"), "differ"),
    ("node.password_hash", ("short", "short"), "too short"),
    ("confirm", "no", "answer yes"),
    ("copy_path", "relative.yaml", "absolute path"),
    ("copy_path", "/nonexistent-dir/x.yaml", "does not exist"),
])
def test_bad_answers_are_rejected_and_asked_again(key, raw, message):
    w = Wizard(host())
    script = [(k, v) for k, v in CREATE_STATIC]
    for k, v in script:
        if k == key:
            break
        drive(w, [(k, v)])
    before = dict(w.answers)
    with pytest.raises(AnswerError, match=message):
        w.answer(raw)
    assert w.answers == before and w.current().key == key


def test_blank_password_allowed_with_a_key():
    w = Wizard(host())
    drive(w, [(k, v) for k, v in CREATE_STATIC[:17]])
    drive(w, [("node.ssh_authorized_keys", ssh_key()), ("node.password_hash", ("", ""))])
    assert "password_hash" not in w.config()["node"]
    assert w.current().key == "confirm"


def test_blank_password_refused_without_keys():
    w = Wizard(host())
    drive(w, [(k, v) for k, v in CREATE_STATIC[:17]])
    drive(w, [("node.ssh_authorized_keys", "")])
    with pytest.raises(AnswerError, match="a password is required when no SSH key is given"):
        w.answer(("", ""))


def test_confirm_runs_the_full_loader():
    def reject(cfg):
        from hcicore.errors import Problem, ValidationError
        raise ValidationError([Problem("cluster.pod_cidr", "bad", "fix it")])
    w = Wizard(host())
    drive(w, CREATE_STATIC[:19])
    w.validator = reject
    with pytest.raises(AnswerError, match=r"error: cluster.pod_cidr: bad \(fix it\)"):
        w.answer("yes")


def test_preflight_warnings_in_summary():
    small = HostInfo(disks=[Disk("vda", "/dev/vda", 30 * GIB)],
                     nics=[Nic("eth0", "52:54:00:12:34:56", True, True)],
                     virt_flags=frozenset(), mem_total=16 * GIB)
    w = Wizard(small)
    drive(w, [("install.mode", ""), ("install.device", "1"), ("install.data_device", "")])
    warnings = w.warnings()
    assert "fail: cpu-virtualization: CPU reports no hardware virtualization (vmx or svm); " \
           "VMs would be emulated" in warnings
    assert any("disk /dev/vda is 30.0 GiB, 60.0 GiB is recommended" in x for x in warnings)


@pytest.mark.parametrize("raw,want", [
    ("10.0.0.100", "https://10.0.0.100:6443"),
    ("https://cp.lan", "https://cp.lan:6443"),
    ("https://cp.lan:443/", "https://cp.lan:443"),
    ("fd00::1", "https://[fd00::1]:6443"),
])
def test_server_url_normalized(raw, want):
    assert answers.server_url(raw) == want


@pytest.mark.parametrize("raw", ["http://cp.lan:6443", "https://cp.lan:6443/path", "https://bad_host"])
def test_server_url_rejected(raw):
    with pytest.raises(AnswerError):
        answers.server_url(raw)


def test_a_used_data_disk_needs_its_own_consent():
    h = host()
    h.disks[1] = Disk("vdb", "/dev/vdb", 200 * GIB, "QEMU", partitions=("/dev/vdb1",))
    w = Wizard(h)
    drive(w, [("install.mode", ""), ("install.device", "1"), ("install.wipe", "yes"),
              ("install.data_device", "/dev/vdb"), ("install.data_wipe", "no")])
    assert w.current().key == "install.data_device" and "install.data_device" not in w.answers
    drive(w, [("install.data_device", "/dev/vdb"), ("install.data_wipe", "yes")])
    assert w.config()["install"]["data_wipe"] is True and w.config()["install"]["wipe"] is True


def test_ssh_keys_from_a_url(tmp_path):
    from iso.httpserve import serve_directory

    (tmp_path / "op.keys").write_text(ssh_key("a@desk") + "\n" + ssh_key("b@desk") + "\n")
    (tmp_path / "bad.keys").write_text("<html>not keys</html>\n")
    with serve_directory(tmp_path) as port:
        w = Wizard(host())
        drive(w, CREATE_STATIC[:17])
        errors = drive(w, [("node.ssh_authorized_keys", f"http://127.0.0.1:{port}/bad.keys?token=s3cret"),
                           ("node.ssh_authorized_keys", f"http://127.0.0.1:{port}/missing.keys"),
                           ("node.ssh_authorized_keys", f"http://127.0.0.1:{port}/op.keys")])
    assert [k for k, _ in errors] == ["node.ssh_authorized_keys"] * 2
    assert "not an SSH public key" in errors[0][1] and "s3cret" not in errors[0][1]
    assert "SSH key URL" in errors[1][1] and "404" in errors[1][1]
    assert w.get("node.ssh_authorized_keys") == [ssh_key("a@desk"), ssh_key("b@desk")]
