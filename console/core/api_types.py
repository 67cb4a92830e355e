"""Input types shared by the API routers.

PostgreSQL refuses NUL characters and the drivers refuse lone surrogates; left to the
database they would surface as 500s. These types refuse them at the door with a 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator, Field, StringConstraints


def _printable(value: str) -> str:
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("must not contain NUL characters or lone surrogates")
    return value


def _utc(value: datetime) -> datetime:
    """Naive times are UTC; a time that cannot be expressed in UTC is refused, not a 500."""
    try:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("time is out of range") from None


Text = Annotated[str, AfterValidator(_printable)]
"""Any string the database can store."""

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
"""Cluster, node and operation names: what the daemon accepts as an id."""

Time = Annotated[datetime, AfterValidator(_utc)]
"""An ISO-8601 time; naive means UTC."""

BigId = Annotated[int, Field(ge=0, le=2**63 - 1)]
"""Anything stored in a bigint: larger values would overflow the database, a 500."""


class ErrorOut(Schema):
    detail: str | list
