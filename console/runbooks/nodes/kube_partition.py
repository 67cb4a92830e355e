"""Cut one pod's Raft links on Kubernetes with NetworkPolicies, and heal the cut.

A NetworkPolicy can only allow (every policy that selects a pod adds to what it may
do), so "deny the Raft port between this pod and its peers" is written as two
policies that allow everything else, created together and labelled with the pod:

- `<pod>-raft-cut-self` selects the cut pod: its egress may go anywhere except to a
  peer's Raft port (to peers only the other container ports, HTTP, are allowed);
- `<pod>-raft-cut-peers` selects every other daemon pod: their egress may go anywhere
  except to the cut pod's Raft port.

So neither side can open a Raft connection to the other (pysyncobj dials from the
higher address to the lower, and either may be the cut pod), while HTTP, DNS and the
console keep working: unlike the local port cut, any pod can be isolated. Destinations
are written both as pod selectors and as IP blocks excepting the pods' IPs, so the cut
holds whether the CNI applies `ipBlock` to pod IPs or not. The daemon pods are those of
the StatefulSet's selector (deploy/kubernetes: `app: unrdf-daemon`); a pod is named by
the `statefulset.kubernetes.io/pod-name` label the controller puts on it.

Limit: CNIs enforce policies when a connection opens; a Raft link already open may
live on until it is re-dialled (pysyncobj drops a link silent for its connection
timeout, and a cut pod's links go silent once the peers can no longer answer on new
connections). The labels are the only record, so `heal` by any process undoes a cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from console.runbooks.nodes.base import NodeManagerError

if TYPE_CHECKING:
    from console.runbooks.nodes.kubernetes import KubernetesNodeManager

CUT_LABEL = "console.unrdf.io/raft-cut"  # value: the cut pod's name
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
EVERYWHERE = "0.0.0.0/0"


def _api(manager: KubernetesNodeManager) -> k8s.NetworkingV1Api:
    return k8s.NetworkingV1Api(manager._api)


def _ports(manager: KubernetesNodeManager) -> tuple[int, list[int]]:
    """The Raft port, and every other container port (the ones a cut leaves open)."""
    sts = manager._sts()
    _, container = manager._container(sts.spec.template.spec)
    ports = {p.name: p.container_port for p in container.ports or []}
    raft = ports.get("raft", 8081)
    return raft, sorted({p for p in ports.values() if p != raft} or {8080})


def _selector(manager: KubernetesNodeManager) -> dict[str, str]:
    labels = manager._sts().spec.selector.match_labels or {}
    if not labels:
        raise NodeManagerError(
            f"statefulset {manager.statefulset} selects its pods without matchLabels; "
            "a cut needs labels to tell the daemon pods"
        )
    return dict(labels)


def _pod_ips(manager: KubernetesNodeManager) -> dict[str, str]:
    ips = {}
    for name in manager.names():
        pod = manager._pod(name)
        ip = getattr(getattr(pod, "status", None), "pod_ip", None)
        if ip:
            ips[name] = ip
    return ips


def _egress_except(
    to_pods: dict[str, Any], excluded_ips: list[str], blocked: dict[str, Any], open_ports: list[int]
) -> list[dict[str, Any]]:
    """Egress rules: anywhere (`to_pods` and every IP but `excluded_ips`) on any port, and
    the `blocked` pods (and their IPs) on `open_ports` only."""
    ports = [{"protocol": "TCP", "port": port} for port in open_ports]
    anywhere: dict[str, Any] = {"cidr": EVERYWHERE}
    if excluded_ips:
        anywhere["except"] = [f"{ip}/32" for ip in excluded_ips]
    rules: list[dict[str, Any]] = [
        {"to": [{"namespaceSelector": {}, "podSelector": to_pods}, {"ipBlock": anywhere}]},
        {"to": [{"podSelector": blocked}], "ports": ports},
    ]
    if excluded_ips:
        rules.append(
            {"to": [{"ipBlock": {"cidr": f"{ip}/32"}} for ip in excluded_ips], "ports": ports}
        )
    return rules


def policies(manager: KubernetesNodeManager, name: str) -> list[dict[str, Any]]:
    """The two policies that cut `name` off (see the module's docstring)."""
    if name not in manager.names():
        raise NodeManagerError(f"no pod {name} in statefulset {manager.statefulset}")
    raft, open_ports = _ports(manager)
    daemons = _selector(manager)
    ips = _pod_ips(manager)
    peer_ips = [ip for pod, ip in sorted(ips.items()) if pod != name]
    own_ip = [ips[name]] if name in ips else []
    not_daemons = {
        "matchExpressions": [
            {"key": k, "operator": "NotIn", "values": [v]} for k, v in sorted(daemons.items())
        ]
    }
    not_it = {"matchExpressions": [{"key": POD_NAME_LABEL, "operator": "NotIn", "values": [name]}]}
    labels = {CUT_LABEL: name, "app.kubernetes.io/managed-by": "raftops-console"}

    def policy(suffix: str, selects: dict[str, Any], egress: list[dict[str, Any]]) -> dict:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": f"{name}-raft-cut-{suffix}",
                "namespace": manager.namespace,
                "labels": labels,
                "annotations": {"console.unrdf.io/raft-port": str(raft)},
            },
            "spec": {"podSelector": selects, "policyTypes": ["Egress"], "egress": egress},
        }

    peers = {"matchLabels": daemons, **not_it}
    return [
        policy(
            "self",
            {"matchLabels": {**daemons, POD_NAME_LABEL: name}},
            _egress_except(not_daemons, peer_ips, {"matchLabels": daemons}, open_ports),
        ),
        policy(
            "peers",
            peers,
            _egress_except(
                not_it, own_ip, {"matchLabels": {**daemons, POD_NAME_LABEL: name}}, open_ports
            ),
        ),
    ]


def listed(manager: KubernetesNodeManager, name: str) -> list[str]:
    """The names of the cut policies for `name` that exist now."""
    found = manager._call(
        "list network policies",
        _api(manager).list_namespaced_network_policy,
        manager.namespace,
        label_selector=f"{CUT_LABEL}={name}",
    )
    return sorted(p.metadata.name for p in found.items or [])


def cut(manager: KubernetesNodeManager, name: str) -> int:
    """Create the two policies (an existing cut is left as it is); the Raft port."""
    wanted = policies(manager, name)
    raft = int(wanted[0]["metadata"]["annotations"]["console.unrdf.io/raft-port"])
    present = set(listed(manager, name))
    try:
        for body in wanted:
            if body["metadata"]["name"] not in present:
                manager._call(
                    f"create network policy {body['metadata']['name']}",
                    _api(manager).create_namespaced_network_policy,
                    manager.namespace,
                    body,
                )
    except NodeManagerError:
        heal(manager, name)  # never half a cut
        raise
    return raft


def heal(manager: KubernetesNodeManager, name: str) -> int:
    """Delete every policy labelled with `name`; idempotent."""
    raft, _ = _ports(manager)
    for policy in listed(manager, name):
        try:
            _api(manager).delete_namespaced_network_policy(
                policy, manager.namespace, _request_timeout=manager.timeout
            )
        except ApiException as exc:
            if exc.status != 404:  # already gone: healed by someone else
                raise NodeManagerError(
                    f"Kubernetes refused to delete network policy {policy}: {exc.status}"
                ) from None
    return raft
