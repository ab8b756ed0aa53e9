#!/usr/bin/env python3
"""An A/B upgrade in a VM against its floors: bytes downloaded, the slot write against dd of the
same bytes in the same VM, and the reboot into the trial until it is marked good against a plain
reboot of the same node.

  1. install OLD_OUT's ISO automatically on a 20 GiB virtio disk, boot it (qemu TCG);
  2. plain reboot: `systemctl reboot` until `HCIOS-HEALTH-OK` on the serial console;
  3. publish NEW_OUT to docker-registry on 127.0.0.1 (signed), `hci-upgrade apply --json
     --no-reboot` over SSH: its step times (download, write, read-back) and the bytes it fetched;
  4. floor: the same blob fetched with curl into /var/tmp, then `dd ... oflag=direct conv=fsync`
     onto the same slot (the same bytes, so the staged trial is unchanged);
  5. `systemctl reboot` until `HCIOS-SLOT-GOOD` (trial boot, health gate, mark good).
Run as root after building both: .venv/bin/python bench/upgrade.py out-0.1.0/ out-0.2.0/ [--json]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paramiko  # noqa: E402
import yaml  # noqa: E402

from hcicore.cosign import load_private_key, public_pem  # noqa: E402
from iso.bootargs import ACTIONS, CONSOLES, live_root_cdlabel, volume_label  # noqa: E402
from iso.build import iso_name  # noqa: E402
from iso.httpserve import serve_directory  # noqa: E402
from iso.lab import Lab  # noqa: E402
from tests.conftest import run_registry  # noqa: E402

HCI = [str(Path(sys.executable).with_name("hci"))]
TIMEOUT = 1500.0


def ssh(port: int, key: Path, command: str) -> str:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    deadline = time.monotonic() + 300
    while True:
        try:
            client.connect("127.0.0.1", port=port, username="root", key_filename=str(key), timeout=20,
                           banner_timeout=20, auth_timeout=20, allow_agent=False, look_for_keys=False)
            break
        except (paramiko.SSHException, OSError, EOFError):
            if time.monotonic() > deadline:
                raise
            time.sleep(3)
    try:
        _, out, err = client.exec_command(command, timeout=1800)
        text = out.read().decode()
        if out.channel.recv_exit_status() != 0:
            raise SystemExit(f"`{command}` failed: {err.read().decode()[-2000:]}")
        return text
    finally:
        client.close()


RX = ("for d in /sys/class/net/*; do [ \"${d##*/}\" = lo ] || cat $d/statistics/rx_bytes; done "
      "| awk '{s += $1} END {print s}'")


def rx_bytes(port: int, key: Path) -> int:
    """Bytes the node's NICs have received: the download as the wire saw it (headers and the SSH
    session included), not as hci-upgrade reports it."""
    return int(ssh(port, key, RX).strip())


def timed_reboot(vm, port: int, key: Path, marker: str) -> float:
    since = vm.mark()
    start = time.monotonic()
    try:
        ssh(port, key, "systemctl --no-block reboot")
    except (paramiko.SSHException, EOFError):
        pass
    vm.wait_for_serial(marker, TIMEOUT, since=since)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("old", type=Path, help="`hci build` output to install (with its ISO and pxe/)")
    ap.add_argument("new", type=Path, nargs="?", help="`hci build` output to upgrade to (a higher version)")
    ap.add_argument("--reboot-only", action="store_true",
                    help="install OLD and time a plain reboot to healthy, no upgrade (compare two images' reboots)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    manifest = json.loads((args.old / "build-manifest.json").read_text())
    version = manifest["version"]
    with Lab(prefix="hcibench") as lab:
        key = lab.workdir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        sign = lab.workdir / "sign.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", str(sign)], check=True, capture_output=True)
        www = lab.workdir / "www"
        www.mkdir()
        (www / "config.yaml").write_text(yaml.safe_dump({
            "install": {"device": "/dev/vda", "automatic": True, "power_action": "poweroff", "skip_checks": True},
            "node": {"hostname": "bench1", "ssh_authorized_keys": [key.with_suffix(".pub").read_text().strip()]},
            "upgrade": {"trusted_keys": [public_pem(load_private_key(sign))]}}))
        disk = lab.create_disk("disk", "20G")
        with serve_directory(www) as port:
            vm = lab.start_vm("install", cdrom=args.old / iso_name(version, manifest["arch"]), disks=[disk],
                              kernel=args.old / "pxe/vmlinuz", initrd=args.old / "pxe/initrd.img",
                              cmdline=" ".join([live_root_cdlabel(volume_label(version)), CONSOLES["both"],
                                                ACTIONS["auto"][1],
                                                f"hci.install.config_url=http://10.0.2.2:{port}/config.yaml"]))
            m = vm.wait_for_serial(r"HCIOS-INSTALL-(OK|FAILED)[^\r\n]*", TIMEOUT)
            if m.group(1) != "OK":
                raise SystemExit(f"install failed: {m.group(0)}")
            while vm.is_running():
                time.sleep(1)
        vm = lab.start_vm("node", disks=[disk])
        vm.wait_for_serial(r"HCIOS-HEALTH-OK", TIMEOUT)
        plain = timed_reboot(vm, vm.ssh_port, key, r"HCIOS-HEALTH-OK")
        if args.reboot_only or args.new is None:
            again = timed_reboot(vm, vm.ssh_port, key, r"HCIOS-HEALTH-OK")
            res = {"version": version, "plain_reboot_s": round(plain, 1), "second_reboot_s": round(again, 1)}
            print(json.dumps(res) if args.json else
                  f"hcios {version}: plain reboot to healthy {plain:.0f}s, again {again:.0f}s")
            return 0
        with run_registry(lab.workdir) as registry:
            ref = f"{registry.host}/hcios/os:bench"
            pub = subprocess.run([*HCI, "publish", str(args.new), ref, "--plain-http", "--json", "--sign-key",
                                  str(sign)], capture_output=True, text=True, check=True)
            published = json.loads(pub.stdout.splitlines()[-1])
            guest_ref = ref.replace("127.0.0.1", "10.0.2.2")
            rx_before = rx_bytes(vm.ssh_port, key)
            out = ssh(vm.ssh_port, key, f"hci-upgrade apply --json --plain-http --no-reboot {guest_ref}")
            received = rx_bytes(vm.ssh_port, key) - rx_before
            events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            step = {e["name"]: e["seconds"] for e in events if e.get("status") == "done"}
            doc = json.loads(ssh(vm.ssh_port, key, "hci-upgrade status --json"))
            slot = f"/dev/disk/by-partuuid/{doc['slots'][doc['trial']]['partuuid']}"
            blob = f"http://10.0.2.2:{registry.host.split(':')[1]}/v2/hcios/os/blobs/sha256:{published['sha256']}"
            curl = ssh(vm.ssh_port, key, f"curl -s -o /var/tmp/blob -w '%{{size_download}} %{{time_total}}' {blob}")
            dd = ssh(vm.ssh_port, key, f"dd if=/var/tmp/blob of={slot} bs=4M oflag=direct conv=fsync 2>&1; "
                                       "rm /var/tmp/blob")
        dd_s = float(re.search(r"copied, ([0-9.]+) s", dd).group(1))  # type: ignore[union-attr]
        curl_bytes, curl_s = curl.split()
        trial = timed_reboot(vm, vm.ssh_port, key, r"HCIOS-SLOT-GOOD")
    res = {"image_bytes": published["size"], "received_bytes": received,
           "download_s": step.get("download"), "curl_s": float(curl_s), "curl_bytes": int(curl_bytes),
           "write_s": step.get("write slot"), "verify_s": step.get("verify slot"), "dd_s": dd_s,
           "write_vs_dd": round(step["write slot"] / dd_s, 2),
           "plain_reboot_s": round(plain, 1), "reboot_to_good_s": round(trial, 1),
           "reboot_vs_plain": round(trial / plain, 2)}
    if args.json:
        print(json.dumps(res))
    else:
        mib = published["size"] / 2**20
        print(f"image {published['size']} bytes ({mib:.0f} MiB); the node's NICs received {received} bytes "
              f"during apply ({received / published['size']:.3f}x the image: no deltas yet)")
        print(f"download {res['download_s']:.1f}s (curl of the same blob {res['curl_s']:.1f}s)")
        print(f"slot write {res['write_s']:.1f}s vs dd O_DIRECT {dd_s:.1f}s = {res['write_vs_dd']}x; "
              f"read-back verify {res['verify_s']:.1f}s")
        print(f"reboot to marked good {trial:.0f}s vs plain reboot to healthy {plain:.0f}s = {res['reboot_vs_plain']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
