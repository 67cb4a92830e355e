"""The upgrade's plan over a fake cluster: followers first, the leader last, each node
soaked under its gates; the order fixed when requested survives a leader change; the
rollback steps put touched nodes back newest first, on the release each ran before."""

from __future__ import annotations

import pytest

from console.runbooks.actions.upgrade import Upgrade, UpgradeParams
from tests.console.runbooks.fakes import FakeCluster

LEADER = "unrdf-daemon-0"


def test_the_plan_upgrades_followers_first_and_the_leader_last_with_a_soak_per_node() -> None:
    fake = FakeCluster()
    plan = Upgrade().plan(fake.view(), UpgradeParams(release="r2", soakS=5))
    names = [s.name for s in plan]

    assert names[0] == "take a backup before the upgrade"
    starts = [n for n in names if n.startswith("start ")]
    assert starts == [
        "start unrdf-daemon-1 on release r2",
        "start unrdf-daemon-2 on release r2",
        "start unrdf-daemon-0 on release r2",
    ]
    soak = next(s for s in plan if s.name == "soak unrdf-daemon-1 on release r2")
    assert [g.name for g in soak.gates] == [
        "unrdf-daemon-1 reports release r2, for 5 s",
        "the cluster has quorum and a leader, for 5 s",
        "unrdf-daemon-1 has caught up with the leader, for 5 s",
        "no unplanned leader change, for 5 s",
        "error ratio no worse than before the upgrade, for 5 s",
        "p95 latency no worse than before the upgrade, for 5 s",
    ]
    assert all(g.hold_s == 5 for g in soak.gates)
    stop = next(s for s in plan if s.name == "stop unrdf-daemon-0")
    assert "a majority stays reachable without unrdf-daemon-0" in [g.name for g in stop.gates]


@pytest.mark.django_db  # settling looks the release up (does it need a code-version switch?)
def test_a_settled_order_survives_a_leader_change_so_a_resume_rebuilds_the_same_plan() -> None:
    fake = FakeCluster()
    params = Upgrade().settle(fake.view(), UpgradeParams(release="r2"), fake)
    before = [s.name for s in Upgrade().plan(fake.view(), params)]
    fake.leader = "unrdf-daemon-2"

    after = [s.name for s in Upgrade().plan(fake.view(), params)]

    assert params.order == ["unrdf-daemon-1", "unrdf-daemon-2", LEADER]
    assert after == before


def test_the_rollback_puts_touched_nodes_back_newest_first_on_their_previous_release() -> None:
    action = Upgrade()
    params = UpgradeParams(
        release="r2",
        order=["unrdf-daemon-1", "unrdf-daemon-2", LEADER],
        previous={"unrdf-daemon-1": "r1", "unrdf-daemon-2": "", LEADER: "r1"},
    )
    started = ["take a backup before the upgrade", "drain unrdf-daemon-1"]
    started += ["stop unrdf-daemon-1", "stop unrdf-daemon-2"]

    touched = action.touched(started)
    names = [s.name for s in action.rollback(params, touched)]

    assert touched == ["unrdf-daemon-1", "unrdf-daemon-2"]
    assert names == [
        "rollback: stop unrdf-daemon-2",
        "rollback: start unrdf-daemon-2 on the checkout",
        "rollback: wait until unrdf-daemon-2 has rejoined and caught up",
        "rollback: undrain unrdf-daemon-2",
        "rollback: stop unrdf-daemon-1",
        "rollback: start unrdf-daemon-1 on r1",
        "rollback: wait until unrdf-daemon-1 has rejoined and caught up",
        "rollback: undrain unrdf-daemon-1",
    ]


@pytest.mark.parametrize("bad", [{"release": ""}, {"release": "r2", "soakS": -1}, {"x": 1}])
def test_bad_upgrade_params_are_refused_naming_the_field(bad: dict) -> None:
    params, reasons = Upgrade().parse(bad)
    assert params is None and reasons
