"""The agent's local API: one JSON request per connection on a unix socket (mode 0600, root),
one JSON reply. Requests are checked here (names, sizes, NQNs: exit 2 with the field named)
before the engine sees them; one lock serializes the engine's operations.

request ``{"op": "volume.create", "args": {"name": "db", "size": "10G"}}``
reply   ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "...", "exit_code": 2}``
"""
from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hcicore.errors import HciError, Problem, ValidationError

from .backend import Backend
from .model import check_name, check_nqn, parse_size

DEFAULT_SOCKET = Path("/run/hcios/storage.sock")
MAX_REQUEST = 64 * 1024


def _hosts(args: dict[str, Any]) -> list[str]:
    hosts = args.get("hosts") or []
    if not isinstance(hosts, list):
        raise ValidationError([Problem("hosts", "is not a list", "give a list of host NQNs")])
    return [check_nqn(f"hosts[{i}]", h) for i, h in enumerate(hosts)]


def operations(b: Backend) -> dict[str, Callable[[dict[str, Any]], Any]]:
    def dicts(items: list[Any]) -> list[dict[str, Any]]:
        return [i.to_dict() for i in items]

    def delete(kind: str) -> Callable[[dict[str, Any]], None]:
        return lambda a: b.delete(check_name("name", a["name"]), kind)

    return {
        "volume.list": lambda a: dicts([v for v in b.volumes() if v.kind != "snapshot"]),
        "volume.create": lambda a: b.create_volume(check_name("name", a["name"]), parse_size(a["size"])).to_dict(),
        "volume.delete": delete("volume"),
        "volume.clone": lambda a: b.clone(check_name("snapshot", a["snapshot"]), check_name("name", a["name"])).to_dict(),
        "snapshot.list": lambda a: dicts([v for v in b.volumes() if v.kind == "snapshot"]),
        "snapshot.create": lambda a: b.snapshot(check_name("volume", a["volume"]), check_name("name", a["name"])).to_dict(),
        "snapshot.delete": delete("snapshot"),
        "export.list": lambda a: dicts(b.exports()),
        "export.add": lambda a: b.export(check_name("volume", a["volume"]), _hosts(a)).to_dict(),
        "export.remove": lambda a: b.unexport(check_name("volume", a["volume"])),
        "export.allow": lambda a: b.allow(check_name("volume", a["volume"]), check_nqn("host", a["host"])).to_dict(),
        "export.deny": lambda a: b.deny(check_name("volume", a["volume"]), check_nqn("host", a["host"])).to_dict(),
    }


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        raw = self.rfile.readline(MAX_REQUEST)
        try:
            req = json.loads(raw)
            op = self.server.ops[req["op"]]
            if not isinstance(req.get("args") or {}, dict):
                raise TypeError("args")
        except (ValueError, KeyError, TypeError):
            reply: dict[str, Any] = {"ok": False, "error": "bad request: want {\"op\": ..., \"args\": {...}}",
                                     "exit_code": 2}
        else:
            try:
                with self.server.lock:
                    reply = {"ok": True, "result": op(req.get("args") or {})}
            except KeyError as err:
                reply = {"ok": False, "error": f"{req['op']}: missing argument {err}", "exit_code": 2}
            except HciError as err:
                reply = {"ok": False, "error": str(err), "exit_code": err.exit_code}
        self.wfile.write(json.dumps(reply).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, ops: dict[str, Callable[[dict[str, Any]], Any]],
                 activated: socket.socket | None = None):
        self.ops = ops
        self.lock = threading.Lock()
        if activated is not None:  # systemd made and bound it (hci-storage.socket, 0600)
            super().__init__(str(path), _Handler, bind_and_activate=False)
            self.socket.close()
            self.socket = activated
            return
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if path.is_socket():
            path.unlink()  # a stale socket of an agent that is gone
        old = os.umask(0o177)
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)


def serve(backend: Backend, path: Path = DEFAULT_SOCKET, activated: socket.socket | None = None) -> _Server:
    """Bind the API socket (0600), or take the one systemd passed; the caller runs ``serve_forever``."""
    return _Server(path, operations(backend), activated)


class ApiError(HciError):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def request(op: str, args: dict[str, Any] | None = None, path: Path = DEFAULT_SOCKET, timeout: float = 120) -> Any:
    """One call to the agent; its errors come back as :class:`ApiError` with the agent's exit code."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as err:
            raise ApiError(f"the storage agent does not answer on {path} ({err.strerror}): "
                           "is hci-storage-agent running?", 1) from None
        sock.sendall(json.dumps({"op": op, "args": args or {}}).encode() + b"\n")
        with sock.makefile("rb") as fh:
            reply = json.loads(fh.readline() or b"{}")
    if not reply.get("ok"):
        raise ApiError(reply.get("error", "no reply from the storage agent"), int(reply.get("exit_code", 1)))
    return reply.get("result")
