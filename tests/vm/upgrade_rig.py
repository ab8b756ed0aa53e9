"""The rig of tests/vm/test_upgrade.py: a node VM driven over SSH, the artifacts it upgrades to
(published to a docker-registry on 127.0.0.1), and a disk holding another hcios install."""
from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from hcicore.command import run
from hcicore.oci import parse_reference
from hcicore.progress import Progress
from image.publish import push_slot_image
from iso.lab import VM, Lab

from .nodes import wait_ssh

HCI = [str(Path(sys.executable).with_name("hci"))]
BOOT = 420.0  # TCG: an installed node's boot to the health gate, with room for a loaded host
GUEST_HOST = "10.0.2.2"  # the host's loopback as qemu user networking shows it to the guest
FOREIGN_MARK = "var/lib/hcios-foreign-install"


@dataclass
class Node:
    lab: Lab
    name: str
    disks: list[Path]
    key: Path
    firmware: str
    vm: VM
    port: int
    restarts: int = 0

    @classmethod
    def start(cls, lab: Lab, name: str, disks: list[Path], key: Path, firmware: str = "bios") -> Node:
        vm = lab.start_vm(name, disks=disks, firmware=firmware)  # type: ignore[arg-type]
        assert vm.ssh_port is not None
        return cls(lab, name, disks, key, firmware, vm, vm.ssh_port)

    def ssh(self, command: str, *, timeout: float = 900, check: bool = True) -> tuple[int, str, str]:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect("127.0.0.1", port=self.port, username="root", key_filename=str(self.key), timeout=30,
                       banner_timeout=30, auth_timeout=30, allow_agent=False, look_for_keys=False)
        try:
            _, out, err = client.exec_command(command, timeout=timeout)
            text, errs = out.read().decode(errors="replace"), err.read().decode(errors="replace")
            rc = out.channel.recv_exit_status()
        finally:
            client.close()
        if check and rc != 0:
            raise AssertionError(f"{self.name}: `{command}` exited {rc}:\n{errs[-2000:]}\n{text[-1000:]}")
        return rc, text, errs

    def status(self) -> dict:
        return json.loads(self.ssh("hci-upgrade status --json")[1])

    def wait_up(self, since: int, *, slot: str | None = None, timeout: float = BOOT) -> None:
        """The next boot after serial offset ``since`` reached the health gate and SSH answers."""
        pattern = rf"HCIOS-HEALTH-OK slot={slot or '[ab]'}"
        self.vm.wait_for_serial(pattern, timeout, since=since)
        wait_ssh(self.port, self.key, 180)

    def settle(self) -> None:
        """Wait until this boot has finished starting (cloud-init's first-boot stages included),
        so no test opens SSH while a first-boot service may still restart sshd."""
        for _ in range(3):
            try:
                self.ssh("timeout 600 systemctl is-system-running --wait", check=False)
                return
            except (paramiko.SSHException, OSError, EOFError):
                wait_ssh(self.port, self.key, 180)
        raise AssertionError(f"{self.name}: SSH kept dropping while the boot finished")

    def restart_killed(self) -> None:
        """Kill qemu (the plug pulled) and start the node again on the same disks and SSH port."""
        self.vm.destroy()
        self.restarts += 1
        self.vm = self.lab.start_vm(f"{self.name}-r{self.restarts}", disks=self.disks, firmware=self.firmware,  # type: ignore[arg-type]
                                    ssh_port=self.port)

    def paused_apply(self, ref: str, point: str, *extra: str) -> str:
        """Start `hci-upgrade apply` in the background, stopping at ``point``; returns its log."""
        since = self.vm.mark()
        log = f"/root/apply-{point}.log"
        self.ssh(f"HCIOS_TEST_PAUSE_AT={point} nohup hci-upgrade apply --json --plain-http {' '.join(extra)} "
                 f"{shlex.quote(ref)} >{log} 2>&1 </dev/null &")
        self.vm.wait_for_serial(f"HCIOS-PAUSED-AT {point}", 900, since=since)
        return self.ssh(f"cat {log}")[1]


@dataclass
class Refs:
    registry: str  # 127.0.0.1:PORT (host side)
    v1: str
    v2: str
    v3_health: str
    v3_initrd: str
    bad_signature: str
    too_big: str
    flipped: str
    v2_sha256: str = ""

    def guest(self, ref: str) -> str:
        return ref.replace("127.0.0.1", GUEST_HOST, 1)


@dataclass
class World:
    n1: Node
    n2: Node
    refs: Refs
    key: Path
    foreign_base: Path
    foreign: Path
    notes: dict = field(default_factory=dict)


def publish(out: Path, ref: str, key: Path) -> dict:
    proc = subprocess.run([*HCI, "publish", str(out), ref, "--plain-http", "--json", "--sign-key", str(key)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def push(image: Path, ref: str, version: str, key: Path) -> None:
    from hcicore.cosign import load_private_key  # noqa: PLC0415

    push_slot_image(image, parse_reference(ref), version=version, arch="amd64", compression="xz", metadata={},
                    key=load_private_key(key), plain_http=True, progress=Progress(as_json=True, stream=io.StringIO()))


def flip_stored_byte(root: Path, sha256: str) -> None:
    data = next(root.rglob(f"blobs/sha256/{sha256[:2]}/{sha256}/data"))
    with data.open("r+b") as f:
        f.seek(data.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def publish_all(registry, artifacts, images, key: Path, work: Path) -> Refs:
    host = registry.host
    refs = Refs(host, f"{host}/hcios/os:0.1.0", f"{host}/hcios/os:0.2.0", f"{host}/hcios/os:0.3.0",
                f"{host}/hcios/os:0.3.1", f"{host}/hcios/os:0.2.0-other-key", f"{host}/hcios/os:too-big",
                f"{host}/hcios/os:changed-byte")
    publish(artifacts.out, refs.v1, key)
    refs.v2_sha256 = publish(images.v2, refs.v2, key)["sha256"]
    publish(images.v3_health, refs.v3_health, key)
    publish(images.v3_initrd, refs.v3_initrd, key)
    other = work / "other-key.pem"
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(other)])
    stranger = work / "stranger.squashfs"  # 0.2.0 with padding: an artifact of its own, signed by a key not trusted
    stranger.write_bytes((images.v2 / "rootfs.squashfs").read_bytes() + os.urandom(4096))
    push(stranger, refs.bad_signature, "0.4.2", other)
    stranger.unlink()
    big = work / "too-big.squashfs"  # one MiB more than a 2 GiB slot (sparse: zeros)
    with big.open("wb") as f:
        f.truncate((2 << 30) + (1 << 20))
    push(big, refs.too_big, "0.4.0", key)
    big.unlink()
    changed = work / "changed.squashfs"  # 0.2.0 with padding, so its blob is its own
    changed.write_bytes((images.v2 / "rootfs.squashfs").read_bytes() + os.urandom(4096))
    push(changed, refs.flipped, "0.4.1", key)
    from hcicore.digest import sha256_file  # noqa: PLC0415

    flip_stored_byte(registry.root, sha256_file(changed))
    return refs


def foreign_install(lab: Lab, installed: Path) -> Path:
    """Another hcios install on a disk of its own: a copy of the installed disk with new disk and
    partition GUIDs, new filesystem UUIDs and a marker file in its /var."""
    raw = lab.workdir / "foreign.img"
    run(["qemu-img", "convert", "-O", "raw", str(installed), str(raw)])
    run(["sgdisk", "--randomize-guids", str(raw)])
    for number in (3, 6):  # hci-oem, hci-persistent
        info = run(["sgdisk", "-i", str(number), str(raw)]).stdout
        first = int(next(ln for ln in info.splitlines() if ln.startswith("First sector")).split()[2])
        last = int(next(ln for ln in info.splitlines() if ln.startswith("Last sector")).split()[2])
        loop = run(["losetup", "--find", "--show", "--offset", str(first * 512), "--sizelimit",
                    str((last - first + 1) * 512), str(raw)]).stdout.strip()
        try:
            if number == 6:
                mnt = lab.workdir / "foreign-mnt"
                mnt.mkdir()
                run(["mount", loop, str(mnt)])
                try:
                    (mnt / FOREIGN_MARK).parent.mkdir(parents=True)
                    (mnt / FOREIGN_MARK).write_text("this /var belongs to another install\n")
                finally:
                    run(["umount", str(mnt)])
            fsck = run(["e2fsck", "-f", "-y", loop], check=False)  # tune2fs -U wants a checked filesystem
            assert fsck.returncode <= 1, fsck.stdout + fsck.stderr
            run(["tune2fs", "-U", "random", loop])
        finally:
            run(["losetup", "--detach", loop])
    disk = lab.workdir / "foreign.qcow2"
    run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(disk)])
    raw.unlink()
    return disk


def steps(log: str) -> set[tuple[str, str]]:
    """(step, status) pairs of the JSON progress lines in an apply log."""
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return {(e.get("name", ""), e.get("status", "")) for e in events if e.get("event") == "step"}
