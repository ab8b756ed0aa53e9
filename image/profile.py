"""Build profiles: YAML, schema first, then named semantic checks; all problems at once."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcicore.errors import Problem, ValidationError
from hcicore.schema import load_schema, schema_problems
from hcicore.yamlio import load_yaml_file

from .components import Component, load_lock

DEFAULT_EPOCH = 1735689600  # 2025-01-01T00:00:00Z, used when neither profile nor env sets one


@dataclass(frozen=True)
class Profile:
    path: Path
    raw: dict[str, Any]
    name: str
    version: str
    arch: str
    distro: str
    source_date_epoch: int
    bootstrap: dict[str, Any]
    initramfs_modules: list[str]
    initramfs_drivers: list[str]
    enable: list[str]
    disable: list[str]
    overlay: Path | None
    components: list[Component] = field(default_factory=list)
    python_packages: list[str] = field(default_factory=list)
    squashfs_compression: str = "xz"
    squashfs_block_size: int = 131072

    @property
    def digest(self) -> str:
        """sha256 over the canonical profile and what the lock file puts in the image (not its URLs,
        nor where the lock file lives: a mirror or a test server gives the same digest)."""
        raw = {k: v for k, v in self.raw.items() if k not in ("components", "overlay")}
        blob = json.dumps({"profile": raw, "components": [c.identity() for c in self.components]},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def builtin_profile(name: str = "default") -> Path:
    return Path(__file__).resolve().parent / "profiles" / name / "profile.yaml"


def resolve_profile_path(arg: str | None) -> Path:
    """A path to a profile file or directory, or the name of a built-in profile."""
    if not arg:
        return builtin_profile("default")
    p = Path(arg)
    if p.is_dir():
        p = p / "profile.yaml"
    if p.exists() or "/" in arg or arg.endswith((".yaml", ".yml")):
        return p
    return builtin_profile(arg)


# ---- semantic checks: each returns problems, registered by name --------------------------------
Check = Callable[[dict[str, Any], Path], list[Problem]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def reg(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn
    return reg


@check("distro-bootstrap")
def _distro_bootstrap(raw: dict[str, Any], base: Path) -> list[Problem]:
    boot = raw.get("bootstrap", {})
    if raw.get("distro") == "anolis" and not boot.get("repos"):
        return [Problem("bootstrap.repos", "an anolis profile needs dnf repositories",
                        "list at least one {name, baseurl}")]
    if raw.get("distro") == "debian" and boot.get("repos"):
        return [Problem("bootstrap.repos", "repos is for dnf-based distros", "use bootstrap.mirror for debian")]
    return []


@check("required-packages")
def _required_packages(raw: dict[str, Any], base: Path) -> list[Problem]:
    pkgs = set(raw.get("bootstrap", {}).get("packages", []))
    need = {"debian": ["linux-image-amd64", "dracut", "systemd"], "anolis": ["kernel", "dracut", "systemd"]}
    missing = [p for p in need.get(raw.get("distro", ""), []) if p not in pkgs]
    if missing:
        return [Problem("bootstrap.packages", f"missing {', '.join(missing)}",
                        "the slot image needs a kernel, dracut and systemd")]
    return []


@check("duplicate-packages")
def _duplicate_packages(raw: dict[str, Any], base: Path) -> list[Problem]:
    pkgs = raw.get("bootstrap", {}).get("packages", [])
    seen: set[str] = set()
    out = []
    for i, p in enumerate(pkgs):
        if p in seen:
            out.append(Problem(f"bootstrap.packages[{i}]", f"{p!r} is listed twice", "remove the duplicate"))
        seen.add(p)
    return out


@check("overlay-exists")
def _overlay_exists(raw: dict[str, Any], base: Path) -> list[Problem]:
    ov = raw.get("overlay")
    if ov and not (base / ov).is_dir():
        return [Problem("overlay", f"directory {base / ov} does not exist", "create it or remove the key")]
    return []


@check("mirror-scheme")
def _mirror_scheme(raw: dict[str, Any], base: Path) -> list[Problem]:
    m = raw.get("bootstrap", {}).get("mirror", "")
    if m and not m.startswith(("http://", "https://", "file:/")):
        return [Problem("bootstrap.mirror", f"{m!r} is not a URL", "use http://, https:// or file:/")]
    return []


def load_profile(path: Path) -> Profile:
    """Load and validate a profile and its component lock file. Raises ValidationError."""
    raw = load_yaml_file(path)
    if not isinstance(raw, dict):
        raise ValidationError([Problem(str(path), "a profile must be a YAML mapping", "see image/profiles/default")])
    problems = schema_problems(load_schema("image", "profile.schema.json"), raw)
    if problems:
        raise ValidationError(problems)
    base = path.parent
    for fn in CHECKS.values():
        problems.extend(fn(raw, base))
    components: list[Component] = []
    if "components" in raw:
        lock_path = base / raw["components"]["lock"]
        try:
            components = load_lock(lock_path, field="components")
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    sq = raw.get("squashfs", {})
    init = raw.get("initramfs", {})
    svc = raw.get("services", {})
    return Profile(
        path=path,
        raw=raw,
        name=raw["name"],
        version=raw["version"],
        arch=raw.get("arch", "amd64"),
        distro=raw["distro"],
        source_date_epoch=int(raw.get("source_date_epoch", DEFAULT_EPOCH)),
        bootstrap=raw["bootstrap"],
        initramfs_modules=list(init.get("modules", [])),
        initramfs_drivers=list(init.get("drivers", [])),
        enable=list(svc.get("enable", [])),
        disable=list(svc.get("disable", [])),
        overlay=(base / raw["overlay"]) if raw.get("overlay") else None,
        components=components,
        python_packages=list(raw.get("python_packages", [])),
        squashfs_compression=sq.get("compression", "xz"),
        squashfs_block_size=int(sq.get("block_size", 131072)),
    )
