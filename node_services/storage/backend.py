"""The interface of a storage engine. The agent, its API and the CLI see only this; SPDK and
the kernel (LVM thin + nvmet) implement it."""
from __future__ import annotations

from typing import Protocol

from .model import Export, Volume


class Backend(Protocol):
    name: str

    def claim(self) -> str:
        """Bring up the data disk (create its volume store when the disk is blank, find the
        existing one otherwise); returns what was done."""

    def volumes(self) -> list[Volume]: ...

    def create_volume(self, name: str, size: int) -> Volume: ...

    def delete(self, name: str, kind: str | None = None) -> None:
        """Delete a volume, snapshot or clone (refused while it is exported, and when ``kind``,
        "volume" or "snapshot", is not what ``name`` is)."""

    def snapshot(self, volume: str, name: str) -> Volume: ...

    def clone(self, snapshot: str, name: str) -> Volume: ...

    def exports(self) -> list[Export]: ...

    def export(self, volume: str, hosts: list[str]) -> Export: ...

    def unexport(self, volume: str) -> None: ...

    def allow(self, volume: str, host: str) -> Export: ...

    def deny(self, volume: str, host: str) -> Export: ...
