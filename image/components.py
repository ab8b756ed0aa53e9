"""Pinned components (k3s, airgap images, KubeVirt, SPDK agent) from a lock file."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hcicore.errors import Problem, ValidationError
from hcicore.schema import load_schema, schema_problems
from hcicore.yamlio import load_yaml_file


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    url: str
    sha256: str
    kind: str  # binary | image-archive | manifest | oci-image | spdk-source (built: image/spdk.py)
    dest: str  # absolute path inside the rootfs
    mode: str = "0644"
    airgap: bool = False  # also copied into the ISO's airgap bundle

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What ends up in the image; the URL is only where the bytes came from."""
        d = asdict(self)
        del d["url"]
        return d


def load_lock(path: Path, *, field: str = "components") -> list[Component]:
    """Read a lock file; problems are reported as ``<field>[i].<key>`` of the lock file."""
    raw = load_yaml_file(path)
    problems = [Problem(f"{field}.lock({path.name}).{p.path}", p.message, p.fix)
                for p in schema_problems(load_schema("image", "components.schema.json"), raw)]
    if problems:
        raise ValidationError(problems)
    seen_names: set[str] = set()
    seen_dest: set[str] = set()
    out: list[Component] = []
    for i, entry in enumerate(raw["components"]):
        where = f"{field}.lock({path.name}).components[{i}]"
        if entry["name"] in seen_names:
            problems.append(Problem(f"{where}.name", f"{entry['name']!r} appears twice", "names must be unique"))
        if entry["dest"] in seen_dest:
            problems.append(Problem(f"{where}.dest", f"{entry['dest']!r} is used twice", "give each its own path"))
        if entry["kind"] == "oci-image" and not entry["url"].startswith("docker://"):
            problems.append(Problem(f"{where}.url", "an oci-image comes from a registry",
                                    "write docker://REGISTRY/REPO@sha256:<manifest digest>"))
        elif entry["kind"] == "oci-image" and not entry["url"].endswith(f"@sha256:{entry['sha256']}"):
            problems.append(Problem(f"{where}.url", "must pull by the pinned digest",
                                    f"end the reference with @sha256:{entry['sha256']}"))
        elif entry["kind"] != "oci-image" and entry["url"].startswith("docker://"):
            problems.append(Problem(f"{where}.kind", "a docker:// URL is a registry image",
                                    "use kind: oci-image"))
        if ".." in Path(entry["dest"]).parts:
            problems.append(Problem(f"{where}.dest", "must not contain '..'", "use a plain absolute path"))
        seen_names.add(entry["name"])
        seen_dest.add(entry["dest"])
        mode = entry.get("mode", "0755" if entry["kind"] == "binary" else "0644")
        out.append(Component(entry["name"], entry["version"], entry["url"], entry["sha256"], entry["kind"],
                             entry["dest"], mode, bool(entry.get("airgap", False))))
    if problems:
        raise ValidationError(problems)
    return out
