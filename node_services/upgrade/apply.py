"""``hci-upgrade apply REF``: put a new image into the inactive slot and set it on trial.

1. Under the lock, from the boot state: the booted slot must be the good slot (no apply during
   a trial, none from a slot picked by hand); the target is the other slot, so the good slot is
   never written, also after a fallback.
2. Resolve REF to a manifest digest; refuse, before any byte is written: a wrong signature (with
   ``upgrade.trusted_keys``), another architecture or compression, a downgrade (unless
   ``--allow-downgrade``), an image this node rolled back from (unless ``--force``), an image
   bigger than the slot. The same digest as the running slot is a no-op.
3. Download into /var (resumable) and verify the digest; refuse a file that is not an xz
   squashfs with /boot/vmlinuz and /boot/initrd.img.
4. Take the target's good marker away (it is not bootable from here on), write it (O_DIRECT),
   fsync, read it back and compare the sha256 (skipped when it already holds the image).
5. Merge /etc for the target (:mod:`.etcmerge`); record the slot; set the one-shot trial with
   fresh tries in both boot state copies; reboot unless ``--no-reboot``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hcicore import cosign
from hcicore.artifact import SlotArtifact, parse_manifest, version_key
from hcicore.bootstate import MAX_TRIES, other
from hcicore.oci import Manifest, Reference, Registry, parse_reference
from hcicore.progress import Progress
from hcicore.squashfs import NotASlotImage, check_slot_image

from . import download, etcmerge, slotio, transitions
from .node import Node, Refused

log = logging.getLogger("hcios.upgrade")
REBOOT_REQUEST = Path("/run/hcios/reboot-after-job")


@dataclass(frozen=True)
class ApplyOptions:
    ref: str
    allow_downgrade: bool = False
    force: bool = False
    reboot: bool = True
    plain_http: bool = False
    tries: int | None = None
    reboot_after_job: bool = False  # SUC plans: a host unit reboots once this process has exited


@dataclass
class ApplyResult:
    result: str  # staged | noop
    message: str
    slot: str
    version: str
    sha256: str
    manifest_digest: str
    conflicts: list[dict[str, str]]
    reboot: bool


class _Meter:
    """Progress events at most every few seconds (and at the end)."""

    def __init__(self, progress: Progress, name: str):
        self.progress, self.name, self.last = progress, name, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.last >= 2:
            self.last = now
            self.progress.emit("progress", name=self.name, bytes=done, total=total,
                               percent=round(100 * done / total, 1) if total else 100.0)


def check_signature(registry: Registry, ref: Reference, manifest: Manifest, keys_pem: list[str],
                    progress: Progress) -> str | None:
    """With trusted keys: the name of the key that signed, or SignatureError. Without: None."""
    if not keys_pem:
        progress.warning("no upgrade.trusted_keys in the node config: the artifact's signature is not checked")
        return None
    keys = {f"upgrade.trusted_keys[{i}]": cosign.load_public_key(pem, where=f"upgrade.trusted_keys[{i}]")
            for i, pem in enumerate(keys_pem)}
    tag = cosign.signature_tag(manifest.digest)
    sig = registry.manifest(ref.repository, tag, optional=True)
    layers: list[tuple[bytes, str | None]] = []
    try:
        for layer in (sig.data.get("layers") or []) if sig is not None else []:
            data = registry.blob_bytes(ref.repository, layer["digest"], limit=1 << 20)
            layers.append((data, (layer.get("annotations") or {}).get(cosign.SIGNATURE_ANNOTATION)))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise cosign.SignatureError(f"{ref.name}:{tag} is not a signature manifest ({type(exc).__name__}: {exc})") from exc
    return cosign.verify(manifest.digest, layers, keys)


def _refusals(node: Node, art: SlotArtifact, opts: ApplyOptions, target: str) -> None:
    record = node.record()
    booted = record.slot(node.disk.slot)
    if art.arch and art.arch != node.arch:
        raise Refused(f"the image is for {art.arch}, this node is {node.arch}")
    if art.compression and art.compression != "xz":
        raise Refused(f"the image is a {art.compression} squashfs; grub boots slot images in xz")
    current = str(booted.get("version") or "")
    if current and version_key(art.version) < version_key(current) and not opts.allow_downgrade:
        raise Refused(f"{art.version} is older than the running {current}: a downgrade "
                      "(--allow-downgrade to apply it anyway)")
    seen = record.rolled_back_entry(art.sha256, art.version)
    if seen and not opts.force:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seen.get("at", 0)))
        raise Refused(f"version {seen.get('version')} (sha256 {seen.get('sha256')}) was rolled back on this node "
                      f"at {when}: {seen.get('reason')} (--force to apply it again)")
    slot_bytes = slotio.device_size(node.disk.slot_device(target))
    if art.size > slot_bytes:
        raise Refused(f"the image is {art.size} bytes, slot {target} holds {slot_bytes}: it does not fit "
                      f"({art.size - slot_bytes} bytes too many); reinstall with bigger slots")


def _check_state(node: Node) -> tuple[str, str]:
    """(booted, target) when an apply may start; Refused otherwise."""
    state = node.reading().effective
    booted = node.disk.slot
    if state.trial == booted:
        raise Refused(f"slot {booted} is on trial and not yet marked good; wait for the health gate "
                      "(hci-upgrade status), or hci-upgrade rollback")
    if booted != state.good:
        raise Refused(f"the booted slot {booted} is not the good slot {state.good}; reboot into slot "
                      f"{state.good} (or hci-upgrade mark-good to keep slot {booted})")
    return booted, other(booted)


def apply(node: Node, opts: ApplyOptions, progress: Progress) -> ApplyResult:
    with node.lock():
        # the books of a trial grub gave up on, even before hci-health ran on this boot: an image
        # that just failed is then refused (without --force) instead of getting fresh tries
        for line in transitions.reconcile(node):
            progress.info(line)
        return _apply(node, opts, progress)


def _apply(node: Node, opts: ApplyOptions, progress: Progress) -> ApplyResult:
    settings = node.upgrade_settings
    tries = opts.tries or settings.tries
    if not 1 <= tries <= MAX_TRIES:
        raise Refused(f"--tries {tries}: give 1 to {MAX_TRIES}")
    booted, target = _check_state(node)
    ref = parse_reference(opts.ref)
    registry = Registry(ref.host, plain_http=opts.plain_http or ref.host in settings.insecure_registries)
    progress.start("resolve", detail=str(ref))
    manifest = registry.resolve(ref)
    art = parse_manifest(manifest.raw, ref=str(ref))
    progress.done("resolve", digest=manifest.digest, version=art.version, sha256=art.sha256, size=art.size)
    # first the signature: an artifact this node would refuse is refused even when it holds what runs
    progress.start("verify signature", detail=cosign.signature_tag(manifest.digest))
    signer = check_signature(registry, ref, manifest, settings.trusted_keys, progress)
    progress.done("verify signature", signer=signer)
    record = node.record()
    state = node.reading().effective

    def result(kind: str, message: str, conflicts: list | None = None, reboot: bool = False) -> ApplyResult:
        return ApplyResult(kind, message, target, art.version, art.sha256, manifest.digest, conflicts or [], reboot)

    if record.slot(booted).get("sha256") == art.sha256:
        return result("noop", f"slot {booted} already runs {art.version} ({art.sha256}); nothing to do")
    if state.trial == target and state.tries > 0 and record.slot(target).get("sha256") == art.sha256:
        _staged(node, opts, target, art)  # a re-run (a retried Job) finishes what the first one did
        return result("noop", f"{art.version} is already staged in slot {target}; reboot to try it",
                      reboot=opts.reboot)
    _refusals(node, art, opts, target)

    device = node.disk.slot_device(target)
    node.disk.check_same_disk(device)
    holds = _holds(record.slot(target), art, device)  # a re-run after a cut past the write
    if not holds:
        progress.start("download", detail=f"{art.size} bytes")
        image = download.fetch_image(registry, ref.repository, art.image.digest, art.size, node.staging,
                                     progress=_Meter(progress, "download"), hook=node.hook, note=progress.info)
        progress.done("download")
        try:
            check_slot_image(image, where=f"the image of {ref}")
        except NotASlotImage:
            download.discard(node.staging)
            raise
    _make_unbootable(node, target, art, str(ref))
    if holds:
        progress.info(f"slot {target} already holds {art.sha256} (read back): not written again")
    else:
        progress.start("write slot", detail=f"slot {target} ({device})")
        slotio.write_slot(image, device, progress=_Meter(progress, "write slot"), hook=node.hook)
        progress.done("write slot")
        progress.start("verify slot", detail="read back with O_DIRECT, sha256")
        slotio.verify_slot(device, art.size, art.sha256)
        progress.done("verify slot")
    node.hook("after-write")
    conflicts = merge_etc(node, booted, target, progress)
    record = node.record()
    record.slot(target).update(written_at=int(time.time()))
    record.body["etc_conflicts"] = conflicts
    record.set_last("apply", "staged", version=art.version, sha256=art.sha256, ref=str(ref),
                    manifest=manifest.digest, slot=target)
    node.records.write(record)
    reading = node.reading()
    node.boot.write(reading.effective.next(trial=target, tries=tries), after=reading)
    _staged(node, opts, target, art)
    return result("staged", f"{art.version} is in slot {target}, on trial for {tries} boot(s)", conflicts,
                  reboot=opts.reboot)


def merge_etc(node: Node, source: str, target: str, progress: Progress) -> list[dict[str, str]]:
    """Build ``target``'s /etc layer from ``source``'s (the booted slot) over their images."""
    progress.start("merge /etc", detail=f"slot {source} -> slot {target}")
    with node.mounted_slot(source) as old, node.mounted_slot(target) as new:
        merged = etcmerge.build_layer(node.etc_layer(source) / "upper", old / "etc", new / "etc",
                                      node.etc_layer(target))
    progress.done("merge /etc", kept=len(merged.kept), dropped=len(merged.dropped), conflicts=len(merged.conflicts))
    for conflict in merged.conflicts:
        progress.warning(f"/etc conflict: {conflict['path']}: {conflict['kind']}; kept the {conflict['kept']} version")
    return merged.conflicts


def finalize(node: Node, progress: Progress) -> str:
    """At shutdown, with a trial staged from the running slot: merge /etc again, so changes made
    after ``apply --no-reboot`` reach the new slot (ostree's finalize-staged)."""
    state = node.reading().effective
    booted = node.disk.slot
    if not state.trial_pending or booted != state.good:
        return "no staged trial: nothing to do"
    record = node.record()
    last = record.body.get("last") or {}
    if last.get("result") != "staged" or last.get("slot") != state.trial:
        return "the staged trial was not made from this boot: left as it is"
    record.body["etc_conflicts"] = merge_etc(node, booted, state.trial, progress)
    node.records.write(record)
    return f"/etc of slot {state.trial} merged again from slot {booted}"


def _staged(node: Node, opts: ApplyOptions, target: str, art: SlotArtifact) -> None:
    """What follows a staged trial: the download goes, /etc is merged again at the next shutdown
    (changes made from now on reach the new slot), and a Job's reboot is asked for."""
    download.discard(node.staging)
    node.runner(["systemctl", "start", "hci-upgrade-finalize.service"], check=False)
    if opts.reboot_after_job:
        REBOOT_REQUEST.parent.mkdir(parents=True, exist_ok=True)
        REBOOT_REQUEST.write_text(json.dumps({"pid": os.getpid(), "slot": target, "sha256": art.sha256}))


def _make_unbootable(node: Node, target: str, art: SlotArtifact, ref: str) -> None:
    """Before the first byte: no marker, no trial of the target; the record says what comes."""
    node.boot.set_marker(target, False)
    reading = node.reading()
    state = reading.effective
    if state.trial is not None:
        node.boot.write(state.next(trial=None, tries=0), after=reading)
    record = node.record()
    previous = record.slot(target)
    holds = previous.get("sha256") == art.sha256 and previous.get("written_at")
    record.body["slots"][target] = {"version": art.version, "sha256": art.sha256, "size": art.size, "ref": ref,
                                    "written_at": previous.get("written_at") if holds else None, "bad": None}
    node.records.write(record)


def _holds(info: dict, art: SlotArtifact, device: Path) -> bool:
    """The slot already holds exactly this image (a re-run after a cut)."""
    if info.get("sha256") != art.sha256:
        return False
    try:
        slotio.verify_slot(device, art.size, art.sha256)
    except (slotio.SlotReadBackFailed, OSError):
        return False
    return True
