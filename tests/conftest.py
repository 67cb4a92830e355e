"""Shared fixtures: free ports, polling with a deadline (the one `wait_for`, from the
product's node-process layer), and a real daphne serving the console against the test
database."""

import logging
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import override_settings

from console.core.embedded import embedded_defaults_env
from daemon.localcluster import ProcessHandle, free_port, wait_for

# Re-exported: tests import them from here.
__all__ = ["embedded_defaults_env", "free_port", "wait_for"]

REPO_ROOT = Path(__file__).resolve().parent.parent

# Every poll of a test cluster would otherwise land in a failing test's report.
logging.getLogger("httpx").setLevel(logging.WARNING)


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to now (the test database)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,  # test_test_gw0... per xdist worker
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # SQLite's default test database lives in memory, which a daphne subprocess cannot
    # share; a file can be.
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        test_db = tmp_path_factory.mktemp("db") / "test_console.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(test_db)


@pytest.fixture(scope="session", autouse=True)
def cache_of_this_run() -> Iterator[None]:
    """With REDIS_URL set, the console's cache is Redis, which keeps keys between runs
    and is shared by the xdist workers: each test process gets keys of its own (a
    sign-in throttled in one run must not lock the next one out)."""
    default = settings.CACHES["default"]
    if not default["BACKEND"].endswith("RedisCache"):
        yield
        return
    ours = {**default, "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}
    with override_settings(CACHES={**settings.CACHES, "default": ours}):
        yield


OTHER_SESSIONS_SQL = """
SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker) -> Iterator[None]:
    """pytest-django's, plus: before the test database is dropped, wait for the sessions
    of the console processes the tests started (daphne, collector, worker) to end.

    Those processes keep pooled connections, and PostgreSQL ends a backend a moment
    after its client exits, so DROP DATABASE could find one still there."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while True:
                cursor.execute(OTHER_SESSIONS_SQL)
                pids = [row[0] for row in cursor.fetchall()]
                if not pids or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            for pid in pids:  # left by a process that outlived its test: it is ours
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@dataclass(frozen=True)
class ConsoleServer:
    url: str
    port: int


@pytest.fixture(scope="session")
def console_server(
    django_db_setup: None, django_db_blocker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleServer]:
    """daphne serving the console on a free loopback port, on the test database.

    Tests using it need `transactional_db`, so what they write is committed and the
    server (another process) sees it.
    """
    from django.db import connection

    with django_db_blocker.unblock():
        connection.ensure_connection()
        url_of_test_db = database_url(connection.settings_dict)
    port = free_port()
    env = embedded_defaults_env(
        DATABASE_URL=url_of_test_db,
        SECRET_KEY=settings.SECRET_KEY,
        CONSOLE_VAR_DIR=str(tmp_path_factory.mktemp("console_var")),
        PYTHONUNBUFFERED="1",
        CONSOLE_IDLE_TIMEOUT_S="5",  # short, so the slow-client test need not wait long
    )
    argv = [sys.executable, "-m", "console.core.serve", "-b", "127.0.0.1", "-p", str(port)]
    server = ProcessHandle(
        "daphne",
        [*argv, "console.asgi:application"],
        tmp_path_factory.mktemp("logs") / "daphne.log",
        cwd=REPO_ROOT,
        env=env,
    )
    server.start()
    try:
        wait_for(lambda: port_answers(port) or not server.running(), 30, "daphne to listen")
        if not server.running():
            pytest.fail(f"daphne exited at start:\n{server.log_path.read_text()}")
        yield ConsoleServer(url=f"http://127.0.0.1:{port}", port=port)
    finally:
        server.stop(grace_s=10)


@pytest.fixture
def chromium_path() -> Path:
    from tests.browser.support import find_chromium

    return find_chromium()
