"""What a node reports: the cluster view and the metrics documents.

A mixin of DaemonNode (daemon/node.py), split out to keep modules short; it uses
the node's raft, state, executor, cache, directory and HTTP client.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from daemon import __version__, exposition, rollups
from daemon.contract import fault_tolerance, quorum_size

LAG_REPLICATED_MS = 100.0  # the runbook's critical replication-lag threshold


class Reporting:
    async def _peer_view(self, url: str) -> dict | None:
        assert self.http is not None
        try:
            response = await self.http.get(f"{url}/health/node", headers=self._internal_auth)
            if response.status_code == 200:
                return response.json()
        except (httpx.HTTPError, ValueError):
            pass
        return None

    async def cluster_view(self) -> dict[str, Any]:
        directory = self.directory()
        addresses = self.raft.member_addresses()
        by_address = {entry["raftAddress"]: name for name, entry in directory.items()}
        names = [by_address.get(a, a) for a in addresses]
        own = self.node_view()
        others = [n for n in names if n != self.name]
        fetched = await asyncio.gather(
            *(self._peer_view(directory[n]["httpUrl"]) for n in others if n in directory)
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
                "reachable": view is not None,
                "draining": (view or {}).get("draining", self.state.draining_of(name)),
                "version": (view or {}).get("version"),
                "term": (view or {}).get("term"),
                "appliedIndex": (view or {}).get("appliedIndex"),
                "commitIndex": (view or {}).get("commitIndex"),
                "digest": (view or {}).get("digest"),
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
        rollup = self.state.rollup_window(rollups.minute_of(now), window_minutes)
        cache = self.cache.stats()
        body: dict[str, Any] = {
            **exposition.summarize(rollup),
            "activeCount": self.executor.active_count,
            "queuedCount": self.executor.queued_count,
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
        health = self.state.health_window(rollups.minute_of(now), window_minutes, now)
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
        view = self.raft.view
        progress = self.raft.follower_progress()
        lag = {self.name_of(a) or a: p["lagMs"] for a, p in progress.items()}
        queue = self.executor.queue_snapshot()
        return {
            "node": self.name,
            "version": __version__,
            "local": self.local_rollup,
            "cluster": self.state.rollup_window(0, None),
            "raft": {
                "term": view.term,
                "commitIndex": view.commit_index,
                "appliedIndex": view.applied_index,
                "isLeader": self.raft.is_leader,
                "hasQuorum": self.raft.has_quorum,
                "clusterSize": len(self.raft.member_addresses()),
                "failoverCount": self.state.failover_count,
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
            "cache": self.cache.stats(),
            "journalBytes": self.raft.journal_bytes(),
            "dataDirBytes": self.raft.data_dir_bytes(),
            "uptimeSeconds": time.time() - self.started_at,
        }
