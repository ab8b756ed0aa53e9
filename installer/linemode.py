"""Line-mode dialog: the wizard as plain prompts on stdin/stdout.

Works on a serial console, TERM=dumb or an unknown terminal: no cursor movement, no colour, lines
under 80 columns. Enter takes the [default]; ``<`` goes back one question; secrets are read
without echo when stdin is a terminal.
"""
from __future__ import annotations

import getpass
import sys
import textwrap
from typing import TextIO

from hcicore.errors import HciError

from .answers import AnswerError
from .questions import Question
from .wizard import Wizard

BACK = "<"
WIDTH = 78


class LineDialog:
    def __init__(self, wizard: Wizard, *, stdin: TextIO | None = None,
                 stdout: TextIO | None = None):
        self.w = wizard
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout

    # -- i/o -----------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        for para in text.splitlines() or [""]:
            self.out.write((textwrap.fill(para, WIDTH, subsequent_indent="  ") or "") + "\n")
        self.out.flush()

    def read(self, prompt: str) -> str:
        self.out.write(prompt)
        self.out.flush()
        line = self.stdin.readline()
        if not line:
            raise HciError("input ended before the installer was finished; nothing written")
        return line.rstrip("\r\n")

    def read_secret(self, prompt: str) -> str:
        if self.stdin.isatty():
            try:
                return getpass.getpass(prompt, stream=self.out)
            except EOFError as exc:
                raise HciError("input ended while reading a password") from exc
        return self.read(prompt)

    # -- one question --------------------------------------------------------------------------
    def ask(self, q: Question) -> str | tuple[str, str]:
        step = len(self.w.order) + 1
        self.say()
        self.say(f"[{step}] {q.prompt}")
        detail = q.detail(self.w)
        if detail:
            self.say(detail)
        default = q.default(self.w)
        shown = f" [{default}]" if default else ""
        if q.kind == "choice":
            for i, c in enumerate(q.choices(self.w), 1):
                self.say(f"  {i}) {c.label}")
            return self.read(f"choice{shown}: ")
        if q.kind == "confirm":
            return self.read("yes/no: ")
        if q.kind == "summary":
            self.say("Summary:")
            for line in self.w.summary_lines():
                self.say(f"  {line}")
            for line in self.w.warnings():
                self.say(f"  WARNING {line}")
            return self.read("yes to go on, < to go back: ")
        if q.kind == "secret":
            first = self.read_secret("password: ")
            if first == BACK:
                return BACK
            return first, self.read_secret("again: ")
        if q.kind == "lines":
            lines: list[str] = []
            while True:
                line = self.read("key> " if not lines else "more> ")
                if line == BACK and not lines:
                    return BACK
                if not line.strip():
                    return "\n".join(lines)
                lines.append(line)
        return self.read(f"{shown.strip()} > " if default else "> ")

    def run(self) -> Wizard:
        """Ask until the wizard is done; returns it (its config is ready to write)."""
        self.say("hcios installer (line mode). Enter takes the [default], '<' goes back,")
        self.say("Ctrl-C quits without writing anything.")
        while (q := self.w.current()) is not None:
            raw = self.ask(q)
            if raw == BACK:
                self.w.back()
                continue
            try:
                self.w.answer(raw)
            except AnswerError as exc:
                self.say(f"error: {exc}")
        return self.w
