"""Chroot with /proc, /sys and /dev bound in, undone in reverse order on exit."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from hcicore.command import run


@contextmanager
def _mount(argv: list[str], target: Path) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    run(argv + [str(target)])
    try:
        yield
    finally:
        run(["umount", "--lazy", str(target)])


@contextmanager
def chroot_mounts(root: Path) -> Iterator[Path]:
    with ExitStack() as stack:
        stack.enter_context(_mount(["mount", "-t", "proc", "proc"], root / "proc"))
        stack.enter_context(_mount(["mount", "--rbind", "/sys"], root / "sys"))
        stack.enter_context(_mount(["mount", "--make-rslave", "--rbind", "/dev"], root / "dev"))
        stack.enter_context(_mount(["mount", "-t", "tmpfs", "tmpfs"], root / "run"))
        yield root


def chroot_run(root: Path, argv: list[str], **kw):  # type: ignore[no-untyped-def]
    return run(["chroot", str(root), *argv], **kw)
