"""The console-managed overlay: OnDelete, and RBAC for exactly the node manager's calls."""

from __future__ import annotations

from pathlib import Path

from deploy.kubernetes.render import render

KUBE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def _one(kind: str, name: str) -> dict:
    objects = render(KUBE / "overlays" / "console-managed")
    [obj] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def test_the_console_managed_statefulset_moves_no_pod_by_itself() -> None:
    sts = _one("StatefulSet", "unrdf-daemon")
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}
    # Still production's images: only the update strategy changes.
    [daemon] = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "daemon"]
    assert daemon["image"].startswith("registry.example.com/unrdf/unrdf-daemon:")


def test_the_console_worker_may_make_only_the_node_managers_calls() -> None:
    rules = _one("Role", "console-node-manager")["rules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}  # fmt: skip
    assert granted == {
        ("apps", "statefulsets", "get"),
        ("apps", "statefulsets", "patch"),
        ("", "pods", "get"),
        ("", "pods", "delete"),
        ("", "configmaps", "get"),
        ("", "configmaps", "patch"),
        ("networking.k8s.io", "networkpolicies", "list"),
        ("networking.k8s.io", "networkpolicies", "create"),
        ("networking.k8s.io", "networkpolicies", "delete"),
    }
    names = {r["resources"][0]: r.get("resourceNames") for r in rules}
    assert names == {
        "statefulsets": ["unrdf-daemon"],
        "pods": None,
        "configmaps": ["daemon-config"],
        "networkpolicies": None,
    }
    binding = _one("RoleBinding", "console-node-manager")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "console-sa", "namespace": "unrdf-daemons"}
    ]
    worker = _one("Deployment", "unrdf-console-worker")["spec"]["template"]["spec"]
    [container] = [c for c in worker["containers"] if c["name"] == "worker"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DAEMON_KUBE_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "console-kube-token"
