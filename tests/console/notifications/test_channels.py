"""Channel administration: admins add channels (page and API) and send test messages;
viewers read; secrets are never taken or shown, only the names of variables holding them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from console.events.models import Event
from console.notifications import delivery
from console.notifications.models import Channel, Delivery
from tests.console.notifications.support import Webhook

pytestmark = pytest.mark.django_db

BODY = {"name": "chat", "kind": "slack", "secret_env": "NOTIFY_CHAT_URL"}


@pytest.fixture
def admin_client(client: Client, django_user_model) -> Client:
    user = django_user_model.objects.create_user("ada", password="x" * 12)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    client.force_login(user)
    return client


def test_an_admin_adds_a_webhook_channel_by_api_and_its_test_message_arrives(
    admin_client: Client, webhook: Webhook
) -> None:
    made = admin_client.post("/api/notifications/channels", BODY, content_type="application/json")
    assert made.status_code == 201, made.content
    channel = made.json()
    assert channel["routes"] == ["warning"]  # the escalation table's line for chat
    assert channel["secret_set"] is True and "secret-token" not in made.content.decode()

    queued = admin_client.post(f"/api/notifications/channels/{channel['id']}/test")
    assert queued.status_code == 202 and queued.json()["status"] == "pending"
    assert delivery.attempt(queued.json()["id"]).status == "sent"
    assert webhook.bodies[0]["text"] == "raftops test notification for channel chat"
    sent = admin_client.get("/api/notifications/deliveries?status=sent").json()
    assert [d["key"].split(":")[0] for d in sent] == ["test"]
    kinds = list(Event.objects.values_list("kind", "actor"))
    assert ("notification.channel", "ada") in kinds and ("notification.test", "ada") in kinds


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"secret_env": "SECRET_KEY"}, 400, "starting with NOTIFY_"),
        ({"secret_env": ""}, 400, "secret_env: a slack channel"),
        ({"kind": "email", "secret_env": ""}, 400, "recipients"),
        ({"routes": ["loud"]}, 422, "routes"),
        ({"quiet_start_hour": 24}, 422, "quiet_start_hour"),
        ({"cluster": "nope"}, 404, "no cluster named"),
        ({"name": "bad name"}, 422, "name"),
    ],
)
def test_a_bad_channel_is_refused_with_one_line(
    admin_client: Client, change: dict, status: int, says: str
) -> None:
    answer = admin_client.post(
        "/api/notifications/channels", {**BODY, **change}, content_type="application/json"
    )
    assert answer.status_code == status, answer.content
    detail = answer.json().get("error") or answer.json()["detail"]
    assert says in detail and "\n" not in detail
    assert Channel.objects.count() == 0


def test_a_duplicate_name_is_a_conflict(admin_client: Client) -> None:
    post = lambda: admin_client.post(  # noqa: E731
        "/api/notifications/channels", BODY, content_type="application/json"
    )
    assert post().status_code == 201
    assert post().status_code == 409


def test_viewers_read_channels_but_cannot_change_or_test_them(viewer_client: Client) -> None:
    channel = Channel.objects.create(
        name="chat", kind="slack", routes=["warning"], secret_env="NOTIFY_X"
    )
    assert viewer_client.get("/api/notifications/channels").status_code == 200
    post = viewer_client.post("/api/notifications/channels", BODY, content_type="application/json")
    assert post.status_code == 403
    assert viewer_client.post(f"/api/notifications/channels/{channel.pk}/test").status_code == 403
    assert viewer_client.delete(f"/api/notifications/channels/{channel.pk}").status_code == 403
    page = viewer_client.get("/notifications/")
    assert page.status_code == 200 and 'data-testid="channel-form"' not in page.content.decode()
    assert viewer_client.post("/notifications/channels/", {"name": "x"}).status_code == 403
    assert Delivery.objects.count() == 0


def test_the_page_adds_a_channel_tests_it_and_shows_the_delivery(
    admin_client: Client, webhook: Webhook
) -> None:
    form = {"name": "chat", "kind": "slack", "secret_env": "NOTIFY_CHAT_URL", "routes": ["warning"]}
    assert admin_client.post("/notifications/channels/", form).status_code == 302
    channel = Channel.objects.get()
    bad = admin_client.post(
        "/notifications/channels/", {**form, "name": "chat2", "secret_env": "HOME"}
    )
    assert bad.status_code == 400 and "starting with NOTIFY_" in bad.content.decode()
    assert admin_client.post(f"/notifications/channels/{channel.pk}/test/").status_code == 302
    (pending,) = Delivery.objects.all()
    delivery.attempt(pending.pk)
    page = admin_client.get("/notifications/").content.decode()
    assert f'data-testid="delivery-{pending.pk}"' in page and ">sent<" in page
    assert len(webhook.bodies) == 1
    assert admin_client.post(f"/notifications/channels/{channel.pk}/delete/").status_code == 302
    assert Channel.objects.count() == 0
