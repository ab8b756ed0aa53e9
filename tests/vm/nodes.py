"""The installed node the VM tier shares: one install per session (``installed_disk``), and the
helpers to boot overlays of it, wait for SSH and look inside with testinfra."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
import testinfra
import yaml

from hcicore.command import run
from hcicore.cosign import public_pem
from iso.bootargs import ACTIONS, CONSOLES, live_root_cdlabel, volume_label
from iso.httpserve import serve_directory
from iso.lab import Lab

BOOT_TIMEOUT = 300.0  # TCG: boot takes 70-110 s on 2 cores (as tests/vm/conftest.py)
RESULT = r"HCIOS-INSTALL-(OK|FAILED)[^\r\n]*"
INSTALL_TIMEOUT = 1200.0  # live boot 70-110 s + install (dd + read-back + grub) under TCG
PASSWORD = "hcios-vm-test"
HOSTNAME = "hci-vm1"
# every installed test node is the first server of its own cluster: a token (k3s's token file,
# never logged: test_upgrade.py walks the node for it) and a VIP on qemu's user network (keepalived)
CLUSTER_TOKEN = "K10hcios-vm-test-cluster-token-9f2c41"
VIP = "10.0.2.100"


@dataclass(frozen=True)
class Installed:
    lab: Lab
    disk: Path  # the installed disk: back overlays with it, never boot it directly
    key: Path
    serial: str
    data: Path  # install.data_device (/dev/vdb): had an ext4 filesystem before the install


def live_cmdline(artifacts: Any, extra: str) -> str:
    return " ".join([live_root_cdlabel(volume_label(artifacts.version)), CONSOLES["both"],
                     ACTIONS["install"][1], extra])


def node_config(key: Path, trusted: list[str] | None = None, *, network: dict | None = None, vip: str = VIP,
                **install: object) -> str:
    cfg = {
        "install": {"device": "/dev/vda", "automatic": True, "power_action": "poweroff",
                    # TCG's CPU has no vmx/svm: the preflight warns instead of stopping
                    "skip_checks": True, **install},
        "node": {"hostname": HOSTNAME, "password": PASSWORD,
                 "ssh_authorized_keys": [key.with_suffix(".pub").read_text().strip()],
                 **({"network": network} if network else {})},
        "cluster": {"token": CLUSTER_TOKEN, "vip": vip},
        # hci-upgrade refuses artifacts not signed by this key (tests/vm/test_upgrade.py)
        "upgrade": {"trusted_keys": trusted or []},
    }
    return yaml.safe_dump(cfg)


def boot_live_installer(lab: Lab, artifacts: Any, name: str, disk: Path, extra: str, *, more: tuple[Path, ...] = ()):
    return lab.start_vm(name, cdrom=artifacts.iso, disks=[disk, *more], kernel=artifacts.pxe / "vmlinuz",
                        initrd=artifacts.pxe / "initrd.img", cmdline=live_cmdline(artifacts, extra),
                        disk_cache="unsafe")


def wait_stopped(vm, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while vm.is_running():
        if time.monotonic() > deadline:
            raise AssertionError(f"{vm.name} did not power off within {timeout:.0f}s:\n{vm.serial_tail()}")
        time.sleep(1)


@pytest.fixture(scope="session")
def install_lab() -> Iterator[Lab]:
    with Lab(prefix="hciinst") as lab:
        yield lab


@pytest.fixture(scope="session")
def ssh_key(install_lab: Lab) -> Path:
    key = install_lab.workdir / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hcios-vm-test", "-f", str(key)])
    return key


@pytest.fixture(scope="session")
def signing_key(install_lab: Lab) -> Path:
    """The key upgrade artifacts are signed with; the installed node trusts its public half."""
    key = install_lab.workdir / "signing.pem"
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)])
    return key


def public_key_of(key: Path) -> str:
    from hcicore.cosign import load_private_key  # noqa: PLC0415

    return public_pem(load_private_key(key))


@pytest.fixture(scope="session")
def installed_disk(install_lab: Lab, artifacts: Any, ssh_key: Path, signing_key: Path) -> Installed:
    lab = install_lab
    serve = lab.workdir / "serve"
    serve.mkdir()
    # two disks and an unattended wipe: named by stable id and by serial match, not /dev/vd*
    (serve / "config.yaml").write_text(node_config(ssh_key, [public_key_of(signing_key)],
                                                   device="/dev/disk/by-id/virtio-hcios-vda",
                                                   data_device="serial:hcios-vdb", data_wipe=True))
    disk = lab.create_disk("installed", "20G")
    data = used_data_disk(lab)
    with serve_directory(serve) as port:
        vm = boot_live_installer(lab, artifacts, "install", disk,
                                 f"hci.install.automatic=true hci.install.config_url=http://10.0.2.2:{port}/config.yaml",
                                 more=(data,))
        match = vm.wait_for_serial(RESULT, INSTALL_TIMEOUT)
        seconds = time.monotonic() - vm.started
    serial = vm.serial_text()
    assert match.group(1) == "OK", f"install failed: {match.group(0)}\n{vm.serial_tail(80)}"
    wait_stopped(vm, 180)  # power_action: poweroff
    print(f"install VM: HCIOS-INSTALL-OK after {seconds:.0f}s (live boot + install)")
    return Installed(lab, disk, ssh_key, serial, data)


def used_data_disk(lab: Lab) -> Path:
    """A 2 GiB qcow2 disk holding an ext4 filesystem (made on the host, whole-disk)."""
    raw = lab.workdir / "data.img"
    with raw.open("wb") as f:
        f.truncate(2 * 1024**3)
    run(["mkfs.ext4", "-q", "-F", "-L", "old-data", str(raw)])
    disk = lab.workdir / "data.qcow2"
    run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(disk)])
    raw.unlink()
    return disk


def signatures(qcow2: Path) -> list[dict]:
    """What ``wipefs`` finds on a qcow2 disk as the guest sees it (read through a raw copy)."""
    raw = qcow2.with_suffix(".check.img")
    run(["qemu-img", "convert", "-O", "raw", str(qcow2), str(raw)])
    try:
        out = run(["wipefs", "--no-act", "--json", str(raw)]).stdout
    finally:
        raw.unlink()
    return json.loads(out)["signatures"] if out.strip() else []


def wait_ssh(port: int, key: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port=port, username="root", key_filename=str(key),
                           timeout=10, banner_timeout=10, auth_timeout=10, allow_agent=False,
                           look_for_keys=False)
            return
        except (paramiko.SSHException, OSError, EOFError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        finally:
            client.close()
        time.sleep(3)
    raise AssertionError(f"no SSH on 127.0.0.1:{port} within {timeout:.0f}s (last: {last})")


def host_for(port: int, key: Path) -> testinfra.host.Host:
    """A fresh testinfra host (no cached connection: the node reboots between uses)."""
    backend = testinfra.backend.get_backend(f"paramiko://root@127.0.0.1:{port}",
                                            ssh_identity_file=str(key), timeout=30)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host
