"""Network boot artifacts: ``DIR/pxe/{vmlinuz,initrd.img,rootfs.squashfs,boot.ipxe}``.

The same kernel, initramfs and squashfs as the ISO; the initramfs downloads the squashfs with
dracut's livenet module (``root=live:http://<base-url>/rootfs.squashfs``), so a PXE server only
needs to serve this directory over HTTP. ``boot.ipxe`` passes ``${hci-args}`` (the installer's
``hci.*`` kernel arguments) through.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import jinja2

from hcicore.digest import sha256_file
from hcicore.errors import Problem, ValidationError

from .bootargs import ACTIONS, CONSOLES, image_digest_arg, live_root_http

PXE_FILES = ("vmlinuz", "initrd.img", "rootfs.squashfs", "boot.ipxe")


def pxe_cmdline(base_url: str, *, console: str = "both", action: str = "install",
                extra: str = "", sha256: str | None = None) -> str:
    """Kernel command line for network boot from ``http://<base_url>/`` (base_url without scheme);
    ``sha256`` is the squashfs digest the installer checks before writing the downloaded image."""
    parts = [live_root_http(f"http://{base_url}/rootfs.squashfs"), CONSOLES[console],
             ACTIONS[action][1], image_digest_arg(sha256), extra]
    return " ".join(p for p in parts if p)


def render_boot_ipxe(version: str, sha256: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("boot.ipxe.j2").render(
        version=version,
        live_args=live_root_http("http://${base-url}/rootfs.squashfs"),
        console_args=CONSOLES["both"],
        action_args=ACTIONS["install"][1],
        digest_arg=image_digest_arg(sha256),
    )


def _place(src: Path, dst: Path) -> None:
    """Hard-link when possible (the squashfs is large), else copy; always readable (0644)."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    if dst.stat().st_mode & 0o444 != 0o444:
        if dst.stat().st_nlink > 1:  # never chmod the caller's file through a hard link
            dst.unlink()
            shutil.copyfile(src, dst)
        dst.chmod(0o644)


def write_pxe(*, squashfs: Path, kernel: Path, initrd: Path, out_dir: Path, version: str,
              squashfs_sha256: str | None = None) -> Path:
    """Write ``out_dir/pxe/`` and return that directory (``squashfs_sha256``: the digest when
    the caller has it already, else it is computed)."""
    problems = [
        Problem(name, f"{path} is not a file", "build the image first (hci build)")
        for name, path in (("squashfs", squashfs), ("kernel", kernel), ("initrd", initrd))
        if not Path(path).is_file()
    ]
    if problems:
        raise ValidationError(problems)
    pxe = out_dir / "pxe"
    pxe.mkdir(parents=True, exist_ok=True)
    _place(Path(kernel), pxe / "vmlinuz")
    _place(Path(initrd), pxe / "initrd.img")
    _place(Path(squashfs), pxe / "rootfs.squashfs")
    digest = squashfs_sha256 or sha256_file(pxe / "rootfs.squashfs")
    (pxe / "boot.ipxe").write_text(render_boot_ipxe(version, digest))
    return pxe
