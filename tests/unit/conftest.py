"""Fixtures the unit tests share."""
from __future__ import annotations

from pathlib import Path

import pytest

from installer.source import ImageSource


@pytest.fixture
def image(tmp_path: Path) -> ImageSource:
    path = tmp_path / "rootfs.squashfs"
    path.write_bytes(b"hsqs" + bytes(range(256)) * 64)
    return ImageSource(path, path.stat().st_size, None)
