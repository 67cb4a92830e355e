"""Issue 14's console findings replayed against a real daphne (tests/conftest.py):
debug pages, error pages, headers, login throttling and token minting."""

from __future__ import annotations

import re

import httpx
import pytest
from django.contrib.auth import get_user_model

from console.accounts.models import ApiToken
from console.events.models import Event
from tests.conftest import ConsoleServer

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def test_a_foreign_host_gets_the_consoles_400_page_and_no_settings(
    console_server: ConsoleServer,
) -> None:
    response = httpx.get(console_server.url + "/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert 'data-testid="error-page"' in response.text
    for leak in ("CELERY_BROKER_URL", "REDIS_URL", "CHANNEL_LAYERS", "Traceback", "DEBUG"):
        assert leak not in response.text


def test_an_unknown_page_gets_the_consoles_404_page(console_server: ConsoleServer) -> None:
    response = httpx.get(console_server.url + "/no/such/page")
    assert response.status_code == 404
    assert 'data-testid="error-page"' in response.text
    assert "urlpatterns" not in response.text  # Django's debug 404 lists them


def test_pages_carry_a_content_security_policy_and_frame_denial(
    console_server: ConsoleServer,
) -> None:
    response = httpx.get(console_server.url + "/accounts/login/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    # The page itself satisfies it: no inline script.
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", response.text)


def _login(client: httpx.Client, base: str, username: str, password: str) -> httpx.Response:
    page = client.get(base + "/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(
        base + "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": base + "/accounts/login/"},
    )


def test_thirty_wrong_passwords_lock_the_account_and_the_lockout_is_journaled(
    console_server: ConsoleServer,
) -> None:
    get_user_model().objects.create_user("target", password=PASSWORD)
    base = console_server.url
    with httpx.Client() as client:
        for _ in range(30):
            assert _login(client, base, "target", "guess").status_code == 200
        right = _login(client, base, "target", PASSWORD)
        assert right.status_code == 200  # the form again, not the redirect to the dashboard
        assert "Too many failed sign-ins" in right.text
        assert "sessionid" not in client.cookies
    locked = Event.objects.filter(kind="login.locked")
    assert locked.count() == 1
    assert locked.get().payload["user"] == "target"


def test_a_bearer_token_cannot_mint_a_child_token(console_server: ConsoleServer) -> None:
    user = get_user_model().objects.create_user("minter", password=PASSWORD)
    _, raw = ApiToken.issue(user, "parent")
    response = httpx.post(
        console_server.url + "/api/tokens",
        json={"name": "child", "password": PASSWORD},
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 403
    assert not ApiToken.objects.filter(name="child").exists()


def test_a_connection_that_sends_nothing_is_closed_by_the_console(
    console_server: ConsoleServer,
) -> None:
    import socket
    import time

    silent = socket.create_connection(("127.0.0.1", console_server.port), timeout=30)
    dribbling = socket.create_connection(("127.0.0.1", console_server.port), timeout=30)
    dribbling.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    for sock in (silent, dribbling):
        # b"" means the console closed it; before the fix recv waited out the timeout.
        assert sock.recv(1024) == b""
        sock.close()
    assert time.monotonic() - started < 20
    assert httpx.get(console_server.url + "/accounts/login/").status_code == 200


def test_an_idle_websocket_outlives_the_http_idle_timeout(console_server: ConsoleServer) -> None:
    """The idle timeout is for HTTP; the dashboard's live feed stays up (the fixture's
    daphne closes idle HTTP connections after 5 s)."""
    import base64
    import os
    import socket
    import time

    from django.contrib.auth.models import Group
    from django.test import Client

    user = get_user_model().objects.create_user("watcher", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection(("127.0.0.1", console_server.port), timeout=10)
    sock.sendall(
        (
            "GET /ws/events/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {console_server.url}\r\nCookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    time.sleep(8)  # idle on purpose, past the 5 s HTTP idle timeout
    sock.settimeout(0.5)
    try:
        while sock.recv(65536):  # drain the snapshot the feed sent on connect
            pass
    except TimeoutError:
        pass
    sock.settimeout(10)
    sock.sendall(bytes([0x89, 0x80]) + os.urandom(4))  # a masked, empty ping frame
    assert sock.recv(2) == bytes([0x8A, 0x00]), "no pong: the idle websocket was closed"
    sock.close()
