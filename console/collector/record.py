"""Write one observation into Node and Cluster rows, journaling what changed.

Events go out only on a change against the rows as they were, so a restarted collector
picks up where the last one left off without repeating itself. Transitions from or to
"unknown" (a node's first sighting, or while it does not answer) are covered by
node.unreachable / node.recovered, not node.state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from console.clusters.models import Cluster, Node, Release
from console.collector.collector_config import CollectorConfig
from console.collector.observe import NodePoll, Observation, Summary
from console.events import journal
from daemon.contract import ClusterView, Member, NodeHealth

ACTOR = "collector"
# name -> (pk, match_index, lag_entries, lag_ms): a member's lag columns as last written
Lags = dict[str, tuple[int, int | None, int | None, float | None]]


@dataclass
class Outcome:
    changed: bool  # an event was appended: poll faster for a while
    leader_url: str | None  # where to ask first next time (and where to read the feed)
    reachable_urls: list[str]


LAG_FIELDS = ("match_index", "lag_entries", "lag_ms")


def write_lags(nodes: list[Node]) -> None:
    """One UPDATE of the lag columns of these nodes. The statement bulk_update would
    send, written out: building it through the ORM's expressions took a tenth of the
    collector's time with ten clusters (py-spy, issue 16)."""
    quote = connection.ops.quote_name
    pk = quote(Node._meta.pk.column)
    sets: list[str] = []
    params: list[Any] = []
    for name in LAG_FIELDS:
        field = Node._meta.get_field(name)
        column, kind = quote(field.column), field.db_type(connection)
        whens = " ".join([f"WHEN %s THEN CAST(%s AS {kind})"] * len(nodes))
        sets.append(f"{column} = CASE {pk} {whens} ELSE {column} END")
        for node in nodes:
            params += [node.pk, getattr(node, name)]
    ids = ", ".join(["%s"] * len(nodes))
    params += [node.pk for node in nodes]
    sql = f"UPDATE {quote(Node._meta.db_table)} SET {', '.join(sets)} WHERE {pk} IN ({ids})"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def activate_release(name: str, event: Any) -> None:
    """A verified release some node now runs becomes active (journaled once)."""
    changed = Release.objects.filter(name=name, status=Release.Status.VERIFIED).update(
        status=Release.Status.ACTIVE
    )
    if changed:
        nodes = list(
            Node.objects.filter(release=name, removed=False).values_list("name", flat=True)
        )
        event("release.active", release=name, nodes=nodes)


def digest_mismatch(views: dict[str, tuple[int | None, str | None]]) -> dict | None:
    """{node: (appliedIndex, digest)} → the first index at which reachable nodes disagree,
    as {"index", "digests"}, or None. Nodes at different indexes are not comparable."""
    by_index: dict[int, dict[str, str]] = {}
    for name, (index, digest) in views.items():
        if index is not None and digest:
            by_index.setdefault(index, {})[name] = digest
    for index in sorted(by_index):
        digests = by_index[index]
        if len(set(digests.values())) > 1:
            return {"index": index, "digests": dict(sorted(digests.items()))}
    return None


def won_election(
    view: NodeHealth | None, name: str, cluster_view: ClusterView | None
) -> NodeHealth | None:
    """A node's own view, brought up to date when the cluster view names it leader.

    All polls of a tick run at once, so a node asked a moment before it won an election
    still says "candidate" while the cluster view, read a moment later, names it leader
    of that term: the dashboard showed a leader banner over a candidate row until the
    next poll. A node named leader of term T did win term T, so its older report (a
    term no later than T) is read as leader of T. A newer report (a later term) stands.
    """
    if view is None or cluster_view is None or cluster_view.leader != name:
        return view
    if view.is_leader or view.term > cluster_view.term:
        return view
    return dataclasses.replace(view, role="leader", term=cluster_view.term)


class Recorder:
    """Applies observations of one cluster; remembers what the rows cannot hold."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.last_mismatch_index: int | None = None

    def apply(self, cluster: Cluster, obs: Observation) -> Outcome:
        # savepoint=False: inside the collector's own transaction (the chart sample goes
        # in the same commit) no savepoint is needed; on its own it is a transaction.
        with transaction.atomic(savepoint=False):
            self.events = 0
            self.cluster = cluster
            first_poll = cluster.last_polled_at is None
            nodes = {n.name: n for n in cluster.nodes.all()}
            polls = {p.name: p for p in obs.polls if p.name}
            self._sync_members(nodes, polls, obs.summary, quiet=first_poll)
            members = {name: n for name, n in nodes.items() if not n.removed}
            entries = self._entries(obs.summary)
            cluster_view = obs.summary.cluster_view if obs.summary else None
            for name, node in members.items():
                poll = polls.get(name)
                view = won_election(poll.view, name, cluster_view) if poll else None
                self._update_node(node, view, entries.get(name), obs.at)
            self._check_digests(members)
            self._update_cluster(cluster, obs, members, quiet=first_poll)
            leader = members.get(cluster.leader_name)
            return Outcome(
                changed=self.events > 0,
                leader_url=leader.http_url if leader is not None and leader.reachable else None,
                reachable_urls=[n.http_url for n in members.values() if n.reachable],
            )

    def apply_summary(
        self, cluster: Cluster, obs: Observation, lags: Lags, also: tuple[str, ...] = ()
    ) -> bool:
        """A sample tick (cadence.py): only what the leader's summary says, per-member lag
        and the cluster row's commit index and lag; node rows whose lag did not move are
        not written. `lags` holds the lag columns as this method last wrote them (empty
        after a full poll: then they are read). True if an event was journaled (lag
        crossed its threshold). `also`: more cluster columns the caller set, written in the
        same UPDATE (the sample tick's feed cursor)."""
        assert obs.summary is not None
        view = obs.summary.cluster_view
        with transaction.atomic(savepoint=False):
            self.events = 0
            self.cluster = cluster
            entries = view.by_name
            if not lags:
                members = cluster.nodes.filter(removed=False, name__in=list(entries))
                fields = ("name", "pk", "match_index", "lag_entries", "lag_ms")
                lags.update({n[0]: n[1:] for n in members.values_list(*fields)})
            moved = []
            for name, entry in entries.items():
                if name not in lags:
                    continue
                pk, *before = lags[name]
                node = Node(pk=pk, name=name, cluster=cluster)
                node.match_index, node.lag_entries, node.lag_ms = before
                self._apply_lag(node, entry)
                after = (node.match_index, node.lag_entries, node.lag_ms)
                if list(after) != before:
                    moved.append(node)
                    lags[name] = (pk, *after)
            if moved:
                write_lags(moved)
            cluster.commit_index = view.commit_index or cluster.commit_index
            cluster.replication_lag_ms = view.replication_lag_ms
            cluster.last_polled_at = obs.at
            fields = ["commit_index", "replication_lag_ms", "last_polled_at", *also]
            cluster.save(update_fields=fields)
            return self.events > 0

    def _event(self, kind: str, **payload: Any) -> None:
        journal.append(kind, actor=ACTOR, cluster=self.cluster, **payload)
        self.events += 1

    @staticmethod
    def _entries(summary: Summary | None) -> dict[str, Member]:
        return summary.cluster_view.by_name if summary is not None else {}

    # ---- membership --------------------------------------------------------
    def _sync_members(
        self,
        nodes: dict[str, Node],
        polls: dict[str, NodePoll],
        summary: Summary | None,
        quiet: bool,
    ) -> None:
        """The member list comes from /health/cluster; without one (nobody answered it),
        nodes identified from seed URLs are still registered so they show up."""
        if summary is not None:
            listed: dict[str, Member | None] = dict(self._entries(summary))
        else:
            listed = {name: None for name, p in polls.items() if p.reachable and name not in nodes}
        for name, entry in listed.items():
            poll = polls.get(name)
            url = (entry.http_url if entry else None) or (poll.target.url if poll else "")
            raft = (entry.raft_address if entry else None) or ""
            node = nodes.get(name)
            if node is None:
                nodes[name] = Node.objects.create(
                    cluster=self.cluster, name=name[:63], http_url=url, raft_address=raft
                )
                if not quiet:
                    self._event("member.added", node=name)
                continue
            fields = []
            if url and node.http_url != url:
                node.http_url, fields = url, [*fields, "http_url"]
            if raft and node.raft_address != raft:
                node.raft_address, fields = raft, [*fields, "raft_address"]
            if node.removed:
                node.removed, fields = False, [*fields, "removed"]
                self._event("member.added", node=name)
            if fields:
                node.save(update_fields=fields)
        if summary is None:
            return
        for name, node in nodes.items():
            if name not in listed and not node.removed:
                node.removed, node.reachable, node.role = True, False, "removed"
                node.save(update_fields=["removed", "reachable", "role"])
                self._event("member.removed", node=name)

    # ---- one node ----------------------------------------------------------
    def _update_node(
        self, node: Node, view: NodeHealth | None, entry: Member | None, at: datetime
    ) -> None:
        never_polled = node.last_polled_at is None
        was_reachable, was_known = node.reachable, node.role not in ("unknown", "removed")
        before = (node.role, node.draining, node.version)
        release_before = node.release
        node.last_polled_at = at
        if view is None:
            node.reachable, node.role = False, "unknown"
            if was_reachable or never_polled:
                last_seen = node.last_seen_at.isoformat() if node.last_seen_at else None
                self._event("node.unreachable", node=node.name, last_seen=last_seen)
        else:
            self._apply_view(node, view)
            node.reachable, node.last_seen_at = True, at
            if not was_reachable and not never_polled:
                self._event("node.recovered", node=node.name)
            elif was_known and (node.role, node.draining, node.version) != before:
                self._event(
                    "node.state",
                    node=node.name,
                    role=node.role,
                    draining=node.draining,
                    version=node.version,
                )
        self._apply_lag(node, entry)
        node.save()
        if node.release and node.release != release_before:
            # Journaled once per change (the first poll of a node counts: it says what it runs).
            self._event("node.release", node=node.name, before=release_before, after=node.release)
            activate_release(node.release, self._event)

    @staticmethod
    def _apply_view(node: Node, view: NodeHealth) -> None:
        node.role = view.role[:16]
        node.term = view.term
        node.commit_index = view.commit_index
        node.applied_index = view.applied_index
        node.draining = view.draining
        node.version = view.version[:64]
        node.digest = view.digest[:64]
        if view.disk is not None:
            node.data_dir_bytes = view.disk.data_dir_bytes
        node.code_version = view.code_version
        node.max_code_version = view.max_code_version
        if view.build is not None:
            node.release = view.build.release[:63]
            node.build_commit = view.build.commit[:40]

    def _apply_lag(self, node: Node, entry: Member | None) -> None:
        """Lag is known only to the leader; an entry without it leaves the last value."""
        if entry is None:
            return
        if entry.match_index is not None:
            node.match_index = entry.match_index
        if entry.lag_entries is not None:
            node.lag_entries = entry.lag_entries
        lag_ms = entry.lag_ms
        if lag_ms is None:
            return
        threshold = self.config.lag_threshold_ms
        was_high = node.lag_ms is not None and node.lag_ms > threshold
        node.lag_ms = float(lag_ms)
        if node.lag_ms > threshold and not was_high:
            self._event("lag.high", node=node.name, lag_ms=node.lag_ms, threshold=threshold)
        elif node.lag_ms <= threshold and was_high:
            self._event("lag.normal", node=node.name, lag_ms=node.lag_ms)

    def _check_digests(self, members: dict[str, Node]) -> None:
        mismatch = digest_mismatch(
            {n.name: (n.applied_index, n.digest) for n in members.values() if n.reachable}
        )
        if mismatch is not None and mismatch["index"] != self.last_mismatch_index:
            self._event("digest.mismatch", **mismatch)
        if mismatch is not None:
            self.last_mismatch_index = mismatch["index"]

    # ---- the cluster row -----------------------------------------------------
    def _update_cluster(
        self, cluster: Cluster, obs: Observation, members: dict[str, Node], quiet: bool
    ) -> None:
        view = obs.summary.cluster_view if obs.summary else None
        if view is not None:
            leader = view.leader or ""
            has_quorum = view.has_quorum
            cluster.term = view.term or cluster.term
            cluster.commit_index = view.commit_index or cluster.commit_index
            cluster.cluster_size = view.cluster_size or len(members)
            cluster.replication_lag_ms = view.replication_lag_ms
        else:  # nobody answered: no leader we can see, no quorum we can vouch for
            leader, has_quorum = "", False
        if leader != cluster.leader_name and not (quiet and not leader):
            self._event(
                "leader.changed",
                **{"from": cluster.leader_name or None, "to": leader or None},
                term=cluster.term,
            )
        if has_quorum != cluster.has_quorum and not (quiet and not has_quorum):
            self._event("cluster.quorum", has_quorum=has_quorum)
        cluster.leader_name, cluster.has_quorum = leader[:63], has_quorum
        cluster.last_polled_at = obs.at
        cluster.save(
            update_fields=[
                "leader_name",
                "term",
                "commit_index",
                "has_quorum",
                "cluster_size",
                "replication_lag_ms",
                "last_polled_at",
            ]
        )
