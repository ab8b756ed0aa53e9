#!/usr/bin/env python3
"""Build pipeline timings against the floor.

cold:      `hci build --no-iso` from an empty stage cache
warm:      the same again, nothing changed (every stage cached)
overlay:   after changing one overlay file (rebuilds overlay and what follows it)
floor:     mmdebstrap of the same package set + mksquashfs of the tree with the same options,
           i.e. the raw tools doing the same bytes with nothing of ours around them

All runs share one .deb download cache so the network is out of the comparison.
Run as root: `.venv/bin/python bench/build.py [PROFILE] [--json]`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from image.cache import default_cache_root  # noqa: E402
from hcicore.yamlio import load_yaml_file  # noqa: E402
from image.profile import load_profile, resolve_profile_path  # noqa: E402

HCI = str(Path(sys.executable).with_name("hci"))


def timed(argv: list[str], **kw) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile", nargs="?")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    prof_path = resolve_profile_path(args.profile)
    prof = load_profile(prof_path)
    debs = default_cache_root() / "apt-archives"
    debs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hcios-bench-", dir="/var/tmp"))
    try:
        pdir = work / "profile"
        shutil.copytree(prof_path.parent, pdir)
        # Components are left out on both sides: the floor fetches none, and on a host that can't
        # reach their servers the failed retries would be all that a warm build measures.
        raw = load_yaml_file(pdir / "profile.yaml")  # the reader hci build uses (YAML 1.2)
        raw.pop("components", None)
        (pdir / "profile.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        if prof.overlay is not None and prof.overlay.parent != prof_path.parent:
            raise SystemExit("bench needs a profile whose overlay lives in its own directory")
        cache = work / "cache"
        cache.mkdir()
        (cache / "apt-archives").symlink_to(debs)
        build = [HCI, "build", str(pdir / "profile.yaml"), "--out", str(work / "out"), "--no-iso",
                 "--cache", str(cache)]
        cold = timed(build)
        warm = timed(build)
        overlay_file = next(p for p in sorted((pdir / "overlay").rglob("*")) if p.is_file())
        overlay_file.write_text(overlay_file.read_text() + "# bench change\n")
        overlay = timed(build)
        # the floor: the raw tools on the same package set, same .deb cache, same squashfs options
        tree = work / "floor-tree"
        boot = prof.bootstrap
        floor_mm = timed(["mmdebstrap", "--mode=root", "--format=directory", f"--variant={boot.get('variant', 'apt')}",
                          f"--include={','.join(boot['packages'])}",
                          "--setup-hook=mkdir -p \"$1/var/cache/apt/archives\"",
                          f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
                          boot["suite"], str(tree), boot["mirror"]])
        floor_sq = timed(["mksquashfs", str(tree), str(work / "floor.squashfs"), "-noappend", "-no-progress",
                          "-quiet", "-comp", prof.squashfs_compression, "-b", str(prof.squashfs_block_size)])
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=True)
    floor = floor_mm + floor_sq
    res = {"profile": prof.name, "cold_s": round(cold, 1), "warm_s": round(warm, 1),
           "overlay_change_s": round(overlay, 1), "floor_s": round(floor, 1),
           "floor_mmdebstrap_s": round(floor_mm, 1), "floor_mksquashfs_s": round(floor_sq, 1),
           "cold_vs_floor": round(cold / floor, 2), "warm_vs_cold": round(warm / cold, 3),
           "overlay_vs_cold": round(overlay / cold, 3), "warm_vs_floor": round(warm / floor, 3),
           "overlay_vs_floor": round(overlay / floor, 3)}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"profile {res['profile']}: floor (mmdebstrap {floor_mm:.0f}s + mksquashfs {floor_sq:.0f}s) = {floor:.0f}s")
        print(f"cold build        {cold:7.1f}s   {cold / floor:5.2f}x floor")
        print(f"warm, no change   {warm:7.1f}s   {warm / cold:5.3f}x cold   {warm / floor:5.3f}x floor")
        print(f"one overlay file  {overlay:7.1f}s   {overlay / cold:5.3f}x cold   {overlay / floor:5.3f}x floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
