"""Preflight checks: can this machine take the node described by a config?

Each check gives a :class:`Check`. ``severity`` says what a failed check means: ``fail`` stops an
automatic install (unless ``install.skip_checks``), ``warn`` never stops one. The interactive
installer shows every failed check as a warning and lets the operator go on.

Thresholds (per role; memory is compared with 90% of the minimum because MemTotal leaves out what
the firmware and the kernel keep for themselves):

=========  ====================  ==================  =====================  =================
role       memory hard minimum   memory recommended  disk hard minimum      disk recommended
=========  ====================  ==================  =====================  =================
server     2 GiB                 8 GiB               layout minimum         60 GiB
agent      2 GiB                 8 GiB               layout minimum         60 GiB
witness    1 GiB                 2 GiB               layout minimum         20 GiB
=========  ====================  ==================  =====================  =================

The layout minimum is ARCHITECTURE.md section 3: hci-bios 1 MiB + hci-esp 300 MiB + hci-oem 256 MiB
+ two slots + 10 GiB for hci-persistent + 2 MiB of GPT and alignment. A slot is twice the image,
at least 2 GiB (:func:`hcicore.layout.slot_bytes`). CPU virtualization (vmx/svm) is a ``fail`` for server and
agent (they run VMs with KubeVirt) and a ``warn`` for a witness or a node whose config asks for
emulated VMs (``cluster.kubevirt_emulation``); the node warns again at each boot without ``/dev/kvm``
(``node_services/platform.py``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hcicore.errors import Problem, ValidationError
from hcicore.layout import min_disk_bytes

from .hostinfo import GIB, HostInfo

DEFAULT_IMAGE_BYTES = 1 * GIB
MEM_SLACK = 0.9

MEMORY = {  # role: (hard minimum, recommended)
    "server": (2 * GIB, 8 * GIB),
    "agent": (2 * GIB, 8 * GIB),
    "witness": (1 * GIB, 2 * GIB),
}
DISK_RECOMMENDED = {"server": 60 * GIB, "agent": 60 * GIB, "witness": 20 * GIB}

Severity = Literal["warn", "fail"]
# Failed "fail" checks that another answer fixes (a bigger disk, a disk that exists, a NIC that
# exists): the interactive summary refuses "yes" on them. The hardware ones (CPU, memory) stay
# warnings there: a person at the console may go on, an automatic install stops.
ANSWER_CHECKS = ("install-disk", "install-disk-empty", "data-disk", "nic")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    severity: Severity
    message: str
    path: str = ""
    fix: str = ""

    def __str__(self) -> str:
        state = "ok" if self.ok else self.severity
        return f"[{state}] {self.name}: {self.message}"


def layout_min_bytes(image_bytes: int = DEFAULT_IMAGE_BYTES) -> int:
    """Smallest install disk for this image: the one size rule, hcicore.layout's."""
    return min_disk_bytes(image_bytes)


def gib(n: int | float) -> str:
    return f"{n / GIB:.1f} GiB"


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _role(cfg: Mapping[str, Any]) -> str:
    role = _get(cfg, "install.role") or "server"
    return role if role in MEMORY else "server"


def check_cpu(cfg: Mapping[str, Any], host: HostInfo) -> Check:
    role = _role(cfg)
    # a witness runs no VMs; a node asked to emulate them (cluster.kubevirt_emulation) can do without
    emulate = bool(_get(cfg, "cluster.kubevirt_emulation"))
    severity: Severity = "warn" if role == "witness" or emulate else "fail"
    if host.virt_flags:
        return Check("cpu-virtualization", True, severity,
                     f"CPU has {', '.join(sorted(host.virt_flags))}")
    return Check("cpu-virtualization", False, severity,
                 "CPU reports no hardware virtualization (vmx or svm); VMs would be emulated",
                 path="install.role",
                 fix="enable VT-x/AMD-V in the firmware, or set cluster.kubevirt_emulation: true (labs) "
                     "or install.skip_checks: true")


def check_memory(cfg: Mapping[str, Any], host: HostInfo) -> Check:
    role = _role(cfg)
    hard, recommended = MEMORY[role]
    have = host.mem_total
    if have < hard * MEM_SLACK:
        return Check("memory", False, "fail",
                     f"{gib(have)} of memory, a {role} needs at least {gib(hard)}: "
                     f"{gib(hard - have)} short", path="install.role",
                     fix="add memory, or set install.skip_checks: true")
    if have < recommended * MEM_SLACK:
        return Check("memory", False, "warn",
                     f"{gib(have)} of memory, {gib(recommended)} is recommended for a {role}",
                     path="install.role", fix="add memory")
    return Check("memory", True, "fail", f"{gib(have)} of memory")


def check_install_disk(cfg: Mapping[str, Any], host: HostInfo, image_bytes: int) -> list[Check]:
    device = _get(cfg, "install.device")
    if not device:
        return [Check("install-disk", False, "fail", "no install disk chosen",
                      path="install.device", fix="set install.device to a disk, e.g. /dev/vda")]
    disk = host.disk(device)
    if disk is None:
        known = ", ".join(d.path for d in host.disks) or "none"
        return [Check("install-disk", False, "fail", f"disk {device} not found",
                      path="install.device", fix=f"disks here: {known}")]
    checks: list[Check] = []
    hard = layout_min_bytes(image_bytes)
    recommended = max(DISK_RECOMMENDED[_role(cfg)], hard)
    if disk.size < hard:
        checks.append(Check("install-disk", False, "fail",
                            f"disk {disk.path} is {gib(disk.size)}, needs at least {gib(hard)}: "
                            f"{gib(hard - disk.size)} short", path="install.device",
                            fix="choose a larger disk"))
    elif disk.size < recommended:
        checks.append(Check("install-disk", False, "warn",
                            f"disk {disk.path} is {gib(disk.size)}, {gib(recommended)} is "
                            f"recommended: {gib(recommended - disk.size)} short",
                            path="install.device", fix="choose a larger disk"))
    else:
        checks.append(Check("install-disk", True, "fail", f"disk {disk.path} is {gib(disk.size)}"))
    if disk.partitions and not _get(cfg, "install.wipe"):
        checks.append(Check("install-disk-empty", False, "fail",
                            f"disk {disk.path} holds {len(disk.partitions)} partition(s) "
                            f"({', '.join(disk.partitions)}) and install.wipe is false",
                            path="install.wipe",
                            fix="set install.wipe: true to erase it, or choose an empty disk"))
    return checks


def check_data_disk(cfg: Mapping[str, Any], host: HostInfo) -> list[Check]:
    data = _get(cfg, "install.data_device")
    if not data:
        return []
    disk = host.disk(data)
    if disk is None:
        return [Check("data-disk", False, "fail", f"data disk {data} not found",
                      path="install.data_device",
                      fix=f"disks here: {', '.join(d.path for d in host.disks) or 'none'}")]
    device = _get(cfg, "install.device")
    install = host.disk(device) if device else None
    if device and (disk.path == device or (install is not None and install.path == disk.path)):
        return [Check("data-disk", False, "fail",
                      f"data disk {data} is the install disk {device}",
                      path="install.data_device", fix="choose a different disk or none")]
    return [Check("data-disk", True, "fail", f"data disk {disk.path} is {gib(disk.size)}")]


def _interfaces(cfg: Mapping[str, Any]) -> Iterable[tuple[int, Mapping[str, Any]]]:
    ifaces = _get(cfg, "node.network.interfaces") or []
    return [(i, x) for i, x in enumerate(ifaces) if isinstance(x, Mapping)]


def check_nics(cfg: Mapping[str, Any], host: HostInfo) -> list[Check]:
    here = ", ".join(f"{n.name} ({n.mac})" for n in host.nics) or "none"
    checks: list[Check] = []
    ifaces = list(_interfaces(cfg))
    if not host.nics:
        return [Check("nic", False, "fail", "no network interface found",
                      path="node.network.interfaces", fix="add a network card")]
    for i, iface in ifaces:
        path = f"node.network.interfaces[{i}]"
        name, mac = iface.get("name"), str(iface.get("mac") or "").lower()
        match = [n for n in host.nics if (name and n.name == name) or (mac and n.mac == mac)]
        label = name or mac
        if not match:
            checks.append(Check("nic", False, "fail", f"interface {label} not found",
                                path=path, fix=f"interfaces here: {here}"))
        elif not match[0].link_up:
            checks.append(Check("nic", False, "warn", f"interface {label} has no link",
                                path=path, fix="check the cable and the switch port"))
        else:
            checks.append(Check("nic", True, "fail", f"interface {label} is up"))
    return checks


def check_secure_boot(cfg: Mapping[str, Any], host: HostInfo) -> list[Check]:
    """Whether Secure Boot is on, and whether this image supports it: it does when it carries
    Debian's signed shim and grub (hcicore.signedboot, docs/installer.md "Secure Boot")."""
    support = ("this image boots with Secure Boot (Debian's signed shim, grub and kernel)" if host.signed_boot
               else "this image's boot loader is not signed, Secure Boot must stay off")
    if host.firmware != "uefi-secure-boot":
        return [Check("secure-boot", True, "fail", f"firmware: {host.firmware}, Secure Boot off; {support}")]
    if host.signed_boot:
        return [Check("secure-boot", True, "fail", f"UEFI Secure Boot is on; {support}")]
    return [Check("secure-boot", False, "fail", "UEFI Secure Boot is on, and this image's boot loader is "
                  "not signed: the installed node would not boot", path="install.device",
                  fix="turn Secure Boot off in the firmware setup before installing")]


def check_access(cfg: Mapping[str, Any], host: HostInfo) -> list[Check]:
    """SSH access is never a surprise: the node's sshd takes keys only (no passwords, root by key),
    so a config without a key makes a node reachable on its consoles alone."""
    keys = _get(cfg, "node.ssh_authorized_keys") or []
    if keys:
        return [Check("ssh", True, "warn", f"SSH: root logs in with {len(keys)} key(s)")]
    return [Check("ssh", False, "warn", "no SSH key: SSH to this node will be closed (its sshd takes keys "
                  "only); the password works on the consoles (VGA, serial-over-LAN) alone",
                  path="node.ssh_authorized_keys", fix="add a public key to reach the node over SSH")]


def run_checks(cfg: Mapping[str, Any], host: HostInfo, *,
               image_bytes: int = DEFAULT_IMAGE_BYTES) -> list[Check]:
    """Every preflight check for ``cfg`` on ``host``, passed and failed."""
    return [
        check_cpu(cfg, host),
        check_memory(cfg, host),
        *check_install_disk(cfg, host, image_bytes),
        *check_data_disk(cfg, host),
        *check_nics(cfg, host),
        *check_access(cfg, host),
        *check_secure_boot(cfg, host),
    ]


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def enforce(checks: list[Check], *, automatic: bool, skip_checks: bool) -> list[Check]:
    """Stop an automatic install on a failed ``fail`` check unless ``skip_checks``.

    Raises ValidationError naming the config field of each failure (exit 2, no disk touched).
    Returns the failed checks left to show as warnings.
    """
    bad = failed(checks)
    stops = [c for c in bad if c.severity == "fail"]
    if automatic and stops and not skip_checks:
        raise ValidationError([
            Problem(c.path or f"preflight.{c.name}", c.message,
                    c.fix or "fix it, or set install.skip_checks: true")
            for c in stops
        ])
    return bad
