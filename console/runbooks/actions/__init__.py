"""The runbook actions, one module each. An action knows three things:

- `clean(params)`: the parameters it takes, or the reasons they are wrong;
- `check(view, params, client)`: why it is unsafe right now (reasons, empty if safe);
- `plan(view, params)`: its ordered steps, each a name and a function that does it.

Preflight calls the first two; the Celery task runs the plan. Both read the same live
view, so the button's dry-run and the real run cannot disagree about what will happen.
"""

from __future__ import annotations

from types import ModuleType

from console.runbooks.actions import drain, snapshot, transfer_leader, undrain

ACTIONS: dict[str, ModuleType] = {
    "snapshot": snapshot,
    "drain": drain,
    "undrain": undrain,
    "transfer_leader": transfer_leader,
}

LABELS: dict[str, str] = {name: module.LABEL for name, module in ACTIONS.items()}
