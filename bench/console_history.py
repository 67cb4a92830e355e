"""History API: GET /api/clusters/{name}/executions?limit=50 over N Execution rows in
PostgreSQL, through a real daphne with a `manage.py createtoken` bearer token.

Rows are generated as bench/console_history_data.py says (seq 1..N, operation
`op-<seq % 20>`, status `failure` every 50th else `success`, node `unrdf-daemon-<seq % 3>`,
finished at T0 + seq s). Each case is requested sequentially on one kept-alive
connection. Baselines from the same run: the same query through the ORM in this process
(the database's share), the same request through Django's test Client in this process
(Django + ninja + auth, no daphne, no network), `/api/clusters/<name>` (the cheapest
API call) and `/accounts/login/` (no database) through daphne.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
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
    database_exists,
    manage,
    recreate_database,
    setup_django,
)
from bench.console_history_data import finished_at, holds_rows, load_rows

WARMUP = 10
OP_ODD, OP_FAILING = "op-7", "op-10"  # op-10's rows include failures (seq % 100 == 50)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def cases(rows: int) -> list[tuple[str, dict[str, Any]]]:
    """(label, query parameters): every combination of the page's filters (operation,
    status, node; then time ranges), each on the first page and two deep pages, and the
    combinations that match no row (the worst case for an index that does not cover them)."""
    middle, oldest = rows // 2, max(100, rows // 100)
    node, failure = {"node": "unrdf-daemon-1"}, {"status": "failure"}
    filters: list[tuple[str, dict[str, Any]]] = [
        ("none", {}),
        ("operation", {"operation": OP_ODD}),
        ("status", failure),
        ("node", node),
        ("status+node", {**failure, **node}),
        ("operation+status", {"operation": OP_FAILING, **failure}),
        ("operation+node", {"operation": OP_ODD, **node}),
        ("operation+status+node", {"operation": OP_FAILING, **failure, **node}),
    ]
    out = []
    for label, params in filters:
        out.append((f"{label} first", params))
        out.append((f"{label} deep {middle}", {**params, "before_seq": middle}))
        out.append((f"{label} deep {oldest}", {**params, "before_seq": oldest}))
    # op-7 is odd, failures are multiples of 50: no row matches, the worst case.
    out.append(("operation+status (no match)", {"operation": OP_ODD, **failure}))
    out.append(("operation+status+node (no match)", {"operation": OP_ODD, **failure, **node}))
    out.append(("status (no match)", {"status": "timeout"}))
    last_hour = {"since": iso(finished_at(rows - 3600))}
    window = {"since": iso(finished_at(middle)), "until": iso(finished_at(middle + 3600))}
    until_old = {"until": iso(finished_at(oldest))}
    out += [
        ("since last hour", last_hour),
        ("since last hour +operation+node", {**last_hour, "operation": OP_ODD, **node}),
        ("window 1h middle", window),
        ("window 1h middle deep", {**window, "before_seq": middle + 1800}),
        ("window 1h middle +status", {**window, **failure}),
        ("until oldest", until_old),
        ("until oldest +status", {**until_old, **failure}),
    ]
    return out


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


def prepare(rows: int, reuse: bool) -> dict[str, Any]:
    """The database with `rows` rows: kept from an earlier run when `reuse` and it holds
    exactly those rows (migrated first: a new migration's time on the big table is
    reported), else re-created and generated."""
    if reuse and database_exists():
        started = time.monotonic()
        manage("migrate", "--noinput", timeout=3600)
        migrate_s = round(time.monotonic() - started, 1)
        setup_django()
        from console.clusters.models import Cluster

        cluster = Cluster.objects.filter(name=CLUSTER_NAME).first()
        if cluster is not None and holds_rows(cluster.id, rows):
            create_user_and_session()
            return {"reused": True, "migrateS": migrate_s}
        close_django_connections()
    recreate_database()
    setup_django()
    create_user_and_session()
    return {"reused": False, "load": load_rows(create_cluster_row([]), rows)}


def history(
    rows: int,
    count: int,
    db_modes: list[str],
    quiet: Callable[[], dict[str, Any]],
    logs: Path,
    reuse: bool = False,
) -> dict[str, Any]:
    prepared = prepare(rows, reuse)
    print(f"  database: {prepared}")
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
    return {"rows": rows, "database": prepared, "requestsPerCase": count, "runs": runs}
