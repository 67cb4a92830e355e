from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Login, logout, API tokens and API auth; its migration creates the role groups
    (viewer, operator, admin) that `console.core.roles` reads."""

    name = "console.accounts"
    label = "accounts"

    def ready(self) -> None:
        from console.accounts import signals

        signals.connect()
