"""Rolling upgrades: the system-upgrade-controller Plan (checked against the Plan CRD's schema),
the gate between nodes, the node annotation, and `hci upgrade-cluster`'s node-by-node loop."""
from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hcicore.progress import Progress
from node_services import plan
from node_services.cluster import ClusterUpgrade, NodeFailed, SshTarget

pytestmark = pytest.mark.unit

CRD = Path(__file__).resolve().parent.parent / "data" / "suc-plan-crd.yaml"
REF = "registry.example:5000/hcios/os:0.2.0"
SHA = "ab" * 32


def plan_schema() -> dict:
    crd = next(d for d in yaml.safe_load_all(CRD.read_text()) if d)
    assert crd["spec"]["names"]["kind"] == "Plan"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def pruned(obj: Any, schema: dict, path: str = "") -> list[str]:
    """Fields the API server would drop silently (not in a structural schema's properties)."""
    out: list[str] = []
    if isinstance(obj, dict) and "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        for key, value in obj.items():
            if key not in schema["properties"]:
                out.append(f"{path}.{key}")
            else:
                out += pruned(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for i, item in enumerate(obj):
            out += pruned(item, schema["items"], f"{path}[{i}]")
    return out


def test_plan_validates_against_the_crd_schema() -> None:
    doc = plan.render_plan(REF, sha256=SHA)
    schema = plan_schema()
    jsonschema.validate(doc, schema)
    assert pruned(doc, schema) == []
    spec = doc["spec"]
    assert spec["concurrency"] == 1 and spec["cordon"] is True and spec["drain"]["ignoreDaemonSets"] is True
    assert spec["version"] == "0.2.0"
    assert spec["upgrade"]["command"] == ["chroot", "/host"]
    assert spec["upgrade"]["args"][:5] == ["hci-upgrade", "apply", "--no-reboot", "--reboot-after-job", "--json"]
    assert spec["upgrade"]["args"][-1] == REF
    assert ":" in spec["upgrade"]["image"]  # an explicit tag: SUC leaves it alone
    gate = spec["prepare"]["args"][0]
    assert "hci-upgrade cluster-gate --plan hcios-os" in gate and f"--sha256 {SHA}" in gate
    assert "$(SYSTEM_UPGRADE_PLAN_LATEST_HASH)" in gate


def test_a_broken_plan_fails_the_schema() -> None:
    doc = plan.render_plan(REF, sha256=SHA)
    doc["spec"]["concurrency"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, plan_schema())
    doc = plan.render_plan(REF, sha256=SHA)
    doc["spec"]["upgrade"]["env"] = []  # SUC calls it envs: would be dropped silently
    assert pruned(doc, plan_schema()) == [".spec.upgrade.env"]


def test_digest_refs_make_a_version() -> None:
    assert plan.plan_version("r:5000/os@sha256:" + "c" * 64) == "sha256-" + "c" * 32


def node(name: str, *, plan_hash: str | None = None, good: str | None = None, result: str = "") -> dict:
    labels = {"plan.upgrade.cattle.io/hcios-os": plan_hash} if plan_hash else {}
    ann = {k: v for k, v in ((plan.ANN_GOOD, good), (plan.ANN_RESULT, result)) if v}
    return {"metadata": {"name": name, "labels": labels, "annotations": ann}}


def test_gate_waits_for_upgraded_nodes_and_stops_on_a_rollback() -> None:
    kw = {"plan": "hcios-os", "plan_hash": "h1", "sha256": SHA, "me": "n3"}
    assert plan.gate_verdict([node("n1", plan_hash="h1", good=SHA), node("n3")], **kw)[0]
    ready, why = plan.gate_verdict([node("n1", plan_hash="h1", good="old"), node("n2")], **kw)
    assert not ready and "n1" in why
    assert plan.gate_verdict([node("n1", plan_hash="h0", good="old")], **kw)[0]  # an older plan revision
    with pytest.raises(plan.GateFailed, match="n1 rolled back"):
        plan.gate_verdict([node("n1", plan_hash="h1", good="old", result="rolled-back: health")], **kw)


def test_cluster_gate_polls_the_api_server(tmp_path: Path) -> None:
    answers = [[node("n1", plan_hash="h1", good="old")], [node("n1", plan_hash="h1", good=SHA)]]
    seen: list[str] = []

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            body = json.dumps({"items": answers.pop(0) if len(answers) > 1 else answers[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "token").write_text("sa-token\n")
    try:
        why = plan.cluster_gate(plan="hcios-os", plan_hash="h1", sha256=SHA, me="n2", timeout=30,
                                api=f"http://127.0.0.1:{server.server_port}", sa_dir=tmp_path, sleep=0.01)
    finally:
        server.shutdown()
    assert "healthy" in why and seen[0] == "Bearer sa-token" and len(seen) == 2


class FakeTarget(SshTarget):
    """A node answering hci-upgrade commands from a script instead of SSH."""

    def __init__(self, host: str, script: list[dict], log: list[str]):
        super().__init__(host)
        self.script, self.log = script, log

    def run(self, command: str, *, timeout: float = 3600) -> tuple[int, str, str]:
        self.log.append(f"{self.host}: {command}")
        if command.startswith("hci-upgrade apply"):
            return self.script.pop(0)["apply"]
        if command == "systemctl reboot":
            raise EOFError("connection dropped")
        return 0, json.dumps(self.script.pop(0)["status"] if len(self.script) > 1 else self.script[0]["status"]), ""


def st(booted: str, good: str, trial: str | None, sha: str, *, result: str = "staged", reason: str = "") -> dict:
    return {"status": {"booted": booted, "good": good, "trial": trial, "tries_left": 2 if trial else 0,
                       "slots": {"a": {"sha256": "old", "version": "1"}, "b": {"sha256": sha, "version": "2"}},
                       "last": {"result": result, "reason": reason, "sha256": sha}}}


def staged(sha: str = SHA) -> dict:
    return {"apply": (0, json.dumps({"event": "result", "result": "staged", "message": "m", "sha256": sha,
                                     "version": "2", "slot": "b"}) + "\n", "")}


def test_upgrade_cluster_goes_node_by_node(tmp_path: Path) -> None:
    log: list[str] = []
    n1 = FakeTarget("n1", [staged(), st("a", "a", "b", SHA), st("b", "b", None, SHA, result="success")], log)
    n2 = FakeTarget("n2", [staged(), st("b", "b", None, SHA, result="success")], log)
    done = ClusterUpgrade(REF, [n1, n2], Progress(as_json=True, stream=io.StringIO()), poll=0,
                          sleep=lambda s: None).run()
    assert [d.split(":")[0] for d in done] == ["n1", "n2"]
    order = [entry for entry in log if "apply" in entry or "reboot" in entry]
    assert order[0].startswith("n1: hci-upgrade apply") and order[1] == "n1: systemctl reboot"
    assert order[2].startswith("n2: hci-upgrade apply")


def test_upgrade_cluster_stops_at_the_first_failure() -> None:
    log: list[str] = []
    n1 = FakeTarget("n1", [staged(), st("a", "a", None, SHA, result="rolled-back", reason="health check failed")], log)
    n2 = FakeTarget("n2", [staged()], log)
    with pytest.raises(NodeFailed, match="node n1: rolled back to slot a: health check failed"):
        ClusterUpgrade(REF, [n1, n2], Progress(as_json=True, stream=io.StringIO()), poll=0, sleep=lambda s: None).run()
    assert not [entry for entry in log if entry.startswith("n2")]


def test_upgrade_cluster_refused_apply_names_the_node() -> None:
    n1 = FakeTarget("n1", [{"apply": (2, "", "error: 0.1.0 is older than the running 0.2.0: a downgrade")}], [])
    with pytest.raises(NodeFailed, match="node n1: hci-upgrade apply exited 2: .*downgrade"):
        ClusterUpgrade(REF, [n1], Progress(as_json=True, stream=io.StringIO()), poll=0, sleep=lambda s: None).run()


def test_ssh_target_parse() -> None:
    t = SshTarget.parse("admin@127.0.0.1:2222")
    assert (t.user, t.host, t.port) == ("admin", "127.0.0.1", 2222)
    assert (SshTarget.parse("node1").user, SshTarget.parse("node1").port) == ("root", 22)


def test_annotate_good_runs_kubectl_where_k3s_runs(tmp_path: Path, monkeypatch, oci_registry) -> None:
    from .upgrade_fakes import make_image, make_rig  # noqa: PLC0415

    rig = make_rig(tmp_path, make_image(tmp_path, "v1", version="1.0.0"))
    node_ = rig.node("a")
    assert plan.annotate_good(node_) is False  # no k3s here
    kubeconfig = tmp_path / "k3s.yaml"
    kubeconfig.write_text("{}")
    k3s = tmp_path / "k3s"
    k3s.write_text("")
    monkeypatch.setattr(plan, "KUBECONFIGS", (kubeconfig,))
    monkeypatch.setattr(plan, "K3S", k3s)
    assert plan.annotate_good(node_) is True
    argv = rig.runner.calls[-1]
    assert argv[:6] == [str(k3s), "kubectl", "--kubeconfig", str(kubeconfig), "annotate", "--overwrite"]
    sha = node_.record().slot("a")["sha256"]
    assert "node1" in argv and f"{plan.ANN_GOOD}={sha}" in argv and f"{plan.ANN_SLOT}=a" in argv
