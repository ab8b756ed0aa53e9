"""What the storage agent deals in, and the checks on user input (exit 2, the field named)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from hcicore.errors import HciError, Problem, ValidationError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# NVMe base spec 4.5: nqn.yyyy-mm.<reverse domain>[:<anything>], at most 223 bytes; or the UUID form
NQN_RE = re.compile(r"^nqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[\x21-\x7e]+)?$")
UUID_NQN_RE = re.compile(r"^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
SIZE_RE = re.compile(r"^(\d+)([KMGT]i?B?|B)?$", re.IGNORECASE)
UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MiB = 1 << 20


class NotFound(HciError):
    exit_code = 2


class Conflict(HciError):
    exit_code = 2


class EngineError(HciError):
    """The engine (SPDK target, LVM, nvmet) refused or failed: its own message, no secrets."""


def check_name(field_path: str, name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError([Problem(field_path, f"{name!r} is not a valid name",
                                       "use 1-63 lower-case letters, digits and '-', starting with a letter or digit")])
    return name


def parse_size(text: object, field_path: str = "size") -> int:
    """``10G``, ``512M``, ``1GiB`` or a byte count -> bytes, a positive multiple of 1 MiB."""
    m = SIZE_RE.match(str(text).strip()) if isinstance(text, (str, int)) and not isinstance(text, bool) else None
    if not m:
        raise ValidationError([Problem(field_path, f"{text!r} is not a size", "write it like 10G, 512M or 1073741824")])
    value = int(m.group(1)) * UNITS[(m.group(2) or "")[:1].lower()]
    if value <= 0 or value % MiB:
        raise ValidationError([Problem(field_path, f"{text} is not a positive whole number of MiB",
                                       "use a size such as 64M or 10G")])
    return value


def check_nqn(field_path: str, nqn: object) -> str:
    if not isinstance(nqn, str) or len(nqn.encode()) > 223 or not NQN_RE.match(nqn) or (
            ":uuid:" in nqn and nqn.startswith("nqn.2014-08.org.nvmexpress:") and not UUID_NQN_RE.match(nqn)):
        raise ValidationError([Problem(field_path, f"{nqn!r} is not an NVMe qualified name",
                                       "use the host's /etc/nvme/hostnqn, e.g. nqn.2014-08.org.nvmexpress:uuid:<uuid>")])
    return nqn


@dataclass
class Volume:
    name: str
    size: int
    kind: str  # volume | snapshot | clone
    parent: str | None = None  # a snapshot's volume, a clone's snapshot
    allocated: int | None = None  # bytes actually used (thin), when the engine says

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Export:
    volume: str
    nqn: str
    address: str
    port: int
    hosts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
