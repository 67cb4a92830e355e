"""Sending one message over one channel. Each sender raises SendError with a one-line
reason that never contains the secret (a webhook URL is a credential)."""

from __future__ import annotations

import httpx
from django.core.mail import EmailMessage, get_connection

from console.notifications import conf
from console.notifications.messages import Message, email_text, pagerduty_body, slack_body
from console.notifications.models import PAGERDUTY_URL, Channel


class SendError(Exception):
    pass


def _secret(channel: Channel, what: str) -> str:
    if not channel.secret_env:
        raise SendError(f"channel {channel.name} names no environment variable for its {what}")
    value = channel.secret
    if not value:
        raise SendError(f"environment variable {channel.secret_env} ({what}) is not set")
    return value


def _post(url: str, body: dict) -> None:
    try:
        response = httpx.post(url, json=body, timeout=conf.timeout_s())
    except httpx.HTTPError as err:
        # httpx's message may hold the URL (and its token): keep only the class and errno.
        reason = str(err).split(" for url")[0].splitlines()[0] if str(err) else ""
        raise SendError(f"{type(err).__name__}: {reason}"[:200]) from None
    if not 200 <= response.status_code < 300:
        raise SendError(f"HTTP {response.status_code}: {response.text[:120]!r}")


def send(channel: Channel, message: Message) -> None:
    if channel.kind == "slack":
        _post(_secret(channel, "webhook URL"), slack_body(message))
    elif channel.kind == "pagerduty":
        key = _secret(channel, "routing key")
        _post(channel.url or PAGERDUTY_URL, pagerduty_body(message, key))
    elif channel.kind == "email":
        recipients = channel.recipient_list
        if not recipients:
            raise SendError(f"channel {channel.name} has no recipients")
        password = channel.secret if channel.secret_env else None
        try:
            connection = get_connection(password=password, fail_silently=False)
            EmailMessage(
                message.title, email_text(message), to=recipients, connection=connection
            ).send()
        except OSError as err:  # smtplib's errors are OSErrors: refused, timeout, rejected
            raise SendError(f"{type(err).__name__}: {str(err)[:160]}") from None
    else:
        raise SendError(f"unknown channel kind {channel.kind!r}")
