"""Three roles, as Django groups: viewer (read), operator (run runbooks), admin (everything).

Superusers are admins. A user in no group is a viewer.
"""

from __future__ import annotations

from typing import Any

ROLES = ("viewer", "operator", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}


def role_of(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return "admin"
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return "viewer"


def has_role(user: Any, needed: str) -> bool:
    role = role_of(user)
    return role is not None and RANK[role] >= RANK[needed]
