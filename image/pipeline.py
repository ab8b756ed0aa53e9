"""Run the stages of a profile through the cache and write the build outputs."""
from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcicore.errors import DigestMismatch, HciError, Problem, ValidationError
from hcicore.progress import Progress

from .cache import StageCache, stage_id
from .fetch import FetchError, fetch, session
from .manifest import write_manifest
from .profile import Profile
from .registry import pull_image
from .spdk import build_spdk
from .stages.base import BuildContext, Stage
from .stages.bootstrap_debian import bootstrap_debian
from .stages.bootstrap_dnf import bootstrap_dnf
from .stages.components import place_components
from .stages.finalize import finalize
from .stages.initramfs import DRACUT_MODULES, build_initramfs
from .stages.node_services import install_node_services, node_inputs
from .stages.oci import build_oci
from .stages.overlay import apply_overlay
from .stages.squashfs import build_squashfs
from .tree import copy_tree, tree_digest

REPO_ROOT = Path(__file__).resolve().parent.parent
# A stage tree is about 1 GB: keep the stages of this build plus the most recently used others,
# up to this many entries in all (HCIOS_CACHE_ENTRIES).
DEFAULT_CACHE_ENTRIES = 20


# Code every tree-producing stage runs through besides its own module: a change here must
# invalidate cached stages as surely as a changed option does.
SHARED_STAGE_CODE = ("stages/base.py", "tree.py", "chroot.py")


def stage_code_digest(stage: Stage) -> str:
    """sha256 of the stage's own module and the shared stage helpers (the build's code is an input)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in [Path(inspect.getsourcefile(stage.run) or ""), *(here / rel for rel in SHARED_STAGE_CODE)]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def stage_key(stage: Stage, base_id: str | None) -> str:
    """The stage's content id: name, options, input digests, its code, and its base stage's id."""
    return stage_id(stage.name, stage.options, {**stage.inputs, "code": stage_code_digest(stage)}, base_id)


def cache_entries() -> int:
    return int(os.environ.get("HCIOS_CACHE_ENTRIES", DEFAULT_CACHE_ENTRIES))


@dataclass
class BuildResult:
    out: Path
    version: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)

    @property
    def built(self) -> list[str]:
        return [s["name"] for s in self.stages if not s["cached"]]


def plan(ctx: BuildContext) -> list[Stage]:
    p = ctx.profile
    boot = bootstrap_debian if p.distro == "debian" else bootstrap_dnf
    return [
        Stage("bootstrap", boot, options={"distro": p.distro, "arch": p.arch, "bootstrap": p.bootstrap,
                                          "epoch": ctx.epoch}),
        Stage("initramfs", build_initramfs, options={"modules": p.initramfs_modules,
                                                     "drivers": p.initramfs_drivers, "epoch": ctx.epoch},
              inputs={"dracut-modules": tree_digest(ctx.repo_root / DRACUT_MODULES)}),
        Stage("node-services", install_node_services, options={"enable": p.enable, "disable": p.disable,
                                                             "python_packages": p.python_packages},
              inputs=node_inputs(ctx.repo_root)),
        Stage("components", place_components,
              options={"components": [{**c.identity(), "present": c.name in ctx.fetched,
                                       # a built component: its cache id (tarball, recipe, DPDK, arch)
                                       "build": ctx.fetched[c.name].name if c.kind == "spdk-source"
                                       and c.name in ctx.fetched else None}
                                      for c in p.components]}),
        Stage("overlay", apply_overlay, inputs={"overlay": tree_digest(p.overlay) if p.overlay else ""}),
        Stage("finalize", finalize, options={"version": ctx.version, "epoch": ctx.epoch,
                                             "profile": p.digest}),
        Stage("squashfs", build_squashfs, base="finalize", produces_tree=False,
              options={"compression": p.squashfs_compression, "block_size": p.squashfs_block_size,
                       "epoch": ctx.epoch}),
        Stage("oci", build_oci, base="finalize", produces_tree=False,
              options={"epoch": ctx.epoch, "version": ctx.version}),
    ]


def fetch_components(profile: Profile, cache: StageCache, progress: Progress, *,
                     allow_missing: bool) -> dict[str, Path]:
    """Download and verify every component before any privileged work starts."""
    got: dict[str, Path] = {}
    problems: list[Problem] = []
    sess = session()
    lock = profile.raw.get("components", {}).get("lock", "")
    for i, comp in enumerate(profile.components):
        where = f"components.lock({Path(lock).name}).components[{i}]"
        progress.start(f"fetch {comp.name}", detail=comp.version)
        try:
            if comp.kind == "oci-image":
                got[comp.name] = pull_image(comp.url, comp.sha256, cache.downloads)
            elif comp.kind == "spdk-source":
                tarball = fetch(comp.url, comp.sha256, cache.downloads, sess=sess)
                progress.start(f"build {comp.name}", detail=f"{comp.version} (cached by content)")
                got[comp.name] = build_spdk(tarball, comp.sha256, cache.root)
                progress.done(f"build {comp.name}")
            else:
                got[comp.name] = fetch(comp.url, comp.sha256, cache.downloads, sess=sess)
        except DigestMismatch as exc:
            progress.failed(f"fetch {comp.name}", str(exc))
            problems.append(Problem(f"{where}.sha256", str(exc), "pin the right digest or fix the URL"))
            continue
        except FetchError as exc:
            if not allow_missing:
                progress.failed(f"fetch {comp.name}", str(exc))
                raise HciError(f"{where}.url: cannot download {comp.name}: {exc} "
                               "(check the network or mirror; --allow-missing-components builds without it)"
                               ) from exc
            progress.warning(f"{comp.name} {comp.version} left out: {exc}")
            continue
        progress.done(f"fetch {comp.name}")
    if problems:
        raise ValidationError(problems)
    return got


def _publish(src: Path, dst: Path) -> None:
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.exists():
        dst.unlink()
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=shutil.copy2)
    else:
        shutil.copy2(src, dst)


def _run_or_reuse(ctx: BuildContext, stage: Stage, sid: str, base_id: str | None,
                  base_dir: Path | None) -> dict[str, Any]:
    if ctx.cache.lookup(sid) is not None:
        ctx.progress.cached(stage.name, id=sid)
        return {"name": stage.name, "id": sid, "cached": True}
    ctx.progress.start(stage.name, id=sid)
    t0 = time.monotonic()
    try:
        with ctx.cache.building(sid, {"name": stage.name, "base": base_id}) as tmp:
            if stage.produces_tree:
                (tmp / "tree").mkdir()
                if base_dir is not None:
                    copy_tree(base_dir / "tree", tmp / "tree")
            stage.run(ctx, base_dir, tmp)
    except (HciError, OSError) as exc:
        ctx.progress.failed(stage.name, (str(exc) or type(exc).__name__).splitlines()[0])
        raise
    ctx.progress.done(stage.name, id=sid)
    return {"name": stage.name, "id": sid, "cached": False, "seconds": round(time.monotonic() - t0, 1)}


def run_stages(ctx: BuildContext, stages: list[Stage]) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    dirs: dict[str, Path] = {}
    ids: dict[str, str] = {}
    record: list[dict[str, Any]] = []
    prev: str | None = None
    for stage in stages:
        base_name = stage.base or prev
        base_id = ids.get(base_name) if base_name else None
        sid = stage_key(stage, base_id)
        ids[stage.name] = sid
        with ctx.cache.locked(sid) as waited:
            if waited:
                ctx.progress.info(f"waited for another build of stage {stage.name} sharing this cache")
            record.append(_run_or_reuse(ctx, stage, sid, base_id, dirs.get(base_name) if base_name else None))
        dirs[stage.name] = ctx.cache.path(sid)
        prev = stage.name
    return dirs, record


BUILD_UMASK = 0o022  # files our stages create get the same modes whatever the caller's umask


def build(profile: Profile, out: Path, *, cache: StageCache, progress: Progress, version: str | None = None,
          allow_missing_components: bool = False, with_iso: bool = True) -> BuildResult:
    previous = os.umask(BUILD_UMASK)
    try:
        return _build(profile, out, cache=cache, progress=progress, version=version,
                      allow_missing_components=allow_missing_components, with_iso=with_iso)
    finally:
        os.umask(previous)


def _build(profile: Profile, out: Path, *, cache: StageCache, progress: Progress, version: str | None,
           allow_missing_components: bool, with_iso: bool) -> BuildResult:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", profile.source_date_epoch))
    version = version or profile.version
    fetched = fetch_components(profile, cache, progress, allow_missing=allow_missing_components)
    if os.geteuid() != 0:
        raise HciError("building a node OS needs root (mmdebstrap --mode=root, chroot, mounts): run as root")
    ctx = BuildContext(profile=profile, cache=cache, progress=progress, repo_root=REPO_ROOT, epoch=epoch,
                       version=version, fetched=fetched)
    dirs, record = run_stages(ctx, plan(ctx))
    removed = cache.prune(keep={r["id"] for r in record}, max_entries=cache_entries())
    if removed:
        progress.info(f"pruned {len(removed)} least recently used stage(s) from {cache.root}")
    out.mkdir(parents=True, exist_ok=True)
    result = BuildResult(out=out, version=version, stages=record)
    progress.start("outputs", detail=str(out))
    _publish(dirs["squashfs"] / "rootfs.squashfs", out / "rootfs.squashfs")
    _publish(dirs["oci"] / "oci", out / "oci")
    result.artifacts = {"rootfs.squashfs": out / "rootfs.squashfs", "oci": out / "oci"}
    if with_iso:
        from .media import write_boot_media  # noqa: PLC0415  (iso/ is optional for a tree-only build)

        result.artifacts.update(write_boot_media(ctx, dirs, out))
    write_manifest(ctx, result, dirs)
    progress.done("outputs")
    return result
