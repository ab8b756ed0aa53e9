"""Downloads by sha256 and the content-addressed stage cache."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hcicore.errors import DigestMismatch
from image.cache import StageCache, stage_id
from image.fetch import FetchError, fetch, session
from image.tree import clamp_mtimes, tree_digest

pytestmark = pytest.mark.unit


def test_fetch_verifies_and_caches(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    data = b"k3s-binary" * 1000
    (http_server.root / "k3s").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "dl"
    got = fetch(http_server.url("k3s"), digest, cache)
    assert got == cache / digest and got.read_bytes() == data
    (http_server.root / "k3s").unlink()  # a second fetch must not need the server
    assert fetch(http_server.url("k3s"), digest, cache) == got


def test_fetch_mismatch_leaves_nothing(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    (http_server.root / "k3s").write_bytes(b"tampered")
    with pytest.raises(DigestMismatch, match="the lock file pins"):
        fetch(http_server.url("k3s"), "0" * 64, tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_fetch_http_error(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(http_server.url("absent"), "0" * 64, tmp_path / "dl")


def test_fetch_refused_connection(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="ConnectionError"):
        fetch("http://127.0.0.1:9/x", "0" * 64, tmp_path / "dl", sess=session(retries=1), timeout=2)


def test_stage_id_covers_every_input() -> None:
    base = stage_id("s", {"a": 1}, {"f": "x"}, "p")
    assert base == stage_id("s", {"a": 1}, {"f": "x"}, "p")
    assert len({base, stage_id("t", {"a": 1}, {"f": "x"}, "p"), stage_id("s", {"a": 2}, {"f": "x"}, "p"),
                stage_id("s", {"a": 1}, {"f": "y"}, "p"), stage_id("s", {"a": 1}, {"f": "x"}, None)}) == 5


def test_cache_commits_only_finished_stages(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    with pytest.raises(RuntimeError), cache.building("aa", {"name": "x"}) as tmp:
        (tmp / "half").write_text("")
        raise RuntimeError("stage failed")
    assert cache.lookup("aa") is None and not (tmp_path / "stages" / "aa.tmp").exists()
    with cache.building("aa", {"name": "x"}) as tmp:
        (tmp / "out").write_text("1")
    hit = cache.lookup("aa")
    assert hit is not None and (hit / "out").read_text() == "1"


def test_tree_digest_sees_content_mode_and_links(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    d0 = tree_digest(tmp_path)
    (tmp_path / "a").chmod(0o600)
    d1 = tree_digest(tmp_path)
    (tmp_path / "a").write_text("2")
    d2 = tree_digest(tmp_path)
    (tmp_path / "l").symlink_to("a")
    d3 = tree_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_text("")
    assert len({d0, d1, d2, d3}) == 4 and tree_digest(tmp_path) == d3


def test_clamp_mtimes(tmp_path: Path) -> None:
    (tmp_path / "new").write_text("")
    (tmp_path / "link").symlink_to("new")
    assert clamp_mtimes(tmp_path, 1000) == 2
    assert (tmp_path / "new").stat().st_mtime == 1000
    assert (tmp_path / "link").lstat().st_mtime == 1000


def test_remove_tree_refuses_to_delete_through_a_mount(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import image.cache as cache_mod

    (tmp_path / "stage" / "tree" / "dev").mkdir(parents=True)
    (tmp_path / "stage" / "tree" / "dev" / "null").write_text("host device stand-in")
    mounted = [str(tmp_path / "stage" / "tree" / "dev")]
    unmounted: list[str] = []
    monkeypatch.setattr(cache_mod, "mounts_below", lambda p: [m for m in mounted if m not in unmounted])
    monkeypatch.setattr(cache_mod, "run", lambda argv, **kw: unmounted.append(argv[-1]))
    cache_mod.remove_tree(tmp_path / "stage")
    assert unmounted == mounted and not (tmp_path / "stage").exists()
    (tmp_path / "stage2").mkdir()
    monkeypatch.setattr(cache_mod, "mounts_below", lambda p: [str(p)])  # umount did not take
    with pytest.raises(cache_mod.HciError, match="still mounted"):
        cache_mod.remove_tree(tmp_path / "stage2")
    assert (tmp_path / "stage2").exists()


def test_stage_lock_serializes_builds_sharing_a_cache(tmp_path: Path) -> None:
    import threading

    cache = StageCache(tmp_path)
    order: list[str] = []
    holding = threading.Event()

    def other_build() -> None:
        with cache.locked("bb") as waited:
            order.append(f"other waited={waited}")

    with cache.locked("bb") as waited:
        assert waited is False
        t = threading.Thread(target=other_build)
        t.start()
        holding.wait(0.3)  # give the other build time to block on the lock
        order.append("first done")
    t.join(5)
    assert order == ["first done", "other waited=True"]


def test_prune_keeps_current_build_and_most_recent(tmp_path: Path) -> None:
    import os

    cache = StageCache(tmp_path)
    for i, sid in enumerate(["old1", "old2", "recent", "cur1", "cur2"]):
        with cache.building(sid, {"name": sid}):
            pass
        os.utime(cache.path(sid), (1000 + i, 1000 + i))
    os.utime(cache.path("cur1"), (1, 1))  # current build's entries are kept however old
    removed = cache.prune(keep={"cur1", "cur2"}, max_entries=3)
    assert sorted(removed) == ["old1", "old2"]
    assert {p.name for p in (tmp_path / "stages").iterdir() if p.is_dir()} == {"recent", "cur1", "cur2"}


def test_stage_code_is_part_of_the_stage_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing a stage's implementation, or a helper every stage runs through, changes the id the
    build looks its output up by, like a changed option does."""
    import importlib.util

    import image.pipeline as pipeline
    from image.stages.base import Stage

    def load(text: str, name: str) -> Stage:
        (tmp_path / name).mkdir()
        src = tmp_path / name / "stage.py"
        src.write_text(text)
        spec = importlib.util.spec_from_file_location(f"hcios_test_{name}", src)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return Stage("s", mod.run, options={"o": 1})

    helper = tmp_path / "helper.py"
    helper.write_text("X = 1\n")
    monkeypatch.setattr(pipeline, "SHARED_STAGE_CODE", (str(helper),))  # absolute: replaces image/...
    one = load("def run(ctx, base, out):\n    pass\n", "v1")
    same = load("def run(ctx, base, out):\n    pass\n", "v1b")
    two = load("def run(ctx, base, out):\n    print('changed')\n", "v2")
    key = pipeline.stage_key(one, "base")
    assert pipeline.stage_key(same, "base") == key
    assert pipeline.stage_key(two, "base") != key
    assert pipeline.stage_key(one, "other-base") != key
    helper.write_text("X = 2\n")
    assert pipeline.stage_key(one, "base") != key
