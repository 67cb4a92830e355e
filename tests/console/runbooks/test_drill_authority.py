"""Who may confirm a drill on a production cluster is asked of the action with the caller
(Action.authority_reasons), when the run is requested and again when it is resumed."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from console.clusters.models import Cluster
from console.runbooks import services
from console.runbooks.actions import ACTIONS
from console.runbooks.models import RunbookRun

pytestmark = pytest.mark.django_db


def paused_confirmed_drill(cluster: Cluster) -> RunbookRun:
    return RunbookRun.objects.create(
        cluster=cluster,
        action="drill_kill_leader",
        status="paused",
        params={"confirm_production": True},
    )


def test_an_operator_cannot_resume_a_drill_an_admin_confirmed_for_production(
    fake_cluster: Cluster, operator
) -> None:
    run = paused_confirmed_drill(fake_cluster)

    with pytest.raises(PermissionDenied, match="needs the admin role"):
        services.resume_run(run.id, operator)
    client = Client()
    client.force_login(operator)
    answer = client.post(f"/api/runbooks/runs/{run.id}/resume")

    assert answer.status_code == 403
    run.refresh_from_db()
    assert run.status == "paused"


def test_only_drills_ask_for_the_admin_role_and_only_when_confirming_production() -> None:
    confirming = {"confirm_production": True}
    drills = {
        name for name, action in ACTIONS.items() if action.authority_reasons(confirming, False)
    }

    assert drills == {
        "drill_kill_leader",
        "drill_pause_node",
        "drill_fill_disk",
        "drill_partition_node",
    }
    assert all(not ACTIONS[name].authority_reasons(confirming, True) for name in drills)
    assert all(not ACTIONS[name].authority_reasons({}, False) for name in drills)
