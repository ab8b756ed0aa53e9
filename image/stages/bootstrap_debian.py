"""Bootstrap a Debian root filesystem with mmdebstrap."""
from __future__ import annotations

import json
from pathlib import Path

from hcicore.command import run

from .base import BuildContext

# Docs and manuals are not needed on an immutable node; copyright files stay (licences).
DPKG_OPTS = [
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
]


# Each suite's Release fields, kept before mmdebstrap empties /var/lib/apt/lists: the build
# manifest says which snapshot of each suite the packages came from.
RELEASE_FIELDS = ("Origin", "Suite", "Codename", "Version", "Date")
SOURCES_FILE = "apt-sources.txt"
APT_SOURCES = "apt-sources.json"  # in the stage's output, beside tree/


def source_lines(boot: dict) -> list[str]:
    """The suites after the first, as sources.list lines with the bootstrap's components."""
    comps = " ".join(boot.get("components", ["main"]))
    return [f"deb {extra['mirror']} {extra['suite']} {comps}" for extra in boot.get("extra_suites", [])]


def mmdebstrap_argv(ctx: BuildContext, target: Path) -> list[str]:
    boot = ctx.profile.bootstrap
    archives = ctx.cache.apt_archives
    fields = "|".join(RELEASE_FIELDS)
    record = target.parent / SOURCES_FILE
    argv = [
        "mmdebstrap", "--mode=root", "--format=directory",
        f"--variant={boot.get('variant', 'apt')}",
        f"--architectures={ctx.profile.arch}",
        f"--components={','.join(boot.get('components', ['main']))}",
        f"--include={','.join(boot['packages'])}",
        "--aptopt=Acquire::Retries \"3\"",
        "--setup-hook=mkdir -p \"$1/var/cache/apt/archives\"",
        f"--setup-hook=sync-in {archives} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {archives}",
        "--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb",
        "--customize-hook=for f in \"$1\"/var/lib/apt/lists/*Release; do echo \"List: ${f##*/}\"; "
        f"grep -E '^({fields}):' \"$f\"; echo; done > {record}",
    ]
    argv += [f"--dpkgopt={o}" for o in DPKG_OPTS]
    argv += [boot["suite"], str(target), boot["mirror"], *source_lines(boot)]
    return argv


def parse_sources(text: str) -> list[dict[str, str]]:
    """The hook's record: one stanza of Release fields per apt list, by suite."""
    stanzas = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "Suite" in fields:
            stanzas.append({k.lower(): fields[k] for k in ("List", *RELEASE_FIELDS) if k in fields})
    return sorted(stanzas, key=lambda s: s["suite"])


def bootstrap_debian(ctx: BuildContext, base: Path | None, out: Path) -> None:
    tree = out / "tree"
    run(mmdebstrap_argv(ctx, tree), env={**ctx.env, "INITRD": "No"})
    record = out / SOURCES_FILE
    (out / APT_SOURCES).write_text(json.dumps(parse_sources(record.read_text()), indent=1) + "\n")
    record.unlink()
