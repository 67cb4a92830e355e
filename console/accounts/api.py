"""/api/me and /api/tokens: who am I, and my personal API tokens."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status
from pydantic import Field

from console.accounts import tokens
from console.accounts.models import ApiToken
from console.core.roles import actor_of, role_of

router = Router(tags=["accounts"])


class MeOut(Schema):
    username: str
    role: str


class TokenOut(Schema):
    id: int
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the raw token: shown this once, stored only as a hash")


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100, description="what the token is for")
    password: str = Field(max_length=4096, description="your password, asked again")
    expires_in_days: int | None = Field(
        default=None, ge=1, le=tokens.MAX_EXPIRY_DAYS, description="none: until revoked"
    )


def _is_token_auth(request: HttpRequest) -> bool:
    scheme = request.headers.get("Authorization", "").split(" ", 1)[0].lower()
    return scheme == "bearer"


def _caller(request: HttpRequest):
    return request.auth if getattr(request, "auth", None) is not None else request.user


@router.get("/me", response=MeOut)
def me(request: HttpRequest) -> dict:
    return {"username": actor_of(request), "role": role_of(_caller(request))}


@router.get("/tokens", response=list[TokenOut])
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    """My tokens (active first). The raw values are never shown again."""
    return tokens.tokens_of(_caller(request))


@router.post("/tokens", response={201: TokenCreated})
def create_token(request: HttpRequest, body: TokenIn) -> Status[dict]:
    """Create a token for me. Every role may: a viewer needs one to read the API.

    Only from a signed-in browser session, with the password again: a token cannot
    mint a successor that would outlive its own revocation."""
    if _is_token_auth(request):
        raise HttpError(403, "tokens are created from a signed-in session, not with a token")
    try:
        tokens.check_password_again(request.user, body.password)
    except tokens.TokenError as err:
        raise HttpError(403, str(err)) from None
    try:
        token, raw = tokens.create_token(request.user, body.name, None, body.expires_in_days)
    except tokens.TokenError as err:
        raise HttpError(400, str(err)) from None
    return Status(201, {**TokenOut.model_validate(token).model_dump(), "token": raw})


@router.delete("/tokens/{token_id}", response=TokenOut)
def revoke_token(request: HttpRequest, token_id: int) -> ApiToken:
    token = tokens.revoke_token(_caller(request), token_id)
    if token is None:
        raise HttpError(404, f"you have no token with id {token_id}")
    return token
