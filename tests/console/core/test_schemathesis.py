"""Fuzz the whole REST API from its own OpenAPI schema: no input may produce a 5xx.

Schemathesis generates valid and invalid requests for every operation and sends them to
the console in process (Django's WSGI handler, the same views daphne serves), with an
admin token so requests reach the handlers rather than stopping at 401/403.

Expected 5xx, and only these: endpoints that proxy to a daemon answer 502/503 when no
node answers. The registered cluster points at a closed port, so they do here. Any
other 5xx (a crash in our code, a database error) fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from console.accounts.models import ApiToken
from console.clusters.models import Cluster, Execution
from console.events import journal
from tests.conftest import free_port

pytestmark = pytest.mark.django_db

EXAMPLES_PER_RUN = 15
DAEMON_BACKED = "/operations"  # paths that call a daemon: 502/503 when none answers
DAEMON_DOWN = (502, 503)
# Not fuzzed: each call builds a wheel of the checkout (seconds each); its input handling
# is tested in tests/console/releases.
NOT_FUZZED = {"POST /api/releases/build"}


@pytest.fixture
def wsgi_app() -> Iterator[object]:
    """Django's WSGI app, sharing the test's database connection (and its transaction).

    Like Django's test client, stop each request from closing the connection at its end.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def scratch_releases(settings, tmp_path) -> None:
    """Uploads and verifications the fuzzer triggers land in the test's own folders."""
    settings.RELEASES_DIR = tmp_path / "releases"


@pytest.fixture
def world() -> str:
    """Rows for the fuzzer to land on; returns an admin's username."""
    user = get_user_model().objects.create_superuser("fuzz", password="x" * 12)
    cluster = Cluster.objects.create(name="c1", seed_urls=[f"http://127.0.0.1:{free_port()}"])
    now = datetime.now(UTC)
    Execution.objects.create(
        cluster=cluster,
        seq=1,
        execution_id="e1",
        operation_id="op",
        status="success",
        duration_ms=1.0,
        node_name="n0",
        started_at=now,
        finished_at=now,
    )
    journal.append("leader.changed", actor="collector", cluster=cluster, to="n0")
    return user.username


def server_errors(operation, user: object, **fixed: object) -> list[str]:
    """Run one operation's generated cases, valid and invalid; a line per disallowed 5xx."""
    found: list[str] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        try:
            strategy = operation.as_strategy(generation_mode=mode, **fixed)
        except Exception as err:  # some operations have no invalid input to generate
            if mode is GenerationMode.NEGATIVE:
                continue
            raise AssertionError(f"{operation.path}: cannot generate cases: {err}") from err
        try:
            found += _fuzz(operation, strategy, mode, user)
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            # Nothing invalid can be sent to it (no parameters, no body): nothing to try.
    return found


def _fuzz(operation, strategy, mode: GenerationMode, user: object) -> list[str]:
    found: list[str] = []
    method_path = f"{operation.method.upper()} {operation.path}"
    allowed = DAEMON_DOWN if DAEMON_BACKED in operation.path else ()

    @settings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        database=None,  # no .hypothesis/ directory in the repo
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case) -> None:
        # A fresh token each time: the fuzzer may well revoke the previous one.
        _, raw = ApiToken.issue(user, "fuzz")
        response = case.call(headers={"Authorization": f"Bearer {raw}"})
        if response.status_code >= 500 and response.status_code not in allowed:
            found.append(
                f"{method_path} [{mode}] -> {response.status_code}: "
                f"path={case.path_parameters} query={case.query} body={case.body!r:.200}"
            )

    fuzz()
    return found


def test_fuzzing_the_openapi_schema_finds_no_server_error(world: str, wsgi_app: object) -> None:
    user = get_user_model().objects.get(username=world)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:
        if f"{operation.method.upper()} {operation.path}" in NOT_FUZZED:
            continue
        failures += server_errors(operation, user)
        if "{name}" in operation.path:
            # Random names are almost all unknown (404): also aim at the real cluster.
            failures += server_errors(operation, user, path_parameters={"name": "c1"})
    assert not failures, "\n".join(failures[:30])
