"""Typed, frozen views of the daemon's answers (`/health/node`, `/health/cluster`,
`/admin/code-version`), parsed or refused with one `ContractError`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.contract.wire import (
    NODE_ROLES,
    UNKNOWN_ROLE,
    ContractError,
    _kind,
    _object,
    _Reader,
    fault_tolerance,
    quorum_size,
)

# ---- /health/node -----------------------------------------------------------


@dataclass(frozen=True)
class FollowerProgress:
    """The leader's view of one follower's replication (null while unknown)."""

    match_index: int | None
    lag_entries: int | None
    lag_ms: float | None


@dataclass(frozen=True)
class DiskUsage:
    """The node's data dir size and its filesystem's fill (fs fields null if unknown)."""

    data_dir_bytes: int
    fs_used_bytes: int | None = None
    fs_total_bytes: int | None = None
    fs_usage: float | None = None  # 0..1
    full: bool = False  # under the node's reserve: it refuses writes


@dataclass(frozen=True)
class BuildInfo:
    """What a node runs: the release it was started from, its package version, the git
    commit it was built from and whether that tree had uncommitted changes."""

    release: str
    package: str
    commit: str
    dirty: bool


def _build(body: object, what: str) -> BuildInfo:
    read = _Reader(body, what)
    return BuildInfo(
        release=read.text("release"),
        package=read.text("package"),
        commit=read.text("commit"),
        dirty=read.flag("dirty"),
    )


def _opt_build(body: Mapping[str, Any], what: str) -> BuildInfo | None:
    value = body.get("build")
    return None if value is None else _build(value, what)


@dataclass(frozen=True)
class NodeHealth:
    """One node's own view of itself: GET /health/node."""

    name: str
    role: str
    term: int
    commit_index: int
    applied_index: int
    last_log_index: int
    digest: str
    draining: bool
    version: str
    leader: str | None
    has_quorum: bool
    ready: bool
    code_version: int | None = None
    """The state-machine code version the cluster has enabled (as this node applied it)."""
    max_code_version: int | None = None
    """The highest code version this node's build supports."""
    build: BuildInfo | None = None
    raft_ready: bool | None = None
    http_url: str | None = None
    raft_address: str | None = None
    uptime_seconds: float | None = None
    disk: DiskUsage | None = None
    followers: Mapping[str, FollowerProgress] = field(default_factory=dict)
    """Only on the leader: follower name -> progress."""

    @property
    def is_leader(self) -> bool:
        return self.role == "leader"


def _progress(body: object, what: str) -> FollowerProgress:
    read = _Reader(body, what)
    return FollowerProgress(
        match_index=read.opt_integer("matchIndex"),
        lag_entries=read.opt_integer("lagEntries"),
        lag_ms=read.opt_number("lagMs"),
    )


def _disk(body: object) -> DiskUsage:
    read = _Reader(body, "/health/node disk")
    return DiskUsage(
        data_dir_bytes=read.integer("dataDirBytes"),
        fs_used_bytes=read.opt_integer("fsUsedBytes"),
        fs_total_bytes=read.opt_integer("fsTotalBytes"),
        fs_usage=read.opt_number("fsUsage"),
        full=read.body.get("full") is True,
    )


def parse_node_health(body: object) -> NodeHealth:
    """Parse a /health/node answer; ContractError names the first field that is wrong."""
    read = _Reader(body, "/health/node")
    role = read.text("role")
    if role not in NODE_ROLES:
        raise ContractError(f"/health/node: unknown role {role[:20]!r}")
    followers = read.body.get("followers")
    followers = {} if followers is None else _object(followers, "/health/node followers")
    disk = read.body.get("disk")
    raft_ready = read.body.get("raftReady")
    if raft_ready is not None and not isinstance(raft_ready, bool):
        raise ContractError("/health/node: 'raftReady' must be true or false")
    return NodeHealth(
        name=read.text("name"),
        role=role,
        term=read.integer("term"),
        commit_index=read.integer("commitIndex"),
        applied_index=read.integer("appliedIndex"),
        last_log_index=read.integer("lastLogIndex"),
        digest=read.text("digest"),
        draining=read.flag("draining"),
        version=read.text("version"),
        leader=read.opt_text("leader"),
        has_quorum=read.flag("hasQuorum"),
        ready=read.flag("ready"),
        code_version=read.opt_integer("codeVersion"),
        max_code_version=read.opt_integer("maxCodeVersion"),
        build=_opt_build(read.body, "/health/node build"),
        raft_ready=raft_ready,
        http_url=read.opt_text("httpUrl"),
        raft_address=read.opt_text("raftAddress"),
        uptime_seconds=read.opt_number("uptimeSeconds"),
        disk=None if disk is None else _disk(disk),
        followers={
            str(name): _progress(entry, f"/health/node follower {str(name)[:40]!r}")
            for name, entry in followers.items()
        },
    )


# ---- /health/cluster --------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One member as the answering node sees it; most fields are null when unreachable."""

    name: str
    role: str  # a NODE_ROLES value, or "unknown" when unreachable
    reachable: bool
    draining: bool
    version: str | None
    term: int | None
    applied_index: int | None
    commit_index: int | None
    digest: str | None
    http_url: str | None
    raft_address: str | None
    match_index: int | None
    lag_entries: int | None
    lag_ms: float | None
    # What the member says it runs; null while unreachable or from an older node.
    build: BuildInfo | None = None
    code_version: int | None = None
    max_code_version: int | None = None


@dataclass(frozen=True)
class ClusterView:
    """One node's view of the whole cluster: GET /health/cluster."""

    cluster_size: int
    leader: str | None
    replicated: bool
    replication_lag_ms: float
    term: int
    commit_index: int
    has_quorum: bool
    quorum_size: int
    reachable_nodes: int
    fault_tolerance: int
    node: str  # the node that answered
    members: tuple[Member, ...]

    @property
    def releases(self) -> dict[str, list[str]]:
        """Release -> names of the reachable members reporting it: more than one key
        means the cluster runs mixed releases."""
        found: dict[str, list[str]] = {}
        for m in self.members:
            if m.build is not None:
                found.setdefault(m.build.release, []).append(m.name)
        return found

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    @property
    def by_name(self) -> dict[str, Member]:
        return {m.name: m for m in self.members}


def _member(body: object, index: int) -> Member:
    read = _Reader(body, f"/health/cluster nodes[{index}]")
    role = read.text("role")
    if role not in (*NODE_ROLES, UNKNOWN_ROLE):
        raise ContractError(f"/health/cluster nodes[{index}]: unknown role {role[:20]!r}")
    return Member(
        name=read.text("name"),
        role=role,
        reachable=read.flag("reachable"),
        draining=read.flag("draining"),
        version=read.opt_text("version"),
        term=read.opt_integer("term"),
        applied_index=read.opt_integer("appliedIndex"),
        commit_index=read.opt_integer("commitIndex"),
        digest=read.opt_text("digest"),
        http_url=read.opt_text("httpUrl"),
        raft_address=read.opt_text("raftAddress"),
        match_index=read.opt_integer("matchIndex"),
        lag_entries=read.opt_integer("lagEntries"),
        lag_ms=read.opt_number("lagMs"),
        build=_opt_build(read.body, f"/health/cluster nodes[{index}] build"),
        code_version=read.opt_integer("codeVersion"),
        max_code_version=read.opt_integer("maxCodeVersion"),
    )


def parse_cluster_view(body: object) -> ClusterView:
    """Parse a /health/cluster answer; ContractError names the first field that is wrong.

    `quorumSize`, `reachableNodes` and `faultTolerance` are derived when absent, so
    an answer from a node that predates them still parses."""
    read = _Reader(body, "/health/cluster")
    nodes = read.body.get("nodes")
    if not isinstance(nodes, list):
        raise ContractError(f"/health/cluster: 'nodes' must be a list (got {_kind(nodes)})")
    members = tuple(_member(entry, i) for i, entry in enumerate(nodes))
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ContractError("/health/cluster: a member name appears twice in 'nodes'")
    size = read.integer("clusterSize")
    if size < 0:
        raise ContractError("/health/cluster: 'clusterSize' must not be negative")
    reachable = read.body.get("reachableNodes")
    reachable = (
        sum(1 for m in members if m.reachable)
        if reachable is None
        else read.integer("reachableNodes")
    )
    quorum = read.opt_integer("quorumSize")
    tolerance = read.opt_integer("faultTolerance")
    return ClusterView(
        cluster_size=size,
        leader=read.opt_text("leader"),
        replicated=read.flag("replicated"),
        replication_lag_ms=read.number("replicationLag"),
        term=read.integer("term"),
        commit_index=read.integer("commitIndex"),
        has_quorum=read.flag("hasQuorum"),
        quorum_size=quorum_size(size) if quorum is None else quorum,
        reachable_nodes=reachable,
        fault_tolerance=fault_tolerance(size, reachable) if tolerance is None else tolerance,
        node=read.text("node"),
        members=members,
    )


# ---- /admin/code-version ----------------------------------------------------


@dataclass(frozen=True)
class CodeVersion:
    """GET or POST /admin/code-version: the enabled state-machine code version.

    `changed`, `previous` and `members` (name -> the maxCodeVersion it reported) come
    only with a POST."""

    node: str
    code_version: int
    max_code_version: int
    rollback_safe: bool
    note: str
    changed: bool | None = None
    previous: int | None = None
    members: Mapping[str, int | None] = field(default_factory=dict)


def parse_code_version(body: object) -> CodeVersion:
    read = _Reader(body, "/admin/code-version")
    members = read.body.get("members")
    members = {} if members is None else _object(members, "/admin/code-version members")
    changed = read.body.get("changed")
    if changed is not None and not isinstance(changed, bool):
        raise ContractError("/admin/code-version: 'changed' must be true or false")
    return CodeVersion(
        node=read.text("node"),
        code_version=read.integer("codeVersion"),
        max_code_version=read.integer("maxCodeVersion"),
        rollback_safe=read.flag("rollbackSafe"),
        note=read.text("note"),
        changed=changed,
        previous=read.opt_integer("previous"),
        members={
            str(name): _Reader(
                {"v": v}, f"/admin/code-version member {str(name)[:40]!r}"
            ).opt_integer("v")
            for name, v in members.items()
        },
    )
