"""The full-screen installer (textual): one screen per wizard question, then the summary.

Fits 80x24: a title line, the question, its detail, the answer widget, one error line, and the
key line. Enter answers (in the key box: Ctrl+N), Escape goes back, Ctrl+Q quits without
writing anything. The answers go through the same :class:`~installer.wizard.Wizard` as the line
mode, so both give the same config.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from .answers import AnswerError
from .questions import Question
from .wizard import Wizard, save


class QuestionScreen(Screen[None]):
    """Asks one question; on a good answer tells the app to move on."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "next", "Next"),
    ]
    DEFAULT_CSS = """
    QuestionScreen { layout: vertical; }
    #title { background: $primary; color: $text; height: 1; }
    #prompt { text-style: bold; margin: 1 1 0 1; }
    #detail { margin: 0 1; color: $text-muted; }
    #body { height: 1fr; margin: 0 1; }
    #body OptionList { height: auto; max-height: 100%; }
    #body TextArea { height: 1fr; }
    #summary { height: 1fr; border: round $primary; }
    #error { color: $error; margin: 0 1; height: auto; max-height: 4; }
    """

    def __init__(self, wizard: Wizard, question: Question):
        super().__init__()
        self.w = wizard
        self.q = question

    def compose(self) -> ComposeResult:
        q, w = self.q, self.w
        yield Static(Text(f" hcios installer - step {len(w.order) + 1}"), id="title")
        yield Static(Text(q.prompt), id="prompt")
        yield Static(Text(q.detail(w)), id="detail")
        with Vertical(id="body"):
            yield from self._answer_widgets()
        yield Static("", id="error")
        yield Footer()

    def _answer_widgets(self) -> ComposeResult:
        q, w = self.q, self.w
        default = q.default(w)
        if q.kind == "choice":
            opts = q.choices(w)
            yield OptionList(*[Option(Text(c.label), id=c.value) for c in opts], id="answer")
        elif q.kind in ("confirm", "summary"):
            blocked = q.kind == "summary" and bool(w.blocking())
            if q.kind == "summary":
                lines = ([f"BLOCKED {x}" for x in w.blocking()] + w.summary_lines()
                         + [f"WARNING {x}" for x in w.warnings()])
                with VerticalScroll(id="summary"):
                    yield Static(Text("\n".join(lines)))
            # a failed hard check disables "yes": go back (Escape) and fix it
            yield OptionList(Option("yes" if not blocked else "yes (blocked: go back and fix)", id="yes",
                                    disabled=blocked), Option("no", id="no"), id="answer")
        elif q.kind == "secret":
            yield Input(password=True, placeholder="password", id="answer")
            yield Input(password=True, placeholder="again", id="again")
        elif q.kind == "lines":
            yield TextArea(id="answer")
        else:
            yield Input(value=default, id="answer")

    def on_mount(self) -> None:
        widget = self.query_one("#answer")
        if isinstance(widget, OptionList):
            values = [o.id for o in widget.options]
            default = self.q.default(self.w)
            if self.q.kind == "summary" and self.w.blocking():
                default = "no"
            # no default (several disks fit, or none): nothing is preselected, Enter picks nothing
            widget.highlighted = values.index(default) if default in values else (
                None if self.q.kind == "choice" else 0)
        widget.focus()

    # -- answering -----------------------------------------------------------------------------
    def submit(self, raw: Any) -> None:
        try:
            self.w.answer(raw)
        except AnswerError as exc:
            self.query_one("#error", Static).update(Text(f"error: {exc}"))
            return
        self.app.call_later(self.app.next_question)  # type: ignore[attr-defined]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.submit(event.option.id or "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.q.kind == "secret" and event.input.id == "answer":
            self.query_one("#again", Input).focus()
            return
        self.action_next()

    def action_next(self) -> None:
        widget = self.query_one("#answer")
        if isinstance(widget, OptionList):
            if widget.highlighted is not None:
                self.submit(widget.get_option_at_index(widget.highlighted).id or "")
        elif isinstance(widget, TextArea):
            self.submit(widget.text)
        elif self.q.kind == "secret":
            first, again = self.query_one("#answer", Input), self.query_one("#again", Input)
            raw = (first.value, again.value)
            first.value = again.value = ""
            self.submit(raw)
            if self.w.current() is self.q:
                first.focus()
        else:
            self.submit(self.query_one("#answer", Input).value)

    def action_back(self) -> None:
        self.w.back()
        self.app.call_later(self.app.next_question)  # type: ignore[attr-defined]


class InstallerApp(App[bool]):
    """Runs the wizard; the app returns True when every question is answered."""

    TITLE = "hcios installer"
    BINDINGS = [Binding("ctrl+q", "quit_installer", "Quit", priority=True)]
    ENABLE_COMMAND_PALETTE = False
    # The Linux VGA console (a BMC's KVM) has no box-drawing or block glyphs in its font: the
    # default borders would be rows of squares there. TERM=linux gets plain ASCII borders.
    CSS = """
    .console-safe Input, .console-safe Input:focus, .console-safe OptionList,
    .console-safe OptionList:focus, .console-safe TextArea, .console-safe TextArea:focus,
    .console-safe #summary { border: ascii $primary; }
    """

    def __init__(self, wizard: Wizard, out_path: Path | None = None, error: str | None = None,
                 term: str | None = None):
        super().__init__()
        self.console_safe = (term if term is not None else os.environ.get("TERM", "")) == "linux"
        self.wizard = wizard
        self.out_path = out_path
        self.error = error  # why the last install stopped: shown on the first screen

    def on_mount(self) -> None:
        self.next_question()
        if self.error:
            self.notify(self.error, title="install failed", severity="error", timeout=600)

    def next_question(self) -> None:
        q = self.wizard.current()
        if q is None and self.out_path is not None:
            try:
                save(self.wizard, self.out_path)
            except OSError as exc:
                self.wizard.back()
                q = self.wizard.current()
                self.notify(f"cannot write the config: {exc}", severity="error", timeout=30)
        if q is None:
            self.exit(True)
            return
        screen = QuestionScreen(self.wizard, q)
        if self.console_safe:
            screen.add_class("console-safe")
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def action_quit_installer(self) -> None:
        self.exit(False)


def run_tui(wizard: Wizard, out_path: Path | None = None, error: str | None = None) -> bool:
    """Show the TUI until the wizard is done (True; config written to ``out_path`` if given) or
    the operator quits (False)."""
    return bool(InstallerApp(wizard, out_path, error).run())
