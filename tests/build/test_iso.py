"""Build ISOs and PXE directories for real and inspect them with xorriso, blkid and sgdisk.

Two sources:
  * a small real squashfs made here with mksquashfs, plus kernel/initrd files (the ISO build does
    not look inside them): always runs; checks layout, boot records, airgap, reproducibility;
  * the pipeline's rootfs.squashfs (HCIOS_TEST_OUT or the ``built_image`` fixture): checks the
    kernel and initrd come out of the squashfs and the squashfs lands on the ISO byte for byte.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from hcicore.errors import ValidationError
from hcicore.progress import Progress
from iso.bootfiles import extract_boot_files
from iso.build import build_iso
from iso.pxe import write_pxe

pytestmark = pytest.mark.build


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def xorriso_report(iso: Path) -> str:
    proc = subprocess.run(
        ["xorriso", "-indev", str(iso), "-report_el_torito", "plain", "-report_system_area", "plain"],
        capture_output=True, text=True, check=True)
    return proc.stdout


def extract(iso: Path, path: str, dest: Path) -> Path:
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(dest)],
                   capture_output=True, check=True)
    return dest


def iso_ls(iso: Path, path: str) -> list[str]:
    proc = subprocess.run(["xorriso", "-indev", str(iso), "-ls", path],
                          capture_output=True, text=True, check=True)
    return [line.strip().strip("'") for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("iso-inputs")
    tree = d / "tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc" / "hostname").write_text("hcios\n")
    (tree / "boot" / "vmlinuz-6.1.0-test").write_bytes(os.urandom(300_000))
    (tree / "boot" / "initrd.img-6.1.0-test").write_bytes(os.urandom(200_000))
    (tree / "boot" / "vmlinuz").symlink_to("vmlinuz-6.1.0-test")
    (tree / "initrd.img").symlink_to("/boot/initrd.img-6.1.0-test")  # absolute, Debian style
    (tree / "boot" / "initrd.img-6.1.0-test").chmod(0o600)              # as dracut writes it
    squashfs = d / "rootfs.squashfs"
    subprocess.run(["mksquashfs", str(tree), str(squashfs), "-comp", "xz", "-noappend",
                    "-no-progress", "-quiet"], check=True)
    airgap = d / "airgap"
    (airgap / "images").mkdir(parents=True)
    (airgap / "images" / "k3s-airgap-images.tar").write_bytes(b"layer" * 1000)
    return {"squashfs": squashfs, "tree": tree, "airgap": airgap, "dir": d}


def test_extract_boot_files_resolves_symlinks_inside_the_squashfs(small_inputs, tmp_path) -> None:
    kernel, initrd = extract_boot_files(small_inputs["squashfs"], tmp_path)
    tree = small_inputs["tree"]
    assert kernel.read_bytes() == (tree / "boot" / "vmlinuz-6.1.0-test").read_bytes()
    # /boot/initrd.img is missing in the tree; /initrd.img is an absolute link into /boot
    assert initrd.read_bytes() == (tree / "boot" / "initrd.img-6.1.0-test").read_bytes()
    assert initrd.stat().st_mode & 0o777 == 0o644


def test_iso_has_bios_and_uefi_boot_gpt_and_the_squashfs(small_inputs, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    kernel, initrd = extract_boot_files(small_inputs["squashfs"], tmp_path / "boot")
    iso = build_iso(squashfs=small_inputs["squashfs"], kernel=kernel, initrd=initrd,
                    out_dir=tmp_path / "out", version="1.2.3-rc.1", arch="amd64",
                    airgap_dir=small_inputs["airgap"], progress=Progress())
    assert iso.name == "hcios-1.2.3-rc.1-amd64.iso"
    report = xorriso_report(iso)
    assert re.search(r"El Torito boot img :\s+1\s+BIOS\s+y\s+none", report), report
    assert re.search(r"El Torito boot img :\s+2\s+UEFI\s+y\s+none", report), report
    assert "El Torito img path :   1  /boot/grub/i386-pc/eltorito.img" in report
    assert "grub2-mbr" in report and "GPT" in report
    # USB: GPT with an EFI System partition holding BOOTX64.EFI
    assert re.search(r"GPT type GUID\s+:\s+\d+\s+28732ac11ff8d211ba4b00a0c93ec93b", report), report
    label = subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL", str(iso)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert label == "HCIOS_1_2_3_RC_1"
    # the single squashfs, byte for byte, plus its digest file
    sq = extract(iso, "/LiveOS/squashfs.img", tmp_path / "sq.img")
    assert sha256(sq) == sha256(small_inputs["squashfs"])
    digest_line = extract(iso, "/LiveOS/squashfs.img.sha256", tmp_path / "sq.sha").read_text()
    assert digest_line.split()[0] == sha256(small_inputs["squashfs"])
    assert json.loads(extract(iso, "/.hcios/build.json", tmp_path / "b.json").read_text())[
        "squashfs_sha256"] == sha256(small_inputs["squashfs"])
    assert extract(iso, "/boot/vmlinuz", tmp_path / "k").read_bytes() == kernel.read_bytes()
    assert extract(iso, "/boot/initrd.img", tmp_path / "i").read_bytes() == initrd.read_bytes()
    assert "k3s-airgap-images.tar" in iso_ls(iso, "/airgap/images")
    cfg = extract(iso, "/boot/grub/grub.cfg", tmp_path / "grub.cfg").read_text()
    assert "root=live:CDLABEL=HCIOS_1_2_3_RC_1 rd.live.image" in cfg
    assert "terminal_output --append serial_com0" in cfg and "terminal_output --append serial_com1" in cfg
    assert "\nexport hcios_live\n" in cfg  # the "Other consoles" submenu sees the live root
    assert 'set default="install-both"' in cfg
    assert "console=tty0 console=ttyS0,115200n8 hcios.live=install" in cfg
    assert "hci.install.automatic=true" in cfg
    assert "hcios.live=shell" in cfg
    # the EFI system partition image carries the EFI loader (hcios's own grub: no signed files given)
    esp = esp_image(iso, tmp_path / "esp.img")
    listing = subprocess.run(["mdir", "-i", str(esp), "-b", "::/EFI/BOOT"],
                             capture_output=True, text=True, check=True).stdout
    assert [Path(line).name.upper() for line in listing.split()] == ["BOOTX64.EFI"]


def esp_image(iso: Path, dest: Path) -> Path:
    """The ISO's appended EFI system partition (GPT partition 2), as a file mtools reads."""
    efi_start, efi_size = map(int, re.search(
        r"GPT start and size :\s+2\s+(\d+)\s+(\d+)", xorriso_report(iso)).groups())
    with iso.open("rb") as f:
        f.seek(efi_start * 512)
        dest.write_bytes(f.read(efi_size * 512))
    return dest


def esp_file(esp: Path, path: str) -> bytes:
    return subprocess.run(["mtype", "-i", str(esp), f"::/{path}"], capture_output=True, check=True,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout


def test_iso_build_is_reproducible(small_inputs, tmp_path, monkeypatch) -> None:
    kernel, initrd = extract_boot_files(small_inputs["squashfs"], tmp_path / "boot")
    digests = []
    for n in (1, 2):
        if n == 1:
            monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
            epoch = None
        else:
            time.sleep(1.1)  # a different wall-clock second must not change a byte
            monkeypatch.delenv("SOURCE_DATE_EPOCH")
            epoch = 1700000000
        iso = build_iso(squashfs=small_inputs["squashfs"], kernel=kernel, initrd=initrd,
                        out_dir=tmp_path / f"out{n}", version="1.0.0", arch="amd64",
                        airgap_dir=None, progress=Progress(), source_date_epoch=epoch)
        digests.append(sha256(iso))
    assert digests[0] == digests[1]


def test_iso_refuses_missing_inputs(tmp_path) -> None:
    with pytest.raises(ValidationError) as err:
        build_iso(squashfs=tmp_path / "nope.squashfs", kernel=tmp_path / "k", initrd=tmp_path / "i",
                  out_dir=tmp_path, version="1.0.0", arch="arm64", airgap_dir=tmp_path / "no",
                  progress=Progress())
    paths = {p.path for p in err.value.problems}
    assert paths == {"squashfs", "kernel", "initrd", "airgap_dir", "arch"}


def test_pxe_directory(small_inputs, tmp_path) -> None:
    kernel, initrd = extract_boot_files(small_inputs["squashfs"], tmp_path / "boot")
    pxe = write_pxe(squashfs=small_inputs["squashfs"], kernel=kernel, initrd=initrd,
                    out_dir=tmp_path / "out", version="1.0.0")
    assert sorted(p.name for p in pxe.iterdir()) == [
        "boot.ipxe", "initrd.img", "rootfs.squashfs", "vmlinuz"]
    assert sha256(pxe / "rootfs.squashfs") == sha256(small_inputs["squashfs"])
    script = (pxe / "boot.ipxe").read_text()
    assert script.startswith("#!ipxe\n")
    assert "root=live:http://${base-url}/rootfs.squashfs rd.live.image ip=dhcp" in script
    assert "${hci-args}" in script
    assert "initrd http://${base-url}/initrd.img" in script
    assert f"hcios.image_sha256={sha256(pxe / 'rootfs.squashfs')}" in script  # checked before install


def test_iso_from_pipeline_squashfs(pipeline_out: Path, tmp_path) -> None:
    squashfs = pipeline_out / "rootfs.squashfs"
    meta = json.loads((pipeline_out / "build-manifest.json").read_text())
    kernel, initrd = extract_boot_files(squashfs, tmp_path / "boot")
    assert kernel.read_bytes()[0x202:0x206] == b"HdrS"  # a bzImage
    iso = build_iso(squashfs=squashfs, kernel=kernel, initrd=initrd, out_dir=tmp_path,
                    version=str(meta["version"]), arch=str(meta["arch"]), airgap_dir=None,
                    progress=Progress())
    report = xorriso_report(iso)
    assert re.search(r"El Torito boot img :\s+1\s+BIOS", report)
    assert re.search(r"El Torito boot img :\s+2\s+UEFI", report)
    sq = extract(iso, "/LiveOS/squashfs.img", tmp_path / "sq.img")
    assert sha256(sq) == sha256(squashfs)
