"""Disk layout planning and the sgdisk command, applied to a sparse image file and read back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcicore.command import run
from hcicore.errors import ValidationError
from hcicore.layout import (
    LABELS,
    PERSISTENT_MIN,
    SLOT_MIN,
    GiB,
    MiB,
    min_disk_bytes,
    plan_layout,
    sgdisk_argv,
    slot_bytes,
)

pytestmark = pytest.mark.unit


def test_labels_order_sizes_and_alignment() -> None:
    layout = plan_layout(40 * GiB, 300 * MiB)
    assert tuple(p.label for p in layout.partitions) == LABELS
    assert [p.number for p in layout.partitions] == [1, 2, 3, 4, 5, 6]
    sizes = {p.label: p.size for p in layout.partitions}
    assert (sizes["hci-bios"], sizes["hci-esp"], sizes["hci-oem"]) == (1 * MiB, 300 * MiB, 256 * MiB)
    assert sizes["hci-root-a"] == sizes["hci-root-b"] == layout.slot_bytes == SLOT_MIN
    assert [p.type_code for p in layout.partitions] == ["EF02", "EF00", "8300", "8300", "8300", "8300"]
    assert layout.partitions[0].start == 1 * MiB
    for a, b in zip(layout.partitions, layout.partitions[1:]):
        assert a.end == b.start
    assert all(p.start % MiB == 0 and p.size % MiB == 0 for p in layout.partitions)
    last = layout.by_label("hci-persistent")
    assert last.end <= 40 * GiB - MiB < last.end + MiB  # the last MiB is left for the backup GPT


def test_slot_is_twice_the_image_with_a_floor() -> None:
    assert slot_bytes(100 * MiB) == SLOT_MIN
    assert slot_bytes(1500 * MiB) == 3000 * MiB
    assert slot_bytes(1500 * MiB + 1) == 3001 * MiB  # rounded up to whole MiB
    with pytest.raises(ValueError):
        slot_bytes(0)


def test_smallest_disk_fits_exactly() -> None:
    need = min_disk_bytes(3 * GiB)
    layout = plan_layout(need, 3 * GiB)
    assert layout.by_label("hci-persistent").size == PERSISTENT_MIN
    assert layout.slot_bytes == 6 * GiB


def test_too_small_disk_says_which_and_by_how_much() -> None:
    need = min_disk_bytes(200 * MiB)
    with pytest.raises(ValidationError) as info:
        plan_layout(need - 512 * MiB, 200 * MiB, device="/dev/vdb")
    (problem,) = info.value.problems
    assert problem.path == "install.device"
    assert "disk /dev/vdb is too small" in problem.message
    assert "512 MiB more" in problem.message
    assert f"needs 14.5 GiB ({need} bytes)" in problem.message
    assert problem.fix == "use a disk of at least 15 GiB"


def test_sgdisk_argv_shape() -> None:
    argv = sgdisk_argv(plan_layout(20 * GiB, 100 * MiB), "/dev/vda")
    assert argv[:2] == ["sgdisk", "--clear"] and argv[-1] == "/dev/vda"
    assert "--new=1:2048:4095" in argv and "--typecode=1:EF02" in argv and "--change-name=1:hci-bios" in argv
    assert "--change-name=6:hci-persistent" in argv


def test_sgdisk_writes_the_planned_table(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    size = 16 * GiB
    with disk.open("wb") as fh:
        fh.truncate(size)  # sparse
    layout = plan_layout(size, 150 * MiB, device=str(disk))
    run(sgdisk_argv(layout, str(disk)))
    table = json.loads(run(["sfdisk", "--json", str(disk)]).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    got = [(p["name"], p["start"] * 512, p["size"] * 512, p["type"]) for p in table["partitions"]]
    types = {"EF02": "21686148-6449-6E6F-744E-656564454649", "EF00": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
             "8300": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}
    assert got == [(p.label, p.start, p.size, types[p.type_code]) for p in layout.partitions]
