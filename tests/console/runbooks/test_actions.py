"""Action parameters and checks, through preflight, over a fake cluster (no processes):
what each action allows, what it refuses and why, and the steps it plans."""

from __future__ import annotations

import pytest

from console.clusters.models import Cluster
from console.runbooks import preflight
from console.runbooks.actions import ACTIONS
from console.runbooks.models import RunbookRun
from tests.console.runbooks.fakes import FakeCluster

pytestmark = pytest.mark.django_db
NAMES = ["unrdf-daemon-0", "unrdf-daemon-1", "unrdf-daemon-2"]


def test_a_healthy_cluster_allows_every_action_and_lists_its_steps(fake_cluster: Cluster) -> None:
    ok, reasons, steps = preflight.check(fake_cluster, "snapshot", {"node": "all"})
    assert (ok, reasons, steps) == (True, [], [f"snapshot {name}" for name in NAMES])

    ok, reasons, steps = preflight.check(fake_cluster, "drain", {"node": "unrdf-daemon-1"})
    assert (ok, reasons) == (True, [])
    assert steps == [
        "ask unrdf-daemon-1 to drain",
        "wait for unrdf-daemon-1's work to finish",
        "confirm unrdf-daemon-1 reports draining",
    ]

    verdict = preflight.check(fake_cluster, "transfer_leader", {"target": "unrdf-daemon-2"})
    assert verdict.ok and verdict.steps == [
        "transfer leadership to unrdf-daemon-2",
        "confirm unrdf-daemon-2 leads the cluster",
    ]
    assert [g.name for g in verdict.plan[0].gates] == [
        "the cluster has quorum and a leader",
        "unrdf-daemon-2 has caught up with the leader",
    ]


def test_snapshot_without_a_node_means_every_node(fake_cluster: Cluster) -> None:
    verdict = preflight.check(fake_cluster, "snapshot", {})
    assert verdict.ok and verdict.params == {"node": "all"} and len(verdict.steps) == 3


def test_an_unknown_action_is_refused_with_the_choices(fake_cluster: Cluster) -> None:
    ok, reasons, _ = preflight.check(fake_cluster, "reboot", {})
    assert not ok
    # Apps may add actions (console/backups registers its own): every one is named.
    assert reasons == [f"unknown action 'reboot'; choose one of {', '.join(ACTIONS)}"]
    assert reasons[0].startswith(
        "unknown action 'reboot'; choose one of snapshot, drain, undrain, transfer_leader"
    )


@pytest.mark.parametrize(
    ("action", "params", "reason"),
    [
        ("drain", {}, "node is required: the name of a node, as in the cluster's membership"),
        ("drain", {"node": "x", "force": "1"}, "unknown parameter 'force'; drain takes only 'node'"),
        ("transfer_leader", {"node": "x"}, "unknown parameter 'node'; transfer_leader takes only 'target'"),
        ("undrain", {"node": 5}, "node: Input should be a valid string"),
        ("drain", {"node": "a" * 64}, "node: String should have at most 63 characters"),
        ("drain", {"node": "a\x00b"}, "node: String should match pattern '^[^\\x00]+$'"),
        ("snapshot", {"node": "  "}, "node: String should have at least 1 character"),
        ("snapshot", ["all"], "params must be an object"),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_naming_the_field_before_the_cluster_is_asked(
    fake_cluster: Cluster, fake: FakeCluster, action: str, params: object, reason: str
) -> None:
    verdict = preflight.check(fake_cluster, action, params)
    assert not verdict.ok and reason in verdict.reasons
    assert fake.calls == []


def test_every_action_declares_a_json_schema_for_its_parameters() -> None:
    schemas = {name: action.Params.model_json_schema() for name, action in ACTIONS.items()}
    assert schemas["drain"]["required"] == ["node"]
    assert schemas["transfer_leader"]["additionalProperties"] is False
    assert schemas["snapshot"]["properties"]["node"]["default"] == "all"


def test_a_node_that_is_not_a_member_is_refused_by_name(fake_cluster: Cluster) -> None:
    for action, key in [("drain", "node"), ("snapshot", "node"), ("transfer_leader", "target")]:
        verdict = preflight.check(fake_cluster, action, {key: "ghost"})
        assert verdict.reasons[0] == (
            "node ghost is not a member of this cluster "
            "(members: unrdf-daemon-0, unrdf-daemon-1, unrdf-daemon-2)"
        )


def test_a_node_the_console_cannot_reach_is_refused_for_every_action_that_needs_it(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    fake.nodes["unrdf-daemon-1"].answers = False
    for action, params in [
        ("snapshot", {"node": "unrdf-daemon-1"}),
        ("snapshot", {"node": "all"}),
        ("drain", {"node": "unrdf-daemon-1"}),
        ("undrain", {"node": "unrdf-daemon-1"}),
        ("transfer_leader", {"target": "unrdf-daemon-1"}),
    ]:
        verdict = preflight.check(fake_cluster, action, params)
        assert not verdict.ok and verdict.steps == []
        assert verdict.reasons[0].startswith("node unrdf-daemon-1 unreachable: "), verdict.reasons


def test_a_node_its_peers_cannot_reach_is_refused_naming_who_saw_it(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    fake.nodes["unrdf-daemon-2"].reachable = False
    verdict = preflight.check(fake_cluster, "drain", {"node": "unrdf-daemon-2"})
    assert verdict.reasons == ["node unrdf-daemon-2 unreachable (as seen by unrdf-daemon-0)"]


def test_draining_would_leave_too_few_serving_nodes_is_refused(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    fake.nodes["unrdf-daemon-0"].draining = True

    verdict = preflight.check(fake_cluster, "drain", {"node": "unrdf-daemon-1"})

    assert verdict.reasons == [
        "draining unrdf-daemon-1 would leave 1 of 3 nodes serving; a majority (2) must keep serving"
    ]
    again = preflight.check(fake_cluster, "drain", {"node": "unrdf-daemon-0"})
    assert "node unrdf-daemon-0 is already draining" in again.reasons


def test_draining_without_quorum_is_refused(fake_cluster: Cluster, fake: FakeCluster) -> None:
    fake.leader = None
    verdict = preflight.check(fake_cluster, "drain", {"node": "unrdf-daemon-1"})
    assert "the cluster has no quorum right now (as seen by unrdf-daemon-0)" in verdict.reasons


def test_undraining_a_node_that_is_not_draining_is_refused(fake_cluster: Cluster) -> None:
    verdict = preflight.check(fake_cluster, "undrain", {"node": "unrdf-daemon-0"})
    assert verdict.reasons == ["node unrdf-daemon-0 is not draining"]


def test_transfer_to_the_leader_a_draining_or_a_lagging_node_is_refused(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    leader = preflight.check(fake_cluster, "transfer_leader", {"target": "unrdf-daemon-0"})
    assert leader.reasons == ["node unrdf-daemon-0 is already the leader"]

    fake.nodes["unrdf-daemon-1"].draining = True
    fake.nodes["unrdf-daemon-2"].lag_ms = 250.0
    draining = preflight.check(fake_cluster, "transfer_leader", {"target": "unrdf-daemon-1"})
    assert draining.reasons == ["node unrdf-daemon-1 is draining; undrain it before it leads"]
    lagging = preflight.check(fake_cluster, "transfer_leader", {"target": "unrdf-daemon-2"})
    assert lagging.reasons == [
        "node unrdf-daemon-2 lags 250 ms / 0 entries behind the leader (limit 100 ms / 50 entries)"
    ]


def test_a_run_in_progress_refuses_another_and_names_it(fake_cluster: Cluster) -> None:
    for status in ("queued", "running", "cancelling"):
        RunbookRun.objects.filter(cluster=fake_cluster).delete()
        active = RunbookRun.objects.create(cluster=fake_cluster, action="snapshot", status=status)
        verdict = preflight.check(fake_cluster, "snapshot", {"node": "all"})
        assert verdict.reasons == [
            f"a run is already in progress on this cluster (run #{active.id})"
        ]
        # ...except for the run itself, when its worker checks again at the start.
        assert preflight.check(fake_cluster, "snapshot", {}, exclude_run_id=active.id).ok


def test_a_cluster_none_of_whose_nodes_answers_is_refused(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    for node in fake.nodes.values():
        node.answers = False
    verdict = preflight.check(fake_cluster, "snapshot", {"node": "all"})
    assert verdict.reasons == ["no node of cluster fake answered; is it running?"]


def test_an_answer_outside_the_daemon_contract_counts_as_no_answer(
    fake_cluster: Cluster, fake: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "_node_body", lambda node: {"name": node.name, "role": "boss"})
    verdict = preflight.check(fake_cluster, "drain", {"node": "unrdf-daemon-1"})
    assert verdict.reasons == [
        "node unrdf-daemon-1 gave an answer the console cannot read: "
        "/health/node: unknown role 'boss'"
    ]
