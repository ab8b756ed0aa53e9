#!/usr/bin/env python3
"""Install time in a VM against the floor: dd of the same bytes onto the same virtual disk.

Both runs boot the live ISO under qemu (TCG) with a blank 20 GiB virtio disk:
  install: `hci.install.automatic=true` with a config served from 127.0.0.1; the installer prints
           `HCIOS-INSTALL-OK ... seconds=N` (partitioning, slot write + read-back verify, grub
           BIOS+UEFI, OEM config), which is what is measured.
  floor:   `systemd.run=` makes the live system run only
           `dd if=<the ISO's squashfs> of=/dev/vda bs=4M oflag=direct conv=fsync`
           and dd's own timing is read from the serial console.
Boot time is not part of either number. Run as root after `hci build`:
    .venv/bin/python bench/install.py out/   [--json]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from iso.bootargs import ACTIONS, CONSOLES, live_root_cdlabel, volume_label  # noqa: E402
from iso.build import iso_name  # noqa: E402
from iso.httpserve import serve_directory  # noqa: E402
from iso.lab import Lab  # noqa: E402

TIMEOUT = 1200.0
DD_RE = r"(\d+) bytes .* copied, ([0-9.]+) s"


def live_args(version: str, extra: str) -> str:
    return " ".join([live_root_cdlabel(volume_label(version)), CONSOLES["both"], extra])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path, help="an `hci build` output directory (ISO and pxe/)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    manifest = json.loads((args.out / "build-manifest.json").read_text())
    version = manifest["version"]
    iso = args.out / iso_name(version, manifest["arch"])
    kernel, initrd = args.out / "pxe" / "vmlinuz", args.out / "pxe" / "initrd.img"
    image_bytes = (args.out / "rootfs.squashfs").stat().st_size
    with Lab(prefix="hcibench") as lab:
        www = lab.workdir / "www"
        www.mkdir()
        (www / "config.yaml").write_text(yaml.safe_dump({
            "install": {"device": "/dev/vda", "automatic": True, "power_action": "poweroff",
                        "skip_checks": True},
            "node": {"hostname": "bench1", "password": "bench-only-password"}}))
        with serve_directory(www) as port:
            disk = lab.create_disk("install", "20G")
            vm = lab.start_vm("install", cdrom=iso, disks=[disk], kernel=kernel, initrd=initrd,
                              cmdline=live_args(version, f"{ACTIONS['auto'][1]} "
                                                f"hci.install.config_url=http://10.0.2.2:{port}/config.yaml"))
            m = vm.wait_for_serial(r"HCIOS-INSTALL-(OK|FAILED)[^\r\n]*", TIMEOUT)
            if m.group(1) != "OK":
                raise SystemExit(f"install failed: {m.group(0)}\n{vm.serial_tail()}")
            took = re.search(r"seconds=([0-9.]+)", m.group(0))
            if took is None:
                raise SystemExit(f"the OK line carries no seconds=: {m.group(0)!r}")
            install_s = float(took.group(1))
            vm.destroy()
        disk = lab.create_disk("floor", "20G")
        dd = ("dd if=/run/initramfs/live/LiveOS/squashfs.img of=/dev/vda bs=4M oflag=direct conv=fsync "
              "2>/dev/ttyS0")
        vm = lab.start_vm("floor", cdrom=iso, disks=[disk], kernel=kernel, initrd=initrd,
                          cmdline=live_args(version, f"{ACTIONS['shell'][1]} systemd.run=\"/bin/sh -c '{dd}'\" "
                                            "systemd.run_success_action=poweroff"))
        m = vm.wait_for_serial(DD_RE, TIMEOUT)
        floor_bytes, floor_s = int(m.group(1)), float(m.group(2))
    if floor_bytes != image_bytes:
        raise SystemExit(f"dd wrote {floor_bytes} bytes, the image has {image_bytes}")
    res = {"image_bytes": image_bytes, "install_s": install_s, "floor_dd_s": floor_s,
           "install_vs_floor": round(install_s / floor_s, 2)}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"image {image_bytes / 2**20:.0f} MiB; floor (dd, O_DIRECT, same virtual disk) {floor_s:.1f}s")
        print(f"hci install (partition, write + verify slot A, grub BIOS+UEFI, OEM) {install_s:.1f}s "
              f"= {install_s / floor_s:.2f}x floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
