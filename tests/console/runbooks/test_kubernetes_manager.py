"""The Kubernetes node manager, driving the real `kubernetes` client against a STAND-IN API
server (`kube_standin.py`): a real Kubernetes API server cannot run here. The stand-in keeps
real StatefulSet and Pod JSON and recreates deleted pods from the current template the way
the StatefulSet controller does; pods are Ready at once (there are no containers)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from console.runbooks.actions import drills_partition, lifecycle
from console.runbooks.actions.base import StepContext, StepFailed
from console.runbooks.nodes import partition
from console.runbooks.nodes.base import NodeManagerError
from console.runbooks.nodes.kubernetes import STOPPED_ANNOTATION, KubernetesNodeManager
from tests.console.runbooks.kube_standin import StandInApiServer, peer_names, statefulset

REPO = "registry.example/unrdf-daemon"
TOKEN = "kube-sa-token"


def _server(**kwargs: object) -> StandInApiServer:
    return StandInApiServer("unrdf", statefulset("unrdf-daemon", f"{REPO}:1.0.0", **kwargs), TOKEN)


@pytest.fixture
def api() -> Iterator[StandInApiServer]:
    with _server() as server:
        yield server


def _manager(api: StandInApiServer, token: str = TOKEN) -> KubernetesNodeManager:
    return KubernetesNodeManager(api.url, "unrdf", "unrdf-daemon", REPO, token=token)


def test_status_reads_the_release_from_the_pods_image_tag(api: StandInApiServer) -> None:
    nodes = _manager(api)
    assert nodes.names() == ["unrdf-daemon-0", "unrdf-daemon-1", "unrdf-daemon-2"]
    state = nodes.status("unrdf-daemon-1")
    assert (state.running, state.release, state.stopped_by_operator) == (True, "1.0.0", False)
    assert state.url == "http://unrdf-daemon-1.unrdf-daemon:8080"
    assert state.raft_address == "unrdf-daemon-1.unrdf-daemon:8081"


def test_run_on_moves_only_the_named_pod_to_the_releases_image(api: StandInApiServer) -> None:
    nodes = _manager(api)
    before = {name: pod["metadata"]["uid"] for name, pod in api.pods.items()}
    # The console's order, not the controller's: pod 1 first, then 2, the leader (0) last.
    result = nodes.run_on("unrdf-daemon-1", "1.1.0", timeout_s=10)
    assert result.ready
    assert api.image(api.statefulset) == f"{REPO}:1.1.0"
    assert api.image(api.pods["unrdf-daemon-1"]) == f"{REPO}:1.1.0"
    for other in ("unrdf-daemon-0", "unrdf-daemon-2"):
        assert api.pods[other]["metadata"]["uid"] == before[other]
        assert nodes.status(other).release == "1.0.0"
    assert nodes.status("unrdf-daemon-1").release == "1.1.0"
    assert ("DELETE", "/api/v1/namespaces/unrdf/pods/unrdf-daemon-1") in api.requests


def test_restart_in_the_middle_of_a_rollout_keeps_the_pods_release(
    api: StandInApiServer,
) -> None:
    nodes = _manager(api)
    nodes.run_on("unrdf-daemon-2", "1.1.0", timeout_s=10)
    uid = api.pods["unrdf-daemon-0"]["metadata"]["uid"]
    # The template now says 1.1.0; a restart of pod 0 must not upgrade it behind our back.
    assert nodes.restart("unrdf-daemon-0", timeout_s=10).ready
    assert api.pods["unrdf-daemon-0"]["metadata"]["uid"] != uid
    assert nodes.status("unrdf-daemon-0").release == "1.0.0"
    assert nodes.status("unrdf-daemon-2").release == "1.1.0"


def test_a_statefulset_the_controller_rolls_by_itself_is_refused() -> None:
    with _server(strategy="RollingUpdate") as api:
        with pytest.raises(NodeManagerError, match="needs OnDelete"):
            _manager(api).run_on("unrdf-daemon-0", "1.1.0", timeout_s=5)
        assert not [r for r in api.requests if r[0] in ("PATCH", "DELETE")]


def test_only_the_highest_ordinal_stops_and_it_starts_again(api: StandInApiServer) -> None:
    nodes = _manager(api)
    with pytest.raises(NodeManagerError, match="only the highest pod"):
        nodes.stop("unrdf-daemon-0")
    nodes.stop("unrdf-daemon-2")
    assert api.statefulset["spec"]["replicas"] == 2
    assert "unrdf-daemon-2" not in api.pods
    state = nodes.status("unrdf-daemon-2")
    assert (state.running, state.stopped_by_operator) == (False, True)
    assert '"unrdf-daemon-2"' in api.statefulset["metadata"]["annotations"][STOPPED_ANNOTATION]
    assert nodes.start("unrdf-daemon-2", timeout_s=10).ready
    assert api.statefulset["spec"]["replicas"] == 3
    assert nodes.status("unrdf-daemon-2").stopped_by_operator is False


def test_add_and_remove_node_scale_at_the_top_and_keep_the_peers_list(
    api: StandInApiServer,
) -> None:
    nodes = _manager(api)
    state = nodes.add_node("1.1.0")
    assert state.name == "unrdf-daemon-3"
    assert api.image(api.pods["unrdf-daemon-3"]) == f"{REPO}:1.1.0"
    # Listed before the pod existed: the image's entrypoint refuses an unlisted pod.
    assert peer_names(api)[-1] == "unrdf-daemon-3"
    config = json.loads(api.config_map["data"]["daemon-config.json"])
    assert config["peers"][-1] == {
        "name": "unrdf-daemon-3",
        "raftAddress": "unrdf-daemon-3.unrdf-daemon:8081",
        "httpUrl": "http://unrdf-daemon-3.unrdf-daemon:8080",
    }
    assert config["httpPort"] == 8080  # the rest of the config is kept
    with pytest.raises(NodeManagerError, match="only the highest pod"):
        nodes.remove_node("unrdf-daemon-1")
    nodes.remove_node("unrdf-daemon-3")
    assert nodes.names() == ["unrdf-daemon-0", "unrdf-daemon-1", "unrdf-daemon-2"]
    assert peer_names(api) == ["unrdf-daemon-0", "unrdf-daemon-1", "unrdf-daemon-2"]


def test_run_on_without_a_release_is_a_one_line_error(api: StandInApiServer) -> None:
    with pytest.raises(NodeManagerError, match="name the release"):
        _manager(api).run_on("unrdf-daemon-0", None)
    with pytest.raises(NodeManagerError, match="not a pod of statefulset"):
        _manager(api).restart("other-0")


def test_a_wrong_token_is_a_one_line_refusal(api: StandInApiServer) -> None:
    with pytest.raises(NodeManagerError, match=r"Kubernetes refused to read statefulset.*401"):
        _manager(api, token="wrong").names()


def test_an_unreachable_api_server_is_a_one_line_error() -> None:
    with _server() as api:
        url = api.url
    nodes = KubernetesNodeManager(url, "unrdf", "unrdf-daemon", REPO, request_timeout_s=2)
    with pytest.raises(NodeManagerError, match="cannot reach the Kubernetes API"):
        nodes.names()


# ---- Raft cuts with NetworkPolicies (drills, split brain) -------------------------------
# The stand-in stores the policies; no CNI enforces them here, so these tests check the
# objects the console creates and deletes, not packets.


def _egress_ports(policy: dict) -> list[list[int]]:
    return [[p["port"] for p in rule.get("ports", [])] for rule in policy["spec"]["egress"]]


def test_cutting_a_pod_creates_two_policies_that_close_only_the_raft_port_between_it_and_peers(
    api: StandInApiServer,
) -> None:
    nodes = _manager(api)

    assert partition.cut(nodes, "unrdf-daemon-1") == 8081

    assert sorted(api.network_policies) == [
        "unrdf-daemon-1-raft-cut-peers",
        "unrdf-daemon-1-raft-cut-self",
    ]
    own = api.network_policies["unrdf-daemon-1-raft-cut-self"]
    peers = api.network_policies["unrdf-daemon-1-raft-cut-peers"]
    pod_name = "statefulset.kubernetes.io/pod-name"
    assert own["spec"]["podSelector"]["matchLabels"] == {
        "app": "unrdf-daemon",
        pod_name: "unrdf-daemon-1",
    }
    assert peers["spec"]["podSelector"]["matchExpressions"] == [
        {"key": pod_name, "operator": "NotIn", "values": ["unrdf-daemon-1"]}
    ]
    for policy in (own, peers):
        assert policy["spec"]["policyTypes"] == ["Egress"]
        assert policy["metadata"]["labels"]["console.unrdf.io/raft-cut"] == "unrdf-daemon-1"
        # Toward the other side only HTTP stays open: 8081 (Raft) is in no limited rule.
        assert [ports for ports in _egress_ports(policy) if ports] == [[8080], [8080]]
    # As IP blocks too, for CNIs that apply them to pod IPs: everything but the other side.
    assert own["spec"]["egress"][0]["to"][1]["ipBlock"]["except"] == [
        "10.244.0.10/32",
        "10.244.0.12/32",
    ]
    assert peers["spec"]["egress"][0]["to"][1]["ipBlock"]["except"] == ["10.244.0.11/32"]
    assert partition.is_cut(nodes, "unrdf-daemon-1") and not partition.is_cut(
        nodes, "unrdf-daemon-0"
    )
    # Any pod can be cut on Kubernetes, not only the lowest-address one.
    assert all(partition.cut_isolates(nodes, name) for name in nodes.names())


def test_healing_deletes_the_cut_policies_and_a_second_heal_is_harmless(
    api: StandInApiServer,
) -> None:
    nodes = _manager(api)
    partition.cut(nodes, "unrdf-daemon-2")
    partition.cut(nodes, "unrdf-daemon-2")  # a cut repeated is still one cut
    assert len(api.network_policies) == 2

    assert partition.heal(nodes, "unrdf-daemon-2") == 8081

    assert api.network_policies == {}
    assert not partition.is_cut(nodes, "unrdf-daemon-2")
    partition.heal(nodes, "unrdf-daemon-2")
    assert ("DELETE", "/apis/networking.k8s.io/v1/namespaces/unrdf/networkpolicies/"
            "unrdf-daemon-2-raft-cut-self") in api.requests  # fmt: skip


def test_a_cut_kubernetes_refuses_halfway_leaves_no_policy_behind(api: StandInApiServer) -> None:
    api.refuse_policies = {"unrdf-daemon-0-raft-cut-peers"}
    nodes = _manager(api)

    with pytest.raises(NodeManagerError, match="403"):
        partition.cut(nodes, "unrdf-daemon-0")

    assert api.network_policies == {}


def test_the_partition_drill_heals_the_pod_when_no_new_leader_comes_in_time(
    api: StandInApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drill step itself, on the Kubernetes manager: the pod leads, no other leader
    is seen (there are no daemons behind the stand-in), the step fails, and the cut is
    healed on the way out."""
    nodes = _manager(api)
    seen_during: list[list[str]] = []

    def never(ctx: object, old: str, started: float) -> Callable[[], None]:
        def met() -> None:
            seen_during.append(sorted(api.network_policies))

        return met

    monkeypatch.setattr(lifecycle, "manager", lambda ctx: nodes)
    monkeypatch.setattr(drills_partition, "with_writer", lambda ctx, run: run())
    monkeypatch.setattr(
        drills_partition, "view_or_fail", lambda ctx: SimpleNamespace(leader="unrdf-daemon-1")
    )
    monkeypatch.setattr(drills_partition, "new_leader", never)
    monkeypatch.setattr(drills_partition, "ELECTION_BOUND_S", 0.2)
    params = drills_partition.PartitionParams(node="unrdf-daemon-1", seconds=1)
    ctx = StepContext(client=None, heartbeat=lambda: None)  # type: ignore[arg-type]

    with pytest.raises(StepFailed, match="a new leader"):
        drills_partition._partition(params)(ctx)

    assert seen_during and seen_during[0] == [
        "unrdf-daemon-1-raft-cut-peers",
        "unrdf-daemon-1-raft-cut-self",
    ]
    assert api.network_policies == {}
