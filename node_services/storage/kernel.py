"""The kernel engine: LVM thin volumes exported by the kernel's NVMe-oF target (nvmet), for nodes
where no SPDK target runs (no SSE4.2, no hugepages, or by choice).

* The data disk is one PV in volume group ``hci`` (1 MiB extents, so sizes are exact) with one
  thin pool ``pool``. Volumes are thin LVs named ``v-<name>`` (a user's name can never collide
  with the pool or LVM's reserved names); a snapshot is a read-only thin snapshot, a clone a
  writable thin snapshot of a snapshot. What each is, and of what, is kept in the LV's tags
  (``hci.kind.*``, ``hci.parent.*``), on the disk with the data: nothing to lose on /var.
* Exports are written to nvmet's configfs directly (nvmetcli is not packaged in Debian): one
  subsystem per volume with ``attr_allow_any_host`` 0, the LV as namespace 1, the allowed hosts
  linked under ``allowed_hosts``, and every subsystem linked to one TCP port. configfs lives in
  memory, so the exports are restored from the agent's state at every start, as with SPDK.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

from hcicore.command import run
from hcicore.errors import CommandError

from .common import EngineBase, blank_device
from .model import EngineError, Volume
from .state import State

VG = "hci"
POOL = "pool"
PREFIX = "v-"
CONFIGFS = Path("/sys/kernel/config/nvmet")
PORT_ID = "1"


def _tag(key: str, value: str) -> str:
    return f"hci.{key}.{value}"  # LVM tags allow [A-Za-z0-9_+.-]: names and kinds fit


class KernelBackend(EngineBase):
    name = "kernel"

    def __init__(self, device: Path, state: State, *, address: str, port: int, nqn_prefix: str,
                 configfs: Path = CONFIGFS):
        super().__init__(device, state, address=address, port=port, nqn_prefix=nqn_prefix)
        self.configfs = configfs

    # ---- the engine ---------------------------------------------------------------------------
    def _lvm(self, *argv: str) -> str:
        try:
            return run(list(argv)).stdout
        except CommandError as err:
            raise EngineError(f"{argv[0]}: {err.stderr.strip().splitlines()[-1] if err.stderr.strip() else err}") from None

    def _vg_on_device(self) -> bool:
        doc = json.loads(self._lvm("pvs", "--reportformat", "json", "-o", "pv_name,vg_name"))
        real = os.path.realpath(self.device)
        return any(os.path.realpath(pv["pv_name"]) == real and pv["vg_name"] == VG for pv in doc["report"][0]["pv"])

    def claim(self) -> str:
        done = []
        if self._vg_on_device():
            self._lvm("vgchange", "-ay", "-K", VG)
            done.append(f"found volume group {VG} on {self.device}")
        else:
            self._refuse_used(blank_device(self.device), "volume group")
            self._lvm("pvcreate", "-q", str(self.device))
            self._lvm("vgcreate", "-q", "-s", "1m", VG, str(self.device))
            self._lvm("lvcreate", "-q", "--type", "thin-pool", "-l", "90%FREE", "-n", POOL, VG)
            done.append(f"made volume group {VG} with thin pool {POOL} on {self.device}")
        for module in ("nvmet", "nvmet-tcp"):
            self._lvm("modprobe", module)
        self._port()
        restored = self._restore()
        if restored:
            done.append(f"restored {restored} export(s)")
        return "; ".join(done + self.warnings)

    def _port(self) -> Path:
        port = self.configfs / "ports" / PORT_ID
        if not port.is_dir():
            port.mkdir()
            for attr, value in (("addr_trtype", "tcp"), ("addr_adrfam", "ipv6" if ":" in self.address else "ipv4"),
                                ("addr_traddr", self.address), ("addr_trsvcid", str(self.port))):
                (port / attr).write_text(value)
        return port

    def _live_subsystems(self) -> dict[str, set[str]]:
        subsystems = self.configfs / "subsystems"
        if not subsystems.is_dir():
            return {}
        return {p.name: {h.name for h in (p / "allowed_hosts").iterdir()} for p in subsystems.iterdir()}

    # ---- volumes ------------------------------------------------------------------------------
    def volumes(self) -> list[Volume]:
        doc = json.loads(self._lvm("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                                   "lv_name,lv_size,pool_lv,data_percent,lv_tags", VG))
        out = []
        for lv in doc["report"][0]["lv"]:
            if lv["pool_lv"] != POOL or not lv["lv_name"].startswith(PREFIX):
                continue
            tags = dict(t.split(".", 2)[1:] for t in lv["lv_tags"].split(",") if t.startswith("hci.") and t.count(".") >= 2)
            size = int(lv["lv_size"])
            used = float(lv["data_percent"]) if lv["data_percent"] else None
            out.append(Volume(name=lv["lv_name"][len(PREFIX):], size=size, kind=tags.get("kind", "volume"),
                              parent=tags.get("parent"), allocated=None if used is None else int(size * used / 100)))
        return sorted(out, key=lambda v: v.name)

    def _dev(self, name: str) -> str:
        return f"/dev/{VG}/{PREFIX}{name}"

    def create_volume(self, name: str, size: int) -> Volume:
        self._free(name)
        self._lvm("lvcreate", "-q", "-V", f"{size}b", "-T", f"{VG}/{POOL}", "-n", f"{PREFIX}{name}",
                  "--addtag", _tag("kind", "volume"))
        return self._get(name)

    def _delete(self, name: str) -> None:
        self._lvm("lvremove", "-q", "-y", f"{VG}/{PREFIX}{name}")

    def _thin_snapshot(self, source: str, name: str, kind: str, permission: str) -> Volume:
        self._free(name)
        # -kn: no activation-skip flag, so it comes up with the volume group at every boot
        self._lvm("lvcreate", "-q", "-s", "-kn", "-p", permission, f"{VG}/{PREFIX}{source}", "-n", f"{PREFIX}{name}",
                  "--addtag", _tag("kind", kind), "--addtag", _tag("parent", source))
        return self._get(name)

    def snapshot(self, volume: str, name: str) -> Volume:
        self._get(volume)
        return self._thin_snapshot(volume, name, "snapshot", "r")

    def clone(self, snapshot: str, name: str) -> Volume:
        self._get(snapshot, "snapshot")
        return self._thin_snapshot(snapshot, name, "clone", "rw")

    # ---- exports ------------------------------------------------------------------------------
    def _host(self, host: str) -> Path:
        path = self.configfs / "hosts" / host
        path.mkdir(exist_ok=True)
        return path

    def _make_subsystem(self, volume: str, nqn: str, hosts: list[str]) -> None:
        sub = self.configfs / "subsystems" / nqn
        try:
            sub.mkdir()
            (sub / "attr_allow_any_host").write_text("0")
            (sub / "attr_serial").write_text(hashlib.sha256(nqn.encode()).hexdigest()[:20])
            (sub / "attr_model").write_text("hcios volume")
            ns = sub / "namespaces" / "1"
            ns.mkdir()
            (ns / "device_path").write_text(self._dev(volume))
            (ns / "enable").write_text("1")
            for host in hosts:
                (sub / "allowed_hosts" / host).symlink_to(self._host(host))
            (self._port() / "subsystems" / nqn).symlink_to(sub)
        except OSError as err:
            self._remove_subsystem(nqn)
            raise EngineError(f"nvmet: exporting {volume}: {os.strerror(err.errno or errno.EIO)} "
                              f"({err.filename})") from None

    def _remove_subsystem(self, nqn: str) -> None:
        """Take a subsystem apart in the order configfs allows (links, namespace, directory)."""
        sub = self.configfs / "subsystems" / nqn
        (self.configfs / "ports" / PORT_ID / "subsystems" / nqn).unlink(missing_ok=True)
        if not sub.is_dir():
            return
        for link in list((sub / "allowed_hosts").iterdir()):
            link.unlink()
        ns = sub / "namespaces" / "1"
        if ns.is_dir():
            (ns / "enable").write_text("0")
            ns.rmdir()
        sub.rmdir()

    def _add_host(self, nqn: str, host: str) -> None:
        (self.configfs / "subsystems" / nqn / "allowed_hosts" / host).symlink_to(self._host(host))

    def _remove_host(self, nqn: str, host: str) -> None:
        (self.configfs / "subsystems" / nqn / "allowed_hosts" / host).unlink(missing_ok=True)
