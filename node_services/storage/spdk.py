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
from pathlib import Path
from typing import Any

from .common import EngineBase, blank_device
from .model import EngineError, Volume
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


class SpdkBackend(EngineBase):
    name = "spdk"

    def __init__(self, client: Any, device: Path, state: State, *, address: str, port: int, nqn_prefix: str):
        super().__init__(device, state, address=address, port=port, nqn_prefix=nqn_prefix)
        self.client = client

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
            self._refuse_used(blank_device(self.device, SPDK_MAGIC), "volume store")
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

    def _live_subsystems(self) -> dict[str, set[str]]:
        return {s["nqn"]: {h["nqn"] for h in s.get("hosts", [])} for s in self._call("nvmf_get_subsystems")}

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

    def create_volume(self, name: str, size: int) -> Volume:
        self._free(name)
        self._call("bdev_lvol_create", lvs_name=LVS, lvol_name=name, size=size, thin_provision=True)
        return self._get(name)

    def _delete(self, name: str) -> None:
        self._call("bdev_lvol_delete", name=f"{LVS}/{name}")

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

    def _remove_subsystem(self, nqn: str) -> None:
        self._call("nvmf_delete_subsystem", nqn=nqn)

    def _add_host(self, nqn: str, host: str) -> None:
        self._call("nvmf_subsystem_add_host", nqn=nqn, host=host)

    def _remove_host(self, nqn: str, host: str) -> None:
        self._call("nvmf_subsystem_remove_host", nqn=nqn, host=host)
