"""config → kickstart → pykickstart parse: the same disk, labels, network, login and post script."""
from __future__ import annotations

import base64
import re

import pytest
import yaml
from pykickstart.constants import KS_REBOOT, KS_SCRIPT_POST, KS_SHUTDOWN
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion

from cloud_init import render_seed
from hcicore.config import load_config, load_config_file
from hcicore.errors import ValidationError
from installer.kickstart import render_kickstart

from .config_cases import EXAMPLES, good, with_

pytestmark = pytest.mark.unit


def _parse(text: str):  # noqa: ANN202 - pykickstart handler type is generated per version
    handler = makeVersion()
    KickstartParser(handler).readKickstartFromString(text)
    return handler


def _post_files(handler) -> dict[str, str]:  # noqa: ANN001
    (post,) = [s for s in handler.scripts if s.type == KS_SCRIPT_POST]
    files = {}
    for m in re.finditer(r"base64 -d > (\S+) <<'HCIOS_B64'\n(.*?)\nHCIOS_B64", post.script, re.S):
        files[m.group(1)] = base64.b64decode("".join(m.group(2).split())).decode()
    return files


def test_create_example_reaches_layout_network_and_login() -> None:
    cfg = load_config_file(EXAMPLES / "create.yaml")
    h = _parse(render_kickstart(cfg, image_bytes=1500 * 1024**2))
    parts = {p.label or p.mountpoint: p for p in h.partition.partitions}
    assert set(parts) == {"biosboot", "hci-esp", "hci-oem", "hci-root-a", "hci-root-b", "hci-persistent"}
    assert all(p.disk == "vda" for p in parts.values())
    assert (parts["hci-esp"].mountpoint, parts["hci-esp"].size) == ("/boot/efi", 300)
    assert (parts["hci-oem"].mountpoint, parts["hci-oem"].size) == ("/oem", 256)
    assert parts["hci-root-a"].mountpoint == "/" and parts["hci-root-a"].size == parts["hci-root-b"].size == 3000
    assert parts["hci-persistent"].grow and parts["hci-persistent"].mountpoint == "/var"
    assert h.ignoredisk.onlyuse == ["vda"]  # the data disk /dev/vdb is never touched
    assert h.zerombr.zerombr is True and h.clearpart.drives == ["vda"]
    assert "panic=10" in h.bootloader.appendLine
    net, hostname = h.network.network
    assert (net.device, net.bootProto, net.ip, net.netmask, net.gateway) == (
        "bond0", "static", "192.168.10.11", "255.255.255.0", "192.168.10.1")
    assert net.bondslaves == "eth0,52:54:00:12:34:57" and "mode=active-backup" in net.bondopts
    assert net.nameserver == "192.168.10.1,1.1.1.1" and net.mtu == "1500"
    assert hostname.hostname == "node1"
    assert h.rootpw.isCrypted and h.rootpw.password == cfg.node.password_hash
    assert [(k.username, k.key) for k in h.sshkey.sshUserList] == [("root", cfg.node.ssh_authorized_keys[0])]
    assert [t.ntp_server for t in h.timesource.dataList()] == ["0.pool.ntp.org", "1.pool.ntp.org"]
    assert h.reboot.action == KS_REBOOT


def test_post_writes_the_node_config_and_seed() -> None:
    cfg = load_config_file(EXAMPLES / "join.yaml")
    h = _parse(render_kickstart(cfg))
    files = _post_files(h)
    assert load_config(yaml.safe_load(files["/oem/hcios/config.yaml"]), source="post") == cfg
    seed = render_seed(cfg)
    for name in ("user-data", "meta-data", "network-config"):
        assert files[f"/oem/hcios/nocloud/{name}"] == seed[name]
    (post,) = [s for s in h.scripts if s.type == KS_SCRIPT_POST]
    for label in ("hci-bios", "hci-esp", "hci-oem", "hci-root-a", "hci-root-b", "hci-persistent"):
        assert re.search(rf'name_part "\$\(.*\)" {label}$', post.script, re.M), label
    assert "chmod 0600 /oem/hcios/config.yaml" in post.script


def test_no_wipe_no_zerombr_and_poweroff() -> None:
    data = with_(with_(good(), "install.wipe", False), "install.power_action", "poweroff")
    h = _parse(render_kickstart(load_config(data, source="t")))
    assert not h.zerombr.zerombr
    assert h.reboot.action == KS_SHUTDOWN  # Anaconda's poweroff
    assert "clearpart --none" in str(h.clearpart)


def test_dhcp_by_link_and_locked_root_and_by_id_disk() -> None:
    data = with_(good(), "node.network", {"method": "dhcp"})
    data = with_(data, "cluster.vip", None)
    data = with_(data, "install.device", "/dev/disk/by-id/virtio-abc")
    del data["node"]["password_hash"]
    h = _parse(render_kickstart(load_config(data, source="t")))
    assert h.network.network[0].device == "link" and h.network.network[0].bootProto == "dhcp"
    assert h.rootpw.lock is True
    assert h.ignoredisk.onlyuse == ["/dev/disk/by-id/virtio-abc"]
    assert {p.disk for p in h.partition.partitions} == {"/dev/disk/by-id/virtio-abc"}


def test_device_required() -> None:
    data = with_(with_(good(), "install.automatic", False), "install.device", None)
    with pytest.raises(ValidationError, match="install.device: is required for a kickstart"):
        render_kickstart(load_config(data, source="t"))

