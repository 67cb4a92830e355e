"""Issuing and revoking personal API tokens, journaled. The API and the tokens page call these."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.accounts.models import ApiToken
from console.events import journal

MAX_ACTIVE_TOKENS = 50  # a runaway script should not mint tokens without bound
MAX_EXPIRY_DAYS = 366


class TokenError(ValueError):
    """One line, safe to show."""


def create_token(
    user: Any, name: str, actor: str | None = None, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Issue a token and return it with the raw value, which exists only in this answer.

    `actor` is who asked, for the journal: the user themself unless an admin tool did.
    `expires_in_days` (1-366) makes the token stop working then; None means never.
    """
    name = name.strip()
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise TokenError(f"expiry must be between 1 and {MAX_EXPIRY_DAYS} days")
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    if not name:
        raise TokenError("give the token a name, so you can tell it apart later")
    if len(name) > 100:
        raise TokenError("a token name has at most 100 characters")
    with transaction.atomic():
        active = ApiToken.objects.filter(user=user, revoked_at__isnull=True).count()
        if active >= MAX_ACTIVE_TOKENS:
            raise TokenError(f"you already have {active} active tokens; revoke one first")
        token, raw = ApiToken.issue(user, name, expires_at)
        journal.append(
            "token.created",
            actor=actor or user.get_username(),
            token_id=token.id,
            name=token.name,
            user=user.get_username(),
        )
    return token, raw


def revoke_token(user: Any, token_id: int) -> ApiToken | None:
    """Revoke one of `user`'s tokens; None when it is not theirs. Revoking twice is a no-op."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(user=user, pk=token_id).first()
        if token is None:
            return None
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            journal.append(
                "token.revoked", actor=user.get_username(), token_id=token.id, name=token.name
            )
    return token


def tokens_of(user: Any) -> list[ApiToken]:
    """Active tokens first, newest first."""
    order = (F("revoked_at").desc(nulls_first=True), F("created_at").desc())
    return list(ApiToken.objects.filter(user=user).order_by(*order))


def revoke_all(user: Any, reason: str) -> int:
    """Revoke every active token of `user` (password changed, account deactivated)."""
    now = timezone.now()
    with transaction.atomic():
        active = list(ApiToken.objects.filter(user=user, revoked_at__isnull=True))
        ApiToken.objects.filter(pk__in=[t.pk for t in active]).update(revoked_at=now)
        for token in active:
            journal.append(
                "token.revoked", actor=f"system ({reason})", token_id=token.id, name=token.name
            )
    return len(active)


def check_password_again(user: Any, password: str | None) -> None:
    """Minting a token needs the password again: a stolen session alone cannot."""
    if not password or not user.check_password(password):
        raise TokenError("enter your password to create a token")
