"""The Kubernetes manifests: every overlay renders, validates against a current
Kubernetes schema (kubernetes-validate ships them, offline), carries the runbook's
names and keys, and its config is one daemon/config.py accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from daemon.config import load_config
from deploy.kubernetes.render import RenderError, merge, render

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["base", "overlays/local", "overlays/production", "overlays/console-managed"]
ENTRYPOINT = ROOT / "deploy" / "images" / "daemon" / "entrypoint.py"
K8S_VERSION = kubernetes_validate.latest_version()


def _objects(overlay: str) -> list[dict[str, Any]]:
    return render(KUBE / overlay)


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [obj] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def _validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_passes_the_current_kubernetes_schema(overlay: str) -> None:
    objects = _objects(overlay)
    assert len(objects) >= 15
    for obj in objects:
        _validate(obj)


def test_the_secret_templates_validate_and_hold_no_secret() -> None:
    for obj in yaml.safe_load_all((KUBE / "secrets" / "04-secrets.yaml").read_text()):
        _validate(obj)
        assert all(v in ("", "[]") for v in obj["stringData"].values()), obj["metadata"]


def test_the_schema_check_is_strict_enough_to_catch_a_misspelt_field() -> None:
    statefulset = _one(_objects("base"), "StatefulSet", "unrdf-daemon")
    statefulset["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(statefulset)


def test_the_statefulset_has_the_runbooks_shape() -> None:
    sts = _one(_objects("overlays/production"), "StatefulSet", "unrdf-daemon")
    spec = sts["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == "unrdf-daemon"
    assert spec["podManagementPolicy"] == "Parallel"
    [claim] = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "raft-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "daemon-sa"
    assert pod["securityContext"]["runAsNonRoot"] is True
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    [daemon] = pod["containers"]
    assert daemon["image"] == "registry.example.com/unrdf/unrdf-daemon:1.0.0"
    probes = {
        k: daemon[k]["httpGet"]["path"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": "/health/startup",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    assert {m["mountPath"] for m in daemon["volumeMounts"]} >= {"/data/raft", "/etc/daemon"}
    assert daemon["resources"]["limits"]["memory"]
    env = {e["name"] for e in daemon["env"]}
    assert {"TLS_CERT_FILE", "NODE_NAME", "RAFT_BIND"} <= env


def test_the_local_overlay_runs_on_one_node_with_local_images() -> None:
    objects = _objects("overlays/local")
    pod = _one(objects, "StatefulSet", "unrdf-daemon")["spec"]["template"]["spec"]
    assert "affinity" not in pod
    assert pod["containers"][0]["image"] == "unrdf-daemon:local"
    assert pod["containers"][0]["imagePullPolicy"] == "Never"
    storage = _one(objects, "StorageClass", "fast-ssd")
    assert storage["provisioner"] == "rancher.io/local-path" and "parameters" not in storage


def test_the_disruption_budget_keeps_quorum() -> None:
    pdb = _one(_objects("base"), "PodDisruptionBudget", "unrdf-daemon")
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app": "unrdf-daemon"}},
    }


def test_raft_is_open_only_to_peers_and_http_to_peers_console_and_prometheus() -> None:
    objects = _objects("base")
    raft = _one(objects, "NetworkPolicy", "daemon-raft-from-peers")["spec"]["ingress"]
    assert raft == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "unrdf-daemon"}}}],
            "ports": [{"protocol": "TCP", "port": 8081}],
        }
    ]
    http = _one(objects, "NetworkPolicy", "daemon-http-from-clients")["spec"]["ingress"]
    assert [p["port"] for p in http[0]["ports"]] == [8080, 8443]
    sources = json.dumps(http[0]["from"])
    assert "unrdf-console" in sources and "prometheus" in sources


def test_the_console_image_runs_daphne_the_worker_and_the_collector() -> None:
    objects = _objects("base")
    commands = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["args"][0:3]
        for o in objects
        if o["kind"] == "Deployment"
    }
    assert commands == {
        # daphne with the console's connection limits and idle timeout (issue 14)
        "unrdf-console": ["python3", "-m", "console.core.serve"],
        "unrdf-console-worker": ["python3", "-m", "celery"],
        "unrdf-console-collector": ["python3", "manage.py", "collect"],
    }


def _configmap_config(tmp_path: Path) -> Path:
    cm = _one(_objects("base"), "ConfigMap", "daemon-config")
    path = tmp_path / "daemon-config.json"
    path.write_text(cm["data"]["daemon-config.json"])
    return path


def test_the_configmap_is_a_config_the_daemon_accepts_with_the_pods_environment(
    tmp_path: Path,
) -> None:
    data = json.loads(_configmap_config(tmp_path).read_text())
    data["raft"]["passwordFile"] = str(tmp_path / "raft-password")
    (tmp_path / "raft-password").write_text("x" * 32)
    data["auth"]["tokensFile"] = str(tmp_path / "tokens.json")
    (tmp_path / "tokens.json").write_text('[{"token": "a-read-token-0123456789", "role": "read"}]')
    path = tmp_path / "daemon-config.json"
    path.write_text(json.dumps(data))
    env = {
        "NODE_NAME": "unrdf-daemon-1",
        "RAFT_BIND": "10.0.0.5:8081",
        "RAFT_ADVERTISE": "unrdf-daemon-1.unrdf-daemon:8081",
    }
    config = load_config(str(path), env)
    assert config.node_name == "unrdf-daemon-1"
    assert config.data_dir == Path("/data/raft")
    assert [p.name for p in config.peers] == ["unrdf-daemon-0", "unrdf-daemon-2"]
    assert config.raft_advertise == "unrdf-daemon-1.unrdf-daemon:8081"
    assert config.advertise_http_url == "http://unrdf-daemon-1.unrdf-daemon:8080"


def _entrypoint(config: Path, node: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DAEMON_CONFIG": str(config),
        "NODE_NAME": node,
        "RAFT_PASSWORD": "x" * 32,
        "RAFT_BIND": "127.0.0.1:8081",
        "RAFT_ADVERTISE": f"{node}.unrdf-daemon:8081",
    }
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_entrypoint_refuses_a_pod_that_scaling_added_without_a_membership_change(
    tmp_path: Path,
) -> None:
    result = _entrypoint(_configmap_config(tmp_path), "unrdf-daemon-3")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "unrdf-daemon-3 is not a member" in result.stderr
    assert "POST /admin/members" in result.stderr


def test_the_entrypoint_starts_a_configured_member(tmp_path: Path) -> None:
    config = _configmap_config(tmp_path)
    data = json.loads(config.read_text())
    del data["auth"]["tokensFile"]
    config.write_text(json.dumps(data))
    result = _entrypoint(config, "unrdf-daemon-2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("unrdf-daemon-2 raft 127.0.0.1:8081")


def test_the_renderer_merges_named_lists_and_deletes_keys() -> None:
    base = {"c": [{"name": "a", "v": 1}, {"name": "b", "v": 2}], "x": {"y": 1}, "l": [1, 2]}
    patch = {"c": [{"name": "b", "v": 3}, {"name": "new"}], "x": {"$patch": "delete"}, "l": [9]}
    assert merge(base, patch) == {
        "c": [{"name": "new"}, {"name": "a", "v": 1}, {"name": "b", "v": 3}],
        "l": [9],
    }


def test_the_renderer_refuses_what_it_does_not_support(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\n")
    with pytest.raises(RenderError, match="unsupported key 'namePrefix'"):
        render(tmp_path)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_real_kustomize(overlay: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUBE / overlay)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    real = {
        (o["kind"], o["metadata"]["name"]): _canonical(o) for o in yaml.safe_load_all(out.stdout)
    }
    ours = {(o["kind"], o["metadata"]["name"]): _canonical(o) for o in _objects(overlay)}
    assert ours == real


def test_the_monitoring_kustomization_renders_the_operator_objects() -> None:
    # prometheus-operator's CRDs have no schema in kubernetes-validate; test_rules.py
    # checks their content instead.
    kinds = {(o["apiVersion"], o["kind"]) for o in render(KUBE / "monitoring")}
    assert kinds == {
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
    }
