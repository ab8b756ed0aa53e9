"""The textual TUI driven by textual's pilot at 80x24, from the first question to a written file."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from textual import events
from textual.widgets import Input, OptionList, Static, TextArea

from hcicore.config import load_config_file, verify_password
from installer.answers import AnswerError
from installer.tui import InstallerApp, QuestionScreen
from installer.wizard import Wizard
from tests.unit.test_wizard import CREATE_STATIC, PASSWORD, host

pytestmark = pytest.mark.unit

SIZE = (80, 24)


def screen_of(app: InstallerApp) -> QuestionScreen:
    screen = app.screen
    assert isinstance(screen, QuestionScreen)
    return screen


def assert_fits(app: InstallerApp) -> None:
    """Every visible widget lies inside 80x24, and the answer widget has room on screen."""
    screen = screen_of(app)
    scrolled = set(screen.query("#summary *"))  # inside a scroll box: may extend, box scrolls
    for widget in screen.query("*"):
        if widget.display and widget.region.area and widget not in scrolled:
            assert widget.region.right <= SIZE[0] and widget.region.bottom <= SIZE[1], widget
    answer = screen.query_one("#answer")
    assert answer.region.height >= 1 and answer.region.bottom <= SIZE[1] - 1


async def type_text(pilot, text: str) -> None:
    """Type short text key by key; paste longer text (as from a terminal) to keep the test fast."""
    if len(text) > 12:
        pilot.app.post_message(events.Paste(text))
        await pilot.pause()
        return
    for ch in text:
        await pilot.press("enter" if ch == "\n" else ch)


async def give(pilot, app: InstallerApp, raw) -> None:
    """Answer the question on screen with keys, as an operator would."""
    screen = screen_of(app)
    widget = screen.query_one("#answer")
    assert widget.has_focus
    if isinstance(widget, OptionList):
        values = [o.id for o in widget.options]
        if widget.highlighted is None:  # nothing preselected (the disk list): the first key highlights
            await pilot.press("down")
        target = values.index(raw) if raw in values else (int(raw) - 1 if raw else widget.highlighted)
        step = "down" if target >= widget.highlighted else "up"
        for _ in range(abs(target - widget.highlighted)):
            await pilot.press(step)
        await pilot.press("enter")
    elif isinstance(widget, TextArea):
        await type_text(pilot, raw)
        await pilot.press("ctrl+n")
    elif screen.q.kind == "secret":
        first, again = raw
        await type_text(pilot, first)
        await pilot.press("enter")
        assert screen.query_one("#again", Input).has_focus
        await type_text(pilot, again)
        await pilot.press("enter")
    else:
        assert isinstance(widget, Input)
        # clear the box (an empty answer takes the default, as in line mode), then type
        await pilot.press("home", "ctrl+k")
        await type_text(pilot, raw)
        await pilot.press("enter")
    await pilot.pause()


def error_text(app: InstallerApp) -> str:
    return str(screen_of(app).query_one("#error", Static).content)


def run(coro):
    return asyncio.run(coro)


def test_tui_from_start_to_written_config(tmp_path):
    out = tmp_path / "node.yaml"
    w = Wizard(host())
    app = InstallerApp(w, out)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            for key, raw in CREATE_STATIC:
                assert screen_of(app).q.key == key
                assert_fits(app)
                if key == "node.hostname":        # a mistake first: shown, asked again
                    await give(pilot, app, "Bad_Host")
                    assert screen_of(app).q.key == key
                    assert "upper-case" in error_text(app)
                if key == "node.network.gateway":  # go back one step and forward again
                    await pilot.press("escape")
                    await pilot.pause()
                    assert screen_of(app).q.key == "node.network.address"
                    await give(pilot, app, "10.0.0.5/24")
                if key == "confirm":
                    summary = str(screen_of(app).query_one("#summary Static", Static).content)
                    assert "node.network.address: 10.0.0.5/24" in summary
                    assert "set (sha512-crypt hash)" in summary and PASSWORD not in summary
                await give(pilot, app, raw)
            await pilot.pause()
        return app.return_value

    assert run(scenario()) is True
    assert (out.stat().st_mode & 0o777) == 0o600
    data = yaml.safe_load(out.read_text())
    assert data["install"]["device"] == "/dev/vda" and data["install"]["wipe"] is True
    assert data["node"]["hostname"] == "hci-123456"
    assert data["node"]["ssh_authorized_keys"] == [CREATE_STATIC[17][1].strip()]
    assert verify_password(PASSWORD, data["node"]["password_hash"])
    cfg = load_config_file(out)
    assert cfg.node.network.method == "static" and cfg.cluster.vip == "10.0.0.100"


def test_tui_join_and_password_mismatch(tmp_path):
    out = tmp_path / "join.yaml"
    w = Wizard(host())
    app = InstallerApp(w, out)
    script = [
        ("install.mode", "join"), ("install.role", "agent"), ("install.device", "/dev/vdb"),
        ("install.data_device", ""), ("node.network.interfaces", "eth1"),
        ("node.network.method", "dhcp"), ("node.network.dns", ""), ("node.network.vlan_id", ""),
        ("node.hostname", "worker-7"), ("cluster.server_url", "https://10.0.0.100:6443"),
        ("cluster.token", "K10token::server:abc"), ("node.ntp", ""), ("node.proxy.http", ""),
        ("node.ssh_authorized_keys", ""),
    ]

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            for key, raw in script:
                assert screen_of(app).q.key == key
                await give(pilot, app, raw)
            await give(pilot, app, (PASSWORD, "something else"))
            assert screen_of(app).q.key == "node.password_hash"
            assert "differ" in error_text(app)
            assert screen_of(app).query_one("#answer", Input).value == ""
            await give(pilot, app, (PASSWORD, PASSWORD))
            await give(pilot, app, "yes")
            assert screen_of(app).q.key == "copy_path"
            await give(pilot, app, str(tmp_path / "pxe-copy.yaml"))
            await pilot.pause()
        return app.return_value

    assert run(scenario()) is True
    assert (tmp_path / "pxe-copy.yaml").read_text() == out.read_text()
    cfg = load_config_file(out)
    assert (cfg.install.mode, cfg.install.role) == ("join", "agent")
    assert cfg.node.network.interfaces[0].name == "eth1"
    assert cfg.cluster.server_url == "https://10.0.0.100:6443"


def test_tui_quit_writes_nothing(tmp_path):
    out = tmp_path / "node.yaml"
    app = InstallerApp(Wizard(host()), out)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await give(pilot, app, "create")
            await pilot.press("ctrl+q")
            await pilot.pause()
        return app.return_value

    assert run(scenario()) is False
    assert not out.exists()


def test_tui_summary_shows_preflight_warnings(tmp_path):
    w = Wizard(host())
    for key, raw in CREATE_STATIC[:19]:
        assert w.current().key == key
        w.answer(raw)
    w.host = type(w.host)(disks=w.host.disks, nics=w.host.nics, virt_flags=frozenset(),
                          mem_total=w.host.mem_total)
    app = InstallerApp(w, Path(tmp_path / "x.yaml"))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert screen_of(app).q.key == "confirm"
            assert_fits(app)
            text = str(screen_of(app).query_one("#summary Static", Static).content)
            assert "WARNING fail: cpu-virtualization" in text
            await pilot.press("escape")
            await pilot.pause()
            assert screen_of(app).q.key == "node.password_hash"

    run(scenario())


def _lsblk_host():
    import json

    from installer.hostinfo import HostInfo, disks_from_lsblk

    def dev(name, size, **kw):
        return {"name": name, "path": f"/dev/{name}", "type": "disk", "size": size, "ro": False, "rm": False, **kw}

    gib = 1024**3
    disks = disks_from_lsblk(json.dumps({"blockdevices": [
        dev("fd0", 0, rm=True), dev("vda", 100 * gib, serial="A1"), dev("vdb", 200 * gib, serial="B2")]}))
    return HostInfo(disks=disks, nics=host().nics, virt_flags=frozenset({"vmx"}), mem_total=16 * gib)


def test_tui_offers_no_floppy_and_preselects_no_disk_of_several(tmp_path):
    app = InstallerApp(Wizard(_lsblk_host()), Path(tmp_path / "x.yaml"))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("enter")  # install.mode: create
            await pilot.pause()
            screen = screen_of(app)
            assert screen.q.key == "install.device"
            options = screen.query_one("#answer", OptionList)
            assert [o.id for o in options.options] == ["/dev/vda", "/dev/vdb"]  # no /dev/fd0
            assert "serial A1" in str(options.get_option_at_index(0).prompt)
            assert options.highlighted is None
            await pilot.press("enter")  # Enter through the wizard picks no disk
            await pilot.pause()
            assert screen_of(app).q.key == "install.device" and "install.device" not in app.wizard.answers

    run(scenario())


def test_tui_a_too_small_disk_blocks_yes_until_fixed(tmp_path):
    small = host()
    small.disks[0] = type(small.disks[0])("vda", "/dev/vda", 10 * 1024**3, "QEMU HARDDISK", partitions=("/dev/vda1",))
    w = Wizard(small)
    for key, raw in CREATE_STATIC[:19]:
        assert w.current().key == key
        w.answer(raw)
    app = InstallerApp(w, Path(tmp_path / "x.yaml"))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = screen_of(app)
            assert screen.q.key == "confirm"
            text = str(screen.query_one("#summary Static", Static).content)
            assert "BLOCKED install.device: disk /dev/vda is 10.0 GiB, needs at least" in text
            options = screen.query_one("#answer", OptionList)
            assert options.get_option("yes").disabled and options.highlighted == 1  # "no"
            await pilot.press("up", "enter")  # the disabled "yes" can't be taken
            await pilot.pause()
            assert screen_of(app).q.key == "confirm" and not (tmp_path / "x.yaml").exists()

    run(scenario())
    with pytest.raises(AnswerError, match="a check failed"):
        w.answer("yes")


def test_a_failed_install_returns_to_the_wizard_with_every_answer_kept(tmp_path):
    from hcicore.errors import HciError
    from installer.interactive import install_with_retries

    w = Wizard(host())
    out = tmp_path / "node.yaml"
    seen: list[str] = []

    def ask(*, out_path, wizard, error):
        if error is None:  # the first round: the operator answers everything
            for key, raw in CREATE_STATIC:
                wizard.answer(raw)
            from installer.wizard import save
            return save(wizard, out_path)
        app = InstallerApp(wizard, out_path, error=error)

        async def scenario():
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                assert screen_of(app).q.key == "confirm"  # back on the summary
                summary = str(screen_of(app).query_one("#summary Static", Static).content)
                assert "node.hostname: hci-123456" in summary and "10.0.0.5/24" in summary
                assert any("wipefs: /dev/vda: probing initialization failed" in n.message
                           for n in app._notifications)
                await pilot.press("enter")  # yes
                await pilot.pause()
                await pilot.press("enter")  # no copy for PXE
                await pilot.pause()

        run(scenario())
        return out_path

    def install(path):
        seen.append(path.read_text())
        if len(seen) == 1:
            raise HciError("inspect disk: wipefs: /dev/vda: probing initialization failed")
        return "installed"

    assert install_with_retries(install, out_path=out, ask=ask, wizard=w) == "installed"
    assert len(seen) == 2 and seen[0] == seen[1]  # the same answers, the same config


@pytest.mark.parametrize("term,border", [("linux", "ascii"), ("xterm-256color", "round")])
def test_tui_draws_ascii_borders_on_the_linux_console(tmp_path, term, border):
    w = Wizard(host())
    for key, raw in CREATE_STATIC[:19]:
        w.answer(raw)
    app = InstallerApp(w, Path(tmp_path / "x.yaml"), term=term)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = screen_of(app)
            assert screen.query_one("#summary").styles.border.top[0] == border
            if term == "linux":
                assert screen.query_one("#answer").styles.border.top[0] == "ascii"
                assert_fits(app)

    run(scenario())
