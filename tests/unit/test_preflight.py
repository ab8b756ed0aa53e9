"""Host discovery (hostinfo) from fake /proc, sysfs and lsblk output, and the preflight checks."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hcicore import signedboot
from hcicore.errors import HciError, ValidationError
from installer import hostinfo, preflight
from installer.hostinfo import GIB, Disk, HostInfo, Nic

pytestmark = pytest.mark.unit

LSBLK = {
    "blockdevices": [
        {"name": "loop0", "path": "/dev/loop0", "size": 157286400, "type": "loop",
         "model": None, "serial": None, "rota": False, "tran": None},
        {"name": "sr0", "path": "/dev/sr0", "size": 224395264, "type": "rom",
         "model": "QEMU DVD-ROM", "serial": "QM00003", "rota": True, "tran": "ata"},
        {"name": "zram0", "path": "/dev/zram0", "size": 4 * GIB, "type": "disk",
         "model": None, "serial": None, "rota": False, "tran": None},
        {"name": "vda", "path": "/dev/vda", "size": 20 * GIB, "type": "disk",
         "model": None, "serial": "disk-a", "rota": True, "tran": None,
         "children": [
             {"name": "vda1", "path": "/dev/vda1", "size": GIB, "type": "part"},
             {"name": "vda2", "path": "/dev/vda2", "size": 19 * GIB, "type": "part"}]},
        {"name": "sda", "path": "/dev/sda", "size": 500 * GIB, "type": "disk",
         "model": "Samsung SSD 870 ", "serial": "S5XYZ", "rota": "0", "tran": "sata"},
        {"name": "nvme0n1", "path": "/dev/nvme0n1", "size": 1000 * GIB, "type": "disk",
         "model": "KIOXIA", "serial": "K1", "rota": False, "tran": "nvme"},
    ]
}


def fake_root(tmp_path: Path, *, flags: str = "fpu vme vmx sse2", mem_kib: int = 16 * 1024**2) -> Path:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(
        f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    (root / "proc/meminfo").write_text(f"MemTotal:       {mem_kib} kB\nMemFree:  1000 kB\n")
    net = root / "sys/class/net"
    for name, mac, state, carrier, physical in (
        ("lo", "00:00:00:00:00:00", "unknown", "1", False),
        ("eth0", "52:54:00:AA:BB:01", "up", "1", True),
        ("eth1", "52:54:00:aa:bb:02", "down", "0", True),
        ("br0", "52:54:00:aa:bb:03", "up", "1", False),
    ):
        d = net / name
        d.mkdir(parents=True)
        (d / "address").write_text(mac + "\n")
        (d / "operstate").write_text(state + "\n")
        (d / "carrier").write_text(carrier + "\n")
        if physical:
            (d / "device").mkdir()
    dev = root / "dev"
    (dev / "disk/by-id").mkdir(parents=True)
    for name in ("vda", "sda", "nvme0n1"):
        (dev / name).write_text("")
    os.symlink("../../sda", dev / "disk/by-id/ata-Samsung_SSD_870_S5XYZ")
    os.symlink("../../nvme0n1", dev / "disk/by-id/nvme-KIOXIA_K1")
    return root


def host_from(root: Path) -> HostInfo:
    return hostinfo.discover(root, lsblk_json=json.dumps(LSBLK))


def cfg(**install) -> dict:
    base = {"mode": "create", "role": "server", "device": "/dev/sda", "wipe": False}
    base.update(install)
    return {"schema_version": 1, "install": base,
            "node": {"hostname": "n1", "network": {"interfaces": [{"name": "eth0"}]},
                     "ssh_authorized_keys": ["ssh-ed25519 AAAA op@desk"]}}


def test_no_ssh_key_says_ssh_will_be_closed(tmp_path):
    data = cfg()
    data["node"]["ssh_authorized_keys"] = []
    (ssh,) = by_name(preflight.run_checks(data, host_from(fake_root(tmp_path))), "ssh")
    assert (ssh.ok, ssh.severity, ssh.path) == (False, "warn", "node.ssh_authorized_keys")
    assert "SSH to this node will be closed" in ssh.message and "consoles" in ssh.message


# ---- hostinfo ----------------------------------------------------------------------------------
def test_parse_lsblk_keeps_whole_disks_only():
    disks = hostinfo.disks_from_lsblk(json.dumps(LSBLK))
    assert [d.path for d in disks] == ["/dev/vda", "/dev/sda", "/dev/nvme0n1"]
    vda, sda, nvme = disks
    assert vda.partitions == ("/dev/vda1", "/dev/vda2") and vda.rotational
    assert sda.model == "Samsung SSD 870" and not sda.rotational and sda.transport == "sata"
    assert nvme.size == 1000 * GIB and nvme.partitions == ()
    assert "2 partition(s)" in vda.describe() and "20.0 GiB" in vda.describe()


def test_parse_lsblk_rejects_garbage():
    with pytest.raises(HciError, match="not JSON"):
        hostinfo.disks_from_lsblk("lsblk: unknown column")


def test_list_disks_runs_lsblk_through_the_command_runner(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    argv_log = tmp_path / "argv"
    (tmp_path / "out.json").write_text(json.dumps(LSBLK))
    script = bindir / "lsblk"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {argv_log}\ncat {tmp_path / 'out.json'}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    disks = hostinfo.list_disks()
    assert [d.name for d in disks] == ["vda", "sda", "nvme0n1"]
    assert argv_log.read_text().split() == hostinfo.LSBLK_ARGV[1:]


def test_nics_cpu_memory_from_fake_tree(tmp_path):
    host = host_from(fake_root(tmp_path))
    assert [(n.name, n.mac, n.link_up, n.physical) for n in host.nics] == [
        ("br0", "52:54:00:aa:bb:03", True, False),
        ("eth0", "52:54:00:aa:bb:01", True, True),
        ("eth1", "52:54:00:aa:bb:02", False, True),
    ]
    assert host.virt_flags == {"vmx"}
    assert host.mem_total == 16 * GIB


def test_cpu_flags_svm_and_none(tmp_path):
    assert host_from(fake_root(tmp_path / "a", flags="fpu svm")).virt_flags == {"svm"}
    assert host_from(fake_root(tmp_path / "b", flags="fpu sse2")).virt_flags == frozenset()


def test_missing_files_read_as_nothing(tmp_path):
    assert hostinfo.mem_total(tmp_path / "nope") == 0
    assert hostinfo.cpu_virt_flags(tmp_path / "nope") == frozenset()
    assert hostinfo.list_nics(tmp_path / "nope") == []


def test_disk_lookup_follows_by_id_links(tmp_path):
    host = host_from(fake_root(tmp_path))
    assert host.disk("/dev/disk/by-id/ata-Samsung_SSD_870_S5XYZ").path == "/dev/sda"
    assert host.disk("/dev/vda").path == "/dev/vda"
    assert host.disk("/dev/disk/by-id/nothing") is None


# ---- preflight ---------------------------------------------------------------------------------
def by_name(checks, name):
    return [c for c in checks if c.name == name]


def test_all_checks_pass_on_a_good_host(tmp_path):
    checks = preflight.run_checks(cfg(), host_from(fake_root(tmp_path)))
    assert preflight.failed(checks) == []
    assert {c.name for c in checks} == {"cpu-virtualization", "memory", "install-disk", "nic", "ssh", "secure-boot"}


def test_layout_minimum_follows_the_image():
    from hcicore.layout import min_disk_bytes

    assert preflight.layout_min_bytes(GIB) == min_disk_bytes(GIB)  # one size rule


def test_small_disk_says_which_and_by_how_much(tmp_path):
    host = host_from(fake_root(tmp_path))
    (check,) = by_name(preflight.run_checks(cfg(device="/dev/vda", wipe=True), host), "install-disk")
    assert not check.ok and check.severity == "warn"
    assert check.message == "disk /dev/vda is 20.0 GiB, 60.0 GiB is recommended: 40.0 GiB short"
    (check,) = by_name(preflight.run_checks(cfg(device="/dev/vda", wipe=True), host,
                                            image_bytes=5 * GIB), "install-disk")
    # slots of 10 GiB each: 0.3 + 20 + 10 GiB needed
    assert check.severity == "fail" and not check.ok
    assert check.message == "disk /dev/vda is 20.0 GiB, needs at least 30.5 GiB: 10.5 GiB short"
    assert check.path == "install.device"


def test_missing_install_disk_lists_the_disks(tmp_path):
    checks = preflight.run_checks(cfg(device="/dev/vdz"), host_from(fake_root(tmp_path)))
    (check,) = by_name(checks, "install-disk")
    assert check.message == "disk /dev/vdz not found"
    assert check.fix == "disks here: /dev/vda, /dev/sda, /dev/nvme0n1"


def test_disk_with_partitions_needs_wipe(tmp_path):
    host = HostInfo(disks=[Disk("sda", "/dev/sda", 100 * GIB, partitions=("/dev/sda1",))],
                    nics=[Nic("eth0", "52:54:00:aa:bb:01", True, True)],
                    virt_flags=frozenset({"svm"}), mem_total=16 * GIB)
    (check,) = by_name(preflight.run_checks(cfg(), host), "install-disk-empty")
    assert check.severity == "fail" and "(/dev/sda1)" in check.message
    assert by_name(preflight.run_checks(cfg(wipe=True), host), "install-disk-empty") == []


def test_data_disk_present_and_distinct(tmp_path):
    host = host_from(fake_root(tmp_path))
    same = by_name(preflight.run_checks(
        cfg(data_device="/dev/disk/by-id/ata-Samsung_SSD_870_S5XYZ"), host), "data-disk")
    assert [c.ok for c in same] == [False] and "is the install disk /dev/sda" in same[0].message
    gone = by_name(preflight.run_checks(cfg(data_device="/dev/sdq"), host), "data-disk")
    assert gone[0].message == "data disk /dev/sdq not found" and gone[0].severity == "fail"
    good = by_name(preflight.run_checks(cfg(data_device="/dev/disk/by-id/nvme-KIOXIA_K1"), host),
                   "data-disk")
    assert good[0].ok and "/dev/nvme0n1" in good[0].message


def test_nics_by_name_and_mac(tmp_path):
    host = host_from(fake_root(tmp_path))
    c = cfg()
    c["node"]["network"]["interfaces"] = [{"mac": "52:54:00:AA:BB:01"}, {"name": "eth1"},
                                          {"name": "eth9"}, {"mac": "52:54:00:00:00:09"}]
    nics = by_name(preflight.run_checks(c, host), "nic")
    assert [(n.ok, n.severity) for n in nics] == [(True, "fail"), (False, "warn"),
                                                  (False, "fail"), (False, "fail")]
    assert nics[2].message == "interface eth9 not found" and "eth0 (52:54:00:aa:bb:01)" in nics[2].fix
    assert nics[3].path == "node.network.interfaces[3]"


def test_no_nic_at_all_fails():
    host = HostInfo(disks=[], nics=[], virt_flags=frozenset({"vmx"}), mem_total=16 * GIB)
    (check,) = by_name(preflight.run_checks(cfg(), host), "nic")
    assert check.severity == "fail" and check.message == "no network interface found"


@pytest.mark.parametrize("role,mem_gib,ok,severity", [
    ("server", 16, True, "fail"),
    ("server", 4, False, "warn"),
    ("server", 1, False, "fail"),
    ("server", 1.9, False, "warn"),  # a 2 GiB VM: MemTotal a bit under 2 GiB passes the minimum
    ("witness", 1.5, False, "warn"),
    ("witness", 2, True, "fail"),
])
def test_memory_thresholds(tmp_path, role, mem_gib, ok, severity):
    root = fake_root(tmp_path, mem_kib=int(mem_gib * 1024**2))
    (check,) = by_name(preflight.run_checks(cfg(role=role, mode="join"), host_from(root)), "memory")
    assert (check.ok, check.severity) == (ok, severity)


def test_memory_failure_message(tmp_path):
    root = fake_root(tmp_path, mem_kib=1024**2)
    (check,) = by_name(preflight.run_checks(cfg(), host_from(root)), "memory")
    assert check.message == "1.0 GiB of memory, a server needs at least 2.0 GiB: 1.0 GiB short"


def test_cpu_without_virtualization(tmp_path):
    host = host_from(fake_root(tmp_path, flags="fpu sse2"))
    (server,) = by_name(preflight.run_checks(cfg(), host), "cpu-virtualization")
    (witness,) = by_name(preflight.run_checks(cfg(mode="join", role="witness"), host),
                         "cpu-virtualization")
    emulated = {**cfg(), "cluster": {"kubevirt_emulation": True}}
    (asked,) = by_name(preflight.run_checks(emulated, host), "cpu-virtualization")
    assert (server.ok, server.severity) == (False, "fail")
    assert (witness.ok, witness.severity) == (False, "warn")
    assert (asked.ok, asked.severity) == (False, "warn")  # emulated VMs, as the config asks
    assert "cluster.kubevirt_emulation: true" in server.fix


def test_enforce_automatic_stops_with_field_paths(tmp_path):
    host = host_from(fake_root(tmp_path, flags="fpu", mem_kib=1024**2))
    checks = preflight.run_checks(cfg(device="/dev/vda"), host)
    with pytest.raises(ValidationError) as err:
        preflight.enforce(checks, automatic=True, skip_checks=False)
    lines = str(err.value).splitlines()
    assert "error: install.wipe: disk /dev/vda holds 2 partition(s) (/dev/vda1, /dev/vda2) " \
           "and install.wipe is false (set install.wipe: true to erase it, or choose an empty " \
           "disk)" in lines
    assert any(line.startswith("error: install.role: CPU reports no hardware") for line in lines)
    assert err.value.exit_code == 2
    # skip_checks lets it go on; interactive mode only warns; both return what failed
    skipped = preflight.enforce(checks, automatic=True, skip_checks=True)
    assert skipped == preflight.failed(checks) and len(skipped) == 4
    assert preflight.enforce(checks, automatic=False, skip_checks=False) == skipped


def test_enforce_warnings_never_stop(tmp_path):
    root = fake_root(tmp_path, mem_kib=4 * 1024**2)
    checks = preflight.run_checks(cfg(), host_from(root))
    warns = preflight.enforce(checks, automatic=True, skip_checks=False)
    assert [c.name for c in warns] == ["memory"]
    assert str(warns[0]).startswith("[warn] memory: 4.0 GiB of memory")



@pytest.mark.parametrize("var,state,signed,ok", [
    (None, "bios", False, True), (b"\x06\x00\x00\x00\x00", "uefi", False, True),
    (b"\x06\x00\x00\x00\x01", "uefi-secure-boot", False, False),
    (b"\x06\x00\x00\x00\x01", "uefi-secure-boot", True, True)])
def test_preflight_says_whether_secure_boot_is_on_and_supported(tmp_path, var, state, signed, ok):
    root = fake_root(tmp_path)
    if signed:
        for rel in (signedboot.SHIM, signedboot.GRUB_DISK, signedboot.MOK_MANAGER):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"signed")
    if var is not None:
        efivars = root / "sys/firmware/efi/efivars"
        efivars.mkdir(parents=True)
        (efivars / hostinfo.SECURE_BOOT_VAR).write_bytes(var)
    host = host_from(root)
    assert host.firmware == state
    (check,) = by_name(preflight.run_checks(cfg(), host), "secure-boot")
    assert check.ok is ok and (ok or "not signed" in check.message)
    assert ("boots with Secure Boot" in check.message) is signed
