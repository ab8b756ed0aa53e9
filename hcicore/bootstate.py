"""The A/B boot state that grub and the node services share (docs/upgrade.md has the protocol).

Where it lives: ``hcios/`` on ``hci-oem`` holds

* ``bootstate.0`` and ``bootstate.1``: two copies of the state, each a 1 KiB grub environment
  block (the format of ``grub-editenv``) with five variables::

      hci_seq=12        sequence number: the node adds one on every write
      hci_good=a        the known-good slot (the one to boot and fall back to)
      hci_try=b         the slot on trial after an upgrade, or empty
      hci_tries=2       boots left for that trial; grub counts down *before* booting it
      hci_check=12:a:b:2   the four values again: a copy is valid only when they agree

  GRUB has no hash function, so the check is a redundant copy of the fields, which grub can
  compare; it catches any torn or garbled block (the whole state fits in the first 512-byte
  sector, and a sector write is atomic on every disk we target).
* ``slot-a.good`` / ``slot-b.good``: empty marker files. A marker exists while its slot holds an
  image that booted healthy; it is removed before that slot is overwritten. grub uses them only
  when neither copy is valid, so even then it never boots a slot that is not known good.

Readers (grub.cfg and :func:`read_state`) take the valid copy with the highest ``hci_seq``; on a
tie, the one with fewer tries (grub writes its countdown into both copies, one after the other,
keeping the sequence number). Writers here write a whole new state with ``seq + 1`` to the older
copy first and then to the other, each by temp file, fsync and rename, then checkpoint the
filesystem's journal so grub (which does not replay ext4 journals) reads what Linux wrote.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .files import fsync_dir, write_atomic
from .layout import OEM_DIR

log = logging.getLogger("hcios.bootstate")

SLOTS = ("a", "b")
COPIES = ("bootstate.0", "bootstate.1")
ENV_SIZE = 1024  # grub's env block is exactly 1 KiB; save_env rewrites it in place
ENV_SIGNATURE = b"# GRUB Environment Block\n"
MAX_TRIES = 5  # the length of grub.cfg's countdown chain
DEFAULT_TRIES = 3
_SEQ = re.compile(r"^[0-9]{1,18}$")

# ext4's EXT4_IOC_CHECKPOINT (_IOW('f', 43, __u32), Linux 5.13+): write the journal back to
# its home locations, so a reader that ignores the journal (grub) sees the current files.
EXT4_IOC_CHECKPOINT = 0x4004662B

Hook = Callable[[str], None]  # called with a named point between writes (tests pause there)


def other(slot: str) -> str:
    if slot not in SLOTS:
        raise ValueError(f"not a slot: {slot!r}")
    return "b" if slot == "a" else "a"


@dataclass(frozen=True)
class BootState:
    seq: int
    good: str
    trial: str | None = None  # the slot on trial, if any
    tries: int = 0  # boots left for the trial

    def __post_init__(self) -> None:
        if self.good not in SLOTS:
            raise ValueError(f"good slot must be a or b, got {self.good!r}")
        if self.trial is not None and (self.trial not in SLOTS or self.trial == self.good):
            raise ValueError(f"trial slot must be the other slot, got {self.trial!r}")
        if not 0 <= self.tries <= MAX_TRIES or not 0 <= self.seq < 10**18:
            raise ValueError(f"tries {self.tries} or seq {self.seq} out of range")

    @property
    def check(self) -> str:
        return f"{self.seq}:{self.good}:{self.trial or ''}:{self.tries}"

    @property
    def trial_pending(self) -> bool:
        """A trial grub will still boot (tries left)."""
        return self.trial is not None and self.tries > 0

    def env(self) -> dict[str, str]:
        return {"hci_seq": str(self.seq), "hci_good": self.good, "hci_try": self.trial or "",
                "hci_tries": str(self.tries), "hci_check": self.check}

    def next(self, **changes: object) -> BootState:
        """The state to write next: ``changes`` applied and the sequence number one higher."""
        return replace(self, seq=self.seq + 1, **changes)  # type: ignore[arg-type]


def encode_env(values: dict[str, str]) -> bytes:
    """A grub environment block: signature, ``key=value`` lines, '#'-padded to exactly 1 KiB."""
    data = ENV_SIGNATURE + "".join(f"{k}={v}\n" for k, v in values.items()).encode()
    if len(data) > ENV_SIZE:
        raise ValueError("grub environment too large")
    return data + b"#" * (ENV_SIZE - len(data))


def parse_env(data: bytes) -> dict[str, str] | None:
    """The variables of a grub environment block, or None when it is not one."""
    if len(data) != ENV_SIZE or not data.startswith(ENV_SIGNATURE):
        return None
    values: dict[str, str] = {}
    for line in data[len(ENV_SIGNATURE):].split(b"\n"):
        if not line or line.startswith(b"#"):
            continue
        key, sep, value = line.partition(b"=")
        if not sep:
            continue  # like grub's env block parser: a line it cannot read is passed over
        try:
            values[key.decode("ascii")] = value.decode("ascii")
        except UnicodeDecodeError:
            continue
    return values


def encode(state: BootState) -> bytes:
    return encode_env(state.env())


def decode(data: bytes) -> BootState | None:
    """The state in one copy, or None when the copy is not valid (the same rules as grub.cfg)."""
    env = parse_env(data)
    if env is None:
        return None
    seq, good, trial, tries = (env.get(k) for k in ("hci_seq", "hci_good", "hci_try", "hci_tries"))
    if (seq is None or not _SEQ.match(seq) or good not in SLOTS or trial not in ("", *SLOTS)
            or tries is None or not re.fullmatch(f"[0-{MAX_TRIES}]", tries)):
        return None
    if env.get("hci_check") != f"{seq}:{good}:{trial}:{tries}":
        return None
    try:
        return BootState(int(seq), good, trial or None, int(tries))
    except ValueError:  # e.g. a trial of the good slot itself
        return None


def choose(copies: list[BootState | None]) -> tuple[BootState | None, int | None]:
    """The copy readers use: valid, highest seq, then fewest tries, then the first."""
    best: tuple[BootState | None, int | None] = (None, None)
    for index, state in enumerate(copies):
        if state is None:
            continue
        cur = best[0]
        if cur is None or state.seq > cur.seq or (state.seq == cur.seq and state.tries < cur.tries):
            best = (state, index)
    return best


@dataclass(frozen=True)
class Reading:
    """What is on hci-oem right now."""

    state: BootState | None  # None: no valid copy
    index: int | None  # which copy it came from
    copies: tuple[BootState | None, ...]
    markers: tuple[str, ...]  # slots with a good marker

    @property
    def effective(self) -> BootState:
        """What grub boots from: the chosen copy, or (no valid copy) the first slot with a good
        marker, or slot a when there is none at all."""
        if self.state is not None:
            return self.state
        good = self.markers[0] if self.markers else "a"
        return BootState(0, good)

    @property
    def damaged(self) -> list[int]:
        """Copies that are invalid or older than the chosen one (to rewrite)."""
        return [i for i, c in enumerate(self.copies) if c != self.state]


class BootStateStore:
    """The boot state files under ``<oem_root>/hcios``."""

    def __init__(self, oem_root: Path, *, hook: Hook | None = None):
        self.dir = oem_root / OEM_DIR
        self.hook = hook or (lambda point: None)

    def marker(self, slot: str) -> Path:
        other(slot)
        return self.dir / f"slot-{slot}.good"

    def read(self) -> Reading:
        copies: list[BootState | None] = []
        for name in COPIES:
            try:
                copies.append(decode((self.dir / name).read_bytes()))
            except FileNotFoundError:
                copies.append(None)
        state, index = choose(copies)
        markers = tuple(s for s in SLOTS if self.marker(s).exists())
        return Reading(state, index, tuple(copies), markers)

    def write(self, state: BootState, *, after: Reading | None = None) -> BootState:
        """Write ``state`` to both copies: first the one readers do not use now, then the other.
        Returns ``state``. A crash between the two leaves the new state in one valid copy with the
        higher sequence number, which every reader takes."""
        reading = after or self.read()
        first = 1 if reading.index == 0 else 0
        block = encode(state)
        for number, index in enumerate((first, 1 - first), start=1):
            write_atomic(self.dir / COPIES[index], block, mode=0o644, dir_mode=0o700)
            checkpoint(self.dir)
            self.hook(f"bootstate-copy-{number}")
        log.info("boot state %s written", state.check)
        return state

    def set_marker(self, slot: str, good: bool) -> None:
        path = self.marker(slot)
        if good:
            write_atomic(path, b"", mode=0o644, dir_mode=0o700)
        else:
            try:
                path.unlink()
            except FileNotFoundError:
                return
            fsync_dir(self.dir)
        checkpoint(self.dir)

    def initialize(self, good: str = "a") -> BootState:
        """A fresh install: ``good`` marked good, no trial, both copies written."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.set_marker(good, True)
        return self.write(BootState(1, good), after=Reading(None, None, (None, None), ()))

    def repair(self) -> list[int]:
        """Rewrite copies that are invalid or behind the chosen one (same state, same seq).
        Returns the indexes rewritten; nothing happens when no copy is valid."""
        reading = self.read()
        if reading.state is None:
            return []
        fixed = reading.damaged
        for index in fixed:
            write_atomic(self.dir / COPIES[index], encode(reading.state), mode=0o644, dir_mode=0o700)
            checkpoint(self.dir)
        return fixed


def checkpoint(path: Path) -> bool:
    """Checkpoint the ext4 journal of the filesystem holding ``path``; False where the
    filesystem has no such ioctl (tmpfs in tests, ext4 on kernels before 5.13: then
    ``syncfs`` is the best there is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.ioctl(fd, EXT4_IOC_CHECKPOINT, b"\0\0\0\0")
            return True
        except OSError as exc:
            if exc.errno not in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM, errno.ENODEV):
                raise
            os.sync()
            return False
    finally:
        os.close(fd)
