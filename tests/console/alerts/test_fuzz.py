"""Fuzzing /api/alerts from its OpenAPI schema never gets a 5xx, as an operator."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.core import NotSet

from console.accounts.models import ApiToken
from tests.console.alerts.support import make_alert, make_cluster, make_user


@pytest.fixture
def operator_token(db: None) -> str:
    _, raw = ApiToken.issue(make_user("fuzzer", "operator"), "fuzz")
    return raw


@pytest.fixture
def open_alert_id(db: None) -> int:
    cluster = make_cluster()
    make_alert(cluster, state="resolved", rule="disk_usage")
    return make_alert(cluster).pk


def test_alert_endpoints_never_answer_5xx(operator_token: str, open_alert_id: int) -> None:
    # Schemathesis's pytest integration does not run under pytest 9; its strategies do.
    document = Client().get("/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document).include(path_regex="^/api/alerts")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 4

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_without_5xx(case: Case) -> None:
            if case.method == "POST":  # reach the checks behind "no such alert"
                case.path_parameters["alert_id"] = open_alert_id
            query = f"?{urlencode(case.query, doseq=True)}" if case.query else ""
            body = "" if isinstance(case.body, NotSet) else json.dumps(case.body)
            # Django's test client, not WSGI: the WSGI handler would close the
            # connection that holds the test's transaction.
            response = Client().generic(
                case.method,
                case.formatted_path + query,
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {operator_token}"},
            )
            assert response.status_code < 500, f"{case.method} {case.formatted_path}{query} {body}"

        answers_without_5xx()
