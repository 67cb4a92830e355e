"""Faults the robustness run injects from outside the nodes, each with its heal.

Every fault is `inject(ctx, target) -> heal()`; the run holds it for a while and
heals it. Network faults need the private network namespace the run is in
(netns.enter refuses otherwise); disk faults need each node's data dir on a tmpfs
the run mounted (in its private mount namespace).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.chaos import netns
from tests.chaos.cluster_ops import lowest_raft_address, make_leader
from tests.chaos.delay_proxy import RaftDelay
from tests.cluster_harness import Cluster, Node, wait_for

Heal = Callable[[], None]


@dataclass
class Fault:
    name: str
    # Which node it hits: "leader", "follower", "any", "lowest-leader" or
    # "lowest-follower" (the node every peer dials: a port-based cut isolates
    # only it; see netns.RaftCut), or "middle" (see partition-link).
    target: str
    inject: Callable[[Cluster, Node], Heal]


def _kill9(cluster: Cluster, node: Node) -> Heal:
    cluster.kill(node, signal.SIGKILL)
    return lambda: cluster.start_node(node)


def _pause(cluster: Cluster, node: Node) -> Heal:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGSTOP)
    return lambda: node.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]


def _partition(cluster: Cluster, node: Node) -> Heal:
    cut = netns.RaftCut(node.raft_port)
    cut.drop()
    return cut.heal


class Unsupported(Exception):
    """This machine cannot inject the fault (e.g. the kernel lacks sch_netem)."""


def _netem(spec: list[str]) -> Callable[[Cluster, Node], Heal]:
    """Delay on loopback in the run's namespace (tc netem): every Raft link, and
    the clients' HTTP, which shares loopback, sees it."""

    def inject(cluster: Cluster, node: Node) -> Heal:
        added = subprocess.run(
            ["tc", "qdisc", "add", "dev", "lo", "root", "netem", *spec],
            capture_output=True,
            text=True,
            check=False,
        )
        if added.returncode != 0:
            raise Unsupported(f"tc netem: {added.stderr.strip()}")
        return lambda: subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)

    return inject


def _raft_delay(delay_s: float, jitter_s: float) -> Callable[[Cluster, Node], Heal]:
    """Every Raft link delayed by delay ± jitter each way through userspace proxies
    (delay_proxy; needs no netem); HTTP is spared. The heal says how many Raft
    connections went through the proxies, so a fault that delayed nothing shows."""

    def inject(cluster: Cluster, node: Node) -> Heal:
        delay = RaftDelay([each.raft_port for each in cluster.nodes], delay_s, jitter_s)
        delay.inject()

        def heal() -> None:
            heal.observed = {"proxiedConnections": delay.proxy.connections}  # type: ignore[attr-defined]
            delay.heal()

        return heal

    return inject


def _raft_loss(probability: float) -> Callable[[Cluster, Node], Heal]:
    """Random loss of packets on every node's Raft port (iptables' statistic
    match, which needs no netem); HTTP is spared."""

    def inject(cluster: Cluster, node: Node) -> Heal:
        rules = []
        for each in cluster.nodes:
            for chain, direction in (("INPUT", "--dport"), ("OUTPUT", "--sport")):
                rules.append(
                    [chain, "-p", "tcp", direction, str(each.raft_port), "-m", "statistic",
                     "--mode", "random", "--probability", str(probability), "-j", "DROP"]
                )  # fmt: skip
        for rule in rules:
            subprocess.run(["iptables", "-A", *rule], check=True)

        def heal() -> None:
            for rule in rules:
                subprocess.run(["iptables", "-D", *rule], check=False)

        return heal

    return inject


def fill_disk(data_dir: Path) -> Path:
    """Write zeros into the data dir's filesystem until it refuses (ENOSPC)."""
    filler = data_dir / "chaos-filler.bin"
    chunk = b"\0" * (256 << 10)
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    return filler


def _disk_full(cluster: Cluster, node: Node) -> Heal:
    filler = fill_disk(node.data_dir)
    return lambda: filler.unlink(missing_ok=True)


def _restart_all(cluster: Cluster, node: Node) -> Heal:
    for each in cluster.nodes:
        cluster.kill(each, signal.SIGKILL)

    def heal() -> None:
        for each in cluster.nodes:
            cluster.start_node(each)

    return heal


def _membership_leader_change(cluster: Cluster, node: Node) -> Heal:
    """A fourth node joins, and the leader is killed while the change is in flight;
    healed: the leader restarts, the join is finished (retried) and undone, so the
    run goes on with its three tmpfs-backed nodes."""
    joining = cluster.add_node()
    body = {"name": joining.name, "raftAddress": joining.raft_address, "httpUrl": joining.url}
    answers: list[int | str] = []

    def join() -> None:
        try:
            answers.append(cluster.post(node, "/admin/members", json=body, timeout=20).status_code)
        except httpx.HTTPError as exc:
            answers.append(type(exc).__name__)

    joiner = threading.Thread(target=join)
    joiner.start()
    time.sleep(0.05)
    cluster.kill(node, signal.SIGKILL)

    def heal() -> None:
        cluster.start_node(node)
        joiner.join(timeout=30)
        survivors = [n for n in cluster.nodes if n is not joining]

        def member() -> bool:
            names = {m["name"] for m in cluster.cluster_view(survivors[0])["nodes"]}
            if joining.name in names:
                return True
            cluster.post(cluster.leader(), "/admin/members", json=body, timeout=20)
            return False

        wait_for(member, timeout=60, interval=1.0, what=f"{joining.name} to be a member")
        cluster.wait_ready([joining])

        def removed() -> bool:
            return (
                cluster.delete(cluster.leader(), f"/admin/members/{joining.name}").status_code
                == 200
            )

        wait_for(removed, timeout=60, interval=1.0, what=f"{joining.name} to be removed")
        assert joining.process is not None
        joining.process.stop()
        cluster.nodes.remove(joining)

    return heal


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("kill9-leader", "leader", _kill9),
        Fault("kill9-follower", "follower", _kill9),
        Fault("pause-leader", "leader", _pause),
        Fault("pause-follower", "follower", _pause),
        Fault("partition-leader", "lowest-leader", _partition),
        Fault("partition-follower", "lowest-follower", _partition),
        # Only the link between the two higher nodes (the middle one's port carries
        # just the highest one's connection), with the highest leading: the middle
        # node loses its leader but still hears the lowest, which must not let it
        # depose a working leader (PreVote) while the cluster keeps writing.
        Fault("partition-link", "middle", _partition),
        # netem where the kernel has it (skipped otherwise), and the same delay through
        # userspace proxies on the Raft links, which any kernel can do.
        Fault("netem-delay", "any", _netem(["delay", "30ms", "10ms"])),
        Fault("raft-delay", "any", _raft_delay(0.03, 0.01)),
        Fault("raft-loss", "any", _raft_loss(0.1)),
        Fault("disk-full-leader", "leader", _disk_full),
        Fault("disk-full-follower", "follower", _disk_full),
        Fault("restart-all", "any", _restart_all),
        Fault("membership-leader-change", "leader", _membership_leader_change),
    )
}


def pick_target(cluster: Cluster, fault: Fault) -> Node:
    """The node a fault hits, arranging leadership first where it matters."""
    if fault.target in ("lowest-leader", "lowest-follower"):
        lowest = lowest_raft_address(cluster)
        if fault.target == "lowest-leader":
            make_leader(cluster, lowest)
        else:
            make_leader(cluster, next(n for n in cluster.nodes if n is not lowest))
        return lowest
    if fault.target == "middle":
        _low, middle, high = sorted(cluster.nodes, key=lambda n: n.raft_address)[:3]
        make_leader(cluster, high)
        return middle
    leader = cluster.leader()
    if fault.target == "leader":
        return leader
    if fault.target == "follower":
        return next(n for n in cluster.nodes if n is not leader)
    return leader
