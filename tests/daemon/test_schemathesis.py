"""Fuzz the daemon's HTTP API from docs/daemon-openapi.yaml: no input may produce a 5xx.

Schemathesis generates valid and invalid requests for every described route and sends
them to a real node (one process on loopback) with an admin token, so requests reach
the handlers. Routes that would stop the node or wait on made-up members are described
but not fuzzed. A second test keeps the description and the served routes in step.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.cluster_harness import ADMIN_TOKEN, ROOT, Cluster

pytestmark = pytest.mark.cluster

SCHEMA = ROOT / "docs" / "daemon-openapi.yaml"
EXAMPLES_PER_RUN = 15
NOT_FUZZED = {
    ("POST", "/shutdown"),  # stops the node under test
    ("POST", "/admin/drain"),  # every later execute would be a (correct) 503
    ("POST", "/admin/members"),  # each made-up member is probed for 15 s
    ("POST", "/admin/backup"),  # a whole-state stream per example: slow, not input-driven
}


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = Cluster(tmp_path_factory.mktemp("fuzz"), size=1)
    try:
        cluster.start()
        yield cluster.nodes[0].url
    finally:
        cluster.stop_all()


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every Route in daemon/api.py, path in OpenAPI's {param} form."""
    source = (ROOT / "daemon" / "api.py").read_text()
    routes = set()
    for path, methods in re.findall(
        r'Route\("([^"]+)",\s*\w+(?:\([^)]*\))?(?:,\s*methods=\[([^\]]*)\])?\)', source
    ):
        for method in re.findall(r'"(\w+)"', methods) or ["GET"]:
            routes.add((method, path))
    return routes


def test_the_openapi_description_matches_the_served_routes() -> None:
    schema = schemathesis.openapi.from_path(str(SCHEMA))
    described = {
        (op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())
    }
    assert served_routes() == described


def _fuzz(operation, mode: GenerationMode, base_url: str) -> list[str]:
    found: list[str] = []
    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except Exception:  # nothing invalid to generate for it
        return found

    @settings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case) -> None:
        response = case.call(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        if response.status_code >= 500:
            found.append(
                f"{operation.method.upper()} {operation.path} [{mode}] -> "
                f"{response.status_code} {response.text[:120]}: path={case.path_parameters} "
                f"query={case.query} body={case.body!r:.200}"
            )

    with contextlib.suppress(Unsatisfiable):  # nothing (more) can be generated for it
        fuzz()
    return found


def test_fuzzing_the_daemon_api_finds_no_server_error(node_url: str) -> None:
    schema = schemathesis.openapi.from_path(str(SCHEMA))
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        if (operation.method.upper(), operation.path) in NOT_FUZZED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _fuzz(operation, mode, node_url)
    assert not failures, "\n".join(failures[:30])
