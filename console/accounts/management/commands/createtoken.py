"""`manage.py createtoken USER NAME`: issue an API token and print it (the only time)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.accounts import tokens


class Command(BaseCommand):
    help = "Create a personal API token for a user and print its value once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("name", help="what the token is for")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        try:
            _, raw = tokens.create_token(user, name, actor="system")
        except tokens.TokenError as err:
            raise CommandError(str(err)) from None
        # Only the token on stdout, so scripts can capture it: TOKEN=$(manage.py createtoken ...)
        self.stdout.write(raw)
