"""The interactive installer's questions, their order, and the config they produce.

Both front ends (the textual TUI and the serial line mode) drive one :class:`Wizard`: they show
``wizard.current()``, pass the raw answer to ``wizard.answer()`` (which checks it and raises
AnswerError with a message to show), and call ``wizard.back()`` to step back. So both produce the
same config for the same answers.

Raw answers are text, except ``secret`` questions, which take the pair ``(first, again)``.
A password is hashed the moment it is accepted; the plain text is never stored.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hcicore.config import dump_config, hash_password, load_config
from hcicore.errors import ValidationError
from hcicore.files import write_private
from hcicore.redact import redact_url
from hcicore.layout import OEM_NODE_CONFIG

from .answers import AnswerError
from .hostinfo import HostInfo
from .preflight import ANSWER_CHECKS, Check, failed, run_checks
from .questions import Choice, Question, build_questions, pick

__all__ = ["AnswerError", "Choice", "Question", "Wizard", "save", "validate", "write_config"]
SOURCE = "interactive installer"


def validate(cfg: dict[str, Any]) -> None:
    """The config loader's checks (schema and semantic); raises ValidationError."""
    load_config(copy.deepcopy(cfg), source=SOURCE)


class Wizard:
    """Question state: answers so far (parsed), and the next question to ask."""

    def __init__(self, host: HostInfo, *, hasher: Callable[[str], str] = hash_password,
                 validator: Callable[[dict[str, Any]], None] | None = validate):
        self.host = host
        self.hasher = hasher
        self.validator = validator
        self.answers: dict[str, Any] = {}
        self.order: list[str] = []
        self.questions = build_questions()
        self._checks: list[Check] | None = None
        self.generated_token: str | None = None  # a token the wizard made: shown on the summary

    # -- state ---------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        return self.answers.get(key)

    def current(self) -> Question | None:
        for q in self.questions:
            if q.key not in self.answers and q.applies(self):
                return q
        return None

    @property
    def done(self) -> bool:
        return self.current() is None

    def answer(self, raw: Any) -> Any:
        q = self.current()
        if q is None:
            raise AnswerError("all questions are answered")
        if q.kind in ("choice", "text") and not str(raw).strip():
            raw = q.default(self)
        if q.kind == "choice":
            raw = pick(q, raw, self)
        value = q.parse(raw, self)
        self.answers[q.key] = value
        self.order.append(q.key)
        self._checks = None
        if q.in_config:
            self._check_field(q.key)
        if q.key in ("install.wipe", "install.data_wipe") and value is False:
            self.back()  # no consent: ask for the disk again
            self.back()
        self._drop_stale()
        return value

    def _check_field(self, key: str) -> None:
        """Run the config loader on the answers so far and reject the new answer if the loader
        finds a problem in its field (so the wizard and ``hci config validate`` agree)."""
        if self.validator is None:
            return
        try:
            self.validator(self.config())
        except ValidationError as exc:
            mine = [p for p in exc.problems if p.path == key or p.path.startswith((key + ".", key + "["))]
            if mine:
                self.back()
                raise AnswerError("; ".join(
                    f"{p.message} ({p.fix})" if p.fix else p.message for p in mine)) from exc

    def back(self) -> None:
        """Forget the last answer, so its question is asked again."""
        if self.order:
            self.answers.pop(self.order.pop(), None)
            self._checks = None

    def reopen_summary(self) -> None:
        """Back to the summary with every other answer kept (after a failed install)."""
        while self.order and self.order[-1] in ("confirm", "copy_path"):
            self.back()

    def _drop_stale(self) -> None:
        """Drop answers whose question no longer applies (e.g. after switching to dhcp)."""
        for q in self.questions:
            if q.key in self.answers and not q.applies(self):
                del self.answers[q.key]
                self.order.remove(q.key)

    # -- results -------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The config dict (ARCHITECTURE.md section 5) from the answers so far; unset keys left out."""
        cfg: dict[str, Any] = {"schema_version": 1}
        for q in self.questions:
            if not q.in_config or q.key not in self.answers:
                continue
            value = self.answers[q.key]
            if value is None or value == [] or value == "":
                continue
            if q.key == "node.network.interfaces":
                value = [{"name": value}]
            _put(cfg, q.key, value)
        _put(cfg, "install.automatic", False)
        if self.get("install.mode") == "create":
            _put(cfg, "install.role", "server")
        if "install.wipe" not in self.answers and self.get("install.device"):
            _put(cfg, "install.wipe", False)
        return _ordered(cfg, KEY_ORDER)

    def checks(self) -> list[Check]:
        if self._checks is None:
            self._checks = run_checks(self.config(), self.host)
        return self._checks

    def summary_lines(self) -> list[str]:
        """What will be installed, for the summary screen; secrets are not shown."""
        lines = []
        for q in self.questions:
            if not q.in_config or q.key not in self.answers:
                continue
            value = self.answers[q.key]
            if q.key == "node.password_hash":
                shown = "set (sha512-crypt hash)" if value else "none (console login off)"
            elif q.key == "cluster.token":
                shown = (f"{value} (generated: note it now, it is not shown again; the node keeps it "
                         f"in hci-oem:/{OEM_NODE_CONFIG}, readable by root only)"
                         if value and value == self.generated_token else "set (typed, not shown)")
            elif isinstance(value, list):
                shown = f"{len(value)} key(s)" if q.key.endswith("keys") else ", ".join(value) or "-"
            elif value is None:
                shown = "-"
            elif isinstance(value, bool):
                shown = "yes" if value else "no"
            elif q.key in ("node.proxy.http", "node.proxy.https"):
                shown = redact_url(str(value))  # user:password@ stays off the screen
            else:
                shown = str(value)
            lines.append(f"{q.key}: {shown}")
        return lines

    def warnings(self) -> list[str]:
        """Failed checks that do not stop the install (shown on the summary)."""
        return [f"{c.severity}: {c.name}: {c.message}" for c in failed(self.checks()) if not _blocks(c)]

    def blocking(self) -> list[str]:
        """Failed hard checks (disk too small, disk not found, ...): the summary's "yes" is refused
        until they are fixed, and each says how."""
        return [f"{c.path or c.name}: {c.message}" + (f" ({c.fix})" if c.fix else "")
                for c in failed(self.checks()) if _blocks(c)]

    def write(self, out_path: Path) -> Path:
        return write_config(self.config(), out_path)


def _blocks(check: Check) -> bool:
    return check.severity == "fail" and check.name in ANSWER_CHECKS


KEY_ORDER = [
    "schema_version", "install", "node", "cluster",
    "mode", "role", "device", "data_device", "wipe", "data_wipe", "automatic",
    "hostname", "password_hash", "ssh_authorized_keys", "network", "ntp", "proxy",
    "interfaces", "method", "address", "gateway", "dns", "vlan_id",
    "server_url", "token", "vip",
]


def _ordered(value: Any, order: list[str]) -> Any:
    """Dicts with keys in a readable order (those not listed keep theirs, after the listed)."""
    if not isinstance(value, dict):
        return value
    rank = {k: i for i, k in enumerate(order)}
    keys = sorted(value, key=lambda k: rank.get(k, len(rank)))
    return {k: _ordered(value[k], order) for k in keys}


def _put(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = cfg
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def write_config(cfg: dict[str, Any], out_path: Path) -> Path:
    """Validate ``cfg`` with the config loader and write it as the loader's YAML, mode 0600,
    atomically (temp file in the same directory, renamed). Raises ValidationError if invalid."""
    text = "# hcios node config, written by the interactive installer\n" + dump_config(
        load_config(copy.deepcopy(cfg), source=SOURCE))
    return write_private(Path(out_path), text)


def save(wizard: Wizard, out_path: Path) -> Path:
    """Write the finished wizard's config to ``out_path`` and, if asked, the copy for PXE reuse
    (the same file: a PXE boot passes it with ``hci.install.config_url=``)."""
    cfg = wizard.config()
    out_path = write_config(cfg, Path(out_path))
    copy_path = wizard.get("copy_path")
    if copy_path and Path(copy_path).resolve() != out_path.resolve():
        write_config(cfg, Path(copy_path))
    return out_path
