"""The node config as an Anaconda kickstart (Anolis), reaching the layout of ARCHITECTURE.md §3.

What Anaconda can and cannot do here:

- Partitions: ``part`` lines create the six partitions on ``install.device`` only
  (``ignoredisk --only-use``; a data disk is never touched). Anaconda gives ``--label`` to the
  filesystem, not to the GPT entry, so ``%post`` names the GPT entries ``hci-*`` (the ESP and
  the BIOS boot partition are found by their GPT type, the others by filesystem label).
- Slots: Anaconda installs the OS as an ext4 tree into ``hci-root-a``; ``hci-root-b`` is made
  (ext4, mounted only during the install) and left for the first A/B upgrade, which writes a raw
  squashfs there. ``hci-persistent`` is ``/var``; ``hci-oem`` is ``/oem``.
- ``zerombr``/``clearpart`` appear only with ``install.wipe: true``; without it Anaconda stops
  on a disk that has no free space instead of wiping it.
- ``%post`` writes the node config and the cloud-init NoCloud seed to ``hci-oem`` (mode 0600),
  base64-encoded in the kickstart so no content can end the script early.
"""
from __future__ import annotations

import base64
import ipaddress
import shlex

from cloud_init import render_seed
from hcicore.config import NodeConfig, dump_config
from hcicore.errors import Problem, ValidationError
from installer.bootloader import HANG_ARGS
from hcicore.layout import FIXED, PERSISTENT_MIN, MiB, OEM_NODE_CONFIG, OEM_SEED_DIR, slot_bytes

KERNEL_ARGS = HANG_ARGS  # no A/B trial on an Anaconda install: an initramfs failure shows its shell
DEFAULT_IMAGE_BYTES = 1024**3
PACKAGES = ("@core", "cloud-init", "gdisk", "openssh-server", "util-linux")
ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
BIOS_TYPE = "21686148-6449-6e6f-744e-656564454649"
FS_LABELS = ("hci-oem", "hci-root-a", "hci-root-b", "hci-persistent")
ROOT_B_MOUNT = "/run/hcios/root-b"


def _q(value: str) -> str:
    return shlex.quote(value)


def _disk_arg(device: str) -> str:
    """Anaconda takes ``vda`` for /dev/vda and a full path for /dev/disk/by-*/..."""
    rest = device.removeprefix("/dev/")
    return rest if "/" not in rest else device


def _storage(cfg: NodeConfig, image_bytes: int) -> list[str]:
    device = cfg.install.device
    assert device is not None
    disk = _q(_disk_arg(device))
    lines = [f"ignoredisk --only-use={disk}"]
    if cfg.install.wipe:
        lines += ["zerombr", f"clearpart --all --initlabel --drives={disk}"]
    else:
        lines.append("clearpart --none")
    lines.append(f"bootloader --location=mbr --boot-drive={disk} --append={_q(KERNEL_ARGS)}")
    sizes = {label: size // MiB for label, size, _, _ in FIXED}
    slot = slot_bytes(image_bytes) // MiB
    lines += [
        f"part biosboot --fstype=biosboot --size={sizes['hci-bios']} --ondisk={disk}",
        f"part /boot/efi --fstype=efi --size={sizes['hci-esp']} --label=hci-esp --ondisk={disk}",
        f"part /oem --fstype=ext4 --size={sizes['hci-oem']} --label=hci-oem --ondisk={disk}",
        f"part / --fstype=ext4 --size={slot} --label=hci-root-a --ondisk={disk}",
        f"part {ROOT_B_MOUNT} --fstype=ext4 --size={slot} --label=hci-root-b --ondisk={disk}",
        f"part /var --fstype=ext4 --size={PERSISTENT_MIN // MiB} --grow --label=hci-persistent --ondisk={disk}",
    ]
    return lines


def _ip_options(cfg: NodeConfig) -> list[str]:
    net = cfg.node.network
    if net.method == "dhcp":
        opts = ["--bootproto=dhcp"]
    else:
        assert net.address and net.gateway
        iface = ipaddress.ip_interface(net.address)
        if iface.version == 4:
            opts = ["--bootproto=static", f"--ip={iface.ip}", f"--netmask={iface.netmask}",
                    f"--gateway={net.gateway}"]
        else:
            opts = ["--bootproto=static", "--noipv4", f"--ipv6={iface.with_prefixlen}",
                    f"--ipv6gateway={net.gateway}"]
    if net.dns:
        opts.append(f"--nameserver={','.join(net.dns)}")
    if net.mtu:
        opts.append(f"--mtu={net.mtu}")
    if net.vlan_id is not None:
        opts.append(f"--vlanid={net.vlan_id}")
    return opts + ["--onboot=yes", "--activate"]


# Anaconda makes a kernel bond, not br-mgmt (the OVS bond modes' nearest kernel modes):
# balance-slb and balance-tlb both spread by source and need nothing from the switch.
KERNEL_BOND_MODE = {"active-backup": "active-backup", "balance-slb": "balance-tlb", "802.3ad": "802.3ad"}


def _network(cfg: NodeConfig) -> list[str]:
    net = cfg.node.network
    nics = [nic.name or (nic.mac or "") for nic in net.interfaces]
    ip = _ip_options(cfg)
    if net.bond is not None:
        b = net.bond
        opts = [f"mode={KERNEL_BOND_MODE[b.mode]}", f"miimon={b.miimon}"]
        opts += [f"{k}={v}" for k, v in (("lacp_rate", b.lacp_rate), ("primary", b.primary)) if v]
        device = ["--device=bond0", f"--bondslaves={','.join(nics)}", f"--bondopts={','.join(opts)}"]
    elif nics:
        device = [f"--device={nics[0]}"]
    else:
        device = ["--device=link"]
    return [" ".join(["network", *device, *ip]), f"network --hostname={_q(cfg.node.hostname)}"]


def _heredoc_b64(path: str, data: str) -> list[str]:
    encoded = base64.b64encode(data.encode()).decode()
    chunks = [encoded[i:i + 76] for i in range(0, len(encoded), 76)]
    return [f"base64 -d > {_q(path)} <<'HCIOS_B64'", *chunks, "HCIOS_B64", f"chmod 0600 {_q(path)}"]


def _post(cfg: NodeConfig) -> list[str]:
    device = cfg.install.device
    assert device is not None
    lines = ["%post --erroronfail --log=/root/hcios-ks-post.log", "set -eu",
             f"disk=$(readlink -f {_q(device)})",
             "# Name the GPT entries like the hcios installer does (Anaconda labels filesystems only).",
             "name_part() {  # $1: partition device, $2: GPT name",
             "  num=$(cat \"/sys/class/block/$(basename \"$(readlink -f \"$1\")\")/partition\")",
             "  sgdisk --change-name=\"$num:$2\" \"$disk\"",
             "}",
             "by_type() { lsblk -nrpo NAME,PARTTYPE \"$disk\" | awk -v t=\"$1\" 'tolower($2) == t {print $1; exit}'; }",
             f"name_part \"$(by_type {BIOS_TYPE})\" hci-bios",
             f"name_part \"$(by_type {ESP_TYPE})\" hci-esp"]
    lines += [f"name_part \"$(blkid -L {label})\" {label}" for label in FS_LABELS]
    lines += [f"sed -i '\\# {ROOT_B_MOUNT} #d' /etc/fstab  # slot B is for the A/B upgrade, not mounted",
              f"install -d -m 0700 /oem/{OEM_SEED_DIR} /var/lib/cloud/seed/nocloud"]
    lines += _heredoc_b64(f"/oem/{OEM_NODE_CONFIG}", dump_config(cfg))
    for name, text in render_seed(cfg).items():
        lines += _heredoc_b64(f"/oem/{OEM_SEED_DIR}/{name}", text)
        lines.append(f"install -m 0600 /oem/{OEM_SEED_DIR}/{name} /var/lib/cloud/seed/nocloud/{name}")
    lines.append("%end")
    return lines


def render_kickstart(cfg: NodeConfig, *, image_bytes: int = DEFAULT_IMAGE_BYTES) -> str:
    """Kickstart text for ``cfg``; ``image_bytes`` sizes the slots like the hcios installer."""
    if not cfg.install.device:
        raise ValidationError([Problem("install.device", "is required for a kickstart",
                                       "set install.device, e.g. /dev/vda")])
    n = cfg.node
    lines = ["# hcios node install, rendered by `hci kickstart` from the node config", "text",
             "lang en_US.UTF-8", "keyboard us", "timezone Etc/UTC --utc"]
    lines += [f"timesource --ntp-server={_q(server)}" for server in n.ntp]
    lines += _network(cfg)
    lines.append(f"rootpw --iscrypted {_q(n.password_hash)}" if n.password_hash else "rootpw --lock")
    lines += [f"sshkey --username=root {_q(key)}" for key in n.ssh_authorized_keys]
    lines += _storage(cfg, image_bytes)
    lines.append(cfg.install.power_action)
    lines += ["", "%packages", *PACKAGES, "%end", ""]
    lines += _post(cfg)
    return "\n".join(lines) + "\n"
