"""What a node reports: its own view, readiness, the cluster view and the metrics.

Read-only: nothing here changes state. Constructed by DaemonNode with exactly what
it reads (daemon/node.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from daemon import __version__, build, exposition, rollups
from daemon.cache import ResultCache
from daemon.config import Config
from daemon.contract import fault_tolerance, quorum_size
from daemon.directory import Directory
from daemon.executor import Executor
from daemon.peers import Peers
from daemon.raft import RaftNode

LAG_REPLICATED_MS = 100.0  # the runbook's critical replication-lag threshold


class Reporting:
    def __init__(
        self,
        *,
        config: Config,
        raft: RaftNode,
        executor: Executor,
        cache: ResultCache,
        directory: Directory,
        peers: Peers,
        local_rollup: list,
        started_at: float,
    ) -> None:
        self.name = config.node_name
        self._config = config
        self._raft = raft
        self._state = raft.state
        self._executor = executor
        self._cache = cache
        self._directory = directory
        self._peers = peers
        self._local_rollup = local_rollup  # executions this process ran; the node adds to it
        self._started_at = started_at

    # ---- this node -------------------------------------------------------
    def readiness(self) -> tuple[bool, str, str]:
        if not self._raft.is_ready():
            return False, "starting", "catching up with the cluster log"
        if not self._raft.is_caught_up():
            bound_s = self._raft.catch_up.bound_s
            return False, "behind", f"has not applied the leader's commits for over {bound_s:g} s"
        if self._executor.draining:
            return False, "draining", "node is draining: it takes no new work"
        if not self._raft.has_quorum:
            return False, "no-quorum", "cannot reach a majority of the cluster"
        return True, "ready", ""

    def node_view(self) -> dict[str, Any]:
        view = self._raft.view
        body: dict[str, Any] = {
            "name": self.name,
            "role": self._raft.role,
            "term": view.term,
            "commitIndex": view.commit_index,
            "appliedIndex": view.applied_index,
            "lastLogIndex": view.last_log_index,
            "digest": view.digest,
            "draining": self._executor.draining,
            "version": __version__,
            "codeVersion": self._raft.code_version(),
            "maxCodeVersion": build.current().max_code_version,
            "build": build.current().as_wire(),
            "leader": self._directory.leader_name(),
            "hasQuorum": self._raft.has_quorum,
            "ready": self.readiness()[0],  # what /health/ready answers
            "raftReady": self._raft.is_ready(),
            "httpUrl": self._config.advertise_http_url,
            "raftAddress": self._config.raft_advertise,
            "uptimeSeconds": round(time.time() - self._started_at, 1),
            "disk": self._raft.disk_usage(),
            "raftDivergences": self._raft.divergences,  # applied entries replaced: must be 0
        }
        progress = self._raft.follower_progress()
        if progress:
            body["followers"] = {self._directory.name_of(a): p for a, p in progress.items()}
        return body

    # ---- the cluster -----------------------------------------------------
    async def cluster_view(self) -> dict[str, Any]:
        directory = self._directory.entries()
        addresses = self._raft.member_addresses()
        by_address = {entry["raftAddress"]: name for name, entry in directory.items()}
        names = [by_address.get(a, a) for a in addresses]
        own = self.node_view()
        others = [n for n in names if n != self.name]
        fetched = await asyncio.gather(
            *(self._peers.node_view(directory[n]["httpUrl"]) for n in others if n in directory)
        )
        views: dict[str, dict | None] = {self.name: own}
        views.update(zip([n for n in others if n in directory], fetched, strict=True))
        leader = own["leader"]
        leader_view = views.get(leader) if leader else None
        followers = (leader_view or {}).get("followers", {})
        nodes = []
        for name in sorted(names):
            view = views.get(name)
            entry = directory.get(name, {})
            node: dict[str, Any] = {
                "name": name,
                "role": (view or {}).get("role", "unknown"),
                # A member the leader has never heard from over Raft is not reachable,
                # whatever its HTTP URL answers (issue 14: poisoned members).
                "reachable": view is not None
                and (followers.get(name, {}).get("matchIndex", 0) is not None),
                "draining": (view or {}).get("draining", self._state.draining_of(name)),
                "version": (view or {}).get("version"),
                "term": (view or {}).get("term"),
                "appliedIndex": (view or {}).get("appliedIndex"),
                "commitIndex": (view or {}).get("commitIndex"),
                "digest": (view or {}).get("digest"),
                # What the member says it runs (null while unreachable, or from a node
                # that predates builds): a rolling upgrade reads these to see mixed releases.
                "build": (view or {}).get("build"),
                "codeVersion": (view or {}).get("codeVersion"),
                "maxCodeVersion": (view or {}).get("maxCodeVersion"),
                "httpUrl": entry.get("httpUrl"),
                "raftAddress": entry.get("raftAddress"),
            }
            if name == leader and leader_view is not None:
                node.update(matchIndex=leader_view["lastLogIndex"], lagEntries=0, lagMs=0.0)
            elif name in followers:
                node.update(followers[name])
            else:
                node.update(matchIndex=None, lagEntries=None, lagMs=None)
            nodes.append(node)
        size = len(names)
        reachable = sum(1 for n in nodes if n["reachable"])
        lags = [n["lagMs"] for n in nodes if n["reachable"] and n["lagMs"] is not None]
        lag_ms = round(max(lags, default=0.0), 3)
        has_quorum = own["hasQuorum"]
        return {
            "clusterSize": size,
            "leader": leader,
            "replicated": bool(
                has_quorum and reachable == size and lag_ms <= LAG_REPLICATED_MS and leader_view
            ),
            "replicationLag": lag_ms,
            "term": own["term"],
            "commitIndex": own["commitIndex"],
            "hasQuorum": has_quorum,
            "quorumSize": quorum_size(size),
            "reachableNodes": reachable,
            "faultTolerance": fault_tolerance(size, reachable),
            "node": self.name,
            "nodes": nodes,
        }

    # ---- metrics ---------------------------------------------------------
    def metrics_summary(self, window_minutes: int | None) -> dict[str, Any]:
        now = time.time()
        rollup = self._state.rollup_window(rollups.minute_of(now), window_minutes)
        cache = self._cache.stats()
        body: dict[str, Any] = {
            **exposition.summarize(rollup),
            "activeCount": self._executor.active_count,
            "queuedCount": self._executor.queued_count,
            "cacheSize": cache["size"],
            "cacheHits": cache["hits"],
            "cacheMisses": cache["misses"],
            "cacheHitRate": cache["hitRate"],
            "cache": cache,
            "node": self.name,
        }
        if window_minutes is not None:
            body["windowMinutes"] = window_minutes
        return body

    async def metrics_window(self, window_minutes: int) -> dict[str, Any]:
        body = self.metrics_summary(window_minutes)
        now = time.time()
        health = self._state.health_window(rollups.minute_of(now), window_minutes, now)
        cluster = await self.cluster_view()
        cluster_health = {
            "replicationLag": cluster["replicationLag"],
            "failoverCount": health["failoverCount"],
            "uptime": round(health["uptimeMinutes"] / 60, 2),
        }
        # The runbook's monthly jq builds clusterHealth from top-level fields
        # (`clusterHealth: {replicationLag, failoverCount, uptime}`), so they
        # are served at both levels.
        body.update(cluster_health)
        body["clusterHealth"] = {
            **cluster_health,
            "clusterSize": cluster["clusterSize"],
            "leader": cluster["leader"],
        }
        return body

    def prometheus_snapshot(self) -> dict[str, Any]:
        view = self._raft.view
        progress = self._raft.follower_progress()
        lag = {self._directory.name_of(a) or a: p["lagMs"] for a, p in progress.items()}
        queue = self._executor.queue_snapshot()
        return {
            "node": self.name,
            "version": __version__,
            "build": build.current().as_wire(),
            "local": self._local_rollup,
            "cluster": self._state.rollup_window(0, None),
            "raft": {
                "term": view.term,
                "commitIndex": view.commit_index,
                "appliedIndex": view.applied_index,
                "isLeader": self._raft.is_leader,
                "hasQuorum": self._raft.has_quorum,
                "clusterSize": len(self._raft.member_addresses()),
                "failoverCount": self._state.failover_count,
                "replicationLagMs": lag,
                "maxReplicationLagMs": max((v for v in lag.values() if v is not None), default=0.0),
            },
            "executor": {
                "active": queue["active"],
                "queued": queue["queued"],
                "capacity": queue["capacity"],
                "maxConcurrent": queue["maxConcurrent"],
                "draining": queue["draining"],
            },
            "cache": self._cache.stats(),
            "journalBytes": self._raft.journal_bytes(),
            "dataDirBytes": self._raft.data_dir_bytes(),
            "uptimeSeconds": time.time() - self._started_at,
        }
