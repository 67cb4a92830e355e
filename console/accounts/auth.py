"""API authentication: a personal token (Bearer) or the browser session (with CSRF).

Use `auth=api_auth` on the NinjaAPI and `require_role(request, "operator")` in
mutating endpoints.
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


class SessionWithCsrf(SessionAuth):
    """The browser session; unsafe methods need the CSRF token (ninja checks it).

    Ninja's own SessionAuth checks CSRF before it looks at the session, so a caller
    with neither a session nor a valid token got "403 CSRF check Failed". Checking
    the session first makes that a plain 401, which is what the caller needs to hear.
    """

    def __call__(self, request: HttpRequest) -> Any | None:
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


api_auth = [TokenAuth(), SessionWithCsrf(csrf=True)]


def require_role(request: HttpRequest, role: str) -> Any:
    """403 unless the caller has `role` (viewer < operator < admin); returns the user."""
    user = request.auth if getattr(request, "auth", None) is not None else request.user
    if not has_role(user, role):
        raise HttpError(403, f"this needs the {role} role")
    return user


def actor_of(request: HttpRequest) -> str:
    """The name the journal records for whoever made this request."""
    user = request.auth if getattr(request, "auth", None) is not None else request.user
    return user.get_username()
