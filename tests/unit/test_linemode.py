"""Line mode: the wizard over plain stdin/stdout; the choice between line mode and the TUI."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hcicore.config import load_config_file, verify_password
from hcicore.errors import HciError
from installer.interactive import run_interactive, use_line_mode
from installer.linemode import LineDialog
from installer.wizard import Wizard

from tests.unit.test_wizard import CREATE_STATIC, PASSWORD, drive, host, ssh_key

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

# The same answers as test_wizard.CREATE_STATIC, typed; with one mistake and one step back.
TYPED = [
    "",                      # mode: create
    "1",                     # /dev/vda
    "yes",                   # wipe
    "2",                     # data disk /dev/vdb
    "",                      # eth0
    "2",                     # static
    "10.0.0.5",              # rejected: no prefix
    "10.0.0.5/24",
    "10.0.0.1",
    "<",                     # back to the gateway
    "10.0.0.1",
    "10.0.0.1, 1.1.1.1",
    "",                      # vlan
    "",                      # hostname default
    "10.0.0.100",
    "",                      # token: generate
    "0.pool.ntp.org 10.0.0.1",
    "http://proxy.lan:3128",
    "",
    "",
    ssh_key(), "",           # keys end with a blank line
    PASSWORD, PASSWORD + "!",  # mismatch: asked again
    PASSWORD, PASSWORD,
    "yes",
    "",
]


def test_line_mode_writes_the_config(tmp_path):
    stdin = io.StringIO("\n".join(TYPED) + "\n")
    stdout = io.StringIO()
    out = run_interactive(out_path=tmp_path / "node.yaml", host=host(), env={"TERM": "dumb"},
                          stdin=stdin, stdout=stdout)
    transcript = stdout.getvalue()
    assert "error: '10.0.0.5' needs a prefix length, e.g. 10.0.0.5/24" in transcript
    assert "error: the two passwords differ; type them again" in transcript
    assert PASSWORD not in transcript
    assert max(len(line) for line in transcript.splitlines()) <= 80
    assert "  WARNING" not in transcript  # the fixture host passes every check
    assert (out.stat().st_mode & 0o777) == 0o600
    data = yaml.safe_load(out.read_text())
    assert data["node"]["network"]["gateway"] == "10.0.0.1"
    assert data["install"]["device"] == "/dev/vda" and data["install"]["wipe"] is True
    assert verify_password(PASSWORD, data["node"]["password_hash"])
    assert load_config_file(out).node.hostname == "hci-123456"


def test_line_mode_and_wizard_api_give_the_same_config():
    """Line mode is only a front end: same answers, same config (hash and token fixed)."""
    def fake_hash(plain: str) -> str:
        return "$6$fixedsalt$" + "x" * 86 if plain == PASSWORD else "wrong"

    typed = [t if t != "" or i != 15 else "tok-12345678" for i, t in enumerate(TYPED)]
    w1 = Wizard(host(), hasher=fake_hash)
    LineDialog(w1, stdin=io.StringIO("\n".join(typed) + "\n"), stdout=io.StringIO()).run()
    w2 = Wizard(host(), hasher=fake_hash)
    drive(w2, [(k, "tok-12345678" if k == "cluster.token" else v) for k, v in CREATE_STATIC])
    assert w1.config() == w2.config()


def test_input_ending_early_writes_nothing(tmp_path):
    with pytest.raises(HciError, match="input ended before the installer was finished"):
        run_interactive(out_path=tmp_path / "node.yaml", host=host(), env={"TERM": "vt100"},
                        stdin=io.StringIO("create\n1\n"), stdout=io.StringIO())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("term,tty,size,console,line", [
    ("xterm-256color", True, (80, 24), None, False),
    ("linux", True, (160, 50), "/dev/tty1", False),
    ("xterm", True, (80, 24), "/dev/ttyS0", True),
    ("xterm", True, (80, 24), "ttyAMA0", True),
    (None, True, (80, 24), None, True),
    ("dumb", True, (80, 24), None, True),
    ("vt100", True, (80, 24), None, True),
    ("unknown", True, (80, 24), None, True),
    ("xterm", False, (80, 24), None, True),
    ("xterm", True, (79, 24), None, True),
    ("xterm", True, (80, 23), None, True),
    ("xterm", True, None, None, True),
])
def test_use_line_mode(term, tty, size, console, line):
    assert use_line_mode(term=term, is_tty=tty, size=size, console=console) is line


DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.unit.test_wizard import host
from installer.interactive import run_interactive
print("WROTE", run_interactive(out_path=Path(sys.argv[1]), host=host()))
"""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_line_mode_on_a_vt100_terminal_hides_the_password(tmp_path):
    """A real pty (tmux) with TERM=vt100: line mode is chosen and the password is not echoed."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO)))
    out = tmp_path / "node.yaml"
    session = f"hcitest{os.getpid()}"
    cmd = f"cd {REPO} && TERM=vt100 {sys.executable} {driver} {out}; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd],
                   check=True)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-S", "-200", "-t", session],
                              check=True, capture_output=True, text=True).stdout

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shown = screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{screen()}")

    def wait_for_count(text: str, n: int) -> None:
        deadline = time.monotonic() + 20
        while screen().count(text) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear {n} times:\n{screen()}")
            time.sleep(0.1)

    try:
        wait_for("hcios installer (line mode)")
        prompts = ["password:", "again:"] * 2  # capture-pane drops trailing blanks
        for typed in TYPED:
            if typed in (PASSWORD, PASSWORD + "!"):
                # echo goes off when getpass starts: type only once its prompt is there
                label = prompts.pop(0)
                wait_for_count(label, 2 - prompts.count(label))
            subprocess.run(["tmux", "send-keys", "-t", session, "-l", typed], check=True)
            subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
            time.sleep(0.05)
        shown = wait_for("WROTE")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert PASSWORD not in shown
    assert "10.0.0.1, 1.1.1.1" in shown      # ordinary answers are echoed by the terminal
    assert load_config_file(out).node.network.address == "10.0.0.5/24"
