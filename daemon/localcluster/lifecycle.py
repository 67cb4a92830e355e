"""Restart, stop, start and scale the nodes of a local cluster, step by step.

Plain functions over `LocalNodes` (manager.py), shared by `daemonctl node ...`, the
benchmarks and the console's node manager. Each action checks first (the node exists,
quorum survives), then runs its steps, each reported as it starts and ends; a refusal
or a failed step raises `LifecycleError` with a one-line reason (with the node's last
log lines when it would not start). Membership changes go through the daemon
(`POST`/`DELETE /admin/members`); the layout follows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.contract import quorum_size
from daemon.localcluster import releases
from daemon.localcluster.manager import MIN_CLUSTER, LifecycleError, LocalNodes, Outcome
from daemon.localcluster.polling import wait_for


def restart_node(nodes: LocalNodes, name: str) -> Outcome:
    """Drain, hand leadership away if it leads, stop, start, wait until it rejoined and
    caught up, undrain: the writers see 503s from it (and go elsewhere), never a loss."""
    with nodes.action("restart", name) as outcome:
        with nodes.step("preflight"):
            nodes.layout.node(name)
            if not nodes.process(name).running():
                raise LifecycleError(f"{name} is not running; start it instead")
            nodes.check_quorum_without(name, "restarting")
        _drain_and_stop(nodes, name, outcome)
        _start_and_rejoin(nodes, name, outcome)
    return outcome


def stop_node(nodes: LocalNodes, name: str) -> Outcome:
    """Drain, hand leadership away, stop. Refused when the rest would lack quorum. The
    node stays a member (and drained) until it is started again."""
    with nodes.action("stop", name) as outcome:
        with nodes.step("preflight"):
            nodes.layout.node(name)
            if not nodes.process(name).running():
                outcome.detail["alreadyStopped"] = True
                return outcome
            nodes.check_quorum_without(name, "stopping")
        _drain_and_stop(nodes, name, outcome)
    return outcome


def start_node(nodes: LocalNodes, name: str) -> Outcome:
    """Start a stopped node, wait until it rejoined and caught up, undrain it."""
    with nodes.action("start", name) as outcome:
        with nodes.step("preflight"):
            nodes.layout.node(name)
            if nodes.process(name).running():
                outcome.detail["alreadyRunning"] = True
                return outcome
        _start_and_rejoin(nodes, name, outcome)
    return outcome


def run_on_release(
    nodes: LocalNodes, name: str, release: str | None, releases_root: Path | None
) -> Outcome:
    """Restart `name` on `release` (None: the checkout), as restart_node does. A node
    that does not come up on it is put back on the release it ran before, and the
    action fails with the node's own last log lines."""
    previous = nodes.layout.release_of(name)
    with nodes.action("run_on", name) as outcome:
        with nodes.step("preflight") as step:
            nodes.layout.node(name)
            if not nodes.process(name).running():
                raise LifecycleError(f"{name} is not running; start it first")
            nodes.check_quorum_without(name, "restarting")
            if release is not None and (
                releases_root is None or not releases.is_installed(releases_root, release)
            ):
                raise LifecycleError(f"release {release!r} is not installed in {releases_root}")
            if release is not None and releases_root is not None:
                _check_code_version(nodes, name, release, releases_root)
            step.detail = (
                f"{previous.release if previous else 'checkout'} -> {release or 'checkout'}"
            )
        _drain_and_stop(nodes, name, outcome)
        with nodes.step("switch release"):
            nodes.layout.run_on(name, release, releases_root)
        try:
            _start_and_rejoin(nodes, name, outcome)
        except LifecycleError:
            nodes.process(name).stop()
            nodes.layout.run_on(name, previous.release if previous else None,
                                previous.root if previous else None)  # fmt: skip
            with nodes.step("put back on the previous release"):
                nodes.start_and_wait(name)
                nodes.set_draining(name, False)
            raise
        outcome.detail["release"] = release
    return outcome


def _check_code_version(nodes: LocalNodes, name: str, release: str, root: Path) -> None:
    """A release that cannot apply the code version the cluster has enabled would stop
    applying the log at once: refused before anything is stopped."""
    supported = int(releases.inspect(root, release)["maxCodeVersion"])
    health = nodes.health(nodes.layout.node(name)) or {}
    enabled = health.get("codeVersion") or 0
    if supported < enabled:
        raise LifecycleError(
            f"refused: release {release} supports code versions up to {supported}, but the "
            f"cluster has code version {enabled} enabled; it could not apply the log"
        )


def _drain_and_stop(nodes: LocalNodes, name: str, outcome: Outcome) -> None:
    with nodes.step("drain", f"{name} takes no new work"):
        nodes.set_draining(name, True)
    with nodes.step("hand leadership away") as step:
        leader = nodes.hand_leadership_away(name)
        step.detail = f"leadership moved to {leader}" if leader else f"{name} was not the leader"
        outcome.detail["leadershipMovedTo"] = leader
    with nodes.step("stop") as step:
        code = nodes.process(name).stop()
        step.detail = f"stopped (exit code {code})" if code is not None else "stopped"


def _start_and_rejoin(nodes: LocalNodes, name: str, outcome: Outcome) -> None:
    with nodes.step("start") as step:
        nodes.start_and_wait(name)
        release = nodes.process(name).release
        step.detail = f"ready, running {release or 'the checkout'}"
    with nodes.step("catch up") as step:
        index = nodes.wait_caught_up(name)
        step.detail = f"applied index {index}"
        outcome.detail["caughtUpIndex"] = index
    with nodes.step("undrain"):
        nodes.set_draining(name, False)


# ---- scale ---------------------------------------------------------------------------------
def scale(nodes: LocalNodes, count: int) -> Outcome:
    """Grow or shrink the membership to `count`, one node at a time: a new node is started,
    added and caught up before the next; a leaving node is removed, then stopped."""
    with nodes.action("scale", None) as outcome:
        with nodes.step("preflight") as step:
            if count < MIN_CLUSTER:
                raise LifecycleError(
                    f"refused: a cluster needs at least {MIN_CLUSTER} members to survive the "
                    f"loss of one (asked for {count})"
                )
            view = nodes.cluster_view()
            members = sorted(n["name"] for n in view["nodes"])
            step.detail = f"{len(members)} members now, {count} wanted"
            outcome.detail.update(before=len(members), after=count)
        while len(members) < count:
            members.append(_add_one(nodes))
        for name in _leaving(members, len(members) - count):
            _remove_one(nodes, name)
            members.remove(name)
        outcome.detail["members"] = sorted(members)
    return outcome


def _index(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _leaving(members: list[str], how_many: int) -> list[str]:
    # The newest nodes (highest index) leave first: the original ones keep their data.
    return sorted(members, key=_index, reverse=True)[: max(0, how_many)]


def _add_one(nodes: LocalNodes) -> str:
    with nodes.step("add node") as step:
        spec = nodes.layout.add_node()
        step.detail = f"{spec.name}: HTTP {spec.http_port}, Raft {spec.raft_port}"
    try:
        with nodes.step(f"start {spec.name}"):
            # It becomes ready only once it is a member and has the log: started here,
            # waited for after the membership change.
            nodes.process(spec.name).start()
        with nodes.step(f"add {spec.name} as a member"):
            target = nodes.leader_spec(avoid=spec.name)
            nodes.call(target, "POST", "/admin/members", spec.peer())
            wait_for(
                lambda: _member_reachable(nodes, spec.name),
                nodes.timeout_s,
                f"{spec.name} a reachable member",
                interval=0.1,
            )
            nodes.start_and_wait(spec.name)
    except LifecycleError:
        # Not a member (or not for long): leave no half-added node behind.
        nodes.process(spec.name).stop()
        if not _is_member(nodes, spec.name):
            nodes.layout.remove_node(spec.name)
        raise
    with nodes.step(f"catch up {spec.name}") as step:
        step.detail = f"applied index {nodes.wait_caught_up(spec.name)}"
    nodes.rewrite_configs()
    return spec.name


def _remove_one(nodes: LocalNodes, name: str) -> None:
    with nodes.step(f"check quorum without {name}"):
        view = nodes.cluster_view(avoid=name)
        remaining = [n for n in view["nodes"] if n["name"] != name]
        reachable = sum(1 for n in remaining if n["reachable"])
        needed = quorum_size(len(remaining))
        if reachable < needed:
            raise LifecycleError(
                f"refused: removing {name} would leave {reachable} of {len(remaining)} "
                f"remaining members reachable, and quorum needs {needed}"
            )
    if nodes.process(name).running():
        with nodes.step(f"drain {name}"):
            nodes.set_draining(name, True)
        with nodes.step(f"hand leadership away from {name}") as step:
            leader = nodes.hand_leadership_away(name)
            step.detail = f"leadership moved to {leader}" if leader else "not the leader"
    with nodes.step(f"remove {name} from the members"):
        nodes.call(nodes.leader_spec(avoid=name), "DELETE", f"/admin/members/{name}")
        wait_for(
            lambda: not _is_member(nodes, name),
            nodes.timeout_s,
            f"{name} gone from the members",
            interval=0.1,
        )
    with nodes.step(f"stop {name}"):
        nodes.process(name).stop()
        nodes.layout.remove_node(name)
        nodes.rewrite_configs()


def _member_reachable(nodes: LocalNodes, name: str) -> bool:
    view = nodes.cluster_view(avoid=name)
    return any(n["name"] == name and n["reachable"] for n in view["nodes"])


def _is_member(nodes: LocalNodes, name: str) -> bool:
    return any(n["name"] == name for n in nodes.cluster_view(avoid=name)["nodes"])


# ---- status --------------------------------------------------------------------------------
def status(nodes: LocalNodes) -> list[dict[str, Any]]:
    """Per node of the layout: its process, what it runs and how it sees itself."""
    rows = []
    for spec in nodes.layout.nodes:
        process = nodes.process(spec.name).status(log_lines=0)
        health = nodes.health(spec) if process.running else None
        build = (health or {}).get("build") or {}
        rows.append(
            {
                "name": spec.name,
                "running": process.running,
                "pid": process.pid,
                "uptimeS": process.uptime_s,
                "release": process.release,
                "reportsRelease": build.get("release"),
                "commit": build.get("commit"),
                "role": (health or {}).get("role"),
                "draining": (health or {}).get("draining"),
                "appliedIndex": (health or {}).get("appliedIndex"),
                "codeVersion": (health or {}).get("codeVersion"),
                "maxCodeVersion": (health or {}).get("maxCodeVersion"),
                "url": spec.url,
            }
        )
    return rows
