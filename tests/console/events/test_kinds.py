"""The registry of event kinds is the only list of them: every kind the code appends is
in it, and the page's script holds no copy."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from console.clusters.models import Cluster
from console.dashboard.fragments import PARTS
from console.events.kinds import ALWAYS_REFRESHED, DASHBOARD_PARTS, KINDS, dashboard_data

ROOT = Path(__file__).resolve().parents[3]
CONSOLE = ROOT / "console"


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(CONSOLE.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, ast.parse(path.read_text(), str(path))


def _journal_writers() -> set[str]:
    """Every function that takes an event kind first (`journal.append` and the helpers
    that wrap it): a new wrapper is found the same way, so it cannot hide a kind."""
    names = set()
    for _, module in _modules():
        for node in ast.walk(module):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                params = [a.arg for a in node.args.args if a.arg not in ("self", "cls")]
                if params[:1] == ["kind"]:
                    names.add(node.name)
    return names


def _is_journal_append(func: ast.expr) -> bool:
    # `append` is also every list's: only `journal.append` writes an event.
    return isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "journal"


def _appended() -> list[tuple[str, str]]:
    """(where, kind) for every call of a journal writer; an f-string gives its literal
    prefix followed by `*`."""
    writers = _journal_writers()
    found = []
    for path, module in _modules():
        for node in ast.walk(module):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in writers or (name == "append" and not _is_journal_append(func)):
                continue
            first = node.args[0]
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((where, first.value))
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                found.append((where, f"{first.values[0].value}*"))
    return found


def test_the_code_appends_through_the_journal_writers_it_is_scanned_for() -> None:
    assert {"append", "journal_step"} <= _journal_writers()
    assert len(_appended()) > 20  # the scan sees the code, not nothing


def test_every_kind_the_code_appends_is_registered() -> None:
    unregistered = []
    for where, kind in _appended():
        if kind.endswith("*"):
            known = any(name.startswith(kind[:-1]) for name in KINDS)
        else:
            known = kind in KINDS
        if not known:
            unregistered.append(f"{where}: {kind}")
    assert unregistered == [], "add these to console/events/kinds.py"


def test_kinds_refresh_only_parts_the_dashboard_has() -> None:
    assert PARTS == DASHBOARD_PARTS
    for kind in KINDS.values():
        assert kind.parts()[0] == ALWAYS_REFRESHED
        assert set(kind.refreshes) <= set(DASHBOARD_PARTS), kind.name
    for part in DASHBOARD_PARTS:
        assert (ROOT / "templates" / "dashboard" / f"_{part}.html").is_file()


def test_the_page_script_holds_no_kind_names() -> None:
    script = (ROOT / "static" / "console.js").read_text()
    prefixes = {name.split(".")[0] + "." for name in KINDS}
    assert [p for p in prefixes if p in script] == []


@pytest.mark.django_db
def test_the_dashboard_page_carries_the_registry_as_data(admin_client: Client) -> None:
    Cluster.objects.create(name="prod")
    html = admin_client.get("/clusters/prod/").content.decode()
    start = html.index('<script id="event-kinds" type="application/json">')
    payload = html[html.index(">", start) + 1 : html.index("</script>", start)]
    assert json.loads(payload) == dashboard_data()
    assert json.loads(payload)["refreshes"]["leader.changed"] == [
        "events",
        "summary",
        "nodes",
        "actions",
    ]
