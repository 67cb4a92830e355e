"""Shared bits for the console benchmarks: a scratch PostgreSQL database, Django in
this process (for fixtures only), and daphne / collector processes on loopback.

Machine facts, load, CPU meters, statistics and result files come from bench/common.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, save_result
from console.core.embedded import embedded_defaults_env
from daemon.localcluster import ProcessHandle, free_port, wait_for

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_NAME = "bench_console"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
DB_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
# A Redis database of our own: other suites' wake-ups must not reach our consumers.
REDIS_URL = "redis://127.0.0.1:6379/11"
SECRET_KEY = "bench-console-secret-" + "k" * 40
# The console only reads a cluster's token from a DAEMON_…TOKEN… variable
# (clusters.models.TOKEN_ENV_PATTERN); any other name leaves the collector without one.
TOKEN_ENV = "DAEMON_BENCH_CONSOLE_TOKEN"
CLUSTER_NAME = "bench"
BENCH_USER = "bench"
VAR_DIR = Path(tempfile.gettempdir()) / "bench-console-var"
# How daphne holds its PostgreSQL connections (console/settings.py): the shipped psycopg
# pool, Django's connection per request (what the console did before the pool), and
# Django's persistent per-thread connections.
DB_MODES: dict[str, dict[str, str]] = {
    "pool": {},
    "per-request": {"DB_POOL_SIZE": "0", "DB_CONN_MAX_AGE": "0"},
    "max-age-60": {"DB_POOL_SIZE": "0", "DB_CONN_MAX_AGE": "60"},
}


# ---- environment -------------------------------------------------------------
def console_env(redis: bool, **extra: str) -> dict[str, str]:
    """Environment of every console process of a run (this one, daphne, collector, appender).

    DEBUG off (as in production, no query log), static files still served by daphne.
    """
    env = embedded_defaults_env(
        DATABASE_URL=DATABASE_URL,
        SECRET_KEY=SECRET_KEY,
        DEBUG="0",
        CONSOLE_SERVE_STATIC="1",
        CONSOLE_VAR_DIR=str(VAR_DIR),
        CONSOLE_LOCAL_CLUSTER="0",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="console.settings",
        LOG_LEVEL="WARNING",
    )
    if redis:
        env["REDIS_URL"] = REDIS_URL
    env.update(extra)
    return env


def setup_django() -> None:
    """Django in this process, on the scratch database (fixtures, ORM baselines)."""
    import django
    from django.apps import apps

    if apps.ready:
        return
    os.environ.update(console_env(redis=False))
    os.environ.pop("REDIS_URL", None)
    django.setup()


def close_django_connections() -> None:
    """Before the database is dropped, or Playwright starts (its loop upsets the ORM)."""
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


# ---- the scratch database ----------------------------------------------------
def use_database(name: str) -> None:
    """Run against another scratch database than `bench_console` (e.g. one kept between
    runs because its 10M rows take minutes to generate). Call before setup_django()."""
    global DB_NAME, DATABASE_URL
    if not re.match(DB_NAME_PATTERN, name) or name in ("postgres", "test", "test_test"):
        raise ValueError(f"not a scratch database name: {name!r}")
    DB_NAME = name
    DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"


def database_exists() -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
        return found.fetchone() is not None


def recreate_database() -> None:
    """Drop and create the scratch database (`bench_console`), then migrate it (each measurement starts clean)."""
    import psycopg

    close_django_connections()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    manage("migrate", "--noinput")


def manage(*args: str, redis: bool = False, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=console_env(redis),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def create_user_and_session() -> str:
    """A viewer with a live session; returns the sessionid (needs setup_django())."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user = get_user_model().objects.filter(username=BENCH_USER).first()
    if user is None:  # a kept database already has it
        user = get_user_model().objects.create_user(BENCH_USER, password=secrets.token_hex(12))
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def create_cluster_row(seed_urls: list[str]) -> int:
    from console.clusters.models import Cluster, token_env_validator

    # A token variable the console would not read must stop the run, not measure a
    # collector that cannot authenticate (the console's own forms refuse it too).
    token_env_validator(TOKEN_ENV)
    return Cluster.objects.create(name=CLUSTER_NAME, seed_urls=seed_urls, token_env=TOKEN_ENV).id


# ---- processes ---------------------------------------------------------------
@dataclass
class Proc:
    name: str
    handle: ProcessHandle

    @property
    def pid(self) -> int:
        assert self.handle.popen is not None
        return self.handle.popen.pid

    @property
    def log_path(self) -> Path:
        return self.handle.log_path

    def exited(self) -> bool:
        return not self.handle.running()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def start_process(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Proc:
    handle = ProcessHandle(name, argv, logs / f"{name}.log", cwd=ROOT, env=env)
    handle.start()
    return Proc(name, handle)


def stop_process(proc: Proc, timeout: float = 15) -> None:
    """SIGTERM it and its process group (only ours: its own session), SIGKILL if needed."""
    proc.handle.stop(grace_s=timeout)


@contextlib.contextmanager
def daphne(env: dict[str, str], logs: Path) -> Iterator[tuple[Proc, str]]:
    """daphne serving the console on a free loopback port; yields (process, base URL)."""
    port = free_port()
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    proc = start_process("daphne", [*argv, "console.asgi:application"], env, logs)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: (
                proc.exited() or httpx.get(f"{url}/accounts/login/", timeout=2).status_code == 200
            ),
            timeout=30,
            what="daphne to answer",
        )
        if proc.exited():
            raise RuntimeError(f"daphne exited at start:\n{proc.log_tail()}")
        yield proc, url
    finally:
        stop_process(proc)


@contextlib.contextmanager
def collector(env: dict[str, str], logs: Path, *extra: str) -> Iterator[Proc]:
    """`manage.py collect --no-local --cluster bench` (default interval unless given)."""
    argv = [sys.executable, "manage.py", "collect", "--no-local", "--cluster", CLUSTER_NAME]
    proc = start_process("collector", [*argv, *extra], env, logs)
    try:
        yield proc
    finally:
        stop_process(proc)


# ---- load and results --------------------------------------------------------
def save(name: str, data: dict[str, Any]) -> Path:
    """bench/common.save_result with this script's own command line."""
    command = " ".join([".venv/bin/python", "-m", "bench.console_bench", *sys.argv[1:]])
    return save_result(f"console-{name}", {**data, "command": command})
