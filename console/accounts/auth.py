"""API authentication: a personal token (Bearer) or the browser session (with CSRF).

Use `auth=api_auth` on the NinjaAPI and `require_role(request, "operator")` in
mutating endpoints. Ninja checks CSRF for session-authenticated unsafe requests.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from console.accounts.models import ApiToken
from console.accounts.roles import has_role


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user
        return user


api_auth = [TokenAuth(), SessionAuth(csrf=True)]


def require_role(request: HttpRequest, role: str) -> Any:
    """403 unless the caller has `role` (viewer < operator < admin); returns the user."""
    user = request.auth if getattr(request, "auth", None) is not None else request.user
    if not has_role(user, role):
        raise HttpError(403, f"this needs the {role} role")
    return user
