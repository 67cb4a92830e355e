"""`manage.py setrole USER ROLE`: make a user a viewer, operator or admin."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.core.roles import ROLES, role_of, set_role
from console.events import journal


class Command(BaseCommand):
    help = "Give a user one role: viewer (read), operator (run runbooks) or admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=ROLES)

    def handle(self, *args: Any, username: str, role: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        before = role_of(user)
        set_role(user, role)
        journal.append("user.role", actor="system", user=username, before=before, after=role)
        note = " (a superuser stays an admin whatever its groups)" if user.is_superuser else ""
        self.stdout.write(f"{username}: {before} -> {role_of(user)}{note}")
