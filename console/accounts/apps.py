from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Login, logout and (later) roles: viewer, operator, admin."""

    name = "console.accounts"
    label = "accounts"
