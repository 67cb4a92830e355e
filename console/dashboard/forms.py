"""Forms for the history filters and the operations page: bad input is a clear 400."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator

from console.dashboard.history import Filters
from daemon.contract import OPERATION_ID_PATTERN, OPERATION_ID_RULE

OPERATION_ID = RegexValidator(OPERATION_ID_PATTERN, f"operation ids are {OPERATION_ID_RULE}")
HANDLER_KINDS = [
    ("log", "log a message"),
    ("noop", "do nothing"),
    ("sleep", "sleep (ms)"),
    ("fail", "fail (for drills)"),
]


class HistoryFilterForm(forms.Form):
    operation = forms.CharField(required=False, max_length=128)
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "any"),
            ("success", "success"),
            ("failure", "failure"),
            ("timeout", "timeout"),
        ],
    )
    node = forms.CharField(required=False, max_length=63)
    since = forms.DateTimeField(required=False, help_text="ISO time, UTC")
    until = forms.DateTimeField(required=False, help_text="ISO time, UTC")
    before = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            operation=data["operation"],
            status=data["status"],
            node=data["node"],
            since=data["since"],
            until=data["until"],
        )


class DefineOperationForm(forms.Form):
    id = forms.CharField(max_length=128, validators=[OPERATION_ID], label="Operation id")
    name = forms.CharField(max_length=200)
    handler_kind = forms.ChoiceField(choices=HANDLER_KINDS, initial="log", label="Handler")
    handler_argument = forms.CharField(
        required=False,
        max_length=1000,
        label="Message or milliseconds",
        help_text="log/fail: the message; sleep: how many ms",
    )
    timeout_ms = forms.IntegerField(required=False, min_value=1, max_value=3_600_000)
    description = forms.CharField(required=False, max_length=500)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind, argument = data.get("handler_kind"), (data.get("handler_argument") or "").strip()
        if kind == "log" and not argument:
            self.add_error("handler_argument", "a log handler needs a message")
        if kind == "sleep" and not argument.isdigit():
            self.add_error("handler_argument", "a sleep handler needs a whole number of ms")
        return data

    def definition(self) -> dict[str, Any]:
        """The body of the daemon's POST /operations (docs/daemon-api.md)."""
        data = self.cleaned_data
        kind, argument = data["handler_kind"], data["handler_argument"].strip()
        handler: dict[str, Any] = {"kind": kind}
        if kind == "log":
            handler["message"] = argument
        elif kind == "sleep":
            handler["ms"] = int(argument)
        elif kind == "fail" and argument:
            handler["message"] = argument
        body: dict[str, Any] = {"id": data["id"], "name": data["name"], "handler": handler}
        if data["timeout_ms"]:
            body["timeoutMs"] = data["timeout_ms"]
        if data["description"]:
            body["description"] = data["description"]
        return body


class ExecuteOperationForm(forms.Form):
    operation = forms.CharField(max_length=128, validators=[OPERATION_ID])
