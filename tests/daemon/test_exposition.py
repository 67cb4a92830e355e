"""daemon.exposition: the JSON summary fields and the Prometheus exposition."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from daemon.exposition import quantile_ms, render_prometheus, summarize, wants_prometheus
from daemon.rollups import BUCKETS_MS, merge_rollups, new_rollup
from tests.daemon.test_rollups import rollup_of

REQUIRED_FAMILIES = {
    # family name as the parser reports it -> type
    "daemon_operations_failed": "counter",
    "daemon_operation_duration_ms": "histogram",
    "daemon_raft_replication_lag_ms": "gauge",
    "daemon_operations": "counter",
    "daemon_raft_term": "gauge",
    "daemon_raft_commit_index": "gauge",
    "daemon_raft_applied_index": "gauge",
    "daemon_raft_is_leader": "gauge",
    "daemon_raft_has_quorum": "gauge",
    "daemon_cluster_size": "gauge",
    "daemon_failover": "counter",
    "daemon_executions_active": "gauge",
    "daemon_queue_depth": "gauge",
    "daemon_queue_capacity": "gauge",
    "daemon_draining": "gauge",
    "daemon_cache_size": "gauge",
    "daemon_cache_hits": "counter",
    "daemon_cache_misses": "counter",
    "daemon_raft_journal_bytes": "gauge",
    "daemon_data_dir_bytes": "gauge",
    "daemon_build_info": "gauge",
    "daemon_uptime_seconds": "gauge",
}

# The runbook fixes these names (its PrometheusRule uses them); promtool's linter only
# objects to the "_ms" unit abbreviation, which we accept for them and nothing else.
RUNBOOK_MS_NAMES = {"daemon_operation_duration_ms", "daemon_raft_replication_lag_ms"}


def sample_snapshot() -> dict:
    local = rollup_of(
        ("success", 0.5), ("success", 3), ("failure", 120), ("timeout", 70000), ("success", 40)
    )
    return {
        "node": "unrdf-daemon-0",
        "version": "0.1.0",
        "build": {"release": "r-2", "package": "0.1.0+r.2", "commit": "abc123", "dirty": False},
        "local": local,
        "cluster": merge_rollups([local, local]),
        "raft": {
            "term": 4,
            "commitIndex": 1234,
            "appliedIndex": 1233,
            "isLeader": True,
            "hasQuorum": True,
            "clusterSize": 3,
            "failoverCount": 2,
            "replicationLagMs": {"unrdf-daemon-2": 150.0, "unrdf-daemon-1": 0.4},
            "maxReplicationLagMs": 150.0,
        },
        "executor": {"active": 1, "queued": 2, "capacity": 100, "maxConcurrent": 10},
        "cache": {"size": 3, "maxSize": 1000, "hits": 5, "misses": 2},
        "journalBytes": 1024,
        "dataDirBytes": 4096,
        "uptimeSeconds": 12.5,
    }


def families_by_name(body: bytes) -> dict:
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


# --------------------------------------------------------------------------- quantile


def hist_with(counts: dict[int, int]) -> list[int]:
    hist = [0] * (len(BUCKETS_MS) + 1)
    for index, count in counts.items():
        hist[index] = count
    return hist


def test_quantile_empty_is_zero() -> None:
    assert quantile_ms(new_rollup()[5], 0.95) == 0.0


def test_quantile_interpolates_inside_bucket() -> None:
    # 10 observations in (5, 10]: the median sits halfway through the bucket.
    hist = hist_with({3: 10})
    assert quantile_ms(hist, 0.5) == pytest.approx(7.5)
    assert quantile_ms(hist, 1.0) == pytest.approx(10.0)


def test_quantile_first_bucket_starts_at_zero() -> None:
    assert quantile_ms(hist_with({0: 4}), 0.5) == pytest.approx(0.5)


def test_quantile_matches_prometheus_across_buckets() -> None:
    # 90 fast (<= 1 ms) and 10 in (100, 250]: rank 95 is the 5th of 10 in that bucket.
    hist = hist_with({0: 90, 7: 10})
    assert quantile_ms(hist, 0.95) == pytest.approx(100 + 150 * 0.5)
    assert quantile_ms(hist, 0.9) == pytest.approx(1.0)


def test_quantile_in_inf_bucket_returns_last_finite_bound() -> None:
    hist = hist_with({0: 1, len(BUCKETS_MS): 99})
    assert quantile_ms(hist, 0.99) == BUCKETS_MS[-1]


def test_quantile_zero_and_out_of_range_q() -> None:
    hist = hist_with({4: 2, 6: 2})
    assert quantile_ms(hist, 0.0) == pytest.approx(10.0)  # lower bound of first non-empty
    assert quantile_ms(hist, -1) == quantile_ms(hist, 0.0)
    assert quantile_ms(hist, 7) == quantile_ms(hist, 1.0) == pytest.approx(100.0)
    assert quantile_ms(hist, float("nan")) == 0.0


# -------------------------------------------------------------------------- summaries


def test_summarize_empty() -> None:
    assert summarize(new_rollup()) == {
        "totalOperations": 0,
        "successCount": 0,
        "errorCount": 0,
        "timeoutCount": 0,
        "successRate": 100.0,
        "avgDuration": 0.0,
        "p95Duration": 0.0,
        "p99Duration": 0.0,
    }


def test_summarize_values() -> None:
    rollup = rollup_of(*([("success", 2.0)] * 97), ("failure", 1.0), ("timeout", 70000), ("x", 0))
    summary = summarize(rollup)
    assert summary["totalOperations"] == 100
    assert summary["successCount"] == 97
    assert summary["errorCount"] == 3
    assert summary["timeoutCount"] == 1
    assert summary["successRate"] == 97.0
    assert summary["avgDuration"] == round((97 * 2.0 + 1.0 + 70000) / 100, 3)
    assert 1.0 < summary["p95Duration"] <= 2.5
    assert summary["p99Duration"] == 2.5  # rank 99 is the last of the 97 in (1, 2.5]
    assert isinstance(summary["successRate"], float)


def test_summarize_rounds_success_rate() -> None:
    rollup = rollup_of(("success", 1), ("success", 1), ("failure", 1))
    assert summarize(rollup)["successRate"] == 66.67


# -------------------------------------------------------------------------- prometheus


def test_wants_prometheus() -> None:
    assert wants_prometheus("text/plain")
    assert wants_prometheus("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert wants_prometheus("application/openmetrics-text;version=1.0.0")
    assert not wants_prometheus("")
    assert not wants_prometheus("*/*")
    assert not wants_prometheus("application/json")
    assert not wants_prometheus("text/html,application/xhtml+xml")


def test_render_text_format_round_trip() -> None:
    body, content_type = render_prometheus(sample_snapshot())
    assert content_type.startswith("text/plain; version=0.0.4")
    families = families_by_name(body)
    for name, kind in REQUIRED_FAMILIES.items():
        assert name in families, name
        assert families[name].type == kind, name
        assert families[name].documentation.strip(), f"{name} has no HELP"

    def value(family: str, sample: str, **labels: str) -> float:
        for s in families[family].samples:
            if s.name == sample and s.labels == labels:
                return s.value
        raise AssertionError(f"no sample {sample}{labels}")

    assert value("daemon_operations_failed", "daemon_operations_failed_total") == 2
    assert value("daemon_operations", "daemon_operations_total", status="success") == 3
    assert value("daemon_operations", "daemon_operations_total", status="timeout") == 1
    assert value("daemon_raft_replication_lag_ms", "daemon_raft_replication_lag_ms",
                 peer="unrdf-daemon-2") == 150.0  # fmt: skip
    assert value("daemon_build_info", "daemon_build_info", node="unrdf-daemon-0",
                 version="0.1.0", release="r-2", package="0.1.0+r.2", commit="abc123") == 1  # fmt: skip
    assert value("daemon_raft_is_leader", "daemon_raft_is_leader") == 1
    assert value("daemon_draining", "daemon_draining") == 0  # absent key -> not draining
    assert value("daemon_failover", "daemon_failover_total") == 2
    assert value("daemon_queue_depth", "daemon_queue_depth") == 2
    assert value("daemon_uptime_seconds", "daemon_uptime_seconds") == 12.5

    # The runbook's alert matches every series of the family: only per-peer ones.
    lag_samples = families["daemon_raft_replication_lag_ms"].samples
    assert all(set(s.labels) == {"peer"} for s in lag_samples)
    assert len(lag_samples) == 2


def test_histogram_is_cumulative_and_consistent() -> None:
    snapshot = sample_snapshot()
    families = families_by_name(render_prometheus(snapshot)[0])
    samples = families["daemon_operation_duration_ms"].samples
    buckets = [s for s in samples if s.name.endswith("_bucket")]
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert [float(s.labels["le"]) for s in buckets] == [*map(float, BUCKETS_MS), math.inf]
    values = [s.value for s in buckets]
    assert values == sorted(values)
    assert values[-1] == count == 5
    assert total == pytest.approx(snapshot["local"][4])


def test_render_openmetrics() -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    body, content_type = render_prometheus(sample_snapshot(), accept)
    assert content_type.startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n")
    names = {f.name for f in openmetrics_families(text)}
    assert {"daemon_operations_failed", "daemon_operation_duration_ms", "daemon_build"} <= names


def test_render_is_deterministic_and_tolerates_partial_snapshots() -> None:
    assert render_prometheus(sample_snapshot()) == render_prometheus(sample_snapshot())
    # During startup the API layer may not have every section yet.
    for partial in ({}, {"local": "garbage", "raft": None, "cache": {"hits": "x"}}):
        body, _ = render_prometheus(partial)  # type: ignore[arg-type]
        families = families_by_name(body)
        assert set(REQUIRED_FAMILIES) <= set(families)
        assert families["daemon_operations_failed"].samples[0].value == 0


def test_unknown_peer_lag_is_omitted_not_zero() -> None:
    snapshot = sample_snapshot()
    snapshot["raft"]["replicationLagMs"] = {"unrdf-daemon-1": None, "unrdf-daemon-2": 3.5}
    samples = families_by_name(render_prometheus(snapshot)[0])[
        "daemon_raft_replication_lag_ms"
    ].samples
    assert [(s.labels["peer"], s.value) for s in samples] == [("unrdf-daemon-2", 3.5)]


def test_cluster_rollup_is_not_exported() -> None:
    # Every node would export the same cluster-wide totals; sum() would multiply them.
    snapshot = sample_snapshot()
    snapshot["cluster"] = rollup_of(*([("failure", 1)] * 1000))
    families = families_by_name(render_prometheus(snapshot)[0])
    assert families["daemon_operations_failed"].samples[0].value == 2


def promtool_or_skip() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("REQUIRE_PROMTOOL") == "1":
            pytest.fail("REQUIRE_PROMTOOL=1 but promtool is not on PATH")
        pytest.skip(
            "promtool not installed (apt-get install -y --no-install-recommends prometheus)"
        )
    return path


@pytest.mark.parametrize("snapshot", [sample_snapshot(), {}], ids=["sample", "empty"])
def test_promtool_check_metrics(snapshot: dict) -> None:
    promtool = promtool_or_skip()
    body, _ = render_prometheus(snapshot)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    output = (result.stdout + result.stderr).decode()
    # Exit 1 is a parse error; 3 means lint findings only. The lint findings must be
    # exactly the unit-abbreviation ones for the runbook-mandated "_ms" names.
    assert result.returncode in (0, 3), output
    problems = {line.strip() for line in output.splitlines() if line.strip()}
    allowed = {
        f"{name} metric names should not contain abbreviated units" for name in RUNBOOK_MS_NAMES
    }
    assert problems <= allowed, problems - allowed


def test_module_imports_without_django() -> None:
    # The daemon must run where Django is not installed: make "import django" fail.
    code = "import sys; sys.modules['django'] = None; import daemon.exposition"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
