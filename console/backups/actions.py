"""The runbook actions `backup`, `verify_backup` and `restore` (see procedures.py).

They join `console.runbooks.actions.ACTIONS` when the app loads (`register`), so the
worker, preflight and the runs pages treat them like every other action.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.conf import settings
from pydantic import Field

from console.backups import alerting, procedures, retention
from console.backups.models import Backup
from console.backups.storage import default_storage
from console.clusters.daemon_client import DaemonClient
from console.runbooks.actions import ACTIONS, LABELS, upgrade_edges
from console.runbooks.actions.base import (
    Action,
    Params,
    Step,
    StepContext,
    StepFailed,
    quorum_reasons,
)
from console.runbooks.live import ClusterView, read_view, url_of
from daemon.backup import BackupError, read
from daemon.localcluster import Layout, LayoutError
from daemon.restore import mismatches, summary_of

ACTOR = "worker"
BackupId = Annotated[int, Field(ge=1, description="the id of a backup of this cluster")]


class TakeParams(Params):
    verify: bool = Field(True, description="restore it into a scratch node afterwards")


class VerifyParams(Params):
    backup_id: BackupId


class RestoreParams(Params):
    backup_id: BackupId
    confirm: Annotated[
        str, Field(max_length=63, description="the cluster's name, typed to confirm")
    ]


def _backup(backup_id: int) -> Backup | None:
    return Backup.objects.select_related("cluster").filter(pk=backup_id).first()


class TakeBackup(Action):
    name = "backup"
    label = "Back up"
    Params = TakeParams

    def check(self, view: ClusterView, params: TakeParams, client: DaemonClient) -> list[str]:
        reasons = quorum_reasons(view)
        if not reasons and procedures.caught_up_source(view) is None:
            reasons.append("no caught-up node to back up from")
        return reasons

    def plan(self, view: ClusterView, params: TakeParams) -> list[Step]:
        source = procedures.caught_up_source(view)
        made: dict[str, int] = {}  # the take step tells the verify step which backup

        def take(ctx: StepContext) -> dict[str, Any]:
            try:
                row = procedures.take(ctx.cluster, url_of(source), source.name, ACTOR)
            except BackupError as exc:
                raise StepFailed(str(exc)) from None
            made["id"] = row.id
            return {"backup_id": row.id, "size_bytes": row.size_bytes, **_brief(row.manifest)}

        def verify(ctx: StepContext) -> dict[str, Any]:
            row = _backup(made["id"]) if "id" in made else _latest_unverified(ctx)
            return _verified(row)

        def prune(ctx: StepContext) -> dict[str, Any]:
            return {"pruned": retention.prune(ctx.cluster, ACTOR)}

        steps = [Step(f"take a backup from {source.name if source else '?'}", take)]
        if params.verify:
            steps.append(Step("verify it in a scratch node", verify))
        steps.append(Step("prune by retention", prune))
        return steps


class VerifyBackup(Action):
    name = "verify_backup"
    label = "Verify backup"
    Params = VerifyParams

    def check(self, view: ClusterView, params: VerifyParams, client: DaemonClient) -> list[str]:
        return _backup_reasons(params.backup_id)

    def plan(self, view: ClusterView, params: VerifyParams) -> list[Step]:
        def verify(ctx: StepContext) -> dict[str, Any]:
            return _verified(_backup(params.backup_id))

        return [Step(f"verify backup {params.backup_id} in a scratch node", verify)]


class RestoreBackup(Action):
    """Admin only (the API checks the role before asking for the run)."""

    name = "restore"
    label = "Restore"
    Params = RestoreParams

    def check(self, view: ClusterView, params: RestoreParams, client: DaemonClient) -> list[str]:
        reasons = _backup_reasons(params.backup_id)
        row = _backup(params.backup_id)
        if row is not None and params.confirm != row.cluster.name:
            reasons.append(f"type the cluster's name ({row.cluster.name}) to confirm the restore")
        if row is not None and row.cluster.node_manager != "local":
            reasons.append("restore is only automated for clusters this machine runs (local)")
        try:
            Layout.load(_layout_root())
        except LayoutError as exc:
            reasons.append(str(exc))
        return reasons

    def plan(self, view: ClusterView, params: RestoreParams) -> list[Step]:
        def check_file(ctx: StepContext) -> dict[str, Any]:
            row = _backup(params.backup_id)
            try:
                with default_storage().local_file(row.location) as path:
                    from_file = _brief(_read(path))
            except BackupError as exc:
                raise StepFailed(f"the backup is refused: {exc}") from None
            return from_file

        def stop(ctx: StepContext) -> dict[str, Any]:
            return {"stopped": _call(procedures.stop_all, Layout.load(_layout_root()))}

        def restore(ctx: StepContext) -> dict[str, Any]:
            row = _backup(params.backup_id)
            with default_storage().local_file(row.location) as path:
                return _call(procedures.restore_in_place, _layout_root(), path)

        def start(ctx: StepContext) -> dict[str, Any]:
            return {"started": _call(procedures.start_all, Layout.load(_layout_root()))}

        def wait_quorum(ctx: StepContext) -> dict[str, Any]:
            def quorate() -> dict[str, Any] | None:
                view = read_view(ctx.cluster, ctx.client)
                if view and view.leader and view.has_quorum:
                    return {"leader": view.leader, "members": len(view.members)}
                return None

            return ctx.wait_until(quorate, 60, "a leader and quorum")

        def check_digest(ctx: StepContext) -> dict[str, Any]:
            row = _backup(params.backup_id)
            layout = Layout.load(_layout_root())
            token = ctx.cluster.api_token or ""
            found = {}
            for spec in layout.nodes:
                summary = _call(summary_of, spec.url, token)
                wrong = mismatches(row.manifest, summary)
                if wrong:
                    raise StepFailed(f"{spec.name} does not match the manifest: {'; '.join(wrong)}")
                found[spec.name] = summary["contentDigest"][:16]
            return {"contentDigest": found, "totalExecutions": row.manifest["totalExecutions"]}

        return [
            Step(f"check backup {params.backup_id}'s file", check_file),
            Step("stop every node", stop),
            Step("restore every node's data dir (new cluster identity)", restore),
            Step("start every node", start),
            Step("wait for a leader and quorum", wait_quorum),
            Step("check every node's digest and totals against the manifest", check_digest),
        ]


# ---- helpers ------------------------------------------------------------------------------
def _layout_root() -> Any:
    return settings.BACKUPS_LOCAL_CLUSTER_DIR


def _read(path: Any) -> dict[str, Any]:
    return read(path)[0]


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (BackupError, LayoutError, OSError, TimeoutError) as exc:
        raise StepFailed(str(exc)) from None
    except Exception as exc:  # httpx errors and the like: one line for the operator
        raise StepFailed(f"{exc.__class__.__name__}: {exc}") from None


def _brief(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("appliedIndex", "digest", "operations", "totalExecutions", "executionRecordsHeld")
    return {key: manifest.get(key) for key in keys}


def _backup_reasons(backup_id: int) -> list[str]:
    row = _backup(backup_id)
    if row is None:
        return [f"there is no backup {backup_id}"]
    if not default_storage().exists(row.location):
        return [f"backup {backup_id}'s file is missing from the backup storage"]
    return []


def _latest_unverified(ctx: StepContext) -> Backup | None:
    return Backup.objects.filter(cluster=ctx.cluster, verification="pending").first()


def _verified(row: Backup | None) -> dict[str, Any]:
    if row is None:
        raise StepFailed("the backup to verify is gone")
    result = procedures.verify(row, ACTOR)
    alerting.evaluate(row.cluster)
    if row.verification != "verified":
        raise StepFailed(
            f"backup {row.id} failed verification: "
            f"{result.get('error') or '; '.join(result['mismatches'])}"
        )
    return {"backup_id": row.id, "seconds": result["seconds"], "verified": True}


def register() -> None:
    for action in (TakeBackup(), VerifyBackup(), RestoreBackup()):
        ACTIONS.setdefault(action.name, action)
        LABELS.setdefault(action.name, action.label)
    upgrade_edges.use_backup_taker(take_before_upgrade)


def take_before_upgrade(ctx: StepContext) -> dict[str, Any]:
    """An upgrade's first step: the backup action's own take (same source choice, same
    procedure, an ordinary Backup row), inside the upgrade's run."""
    view = read_view(ctx.cluster, ctx.client)
    source = procedures.caught_up_source(view) if view is not None else None
    if source is None:
        raise StepFailed("no caught-up node to back up from")
    try:
        row = procedures.take(ctx.cluster, url_of(source), source.name, ACTOR)
    except (BackupError, OSError) as exc:
        raise StepFailed(f"the backup failed: {exc}") from None
    return {"backup_id": row.id, "node": source.name, "size_bytes": row.size_bytes,
            **_brief(row.manifest)}  # fmt: skip
