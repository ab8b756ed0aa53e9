"""``hci-health``: the health gate that runs on every boot of an installed node.

1. Bookkeeping first (:func:`node_services.upgrade.transitions.reconcile`): repair a damaged
   boot state copy; record a trial that grub gave up on as rolled back, with its reason.
2. The checks: executables in ``/usr/lib/hcios/health.d/`` and ``/etc/hcios/health.d/`` (the
   same name in /etc replaces the image's; a link to /dev/null turns one off), run in name order
   with ``HCI_SLOT``, ``HCI_TRIAL`` and ``HCI_DEADLINE`` (epoch seconds) set. Exit 0 passes; exit
   75 (EX_TEMPFAIL) means "not yet" and is retried until ``upgrade.health_timeout``; any other
   exit fails at once.
3. All passed: on a trial boot the slot is marked good (both boot state copies); otherwise the
   good slot's marker is kept. A failure on a trial boot rolls back: a check that failed gives
   the trial up now (the old slot is good again), a check still not passing at the deadline
   costs one try (grub decides what boots next). Either way the node reboots. On a normal boot a
   failure is reported, never rebooted for: there is nothing better to boot.

Console markers (for operators and tests): ``HCIOS-HEALTH-OK``, ``HCIOS-HEALTH-FAILED``,
``HCIOS-SLOT-GOOD``, ``HCIOS-TRIAL-FAILED``.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hcicore.errors import HciError

from .upgrade import transitions
from .upgrade.node import Node

log = logging.getLogger("hcios.health")

CHECK_DIRS = (Path("/usr/lib/hcios/health.d"), Path("/etc/hcios/health.d"))
NOT_YET = 75  # EX_TEMPFAIL
RETRY_EVERY = 3.0
RUN_TIMEOUT = 60.0
OUTPUT_TAIL = 400
LOCK_WAIT = 600.0  # an hci-upgrade command may hold the lock; the gate waits for it


@dataclass
class CheckOutcome:
    name: str
    rc: int | None  # None: timed out
    output: str


@dataclass
class HealthResult:
    passed: bool
    fatal: bool = False  # a check failed (not just "not yet" at the deadline)
    failed: str | None = None
    reason: str = ""
    outcomes: list[CheckOutcome] = field(default_factory=list)


def collect(dirs: tuple[Path, ...] = CHECK_DIRS) -> list[tuple[str, Path]]:
    """The checks to run, by name; a later directory overrides an earlier one's same name."""
    found: dict[str, Path] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.name.startswith("."):
                continue
            found[path.name] = path
    return [(name, path) for name, path in sorted(found.items())
            if os.path.realpath(path) != "/dev/null" and path.is_file() and os.access(path, os.X_OK)]


def run_one(name: str, path: Path, env: dict[str, str], timeout: float) -> CheckOutcome:
    try:
        proc = subprocess.run([str(path)], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return CheckOutcome(name, None, (out + f" (no answer within {timeout:.0f}s)").strip()[-OUTPUT_TAIL:])
    except OSError as exc:
        return CheckOutcome(name, 126, f"cannot run {path}: {exc}")
    return CheckOutcome(name, proc.returncode, (proc.stdout + proc.stderr).strip()[-OUTPUT_TAIL:])


def run_checks(checks: list[tuple[str, Path]], *, timeout: float, env: dict[str, str],
               runner: Callable[[str, Path, dict[str, str], float], CheckOutcome] = run_one,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> HealthResult:
    deadline = clock() + timeout
    pending = list(checks)
    last: dict[str, CheckOutcome] = {}
    outcomes: list[CheckOutcome] = []
    while True:
        waiting = []
        for name, path in pending:
            left = max(1.0, deadline - clock())
            outcome = runner(name, path, env, min(RUN_TIMEOUT, left))
            last[name] = outcome
            if outcome.rc == 0:
                outcomes.append(outcome)
            elif outcome.rc in (NOT_YET, None):
                waiting.append((name, path))
            else:
                outcomes.append(outcome)
                return HealthResult(False, True, name, f"health check {name} failed (exit {outcome.rc}): "
                                    f"{outcome.output or 'no output'}", outcomes)
        if not waiting:
            return HealthResult(True, outcomes=outcomes)
        if clock() >= deadline:
            name = waiting[0][0]
            return HealthResult(False, False, name, f"health check {name} did not pass within {timeout:.0f}s: "
                                f"{last[name].output or 'no output'}", outcomes + [last[n] for n, _ in waiting])
        pending = waiting
        sleep(RETRY_EVERY)


def say(line: str) -> None:
    print(line, flush=True)  # journal and console (hci-health.service)


def gate(node: Node, *, checks: list[tuple[str, Path]] | None = None,
         runner: Callable[..., CheckOutcome] = run_one) -> int:
    """The whole health gate; returns the exit code (0 healthy) and reboots a failed trial."""
    with node.lock(wait=LOCK_WAIT):
        for line in transitions.reconcile(node):
            say(f"hcios: {line}")
    state = node.reading().effective
    slot = node.disk.slot
    trial = node.disk.trial and state.trial == slot
    settings = node.upgrade_settings
    env = {**os.environ, "HCI_SLOT": slot, "HCI_TRIAL": "1" if trial else "0",
           "HCI_DEADLINE": str(int(time.time() + settings.health_timeout))}
    result = run_checks(collect() if checks is None else checks, timeout=settings.health_timeout, env=env,
                        runner=runner)
    if result.passed:
        say(f"HCIOS-HEALTH-OK slot={slot} checks={','.join(o.name for o in result.outcomes)}")
        with node.lock(wait=LOCK_WAIT):
            # the state again, under the lock: only a boot that is still the trial is marked good
            # (an operator may have rolled back meanwhile); the good slot keeps its marker
            now = node.reading().effective
            if node.disk.trial and now.trial == slot:
                version = node.record().slot(slot).get("version")
                say(f"HCIOS-SLOT-GOOD slot={slot} version={version}: {transitions.mark_good(node)}")
            elif now.good == slot:
                transitions.mark_good(node)
            else:
                say(f"hcios: slot {slot} is neither the good slot nor on trial: left as it is")
        from .plan import annotate_good  # noqa: PLC0415  (kubectl only where k3s runs)

        annotate_good(node)
        return 0
    say(f"HCIOS-HEALTH-FAILED slot={slot} check={result.failed}: {result.reason}")
    if not trial:
        return 1
    with node.lock(wait=LOCK_WAIT):
        if node.reading().effective.trial != slot:
            say(f"hcios: slot {slot} is no longer on trial: not rebooting")
            return 1
        if result.fatal:
            transitions.fail_trial(node, result.reason)
            say(f"HCIOS-TRIAL-FAILED slot={slot}: rolled back to slot {state.good}: {result.reason}")
        else:
            transitions.note_trial_problem(node, result.reason)
            say(f"HCIOS-TRIAL-FAILED slot={slot}: rebooting; {state.tries} tries left")
    os.sync()
    node.runner(["systemctl", "reboot"])
    return 1


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return gate(Node.open())
    except HciError as exc:
        print(f"HCIOS-HEALTH-FAILED error: {exc}", flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
