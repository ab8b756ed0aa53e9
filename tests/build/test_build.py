"""The default profile built for real: what the slot image holds, the OCI image, the manifest,
the cache, and reproducibility."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from image.cache import default_cache_root
from hcicore import signedboot
from hcicore.digest import sha256_file
from iso.bootargs import volume_label
from tests.conftest import REPO, BuiltImage, run_build, serve_directory

pytestmark = pytest.mark.build


@contextmanager
def mounted_squashfs(image: Path, where: Path) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "squashfs", "-o", "loop,ro", str(image), str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_slot_image_holds_kernel_initrd_version_and_services(built_image: BuiltImage, tmp_path: Path) -> None:
    with mounted_squashfs(built_image.out / "rootfs.squashfs", tmp_path / "mnt") as root:
        kernel = (root / "boot/vmlinuz").resolve()
        initrd = (root / "boot/initrd.img").resolve()
        assert kernel.name.startswith("vmlinuz-6.") and kernel.stat().st_size > 4_000_000
        assert initrd.name.startswith("initrd.img-") and initrd.stat().st_size > 4_000_000
        assert oct(initrd.stat().st_mode & 0o777) == "0o644"
        # the initramfs carries the live-boot modules and our overlay fix
        lsinitrd = subprocess.run(["chroot", str(root), "lsinitrd", f"/boot/{initrd.name}"],
                                  capture_output=True, text=True)
        assert lsinitrd.returncode == 0, lsinitrd.stderr
        assert "dmsquash-live" in lsinitrd.stdout and "hci-live" in lsinitrd.stdout
        # no per-machine identity in the initramfs either (dracut's nvmf module copied nvme-cli's)
        assert "etc/nvme/host" not in lsinitrd.stdout
        release = dict(line.split("=", 1) for line in (root / "usr/lib/os-release").read_text().splitlines())
        assert release["VERSION_ID"].strip('"') == built_image.manifest["version"]
        assert os.readlink(root / "etc/os-release") == "../usr/lib/os-release"
        # node services from this repository, runnable by the node's own Python
        assert (root / "usr/lib/python3/dist-packages/hcicore/command.py").is_file()
        assert (root / "usr/bin/hci").stat().st_mode & 0o111
        assert (root / "etc/systemd/system/multi-user.target.wants/hci-live-banner.service").is_symlink()
        help_out = subprocess.run(["chroot", str(root), "/usr/bin/hci", "--help"], capture_output=True, text=True)
        assert help_out.returncode == 0, help_out.stderr
        # what the node needs is there, what must be per node is not
        # (checked inside the image: alternatives links such as ovs-vswitchd are absolute)
        missing = subprocess.run(
            ["chroot", str(root), "sh", "-c", 'for f; do test -x "$f" || echo "$f"; done', "sh",
             "/usr/sbin/sshd", "/usr/bin/containerd", "/usr/sbin/runc", "/usr/bin/cloud-init",
             "/usr/sbin/ovs-vswitchd", "/usr/sbin/grub-install", "/usr/bin/dracut", "/lib/systemd/systemd",
             "/usr/sbin/netplan"], capture_output=True, text=True, check=True).stdout.split()
        assert missing == []
        # DPDK's plugins for OVS-DPDK: the ring mempool handler (no port without it) and PMDs
        pmds = {p.name.split(".so")[0] for p in (root / "usr/lib/x86_64-linux-gnu/dpdk").glob("pmds-*/*.so*")}
        assert {"librte_mempool_ring", "librte_net_virtio", "librte_net_ixgbe", "librte_net_mlx5"} <= pmds
        assert not list((root / "etc/ssh").glob("ssh_host_*")), "host keys must be made per node"
        # bytecode for every module (the root is read-only on a node): unchecked-hash pycs, whose
        # header flags are 1 (hash-based, source never checked) and which carry no mtime
        for module in ("usr/lib/python3/dist-packages/hcicore/__pycache__/cli.cpython-311.pyc",
                       "usr/lib/python3/dist-packages/cloudinit/__pycache__/stages.cpython-311.pyc",
                       "usr/lib/python3.11/__pycache__/argparse.cpython-311.pyc"):
            header = (root / module).read_bytes()[:16]
            assert int.from_bytes(header[4:8], "little") == 1, module
        assert (root / "etc/machine-id").read_text() == ""
        # components from the lock file, byte for byte
        for comp in built_image.manifest["components"]:
            assert comp["status"] == "included"
            if comp["kind"] != "spdk-source":
                assert sha256_file(root / comp["dest"].lstrip("/")) == comp["sha256"]
            else:  # built here from the pinned tarball: each binary's digest is in the manifest
                assert {"/usr/lib/hcios/spdk/bin/nvmf_tgt", "/usr/lib/hcios/spdk/bin/spdk_tgt"} <= set(comp["files"])
                for path, digest in comp["files"].items():
                    assert sha256_file(root / path.lstrip("/")) == digest, path
        assert (root / "usr/local/bin/k3s").stat().st_mode & 0o111
        # the storage engine built from the pinned SPDK source runs on the image's own libraries
        for tool in ("nvmf_tgt", "spdk_tgt"):
            ran = subprocess.run(["chroot", str(root), f"/usr/lib/hcios/spdk/bin/{tool}", "--help"],
                                 capture_output=True, text=True)
            assert ran.returncode == 0 and "--rpc-socket" in ran.stdout, ran.stderr


def test_node_services_of_the_upgrade_are_in_the_image(built_image: BuiltImage, tmp_path: Path) -> None:
    """hci-upgrade and hci-health run on the image's own Python (with its cryptography), their
    units are enabled where they belong, the health checks are executable, and the shutdown
    that rebuilt a dracut image on every reboot is off."""
    with mounted_squashfs(built_image.out / "rootfs.squashfs", tmp_path / "mnt") as root:
        for tool in ("hci-upgrade", "hci-health"):
            assert (root / "usr/bin" / tool).stat().st_mode & 0o111
        out = subprocess.run(["chroot", str(root), "/usr/bin/hci-upgrade", "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "apply" in out.stdout and "rollback" in out.stdout, out.stderr
        crypto = subprocess.run(["chroot", str(root), "python3", "-c",
                                 "import cryptography.hazmat.primitives.asymmetric.ec, node_services.health"],
                                capture_output=True, text=True)
        assert crypto.returncode == 0, crypto.stderr
        wants = root / "etc/systemd/system"
        assert (wants / "multi-user.target.wants/hci-health.service").is_symlink()
        assert (wants / "sysinit.target.wants/hci-trial-deadline.service").is_symlink()
        assert (wants / "multi-user.target.wants/hci-upgrade-reboot.path").is_symlink()
        assert not (wants / "sysinit.target.wants/mdadm-shutdown.service").exists()
        checks = sorted(p.name for p in (root / "usr/lib/hcios/health.d").iterdir())
        assert checks == ["10-persistent", "20-network", "30-sshd", "40-containerd", "50-k3s"]
        assert all((root / "usr/lib/hcios/health.d" / c).stat().st_mode & 0o111 for c in checks)
        assert "RuntimeWatchdogSec=2min" in (root / "usr/lib/systemd/system.conf.d/hcios-watchdog.conf").read_text()


def test_oci_layout_is_accepted_by_skopeo(built_image: BuiltImage) -> None:
    res = subprocess.run(["skopeo", "inspect", f"oci:{built_image.out / 'oci'}"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["Labels"]["org.opencontainers.image.version"] == built_image.manifest["version"]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64" and len(info["Layers"]) == 1


def test_manifest_digests_match_the_files(built_image: BuiltImage) -> None:
    manifest = built_image.manifest
    assert manifest["profile_digest"] and manifest["source_date_epoch"]
    seen = 0
    for art in manifest["artifacts"].values():
        files = art["files"] if art["type"] == "directory" else {art["path"]: art}
        for rel, meta in files.items():
            path = built_image.out / rel
            assert path.stat().st_size == meta["size"], rel
            assert sha256_file(path) == meta["sha256"], rel
            seen += 1
    assert seen >= 5
    names = {p["name"] for p in manifest["packages"]}
    assert {"linux-image-amd64", "systemd", "openssh-server", "cloud-init", "containerd"} <= names
    assert {c["name"] for c in manifest["components"]} == {"k3s", "k3s-airgap-images", "kubevirt-operator", "spdk"}


def test_firmware_microcode_and_updates_are_taken_and_listed(built_image: BuiltImage) -> None:
    """The default profile takes non-free-firmware and the updates and security suites; the
    manifest says which snapshot of each suite and which version of each package."""
    manifest = built_image.manifest
    suites = {s["codename"]: s for s in manifest["apt_sources"]}
    assert {"bookworm", "bookworm-updates", "bookworm-security"} <= set(suites)
    for source in suites.values():
        assert source["date"] and source["origin"] == "Debian", source
    versions = {p["name"]: p["version"] for p in manifest["packages"]}
    for name in ("firmware-bnx2x", "firmware-qlogic", "firmware-realtek", "intel-microcode", "amd64-microcode",
                 "shim-signed", "grub-efi-amd64-signed", "mokutil"):
        assert versions.get(name), name
    # every package says which suites its version came from; the kernel (and others) from security
    suites = {p["name"]: p.get("suites") for p in manifest["packages"] if p["arch"] != "python"}
    assert suites["systemd"] and suites["linux-image-amd64"], suites
    assert "bookworm-security" in suites["linux-image-amd64"], suites["linux-image-amd64"]


def test_the_iso_boots_through_the_images_signed_shim_and_grub(built_image: BuiltImage, tmp_path: Path) -> None:
    """The ISO's EFI image holds the image's own signed shim, CD grub and MokManager, and a
    grub.cfg that finds the medium by its label (the Secure Boot VM test boots it)."""
    from tests.build.test_iso import esp_file, esp_image  # noqa: PLC0415

    iso = next(built_image.out.glob("hcios-*.iso"))
    esp = esp_image(iso, tmp_path / "esp.img")
    with mounted_squashfs(built_image.out / "rootfs.squashfs", tmp_path / "mnt") as root:
        for name, rel in (("BOOTX64.EFI", signedboot.SHIM), ("grubx64.efi", signedboot.GRUB_CD),
                          ("mmx64.efi", signedboot.MOK_MANAGER)):
            assert esp_file(esp, f"EFI/BOOT/{name}") == (root / rel).read_bytes(), name
    stub = esp_file(esp, "boot/grub/grub.cfg").decode()
    assert f"search --no-floppy --label {volume_label(built_image.manifest['version'])} --set=root" in stub


def test_second_build_skips_every_stage(built_image: BuiltImage, tmp_path: Path) -> None:
    result = run_build(built_image.profile, tmp_path / "again")
    assert result["built"] == []
    stage_events = [e for e in result["events"] if e["event"] == "step" and e.get("id")]
    assert stage_events and all(e["status"] == "cached" for e in stage_events)
    assert sha256_file(tmp_path / "again/rootfs.squashfs") == sha256_file(built_image.out / "rootfs.squashfs")


def copy_checkout(dest: Path) -> Path:
    """This repository's files (tracked and new, not ignored) copied to ``dest``: a second checkout."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file() or src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)
    return dest


def test_two_clean_builds_give_the_same_squashfs(built_image: BuiltImage, tmp_path: Path) -> None:
    """A build from an empty stage cache, from a second checkout at another path and under another
    umask (as CI runs it), matches the session's build byte for byte. (The session build may come
    from the persistent cache; it was itself a clean build when it was made. If the mirror moved
    since, the package lists differ and a second clean build is compared instead.)"""
    checkout = copy_checkout(tmp_path / "elsewhere" / "hcios")
    # what `hci build` imports with this environment (run from elsewhere: the cwd is not on the
    # path of a console script, so only PYTHONPATH can make it pick the checkout)
    used = subprocess.run([sys.executable, "-c", "import image.pipeline as p; print(p.REPO_ROOT)"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(checkout)},
                          capture_output=True, text=True, check=True).stdout.strip()
    assert used == str(checkout), "the build must run the second checkout's code"

    def clean_build(name: str) -> tuple[str, list]:
        cache = tmp_path / f"cache-{name}"
        cache.mkdir()
        (cache / "apt-archives").symlink_to(default_cache_root() / "apt-archives")  # .debs only
        # the SPDK engine's build, by content like the .debs (built in another directory it gives
        # the same bytes: recipes/spdk.sh maps the build path away; docs/platform.md)
        (cache / "spdk").symlink_to(default_cache_root() / "spdk")
        www = tmp_path / f"www-{name}"
        www.mkdir()
        for fname, data in built_image.artifacts.items():
            (www / fname).write_bytes(data)
        out = tmp_path / f"out-{name}"
        with serve_directory(www) as srv:
            # same profile, components from a new server (URLs don't enter stage ids)
            text = built_image.profile.parent.joinpath("components.lock.yaml").read_text()
            old_port = text.split("http://127.0.0.1:")[1].split("/")[0]
            prof_dir = tmp_path / f"profile-{name}"
            subprocess.run(["cp", "-a", str(built_image.profile.parent), str(prof_dir)], check=True)
            (prof_dir / "components.lock.yaml").write_text(text.replace(f":{old_port}/", f":{srv.port}/"))
            run_build(prof_dir / "profile.yaml", out, "--no-iso", "--cache", str(cache),
                               env={"PYTHONPATH": str(checkout)}, cwd=checkout, umask=0o027)
        pkgs = json.loads((out / "build-manifest.json").read_text())["packages"]
        digest = sha256_file(out / "rootfs.squashfs")
        subprocess.run(["rm", "-rf", str(cache), str(out)], check=True)
        return digest, pkgs

    first, pkgs = clean_build("a")
    if pkgs == built_image.manifest["packages"]:
        assert first == built_image.manifest["artifacts"]["rootfs.squashfs"]["sha256"]
    else:
        second, pkgs2 = clean_build("b")
        assert pkgs2 == pkgs, "the mirror changed during the test"
        assert first == second


def test_image_holds_no_build_host_path(built_image: BuiltImage, tmp_path: Path) -> None:
    """Nothing in the slot image names where it was built: not the checkout, not the build's Python
    (pip writes its own interpreter into console scripts; they must name the node's instead)."""
    host_paths = {str(REPO), sys.prefix, str(Path(sys.executable).parent)}
    with mounted_squashfs(built_image.out / "rootfs.squashfs", tmp_path / "mnt") as root:
        hits = subprocess.run(["grep", "-rlaF", *[arg for p in sorted(host_paths) for arg in ("-e", p)],
                               "usr/lib/python3/dist-packages", "usr/lib/hcios", "usr/bin", "etc", "usr/local"],
                              cwd=root, capture_output=True, text=True)
        assert hits.returncode == 1, f"build-host paths in the image: {hits.stdout}{hits.stderr}"
        scripts = sorted((root / "usr/lib/hcios/python/bin").iterdir())
        assert scripts, "the vendored wheels bring console scripts (pygmentize, markdown-it)"
        for script in scripts:
            assert script.read_text().splitlines()[0] == "#!/usr/bin/python3"
        ran = subprocess.run(["chroot", str(root), "/usr/bin/python3", "-c",
                              "import sys; sys.path.insert(0, '/usr/lib/hcios/python'); import textual, rich"],
                             capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
