"""The runbook actions, one class each (see `base.Action` for what an action declares).

Preflight parses the params and calls `check`; the Celery task runs the `plan`, checking
each step's gates just before it. Both read the same live view, so the button's dry-run
and the real run cannot disagree about what will happen.
"""

from __future__ import annotations

from console.runbooks.actions.base import Action
from console.runbooks.actions.blue_green import BlueGreen
from console.runbooks.actions.drain import Drain
from console.runbooks.actions.drills import DrillKillLeader, DrillPauseNode
from console.runbooks.actions.drills_disk import DrillFillDisk
from console.runbooks.actions.drills_partition import DrillPartitionNode
from console.runbooks.actions.drills_split_brain import HealNode, IsolateNode
from console.runbooks.actions.node_lifecycle import RestartNode, StartNode, StopNode
from console.runbooks.actions.quick_rollback import QuickRollback
from console.runbooks.actions.scale import Scale
from console.runbooks.actions.snapshot import Snapshot
from console.runbooks.actions.transfer_leader import TransferLeader
from console.runbooks.actions.undrain import Undrain
from console.runbooks.actions.upgrade import Upgrade

ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Snapshot(),
        Drain(),
        Undrain(),
        TransferLeader(),
        RestartNode(),
        StopNode(),
        StartNode(),
        Scale(),
        DrillKillLeader(),
        DrillPauseNode(),
        DrillPartitionNode(),
        DrillFillDisk(),
        IsolateNode(),
        HealNode(),
        Upgrade(),
        QuickRollback(),
        BlueGreen(),
    )
}

LABELS: dict[str, str] = {name: action.label for name, action in ACTIONS.items()}
