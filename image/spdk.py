"""SPDK's NVMe-oF target built from its pinned source tarball: the storage agent's engine.

The build (``recipes/spdk.sh``) runs on the build host against Debian bookworm's DPDK (the same
release the node runs) and links SPDK and DPDK statically, for a portable CPU level (not
``-march=native``). Its output is cached under ``<cache>/spdk/<id>``, the id being the sha256 of
the tarball's digest, the recipe, the DPDK version and the target arch: a second build with the
same inputs is a directory lookup.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from hcicore.command import run
from hcicore.digest import sha256_file
from hcicore.errors import DigestMismatch, HciError

RECIPE = Path(__file__).resolve().parent / "recipes" / "spdk.sh"
# x86-64-v2: Nehalem and newer (SSE4.2, which OVS-DPDK needs as well)
TARGET_ARCH = "x86-64-v2"
BINARIES = ("nvmf_tgt", "spdk_tgt", "spdk_dd", "identify", "perf", "hello_world")
# what the recipe needs on the build host (the Makefile installs them)
BUILD_DEPS = ("libdpdk-dev", "libisal-dev", "libaio-dev", "uuid-dev", "libnuma-dev", "libssl-dev",
              "libjson-c-dev", "libncurses-dev", "libcunit1-dev", "libfdt-dev", "libbsd-dev", "pkg-config",
              "gcc", "make")


def dpdk_version() -> str:
    return run(["pkg-config", "--modversion", "libdpdk"]).stdout.strip()


def build_id(tarball_sha256: str, arch: str = TARGET_ARCH) -> str:
    inputs = {"tarball": tarball_sha256, "recipe": sha256_file(RECIPE), "dpdk": dpdk_version(), "arch": arch}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def build_spdk(tarball: Path, sha256: str, cache_root: Path, arch: str = TARGET_ARCH) -> Path:
    """The build output directory (``bin/``, ``RUNTIME-DEBS``) for ``tarball``, built if not cached."""
    got = sha256_file(tarball)
    if got != sha256:
        raise DigestMismatch(f"{tarball} has sha256 {got}, the lock file pins {sha256}")
    out = cache_root / "spdk" / build_id(sha256, arch)
    if all((out / "bin" / b).is_file() for b in BINARIES):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        work, result = Path(tmp) / "src", Path(tmp) / "out"
        run(["bash", str(RECIPE), str(tarball), str(work), str(result), arch])
        missing = [b for b in BINARIES if not (result / "bin" / b).is_file()]
        if missing:
            raise HciError(f"the SPDK build made no {', '.join(missing)}")
        if out.exists():
            shutil.rmtree(out)
        os.replace(result, out)
    return out
