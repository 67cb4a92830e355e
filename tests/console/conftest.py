"""Fixtures shared by the console's tests (each app's folder adds its own)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client


@pytest.fixture
def viewer_client(client: Client) -> Client:
    """A browser signed in as a user in no role group, which makes a viewer."""
    client.force_login(get_user_model().objects.create_user("viewer", password="x" * 12))
    return client
