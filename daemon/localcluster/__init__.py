"""A daemon cluster on this machine: its layout on disk and one process per node.

Product code (no Django): `python -m daemon cluster`, the console's `manage.py up` and
node manager, the tests and the benchmarks all start, stop and inspect nodes through it.
"""

from daemon.localcluster.layout import (
    NAME_PREFIX,
    RAFT_PORT_OFFSET,
    Layout,
    LayoutError,
    NodeSpec,
    ReleaseChoice,
    node_name,
    stored_secret,
    write_private,
)
from daemon.localcluster.logs import LogFollower
from daemon.localcluster.node import NodeProcess, NodeStatus, node_env, nodes_of, stop_nodes
from daemon.localcluster.polling import wait_for, wait_until
from daemon.localcluster.ports import free_port
from daemon.localcluster.process import ProcessHandle, describe_exit

__all__ = [
    "NAME_PREFIX",
    "RAFT_PORT_OFFSET",
    "Layout",
    "LayoutError",
    "LogFollower",
    "NodeProcess",
    "NodeSpec",
    "NodeStatus",
    "ProcessHandle",
    "ReleaseChoice",
    "describe_exit",
    "free_port",
    "node_env",
    "node_name",
    "nodes_of",
    "stop_nodes",
    "stored_secret",
    "wait_for",
    "wait_until",
    "write_private",
]
