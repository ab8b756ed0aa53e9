"""Fixtures shared by every tier."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import socket
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from iso.httpserve import serve_directory as iso_serve_directory

REPO = Path(__file__).resolve().parent.parent
# the third-party sources (SPDK) when pytest runs without make
os.environ.setdefault("HCIOS_THIRD_PARTY", str(REPO.parent / "shared" / "third_party"))


@dataclass
class HttpServer:
    root: Path
    port: int

    def url(self, name: str = "", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{name}"


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[HttpServer]:
    """Serve ``root`` over HTTP on 127.0.0.1 (an ephemeral port) until the block ends."""
    with iso_serve_directory(root) as port:
        yield HttpServer(root, port)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    """A loopback HTTP server serving a fresh directory (``http_server.root``)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as srv:
        yield srv


# ---- the built image, shared by the build and VM tiers ------------------------------------------

DEFAULT_PROFILE_DIR = REPO / "image" / "profiles" / "default"
HCI = [str(Path(sys.executable).with_name("hci"))]


def _deterministic_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# The k3s binary can't be had here. This stand-in takes its place in the image so the node's own
# path runs for real (hci-platform's choice of unit, k3s.service as Type=notify, the health gate's
# /readyz call): `k3s server|agent` records what a real k3s would read at start (its subcommand,
# config file and the airgap archives it would import, by sha256) in /run/k3s-stand-in, tells
# systemd it is ready and sleeps; `k3s kubectl get --raw /readyz` answers "ok".
K3S_STAND_IN = b"""#!/bin/sh
# k3s stand-in built by the test suite (tests/conftest.py), not k3s
case "$1" in
  --version|-v|version) echo 'k3s version v0.0.0-hcios-test (stand-in built by the test suite)' ;;
  server|agent)
    out=/run/k3s-stand-in
    mkdir -p "$out"
    echo "$*" > "$out/argv"
    cp /etc/rancher/k3s/config.yaml "$out/config.yaml"
    (cd /var/lib/rancher/k3s/agent/images && sha256sum -- *) > "$out/images.sha256"
    exec python3 -c 'import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.connect("\\0" + addr[1:] if addr.startswith("@") else addr)
sock.send(b"READY=1")
while True:
    time.sleep(3600)' ;;
  kubectl) [ "$*" = "kubectl get --raw /readyz" ] && echo ok ;;
  *) echo "k3s stand-in: $1 is not simulated" >&2; exit 1 ;;
esac
"""


def make_test_components(www: Path) -> dict[str, bytes]:
    """Small stand-ins the tests build themselves for the components this host can't download:
    same kinds and destinations as the real lock file, their own sha256."""
    artifacts = {
        "k3s": K3S_STAND_IN,
        "k3s-airgap-images-amd64.tar": _deterministic_tar({"index.json": b'{"schemaVersion":2,"manifests":[]}',
                                                           "oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}),
        "kubevirt-operator.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kubevirt\n",
    }
    for name, data in artifacts.items():
        (www / name).write_bytes(data)
    return artifacts


def write_test_profile(dest: Path, server_url: str, artifacts: dict[str, bytes]) -> Path:
    """The default profile with its lock file pointed at the loopback server's artifacts; the
    components built from source here (SPDK, from the third-party sources) are kept as pinned."""
    shutil.copytree(DEFAULT_PROFILE_DIR, dest, dirs_exist_ok=True)
    kinds = {"k3s": ("binary", "/usr/local/bin/k3s", "0755", False),
             "k3s-airgap-images-amd64.tar": ("image-archive",
                                             "/usr/share/hcios/images/k3s-airgap-images-amd64.tar", "0644", True),
             "kubevirt-operator.yaml": ("manifest", "/usr/share/hcios/manifests/kubevirt-operator.yaml", "0644",
                                        False)}
    real = yaml.safe_load((DEFAULT_PROFILE_DIR / "components.lock.yaml").read_text())["components"]
    comps = [c for c in real if c["kind"] == "spdk-source"]
    for name, data in artifacts.items():
        kind, target, mode, airgap = kinds[name]
        comps.append({"name": name.split(".")[0].replace("-amd64", ""), "version": "v0.0.0-test",
                      "url": f"{server_url}{name}", "sha256": hashlib.sha256(data).hexdigest(),
                      "kind": kind, "dest": target, "mode": mode, "airgap": airgap})
    (dest / "components.lock.yaml").write_text(yaml.safe_dump({"schema_version": 1, "components": comps}))
    return dest / "profile.yaml"


def run_build(profile: Path, out: Path, *extra: str, env: dict[str, str] | None = None,
              cwd: Path | None = None, umask: int = -1) -> dict:
    """Run ``hci build --json`` for real; return the final result record plus every event."""
    proc = subprocess.run([*HCI, "build", str(profile), "--out", str(out), "--json", *extra],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd, umask=umask)
    if proc.returncode != 0:
        raise AssertionError(f"hci build failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    result = events[-1]
    assert result["event"] == "result"
    return {**result, "events": events}


@dataclass
class BuiltImage:
    out: Path
    profile: Path
    artifacts: dict[str, bytes]
    result: dict

    @property
    def manifest(self) -> dict:
        return json.loads((self.out / "build-manifest.json").read_text())


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    """The default profile built for real (cached in ~/.cache/hcios between runs), with test-made
    components served from 127.0.0.1. Set HCIOS_TEST_OUT to reuse an existing output directory."""
    if os.geteuid() != 0:
        pytest.skip("building a node OS needs root")
    base = tmp_path_factory.mktemp("image")
    www = base / "www"
    www.mkdir()
    artifacts = make_test_components(www)
    with serve_directory(www) as srv:
        profile = write_test_profile(base / "profile", srv.url(), artifacts)
        out = base / "out"
        result = run_build(profile, out)
        yield BuiltImage(out=out, profile=profile, artifacts=artifacts, result=result)


# ---- a real OCI registry on loopback (Debian's docker-registry) -------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path  # where it stores blobs (tests change one byte there)


@contextlib.contextmanager
def run_registry(workdir: Path) -> Iterator[Registry]:
    """Debian's docker-registry serving from ``workdir`` on 127.0.0.1 (an ephemeral port)."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("docker-registry is not installed (make host-deps installs it)")
    port = free_port()
    cfg = workdir / "registry.yml"
    cfg.write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "registry-data")}},
        "http": {"addr": f"127.0.0.1:{port}"}}))
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"docker-registry did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        yield Registry(f"127.0.0.1:{port}", workdir / "registry-data")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def oci_registry(tmp_path: Path) -> Iterator[Registry]:
    """Debian's docker-registry serving from a temporary directory on 127.0.0.1."""
    with run_registry(tmp_path) as registry:
        yield registry


@pytest.fixture(scope="session")
def pipeline_out(request: pytest.FixtureRequest) -> Path:
    """An `hci build` output directory: HCIOS_TEST_OUT if set (to test an existing build), else
    the session's real build of the default profile (``built_image``)."""
    env = os.environ.get("HCIOS_TEST_OUT")
    if env:
        return Path(env)
    return request.getfixturevalue("built_image").out


# ---- upgrade artifacts: later versions of the same profile, built for real ---------------------

INITRD_FAIL_HOOK = b"""#!/bin/sh
# hcios test image: an initramfs that fails on purpose (pre-pivot, before the root is used)
type die >/dev/null 2>&1 || . /lib/dracut-lib.sh
die "hcios test image: this initramfs fails on purpose"
"""


@dataclass
class UpgradeImages:
    v2: Path  # hci build outputs (rootfs.squashfs, build-manifest.json)
    v3_health: Path  # fails a health check (a drop-in that exits 1)
    v3_initrd: Path  # its initramfs dies before the switch to the root


def build_variant(base: BuiltImage, dest: Path, version: str, files: dict[str, bytes], modes: dict[str, int]) -> Path:
    """The session's test profile with extra overlay files, built as ``version`` (no ISO)."""
    profile_dir = dest / "profile"
    shutil.copytree(base.profile.parent, profile_dir)
    overlay = profile_dir / "overlay"
    for rel, data in files.items():
        path = overlay / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(modes.get(rel, 0o644))
    out = dest / "out"
    run_build(profile_dir / "profile.yaml", out, "--version", version, "--no-iso")
    return out


def failing_initrd(squashfs: Path, work: Path) -> tuple[str, bytes]:
    """The image's initrd with a cpio appended whose pre-pivot hook dies (the kernel unpacks
    concatenated archives in order, so the hook is added to the real initramfs)."""
    listing = subprocess.run(["unsquashfs", "-lls", "-d", "", str(squashfs), "boot"], capture_output=True,
                             text=True, check=True).stdout
    name = next(line.split(" -> ")[1] for line in listing.splitlines() if line.rstrip().split(" -> ")[0].endswith("/boot/initrd.img"))
    initrd = subprocess.run(["unsquashfs", "-cat", str(squashfs), f"boot/{name}"], capture_output=True, check=True).stdout
    tree = work / "initrd-extra"
    hook = tree / "usr/lib/dracut/hooks/pre-pivot/40-hcitest-fail.sh"
    hook.parent.mkdir(parents=True)
    hook.write_bytes(INITRD_FAIL_HOOK)
    hook.chmod(0o755)
    extra = subprocess.run(["sh", "-c", "find usr | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet"], cwd=tree,
                           capture_output=True, check=True).stdout
    # The kernel takes an uncompressed cpio after a compressed one only at a 4-byte-aligned offset
    # of the whole initrd (init/initramfs.c); elsewhere it stops with "invalid magic" and boots
    # without the hook. dracut's output ends anywhere (its early microcode cpio moved the end).
    return f"boot/{name}", initrd + b"\0" * (-len(initrd) % 4) + extra


@pytest.fixture(scope="session")
def upgrade_images(built_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> UpgradeImages:
    """Versions 0.2.0 (good: a new motd, release notes and /var content), 0.3.0 (a health check
    that fails) and 0.3.1 (an initramfs that fails), built by the pipeline from the session's
    profile (the stage cache keeps them between runs)."""
    base = tmp_path_factory.mktemp("upgrade-images")
    v2_files = {"etc/motd": b"hcios 0.2.0: the motd of the new image\n",
                "etc/hcios/release-notes": b"0.2.0: the first upgrade\n",
                "var/lib/hcios-test/from-0.2.0": b"new /var content of 0.2.0\n"}
    v2 = build_variant(built_image, base / "v2", "0.2.0", v2_files, {})
    fail = b"#!/bin/sh\necho 'hcios test image 0.3.0: this health check fails on purpose'\nexit 1\n"
    v3h = build_variant(built_image, base / "v3h", "0.3.0",
                        {**v2_files, "usr/lib/hcios/health.d/90-hcitest-fail": fail},
                        {"usr/lib/hcios/health.d/90-hcitest-fail": 0o755})
    rel, initrd = failing_initrd(built_image.out / "rootfs.squashfs", base)
    v3i = build_variant(built_image, base / "v3i", "0.3.1", {**v2_files, rel: initrd}, {})
    return UpgradeImages(v2, v3h, v3i)
