"""hci-platform: which k3s unit runs, the airgap archives linked for k3s to import, KubeVirt's
manifests on the creator only, useEmulation only when asked, the /dev/kvm warning."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hcicore.config import dump_config, load_config
from node_services import platform

from .config_cases import good, with_

pytestmark = pytest.mark.unit
SERVER_URL = "https://192.168.10.100:6443"


def _cfg(data: dict[str, Any]):
    return load_config(data, source="t")


def _role(role: str) -> dict[str, Any]:
    data = with_(with_(good(), "install.mode", "join"), "cluster.server_url", SERVER_URL)
    return with_(data, "install.role", role)


@pytest.fixture
def node(tmp_path: Path) -> dict[str, Path]:
    """A node's paths under tmp_path, with k3s, its config, two archives and the operator manifest."""
    paths = {name: tmp_path / name for name in ("run", "bin/k3s", "etc/config.yaml", "images", "k3s-images",
                                                "manifests", "k3s-manifests", "dev/kvm")}
    for name in ("bin/k3s", "etc/config.yaml", "images/k3s-airgap-images-amd64.tar.zst",
                 "images/kubevirt-virt-operator.oci.tar", "images/README", "manifests/kubevirt-operator.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"{name}\n")
    return paths


def _apply(cfg, p: dict[str, Path]) -> list[str]:
    return platform.apply(cfg, run_dir=p["run"], k3s_bin=p["bin/k3s"], k3s_config=p["etc/config.yaml"],
                          images=p["images"], k3s_images=p["k3s-images"], manifests=p["manifests"],
                          k3s_manifests=p["k3s-manifests"], kvm=p["dev/kvm"])


def test_the_creator_runs_the_server_with_images_and_kubevirt(node: dict[str, Path]) -> None:
    log = _apply(_cfg(good()), node)
    assert sorted(x.name for x in node["run"].iterdir()) == ["apiserver", "k3s"]
    links = {x.name: x.readlink() for x in node["k3s-images"].iterdir()}
    assert links == {"k3s-airgap-images-amd64.tar.zst": node["images"] / "k3s-airgap-images-amd64.tar.zst",
                     "kubevirt-virt-operator.oci.tar": node["images"] / "kubevirt-virt-operator.oci.tar"}
    deployed = sorted(x.name for x in node["k3s-manifests"].iterdir())
    assert deployed == [platform.KUBEVIRT_CR, "kubevirt-operator.yaml"]
    cr = yaml.safe_load((node["k3s-manifests"] / platform.KUBEVIRT_CR).read_text())
    assert (cr["kind"], cr["metadata"]["namespace"], cr["spec"]["imagePullPolicy"]) == ("KubeVirt", "kubevirt",
                                                                                        "IfNotPresent")
    assert "useEmulation" not in cr["spec"]["configuration"]["developerConfiguration"]
    assert (node["k3s-manifests"] / platform.KUBEVIRT_CR).stat().st_mode & 0o077 == 0
    # no /dev/kvm here: the journal says so, and how to fix it
    assert log[0].startswith("warning: ") and "cluster.kubevirt_emulation: true" in log[0]
    assert log[-1] == "k3s runs as k3s.service (server, create)"


def test_emulation_only_when_asked_and_no_warning_with_kvm(node: dict[str, Path]) -> None:
    cfg = _cfg(with_(good(), "cluster.kubevirt_emulation", True))
    assert platform.kubevirt_cr(cfg)["spec"]["configuration"]["developerConfiguration"]["useEmulation"] is True
    assert "runs VMs emulated" in (platform.kvm_warning(cfg, node["dev/kvm"]) or "")
    node["dev/kvm"].parent.mkdir(parents=True)
    node["dev/kvm"].touch()
    assert platform.kvm_warning(_cfg(good()), node["dev/kvm"]) is None
    assert not _apply(_cfg(good()), node)[0].startswith("warning")
    # the setting round-trips through the node config file
    assert load_config(yaml.safe_load(dump_config(cfg)), source="t").cluster.kubevirt_emulation is True


@pytest.mark.parametrize("role,unit,apiserver", [("server", "k3s", True), ("witness", "k3s", False),
                                                 ("agent", "k3s-agent", False)])
def test_joining_nodes_run_their_unit_and_deploy_nothing(node: dict[str, Path], role: str, unit: str,
                                                         apiserver: bool) -> None:
    log = _apply(_cfg(_role(role)), node)
    assert sorted(x.name for x in node["run"].iterdir()) == sorted([unit] + (["apiserver"] if apiserver else []))
    assert not node["k3s-manifests"].exists()  # only the creator deploys KubeVirt
    assert len(list(node["k3s-images"].iterdir())) == 2  # every node imports the bundle
    assert (role == "witness") == (not any(x.startswith("warning") for x in log))  # a witness runs no VMs


def test_no_k3s_binary_or_config_means_no_unit_and_stale_markers_go(node: dict[str, Path]) -> None:
    _apply(_cfg(good()), node)
    node["bin/k3s"].unlink()
    assert _apply(_cfg(good()), node) == [f"no {node['bin/k3s']} in this image (built without the k3s "
                                          "component): k3s stays off"]
    assert list(node["run"].iterdir()) == []
    node["bin/k3s"].write_text("k3s\n")
    node["etc/config.yaml"].unlink()
    assert "k3s stays off" in _apply(_cfg(good()), node)[0]
    assert list(node["run"].iterdir()) == []
    assert _apply(None, node) == ["no node config: k3s stays off"]


def test_images_follow_the_slot_an_upgrade_boots(node: dict[str, Path]) -> None:
    dest = node["k3s-images"]
    dest.mkdir()
    (dest / "kubevirt-virt-operator.oci.tar").write_text("an old copy\n")  # replaced by the link
    (dest / "operator-own.tar").write_text("put here by an operator\n")  # not ours: kept
    _apply(_cfg(good()), node)
    (node["images"] / "kubevirt-virt-operator.oci.tar").unlink()  # the next image drops it
    (node["images"] / "k3s-airgap-images-amd64.tar").write_text("new\n")
    _apply(_cfg(good()), node)
    assert sorted(x.name for x in dest.iterdir()) == ["k3s-airgap-images-amd64.tar",
                                                      "k3s-airgap-images-amd64.tar.zst", "operator-own.tar"]
    assert (dest / "operator-own.tar").read_text() == "put here by an operator\n"


def test_the_cr_needs_the_operator_manifest(node: dict[str, Path]) -> None:
    (node["manifests"] / "kubevirt-operator.yaml").unlink()
    assert platform.deploy_manifests(_cfg(good()), node["manifests"], node["k3s-manifests"]) == []

