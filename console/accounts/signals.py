"""A user's tokens die with their password or their account (issue 14, point 8)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from console.accounts import tokens


def _remember_old(sender: Any, instance: Any, **kwargs: Any) -> None:
    old = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    instance._tokens_before = old  # read back in _revoke, after the save committed


def _revoke(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    old = getattr(instance, "_tokens_before", None)
    if created or not old:
        return
    if old["password"] != instance.password:
        tokens.revoke_all(instance, "password changed")
    elif old["is_active"] and not instance.is_active:
        tokens.revoke_all(instance, "account deactivated")


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_remember_old, sender=user_model, dispatch_uid="tokens-remember-old")
    post_save.connect(_revoke, sender=user_model, dispatch_uid="tokens-revoke-on-change")
