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
INSTALLED_FILE = "apt-installed.txt"  # `apt list --installed`: each package with its suites
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
    installed = target.parent / INSTALLED_FILE
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
        f"--customize-hook=chroot \"$1\" apt list --installed > {installed} 2>/dev/null",
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


def parse_origins(text: str, sources: list[dict[str, str]]) -> dict[str, list[str]]:
    """``apt list --installed`` ("name/suite1,suite2,now version arch [installed]") as the
    codenames each installed version is available from (bookworm, bookworm-security...)."""
    codename = {s["suite"]: s.get("codename", s["suite"]) for s in sources}
    origins = {}
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        name, slash, suites = head.partition("/")
        if not slash or not rest:
            continue  # "Listing..." and the like
        origins[name] = sorted(codename.get(s, s) for s in suites.split(",") if s and s != "now")
    return origins


def bootstrap_debian(ctx: BuildContext, base: Path | None, out: Path) -> None:
    tree = out / "tree"
    run(mmdebstrap_argv(ctx, tree), env={**ctx.env, "INITRD": "No"})
    record, installed = out / SOURCES_FILE, out / INSTALLED_FILE
    sources = parse_sources(record.read_text())
    origins = parse_origins(installed.read_text(), sources)
    (out / APT_SOURCES).write_text(json.dumps({"sources": sources, "origins": origins}, indent=1) + "\n")
    record.unlink()
    installed.unlink()
