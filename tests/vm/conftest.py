"""Fixtures of the VM tier: the built artifacts and a VM lab per test.

Where the artifacts come from (first that applies):
  1. ``HCIOS_TEST_OUT=/path/to/out``: an existing ``hci build`` output directory
     (rootfs.squashfs, build-manifest.json, and usually hcios-*.iso and pxe/).
  2. the ``built_image`` fixture (tests/conftest.py), the pipeline's session build.
Missing ISO or pxe/ are built here from rootfs.squashfs with iso.build / iso.pxe.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hcicore.progress import Progress
from iso.bootfiles import extract_boot_files
from iso.build import build_iso
from iso.lab import Lab
from iso.pxe import write_pxe

from .nodes import install_lab, installed_disk, signing_key, ssh_key  # noqa: F401  (session fixtures)


@dataclass(frozen=True)
class Artifacts:
    out: Path
    squashfs: Path
    version: str
    arch: str
    iso: Path
    pxe: Path


@pytest.fixture(scope="session")
def artifacts(pipeline_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    out = pipeline_out
    squashfs = out / "rootfs.squashfs"
    manifest = out / "build-manifest.json"
    assert squashfs.is_file(), f"{squashfs} missing"
    assert manifest.is_file(), f"{manifest} missing"
    meta = json.loads(manifest.read_text())
    version, arch = str(meta["version"]), str(meta["arch"])
    isos = sorted(out.glob(f"hcios-{version}-{arch}.iso"))
    pxe = out / "pxe"
    if isos and (pxe / "vmlinuz").is_file():
        return Artifacts(out, squashfs, version, arch, isos[0], pxe)
    work = tmp_path_factory.mktemp("iso-artifacts")
    kernel, initrd = extract_boot_files(squashfs, work / "boot")
    iso = isos[0] if isos else build_iso(
        squashfs=squashfs, kernel=kernel, initrd=initrd, out_dir=work, version=version,
        arch=arch, airgap_dir=None, progress=Progress())
    if not (pxe / "vmlinuz").is_file():
        pxe = write_pxe(squashfs=squashfs, kernel=kernel, initrd=initrd, out_dir=work,
                        version=version)
    return Artifacts(out, squashfs, version, arch, iso, pxe)


@pytest.fixture
def lab():
    """A lab whose domains and files are removed after the test, pass or fail."""
    with Lab(prefix="hcitest") as lab:
        yield lab
