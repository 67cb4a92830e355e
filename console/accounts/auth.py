"""API authentication: a personal token (Bearer) or the browser session (with CSRF).

Use `auth=api_auth` on the NinjaAPI; mutating endpoints call
`console.core.roles.require_role(request, "operator")`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from console.accounts.models import ApiToken


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
