"""Cut one node's Raft links, and heal the cut: `isolate_node`, `heal_node` and the
partition drill stand on these, whatever runs the nodes.

A manager that can cut by itself (`cut_raft`, `heal_raft`, `is_raft_cut`: the
Kubernetes one, with NetworkPolicies, see `kube_partition`) is asked to, and can cut
any node. Locally: iptables rules on the loopback interface only, matching only that node's Raft
port, each tagged with a comment naming the port. pysyncobj connects from the higher
Raft address to the lower one, so a port cut severs every link of the node with the
lowest Raft address, and only the links to higher peers of any other node;
`cut_isolates` says which. The rules are the only state: `is_cut` reads them back,
and `heal` deletes every tagged rule until none is left, so a heal by any process
(another worker, after a crash) undoes a cut. Callers heal in a `finally`.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from console.runbooks.nodes.base import NodeManager, NodeManagerError

TAG = "console-drill-raft-cut:{port}"


def _rules(port: int) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", TAG.format(port=port), "-j", "DROP"]
    return [
        ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), *tag],
        ["OUTPUT", "-o", "lo", "-p", "tcp", "--sport", str(port), *tag],
    ]


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("iptables") is None:
        raise NodeManagerError("iptables is not installed here; a local partition needs it")
    return subprocess.run(
        ["iptables", "-w", "5", *args], capture_output=True, text=True, check=False
    )


def _native(manager: NodeManager) -> Any:
    """The manager itself when it cuts links on its own, else None (local: iptables)."""
    return manager if callable(getattr(manager, "cut_raft", None)) else None


def raft_port(manager: NodeManager, name: str) -> int:
    address = manager.status(name).raft_address
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise NodeManagerError(f"node {name}'s Raft address {address} is not on loopback")
    return int(port)


def cut_isolates(manager: NodeManager, name: str) -> bool:
    """True when a port cut severs every Raft link of `name` (its address is lowest;
    pysyncobj compares the address strings, so "…:10000" is lower than "…:9999").
    A manager that cuts by itself isolates any node."""
    if _native(manager) is not None:
        return name in manager.names()
    addresses = {other: manager.status(other).raft_address for other in manager.names()}
    return addresses[name] == min(addresses.values())


def is_cut(manager: NodeManager, name: str) -> bool:
    if (native := _native(manager)) is not None:
        return bool(native.is_raft_cut(name))
    listed = _iptables("-S")
    return TAG.format(port=raft_port(manager, name)) in listed.stdout


def cut(manager: NodeManager, name: str) -> int:
    if (native := _native(manager)) is not None:
        return int(native.cut_raft(name))
    port = raft_port(manager, name)
    if is_cut(manager, name):
        return port
    for rule in _rules(port):
        added = _iptables("-I", *rule)
        if added.returncode != 0:
            heal(manager, name)
            raise NodeManagerError(
                f"cutting {name}'s Raft port failed: {added.stderr.strip()[:200]}"
            )
    return port


def heal(manager: NodeManager, name: str) -> int:
    """Delete every tagged rule for the node's port; idempotent."""
    if (native := _native(manager)) is not None:
        return int(native.heal_raft(name))
    port = raft_port(manager, name)
    for rule in _rules(port):
        for _ in range(100):  # a rule inserted twice is deleted twice
            if _iptables("-D", *rule).returncode != 0:
                break
    return port
