"""The soak's error-ratio and p95 gates over a fake cluster whose nodes serve an
executions feed in the daemon's wire format: they judge what the daemons executed, say
so when nothing was, and never pass because nothing could be read."""

from __future__ import annotations

import time
from typing import Any

import pytest

from console.clusters.daemon_client import DaemonError
from console.runbooks.actions.base import StepContext
from console.runbooks.actions.soak import Measured, error_ratio_no_worse, p95_no_worse
from console.runbooks.models import RunbookRun
from console.runbooks.progress_gates import gate_view
from tests.console.runbooks.fakes import FakeCluster


class FeedCluster(FakeCluster):
    """The fake cluster, plus `GET /executions?after=&limit=` over `records`."""

    records: list[dict[str, Any]]
    feed_down: bool = False

    def execute(
        self, count: int, status: str = "success", ms: float = 0.05, ago: float = 0
    ) -> None:
        records = self.__dict__.setdefault("records", [])
        for _ in range(count):
            records.append(
                {"seq": len(records) + 1, "status": status, "duration": ms,
                 "node": "unrdf-daemon-1", "finishedAtEpoch": time.time() - ago}
            )  # fmt: skip

    def get(self, url: str, path: str, params: dict | None = None) -> Any:
        if path != "/executions":
            return super().get(url, path, params)
        if self.feed_down:
            raise DaemonError(f"{url}/executions: ConnectError", None, connect_failed=True)
        records = self.__dict__.get("records", [])
        after, limit = int(params["after"]), int(params["limit"])
        page = [r for r in records if r["seq"] > after][:limit]
        latest = records[-1]["seq"] if records else 0
        return {"executions": page, "nextAfter": page[-1]["seq"] if page else min(after, latest),
                "oldestSeq": 1, "latestSeq": latest, "gap": False}  # fmt: skip


def checked(
    fake: FeedCluster, soak_s: float, rounds: int = 2, cluster: Any = None, aged_s: float = 0
) -> list:
    """Check both gates `rounds` times (the first starts the window; the test adds
    executions between rounds through `fake.between`; `aged_s` ages the window then)."""
    measured = Measured(soak_s)
    gates = [error_ratio_no_worse(measured, 0.01), p95_no_worse(measured, 0.5)]
    ctx = StepContext(client=fake, heartbeat=lambda: None, cluster=cluster)
    results = []
    for i in range(rounds):
        if i:
            fake.between()
            measured.window.started -= aged_s
        results = [gate.check(fake.view(), ctx) for gate in gates]
    return results


@pytest.fixture
def fake() -> FeedCluster:
    fake = FeedCluster()
    fake.between = lambda: None
    return fake


def test_a_soak_without_executions_fails_at_its_end_when_the_baseline_had_some(
    fake: FeedCluster,
) -> None:
    fake.execute(50, ago=5)

    ratio, p95 = checked(fake, soak_s=1.0)

    assert not ratio.ok and ratio.value["note"] == "no executions in the window"
    assert "though the baseline had 50" in ratio.reason
    assert not p95.ok and p95.value["executions"] == 0


def test_early_in_a_soak_an_empty_window_is_shown_as_such_and_not_yet_judged(
    fake: FeedCluster,
) -> None:
    fake.execute(50, ago=5)

    ratio, _p95 = checked(fake, soak_s=30.0)

    assert ratio.ok and ratio.value["note"] == "no executions in the window yet"


def test_an_empty_window_fails_mid_soak_once_the_baseline_rate_expected_many(
    fake: FeedCluster,
) -> None:
    fake.execute(3000, ago=5)  # 50/s over the baseline's minute

    ratio, _p95 = checked(fake, soak_s=30.0, aged_s=3.0)

    assert not ratio.ok and "~150 expected by now" in ratio.reason


def test_a_soak_without_executions_passes_when_the_baseline_had_none_either(
    fake: FeedCluster,
) -> None:
    ratio, p95 = checked(fake, soak_s=1.0)

    assert ratio.ok and ratio.value["note"] == "no executions in the window (nor in the baseline)"
    assert p95.ok and p95.value["baselineExecutions"] == 0


def test_failed_executions_in_the_window_fail_the_error_ratio_gate_naming_where(
    fake: FeedCluster,
) -> None:
    fake.execute(100, ago=5)
    fake.between = lambda: (fake.execute(40), fake.execute(10, status="failure"))

    ratio, p95 = checked(fake, soak_s=1.0)

    assert not ratio.ok
    assert ratio.value["errorRatio"] == 0.2
    assert ratio.value["limit"] == 0.01 and ratio.value["baseline"] == 0.0
    assert "10 of 50 executions failed; on unrdf-daemon-1 10" in ratio.reason
    assert p95.ok and p95.value["limitMs"] == pytest.approx(0.05 + 50.0)


def test_a_slower_window_fails_the_p95_gate_with_its_limit(fake: FeedCluster) -> None:
    fake.execute(100, ms=200.0, ago=5)
    fake.between = lambda: fake.execute(50, ms=400.0)

    ratio, p95 = checked(fake, soak_s=1.0)

    assert ratio.ok and ratio.value["errorRatio"] == 0.0
    assert not p95.ok and p95.value["p95Ms"] == 400.0 and p95.value["limitMs"] == 300.0
    assert "p95 400.0 ms above its limit 300.0 ms" in p95.reason


def test_an_unreadable_feed_fails_the_gates_instead_of_passing_them(fake: FeedCluster) -> None:
    fake.feed_down = True

    ratio, p95 = checked(fake, soak_s=1.0, rounds=1)

    assert not ratio.ok and not p95.ok
    assert ratio.reason.startswith("the executions feed could not be read")


def test_the_baseline_stored_by_the_running_run_is_used_not_a_new_one(
    fake: FeedCluster, db: None
) -> None:
    cluster = fake.register()
    run = RunbookRun.objects.create(cluster=cluster, action="upgrade", params={}, status="running")
    stored = {"executions": 200, "failed": 20, "errorRatio": 0.1, "p95Ms": 1.0}
    run.steps.create(position=1, name="snapshot", status="succeeded", detail={"baseline": stored})
    fake.execute(100, ago=5)  # what a baseline measured now would see: no failures
    fake.between = lambda: (fake.execute(45), fake.execute(5, status="failure"))

    ratio, _p95 = checked(fake, soak_s=1.0, cluster=cluster)

    assert ratio.ok, ratio.reason  # 10% against the stored 10% (+1%), not against 0%
    assert ratio.value["baseline"] == 0.1 and ratio.value["baselineFrom"] == "before the upgrade"


def test_the_progress_view_puts_each_soak_gate_in_words_with_its_threshold(
    fake: FeedCluster,
) -> None:
    fake.execute(100, ms=200.0, ago=5)
    fake.between = lambda: (fake.execute(45, ms=100.0), fake.execute(5, status="failure"))
    ratio, p95 = checked(fake, soak_s=1.0)

    shown = [
        gate_view({"name": name, "ok": r.ok, "value": r.value, "reason": r.reason})
        for name, r in (("error ratio no worse than before the upgrade", ratio),
                        ("p95 latency no worse than before the upgrade", p95))
    ]  # fmt: skip

    assert shown[0].value.startswith("error ratio 10.00% over 50 executions in ")
    assert shown[0].threshold == "≤ 1.00% (baseline 0.00%)"
    assert shown[1].value.startswith("p95 100.0 ms over 50 executions")
    assert shown[1].threshold == "≤ 300 ms (baseline 200 ms)"
