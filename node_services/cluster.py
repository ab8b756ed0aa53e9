"""``hci upgrade-cluster REF HOST...``: upgrade nodes one after the other over SSH (paramiko).

For nodes without a cluster (and for the lab): on each host in the order given, ``hci-upgrade
apply --no-reboot REF``, a reboot, then wait until ``hci-upgrade status --json`` shows the new
image booted and marked good. The first node that refuses, fails, rolls back or does not come
back in time stops the run, and the error names it; later nodes are not touched.
"""
from __future__ import annotations

import json
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from hcicore.errors import HciError
from hcicore.progress import Progress

SSH_ERRORS = (paramiko.SSHException, OSError, EOFError)


class NodeFailed(HciError):
    def __init__(self, host: str, message: str):
        self.host = host
        super().__init__(f"node {host}: {message}; stopped, the nodes after it were not touched")


@dataclass
class SshTarget:
    host: str
    port: int = 22
    user: str = "root"
    key: Path | None = None
    accept_new: bool = False
    timeout: float = 20.0

    @classmethod
    def parse(cls, text: str, **kw: object) -> SshTarget:
        user, _, rest = text.rpartition("@")
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        return cls(host=host or rest, port=int(port) if port else 22, user=user or "root", **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if self.port != 22 else self.host

    def run(self, command: str, *, timeout: float = 3600) -> tuple[int, str, str]:
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy() if self.accept_new else paramiko.RejectPolicy())
        try:
            client.connect(self.host, port=self.port, username=self.user,
                           key_filename=str(self.key) if self.key else None, timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout,
                           allow_agent=self.key is None, look_for_keys=self.key is None)
            _, stdout, stderr = client.exec_command(command, timeout=timeout)
            out, err = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
            return stdout.channel.recv_exit_status(), out, err
        finally:
            client.close()


@dataclass
class ClusterUpgrade:
    ref: str
    targets: list[SshTarget]
    progress: Progress
    plain_http: bool = False
    tries: int | None = None
    wait_timeout: float = 1800.0
    poll: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    done: list[str] = field(default_factory=list)

    def status(self, target: SshTarget) -> dict:
        rc, out, err = target.run("hci-upgrade status --json", timeout=120)
        if rc != 0:
            raise HciError(f"hci-upgrade status failed ({rc}): {err.strip()[-300:]}")
        return json.loads(out)

    def upgrade(self, target: SshTarget) -> str:
        name = str(target)
        argv = ["hci-upgrade", "apply", "--json", "--no-reboot", *(["--plain-http"] if self.plain_http else []),
                *([f"--tries={self.tries}"] if self.tries else []), self.ref]
        self.progress.start(f"apply on {name}", detail=self.ref)
        try:
            rc, out, err = target.run(shlex.join(argv))
        except SSH_ERRORS as exc:
            raise NodeFailed(name, f"cannot run hci-upgrade over SSH: {exc}") from exc
        result = next((json.loads(line) for line in reversed(out.splitlines()) if line.startswith('{"')
                       and '"result"' in line), None)
        if rc != 0 or result is None:
            raise NodeFailed(name, f"hci-upgrade apply exited {rc}: {(err.strip() or out.strip())[-500:]}")
        self.progress.done(f"apply on {name}", result=result["result"])
        if result["result"] == "noop" and "already runs" in result["message"]:
            return f"{name}: {result['message']}"
        sha256 = result["sha256"]
        self.progress.start(f"reboot {name}", detail=f"trying {result['version']} in slot {result['slot']}")
        try:
            target.run("systemctl reboot", timeout=30)
        except SSH_ERRORS:
            pass  # the connection may drop as the node goes down
        self.sleep(self.poll)
        why = self.wait_good(target, sha256)
        self.progress.done(f"reboot {name}", message=why)
        return f"{name}: {why}"

    def wait_good(self, target: SshTarget, sha256: str) -> str:
        name = str(target)
        deadline = time.monotonic() + self.wait_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            try:
                doc = self.status(target)
            except (*SSH_ERRORS, socket.timeout, HciError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self.sleep(self.poll)
                continue
            booted = doc["slots"][doc["booted"]]
            if doc["trial"] is None and booted.get("sha256") == sha256 and doc["good"] == doc["booted"]:
                return f"slot {doc['booted']} runs {booted.get('version')}, marked good"
            last_op = doc.get("last") or {}
            if last_op.get("result") == "rolled-back" and last_op.get("sha256") == sha256:
                raise NodeFailed(name, f"rolled back to slot {doc['good']}: {last_op.get('reason')}")
            last = f"slot {doc['booted']} booted, trial {doc['trial']}, {doc['tries_left']} tries left"
            self.sleep(self.poll)
        raise NodeFailed(name, f"not healthy on the new image within {self.wait_timeout:.0f}s ({last})")

    def run(self) -> list[str]:
        for target in self.targets:
            self.done.append(self.upgrade(target))
        return self.done
