"""A/B upgrades of installed nodes under qemu (TCG): two nodes on overlays of the session's
installed disk, artifacts published with `hci publish` to Debian's docker-registry on 127.0.0.1
(the guests reach it as 10.0.2.2), power cuts made for real (libvirt reset: no shutdown, no sync,
or the qemu process killed).

node1 boots with SeaBIOS and carries a second disk holding another hcios install; node2 boots
with OVMF, Secure Boot enforced with Microsoft's keys (shim, Debian's signed grub and kernel), so
every upgrade, trial and rollback of node2 runs under Secure Boot. The tests run in file order on the same two nodes, one scenario after another:

1. both come up on 0.1.0, each from its own disk; node1's cluster token is private, it holds its
   VIP, and a VIP moves between two keepalived servers in network namespaces inside it;
   node2's storage agent serves a volume over NVMe/TCP to nvme-cli in a second namespace, with
   the SPDK engine and with the kernel engine (LVM thin + nvmet);
2. node1 edits /etc and /var;
3. node1 applies 0.2.0 three times, and loses power mid-download, mid-write and after the write
   (before the boot state): each time it comes back on slot A with its config and data;
4. `hci upgrade-cluster` upgrades node1 (power cut during its trial boot) and then node2;
5. node1 runs 0.2.0 from slot B, marked good, edits and data kept, unedited files updated;
   node2's volumes, snapshot and clone are intact after its reboots and upgrade;
6. bad artifacts are refused with nothing written: changed byte, wrong signature, too big, older;
7. 0.3.0 (a failing health check) with a power cut between the two boot state copies comes back
   to 0.2.0 on its own, and is refused the next time;
8. `hci upgrade-cluster` with 0.3.1 (a failing initramfs) stops at node1, which comes back to
   0.2.0; node2 is not touched;
9. the other install's disk was never written.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import platform_checks, storage_checks
from .nodes import HOSTNAME, Installed, host_for
from .upgrade_rig import BOOT, FOREIGN_MARK, HCI, Node, World, foreign_install, publish_all, steps

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def world(installed_disk: Installed, artifacts, upgrade_images, signing_key: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from tests.conftest import run_registry  # noqa: PLC0415

    lab = installed_disk.lab
    work = tmp_path_factory.mktemp("upgrade")
    with run_registry(work) as registry:
        refs = publish_all(registry, artifacts, upgrade_images, signing_key, work)
        foreign_base = foreign_install(lab, installed_disk.disk)
        foreign = lab.create_disk("node1-foreign", backing=foreign_base)
        n1 = Node.start(lab, "node1", [lab.create_disk("node1", backing=installed_disk.disk), foreign],
                        installed_disk.key)
        # node2's second disk is a blank data disk: install.json names it (virtio-hcios-vdb), for
        # the node's SPDK agent; the third is for a second agent with the kernel engine
        n2 = Node.start(lab, "node2", [lab.create_disk("node2", backing=installed_disk.disk),
                                       lab.create_disk("node2-data", "2G"), lab.create_disk("node2-kdata", "1G")],
                        installed_disk.key,
                        firmware="uefi-secboot")
        n1.wait_up(0, slot="a")
        n2.wait_up(0, slot="a")
        n1.settle()  # the first boot: cloud-init's config stage runs after the health gate
        n2.settle()
        yield World(n1, n2, refs, installed_disk.key, foreign_base, foreign)
        n1.vm.destroy()
        n2.vm.destroy()


def intact(node: Node, world: World) -> None:
    """The node's config and data, as test_02 left them."""
    host = host_for(node.port, node.key)
    token = world.notes["token"]
    assert host.file("/etc/hci-test-token").content_string.strip() == token
    assert host.file("/var/lib/hci-test/data").content_string.strip() == token
    assert host.file("/etc/motd").content_string.endswith(f"local motd line {token}\n")
    assert host.check_output("hostname") == HOSTNAME
    assert host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string == world.notes["host_key"]
    assert not host.file(f"/{FOREIGN_MARK}").exists


def clean_boot(node: Node) -> None:
    """The boot ended with every unit up (`running`, not `degraded`) and no DSA host key."""
    _, state, _ = node.ssh("timeout 300 systemctl is-system-running --wait", check=False)
    failed = node.ssh("systemctl --failed --no-legend --plain", check=False)[1]
    assert state.strip() == "running", failed
    assert not host_for(node.port, node.key).file("/etc/ssh/ssh_host_dsa_key").exists


def test_01_nodes_boot_their_own_disk(world: World) -> None:
    n1 = world.n1
    host = host_for(n1.port, n1.key)
    cmdline = host.file("/proc/cmdline").content_string
    own = json.loads(host.check_output("cat /run/hci/oem/hcios/install.json"))["partuuids"]
    assert f"root=PARTUUID={own['hci-root-a']}" in cmdline and "PARTLABEL" not in cmdline
    # both disks carry the same GPT names; every mount is on vda, the one this node booted
    assert host.check_output("lsblk -n -o PARTLABEL /dev/vdb").split() == host.check_output(
        "lsblk -n -o PARTLABEL /dev/vda").split()
    for where, label in (("/run/hci/oem", "hci-oem"), ("/run/hci/persistent", "hci-persistent")):
        source = host.check_output(f"findmnt -n -o SOURCE {where}")
        assert host.check_output(f"blkid -s PARTUUID -o value {source}") == own[label], where
        assert source.startswith("/dev/vda")
    fstype, options = host.check_output("findmnt -n -o FSTYPE,OPTIONS /").split()
    assert fstype == "squashfs" and "ro" in options.split(",")
    assert host.check_output("findmnt -n -o FSTYPE /etc") == "overlay"
    assert host.file("/run/hci/oem/hcios/config.yaml").mode == 0o600
    assert host.run("touch /hci-should-fail").rc != 0
    doc = n1.status()
    assert (doc["booted"], doc["good"], doc["trial"]) == ("a", "a", None)
    assert doc["slots"]["a"]["version"] == "0.1.0" and doc["slots"]["a"]["state"] == "good"
    assert doc["slots"]["b"]["state"] == "empty"
    text = world.n2.vm.serial_text()
    assert "hcios: booting slot a" in text and "HCIOS-HEALTH-OK slot=a" in text  # UEFI (OVMF)
    assert world.n2.ssh("mokutil --sb-state")[1].strip() == "SecureBoot enabled"
    for node in (n1, world.n2):  # a clean first boot: no failed unit, no DSA host key
        clean_boot(node)
    assert world.n2.status()["slots"]["a"]["version"] == "0.1.0"


def test_01a_platform_token_and_vip(world: World, artifacts) -> None:
    """From the installer's config alone: k3s started with the image's airgap archives and
    KubeVirt's manifests, the k3s token only in owner-only files, the VIP held by keepalived; and
    keepalived moves a VIP to a second server when the first stops."""
    manifest = json.loads((artifacts.out / "build-manifest.json").read_text())
    platform_checks.k3s_starts_with_its_bundle(world.n1, manifest)
    platform_checks.token_is_private(world.n1)
    platform_checks.holds_its_vip(world.n1)
    platform_checks.vip_moves_when_the_first_server_stops(world.n1)


def test_01b_node2_storage_over_nvme_tcp(world: World) -> None:
    """node2's storage agent on its data disk, used with hci storage and nvme-cli: the SPDK engine,
    then the kernel engine (LVM thin + nvmet) on a second disk."""
    world.notes["volume_sha"] = storage_checks.round_trip(world.n2)
    world.notes["kernel_volume_sha"] = storage_checks.round_trip(world.n2, storage_checks.KERNEL)


def test_02_node1_edits_etc_and_var(world: World) -> None:
    token = os.urandom(6).hex()
    world.notes["token"] = token
    world.n1.ssh(f"echo {token} > /etc/hci-test-token && echo 'local motd line {token}' >> /etc/motd && "
                 f"touch /etc/hcios/version && mkdir -p /var/lib/hci-test && echo {token} > /var/lib/hci-test/data "
                 "&& sync")
    host = host_for(world.n1.port, world.n1.key)
    world.notes["host_key"] = host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string
    # the touched file was copied into the node's /etc layer unchanged
    assert host.file("/run/hci/persistent/etc/a/upper/hcios/version").exists


def test_03_power_cuts_before_the_trial_leave_slot_a(world: World) -> None:
    n1, ref = world.n1, world.refs.guest(world.refs.v2)
    # mid-download: the plug pulled (qemu killed)
    n1.paused_apply(ref, "download-half")
    n1.restart_killed()
    n1.wait_up(0, slot="a")
    _on_slot_a(n1, world)
    clean_boot(n1)  # the second boot (after a power cut) ends clean too
    # mid-write of slot B: reset, no sync
    log = n1.paused_apply(ref, "write-half")
    assert "resuming the download at" in log  # the part that was on disk before the cut was kept
    since = n1.vm.mark()
    n1.vm.reset()
    n1.wait_up(since, slot="a")
    _on_slot_a(n1, world)
    # after the write and its read-back, before the boot state
    log = n1.paused_apply(ref, "after-write")
    assert ("write slot", "done") in steps(log)  # written, read back: then the power went
    since = n1.vm.mark()
    n1.vm.reset()
    n1.wait_up(since, slot="a")
    _on_slot_a(n1, world)


def _on_slot_a(node: Node, world: World) -> None:
    doc = node.status()
    assert (doc["booted"], doc["good"], doc["trial"]) == ("a", "a", None), doc
    assert doc["slots"]["b"]["state"] == "empty"  # not bootable: its marker went before the first byte
    intact(node, world)


def test_04_upgrade_cluster_upgrades_node1_then_node2(world: World) -> None:
    n1, n2 = world.n1, world.n2
    since = n1.vm.mark()
    proc = subprocess.Popen([*HCI, "upgrade-cluster", world.refs.guest(world.refs.v2), f"root@127.0.0.1:{n1.port}",
                             f"root@127.0.0.1:{n2.port}", "--key", str(world.key), "--accept-new-host-keys",
                             "--plain-http", "--json", "--timeout", "1500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.communicate()[0]), daemon=True)
    reader.start()
    # a power cut during node1's trial boot: grub already counted the try, so it boots again
    n1.vm.wait_for_serial(r"hcios: trial boot of slot b \(2 tries left", 900, since=since)
    time.sleep(5)
    n1.vm.reset()
    reader.join(timeout=2400)
    assert proc.returncode == 0, (proc.stderr.read() if proc.stderr else "") + "".join(out)
    result = json.loads(out[0].splitlines()[-1])
    assert [line.split(":")[0] for line in result["nodes"]] == ["127.0.0.1", "127.0.0.1"]
    assert f"{n1.port}" in result["nodes"][0] and f"{n2.port}" in result["nodes"][1]
    assert all("runs 0.2.0, marked good" in line for line in result["nodes"])
    text = n1.vm.serial_text()[since:]
    assert "hcios: trial boot of slot b (1 tries left after this one)" in text  # the cut try counted
    assert "HCIOS-SLOT-GOOD slot=b version=0.2.0" in text


def test_05_node1_runs_0_2_0_with_its_config_and_data(world: World) -> None:
    n1 = world.n1
    host = host_for(n1.port, n1.key)
    assert "hci.slot=b" in host.file("/proc/cmdline").content_string
    intact(n1, world)
    # a file the node never edited (only copied up by `touch`) comes from 0.2.0
    assert host.file("/etc/hcios/version").content_string == "0.2.0\n"
    assert host.file("/etc/hcios/release-notes").exists
    # /etc/motd was edited here and changed by 0.2.0: the local one stays, reported as a conflict
    assert "hcios 0.2.0" not in host.file("/etc/motd").content_string
    # new /var content of the image appears; what was there stays
    assert host.file("/var/lib/hcios-test/from-0.2.0").exists
    doc = n1.status()
    assert (doc["booted"], doc["good"], doc["trial"], doc["tries_left"]) == ("b", "b", None, 0)
    assert doc["slots"]["b"]["version"] == "0.2.0"
    assert doc["slots"]["b"]["sha256"] == world.refs.v2_sha256 and doc["slots"]["b"]["state"] == "good"
    assert doc["slots"]["a"]["state"] == "good" and doc["slots"]["a"]["version"] == "0.1.0"
    assert doc["last"]["result"] == "success" and doc["last"]["reason"] == ""
    assert [c["path"] for c in doc["etc_conflicts"]] == ["/etc/motd"]
    doc2 = world.n2.status()
    assert (doc2["booted"], doc2["good"], doc2["slots"]["b"]["version"]) == ("b", "b", "0.2.0")


def test_05a_node2_volumes_survived_reboots_and_the_upgrade(world: World) -> None:
    assert world.n2.status()["slots"]["b"]["version"] == "0.2.0"
    storage_checks.intact(world.n2, world.notes["volume_sha"])
    storage_checks.intact(world.n2, world.notes["kernel_volume_sha"], storage_checks.KERNEL)


def test_06_bad_artifacts_are_refused_with_nothing_written(world: World) -> None:
    n1, refs = world.n1, world.refs
    slot_a = f"/dev/disk/by-partuuid/{n1.status()['slots']['a']['partuuid']}"
    digest = f"head -c 512M {slot_a} | sha256sum"
    before = n1.ssh(digest)[1]
    cases = [(refs.v1, "older than the running 0.2.0: a downgrade"),
             (refs.bad_signature, "no valid signature by a trusted key"),
             (refs.too_big, "does not fit"),
             (refs.flipped, "refused, nothing was written to the slot")]
    for ref, words in cases:
        rc, _, err = n1.ssh(f"hci-upgrade apply --plain-http {refs.guest(ref)}", check=False)
        assert rc == 2 and words in err, (ref, rc, err)
    assert n1.ssh(digest)[1] == before
    doc = n1.status()
    assert doc["trial"] is None and doc["good"] == "b" and doc["slots"]["a"]["state"] == "good"


def test_07_failing_health_check_comes_back_on_its_own(world: World) -> None:
    n1, ref = world.n1, world.refs.guest(world.refs.v3_health)
    n1.paused_apply(ref, "bootstate-copy-1")  # the new boot state is in one copy only
    since = n1.vm.mark()
    n1.vm.reset()
    n1.vm.wait_for_serial(r"hcios: trial boot of slot a", BOOT, since=since)  # the newest copy: the trial
    failed = n1.vm.wait_for_serial(r"HCIOS-TRIAL-FAILED slot=a: rolled back to slot b", BOOT, since=since)
    n1.wait_up(failed.end(), slot="b")
    doc = n1.status()
    assert (doc["booted"], doc["good"], doc["trial"]) == ("b", "b", None)
    assert doc["slots"]["a"]["state"] == "bad" and doc["slots"]["a"]["version"] == "0.3.0"
    assert doc["last"]["result"] == "rolled-back" and "90-hcitest-fail" in doc["last"]["reason"]
    intact(n1, world)
    rc, _, err = n1.ssh(f"hci-upgrade apply --plain-http {ref}", check=False)
    assert rc == 2 and "was rolled back on this node" in err and "--force" in err


def test_08_upgrade_cluster_stops_at_the_first_node_that_fails(world: World) -> None:
    n1, n2 = world.n1, world.n2
    since = n1.vm.mark()
    before2 = n2.status()
    proc = subprocess.run([*HCI, "upgrade-cluster", world.refs.guest(world.refs.v3_initrd), f"root@127.0.0.1:{n1.port}",
                           f"root@127.0.0.1:{n2.port}", "--key", str(world.key), "--accept-new-host-keys",
                           "--plain-http", "--tries", "2", "--timeout", "1500"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"node 127.0.0.1:{n1.port}: rolled back to slot b" in proc.stderr
    assert "the nodes after it were not touched" in proc.stderr
    text = n1.vm.serial_text()[since:]
    assert text.count("this initramfs fails on purpose") == 2 and "slot a has no tries left" in text
    doc = n1.status()
    assert (doc["booted"], doc["good"], doc["trial"]) == ("b", "b", None)
    assert doc["slots"]["a"]["version"] == "0.3.1" and doc["slots"]["a"]["state"] == "bad"
    assert "no health report" in doc["last"]["reason"]
    intact(n1, world)
    after2 = n2.status()
    assert after2["slots"] == before2["slots"] and after2["last"] == before2["last"] and after2["trial"] is None


def test_09_the_other_install_was_never_written(world: World) -> None:
    world.n1.vm.destroy()  # qemu holds its disks locked while it runs
    proc = subprocess.run(["qemu-img", "compare", str(world.foreign_base), str(world.foreign)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"node1 wrote to the disk of the other install: {proc.stdout}{proc.stderr}"
