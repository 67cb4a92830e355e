"""The daemon's wire contract, in one place, for the daemon and for its callers.

Standard library only: the console (Django) and `daemonctl` import this module, and
`daemon/` must never import them back. It holds

- typed, frozen views of the `/health/cluster` and `/health/node` answers, with
  `parse_cluster_view` and `parse_node_health`, which raise one `ContractError` (a
  ValueError with a one-line message) on an answer that breaks the contract;
- the quorum and fault-tolerance arithmetic;
- the operation-id pattern and bounds, the handler kinds, the execution statuses;
- the ISO-8601 time format every time on the wire uses.

docs/daemon-api.md describes the same answers for people; a contract test checks real
daemon answers against this module.
"""

from daemon.contract.answers import (
    BuildInfo,
    ClusterView,
    CodeVersion,
    DiskUsage,
    FollowerProgress,
    Member,
    NodeHealth,
    parse_cluster_view,
    parse_code_version,
    parse_node_health,
)
from daemon.contract.wire import (
    EXECUTION_STATUSES,
    HANDLER_KINDS,
    METRICS_WINDOWS,
    NODE_ROLES,
    OPERATION_ID_MAX_LENGTH,
    OPERATION_ID_PATTERN,
    OPERATION_ID_RE,
    OPERATION_ID_RULE,
    UNKNOWN_ROLE,
    ContractError,
    fault_tolerance,
    format_time,
    parse_time,
    quorum_size,
    valid_operation_id,
)

__all__ = [
    "EXECUTION_STATUSES",
    "HANDLER_KINDS",
    "METRICS_WINDOWS",
    "NODE_ROLES",
    "OPERATION_ID_MAX_LENGTH",
    "OPERATION_ID_PATTERN",
    "OPERATION_ID_RE",
    "OPERATION_ID_RULE",
    "UNKNOWN_ROLE",
    "BuildInfo",
    "ClusterView",
    "CodeVersion",
    "ContractError",
    "DiskUsage",
    "FollowerProgress",
    "Member",
    "NodeHealth",
    "fault_tolerance",
    "format_time",
    "parse_cluster_view",
    "parse_code_version",
    "parse_node_health",
    "parse_time",
    "quorum_size",
    "valid_operation_id",
]
