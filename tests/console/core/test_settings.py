"""Settings from the environment: production refuses to start half-configured."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, embedded_defaults_env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, "SECRET_KEY and DATABASE_URL and ALLOWED_HOSTS"),
        ({"SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "console.example"}, "DATABASE_URL"),
        ({"SECRET_KEY": "x" * 50, "DATABASE_URL": "sqlite:////tmp/x.db"}, "ALLOWED_HOSTS"),
    ],
)
def test_production_without_a_required_setting_fails_with_one_line(
    given: dict[str, str], missing: str
) -> None:
    result = manage(embedded_defaults_env(CONSOLE_ENV="production", **given), "check")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"console: configuration error: CONSOLE_ENV=production requires {missing} to be set"
    ]


def test_production_starts_when_everything_is_set(tmp_path: Path) -> None:
    env = embedded_defaults_env(
        CONSOLE_ENV="production",
        SECRET_KEY="a-production-secret-key-that-is-long-enough-to-pass-checks",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ALLOWED_HOSTS="console.example",
    )
    result = manage(env, "check")
    assert result.returncode == 0, result.stderr


def test_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text("from-a-file\n")
    env = embedded_defaults_env(SECRET_KEY_FILE=str(key_file), CONSOLE_VAR_DIR=str(tmp_path))
    result = manage(
        env,
        "shell",
        "-v",
        "0",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
    )
    assert result.stdout.strip() == "from-a-file"


def test_a_malformed_boolean_is_a_one_line_error(tmp_path: Path) -> None:
    result = manage(embedded_defaults_env(DEBUG="maybe", CONSOLE_VAR_DIR=str(tmp_path)), "check")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "console: configuration error: DEBUG='maybe' is not a boolean "
        "(use 1/0, true/false, yes/no, on/off)"
    ]


def test_a_fresh_checkout_uses_sqlite_under_the_var_dir(tmp_path: Path) -> None:
    code = "from django.conf import settings; print(settings.DATABASES['default']['NAME'])"
    result = manage(
        embedded_defaults_env(CONSOLE_VAR_DIR=str(tmp_path)), "shell", "-v", "0", "-c", code
    )
    assert result.stdout.strip() == str(tmp_path / "console.sqlite3")
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_the_suite_runs_on_the_database_the_environment_names() -> None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postg") else "sqlite3"
    assert engine == f"django_prometheus.db.backends.{expected}"


BACKEND_PIDS = """
import threading
from django.db import connection
pids = []
def one_request():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    connection.close()
for _ in range(6):
    thread = threading.Thread(target=one_request)
    thread.start()
    thread.join()
print(len(set(pids)))
"""


@pytest.mark.parametrize(
    ("given", "backends"),
    [({}, "reused"), ({"DB_POOL_SIZE": "0"}, "one each"), ({"DB_CONN_MAX_AGE": "60"}, "one each")],
)
def test_postgres_connections_are_pooled_across_request_threads(
    given: dict[str, str], backends: str
) -> None:
    """daphne runs each request in a fresh thread: without the pool, each one connected
    (a PostgreSQL backend fork) anew, whatever CONN_MAX_AGE said."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postg"):
        pytest.skip("needs DATABASE_URL naming PostgreSQL")
    env = embedded_defaults_env(DATABASE_URL=url, **given)
    result = manage(env, "shell", "-v", "0", "-c", BACKEND_PIDS)
    assert result.returncode == 0, result.stderr
    distinct = int(result.stdout.strip())
    # The pool may grow by one while the first connection is still being made.
    assert distinct <= 2 if backends == "reused" else distinct == 6


UNREACHABLE_DATABASE_REQUESTS = """
from django.test import Client
client = Client(raise_request_exception=False)
client.cookies["sessionid"] = "a-session-the-database-would-have-to-look-up"
for path, headers in [
    ("/api/clusters", {"HTTP_AUTHORIZATION": "Bearer rop_anything"}),
    ("/api/health", {}),
    ("/alerts/", {}),
]:
    response = client.get(path, **headers)
    print(path, response.status_code, response.get("Retry-After"), response.content[:80])
"""


def test_an_unreachable_database_is_a_503_with_retry_after_not_a_500() -> None:
    # A PostgreSQL URL on a port nothing listens on: the server is down.
    from tests.conftest import free_port

    env = embedded_defaults_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/console",
        DEBUG="0",
        SECRET_KEY="a-test-secret-key-that-is-long-enough-for-checks",
        ALLOWED_HOSTS="testserver",
        DB_POOL_TIMEOUT="1",
        LOG_LEVEL="CRITICAL",
    )
    result = manage(env, "shell", "-v", "0", "-c", UNREACHABLE_DATABASE_REQUESTS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    api, health, page = lines
    assert api.startswith("/api/clusters 503 5 ") and "database is unavailable" in api
    assert health.startswith("/api/health 503 ")  # its own body: {"status": "unavailable"}
    assert page.startswith("/alerts/ 503 5 ") and "database is unavailable" in page
