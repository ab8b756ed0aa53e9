"""Bootstrap a dnf-based (Anolis) root filesystem from a kickstart.

The profile's repos and packages are rendered as a kickstart with pykickstart, parsed back
(so what reaches dnf is what a kickstart-driven Anaconda install would get), and installed with
``dnf --installroot``. Not exercised on the Debian build host: it needs dnf and an Anolis mirror.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from hcicore.command import run
from hcicore.errors import HciError, Problem, ValidationError

from ..profile import Profile
from .base import BuildContext


def render_build_kickstart(profile: Profile) -> str:
    lines = [f"# hcios build kickstart for {profile.name} {profile.version}"]
    for repo in profile.bootstrap.get("repos", []):
        lines.append(f"repo --name={repo['name']} --baseurl={repo['baseurl']}")
    lines += ["", "%packages --nocore --excludedocs --exclude-weakdeps"]
    lines += list(profile.bootstrap["packages"])
    lines += ["%end", ""]
    text = "\n".join(lines)
    parse_build_kickstart(text)  # never hand dnf something pykickstart would refuse
    return text


def parse_build_kickstart(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Return ([(repo name, baseurl)], [packages]) from a kickstart, or raise ValidationError."""
    from pykickstart.errors import KickstartError  # noqa: PLC0415
    from pykickstart.parser import KickstartParser  # noqa: PLC0415
    from pykickstart.version import makeVersion  # noqa: PLC0415

    handler = makeVersion()
    parser = KickstartParser(handler)
    try:
        parser.readKickstartFromString(text)
    except KickstartError as exc:
        raise ValidationError([Problem("bootstrap", f"kickstart does not parse: {exc}",
                                       "check repos and package names")]) from exc
    repos = [(r.name, r.baseurl) for r in handler.repo.repoList]
    return repos, list(handler.packages.packageList)


def dnf_argv(profile: Profile, root: Path, kickstart: str) -> list[str]:
    repos, packages = parse_build_kickstart(kickstart)
    signed = all(r.get("gpgkey") for r in profile.bootstrap.get("repos", []))
    argv = ["dnf", "-y", f"--installroot={root}", f"--releasever={profile.bootstrap['suite']}",
            "--setopt=install_weak_deps=False", "--setopt=tsflags=nodocs",
            "--setopt=gpgcheck=1" if signed else "--nogpgcheck", "--disablerepo=*"]
    for name, url in repos:
        argv += [f"--repofrompath={name},{url}", f"--enablerepo={name}"]
    return argv + ["install", *packages]


def bootstrap_dnf(ctx: BuildContext, base: Path | None, out: Path) -> None:
    if shutil.which("dnf") is None:
        raise HciError("the anolis profile needs dnf on the build host (apt-get install dnf) and a "
                       "reachable Anolis mirror")
    ks = render_build_kickstart(ctx.profile)
    (out / "build.ks").write_text(ks)
    run(dnf_argv(ctx.profile, out / "tree", ks), env=ctx.env)
