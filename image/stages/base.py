"""What a stage is and what it gets to work with."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hcicore.progress import Progress

from ..cache import StageCache
from ..profile import Profile


@dataclass
class BuildContext:
    profile: Profile
    cache: StageCache
    progress: Progress
    repo_root: Path
    epoch: int
    version: str
    fetched: dict[str, Path] = field(default_factory=dict)  # component name -> cached file

    @property
    def env(self) -> dict[str, str]:
        return {"SOURCE_DATE_EPOCH": str(self.epoch), "LC_ALL": "C.UTF-8", "TZ": "UTC",
                "DEBIAN_FRONTEND": "noninteractive"}


class StageRunner(Protocol):
    def __call__(self, ctx: BuildContext, base: Path | None, out: Path) -> None: ...


@dataclass
class Stage:
    """``produces_tree`` stages start from a copy of their base stage's ``tree/``."""

    name: str
    run: StageRunner
    options: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    base: str | None = None  # name of the stage whose output this one consumes
    produces_tree: bool = True
