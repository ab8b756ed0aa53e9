"""Kernel command line → node config dict: quoting, typing by the schema, lists, unknown keys, merge."""
from __future__ import annotations

import pytest

from hcicore.config import load_config, merge, parse_cmdline
from hcicore.config.cmdline import split_args
from hcicore.errors import ValidationError

from .config_cases import ED25519, HASH, good

pytestmark = pytest.mark.unit


def _paths(cmdline: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_cmdline(cmdline)
    return [p.path for p in info.value.problems]


def test_split_like_the_kernel() -> None:
    assert split_args('a  b="c d"  "e=f g" h=""') == ["a", "b=c d", "e=f g", "h="]
    with pytest.raises(ValueError, match="unbalanced"):
        split_args('a="b c')


def test_full_example() -> None:
    cmdline = (f'BOOT_IMAGE=/vmlinuz root=live:CDLABEL=HCIOS quiet hci.install.device=/dev/vda '
               f'hci.node.ssh_authorized_keys[0]="{ED25519}" hci.install.automatic=true '
               f'hci.node.network.interfaces[0].name=eth0 hci.node.network.interfaces[1].mac=52:54:00:12:34:56 '
               f'hci.node.network.bond.mode=802.3ad hci.node.network.vlan_id=12 '
               f'hci.install.config_url=http://10.0.2.2:8000/node.yaml?x=1 hci.node.ntp=a.pool.ntp.org,b.pool.ntp.org '
               f'hci.install.wipe hci.install.skip_checks=no console=ttyS0')
    assert parse_cmdline(cmdline) == {
        "install": {"device": "/dev/vda", "automatic": True, "config_url": "http://10.0.2.2:8000/node.yaml?x=1",
                    "wipe": True, "skip_checks": False},
        "node": {"ssh_authorized_keys": [ED25519],
                 "network": {"interfaces": [{"name": "eth0"}, {"mac": "52:54:00:12:34:56"}],
                             "bond": {"mode": "802.3ad"}, "vlan_id": 12},
                 "ntp": ["a.pool.ntp.org", "b.pool.ntp.org"]},
    }


def test_non_hci_args_ignored() -> None:
    assert parse_cmdline("quiet splash hcix.y=1 root=/dev/sda1 hci=1") == {}


def test_quoted_value_keeps_spaces_and_equals() -> None:
    got = parse_cmdline('"hci.cluster.token=abc=def ghi" hci.node.hostname="node-1"')
    assert got == {"cluster": {"token": "abc=def ghi"}, "node": {"hostname": "node-1"}}


def test_unknown_keys_are_problems_with_paths() -> None:
    assert _paths("hci.install.colour=red hci.nodes.hostname=x hci.node.network.interfaces[0].speed=10 "
                  "hci.node.hostname=ok") == ["install.colour", "nodes", "node.network.interfaces[0].speed"]


def test_bad_values_are_problems() -> None:
    with pytest.raises(ValidationError) as info:
        parse_cmdline("hci.install.wipe=maybe hci.node.network.mtu=big hci.node.network.interfaces=eth0 "
                      "hci.node.hostname[0]=a hci.node.network=x hci.install.device")
    lines = [str(p) for p in info.value.problems]
    assert lines == [
        "error: install.wipe: hci.install.wipe=maybe is not a boolean (use true or false)",
        "error: node.network.mtu: hci.node.network.mtu=big is not a whole number (write digits only)",
        "error: node.network.interfaces: hci.node.network.interfaces is a list of settings and needs an index "
        "(write hci.node.network.interfaces[0].<key>=<value>)",
        "error: node.hostname: hci.node.hostname[0]: not a list, it takes no [index] "
        "(write hci.node.hostname=<value>)",
        "error: node.network: hci.node.network is a section, not a value (set its keys: address, bond, dns, "
        "dpdk, gateway, interfaces, method, mtu, vlan_id)",
        "error: install.device: hci.install.device has no value (write hci.install.device=<value>)",
    ]


def test_list_index_gap() -> None:
    assert _paths("hci.node.ntp[0]=a hci.node.ntp[2]=c") == ["node.ntp[1]"]


def test_unbalanced_quote() -> None:
    assert _paths('hci.node.hostname="abc') == ["kernel command line"]


def test_later_argument_wins() -> None:
    assert parse_cmdline("hci.node.hostname=a hci.node.hostname=b") == {"node": {"hostname": "b"}}


def test_merge_cmdline_over_file() -> None:
    base = good()
    override = parse_cmdline("hci.node.hostname=node9 hci.install.wipe=false hci.node.ntp=ntp.example "
                             "hci.node.network.interfaces[0].mac=52:54:00:aa:bb:cc")
    merged = merge(base, override)
    assert merged["node"]["hostname"] == "node9"
    assert merged["install"]["wipe"] is False and merged["install"]["device"] == "/dev/vda"
    assert merged["node"]["ntp"] == ["ntp.example"]
    assert merged["node"]["network"]["interfaces"] == [{"mac": "52:54:00:aa:bb:cc"}]  # lists replace
    assert merged["node"]["network"]["address"] == "192.168.10.11/24"
    assert base["node"]["hostname"] == "node1"  # inputs unchanged
    assert load_config(merged, source="merged").node.hostname == "node9"


def test_cmdline_alone_makes_a_valid_config() -> None:
    cfg = load_config(parse_cmdline(f'hci.node.hostname=n1 hci.node.password_hash="{HASH}" '
                                    "hci.install.automatic=1 hci.install.device=/dev/vda"),
                      source="kernel command line")
    assert cfg.install.automatic is True and cfg.install.device == "/dev/vda"
