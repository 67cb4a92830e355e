"""The tokens page: list my API tokens, create one (its value shown once), revoke one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from console.accounts import tokens


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    # A new token's raw value is rendered in this very response and never again: no
    # redirect, so it is not parked in the session or a message store on the way.
    created, raw, error = None, None, None
    if request.method == "POST":
        try:
            tokens.check_password_again(request.user, request.POST.get("password"))
            days = request.POST.get("expires_in_days") or ""
            if days and not days.isdigit():
                raise tokens.TokenError("expiry must be a whole number of days")
            created, raw = tokens.create_token(
                request.user, request.POST.get("name", ""), None, int(days) if days else None
            )
        except tokens.TokenError as err:
            error = str(err)
    context = {
        "tokens": tokens.tokens_of(request.user),
        "created": created,
        "raw_token": raw,
        "error": error,
        "name": request.POST.get("name", "") if error else "",
    }
    return render(request, "accounts/tokens.html", context, status=400 if error else 200)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = tokens.revoke_token(request.user, token_id)
    if token is None:
        messages.error(request, "No such token.")
    else:
        messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("tokens")
