"""hci-health: drop-in checks, retries until the deadline, and what a trial boot does with the
result (mark good, give up now, or spend a try)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from hcicore.progress import Progress
from node_services import health
from node_services.health import CheckOutcome, collect, gate, run_checks
from node_services.upgrade.apply import ApplyOptions, apply
from node_services.upgrade.status import status

from .upgrade_fakes import Rig, make_image, make_rig, publish

pytestmark = pytest.mark.unit


def script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def test_collect_etc_overrides_and_devnull_disables(tmp_path: Path) -> None:
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    script(usr / "10-a", "exit 0")
    script(usr / "20-b", "exit 0")
    script(usr / "30-c", "exit 0")
    script(usr / "40-notexec", "exit 0", mode=0o644)
    script(etc / "20-b", "exit 1")
    etc.joinpath("30-c").symlink_to("/dev/null")
    got = collect((usr, etc))
    assert [n for n, _ in got] == ["10-a", "20-b"] and got[1][1] == etc / "20-b"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def fake(results: dict[str, list[int | None]]):
    def runner(name: str, path: Path, env: dict, timeout: float) -> CheckOutcome:
        rc = results[name].pop(0) if len(results[name]) > 1 else results[name][0]
        return CheckOutcome(name, rc, f"{name} said {rc}")
    return runner


def checks(*names: str) -> list[tuple[str, Path]]:
    return [(n, Path(n)) for n in names]


def test_not_yet_is_retried_until_it_passes() -> None:
    clock = Clock()
    res = run_checks(checks("a", "b"), timeout=60, env={}, runner=fake({"a": [0], "b": [75, 75, 0]}),
                     clock=clock, sleep=clock.sleep)
    assert res.passed and clock.now == 2 * health.RETRY_EVERY


def test_a_failure_is_final_at_once() -> None:
    clock = Clock()
    res = run_checks(checks("a", "b"), timeout=60, env={}, runner=fake({"a": [1], "b": [0]}), clock=clock,
                     sleep=clock.sleep)
    assert not res.passed and res.fatal and res.failed == "a" and "exit 1" in res.reason and clock.now == 0


def test_not_yet_at_the_deadline_is_a_timeout() -> None:
    clock = Clock()
    res = run_checks(checks("a"), timeout=10, env={}, runner=fake({"a": [75]}), clock=clock, sleep=clock.sleep)
    assert not res.passed and not res.fatal and "did not pass within 10s" in res.reason


def test_real_scripts_get_the_environment(tmp_path: Path) -> None:
    s = script(tmp_path / "10-env", 'test "$HCI_SLOT" = b && test "$HCI_TRIAL" = 1 || { echo "bad env"; exit 3; }')
    out = health.run_one("10-env", s, {**os.environ, "HCI_SLOT": "b", "HCI_TRIAL": "1"}, 10)
    assert out.rc == 0
    slow = script(tmp_path / "20-slow", "sleep 5")
    assert health.run_one("20-slow", slow, dict(os.environ), 0.5).rc is None


@pytest.fixture
def trial_rig(tmp_path: Path, oci_registry) -> Rig:
    rig = make_rig(tmp_path, make_image(tmp_path, "v1", version="1.0.0"))
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(make_image(tmp_path, "v2", version="2.0.0"), ref, version="2.0.0")
    apply(rig.node("a"), ApplyOptions(ref, plain_http=True, reboot=False), Progress(as_json=True, stream=io.StringIO()))
    return rig


def test_trial_passes_marks_good(trial_rig: Rig, capsys) -> None:
    node = trial_rig.node("b", trial=True)
    assert gate(node, checks=checks("a"), runner=fake({"a": [0]})) == 0
    out = capsys.readouterr().out
    assert "HCIOS-HEALTH-OK slot=b" in out and "HCIOS-SLOT-GOOD slot=b version=2.0.0" in out
    doc = status(node)
    assert doc["good"] == "b" and doc["trial"] is None and not trial_rig.runner.reboots


def test_trial_check_failure_rolls_back_now_and_reboots(trial_rig: Rig, capsys) -> None:
    node = trial_rig.node("b", trial=True)
    assert gate(node, checks=checks("99-fail"), runner=fake({"99-fail": [1]})) == 1
    assert "HCIOS-TRIAL-FAILED slot=b: rolled back to slot a" in capsys.readouterr().out
    doc = status(node)
    assert doc["good"] == "a" and doc["trial"] is None and doc["slots"]["b"]["state"] == "bad"
    assert "99-fail" in doc["last"]["reason"] and trial_rig.runner.reboots


def test_trial_timeout_spends_a_try_and_the_reason_survives(trial_rig: Rig, monkeypatch) -> None:
    node = trial_rig.node("b", trial=True)
    monkeypatch.setattr(health, "RETRY_EVERY", 0.01)
    node.config.upgrade.health_timeout = 0  # type: ignore[union-attr]
    assert gate(node, checks=checks("20-network"), runner=fake({"20-network": [75]})) == 1
    assert trial_rig.runner.reboots and status(node)["trial"] == "b"  # grub decides what boots next
    # grub used up the tries and booted slot a: its health run records why
    store = node.boot
    store.write(store.read().state.next(tries=0))
    back = trial_rig.node("a")
    assert gate(back, checks=checks("a"), runner=fake({"a": [0]})) == 0
    doc = status(back)
    assert doc["slots"]["b"]["state"] == "bad" and "20-network did not pass" in doc["last"]["reason"]


def test_failure_on_a_normal_boot_never_reboots(tmp_path: Path, capsys) -> None:
    rig = make_rig(tmp_path, make_image(tmp_path, "v1", version="1.0.0"))
    assert gate(rig.node("a"), checks=checks("x"), runner=fake({"x": [1]})) == 1
    assert not rig.runner.reboots and "HCIOS-HEALTH-FAILED slot=a check=x" in capsys.readouterr().out


def test_a_healthy_normal_boot_keeps_a_staged_trial(trial_rig: Rig) -> None:
    """apply --no-reboot staged slot b; the next health run of slot a must not cancel it."""
    node = trial_rig.node("a")
    assert gate(node, checks=checks("a"), runner=fake({"a": [0]})) == 0
    state = node.reading().state
    assert (state.good, state.trial, state.tries) == ("a", "b", 3)


def test_no_mark_good_for_a_trial_rolled_back_during_its_checks(trial_rig: Rig) -> None:
    from node_services.upgrade import transitions  # noqa: PLC0415

    node = trial_rig.node("b", trial=True)

    def runner(name: str, path: Path, env: dict, timeout: float) -> CheckOutcome:
        transitions.rollback(trial_rig.node("b", trial=True))  # the operator, while the checks run
        return CheckOutcome(name, 0, "")

    assert gate(node, checks=checks("a"), runner=runner) == 0
    doc = status(node)
    assert doc["good"] == "a" and doc["slots"]["b"]["state"] == "bad"


def test_apply_right_after_grub_gave_up_is_refused(trial_rig: Rig, oci_registry) -> None:
    """Before hci-health ran on the fallback boot, apply itself records the failed trial."""
    from node_services.upgrade.node import Refused  # noqa: PLC0415

    store = trial_rig.node("a").boot
    store.write(store.read().state.next(tries=0))
    with pytest.raises(Refused, match="was rolled back on this node"):
        apply(trial_rig.node("a"), ApplyOptions(f"{oci_registry.host}/hcios/os:2.0.0", plain_http=True, reboot=False),
              Progress(as_json=True, stream=io.StringIO()))
