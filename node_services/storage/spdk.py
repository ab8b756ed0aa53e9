"""The SPDK engine: a running ``nvmf_tgt``/``spdk_tgt`` driven through its JSON-RPC socket with
the ``spdk`` package's ``JSONRPCClient``.

The data disk is an AIO bdev (``hci-data``) holding one lvstore (``hci``); volumes are thin
lvols, snapshots and clones are SPDK's. Each export is an NVMe-oF subsystem with
``allow_any_host: false``, the volume as its namespace, a TCP listener and the allowed host
NQNs. The pinned engine is SPDK 23.01: ``bdev_lvol_create`` takes ``size`` in bytes there.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from .model import Conflict, EngineError, Export, NotFound, Volume
from .state import State

BDEV = "hci-data"
LVS = "hci"
SPDK_MAGIC = b"SPDKBLOB"  # the blobstore super block under an lvstore, at offset 0


def _rpc_message(err: Exception) -> str:
    """The target's own error (code and message) out of JSONRPCException's text, which also
    carries the request; the request is left out."""
    text = str(err)
    if "response:" in text:
        try:
            doc = json.loads(text.split("response:", 1)[1])
            return f"{doc.get('message', '').strip()} (code {doc.get('code')})"
        except ValueError:
            pass
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


class SpdkBackend:
    name = "spdk"

    def __init__(self, client: Any, device: Path, state: State, *, address: str, port: int, nqn_prefix: str):
        self.client = client
        self.device = device
        self.state = state
        self.address, self.port = address, port
        self.nqn_prefix = nqn_prefix
        self.warnings: list[str] = []

    # ---- the engine ---------------------------------------------------------------------------
    def _call(self, method: str, **params: Any) -> Any:
        from spdk.rpc.client import JSONRPCException  # noqa: PLC0415

        try:
            return self.client.call(method, params)
        except JSONRPCException as err:
            raise EngineError(f"SPDK {method}: {_rpc_message(err)}") from None
        except OSError as err:
            raise EngineError(f"SPDK {method}: the target does not answer ({err})") from None

    def _lvstore(self) -> dict[str, Any] | None:
        for lvs in self._call("bdev_lvol_get_lvstores"):
            if lvs["base_bdev"] == BDEV:
                return lvs
        return None

    def _blank(self) -> str | None:
        """None when the device holds nothing; else what it holds."""
        with self.device.open("rb") as fh:
            head = fh.read(1 << 20)
        if head.startswith(SPDK_MAGIC):
            return "an SPDK blobstore that did not load as an lvstore"
        probe = subprocess.run(["blkid", "-p", "-o", "export", str(self.device)], capture_output=True, text=True)
        if probe.returncode == 2:  # blkid: nothing found; anything else is not "blank"
            return None
        if probe.returncode == 0:
            kind = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
            return f"a {kind.get('TYPE') or kind.get('PTTYPE') or 'known'} signature"
        return f"something blkid cannot name (exit {probe.returncode}: {probe.stderr.strip() or 'ambiguous'})"

    def claim(self) -> str:
        done = []
        if BDEV not in {b["name"] for b in self._call("bdev_get_bdevs")}:
            params: dict[str, Any] = {"filename": str(self.device), "name": BDEV}
            if self.device.is_file():
                params["block_size"] = 512
            self._call("bdev_aio_create", **params)
            self._call("bdev_wait_for_examine")
            done.append(f"opened {self.device}")
        lvs = self._lvstore()
        if lvs is None:
            held = self._blank()
            if held is not None:
                raise Conflict(f"{self.device} holds {held}: refusing to make a volume store on it "
                               "(install.data_device with data_wipe: true hands the agent a blank disk)")
            lvs = self._call("bdev_lvol_create_lvstore", bdev_name=BDEV, lvs_name=LVS, clear_method="none")
            done.append(f"made volume store {LVS}")
        else:
            done.append(f"found volume store {lvs['name']} ({lvs['free_clusters']}/{lvs['total_data_clusters']} "
                        "clusters free)")
        if not any(t.get("trtype", "").upper() == "TCP" for t in self._call("nvmf_get_transports")):
            self._call("nvmf_create_transport", trtype="TCP")
        restored = self._restore()
        if restored:
            done.append(f"restored {restored} export(s)")
        return "; ".join(done + self.warnings)

    def _restore(self) -> int:
        live = {s["nqn"] for s in self._call("nvmf_get_subsystems")}
        names = {v.name for v in self.volumes()}
        count = 0
        for volume, exp in sorted(self.state.exports.items()):
            if exp["nqn"] in live:
                continue
            if volume not in names:  # keep serving the others; export remove clears the record
                self.warnings.append(f"export of {volume} is recorded but the volume is gone: not restored")
                continue
            self._make_subsystem(volume, exp["nqn"], exp["hosts"])
            count += 1
        return count

    # ---- volumes ------------------------------------------------------------------------------
    def volumes(self) -> list[Volume]:
        out = []
        for bdev in self._call("bdev_get_bdevs"):
            lvol = bdev.get("driver_specific", {}).get("lvol")
            alias = next((a for a in bdev.get("aliases", []) if a.startswith(f"{LVS}/")), None)
            if lvol is None or alias is None:
                continue
            name = alias.split("/", 1)[1]
            origin = self.state.origins.get(name, {})
            clusters = lvol.get("num_allocated_clusters")
            out.append(Volume(name=name, size=bdev["num_blocks"] * bdev["block_size"],
                              kind=origin.get("kind", "volume"), parent=origin.get("parent"),
                              allocated=None if clusters is None else clusters * self._cluster_size()))
        return sorted(out, key=lambda v: v.name)

    def _cluster_size(self) -> int:
        lvs = self._lvstore()
        return int(lvs["cluster_size"]) if lvs else 0

    def _get(self, name: str, kind: str | None = None) -> Volume:
        for vol in self.volumes():
            if vol.name == name:
                if kind == "snapshot" and vol.kind != "snapshot":
                    raise Conflict(f"{name} is a {vol.kind}, not a snapshot: clone a snapshot")
                return vol
        raise NotFound(f"no volume or snapshot named {name} (hci storage volume list shows them)")

    def _free(self, name: str) -> None:
        if any(v.name == name for v in self.volumes()):
            raise Conflict(f"{name} exists already: pick another name")

    def create_volume(self, name: str, size: int) -> Volume:
        self._free(name)
        self._call("bdev_lvol_create", lvs_name=LVS, lvol_name=name, size=size, thin_provision=True)
        return self._get(name)

    def delete(self, name: str, kind: str | None = None) -> None:
        vol = self._get(name)
        if kind == "snapshot" and vol.kind != "snapshot" or kind == "volume" and vol.kind == "snapshot":
            raise Conflict(f"{name} is a {vol.kind}: delete it with hci storage "
                           f"{'snapshot' if vol.kind == 'snapshot' else 'volume'} delete")
        if name in self.state.exports:
            raise Conflict(f"{name} is exported: hci storage export remove {name} first")
        self._call("bdev_lvol_delete", name=f"{LVS}/{name}")
        self.state.origins.pop(name, None)
        self.state.save()

    def snapshot(self, volume: str, name: str) -> Volume:
        self._get(volume)
        self._free(name)
        self._call("bdev_lvol_snapshot", lvol_name=f"{LVS}/{volume}", snapshot_name=name)
        self.state.origins[name] = {"kind": "snapshot", "parent": volume}
        self.state.save()
        return self._get(name)

    def clone(self, snapshot: str, name: str) -> Volume:
        self._get(snapshot, "snapshot")
        self._free(name)
        self._call("bdev_lvol_clone", snapshot_name=f"{LVS}/{snapshot}", clone_name=name)
        self.state.origins[name] = {"kind": "clone", "parent": snapshot}
        self.state.save()
        return self._get(name)

    # ---- exports ------------------------------------------------------------------------------
    def _export(self, volume: str) -> Export:
        exp = self.state.exports[volume]
        return Export(volume=volume, nqn=exp["nqn"], address=self.address, port=self.port, hosts=list(exp["hosts"]))

    def exports(self) -> list[Export]:
        return [self._export(v) for v in sorted(self.state.exports)]

    def _make_subsystem(self, volume: str, nqn: str, hosts: list[str]) -> None:
        serial = "HCI" + hashlib.sha256(nqn.encode()).hexdigest()[:17].upper()
        self._call("nvmf_create_subsystem", nqn=nqn, allow_any_host=False, serial_number=serial,
                   model_number="hcios volume")
        try:
            self._call("nvmf_subsystem_add_ns", nqn=nqn, namespace={"bdev_name": f"{LVS}/{volume}"})
            self._call("nvmf_subsystem_add_listener", nqn=nqn, listen_address={
                "trtype": "TCP", "adrfam": "IPv6" if ":" in self.address else "IPv4",
                "traddr": self.address, "trsvcid": str(self.port)})
            for host in hosts:
                self._call("nvmf_subsystem_add_host", nqn=nqn, host=host)
        except EngineError:
            self._call("nvmf_delete_subsystem", nqn=nqn)
            raise

    def export(self, volume: str, hosts: list[str]) -> Export:
        self._get(volume)
        if volume in self.state.exports:
            raise Conflict(f"{volume} is exported already: add hosts with hci storage export allow")
        nqn = f"{self.nqn_prefix}:{volume}"
        self._make_subsystem(volume, nqn, hosts)
        self.state.exports[volume] = {"nqn": nqn, "hosts": sorted(set(hosts))}
        self.state.save()
        return self._export(volume)

    def _exported(self, volume: str) -> dict[str, Any]:
        if volume not in self.state.exports:
            raise NotFound(f"{volume} is not exported (hci storage export list shows the exports)")
        return self.state.exports[volume]

    def unexport(self, volume: str) -> None:
        exp = self._exported(volume)
        # revocations are recorded first: a crash before the engine call never restores the access
        del self.state.exports[volume]
        self.state.save()
        self._call("nvmf_delete_subsystem", nqn=exp["nqn"])

    def allow(self, volume: str, host: str) -> Export:
        exp = self._exported(volume)
        if host not in exp["hosts"]:
            self._call("nvmf_subsystem_add_host", nqn=exp["nqn"], host=host)
            exp["hosts"] = sorted({*exp["hosts"], host})
            self.state.save()
        return self._export(volume)

    def deny(self, volume: str, host: str) -> Export:
        exp = self._exported(volume)
        if host not in exp["hosts"]:
            raise NotFound(f"{host} is not on the allow-list of {volume}")
        exp["hosts"] = [h for h in exp["hosts"] if h != host]
        self.state.save()  # recorded first, as in unexport
        self._call("nvmf_subsystem_remove_host", nqn=exp["nqn"], host=host)
        return self._export(volume)
