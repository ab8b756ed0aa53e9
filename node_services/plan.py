"""Rolling OS upgrades the k3s-native way: a system-upgrade-controller (SUC) Plan.

``hci upgrade-plan REF`` renders a Plan (upgrade.cattle.io/v1) that SUC runs node by node:

* ``concurrency: 1``, ``cordon`` and ``drain`` (SUC's own drain init container);
* ``prepare`` (busybox from the k3s airgap images, chroot into the host): ``hci-upgrade
  cluster-gate`` waits until every node this plan revision already upgraded reports, in its
  ``hcios.dev/good-sha256`` annotation, the new image as booted and marked good, and fails at
  once when one of them rolled back (so the rollout stops at the first failure, SUC#282);
* ``upgrade``: ``hci-upgrade apply --no-reboot --reboot-after-job REF`` on the host. The Job
  ends when the apply exits 0; ``hci-upgrade-reboot.path`` on the host then reboots, 30 s later,
  so the Job is reported complete first (rebooting inside the Job fails it: SUC#23);
* ``version`` is REF's tag or digest: SUC's plan hash covers it, so a new REF runs on every node.

On each healthy boot ``hci-health`` annotates its node (:func:`annotate_good`) with the sha256 of
the image it runs, the slot, the version and the last upgrade result.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import requests

from hcicore.errors import HciError
from hcicore.oci import parse_reference

log = logging.getLogger("hcios.plan")

BUSYBOX = "rancher/mirrored-library-busybox:1.37.0"  # in k3s's airgap image list
ANN_GOOD = "hcios.dev/good-sha256"
ANN_SLOT = "hcios.dev/slot"
ANN_VERSION = "hcios.dev/version"
ANN_RESULT = "hcios.dev/upgrade-result"
SA_DIR = "/run/hcios/suc"  # on the host: the prepare step's service account token and CA
KUBECONFIGS = (Path("/etc/rancher/k3s/k3s.yaml"), Path("/var/lib/rancher/k3s/agent/kubelet.kubeconfig"))
K3S = Path("/usr/local/bin/k3s")

# The prepare step: hand the pod's service account to the host command, then gate.
PREPARE = ("set -e; mkdir -p /host{sa}; umask 077; "
           "cp /var/run/secrets/kubernetes.io/serviceaccount/token /var/run/secrets/kubernetes.io/serviceaccount/ca.crt "
           "/host{sa}/; exec chroot /host hci-upgrade cluster-gate --plan {plan} "
           "--hash \"$(SYSTEM_UPGRADE_PLAN_LATEST_HASH)\" --sha256 {sha256} --node \"$(SYSTEM_UPGRADE_NODE_NAME)\"")


def plan_version(ref_text: str) -> str:
    """A label-safe version for SUC (its hash input): the tag, or the digest's first 32 hex digits."""
    ref = parse_reference(ref_text)
    if ref.digest:
        return ref.digest.replace("sha256:", "sha256-")[:39]
    return (ref.tag or "").replace("+", "-")


def render_plan(ref_text: str, *, sha256: str, name: str = "hcios-os", namespace: str = "system-upgrade",
                plain_http: bool = False, drain_timeout: str = "15m", image: str = BUSYBOX) -> dict[str, Any]:
    """The Plan for ``ref_text``; ``sha256`` is the slot image's digest the nodes must report."""
    parse_reference(ref_text)
    apply_args = ["hci-upgrade", "apply", "--no-reboot", "--reboot-after-job", "--json"]
    if plain_http:
        apply_args.append("--plain-http")
    return {
        "apiVersion": "upgrade.cattle.io/v1",
        "kind": "Plan",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "hcios"}},
        "spec": {
            "concurrency": 1,
            "version": plan_version(ref_text),
            "serviceAccountName": "system-upgrade",
            "nodeSelector": {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In",
                                                   "values": ["linux"]}]},
            "tolerations": [{"operator": "Exists"}],
            "cordon": True,
            "drain": {"force": True, "ignoreDaemonSets": True, "deleteEmptydirData": True,
                      "timeout": drain_timeout},
            "prepare": {"image": image, "command": ["sh", "-c"],
                        "args": [PREPARE.format(sa=SA_DIR, plan=name, sha256=sha256)]},
            "upgrade": {"image": image, "command": ["chroot", "/host"], "args": [*apply_args, ref_text]},
        },
    }


# ---- on the node ------------------------------------------------------------------------------

def annotate_good(node: Any) -> bool:
    """Tell the cluster what this node runs (best effort; False where no k3s runs)."""
    config = next((p for p in KUBECONFIGS if p.exists()), None)
    if config is None or not K3S.exists() or node.config is None:
        return False
    record = node.record()
    info = record.slot(node.disk.slot)
    last = record.body.get("last") or {}
    result = f"{last.get('result')}: {last.get('reason')}" if last.get("reason") else str(last.get("result"))
    argv = [str(K3S), "kubectl", "--kubeconfig", str(config), "annotate", "--overwrite", "node",
            node.config.node.hostname, f"{ANN_GOOD}={info.get('sha256')}", f"{ANN_SLOT}={node.disk.slot}",
            f"{ANN_VERSION}={info.get('version')}", f"{ANN_RESULT}={result[:200]}"]
    got = node.runner(argv, check=False)
    if got.returncode != 0:
        log.warning("could not annotate node %s: %s", node.config.node.hostname, got.stderr.strip()[-300:])
    return got.returncode == 0


class GateFailed(HciError):
    """A node this plan already upgraded rolled back: stop the rollout."""


def gate_verdict(nodes: list[dict], *, plan: str, plan_hash: str, sha256: str, me: str) -> tuple[bool, str]:
    """(ready, why) from the Node objects: ready when every other node that completed this plan
    revision runs ``sha256`` marked good; GateFailed when one rolled back."""
    waiting = []
    for item in nodes:
        meta = item.get("metadata", {})
        node_name = meta.get("name", "?")
        if node_name == me or (meta.get("labels") or {}).get(f"plan.upgrade.cattle.io/{plan}") != plan_hash:
            continue
        ann = meta.get("annotations") or {}
        if ann.get(ANN_GOOD) == sha256:
            continue
        if str(ann.get(ANN_RESULT, "")).startswith("rolled-back"):
            raise GateFailed(f"node {node_name} rolled back from this upgrade ({ann.get(ANN_RESULT)}); "
                             "stopping the rollout")
        waiting.append(node_name)
    if waiting:
        return False, f"waiting for {', '.join(waiting)} to come up healthy on the new image"
    return True, "every upgraded node is healthy on the new image"


def cluster_gate(*, plan: str, plan_hash: str, sha256: str, me: str, timeout: float = 3600,
                 api: str | None = None, sa_dir: Path = Path(SA_DIR), sleep: float = 10.0) -> str:
    """Poll the API server (the prepare pod's service account) until :func:`gate_verdict` says go."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    base = api or f"https://{host}:{port}"
    if not api and not host:
        raise HciError("no API server (KUBERNETES_SERVICE_HOST) in the environment: run this from the Plan")
    token = (sa_dir / "token").read_text().strip()
    verify: bool | str = str(sa_dir / "ca.crt") if (sa_dir / "ca.crt").exists() else True
    deadline = time.monotonic() + timeout
    while True:
        try:
            resp = requests.get(f"{base}/api/v1/nodes", headers={"Authorization": f"Bearer {token}"},
                                verify=verify, timeout=30)
            resp.raise_for_status()
            ready, why = gate_verdict(resp.json().get("items") or [], plan=plan, plan_hash=plan_hash,
                                      sha256=sha256, me=me)
        except (requests.RequestException, ValueError) as exc:
            ready, why = False, f"API server: {exc}"
        if ready:
            return why
        if time.monotonic() >= deadline:
            raise HciError(f"gave up after {timeout:.0f}s: {why}")
        log.info("%s", why)
        print(json.dumps({"event": "info", "message": why}), flush=True)
        time.sleep(sleep)
