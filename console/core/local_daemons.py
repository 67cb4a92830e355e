"""The local 3-node daemon cluster that `manage.py up` runs, through daemon.localcluster.

Each node is its own detached process (not children of one `python -m daemon cluster`),
so the node manager can restart one from the worker, and the nodes outlive a restart of
the console. An `up` that finds the nodes of an earlier run still running adopts them.
"""

from __future__ import annotations

from pathlib import Path

from console.core.ports import PortClaim
from daemon.localcluster import Layout, LayoutError, NodeProcess

DAEMON_NODES = 3


def local_layout(var_dir: Path, http_port: int) -> Layout:
    """Node i serves HTTP on http_port+i and Raft on http_port+100+i, data in var/cluster.

    A cluster an earlier run left (scaled from the console or `daemonctl scale`, say)
    keeps its nodes: the next run starts the nodes it has, not a fresh three. Only when
    its nodes sit on other ports (DAEMON_HTTP_PORT moved) is the fresh layout used, and
    `still_running` refuses if the old nodes still run."""
    fresh = Layout.sequential(var_dir / "cluster", DAEMON_NODES, http_port)
    try:
        saved = Layout.load(fresh.root)
    except LayoutError:
        return fresh
    planned = {spec.name: spec for spec in fresh.nodes}
    if saved.nodes and all(planned.get(spec.name, spec) == spec for spec in saved.nodes):
        return Layout(fresh.root, saved.nodes, fresh.base_config)
    return fresh


def still_running(layout: Layout) -> dict[str, int]:
    """name -> pid of the nodes an earlier run left running (its `up` was killed, say).

    Refused when they run on another layout (DAEMON_HTTP_PORT moved meanwhile): two
    clusters on one data dir would fight over it.
    """
    try:
        saved = Layout.load(layout.root)
    except LayoutError:
        return {}
    running = {}
    for spec in saved.nodes:
        pid = NodeProcess(saved, spec.name).pid
        if pid is not None:
            running[spec.name] = pid
    if running and (saved.nodes, saved.base_config) != (layout.nodes, layout.base_config):
        first = saved.nodes[0]
        pids = " ".join(str(pid) for pid in running.values())
        raise LayoutError(
            f"the daemon nodes of an earlier run still run from {layout.root} with HTTP from "
            f"port {first.http_port} (pids {pids}); set DAEMON_HTTP_PORT={first.http_port} "
            f"to adopt them, or stop them (kill {pids})"
        )
    return running


def port_claims(layout: Layout, adopted: dict[str, int]) -> list[PortClaim]:
    """The ports the nodes we will start need (adopted nodes hold theirs already)."""
    claims = []
    for i, spec in enumerate(layout.nodes):
        if spec.name in adopted:
            continue
        for port, kind in ((spec.http_port, "HTTP"), (spec.raft_port, "Raft")):
            claims.append(
                PortClaim(
                    port, f"daemon node {i} ({kind})", "DAEMON_HTTP_PORT", "the daemon cluster"
                )
            )
    return claims


def prepare(layout: Layout, admin_token: str) -> list[NodeProcess]:
    """Write the layout, its secrets (the Raft one generated once) and the node configs."""
    layout.save()
    layout.write_secrets(tokens={"admin": admin_token})
    layout.write_configs()
    return [NodeProcess(layout, spec.name) for spec in layout.nodes]
