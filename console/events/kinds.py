"""Every event kind the journal holds: who appends it, its payload keys, and which parts
of a cluster's dashboard it refreshes.

The one list of kinds. The dashboard page hands `dashboard_data()` to `static/console.js`
as JSON (so the script holds no kind names), `docs/console-design.md` describes it, and
a test fails when code appends a kind that is not here. A new kind: add a line.
"""

from __future__ import annotations

from dataclasses import dataclass

# The server-rendered pieces of a cluster's dashboard (templates/dashboard/_<part>.html).
DASHBOARD_PARTS = ("summary", "nodes", "alerts", "events", "runs", "actions")

# Every event lands in the latest-events list, so every kind refreshes this part.
ALWAYS_REFRESHED = "events"

_STATE = ("summary", "nodes")  # what the cluster and its nodes look like now
_STATE_AND_ACTIONS = (*_STATE, "actions")  # ... and which runbook actions make sense
_ALERT = ("alert_id", "rule", "severity", "value", "threshold", "summary")
_STEP = ("run_id", "position", "name", "status", "detail", "gates")


@dataclass(frozen=True)
class EventKind:
    name: str
    source: str  # who appends it: collector, alerts, runbooks, operations, accounts, notifications
    payload: tuple[str, ...]  # the keys its payload carries (some may be null)
    refreshes: tuple[str, ...] = ()  # dashboard parts besides ALWAYS_REFRESHED

    def parts(self) -> tuple[str, ...]:
        return (ALWAYS_REFRESHED, *self.refreshes)


KINDS: dict[str, EventKind] = {
    kind.name: kind
    for kind in (
        # The collector: observed changes (polls themselves are not events).
        EventKind("leader.changed", "collector", ("from", "to", "term"), _STATE_AND_ACTIONS),
        EventKind("node.unreachable", "collector", ("node", "last_seen"), _STATE),
        EventKind("node.recovered", "collector", ("node",), _STATE),
        EventKind(
            "node.state", "collector", ("node", "role", "draining", "version"), _STATE_AND_ACTIONS
        ),
        EventKind("lag.high", "collector", ("node", "lag_ms", "threshold"), _STATE),
        EventKind("lag.normal", "collector", ("node", "lag_ms"), _STATE),
        EventKind("digest.mismatch", "collector", ("index", "digests"), _STATE),
        EventKind("cluster.quorum", "collector", ("has_quorum",), _STATE),
        EventKind("member.added", "collector", ("node",), _STATE_AND_ACTIONS),
        EventKind("member.removed", "collector", ("node",), _STATE_AND_ACTIONS),
        EventKind("executions.mirrored", "collector", ("count", "last_seq")),
        EventKind("executions.gap", "collector", ("from", "to")),
        # Alerts: evaluation (pending -> firing -> resolved) and people.
        EventKind("alert.pending", "alerts", _ALERT, ("alerts",)),
        EventKind("alert.firing", "alerts", (*_ALERT, "previous_severity"), ("alerts",)),
        EventKind("alert.resolved", "alerts", _ALERT, ("alerts",)),
        EventKind("alert.acknowledged", "alerts", ("alert_id", "comment"), ("alerts",)),
        EventKind("alert.silenced", "alerts", ("alert_id", "until"), ("alerts",)),
        # Runbooks: requests, the worker's runs and their steps.
        EventKind(
            "run.requested",
            "runbooks",
            ("run_id", "action", "params", "dry_run", "ok", "reasons"),
            ("runs",),
        ),
        EventKind("run.refused", "runbooks", ("run_id", "reasons"), ("runs",)),
        EventKind("run.started", "runbooks", ("run_id",), ("runs",)),
        EventKind("run.finished", "runbooks", ("run_id", "status", "error"), ("runs",)),
        EventKind("run.cancel_requested", "runbooks", ("run_id",), ("runs",)),
        EventKind("run.resumed", "runbooks", ("run_id", "previous"), ("runs",)),
        EventKind("run.rolling_back", "runbooks", ("run_id", "reason", "nodes"), ("runs",)),
        # Run controls (issue 10): abort is cancel's alias; a paused run holds the cluster.
        EventKind("run.abort_requested", "runbooks", ("run_id", "previous"), ("runs",)),
        EventKind("run.pause_requested", "runbooks", ("run_id",), ("runs",)),
        EventKind("run.paused", "runbooks", ("run_id", "reason", "position"), ("runs",)),
        EventKind("run.promoted", "runbooks", ("run_id", "previous"), ("runs",)),
        EventKind("step.started", "runbooks", _STEP, ("runs",)),
        EventKind("step.finished", "runbooks", _STEP, ("runs",)),
        EventKind(
            "drill.judged", "runbooks", ("fault", "verdict", "recovery_s", "expected_s", "lost")
        ),
        # Operations defined and run from the console (pages and API).
        EventKind("operation.defined", "operations", ("operation_id", "created")),
        EventKind("operation.deleted", "operations", ("operation_id",)),
        EventKind("operation.executed", "operations", ("operation_id", "execution_id", "status")),
        # Releases: builds of this project that nodes can run.
        EventKind("release.registered", "releases", ("release", "source", "sha256", "commit")),
        EventKind("release.retired", "releases", ("release", "reason")),
        EventKind("release.yanked", "releases", ("release", "reason")),
        # Backups: taken, verified in a scratch node, pruned by retention.
        EventKind("backup.taken", "backups", ("backup_id", "node", "applied_index", "size_bytes")),
        EventKind("backup.verified", "backups", ("backup_id", "seconds", "reason")),
        EventKind("backup.verify_failed", "backups", ("backup_id", "seconds", "reason")),
        EventKind("backup.pruned", "backups", ("backup_id", "created_at", "verification")),
        EventKind(
            "backup.schedule",
            "backups",
            ("enabled", "interval_hours", "keep_last", "keep_weekly"),
        ),
        # Releases verified and seen running; nodes the node manager restarted after a crash.
        EventKind(
            "release.verified", "releases", ("release", "duration_s", "max_code_version", "error")
        ),
        EventKind(
            "release.verification_failed",
            "releases",
            ("release", "duration_s", "max_code_version", "error"),
        ),
        EventKind("release.verify_requested", "releases", ("release",)),
        EventKind("release.active", "collector", ("release", "nodes")),
        EventKind("cluster.added", "dashboard", ("node_manager", "namespace", "statefulset")),
        EventKind("node.release", "collector", ("node", "before", "after"), _STATE),
        EventKind(
            "node.crash_restarted", "collector", ("node", "attempt", "pid", "log_tail"), _STATE
        ),
        EventKind(
            "node.crash_restart_failed",
            "collector",
            ("node", "attempt", "retry_in_s", "log_tail"),
            _STATE,
        ),
        # Accounts: tokens and roles (no cluster: never on a cluster's dashboard).
        EventKind("token.created", "accounts", ("token_id", "name", "user")),
        EventKind("token.revoked", "accounts", ("token_id", "name")),
        EventKind("user.role", "accounts", ("user", "before", "after")),
        EventKind("login.locked", "accounts", ("user", "address", "scope")),
        # Notifications: admins' channel changes and test messages, each delivery attempt
        # (no cluster: they stay off the dashboards).
        EventKind(
            "notification.channel", "notifications", ("channel", "action", "channel_kind", "routes")
        ),
        EventKind("notification.test", "notifications", ("channel", "delivery_id")),
        EventKind(
            "notification.attempt",
            "notifications",
            ("delivery_id", "channel", "key", "attempt", "ok", "error", "final"),
        ),
    )
}


def dashboard_data() -> dict[str, object]:
    """What static/console.js needs, rendered into the page with `json_script`: every
    part (refetched after a reconnect) and {kind: the parts to refetch}; a kind it does
    not find refreshes ALWAYS_REFRESHED only."""
    return {
        "parts": list(DASHBOARD_PARTS),
        "refreshes": {name: list(kind.parts()) for name, kind in KINDS.items()},
    }
