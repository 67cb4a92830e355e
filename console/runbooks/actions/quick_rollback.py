"""Quick rollback: every node back to the release it ran before the last upgrade.

The same per-node steps and soak gates as the upgrade (followers first, the leader last),
with a short default soak. Refused once the cluster enabled a state-machine code version
the old release does not support: running it would corrupt the replicated state, so the
way back is a restore from a backup, and the refusal says so."""

from __future__ import annotations

from pydantic import Field

from console.clusters.daemon_client import DaemonClient
from console.clusters.models import Release
from console.runbooks.actions.base import Params, Step
from console.runbooks.actions.upgrade import (
    Upgrade,
    UpgradeParams,
    cluster_reasons,
    node_order,
    node_steps,
    releases_of,
)
from console.runbooks.live import ClusterView
from console.runbooks.models import RunbookRun
from daemon.build import max_code_version
from daemon.state import ReplicatedState

RESTORE = "restore from a backup instead (Backups page, or the restore action)"


class RollbackParams(UpgradeParams):
    release: str = Field("", max_length=63, description="set by the console: unused")
    soakS: float = Field(2.0, ge=0, le=600, description="how long each node's gates must hold")
    targets: dict[str, str] | None = Field(
        None, description="set by the console: node -> the release to go back to"
    )
    fromRun: int | None = Field(None, description="set by the console: the upgrade undone")


def supported_by(release: str) -> int | None:
    """The highest code version `release` can apply ("" is the checkout the console runs
    from, whose state machine is this tree's); None for a release the console lacks."""
    if not release:
        return max_code_version(ReplicatedState)
    found = Release.objects.filter(name=release).first()
    return found.max_code_version if found else None


def _named(release: str) -> str:
    return f"release {release}" if release else "the checkout"


def last_upgrade(cluster: object) -> RunbookRun | None:
    return (
        RunbookRun.objects.filter(cluster=cluster, action="upgrade", status="succeeded")
        .order_by("-id")
        .first()
    )


class QuickRollback(Upgrade):
    name = "rollback"
    label = "Quick rollback"
    Params = RollbackParams

    def check(self, view: ClusterView, params: RollbackParams, client: DaemonClient) -> list[str]:
        reasons, enabled = cluster_reasons(view, client)
        cluster = getattr(client, "cluster", None)
        upgrade = last_upgrade(cluster) if cluster is not None else None
        if upgrade is None:
            return [*reasons, "there is no finished upgrade to roll back"]
        targets = upgrade.params.get("previous") or {}
        for release in sorted(set(targets.values())):
            supported = supported_by(release)
            if enabled and (supported is None or supported < enabled):
                reasons.append(
                    f"the cluster switched to state-machine code version {enabled} after "
                    f"upgrade run #{upgrade.id}; {_named(release)} supports up to {supported}, "
                    f"so a binary rollback would corrupt the replicated state: {RESTORE}"
                )
        return reasons

    def settle(self, view: ClusterView, params: RollbackParams, client: DaemonClient) -> Params:
        if params.targets is not None:
            return params
        cluster = getattr(client, "cluster", None)
        upgrade = last_upgrade(cluster)
        targets = dict((upgrade.params.get("previous") or {}) if upgrade else {})
        order = node_order(view)
        return params.model_copy(
            update={
                "order": order,
                "targets": targets,
                "previous": releases_of(cluster, order) if cluster is not None else {},
                "fromRun": upgrade.id if upgrade else None,
            }
        )

    def plan(self, view: ClusterView, params: RollbackParams) -> list[Step]:
        order = params.order or node_order(view)
        targets = params.targets or {}
        steps: list[Step] = []
        for name in order:
            view.by_name[name]
            if name in targets:
                steps += node_steps(name, targets[name], params)
        return steps
