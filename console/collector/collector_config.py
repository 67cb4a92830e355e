"""The collector's knobs: a Django setting of the same name wins, else the environment,
else the embedded default, so a fresh checkout polls once a second with no setup."""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings

from console.env import SettingsError, env_bool


def _number(name: str, default: float) -> float:
    if hasattr(settings, name):
        return float(getattr(settings, name))
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative")
    return value


def local_cluster_wanted() -> bool:
    return bool(getattr(settings, "CONSOLE_LOCAL_CLUSTER", env_bool("CONSOLE_LOCAL_CLUSTER", True)))


@dataclass(frozen=True)
class CollectorConfig:
    interval_s: float = 1.0
    # After a change (leader moved, node down) poll this often for fast_for_s, so a
    # dashboard shows the new leader within a second or two rather than a full interval.
    fast_interval_s: float = 0.25
    fast_for_s: float = 5.0
    # Per request: a dead node costs at most this, never a hung tick. /health/cluster
    # fans out to peers with the daemon's own 0.5 s timeout, so this sits above it.
    timeout_s: float = 0.8
    feed_timeout_s: float = 3.0
    feed_page_limit: int = 1000
    feed_max_pages: int = 20
    # The runbook's DaemonReplicationLag rule: lag over 100 ms.
    lag_threshold_ms: float = 100.0
    # One chart point a second is 3,600 rows an hour per cluster, 86,400 a day: small rows,
    # indexed by (cluster, at), pruned past the retention.
    sample_interval_s: float = 1.0
    sample_retention_s: float = 24 * 3600.0
    prune_every_s: float = 60.0
    # Hold a blocking GET /watch open on every node, so a change starts a tick at once
    # (watch.py); polling at interval_s stays the fallback.
    watch: bool = True
    # While every member of a cluster is watched, a full poll (every node, records,
    # split brain) runs this often, or at once when a watch says something changed; in
    # between, a chart sample each sample_interval_s needs only the leader's summary
    # (cadence.py). This bounds how stale a node's disk, queue, applied index and digest,
    # and the 5-minute figures in the chart can be (a hung node shows sooner: the leader's
    # summary counts it out, and a summary that disagrees brings a full poll).
    reconcile_s: float = 10.0
    # Alert rules are evaluated after every full poll and at least this often (so their
    # inputs, lag and errors among them, are judged at most this late).
    alert_interval_s: float = 5.0

    @classmethod
    def from_settings(cls, **overrides: float | bool) -> CollectorConfig:
        values = {
            "interval_s": _number("COLLECTOR_INTERVAL_S", cls.interval_s),
            "fast_interval_s": _number("COLLECTOR_FAST_INTERVAL_S", cls.fast_interval_s),
            "fast_for_s": _number("COLLECTOR_FAST_FOR_S", cls.fast_for_s),
            "timeout_s": _number("COLLECTOR_TIMEOUT_S", cls.timeout_s),
            "lag_threshold_ms": _number("COLLECTOR_LAG_THRESHOLD_MS", cls.lag_threshold_ms),
            "sample_interval_s": _number("COLLECTOR_SAMPLE_INTERVAL_S", cls.sample_interval_s),
            "sample_retention_s": 3600.0 * _number("SAMPLE_RETENTION_HOURS", 24.0),
            "reconcile_s": _number("COLLECTOR_RECONCILE_S", cls.reconcile_s),
            "alert_interval_s": _number("COLLECTOR_ALERT_INTERVAL_S", cls.alert_interval_s),
            "watch": bool(getattr(settings, "COLLECTOR_WATCH", env_bool("COLLECTOR_WATCH", True))),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
