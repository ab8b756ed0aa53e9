"""Progress reporting for long work (build stages, install steps, upgrades).

Humans get one readable line per event on stderr; automation gets JSON lines
(``--json``) on stdout, one object per event, with a stable ``event`` key.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from rich.console import Console


class Progress:
    def __init__(self, *, as_json: bool = False, stream: TextIO | None = None):
        self.as_json = as_json
        self.stream = stream or (sys.stdout if as_json else sys.stderr)
        self._console = None if as_json else Console(file=self.stream, highlight=False)
        self._started: dict[str, float] = {}

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        if self.as_json:
            self.stream.write(json.dumps(record, sort_keys=True) + "\n")
            self.stream.flush()
            return
        assert self._console is not None
        self._console.print(self._human(event, fields))

    @staticmethod
    def _human(event: str, f: dict[str, Any]) -> str:
        name = f.get("name", "")
        if event == "step":
            status = f.get("status")
            if status == "start":
                return f"[bold]==>[/bold] {name} [dim]{f.get('detail', '')}[/dim]"
            if status == "cached":
                return f"[green] ok[/green] {name} [dim](cached {f.get('id', '')[:12]})[/dim]"
            if status == "done":
                return f"[green] ok[/green] {name} [dim]({f.get('seconds', 0):.1f}s)[/dim]"
            if status == "failed":
                return f"[red]FAIL[/red] {name}: {f.get('error', '')}"
        if event == "progress":
            total = f.get("total") or 0
            return f"    {name}: {f.get('percent', 0):5.1f}% ({f.get('bytes', 0) >> 20} of {total >> 20} MiB)"
        if event == "warning":
            return f"[yellow]warning:[/yellow] {f.get('message', '')}"
        return f"{event}: {f.get('message', name)}"

    def start(self, name: str, **fields: Any) -> None:
        self._started[name] = time.monotonic()
        self.emit("step", name=name, status="start", **fields)

    def cached(self, name: str, **fields: Any) -> None:
        self.emit("step", name=name, status="cached", **fields)

    def done(self, name: str, **fields: Any) -> None:
        seconds = time.monotonic() - self._started.pop(name, time.monotonic())
        self.emit("step", name=name, status="done", seconds=round(seconds, 2), **fields)

    def failed(self, name: str, error: str, **fields: Any) -> None:
        self._started.pop(name, None)
        self.emit("step", name=name, status="failed", error=error, **fields)

    def warning(self, message: str) -> None:
        self.emit("warning", message=message)

    def info(self, message: str, **fields: Any) -> None:
        self.emit("info", message=message, **fields)
