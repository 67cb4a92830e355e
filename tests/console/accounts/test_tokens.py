"""Personal API tokens: shown once, hashed at rest, revocable, journaled; the tokens page."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client

from console.accounts.models import ApiToken
from console.events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> object:
    return get_user_model().objects.create_user("alice", password="correct horse battery")


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_a_created_token_is_shown_once_and_then_authenticates(client: Client, alice) -> None:
    client.force_login(alice)
    created = client.post(
        "/api/tokens",
        {"name": "ci", "password": "correct horse battery"},
        content_type="application/json",
    )
    assert created.status_code == 201
    raw = created.json()["token"]
    assert raw.startswith("rop_")
    listed = client.get("/api/tokens").json()
    assert [t["name"] for t in listed] == ["ci"]
    assert raw not in str(listed)
    assert Client().get("/api/me", **bearer(raw)).json() == {"username": "alice", "role": "viewer"}


def test_the_raw_token_is_not_stored_anywhere_in_the_database(alice) -> None:
    token, raw = ApiToken.issue(alice, "laptop")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        rows = cursor.fetchall()
    assert rows
    assert raw not in repr(rows)
    assert token.token_hash != raw


def test_a_revoked_token_is_refused(alice) -> None:
    client = Client()
    client.force_login(alice)
    raw = client.post(
        "/api/tokens",
        {"name": "x", "password": "correct horse battery"},
        content_type="application/json",
    ).json()
    assert Client().get("/api/clusters", **bearer(raw["token"])).status_code == 200
    assert client.delete(f"/api/tokens/{raw['id']}").json()["revoked_at"]
    assert Client().get("/api/clusters", **bearer(raw["token"])).status_code == 401


def test_a_wrong_token_or_no_credentials_is_a_401(client: Client) -> None:
    assert client.get("/api/clusters", **bearer("rop_nope")).status_code == 401
    assert client.get("/api/clusters").status_code == 401
    assert (
        client.post("/api/tokens", {"name": "x"}, content_type="application/json").status_code
        == 401
    )


def test_using_a_token_records_when_it_was_last_used(alice) -> None:
    token, raw = ApiToken.issue(alice, "grafana")
    assert token.last_used_at is None
    Client().get("/api/clusters", **bearer(raw))
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_nobody_can_revoke_someone_elses_token(client: Client, alice) -> None:
    bob = get_user_model().objects.create_user("bob", password="x" * 12)
    token, raw = ApiToken.issue(alice, "mine")
    client.force_login(bob)
    assert client.delete(f"/api/tokens/{token.id}").status_code == 404
    assert Client().get("/api/clusters", **bearer(raw)).status_code == 200


def test_creating_and_revoking_are_journaled_with_the_actor(client: Client, alice) -> None:
    client.force_login(alice)
    token = client.post(
        "/api/tokens",
        {"name": "ci", "password": "correct horse battery"},
        content_type="application/json",
    ).json()
    client.delete(f"/api/tokens/{token['id']}")
    events = list(Event.objects.filter(kind__startswith="token.").order_by("id"))
    assert [(e.kind, e.actor, e.payload["token_id"]) for e in events] == [
        ("token.created", "alice", token["id"]),
        ("token.revoked", "alice", token["id"]),
    ]


def test_a_token_needs_a_name(client: Client, alice) -> None:
    client.force_login(alice)
    response = client.post(
        "/api/tokens",
        {"name": "", "password": "correct horse battery"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "name" in response.json()["error"]
    blank = client.post(
        "/api/tokens",
        {"name": "   ", "password": "correct horse battery"},
        content_type="application/json",
    )
    assert blank.status_code == 400
    assert "name" in blank.json()["detail"]


def test_the_tokens_page_needs_a_login(client: Client) -> None:
    response = client.get("/accounts/tokens/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_tokens_page_shows_a_new_token_once_then_only_its_hint(client: Client, alice) -> None:
    client.force_login(alice)
    created = client.post(
        "/accounts/tokens/", {"name": "my laptop", "password": "correct horse battery"}
    )
    assert created.status_code == 200
    raw = created.context["raw_token"]
    assert raw.encode() in created.content
    assert b"shown only this once" in created.content
    again = client.get("/accounts/tokens/")
    assert b"my laptop" in again.content
    assert raw.encode() not in again.content
    assert raw[:10].encode() in again.content


def test_the_tokens_page_revokes_a_token(client: Client, alice) -> None:
    token, raw = ApiToken.issue(alice, "old")
    client.force_login(alice)
    response = client.post(f"/accounts/tokens/{token.id}/revoke/", follow=True)
    assert b"revoked" in response.content
    assert Client().get("/api/clusters", **bearer(raw)).status_code == 401


def test_the_tokens_page_form_is_protected_by_csrf(alice) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/accounts/tokens/", {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_createtoken_prints_a_working_token(alice, capsys) -> None:
    call_command("createtoken", "alice", "script")
    raw = capsys.readouterr().out.strip()
    response = Client().get("/api/me", **bearer(raw))
    assert response.json()["username"] == "alice"
    assert Event.objects.get(kind="token.created").actor == "system"


# ---- issue 14, point 8: a token cannot outlive its revocation ------------------------


def test_a_token_cannot_mint_a_successor(alice) -> None:
    _, parent = ApiToken.issue(alice, "parent")
    minted = Client().post(
        "/api/tokens",
        {"name": "child", "password": "correct horse battery"},
        content_type="application/json",
        **bearer(parent),
    )
    assert minted.status_code == 403
    assert ApiToken.objects.filter(name="child").count() == 0


def test_creating_a_token_needs_the_password_again(client: Client, alice) -> None:
    client.force_login(alice)
    for password in ("", "wrong"):
        body = {"name": "ci", "password": password}
        response = client.post("/api/tokens", body, content_type="application/json")
        assert response.status_code == 403
    page = client.post("/accounts/tokens/", {"name": "laptop"})
    assert page.status_code == 400
    assert b"password" in page.content
    assert not ApiToken.objects.exists()


def test_an_expired_token_is_refused(client: Client, alice) -> None:
    from datetime import timedelta

    from django.utils import timezone

    client.force_login(alice)
    body = {"name": "short", "password": "correct horse battery", "expires_in_days": 1}
    created = client.post("/api/tokens", body, content_type="application/json").json()
    assert created["expires_at"]
    assert Client().get("/api/me", **bearer(created["token"])).status_code == 200
    ApiToken.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(1))
    assert Client().get("/api/me", **bearer(created["token"])).status_code == 401


def test_changing_the_password_or_deactivating_revokes_every_token(alice) -> None:
    _, first = ApiToken.issue(alice, "one")
    alice.set_password("a brand new passphrase")
    alice.save()
    assert Client().get("/api/me", **bearer(first)).status_code == 401
    _, second = ApiToken.issue(alice, "two")
    assert Client().get("/api/me", **bearer(second)).status_code == 200
    alice.is_active = False
    alice.save()
    alice.is_active = True
    alice.save()  # reactivated: the old token stays revoked
    assert Client().get("/api/me", **bearer(second)).status_code == 401
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 0
