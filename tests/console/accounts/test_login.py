import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> object:
    return get_user_model().objects.create_user("operator", password="correct horse battery")


def test_anonymous_user_is_sent_to_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_login_page_shows_a_form(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_correct_password_leads_to_the_dashboard(client: Client, operator: object) -> None:
    response = client.post(
        "/accounts/login/",
        {"username": "operator", "password": "correct horse battery"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/"
    assert b"No clusters registered yet" in response.content


def test_wrong_password_is_refused(client: Client, operator: object) -> None:
    response = client.post("/accounts/login/", {"username": "operator", "password": "nope"})
    assert response.status_code == 200
    assert b"do not match" in response.content
    assert client.get("/").status_code == 302


def test_logout_ends_the_session(client: Client, operator: object) -> None:
    client.force_login(operator)
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302
