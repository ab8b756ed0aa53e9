"""The three-way /etc merge (old image, new image, the node's overlay layer)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from node_services.upgrade.etcmerge import build_layer, exchange, plan_merge

pytestmark = pytest.mark.unit


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("->"):
            os.symlink(text[2:], path)
        else:
            path.write_text(text)
    return root


@pytest.fixture
def etc(tmp_path: Path) -> tuple[Path, Path, Path]:
    old = tree(tmp_path / "old", {"same": "1\n", "touched": "t\n", "edited": "e\n", "both": "b1\n",
                                  "gone-in-new": "g\n", "link": "->same", "agree": "a1\n", "chmod": "c\n",
                                  "deleted-here": "d1\n", "deleted-changed": "x1\n"})
    new = tree(tmp_path / "new", {"same": "1\n", "touched": "t2\n", "edited": "e\n", "both": "b2\n",
                                  "link": "->touched", "agree": "a2\n", "chmod": "c\n", "added-by-image": "n\n",
                                  "deleted-here": "d1\n", "deleted-changed": "x2\n"})
    upper = tree(tmp_path / "upper", {"touched": "t\n", "edited": "e-local\n", "both": "b-local\n",
                                      "gone-in-new": "g\n", "link": "->same", "agree": "a2\n", "chmod": "c\n",
                                      "mine/app.conf": "m\n", "added-by-image": "local\n"})
    os.chmod(upper / "chmod", 0o600)
    return old, new, upper


def test_plan(etc) -> None:
    old, new, upper = etc
    result = plan_merge(upper, old, new)
    # copied up unchanged: the new image's version shows (or the file goes with the image)
    assert {"touched", "gone-in-new", "link"} <= set(result.dropped)
    assert "agree" in result.dropped  # the local edit equals the new image
    assert {"edited", "both", "chmod", "mine/app.conf", "added-by-image"} <= set(result.kept)
    assert sorted(c["path"] for c in result.conflicts) == ["/etc/added-by-image", "/etc/both"]
    assert all(c["kept"] == "local" for c in result.conflicts)


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are character devices 0/0 (mknod needs root)")
def test_whiteouts(etc) -> None:
    old, new, upper = etc
    os.mknod(upper / "deleted-here", 0o600 | 0o020000, os.makedev(0, 0))
    os.mknod(upper / "deleted-changed", 0o600 | 0o020000, os.makedev(0, 0))
    os.mknod(upper / "gone-both", 0o600 | 0o020000, os.makedev(0, 0))
    result = plan_merge(upper, old, new)
    assert "deleted-here" in result.kept and "deleted-changed" in result.kept
    assert "gone-both" in result.dropped  # nothing left to hide
    assert {"path": "/etc/deleted-changed", "kind": "deleted locally, changed by the new image",
            "kept": "deleted"} in result.conflicts


def test_build_layer_copies_kept_entries_and_swaps(etc, tmp_path: Path) -> None:
    old, new, upper = etc
    target = tmp_path / "persistent/etc/b"
    (target / "upper").mkdir(parents=True)
    (target / "upper/stale").write_text("from an older upgrade\n")
    build_layer(upper, old, new, target)
    assert sorted(p.relative_to(target / "upper").as_posix() for p in (target / "upper").rglob("*")
                  if not p.is_dir()) == ["added-by-image", "both", "chmod", "edited", "mine/app.conf"]
    assert oct((target / "upper/chmod").stat().st_mode & 0o777) == "0o600"
    assert (target / "work").is_dir() and not (tmp_path / "persistent/etc/b.new").exists()
    assert (upper / "touched").exists()  # the source layer is only read


def test_exchange_is_atomic_swap(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x/f").write_text("x")
    (tmp_path / "y").mkdir()
    exchange(tmp_path / "x", tmp_path / "y")
    assert (tmp_path / "y/f").read_text() == "x" and not (tmp_path / "x/f").exists()
