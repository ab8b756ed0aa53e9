"""``hci build``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from hcicore.progress import Progress

from .cache import StageCache, default_cache_root
from .pipeline import build as run_build
from .profile import load_profile, resolve_profile_path


@click.command("build")
@click.argument("profile", required=False)
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output directory.")
@click.option("--version", "version", help="Override the profile's version.")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), help="Stage cache (default ~/.cache/hcios).")
@click.option("--json", "as_json", is_flag=True, help="Progress as JSON lines on stdout.")
@click.option("--no-iso", is_flag=True, help="Only the slot image, OCI image and manifest.")
@click.option("--allow-missing-components", is_flag=True,
              help="Build without components that can't be downloaded (recorded in the manifest).")
@click.option("--check", is_flag=True, help="Validate the profile and lock file, then stop.")
def build(profile: str | None, out: Path, version: str | None, cache_dir: Path | None, as_json: bool,
          no_iso: bool, allow_missing_components: bool, check: bool) -> None:
    """Build the node OS from PROFILE (a file, a directory or a built-in name; default: default)."""
    prof = load_profile(resolve_profile_path(profile))
    progress = Progress(as_json=as_json)
    if check:
        click.echo(f"ok: {prof.name} {prof.version} ({prof.path})")
        return
    cache = StageCache(cache_dir or default_cache_root())
    result = run_build(prof, out, cache=cache, progress=progress, version=version,
                       allow_missing_components=allow_missing_components, with_iso=not no_iso)
    summary = {"event": "result", "out": str(out), "version": result.version, "built": result.built,
               "artifacts": {k: str(v) for k, v in result.artifacts.items()}}
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(f"built {prof.name} {result.version} into {out} "
                   f"({len(result.built)} of {len(result.stages)} stages rebuilt)")
@click.command("publish")
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.argument("ref")
@click.option("--sign-key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="PEM ECDSA P-256 private key: push a cosign-format signature too.")
@click.option("--plain-http", is_flag=True, help="The registry speaks plain HTTP (a test registry on 127.0.0.1).")
@click.option("--json", "as_json", is_flag=True, help="Progress and the result as JSON lines on stdout.")
def publish_cmd(out_dir: Path, ref: str, sign_key: Path | None, plain_http: bool, as_json: bool) -> None:
    """Push OUT_DIR's slot image to REF (HOST/REPO:TAG) as an hcios upgrade artifact."""
    from .publish import publish  # noqa: PLC0415  (oras is only needed here)

    progress = Progress(as_json=as_json)
    done = publish(out_dir, ref, sign_key=sign_key, plain_http=plain_http, progress=progress)
    record = {"event": "result", "reference": done.reference, "digest": done.manifest_digest,
              "sha256": done.sha256, "size": done.size, "version": done.version, "signed": done.signed}
    click.echo(json.dumps(record, sort_keys=True) if as_json else f"published {done.version} as {done.reference}")


commands = [build, publish_cmd]
