"""``hci-platform``: what k3s starts with on this node, from the node config, at every boot.

It runs after cloud-init has written ``/etc/rancher/k3s/config.yaml`` and the token file
(``cloud_init/k3s.py``) and before k3s, on installed nodes only:

* **Which k3s runs.** It leaves a marker in ``RUN_DIR`` naming the unit this node runs
  (``k3s.service`` for a server or the witness, ``k3s-agent.service`` for an agent); both units
  are enabled in the image and start only on their marker (``ConditionPathExists``), so the choice
  follows the node config and nothing is enabled in ``/etc``. No marker when the image has no k3s
  binary (``make iso`` without the real artifacts) or cloud-init wrote no k3s config.
  ``apiserver`` marks a node whose API server the health gate asks (a server, not the witness).
* **Airgap images.** Every archive the image carries in ``IMAGES_SRC`` (k3s's airgap images, the
  KubeVirt images: the ISO's bundle, listed in the build manifest) is linked into k3s's
  ``agent/images`` directory, which k3s imports into containerd's ``k8s.io`` namespace each time it
  starts (what ``ctr -n k8s.io images import`` does), before it pulls anything. Links, not copies:
  no second copy on /var, and after an upgrade they name the new slot's archives; links to
  archives an upgrade dropped are removed.
* **KubeVirt.** On the node that creates the cluster, the operator manifest from the image and the
  ``KubeVirt`` CR go into k3s's auto-deploy directory. The CR sets ``useEmulation`` only when
  ``cluster.kubevirt_emulation`` asks for it; a node without ``/dev/kvm`` gets a warning in the
  journal naming the fix.
"""
from __future__ import annotations

from pathlib import Path

import click
import yaml

from hcicore.config import NodeConfig
from hcicore.files import write_atomic

from .bootcli import config_option, run_service

K3S_BIN = Path("/usr/local/bin/k3s")
K3S_CONFIG = Path("/etc/rancher/k3s/config.yaml")
IMAGES_SRC = Path("/usr/share/hcios/images")
MANIFESTS_SRC = Path("/usr/share/hcios/manifests")
K3S_IMAGES = Path("/var/lib/rancher/k3s/agent/images")
K3S_MANIFESTS = Path("/var/lib/rancher/k3s/server/manifests")
RUN_DIR = Path("/run/hcios/platform")
KVM = Path("/dev/kvm")
KUBEVIRT_OPERATOR = "kubevirt-operator.yaml"
KUBEVIRT_CR = "hcios-kubevirt-cr.yaml"
# what k3s imports from agent/images (pkg/agent/containerd: tarballs by these suffixes)
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tar.bz2", ".tar.lz4", ".tar.xz", ".tar.zst")


def k3s_unit(cfg: NodeConfig) -> str:
    return "k3s-agent" if cfg.install.role == "agent" else "k3s"


def kubevirt_cr(cfg: NodeConfig) -> dict:
    """The ``KubeVirt`` resource: images from the node (``IfNotPresent``: the bundle imported them),
    ``useEmulation`` only when the config asks."""
    spec: dict = {"imagePullPolicy": "IfNotPresent", "certificateRotateStrategy": {},
                  "workloadUpdateStrategy": {}, "configuration": {"developerConfiguration": {"featureGates": []}}}
    if cfg.cluster.kubevirt_emulation:
        spec["configuration"]["developerConfiguration"]["useEmulation"] = True
    return {"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
            "metadata": {"name": "kubevirt", "namespace": "kubevirt"}, "spec": spec}


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


def stage_images(src: Path = IMAGES_SRC, dest: Path = K3S_IMAGES) -> list[str]:
    """Link every archive of ``src`` into ``dest``; drop links into ``src`` that name nothing now."""
    wanted = {p.name: p for p in sorted(src.iterdir()) if _is_archive(p)} if src.is_dir() else {}
    dest.mkdir(parents=True, exist_ok=True)
    for entry in dest.iterdir():
        if entry.is_symlink() and Path(entry.readlink()).parent == src and entry.name not in wanted:
            entry.unlink()
    for name, target in wanted.items():
        link = dest / name
        if link.is_symlink() and link.readlink() == target:
            continue
        if link.exists() or link.is_symlink():
            link.unlink()  # an older copy or link: the image's archive wins
        link.symlink_to(target)
    return sorted(wanted)


def deploy_manifests(cfg: NodeConfig, src: Path = MANIFESTS_SRC, dest: Path = K3S_MANIFESTS) -> list[str]:
    """The image's manifests and the KubeVirt CR into k3s's auto-deploy directory (creator only)."""
    if not (cfg.install.mode == "create" and cfg.install.role == "server"):
        return []
    done = []
    for manifest in sorted(src.glob("*.yaml")) if src.is_dir() else []:
        write_atomic(dest / manifest.name, manifest.read_bytes(), mode=0o600, dir_mode=0o700)
        done.append(manifest.name)
    if KUBEVIRT_OPERATOR in done:  # the CR without its operator (and CRD) would fail to apply forever
        write_atomic(dest / KUBEVIRT_CR, yaml.safe_dump(kubevirt_cr(cfg), sort_keys=False).encode(),
                     mode=0o600, dir_mode=0o700)
        done.append(KUBEVIRT_CR)
    return done


def kvm_warning(cfg: NodeConfig, kvm: Path = KVM) -> str | None:
    if cfg.install.role == "witness" or kvm.exists():
        return None
    if cfg.cluster.kubevirt_emulation:
        return f"{kvm} is missing: KubeVirt runs VMs emulated (cluster.kubevirt_emulation: true), slowly"
    return (f"{kvm} is missing: KubeVirt cannot start VMs on this node; enable VT-x/AMD-V in the "
            "firmware, or set cluster.kubevirt_emulation: true to run them emulated")


def apply(cfg: NodeConfig | None, *, run_dir: Path = RUN_DIR, k3s_bin: Path = K3S_BIN,
          k3s_config: Path = K3S_CONFIG, images: Path = IMAGES_SRC, k3s_images: Path = K3S_IMAGES,
          manifests: Path = MANIFESTS_SRC, k3s_manifests: Path = K3S_MANIFESTS, kvm: Path = KVM) -> list[str]:
    """Do this boot's work; returns what was done (one line each), warnings first."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for marker in run_dir.iterdir():
        marker.unlink()
    if cfg is None:
        return ["no node config: k3s stays off"]
    if not k3s_bin.is_file():
        return [f"no {k3s_bin} in this image (built without the k3s component): k3s stays off"]
    if not k3s_config.is_file():
        return [f"no {k3s_config} (cloud-init wrote none): k3s stays off"]
    log = []
    warning = kvm_warning(cfg, kvm)
    if warning:
        log.append(f"warning: {warning}")
    staged = stage_images(images, k3s_images)
    log.append(f"airgap images for k3s to import: {', '.join(staged) or 'none in the image'}")
    deployed = deploy_manifests(cfg, manifests, k3s_manifests)
    if deployed:
        log.append(f"auto-deploy manifests: {', '.join(deployed)}")
    unit = k3s_unit(cfg)
    (run_dir / unit).write_text(f"{cfg.install.role}\n")
    if cfg.install.role == "server":
        (run_dir / "apiserver").write_text("\n")
    log.append(f"k3s runs as {unit}.service ({cfg.install.role}, {cfg.install.mode})")
    return log


@click.command("hci-platform")
@config_option
def main(config_file: str | None) -> None:
    """Stage k3s's airgap images and manifests and choose its unit, from the node config."""
    run_service(config_file, apply)


if __name__ == "__main__":
    main()
