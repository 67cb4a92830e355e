"""Roles: viewers read, operators act, admins do everything; enforced on every mutation."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from console.accounts.models import ApiToken
from console.clusters.models import Cluster
from console.core.roles import has_role, role_of, role_required, set_role
from console.events.models import Event
from tests.conftest import free_port

pytestmark = pytest.mark.django_db

OPERATION = {"id": "test-op", "name": "Test Operation", "handler": "noop"}


def user_with(role: str | None, name: str | None = None) -> object:
    user = get_user_model().objects.create_user(name or f"u-{role}", password="x" * 12)
    if role:
        set_role(user, role)
    return user


def token_client(user: object) -> Client:
    _, raw = ApiToken.issue(user, "test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def cluster() -> Cluster:
    # Nothing listens here: a request that gets past the role check is a 502, not a 403.
    return Cluster.objects.create(name="c1", seed_urls=[f"http://127.0.0.1:{free_port()}"])


def test_a_user_in_no_group_is_a_viewer_and_a_superuser_an_admin() -> None:
    assert role_of(user_with(None)) == "viewer"
    root = get_user_model().objects.create_superuser("root", password="x" * 12)
    assert role_of(root) == "admin"
    assert role_of(None) is None


def test_roles_are_ranked() -> None:
    operator = user_with("operator")
    assert has_role(operator, "viewer") and has_role(operator, "operator")
    assert not has_role(operator, "admin")
    with pytest.raises(ValueError, match="unknown role"):
        has_role(operator, "root")


def test_setting_a_role_replaces_the_previous_one() -> None:
    user = user_with("admin")
    set_role(user, "viewer")
    assert role_of(user) == "viewer"
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]


MUTATIONS = [
    ("post", "/api/clusters/c1/operations", OPERATION),
    ("post", "/api/clusters/c1/operations/test-op/execute", {}),
    ("delete", "/api/clusters/c1/operations/test-op", None),
]


@pytest.mark.parametrize(("method", "path", "body"), MUTATIONS)
def test_a_viewer_cannot_mutate_through_the_api(cluster, method, path, body) -> None:
    client = token_client(user_with("viewer"))
    response = getattr(client, method)(path, body, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["detail"] == "this needs the operator role"
    assert not Event.objects.filter(kind__startswith="operation.").exists()


@pytest.mark.parametrize("role", ["operator", "admin"])
@pytest.mark.parametrize(("method", "path", "body"), MUTATIONS)
def test_operators_and_admins_get_past_the_role_check(cluster, role, method, path, body) -> None:
    client = token_client(user_with(role))
    response = getattr(client, method)(path, body, content_type="application/json")
    assert response.status_code == 502  # the daemon is down, but the caller was allowed


def test_a_viewer_can_read(cluster) -> None:
    client = token_client(user_with("viewer"))
    assert client.get("/api/clusters").status_code == 200
    assert client.get("/api/clusters/c1/executions").status_code == 200
    assert client.get("/api/events").status_code == 200


def test_role_required_sends_anonymous_users_to_login_and_refuses_low_roles() -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied

    @role_required("operator")
    def act(request) -> HttpResponse:
        return HttpResponse("done")

    request = RequestFactory().post("/act/")
    request.user = AnonymousUser()
    assert act(request).status_code == 302
    request.user = user_with("viewer")
    with pytest.raises(PermissionDenied):
        act(request)
    request.user = user_with("operator")
    assert act(request).content == b"done"


def test_setrole_command_changes_a_role_and_journals_it(capsys) -> None:
    user = user_with(None, "carol")
    call_command("setrole", "carol", "operator")
    assert role_of(user) == "operator"
    assert "carol: viewer -> operator" in capsys.readouterr().out
    event = Event.objects.get(kind="user.role")
    assert event.payload == {"user": "carol", "before": "viewer", "after": "operator"}


def test_setrole_refuses_an_unknown_user_or_role() -> None:
    with pytest.raises(CommandError, match="no user named"):
        call_command("setrole", "nobody", "admin")
    user_with(None, "dave")
    with pytest.raises(CommandError):
        call_command("setrole", "dave", "root")


def test_role_groups_exist_after_migrations() -> None:
    names = set(Group.objects.values_list("name", flat=True))
    assert {"viewer", "operator", "admin"} <= names


def csrf_cookie(client: Client) -> str:
    """Give `client` a CSRF cookie, as any page with a form would, and return its value."""
    request = RequestFactory().get("/")
    get_token(request)
    client.cookies[settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]
    return request.META["CSRF_COOKIE"]


class TestCsrf:
    """Session-authenticated writes need the CSRF token; token-authenticated ones do not."""

    def test_a_session_post_without_the_csrf_token_is_refused(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(user_with("viewer"))
        response = client.post("/api/tokens", {"name": "x"}, content_type="application/json")
        assert response.status_code == 403
        assert not ApiToken.objects.exists()

    def test_a_session_post_with_the_csrf_token_is_accepted(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(user_with("viewer"))
        csrf = csrf_cookie(client)
        response = client.post(
            "/api/tokens",
            {"name": "x", "password": "x" * 12},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=csrf,
        )
        assert response.status_code == 201

    def test_a_session_read_needs_no_csrf_token(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(user_with("viewer"))
        assert client.get("/api/tokens").status_code == 200

    def test_a_bearer_token_post_needs_no_csrf_token(self) -> None:
        # Token-authenticated writes skip CSRF; minting a token, though, needs a session.
        user = user_with("viewer")
        _, raw = ApiToken.issue(user, "t")
        client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = client.post(
            "/api/tokens", {"name": "y", "password": "x" * 12}, content_type="application/json"
        )
        assert response.status_code == 403
        assert "session" in response.json()["detail"]
