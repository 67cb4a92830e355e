"""Three roles, as Django groups: viewer (read), operator (run runbooks), admin (everything).

Superusers are admins. A user in no group is a viewer. Views use `role_required("operator")`;
API endpoints use `require_role(request, "operator")`. This sits below every app (it needs
only Django's auth), so any app may ask who the caller is and what they may do.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from ninja.errors import HttpError

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
    if needed not in RANK:
        raise ValueError(f"unknown role {needed!r}; roles are {', '.join(ROLES)}")
    role = role_of(user)
    return role is not None and RANK[role] >= RANK[needed]


def set_role(user: Any, role: str) -> None:
    """Put `user` in exactly one role group (a superuser stays an admin regardless)."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    with transaction.atomic():
        groups = {g.name: g for g in Group.objects.filter(name__in=ROLES)}
        # The groups come from a migration; recreate one if someone deleted it.
        wanted = groups.get(role) or Group.objects.create(name=role)
        user.groups.remove(*[g for name, g in groups.items() if name != role])
        user.groups.add(wanted)


def role_required(role: str) -> Callable:
    """Decorator for Django views: anonymous users go to login, too-low roles get 403."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not has_role(request.user, role):
                raise PermissionDenied(f"this needs the {role} role")
            return view(request, *args, **kwargs)

        return login_required(checked)

    return decorate


def require_role(request: HttpRequest, role: str) -> Any:
    """403 unless the API caller has `role` (viewer < operator < admin); returns the user."""
    user = request.auth if getattr(request, "auth", None) is not None else request.user
    if not has_role(user, role):
        raise HttpError(403, f"this needs the {role} role")
    return user


def actor_of(request: HttpRequest) -> str:
    """The name the journal records for whoever made this request."""
    user = request.auth if getattr(request, "auth", None) is not None else request.user
    return user.get_username()
