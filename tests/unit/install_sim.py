"""The simulated install the install tests share: a config, a runner that partitions and copies
for real into tmp_path, and an Install built around them."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from hcicore.command import Result
from hcicore.config import load_config
from hcicore.layout import LABELS
from hcicore.progress import Progress
from installer.install import Install, InstallContext
from installer.source import ImageSource

from .install_fakes import FakeRunner, lsblk_json, part, wipefs_json

GiB = 1024**3

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJtzD8hnUz8S5ntZyq3kQ3h3rTuL7WkPzQ6sE1fWq2b ops@example.com"
HASH = "$6$hcisalt$Qec6ivgWo6OAkJqL7FWGjqYP3eYgVBjnN3zBjO6ckA8TXaqsndi62pcOgFWZxbVy1DLi5y46kHrtx8k6S62Ww."


def config(**install: Any):
    return load_config({
        "install": {"device": "/dev/vda", "automatic": False, **install},
        "node": {"hostname": "node1", "password_hash": HASH, "ssh_authorized_keys": [KEY]},
        "cluster": {"token": "secret-token-1234"},
    }, source="test")


class SimRunner(FakeRunner):
    def __init__(self, tmp: Path, *, lsblk: str | None = None, wipefs: str = "", corrupt: bool = False):
        super().__init__(lsblk or lsblk_json(size=40 * GiB), wipefs)
        self.tmp = tmp
        self.corrupt = corrupt
        self.parts = {label: tmp / f"vda{n}" for n, label in enumerate(LABELS, start=1)}

    def __call__(self, argv: list[str], check: bool = True, **kw: Any) -> Result:
        argv = [str(a) for a in argv]
        if argv[0] == "sgdisk":
            sysdev = self.tmp / "sysdevices" / "vda"
            (self.tmp / "sys").mkdir(exist_ok=True)
            for n, (label, path) in enumerate(self.parts.items(), start=1):
                path.write_bytes(b"")
                (sysdev / path.name).mkdir(parents=True, exist_ok=True)
                (sysdev / path.name / "partition").write_text(f"{n}\n")
                if not (self.tmp / "sys" / path.name).is_symlink():
                    (self.tmp / "sys" / path.name).symlink_to(sysdev / path.name)
            self.lsblk = lsblk_json(size=40 * GiB, pttype="gpt", children=[
                part(str(p), label=label) for label, p in self.parts.items()])
        if argv[0] == "dd":
            src = Path(argv[1].removeprefix("if="))
            dst = Path(argv[2].removeprefix("of="))
            data = src.read_bytes()
            if self.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.write_bytes(data)
        if argv[0] == "blkid":
            self.calls.append(argv)
            label = next(lb for lb, p in self.parts.items() if str(p) == argv[-1])
            return Result(argv, 0, label + "\n", "")
        return super().__call__(argv, check=check, **kw)




def make(tmp_path: Path, cfg, image: ImageSource, runner, *, confirm: bool = True,
         preflight=lambda cfg, size, **_: [], **kw: Any):
    asked: list[str] = []
    out = io.StringIO()

    def _confirm(text: str) -> bool:
        asked.append(text)
        return confirm

    ctx = InstallContext(image=image, progress=Progress(as_json=True, stream=out), confirm=_confirm,
                         preflight=preflight, runner=runner, work_dir=tmp_path / "work",
                         is_block=lambda p: True, version="9.9.9",
                         sys_block=tmp_path / "sys", dev_dir=tmp_path, notify=lambda *a, **k: None,
                         **{"efi_dir": tmp_path / "no-efi", "system_root": tmp_path / "no-signed-boot", **kw})
    return Install(cfg, ctx), asked, out


def events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _data_disk(runner: FakeRunner, *, used: bool) -> None:
    children = [part("/dev/vdb1", fstype="xfs")] if used else None
    runner.other_disks["/dev/vdb"] = (lsblk_json("/dev/vdb", size=100 * GiB, pttype="gpt" if used else None,
                                                 children=children),
                                      wipefs_json("gpt") if used else "")


class TwoDiskRunner(SimRunner):
    """lsblk of all disks also lists /dev/vdb, which carries another hcios install."""

    def __call__(self, argv: list[str], check: bool = True, **kw: Any) -> Result:
        argv = [str(a) for a in argv]
        if argv[0] == "lsblk" and not argv[-1].startswith("/dev/"):
            self.calls.append(argv)
            vda = json.loads(self.lsblk)["blockdevices"]
            vdb = json.loads(lsblk_json("/dev/vdb", pttype="gpt", children=[
                part("/dev/vdb4", label="hci-root-a"), part("/dev/vdb6", label="hci-persistent"),
                part("/dev/vdb7", label="data")], serial="DATA1"))["blockdevices"]
            return Result(argv, 0, json.dumps({"blockdevices": vda + vdb}), "")
        return super().__call__(argv, check, **kw)
