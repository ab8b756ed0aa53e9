"""Put hcios on a disk: the steps behind ``hci install``.

Order (nothing is written before step 6):
  1. the config is already validated (``hcicore.config.load_config``: exit 2 on any problem);
  2. preflight (:mod:`installer.preflight`): warnings, or a hard stop in automatic mode unless
     ``install.skip_checks``;
  3. the disk (and ``install.data_device``) is resolved and read (``lsblk``, ``wipefs --no-act``);
     a disk with partitions or signatures is refused unless ``install.wipe`` (for the data disk:
     ``install.data_wipe``, a separate consent) - it is not touched
     at all - and the layout is planned (a too-small disk is refused here, saying by how much);
  4. confirmation: ``--auto`` (the kernel command line's automatic install) or ``--yes``, else
     the operator's answer; ``install.automatic`` inside a file never skips it;
  5. the image is hashed and compared with the digest it must have (a mismatch stops here);
  6. the destructive steps: take down LVM/MD holders and wipe (the data disk too), GPT, filesystems, slot A
     (written with ``dd``, read back past the page cache and compared by sha256), grub for BIOS and
     UEFI with the A/B menu and boot state, node config and NoCloud seed, install log.
A failure stops at the failing step with the reason on screen and in the log; the power action
runs only after every step succeeded, so a half install is never booted.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from hcicore.bootargs import DEFAULT_CONSOLE_ARGS, console_args
from hcicore.command import run
from hcicore.config import NodeConfig, config_dict
from hcicore.config.kernel import node_kernel_args
from hcicore.digest import sha256_of
from hcicore.errors import CommandError, DigestMismatch, HciError, Problem, ValidationError
from hcicore.layout import LABELS, DiskIdentity, Layout, plan_layout, sgdisk_argv
from hcicore.progress import Progress

from . import blockdev, bootloader, oem, webhooks
from .disk import (DiskInfo, Runner, deactivate_holders, hcios_labels, inspect_disk, other_installs, partition_paths,
                   refusal, shared_arrays, shared_groups, wipe_disk)
from .disksel import kernel_name_problems, select
from .source import ImageSource
from .steps import Step, install_log, mounted, run_steps

log = logging.getLogger("hcios.installer")

WORK_DIR = Path("/run/hci-install")
VERSION_FILE = Path("/etc/hcios/version")
DD_BLOCK = "4M"

Confirm = Callable[[str], bool]
Preflight = Callable[..., list[str]]  # (cfg, image bytes, unattended=) -> warnings; raises ValidationError to stop


@dataclass
class InstallContext:
    """Everything the install needs besides the config; tests replace the runner and preflight."""

    image: ImageSource
    progress: Progress
    confirm: Confirm
    preflight: Preflight
    runner: Runner = run
    assume_yes: bool = False
    live_cmdline: str = ""  # the live system's kernel command line (its console= arguments are kept)
    auto_mode: bool = False  # `hci install --auto`: the kernel command line asked for an unattended install
    work_dir: Path = WORK_DIR
    is_block: Callable[[str], bool] | None = None
    version: str = ""
    notify: Callable[..., str | None] = webhooks.notify
    sys_block: Path = Path("/sys/class/block")
    dev_dir: Path = Path("/dev")
    efi_dir: Path = Path("/sys/firmware/efi")  # present when the installer booted in UEFI mode
    system_root: Path = Path("/")  # the running system, whose signed shim and grub go on the ESP


@dataclass
class InstallResult:
    device: str
    layout: Layout
    image_sha256: str
    seconds: float
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def os_version(path: Path = VERSION_FILE) -> str:
    try:
        return path.read_text().split()[0]
    except (FileNotFoundError, IndexError):
        return "unknown"


def default_preflight(cfg: NodeConfig, image_bytes: int, *, unattended: bool = False) -> list[str]:
    """The preflight checks (:mod:`installer.preflight`) on this machine; raises ValidationError to stop an automatic
    install (unless ``install.skip_checks``); returns the other failed checks as warnings."""
    from .hostinfo import discover  # noqa: PLC0415  (reads the machine)
    from .preflight import enforce, run_checks  # noqa: PLC0415

    checks = run_checks(config_dict(cfg), discover(), image_bytes=image_bytes)
    # stops when nobody confirms (--auto, --yes), not because of a key in the file
    left = enforce(checks, automatic=unattended, skip_checks=cfg.install.skip_checks)
    return [str(c) for c in left]


def _erased(disk: DiskInfo) -> str:
    found = disk.contents()
    return f"everything on it will be erased ({'; '.join(found)})" if found else "it is empty"


def confirm_text(disk: DiskInfo, cfg: NodeConfig, data: DiskInfo | None = None,
                 others: dict[str, list[str]] | None = None) -> str:
    data_part = (f" Data disk for VM storage {data.describe()}: {_erased(data)}." if data is not None else "")
    other_part = "".join(f" Warning: {other_install_text(path, labels)}; the node will only use its own disk, "
                         "but wipe or remove that one." for path, labels in (others or {}).items())
    return (f"Install hcios on {disk.describe()} for node {cfg.node.hostname!r} "
            f"({cfg.install.mode}, {cfg.install.role}): {_erased(disk)}.{data_part}{other_part} Continue?")


def other_install_text(path: str, labels: list[str]) -> str:
    return f"{path} carries partitions of another hcios install ({', '.join(labels)})"


def disk_problems(disk: DiskInfo, *, wipe: bool, runner: Runner, sys_block: Path, path: str,
                  consent: str = "install.wipe") -> list[Problem]:
    """Every reason not to touch ``disk`` (the install disk or the data disk)."""
    return (refusal(disk, wipe=wipe, path=path, consent=consent) + shared_groups(disk, runner=runner, path=path)
            + shared_arrays(disk, sys_block=sys_block, path=path))


class Install:
    """One install run: plan (read only), confirm, then the destructive steps."""

    def __init__(self, cfg: NodeConfig, ctx: InstallContext):
        if not cfg.install.device:
            raise ValidationError([Problem("install.device", "no install disk given",
                                           "set install.device, e.g. /dev/vda or /dev/disk/by-id/...")])
        self.cfg = cfg
        self.ctx = ctx
        self.run = ctx.runner
        self.disk: DiskInfo | None = None
        self.data_disk: DiskInfo | None = None  # install.data_device: cleared whole for the storage agent
        self.layout: Layout | None = None
        self.identity = DiskIdentity.new()  # the GUIDs this install gives the disk and partitions
        self.others: dict[str, list[str]] = {}  # other disks with hcios partitions
        self.parts: dict[str, str] = {}
        self.oem_formatted = False
        self.digest = ""  # the image's sha256, once verified
        self.warnings: list[str] = []
        self.log_file = ctx.work_dir / "install.log"
        self.oem_root = ctx.work_dir / "oem"
        self.esp_root = ctx.work_dir / "esp"

    # -- read-only planning ------------------------------------------------------------------
    def _preflight(self) -> None:
        for warning in self.ctx.preflight(self.cfg, self.ctx.image.size, unattended=self.unattended):
            self.warnings.append(warning)
            log.warning("preflight: %s", warning)
            self.ctx.progress.warning(warning)

    def _inspect(self) -> None:
        inst, sys_block, dev_dir = self.cfg.install, self.ctx.sys_block, self.ctx.dev_dir
        nodes = blockdev.lsblk(runner=self.run)  # every disk: matches, kernel-name rule, other installs
        may_erase = {field: name for field, name, consent in (("install.device", inst.device, inst.wipe),
                                                              ("install.data_device", inst.data_device, inst.data_wipe))
                     if name and consent}
        problems = kernel_name_problems(may_erase, nodes, dev_dir=dev_dir) if self.unattended else []
        name = select(inst.device or "", nodes, path="install.device", dev_dir=dev_dir)
        disk = inspect_disk(name, runner=self.run, is_block=self.ctx.is_block)
        problems += disk_problems(disk, wipe=inst.wipe, runner=self.run, sys_block=sys_block, path="install.device")
        if self.ctx.auto_mode and not inst.reinstall and hcios_labels(disk.node):
            # PXE first in the boot order: the installer boots again after every install
            problems.append(Problem("install.reinstall", f"{disk.path} already holds hcios "
                                    f"({', '.join(hcios_labels(disk.node))}): an automatic install does not "
                                    "erase an installed node", "boot the node from its disk (it is installed), "
                                    "or set hci.install.reinstall=true to install it again"))
        data = None
        if inst.data_device:
            where = "install.data_device"
            name = select(inst.data_device, nodes, path=where, dev_dir=dev_dir)  # the same disk: refused below
            data = inspect_disk(name, runner=self.run, path=where, is_block=self.ctx.is_block)
            if data.path == disk.path:
                problems.append(Problem(where, f"{inst.data_device} is the install disk {disk.path}",
                                        "name a different disk, or remove data_device"))
            else:
                problems += disk_problems(data, wipe=self.cfg.install.data_wipe, runner=self.run,
                                          sys_block=sys_block, path=where, consent="install.data_wipe")
        # the data disk is cleared whole by the install, so its old partitions do not count
        self.others = other_installs({disk.path} | ({data.path} if data is not None else set()), nodes)
        for path, labels in self.others.items():
            if self.unattended:
                problems.append(Problem("install.device", f"{other_install_text(path, labels)}: an automatic "
                                        "install does not leave a node with two installs",
                                        f"wipe {path} first (wipefs --all), name it as install.data_device, "
                                        "or remove it"))
            else:
                warning = f"{other_install_text(path, labels)}; this node will boot only its own disk"
                self.warnings.append(warning)
                log.warning("%s", warning)
                self.ctx.progress.warning(warning)
        if problems:
            raise ValidationError(problems)
        self.layout = plan_layout(disk.size, self.ctx.image.size, device=disk.path)
        self.disk, self.data_disk = disk, data

    def consoles(self) -> str:
        """The node's console= arguments: ``node.console``, else those the live system was booted
        with (a server whose serial-over-LAN is COM2 was booted with console=ttyS1), else the default."""
        return self.cfg.node.console or console_args(self.ctx.live_cmdline) or DEFAULT_CONSOLE_ARGS

    @property
    def unattended(self) -> bool:
        """No person confirms: ``--auto`` or ``--yes``. A key inside a file never makes it so."""
        return self.ctx.auto_mode or self.ctx.assume_yes

    def _confirm(self) -> None:
        assert self.disk is not None
        if self.unattended:
            log.info("confirmed by %s", "--auto (kernel command line)" if self.ctx.auto_mode else "--yes")
            return
        if self.cfg.install.automatic:
            log.info("install.automatic is set in the config, but a person started this install: asking")
        if not self.ctx.confirm(confirm_text(self.disk, self.cfg, self.data_disk, self.others)):
            raise HciError(f"install cancelled; nothing was written to {self.disk.path}")
        log.info("confirmed by the operator")

    # -- destructive steps ---------------------------------------------------------------------
    def _clear(self, disk: DiskInfo | None) -> None:
        assert disk is not None
        for line in deactivate_holders(disk, runner=self.run):
            log.info("%s", line)
            self.ctx.progress.info(line)
        wipe_disk(disk, runner=self.run)

    def _partition(self) -> None:
        assert self.disk is not None and self.layout is not None
        self.run(sgdisk_argv(self.layout, self.disk.path, sector_size=self.disk.node.sector_size,
                             identity=self.identity))
        try:
            self.run(["partprobe", self.disk.path])
        except CommandError as exc:
            if exc.returncode != 127:
                raise
            self.run(["blockdev", "--rereadpt", self.disk.path])
        self.run(["udevadm", "settle", "--timeout=30"], check=False)
        numbers = {p.label: p.number for p in self.layout.partitions}
        self.parts = partition_paths(self.disk.path, numbers, runner=self.run, sys_block=self.ctx.sys_block,
                                     dev_dir=self.ctx.dev_dir)

    def _filesystems(self) -> None:
        self.run(["mkfs.vfat", "-F", "32", "-s", "1", "-n", "HCI-ESP", self.parts["hci-esp"]])
        self.run(["mkfs.ext4", "-q", "-F", "-L", "hci-oem", self.parts["hci-oem"]])
        self.oem_formatted = True
        self.run(["mkfs.ext4", "-q", "-F", "-L", "hci-persistent", self.parts["hci-persistent"]])

    def _verify_source(self) -> None:
        """Hash the image before the disk is touched; a known digest that differs stops here."""
        image = self.ctx.image
        got = sha256_of(image.path, image.size)
        if image.sha256 and got != image.sha256:
            raise DigestMismatch(f"image {image.path} has sha256 {got}, expected {image.sha256}: "
                                 "the medium or download is damaged; nothing was written to the disk")
        self.digest = got
        if image.sha256:
            log.info("image matches the expected sha256 %s", got)
            self.ctx.progress.info(f"image matches the expected sha256 {got}")
        else:
            log.warning("image sha256 %s: no expected digest to check it against", got)

    def _write_slot(self) -> None:
        target = self.parts["hci-root-a"]
        image = self.ctx.image
        self.run(["dd", f"if={image.path}", f"of={target}", f"bs={DD_BLOCK}", f"count={image.size}",
                  "iflag=count_bytes", "oflag=direct", "conv=fsync", "status=none"])
        self.run(["blockdev", "--flushbufs", target])
        got = sha256_of(target, image.size, direct=True)
        if got != self.digest:
            raise DigestMismatch(f"slot hci-root-a ({target}) reads back sha256 {got}, the image "
                                 f"{image.path} has {self.digest}: the disk did not keep the bytes")
        log.info("slot A verified: sha256 %s", got)
        self.ctx.progress.info(f"slot A verified: sha256 {got}")

    def _bootloader(self) -> None:
        assert self.disk is not None and self.layout is not None
        cfg_text = bootloader.render_grub_cfg(self.layout, self.identity.partuuids, version=self.ctx.version,
                                              consoles=self.consoles(), extra_args=node_kernel_args(self.cfg))
        kind = bootloader.install_grub(self.disk.path, oem_root=self.oem_root, esp_root=self.esp_root,
                                       grub_cfg=cfg_text, oem_number=self.layout.by_label("hci-oem").number,
                                       runner=self.run, system_root=self.ctx.system_root)
        log.info("UEFI boot loader: %s", "Debian's signed shim and grub (Secure Boot capable)"
                 if kind == "signed" else "unsigned grub (Secure Boot must be off)")
        bootloader.write_boot_state(self.oem_root, good="a")
        warning = bootloader.set_uefi_boot_entry(self.disk.path, self.layout.by_label("hci-esp").number,
                                                 runner=self.run, efi_dir=self.ctx.efi_dir)
        if warning:
            self.warnings.append(warning)
            log.warning("%s", warning)
            self.ctx.progress.warning(warning)

    def _node_config(self) -> None:
        assert self.disk is not None and self.layout is not None
        oem.write_node_config(self.oem_root, self.cfg)
        oem.write_install_info(self.oem_root, {
            "version": self.ctx.version, "slot_a_sha256": self.digest, "image_bytes": self.ctx.image.size,
            "slot_bytes": self.layout.slot_bytes, "device": self.disk.path,
            "installed_at": int(time.time()), "disk_guid": self.identity.disk_guid,
            "partuuids": self.identity.partuuids,
            # the storage agent claims this disk by its stable name, never by a match run again
            "data_device": self._data_name(),
        })

    def _data_name(self) -> str | None:
        if self.data_disk is None:
            return None
        return (blockdev.stable_names(self.data_disk.path, self.ctx.dev_dir) or [self.data_disk.path])[0]

    # -- the whole run -----------------------------------------------------------------------
    def execute(self) -> InstallResult:
        started = time.monotonic()
        progress = self.ctx.progress
        with install_log(self.log_file):
            log.info("hcios %s install on %s (host %s)", self.ctx.version, self.cfg.install.device,
                     self.cfg.node.hostname)
            run_steps([Step("preflight", self._preflight),
                       Step("inspect disk", self._inspect, detail=self.cfg.install.device or "")], progress)
            self._confirm()
            self._notify("started")
            names: list[str] = []
            try:
                with ExitStack() as stack:
                    steps = self._destructive_steps(stack)
                    names = [s.name for s in steps]
                    run_steps(steps, progress)
                    seconds = time.monotonic() - started
                    log.info("install finished in %.1fs", seconds)
                    oem.keep_log(self.oem_root, self.log_file)
                self.run(["sync"])
            except HciError as exc:
                log.error("install failed: %s", exc)
                self._keep_log_after_failure()
                self._notify("failed", error=str(exc).splitlines()[0])
                raise
        assert self.disk is not None and self.layout is not None
        self._notify("succeeded", seconds=round(seconds, 1))
        return InstallResult(self.disk.path, self.layout, self.digest, seconds, names, self.warnings)

    def _destructive_steps(self, stack: ExitStack) -> list[Step]:
        return [
            Step("verify image", self._verify_source, detail=str(self.ctx.image.path)),
            Step("clear disk", lambda: self._clear(self.disk)),
            *([Step("clear data disk", lambda: self._clear(self.data_disk), detail=self.data_disk.path)]
              if self.data_disk is not None else []),
            Step("partition", self._partition, detail="GPT: " + ", ".join(LABELS)),
            Step("filesystems", self._filesystems),
            Step("write slot A", self._write_slot, detail=f"{self.ctx.image.size} bytes"),
            Step("mount", lambda: self._mount(stack)),
            Step("bootloader", self._bootloader, detail="grub BIOS + UEFI, A/B"),
            Step("node config", self._node_config, detail="config, NoCloud seed"),
        ]

    def _mount(self, stack: ExitStack) -> None:
        stack.enter_context(mounted(self.parts["hci-oem"], self.oem_root, fstype="ext4", runner=self.run))
        stack.enter_context(mounted(self.parts["hci-esp"], self.esp_root, fstype="vfat", runner=self.run))

    def _keep_log_after_failure(self) -> None:
        """Leave the log of a failed install on hci-oem when that filesystem exists."""
        device = self.parts.get("hci-oem")
        if not device or not self.oem_formatted:
            return
        try:
            with mounted(device, self.oem_root, fstype="ext4", runner=self.run):
                oem.keep_log(self.oem_root, self.log_file)
        except (HciError, OSError) as exc:
            log.error("could not keep the install log on %s: %s", device, exc)

    def _notify(self, event: str, **fields: object) -> None:
        warning = self.ctx.notify(self.cfg, event, version=self.ctx.version, **fields)
        if warning:
            self.warnings.append(warning)
            self.ctx.progress.warning(warning)


def power_action(cfg: NodeConfig, *, runner: Runner = run) -> None:
    """Reboot or power off after a finished install (``install.power_action``)."""
    verb = "poweroff" if cfg.install.power_action == "poweroff" else "reboot"
    os.sync()
    runner(["systemctl", "--no-block", verb])
