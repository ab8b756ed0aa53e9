"""Install this repository's node-side code into the rootfs.

Copied: the Python packages the node runs (not the build pipeline), the ``hci`` launcher,
``node_services/files/`` verbatim (modes kept), and the units in ``node_services/enable.list``
plus the profile's ``services.enable`` are enabled with the rootfs's own systemctl (offline in a chroot).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import sys
from pathlib import Path

from hcicore.command import run

from ..chroot import chroot_run
from ..tree import tree_digest
from .base import BuildContext

NODE_PACKAGES = ("hcicore", "installer", "cloud_init", "node_services")
PYTHON_DEST = "usr/lib/python3/dist-packages"
VENDOR_DEST = "usr/lib/hcios/python"  # PyPI wheels the distro lacks (profile: python_packages)
LAUNCHERS = {"usr/bin/hci": "hcicore.cli", "usr/bin/hci-upgrade": "node_services.upgrade.cli",
             "usr/bin/hci-health": "node_services.health", "usr/bin/hci-vip": "node_services.vip",
             "usr/bin/hci-platform": "node_services.platform", "usr/bin/hci-dpdk": "node_services.dpdk",
             "usr/bin/hci-storage-agent": "node_services.storage.agent",
             "usr/bin/hci-storage": "node_services.storage.cli"}
NODE_PYTHON = "/usr/bin/python3"
# pip's script preamble when the interpreter path is too long for a shebang:
#   #!/bin/sh / '''exec' "/long/python" "$0" "$@" / ' '''
SH_PREAMBLE = b"'''exec'"
SH_PREAMBLE_END = b"' '''"


def install_vendor(root: Path, requirements: list[str]) -> None:
    """Pure-Python wheels for the node's Python 3.11, resolved by pip; no bytecode (read-only root)."""
    if not requirements:
        return
    run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--only-binary=:all:", "--python-version=3.11", "--implementation=cp", "--platform=any",
         f"--target={root / VENDOR_DEST}", *requirements])
    retarget_scripts(root / VENDOR_DEST, NODE_PYTHON)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def retarget_scripts(target: Path, interpreter: str) -> list[str]:
    """Point the console scripts pip wrote under ``target/bin`` at the node's interpreter.

    pip writes the build host's ``sys.executable`` into their shebangs (for a long path, into a
    ``#!/bin/sh`` preamble that re-execs it): a path that does not exist on the node, and one that made the image depend on where the repository was checked out. The
    wheels' RECORD files are rewritten to the new hashes and sizes so they stay true.
    Returns the retargeted scripts, relative to ``target``.
    """
    bindir = target / "bin"
    changed: dict[str, bytes] = {}
    for script in sorted(bindir.iterdir()) if bindir.is_dir() else []:
        data = script.read_bytes()
        lines = data.split(b"\n")
        if lines[0].startswith(b"#!") and b"python" in lines[0]:
            body = lines[1:]
        elif lines[0] == b"#!/bin/sh" and lines[1:2] and lines[1].startswith(SH_PREAMBLE) \
                and lines[2:3] == [SH_PREAMBLE_END]:
            body = lines[3:]  # the form pip uses for a long interpreter path: sh re-execs the Python
        else:
            continue
        new = b"\n".join([f"#!{interpreter}".encode(), *body])
        if new != data:
            script.write_bytes(new)
            changed[script.name] = new
    def script_of(row: list[str]) -> str | None:  # pip --target records them as ../../bin/NAME
        parts = row[0].split("/") if row else []
        return parts[-1] if len(parts) >= 2 and parts[-2] == "bin" and parts[-1] in changed else None

    for record in sorted(target.glob("*.dist-info/RECORD")) if changed else []:
        rows = list(csv.reader(io.StringIO(record.read_text())))
        if not any(script_of(row) for row in rows):
            continue
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in rows:
            if name := script_of(row):
                row = [row[0], _record_hash(changed[name]), str(len(changed[name]))]
            writer.writerow(row)
        record.write_text(buf.getvalue())
    return [f"bin/{name}" for name in sorted(changed)]


def vendored(root: Path) -> list[dict[str, str]]:
    """The installed wheels (for the manifest's package list)."""
    out = []
    for info in sorted((root / VENDOR_DEST).glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        out.append({"name": name, "version": version, "arch": "python"})
    return out


def node_inputs(repo_root: Path) -> dict[str, str]:
    return {pkg: tree_digest(repo_root / pkg) for pkg in NODE_PACKAGES}


def enabled_units(repo_root: Path, extra: list[str]) -> list[str]:
    listed = repo_root / "node_services" / "enable.list"
    units = []
    if listed.exists():
        units = [ln.strip() for ln in listed.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return units + [u for u in extra if u not in units]


def _copy_package(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "files"),
                    dirs_exist_ok=True)


def install_node_services(ctx: BuildContext, base: Path | None, out: Path) -> None:
    root = out / "tree"
    for pkg in NODE_PACKAGES:
        src = ctx.repo_root / pkg
        if src.is_dir():
            _copy_package(src, root / PYTHON_DEST / pkg)
    for rel, module in LAUNCHERS.items():
        launcher = root / rel
        launcher.write_text(f"#!/usr/bin/python3\nimport sys\nsys.path.insert(0, '/{VENDOR_DEST}')\n"
                            f"from {module} import main\nsys.exit(main())\n")
        launcher.chmod(0o755)
    install_vendor(root, ctx.profile.python_packages)
    files = ctx.repo_root / "node_services" / "files"
    if files.is_dir():
        run(["cp", "-a", "--no-preserve=ownership", f"{files}/.", str(root)])
    (root / "etc/hcios").mkdir(parents=True, exist_ok=True)
    units = enabled_units(ctx.repo_root, ctx.profile.enable)
    if units:
        chroot_run(root, ["systemctl", "enable", *units])
    if ctx.profile.disable:
        chroot_run(root, ["systemctl", "disable", *ctx.profile.disable])
