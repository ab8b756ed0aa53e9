"""The A/B boot protocol as grub itself runs it: the installer's grub.cfg, grub 2.06's i386-pc
modules, an ext4 hci-oem holding the boot state copies, booted under qemu (BIOS, the same
biosdisk reads and writes as an installed node). One scenario per crash point of
docs/upgrade.md: which slot grub picks, and what it wrote back.

grub comes up through ``lnxboot.img`` (grub's Linux-loader stub) as qemu's ``-kernel``, so a boot
takes about a second; the slot partitions hold nothing, so after its decision grub fails to load
a kernel: the test reads the decision from the serial console and stops qemu.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from hcicore.bootstate import COPIES, BootState, decode, encode
from hcicore.layout import LABELS, plan_layout
from installer.bootloader import render_grub_cfg

pytestmark = pytest.mark.vm

GRUB_LIB = Path("/usr/lib/grub/i386-pc")
MiB = 1 << 20
# partition number -> (start MiB, size MiB): the layout's numbers, small sizes
PARTS = {1: (1, 1), 2: (2, 8), 3: (10, 48), 4: (58, 4), 5: (62, 4), 6: (66, 8)}
OEM_OFFSET, OEM_SIZE = PARTS[3][0] * MiB, PARTS[3][1] * MiB
DECISION = re.compile(r"hcios: booting slot ([ab]) ")


@pytest.fixture(scope="module")
def grub_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (GRUB_LIB / "lnxboot.img").exists() or shutil.which("grub-mkimage") is None:
        pytest.fail("grub-pc-bin is not installed (make host-deps installs it)")
    work = tmp_path_factory.mktemp("grub")
    core = work / "core.img"
    subprocess.run(["grub-mkimage", "-O", "i386-pc", "-o", str(core), "-p", "(hd0,gpt3)/boot/grub",
                    "biosdisk", "part_gpt", "ext2"], check=True)
    out = work / "grub.bin"
    out.write_bytes((GRUB_LIB / "lnxboot.img").read_bytes() + core.read_bytes())
    return out


@dataclass
class Disk:
    path: Path
    work: Path

    def env(self) -> list[BootState | None]:
        """Both copies as they are on the disk now."""
        oem = self.work / "oem.img"
        subprocess.run(["dd", f"if={self.path}", f"of={oem}", "bs=1M", f"skip={PARTS[3][0]}",
                        f"count={PARTS[3][1]}", "status=none"], check=True)
        out = []
        for name in COPIES:
            got = subprocess.run(["debugfs", "-R", f"cat /hcios/{name}", str(oem)], capture_output=True)
            out.append(decode(got.stdout) if got.returncode == 0 and got.stdout else None)
        return out


def make_disk(tmp: Path, copies: list[bytes | None], markers: tuple[str, ...] = ("a",)) -> Disk:
    tmp.mkdir(parents=True, exist_ok=True)
    tree = tmp / "oem"
    (tree / "boot/grub").mkdir(parents=True)
    shutil.copytree(GRUB_LIB, tree / "boot/grub/i386-pc", ignore=shutil.ignore_patterns("*.img", "*.image"))
    layout = plan_layout(40 << 30, 300 * MiB)
    partuuids = {label: str(uuid.uuid4()) for label in LABELS}
    (tree / "boot/grub/grub.cfg").write_text(render_grub_cfg(layout, partuuids, version="test", timeout=0))
    (tree / "hcios").mkdir()
    for name, data in zip(COPIES, copies):
        if data is not None:
            (tree / "hcios" / name).write_bytes(data)
    for slot in markers:
        (tree / "hcios" / f"slot-{slot}.good").write_bytes(b"")
    disk = tmp / "disk.img"
    with disk.open("wb") as f:
        f.truncate(80 * MiB)
    argv = ["sgdisk", "--clear"]
    for number, (start, size) in PARTS.items():
        argv += [f"--new={number}:{start * 2048}:{(start + size) * 2048 - 1}", f"--change-name={number}:{LABELS[number - 1]}"]
    subprocess.run([*argv, str(disk)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "hci-oem", "-E", f"offset={OEM_OFFSET}", "-d", str(tree),
                    str(disk), f"{OEM_SIZE // 1024}k"], check=True)
    return Disk(disk, tmp)


def boot(grub: Path, disk: Disk, *, readonly: bool = False, timeout: float = 60) -> tuple[str, str]:
    """Boot grub on ``disk``; returns (the slot it chose, the console text up to there)."""
    drive = f"file={disk.path},format=raw,if=virtio" + (",readonly=on" if readonly else "")
    proc = subprocess.Popen(["qemu-system-x86_64", "-machine", "q35", "-m", "256", "-display", "none",
                             "-serial", "stdio", "-monitor", "none", "-no-reboot", "-kernel", str(grub),
                             "-drive", drive], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = b""
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        import os  # noqa: PLC0415
        os.set_blocking(proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            chunk = proc.stdout.read() or b""
            text += chunk
            clean = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", text).decode(errors="replace")
            m = DECISION.search(clean)
            if m:
                return m.group(1), clean
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    raise AssertionError(f"grub made no decision: {text.decode(errors='replace')[-2000:]}")


def s(seq: int, good: str, trial: str | None = None, tries: int = 0) -> bytes:
    return encode(BootState(seq, good, trial, tries))


TORN = s(7, "b")[:40] + bytes(100) + s(7, "b")[140:]  # a write cut mid-block: garbage in the first sector


@pytest.mark.parametrize("name,copies,markers,slot,said", [
    ("fresh install", [s(1, "a"), s(1, "a")], ("a",), "a", None),
    ("after an upgrade was marked good", [s(5, "b"), s(5, "b")], ("a", "b"), "b", None),
    ("trial with tries left", [s(5, "a", "b", 3), s(5, "a", "b", 3)], ("a",), "b", "trial boot of slot b (2 tries"),
    ("trial out of tries", [s(5, "a", "b", 0), s(5, "a", "b", 0)], ("a",), "a", "no tries left"),
    ("cut between the node's two copies (new state in one)", [s(5, "a"), s(6, "a", "b", 3)], ("a",), "b",
     "trial boot"),
    ("cut between grub's two saves (one copy counted)", [s(5, "a", "b", 1), s(5, "a", "b", 2)], ("a",), "b",
     "(0 tries left"),
    ("first copy torn, second good", [TORN, s(6, "b")], ("a", "b"), "b", None),
    ("newest copy torn: the older one holds", [s(5, "b"), TORN], ("a", "b"), "b", None),
    ("field changed, check not (torn)", [s(9, "a", "b", 3).replace(b"hci_good=a", b"hci_good=b"), s(8, "b")],
     ("a", "b"), "b", None),
    ("both torn: the marked slot", [TORN, TORN], ("b",), "b", "boot state unreadable"),
    ("both missing: the marked slot", [None, None], ("b",), "b", "boot state unreadable"),
    ("both torn, trial pending in them: never the unmarked slot", [TORN, b"#" * 1024], ("a",), "a",
     "boot state unreadable"),
])
def test_grub_boots_the_slot_the_protocol_says(name: str, copies, markers, slot: str, said: str | None,
                                               grub_bin: Path, tmp_path: Path) -> None:
    disk = make_disk(tmp_path, copies, markers)
    chose, text = boot(grub_bin, disk)
    assert chose == slot, f"{name}: grub booted slot {chose}\n{text[-1500:]}"
    if said:
        assert said in text, text[-1500:]


def test_the_countdown_is_saved_to_both_copies_and_ends_on_the_good_slot(grub_bin: Path, tmp_path: Path) -> None:
    disk = make_disk(tmp_path, [s(5, "a", "b", 3), s(5, "a", "b", 3)])
    for left in (2, 1, 0):
        assert boot(grub_bin, disk)[0] == "b"
        assert disk.env() == [BootState(5, "a", "b", left)] * 2
    chose, text = boot(grub_bin, disk)
    assert chose == "a" and "slot b has no tries left" in text
    assert disk.env() == [BootState(5, "a", "b", 0)] * 2  # left for hci-health to record


def test_a_try_that_cannot_be_counted_is_not_taken(grub_bin: Path, tmp_path: Path) -> None:
    disk = make_disk(tmp_path, [s(5, "a", "b", 3), s(5, "a", "b", 3)])
    chose, text = boot(grub_bin, disk, readonly=True)
    assert chose == "a" and "cannot save the boot state" in text
    assert disk.env() == [BootState(5, "a", "b", 3)] * 2
