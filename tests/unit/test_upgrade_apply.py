"""hci-upgrade apply on a node made of files, against a real registry (docker-registry on
127.0.0.1): what is refused before a byte reaches the slot, what is written, in which order, and
what a cut at each point leaves behind."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from hcicore.bootstate import BootStateStore
from hcicore.cosign import SignatureError
from hcicore.errors import DigestMismatch
from hcicore.progress import Progress
from hcicore.squashfs import NotASlotImage
from node_services.upgrade import transitions
from node_services.upgrade.apply import ApplyOptions, apply
from node_services.upgrade.node import Refused
from node_services.upgrade.status import status

from .upgrade_fakes import PowerCut, Rig, make_image, make_rig, new_key, publish

pytestmark = pytest.mark.unit


def quiet() -> Progress:
    return Progress(as_json=True, stream=io.StringIO())


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    return {
        "1.0.0": make_image(tmp_path, "v1", version="1.0.0", etc={"motd": "v1 motd\n", "ssh/keep": "k\n"},
                            var={"lib/app/seed": "v1\n"}),
        "2.0.0": make_image(tmp_path, "v2", version="2.0.0", etc={"motd": "v2 motd\n", "ssh/keep": "k\n",
                                                                   "new.conf": "v2\n"},
                            var={"lib/app/seed": "v2\n", "lib/app/new": "v2\n"}),
    }


@pytest.fixture
def signed(tmp_path: Path):
    return new_key()


@pytest.fixture
def rig(tmp_path: Path, images: dict[str, Path], signed) -> Rig:
    return make_rig(tmp_path, images["1.0.0"], trusted=[signed[1]])


def opts(ref: str, **kw: object) -> ApplyOptions:
    return ApplyOptions(ref, plain_http=True, reboot=False, **kw)  # type: ignore[arg-type]


def test_apply_writes_the_other_slot_then_sets_the_trial(rig: Rig, images, signed, oci_registry) -> None:
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    node = rig.node("a")
    # the node edits /etc: one file changed, one copied up unchanged, one added
    upper = node.etc_layer("a") / "upper"
    (upper / "motd").write_text("local motd\n")
    (upper / "hcios").mkdir()
    (upper / "hcios/version").write_text("1.0.0\n")
    (upper / "mine.conf").write_text("mine\n")
    res = apply(node, opts(ref), quiet())
    assert res.result == "staged" and res.slot == "b" and res.version == "2.0.0"
    data = images["2.0.0"].read_bytes()
    assert rig.slot_file("b").read_bytes()[:len(data)] == data
    reading = node.reading()
    assert reading.state.trial == "b" and reading.state.tries == 3 and reading.state.good == "a"
    assert reading.copies[0] == reading.copies[1]  # both copies
    assert reading.markers == ("a",)  # b is not known good until it booted healthy
    # /etc of slot b: the unchanged copy-up is gone (v2's version shows), local edits stay,
    # motd changed on both sides is a conflict that keeps the local version
    b_upper = node.etc_layer("b") / "upper"
    assert not (b_upper / "hcios/version").exists()
    assert (b_upper / "mine.conf").read_text() == "mine\n"
    assert (b_upper / "motd").read_text() == "local motd\n"
    assert [c["path"] for c in res.conflicts] == ["/etc/motd"]
    assert (node.etc_layer("a") / "upper/hcios/version").exists()  # the booted slot's layer is untouched
    assert not node.staging.exists() or not list(node.staging.iterdir())  # the download is gone
    doc = status(node)
    assert doc["trial"] == "b" and doc["tries_left"] == 3 and doc["slots"]["b"]["state"] == "trial"
    assert doc["slots"]["b"]["version"] == "2.0.0" and doc["etc_conflicts"][0]["path"] == "/etc/motd"
    assert doc["last"]["result"] == "staged"


def test_trial_marked_good_then_rerun_is_a_noop(rig: Rig, images, signed, oci_registry) -> None:
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    apply(rig.node("a"), opts(ref), quiet())
    trial = rig.node("b", trial=True)
    assert "marked good" in transitions.mark_good(trial)
    doc = status(trial)
    assert (doc["booted"], doc["good"], doc["trial"]) == ("b", "b", None)
    assert doc["slots"]["b"]["state"] == "good" and doc["slots"]["a"]["state"] == "good"
    assert doc["last"]["result"] == "success" and doc["last"]["reason"] == ""
    before = rig.sha_of_slot("a")
    again = apply(trial, opts(ref), quiet())
    assert again.result == "noop" and "already runs 2.0.0" in again.message
    assert rig.sha_of_slot("a") == before


def _unchanged(rig: Rig, slot: str = "b"):
    before = rig.sha_of_slot(slot)
    state = rig.node("a").reading().state
    yield
    assert rig.sha_of_slot(slot) == before, "the slot was written"
    assert rig.node("a").reading().state.trial == state.trial


@pytest.mark.parametrize("case", ["unsigned", "wrong-key", "downgrade", "too-big", "byte-changed", "not-xz",
                                  "no-kernel"])
def test_refusals_write_nothing(case: str, rig: Rig, images, signed, oci_registry, tmp_path: Path) -> None:
    host = oci_registry.host
    node = rig.node("a")
    ref = f"{host}/hcios/os:{case}"
    if case == "unsigned":
        publish(images["2.0.0"], ref, version="2.0.0")
        expect, words = SignatureError, "not signed"
    elif case == "wrong-key":
        publish(images["2.0.0"], ref, version="2.0.0", key=new_key()[0])
        expect, words = SignatureError, "no valid signature by a trusted key"
    elif case == "downgrade":
        publish(make_image(tmp_path, "old", version="0.9.0"), ref, version="0.9.0", key=signed[0])
        expect, words = Refused, "downgrade"
    elif case == "too-big":
        publish(make_image(tmp_path, "big", version="2.0.0", pad=25 << 20), ref, version="2.0.0", key=signed[0])
        expect, words = Refused, "does not fit"
    elif case == "byte-changed":
        publish(make_image(tmp_path, "flip", version="2.0.0", pad=4096), ref, version="2.0.0", key=signed[0])
        expect, words = DigestMismatch, "refused, nothing was written"
    elif case == "not-xz":
        publish(make_image(tmp_path, "gz", version="2.0.0", comp="gzip"), ref, version="2.0.0", key=signed[0])
        expect, words = NotASlotImage, "gzip squashfs"
    else:
        publish(make_image(tmp_path, "nokernel", version="2.0.0", boot=False), ref, version="2.0.0", key=signed[0])
        expect, words = NotASlotImage, "/boot/vmlinuz"
    if case == "byte-changed":
        _flip_stored_blob(oci_registry, ref)
    check = _unchanged(rig)
    next(check)
    with pytest.raises(expect) as err:
        apply(node, opts(ref), quiet())
    assert words in str(err.value)
    next(check, None)
    assert err.value.exit_code == 2


def _flip_stored_blob(registry, ref: str) -> None:
    """Change one byte of the squashfs blob where the registry stores it."""
    from hcicore.artifact import parse_manifest  # noqa: PLC0415
    from hcicore.oci import Registry, parse_reference  # noqa: PLC0415

    parsed = parse_reference(ref)
    art = parse_manifest(Registry(parsed.host, plain_http=True).resolve(parsed).raw, ref=ref)
    hexd = art.sha256
    data = next(Path(registry.root).rglob(f"blobs/sha256/{hexd[:2]}/{hexd}/data"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))


def test_rolled_back_image_is_refused_without_force(rig: Rig, images, signed, oci_registry) -> None:
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    apply(rig.node("a"), opts(ref), quiet())
    transitions.fail_trial(rig.node("b", trial=True), "health check 99-test failed (exit 1): broken on purpose")
    doc = status(rig.node("a"))
    assert doc["good"] == "a" and doc["trial"] is None and doc["slots"]["b"]["state"] == "bad"
    assert doc["last"]["result"] == "rolled-back" and "99-test" in doc["last"]["reason"]
    with pytest.raises(Refused, match="was rolled back on this node.*99-test.*--force"):
        apply(rig.node("a"), opts(ref), quiet())
    assert apply(rig.node("a"), opts(ref, force=True), quiet()).result == "staged"


def test_grub_gave_up_is_recorded_at_the_next_boot(rig: Rig, images, signed, oci_registry) -> None:
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    apply(rig.node("a"), opts(ref), quiet())
    store = BootStateStore(rig.oem)
    state = store.read().state
    store.write(state.next(tries=0))  # what grub leaves after the last try
    done = transitions.reconcile(rig.node("a"))
    assert any("trial of slot b failed" in line for line in done)
    doc = status(rig.node("a"))
    assert doc["trial"] is None and doc["slots"]["b"]["state"] == "bad"
    assert "no health report" in doc["last"]["reason"]


@pytest.mark.parametrize("point", ["download-half", "write-half", "after-write", "bootstate-copy-1"])
def test_a_cut_at_each_point_leaves_slot_a_good_and_a_rerun_succeeds(point: str, rig: Rig, images, signed,
                                                                    oci_registry, tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.setattr("node_services.upgrade.download.SYNC_EVERY", 1 << 16)
    big = make_image(tmp_path, "v2big", version="2.0.0", etc={"motd": "v2\n"}, pad=10 << 20)
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(big, ref, version="2.0.0", key=signed[0])
    rig.pause_at = point
    with pytest.raises(PowerCut):
        apply(rig.node("a"), opts(ref), quiet())
    reading = rig.node("a").reading()
    if point == "bootstate-copy-1":
        assert reading.state.trial == "b"  # the new state is in one copy, the newest: the trial runs
    else:
        assert reading.effective.good == "a" and reading.effective.trial is None
        assert "b" not in reading.markers
    rig.pause_at = None
    events = io.StringIO()
    rerun = apply(rig.node("a"), opts(ref), Progress(as_json=True, stream=events))
    written = '"name": "write slot"' in events.getvalue()
    assert written == (point in ("download-half", "write-half"))  # a slot that holds the image is kept
    if point == "bootstate-copy-1":
        assert rerun.result == "noop" and "already staged" in rerun.message
    else:
        assert rerun.result == "staged"
    if point == "download-half":
        assert any(c for c in rig.hooks if c == "download-half")
    assert rig.node("a").reading().state.trial == "b"
    data = big.read_bytes()
    assert hashlib.sha256(rig.slot_file("b").read_bytes()[:len(data)]).hexdigest() == hashlib.sha256(data).hexdigest()


def test_apply_during_a_trial_and_a_second_apply_are_refused(rig: Rig, images, signed, oci_registry) -> None:
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    apply(rig.node("a"), opts(ref), quiet())
    with pytest.raises(Refused, match="on trial"):
        apply(rig.node("b", trial=True), opts(ref), quiet())
    node = rig.node("a")
    with node.lock(), pytest.raises(Refused, match="another hci-upgrade is running"):
        apply(rig.node("a"), opts(ref), quiet())


def test_booted_from_fallback_never_writes_the_good_slot(rig: Rig, images, signed, oci_registry) -> None:
    """After B became good, a node that boots A by hand (grub menu) refuses to apply."""
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    apply(rig.node("a"), opts(ref), quiet())
    transitions.mark_good(rig.node("b", trial=True))
    before = rig.sha_of_slot("b")
    with pytest.raises(Refused, match="not the good slot"):
        apply(rig.node("a"), opts(ref), quiet())
    assert rig.sha_of_slot("b") == before


def test_status_json_contract(rig: Rig) -> None:
    doc = status(rig.node("a"))
    for key in ("booted", "good", "trial", "tries_left", "slots", "last"):
        assert key in doc
    for slot in ("a", "b"):
        assert {"version", "sha256", "state"} <= set(doc["slots"][slot])
    assert {"result", "reason"} <= set(doc["last"])
    assert doc["slots"]["a"]["state"] == "good" and doc["slots"]["a"]["version"] == "1.0.0"
    assert doc["slots"]["b"]["state"] == "empty"
    json.dumps(doc)


def test_rollback_switches_to_the_other_good_slot(rig: Rig, images, signed, oci_registry) -> None:
    with pytest.raises(Refused, match="nothing to roll back to"):
        transitions.rollback(rig.node("a"))
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    apply(rig.node("a"), opts(ref), quiet())
    assert "cancelled the trial of slot b" in transitions.rollback(rig.node("a"))
    assert rig.node("a").reading().state.trial is None
    apply(rig.node("a"), opts(ref), quiet())  # a cancelled upgrade may be applied again
    transitions.mark_good(rig.node("b", trial=True))
    assert "slot a (1.0.0) is the good slot now" in transitions.rollback(rig.node("b"))
    assert rig.node("a").reading().state.good == "a"


def test_finalize_carries_late_etc_changes_into_the_staged_slot(rig: Rig, images, signed, oci_registry) -> None:
    from node_services.upgrade.apply import finalize  # noqa: PLC0415

    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    node = rig.node("a")
    apply(node, opts(ref), quiet())
    assert ["systemctl", "start", "hci-upgrade-finalize.service"] in rig.runner.calls
    (node.etc_layer("a") / "upper/late.conf").write_text("after apply --no-reboot\n")
    assert "merged again" in finalize(node, quiet())
    assert (node.etc_layer("b") / "upper/late.conf").read_text() == "after apply --no-reboot\n"
    assert "nothing to do" in finalize(rig.node("b", trial=True), quiet())


def test_a_bad_signature_is_refused_even_for_the_running_image(rig: Rig, images, signed, oci_registry) -> None:
    ref = f"{oci_registry.host}/hcios/os:2.0.0"
    publish(images["2.0.0"], ref, version="2.0.0", key=signed[0])
    apply(rig.node("a"), opts(ref), quiet())
    transitions.mark_good(rig.node("b", trial=True))
    other = f"{oci_registry.host}/hcios/os:2.0.0-other"  # the same image in its own manifest
    publish(images["2.0.0"], other, version="2.0.0", key=new_key()[0], metadata={"note": "other key"})
    with pytest.raises(SignatureError):
        apply(rig.node("b"), opts(other), quiet())
    assert apply(rig.node("b"), opts(ref), quiet()).result == "noop"
