"""History API: GET /api/clusters/{name}/executions?limit=50 over N Execution rows in
PostgreSQL, through a real daphne with a `manage.py createtoken` bearer token.

Rows are generated in one INSERT ... SELECT generate_series (then ANALYZE): seq 1..N,
operation `op-<seq % 20>`, status `failure` every 50th else `success`, node
`unrdf-daemon-<seq % 3>`. Each case is requested sequentially on one kept-alive
connection. Baselines from the same run: the same query through the ORM in this process
(the database's share), the same request through Django's test Client in this process
(Django + ninja + auth, no daphne, no network), `/api/clusters/<name>` (the cheapest
API call) and `/accounts/login/` (no database) through daphne.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import CpuMeter, summarize
from bench.console_common import (
    BENCH_USER,
    CLUSTER_NAME,
    DB_MODES,
    close_django_connections,
    console_env,
    create_cluster_row,
    create_user_and_session,
    daphne,
    manage,
    recreate_database,
    setup_django,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WARMUP = 10
INSERT_SQL = """
INSERT INTO clusters_execution (cluster_id, seq, execution_id, operation_id, status,
    duration_ms, node_name, started_at, finished_at, attempts, cached, error)
SELECT %s, s, 'x' || s, 'op-' || (s %% 20),
       CASE WHEN s %% 50 = 0 THEN 'failure' ELSE 'success' END, 1.0,
       'unrdf-daemon-' || (s %% 3), %s + s * interval '1 second',
       %s + s * interval '1 second', 1, false, ''
FROM generate_series(1, %s) AS s
"""


def cases(rows: int) -> list[tuple[str, dict[str, Any]]]:
    """(label, query parameters): no filter and each filter, first page and deep pages."""
    middle, oldest = rows // 2, max(100, rows // 100)
    filters: list[tuple[str, dict[str, Any]]] = [
        ("none", {}),
        ("operation", {"operation": "op-7"}),
        ("status", {"status": "failure"}),
        ("node", {"node": "unrdf-daemon-1"}),
        ("status+node", {"status": "failure", "node": "unrdf-daemon-1"}),
    ]
    out = []
    for label, params in filters:
        out.append((f"{label} first", params))
        out.append((f"{label} deep {middle}", {**params, "before_seq": middle}))
        out.append((f"{label} deep {oldest}", {**params, "before_seq": oldest}))
    # op-7 is odd, failures are multiples of 50: no row matches, the worst case.
    out.append(("operation+status (no match)", {"operation": "op-7", "status": "failure"}))
    return out


def load_rows(cluster_id: int, rows: int) -> float:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [cluster_id, T0, T0, rows])
        cursor.execute("ANALYZE clusters_execution")
    return round(time.monotonic() - started, 1)


def orm_timings(params: dict[str, Any], count: int) -> list[float]:
    from console.clusters.models import Cluster
    from console.dashboard.api import ExecutionFilters, executions_page

    cluster = Cluster.objects.get(name=CLUSTER_NAME)
    filters = ExecutionFilters(limit=50, **params)
    timings = []
    for n in range(WARMUP + count):
        started = time.perf_counter()
        cluster = Cluster.objects.get(name=CLUSTER_NAME)  # the view looks it up too
        executions_page(cluster, filters)
        if n >= WARMUP:
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def client_timings(token: str, params: dict[str, Any], count: int) -> list[float]:
    """The same request through Django's test Client in this process: the whole Django
    stack (middleware, ninja, token auth, ORM, JSON) without daphne and the network."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME="127.0.0.1")
    path = f"/api/clusters/{CLUSTER_NAME}/executions"
    timings = []
    for n in range(WARMUP + count):
        started = time.perf_counter()
        response = client.get(path, {"limit": 50, **params})
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code} {response.content[:200]!r}")
        if n >= WARMUP:
            timings.append(elapsed)
    return timings


def http_timings(client: httpx.Client, path: str, params: dict, count: int) -> tuple[list, int]:
    timings, items = [], 0
    for n in range(WARMUP + count):
        started = time.perf_counter()
        response = client.get(path, params=params)
        elapsed = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        items = len(response.json().get("items", [])) if "items" in response.text[:20] else 0
        if n >= WARMUP:
            timings.append(elapsed)
    return timings, items


def measure_http(client: httpx.Client, rows: int, count: int) -> dict[str, list[float]]:
    path = f"/api/clusters/{CLUSTER_NAME}/executions"
    timings = {}
    for label, params in cases(rows):
        timings[label], items = http_timings(client, path, {"limit": 50, **params}, count)
        print(f"  {label:32s} items={items:3d} http p95={summarize(timings[label], 1)['p95']} ms")
    return timings


def serve_and_measure(
    token: str, rows: int, count: int, db_mode: str, quiet: Callable, logs: Path
) -> dict[str, Any]:
    """One daphne (database connections as `db_mode` says): the HTTP floor, then every case."""
    env = console_env(False, **DB_MODES[db_mode])
    with daphne(env, logs) as (server, url):
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            http_timings(client, f"/api/clusters/{CLUSTER_NAME}", {}, WARMUP)
            load = quiet()
            floor, _ = http_timings(client, f"/api/clusters/{CLUSTER_NAME}", {}, count)
            # No database, no auth: what daphne + Django cost for any request.
            login_page, _ = http_timings(client, "/accounts/login/", {}, count)
            meter = CpuMeter({"daphne": server.pid})
            meter.start()
            timings = measure_http(client, rows, count)
            cpu = meter.stop()
    return {
        **load,
        "dbMode": db_mode,
        "httpFloorMs": {"path": f"/api/clusters/{CLUSTER_NAME}", **summarize(floor, 1)},
        "httpNoDbMs": {"path": "/accounts/login/", **summarize(login_page, 1)},
        "daphneCpuPct": cpu["daphne"],
        "timings": timings,
    }


def combine(rows: int, orm: dict, in_process: dict, run: dict[str, Any]) -> dict[str, Any]:
    results = []
    for label, query in cases(rows):
        http_p95 = summarize(run["timings"][label], 1)["p95"]
        orm_p95 = summarize(orm[label], 1)["p95"]
        results.append(
            {
                "case": label,
                "query": query,
                "httpMs": summarize(run["timings"][label], 1),
                "djangoClientMs": summarize(in_process[label], 1),
                "ormMs": summarize(orm[label], 1),
                "httpOverOrmP95": round(http_p95 / orm_p95, 2) if orm_p95 else None,
            }
        )
    summary = {k: v for k, v in run.items() if k != "timings"}
    worst = max(r["httpMs"]["p95"] for r in results)
    return {**summary, "cases": results, "worstHttpP95Ms": worst}


def history(
    rows: int, count: int, db_modes: list[str], quiet: Callable[[], dict[str, Any]], logs: Path
) -> dict[str, Any]:
    recreate_database()
    setup_django()
    create_user_and_session()
    cluster_id = create_cluster_row([])
    load_s = load_rows(cluster_id, rows)
    token = manage("createtoken", BENCH_USER, "bench").splitlines()[-1]
    quiet()
    orm = {label: orm_timings(params, count) for label, params in cases(rows)}
    in_process = {label: client_timings(token, params, count) for label, params in cases(rows)}
    close_django_connections()
    runs = [
        combine(rows, orm, in_process, serve_and_measure(token, rows, count, mode, quiet, logs))
        for mode in db_modes
    ]
    baseline = runs[0]
    for run in runs[1:]:
        # Each case's p95 in this mode over the first mode's, same run, same data.
        run["p95OverBaseline"] = {
            "baseline": baseline["dbMode"],
            "worst": round(run["worstHttpP95Ms"] / baseline["worstHttpP95Ms"], 2),
            "cases": {
                case["case"]: round(case["httpMs"]["p95"] / base["httpMs"]["p95"], 2)
                for case, base in zip(run["cases"], baseline["cases"], strict=True)
            },
        }
    return {"rows": rows, "loadRowsS": load_s, "requestsPerCase": count, "runs": runs}
