"""The upgrade's first and last steps: a real backup before any node is touched, and the
state-machine code-version switch once every node runs the new release.

The backup is taken by the backups app (a layer above this one, which this module cannot
import): when it loads, it registers its procedure here (`use_backup_taker`), the same
function its own `backup` action's step runs, so an upgrade makes an ordinary Backup row
without starting a second run.

The switch is the point of no return for a binary rollback: after it, a node on a release
whose `max_code_version` is below the new version could not apply the log. So it comes
last, it may wait for an operator's promotion (the runner pauses before a step whose
`awaits_promotion` is set, until the run is promoted), and a refused switch is checked
again before it counts as failed: the rollback that follows a failure is only safe while
the cluster still runs the old code version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.clusters.daemon_client import DaemonError
from console.clusters.models import Release
from console.runbooks import live
from console.runbooks.actions.base import Step, StepContext, StepFailed, StepRun
from console.runbooks.live import ClusterView

BackupTaker = Callable[[StepContext], dict[str, Any]]
_takers: list[BackupTaker] = []

BACKUP_STEP = "take a backup before the upgrade"
SWITCH_TIMEOUT_S = 30.0


def use_backup_taker(taker: BackupTaker) -> None:
    """Called by the backups app when it loads: how an upgrade takes its backup."""
    _takers[:] = [taker]


def backup_first() -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        if not _takers:
            raise StepFailed("no backup procedure is registered (is the backups app installed?)")
        return {"phase": "backup", **_takers[0](ctx)}

    return run


@dataclass(frozen=True)
class PromotionStep(Step):
    """A step the runner does not start until the run was promoted (when set)."""

    awaits_promotion: bool = False


def enabled_code_version(view: ClusterView) -> int:
    """The code version the cluster has enabled, as its members report it."""
    return max((m.code_version or 0 for m in view.members), default=0)


def switch_target(release_name: str, view: ClusterView) -> int:
    """The code version an upgrade to `release_name` should end by switching to, or 0
    when the release supports nothing above what the cluster already enabled."""
    release = Release.objects.filter(name=release_name).first()
    supported = release.max_code_version if release else None
    enabled = enabled_code_version(view)
    return supported if supported is not None and supported > enabled else 0


def switch_name(version: int, require_promote: bool) -> str:
    waits = " (waits for an operator to promote the run)" if require_promote else ""
    return f"switch the code version to {version}{waits}"


def switch_step(version: int, require_promote: bool) -> PromotionStep:
    return PromotionStep(
        switch_name(version, require_promote),
        _switch(version),
        awaits_promotion=require_promote,
    )


def _switch(version: int) -> StepRun:
    """POST /admin/code-version to the leader (any member forwards it): a no-op when the
    cluster already enabled `version`, as after an interrupted attempt."""

    def run(ctx: StepContext) -> dict[str, Any]:
        view = _view(ctx)
        before = enabled_code_version(view)
        if before >= version:
            return _done(version, before, changed=False)
        leader = view.member(view.leader) if view.leader else None
        url = live.url_of(leader) if leader else ""
        if not url:
            raise StepFailed("the cluster has no leader to switch the code version")
        try:
            answer = ctx.client.request(
                "POST", url, "/admin/code-version", json={"version": version},
                timeout=SWITCH_TIMEOUT_S,
            )  # fmt: skip
        except DaemonError as err:
            # Refused, or not known to be committed: only a view can tell which.
            now = enabled_code_version(_view(ctx))
            if now >= version:
                return _done(version, before, changed=True)
            raise StepFailed(
                f"the switch to code version {version} did not happen ({err}); the cluster "
                f"still runs code version {now}, so a binary rollback is still safe"
            ) from None
        done = _done(version, before, changed=bool(answer.get("changed", True)))
        return {**done, "members": answer.get("members")}

    return run


def _done(version: int, before: int, changed: bool) -> dict[str, Any]:
    return {
        "phase": "code-version switch",
        "codeVersion": version,
        "previous": before,
        "changed": changed,
        "rollbackSafe": False,
        "note": f"code version {version} is enabled: a binary rollback below it is no longer "
        "possible; the way back is a restore from a backup",
    }


def _view(ctx: StepContext) -> ClusterView:
    view = live.read_view(ctx.cluster, ctx.client)
    if view is None:
        raise StepFailed("no node of the cluster answered")
    return view
