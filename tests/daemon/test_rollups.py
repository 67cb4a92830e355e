"""daemon.rollups: the rollup arithmetic that runs inside replicated methods."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import contract
from daemon.rollups import (
    BUCKETS_MS,
    STATUSES,
    add_execution,
    merge_rollups,
    minute_of,
    new_rollup,
    prune_rollups,
    window_rollup,
)


def rollup_of(*executions: tuple[str, float]) -> list:
    rollup = new_rollup()
    for status, duration in executions:
        add_execution(rollup, status, duration)
    return rollup


# ----------------------------------------------------------------------------- rollups


def test_new_rollup_shape() -> None:
    rollup = new_rollup()
    assert rollup == [0, 0, 0, 0, 0.0, [0] * (len(BUCKETS_MS) + 1)]
    assert new_rollup() is not new_rollup()
    assert new_rollup()[5] is not new_rollup()[5]


@pytest.mark.parametrize(
    ("duration", "bucket"),
    [
        (0.0, 0),
        (1.0, 0),  # a value equal to a bound belongs to that bucket (Prometheus "le")
        (1.0001, 1),
        (100, 6),
        (100.5, 7),
        (60000, len(BUCKETS_MS) - 1),
        (60000.1, len(BUCKETS_MS)),  # +Inf
    ],
)
def test_add_execution_bucket(duration: float, bucket: int) -> None:
    rollup = rollup_of(("success", duration))
    assert rollup[5][bucket] == 1
    assert sum(rollup[5]) == 1
    assert rollup[4] == pytest.approx(duration)


def test_add_execution_statuses() -> None:
    rollup = rollup_of(("success", 1), ("failure", 2), ("timeout", 3), ("exploded", 4))
    assert rollup[:5] == [4, 1, 2, 1, 10.0]


@pytest.mark.parametrize("bad", [-5, float("nan"), float("inf"), float("-inf"), None, "x"])
def test_add_execution_clamps_bad_durations_to_zero(bad: object) -> None:
    rollup = rollup_of(("success", bad))  # type: ignore[arg-type]
    assert rollup[0] == 1
    assert rollup[4] == 0.0
    assert rollup[5][0] == 1


@pytest.mark.parametrize("status", [None, 3, "", "SUCCESS", ["success"]])
def test_add_execution_odd_status_is_failure(status: object) -> None:
    rollup = rollup_of((status, 1.0))  # type: ignore[arg-type]
    assert rollup[:4] == [1, 0, 1, 0]


def test_rollup_is_plain_and_picklable() -> None:
    rollup = rollup_of(("success", 2.0), ("timeout", 30001))
    assert pickle.loads(pickle.dumps(rollup)) == rollup
    assert all(type(x) in (int, float) for x in rollup[:5])
    assert all(type(x) is int for x in rollup[5])


def test_replicas_applying_the_same_log_agree() -> None:
    log = [("success", i * 7.3 % 900) for i in range(200)] + [("failure", 12.0)]
    a, b = new_rollup(), new_rollup()
    for status, duration in log:
        add_execution(a, status, duration)
    for status, duration in log:
        add_execution(b, status, duration)
    assert pickle.dumps(a) == pickle.dumps(b)


def test_merge_rollups() -> None:
    a = rollup_of(("success", 1), ("failure", 300))
    b = rollup_of(("timeout", 90000))
    before = copy.deepcopy([a, b])
    merged = merge_rollups([a, b])
    assert merged[:5] == [3, 1, 1, 1, 90301.0]
    assert merged[5] == [x + y for x, y in zip(a[5], b[5], strict=True)]
    assert [a, b] == before  # inputs untouched
    assert merge_rollups([]) == new_rollup()
    assert merge_rollups(iter([a])) == a and merge_rollups([a]) is not a


def test_merge_tolerates_histogram_of_another_length() -> None:
    old = [1, 1, 0, 0, 2.0, [0, 1]]
    longer = [1, 1, 0, 0, 2.0, [1] * 30]
    merged = merge_rollups([old, longer])
    assert merged[0] == 2
    assert len(merged[5]) == len(BUCKETS_MS) + 1


# ----------------------------------------------------------------------------- windows


def test_minute_of() -> None:
    assert minute_of(0) == 0
    assert minute_of(59.999) == 0
    assert minute_of(60) == 1
    assert minute_of(1_700_000_000.5) == 1_700_000_000 // 60
    assert isinstance(minute_of(123.4), int)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "x"])
def test_minute_of_never_raises(bad: object) -> None:
    assert minute_of(bad) == 0  # type: ignore[arg-type]


def test_window_rollup_bounds() -> None:
    by_minute = {m: rollup_of(("success", 1)) for m in range(90, 111)}
    window = window_rollup(by_minute, now_minute=100, minutes=10)
    assert window[0] == 10  # minutes 91..100: excludes 90 and the future 101..110
    assert window_rollup(by_minute, now_minute=100, minutes=0) == new_rollup()
    assert window_rollup({}, 100, 60) == new_rollup()


def test_prune_rollups_matches_window() -> None:
    by_minute = {m: rollup_of(("success", 1)) for m in range(0, 50)}
    expected = window_rollup(by_minute, now_minute=40, minutes=15)
    prune_rollups(by_minute, now_minute=40, keep_minutes=15)
    assert sorted(by_minute) == list(range(26, 50))  # future minutes stay
    assert window_rollup(by_minute, 40, 15) == expected


def test_prune_default_keeps_31_days() -> None:
    keep = 31 * 24 * 60
    by_minute = {0: new_rollup(), 1: new_rollup(), keep + 1: new_rollup()}
    prune_rollups(by_minute, now_minute=keep + 1)
    assert sorted(by_minute) == [keep + 1]
    by_minute = {1: new_rollup(), 2: new_rollup()}
    prune_rollups(by_minute, now_minute=keep + 1)
    assert sorted(by_minute) == [2]


def test_rollup_statuses_are_the_contracts_execution_statuses() -> None:
    assert STATUSES == contract.EXECUTION_STATUSES


def test_module_imports_without_django() -> None:
    # The daemon must run where Django is not installed: make "import django" fail.
    code = "import sys; sys.modules['django'] = None; import daemon.rollups"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
