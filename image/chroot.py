"""Chroot with /proc, /sys, /dev and /run set up, undone in reverse order on exit."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from hcicore.command import Result, run
from hcicore.errors import HciError

log = logging.getLogger("hcios.chroot")


@contextmanager
def _mount(argv: list[str], target: Path) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    run(argv + [str(target)])
    try:
        yield
    except BaseException:
        # The block's error is the one to report; a failing unmount is logged beside it.
        try:
            run(["umount", "--recursive", "--lazy", str(target)])
        except HciError as exc:
            log.error("could not unmount %s after a failure: %s", target, exc)
        raise
    run(["umount", "--recursive", "--lazy", str(target)])


@contextmanager
def chroot_mounts(root: Path) -> Iterator[Path]:
    # rslave: unmounting the chroot's recursive binds must never propagate to the host's mounts.
    with ExitStack() as stack:
        stack.enter_context(_mount(["mount", "-t", "proc", "proc"], root / "proc"))
        stack.enter_context(_mount(["mount", "--make-rslave", "--rbind", "/sys"], root / "sys"))
        stack.enter_context(_mount(["mount", "--make-rslave", "--rbind", "/dev"], root / "dev"))
        stack.enter_context(_mount(["mount", "-t", "tmpfs", "tmpfs"], root / "run"))
        yield root


def chroot_run(root: Path, argv: list[str], **kw) -> Result:  # type: ignore[no-untyped-def]
    return run(["chroot", str(root), *argv], **kw)
