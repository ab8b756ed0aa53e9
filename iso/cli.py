"""``hci lab``: try an ISO or the PXE artifacts in a local VM (qemu TCG under libvirt).

    hci lab boot-iso out/hcios-1.0.0-amd64.iso            # BIOS, 40G disk, waits for the live banner
    hci lab boot-iso out/hcios-1.0.0-amd64.iso --uefi
    hci lab boot-pxe out/pxe
    hci lab list
    hci lab destroy [NAME]

A lab VM started here keeps running after the command returns; its files (disk, serial log,
firmware variables) live in /var/lib/hcios/lab/<name>/ and ``hci lab destroy`` removes both.
"""
from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from pathlib import Path

from types import ModuleType
from typing import TYPE_CHECKING

import click

from hcicore.digest import sha256_file
from hcicore.errors import HciError, Problem, ValidationError

from .domain import URI
from .httpserve import serve_directory
from .pxe import pxe_cmdline

if TYPE_CHECKING:
    from .lab import VM

LAB_ROOT = Path("/var/lib/hcios/lab")


def _lab_modules() -> tuple[ModuleType, ModuleType]:
    """iso.lab and libvirt, imported on use: libvirt-python is an optional dependency (the
    ``lab`` extra), and ``hci build`` must work without it."""
    try:
        import libvirt  # noqa: PLC0415

        from . import lab  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name != "libvirt":
            raise
        raise HciError("hci lab needs libvirt-python: pip install 'hcios[lab]' "
                       "(it builds against libvirt-dev)") from exc
    return lab, libvirt


def _vm_dir(name: str) -> Path:
    return LAB_ROOT / name


def _check_name_free(name: str) -> Path:
    directory = _vm_dir(name)
    if directory.exists():
        raise ValidationError([Problem("--name", f"a lab VM named {name!r} exists ({directory})",
                                       f"run `hci lab destroy {name}` or pick another --name")])
    return directory


def _report(vm: VM, wait: bool, timeout: float) -> None:
    lab, _ = _lab_modules()
    click.echo(f"VM {vm.name} started")
    click.echo(f"  serial log : {vm.serial_log}   (tail -f it, or: virsh -c {URI} console {vm.name})")
    click.echo(f"  VGA        : VNC on 127.0.0.1 (virsh -c {URI} vncdisplay {vm.name})")
    click.echo(f"  SSH        : ssh -p {vm.ssh_port} root@127.0.0.1")
    click.echo(f"  remove     : hci lab destroy {vm.name}")
    if wait:
        click.echo(f"waiting up to {timeout:.0f}s for the live system (TCG: about 70-110s) ...")
        match = vm.wait_for_serial(lab.LIVE_MARKER, timeout)
        click.echo(f"live system {match.group(1)} up after {time.monotonic() - vm.started:.0f}s")


@click.group("lab")
def lab_group() -> None:
    """Boot the ISO or PXE artifacts in a local qemu/libvirt VM (TCG)."""


@lab_group.command("boot-iso")
@click.argument("iso", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--uefi", is_flag=True, help="Boot with OVMF (UEFI) instead of SeaBIOS.")
@click.option("--disk", "disk_size", default="40G", show_default=True, help="Size of the empty qcow2 disk.")
@click.option("--memory", "memory_mib", default=2048, show_default=True, help="RAM in MiB.")
@click.option("--name", default="hcilab", show_default=True, help="Domain name.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the live banner.")
@click.option("--timeout", default=400.0, show_default=True, help="Seconds to wait for the banner.")
def boot_iso(iso: Path, uefi: bool, disk_size: str, memory_mib: int, name: str, wait: bool,
             timeout: float) -> None:
    """Boot ISO in a new VM with an empty disk, serial console logged to a file."""
    directory = _check_name_free(name)
    lab_mod, _ = _lab_modules()
    with ExitStack() as undo, lab_mod.Lab(directory, prefix=name) as lab:
        undo.callback(shutil.rmtree, directory)  # only if starting fails
        disk = lab.create_disk("disk0", disk_size)
        vm = lab.start_vm(name, cdrom=iso, disks=[disk], firmware="uefi" if uefi else "bios",
                          memory_mib=memory_mib, serial_mode="pty", vnc=True, domain_name=name)
        lab.detach()
        undo.pop_all()
        _report(vm, wait, timeout)


@lab_group.command("boot-pxe")
@click.argument("pxe_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--uefi", is_flag=True, help="Boot with OVMF (UEFI) instead of SeaBIOS.")
@click.option("--memory", "memory_mib", default=2048, show_default=True, help="RAM in MiB.")
@click.option("--name", default="hcilab-pxe", show_default=True, help="Domain name.")
@click.option("--args", "extra", default="", help="Extra kernel args, e.g. hci.install.config_url=...")
@click.option("--timeout", default=400.0, show_default=True, help="Seconds to wait for the banner.")
def boot_pxe(pxe_dir: Path, uefi: bool, memory_mib: int, name: str, extra: str,
             timeout: float) -> None:
    """Network-boot PXE_DIR (vmlinuz, initrd.img, rootfs.squashfs) as a PXE server would.

    Serves PXE_DIR over HTTP on 127.0.0.1 (the guest sees it as 10.0.2.2) and boots the kernel
    directly; the command stays in the foreground serving files until the live system is up.
    """
    for f in ("vmlinuz", "initrd.img", "rootfs.squashfs"):
        if not (pxe_dir / f).is_file():
            raise ValidationError([Problem("PXE_DIR", f"{pxe_dir / f} is missing", "run hci build first")])
    directory = _check_name_free(name)
    lab_mod, _ = _lab_modules()
    with serve_directory(pxe_dir) as port:
        with ExitStack() as undo, lab_mod.Lab(directory, prefix=name) as lab:
            undo.callback(shutil.rmtree, directory)  # only if starting fails
            vm = lab.start_vm(name, kernel=pxe_dir / "vmlinuz", initrd=pxe_dir / "initrd.img",
                              cmdline=pxe_cmdline(f"10.0.2.2:{port}", extra=extra,
                                                  sha256=sha256_file(pxe_dir / "rootfs.squashfs")),
                              firmware="uefi" if uefi else "bios", memory_mib=memory_mib,
                              serial_mode="pty", vnc=True, domain_name=name)
            lab.detach()
            undo.pop_all()
            _report(vm, True, timeout)  # keeps serving until the live system is up


@lab_group.command("list")
def list_vms() -> None:
    """List lab VMs (running domains and their directories)."""
    lab_mod, libvirt = _lab_modules()
    lab_mod.ensure_libvirtd()
    conn = libvirt.open(URI)
    try:
        running = {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()
    dirs = sorted(p.name for p in LAB_ROOT.iterdir()) if LAB_ROOT.is_dir() else []
    for name in sorted(set(dirs) | running):
        state = "running" if name in running else "stopped"
        click.echo(f"{name}\t{state}\t{_vm_dir(name) if name in dirs else '-'}")


@lab_group.command("destroy")
@click.argument("name", default="hcilab")
def destroy(name: str) -> None:
    """Stop the lab VM NAME and delete its files."""
    lab_mod, libvirt = _lab_modules()
    lab_mod.ensure_libvirtd()
    conn = libvirt.open(URI)
    found = False
    try:
        try:
            conn.lookupByName(name).destroy()
            found = True
            click.echo(f"stopped {name}")
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise HciError(f"could not stop {name}: {exc}") from exc
    finally:
        conn.close()
    directory = _vm_dir(name)
    if directory.is_dir():
        shutil.rmtree(directory)
        found = True
        click.echo(f"removed {directory}")
    if not found:
        raise ValidationError([Problem("NAME", f"no lab VM named {name!r}", "see hci lab list")])


commands = [lab_group]
