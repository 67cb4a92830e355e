"""The first user: `manage.py up` creates `admin` so a fresh checkout can log in."""

import secrets

from django.contrib.auth import get_user_model

ADMIN_USERNAME = "admin"


def ensure_admin_user(password: str = "") -> str | None:
    """Create the admin superuser if missing and return its password; None if it existed.

    The password is `password` when given (CONSOLE_ADMIN_PASSWORD), else generated. Only
    its hash is stored, so the caller must show it now or never.
    """
    users = get_user_model()
    if users.objects.filter(username=ADMIN_USERNAME).exists():
        return None
    password = password or secrets.token_urlsafe(12)
    users.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
    return password
