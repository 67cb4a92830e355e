"""A running node: Raft, executor, cache and the cluster view, behind plain methods.

The HTTP layer (api.py) only parses, authorises and maps exceptions to codes;
what a request means lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from daemon import __version__, metrics
from daemon.auth import TokenBook, internal_token
from daemon.batcher import RecordBatcher
from daemon.cache import ResultCache
from daemon.config import NAME_RE, Config
from daemon.executor import Executor
from daemon.handlers import HandlerPolicy
from daemon.operations import DefinitionError, validate_definition
from daemon.raft import NotCommitted, RaftNode

log = logging.getLogger("daemon.node")

PEER_TIMEOUT_S = 0.5
LAG_REPLICATED_MS = 100.0  # the runbook's critical replication-lag threshold
UPTIME_MARK_EVERY_S = 15.0
RESULT_MAX_CHARS = 1024
RAFT_ADDRESS_RE = re.compile(r"[A-Za-z0-9.\-]{1,253}:\d{1,5}")


class ApiError(Exception):
    """A request that cannot be served; becomes ``{"error": message}`` with status."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def iso(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def small_result(result: Any) -> Any:
    """Every record is replicated and kept in a window of FEED_WINDOW entries, so a
    large handler result is cut to a preview rather than multiplied across nodes."""
    if result is None:
        return None
    text = json.dumps(result, default=str)
    if len(text) <= RESULT_MAX_CHARS:
        return result
    return {"truncated": True, "preview": text[:RESULT_MAX_CHARS]}


def quorum_size(members: int) -> int:
    return members // 2 + 1


class DaemonNode:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.name = config.node_name
        self.started_at = time.time()
        self.tokens = TokenBook(config)
        self.policy = HandlerPolicy(
            http_allow=config.http_allow,
            python_allow=config.python_allow,
            shell_enabled=config.shell_enabled,
            shell_allow=config.shell_allow,
        )
        self.cache = ResultCache(config.cache_max_size)
        self.executor = Executor(config.max_concurrent, config.queue_size, self.policy, self.cache)
        self.local_rollup = metrics.new_rollup()  # executions this process ran
        self.raft = RaftNode(config)
        self.state = self.raft.state
        self.batcher = RecordBatcher(self.raft)
        self.http: httpx.AsyncClient | None = None
        self.shutting_down = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._pending_records: dict[str, dict] = {}
        self._internal_auth = {"Authorization": f"Bearer {internal_token(config.raft.password)}"}

    # ---- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        self.raft.bind_loop(asyncio.get_running_loop())
        self.raft.on_role_change(self._on_role_change)
        self.http = httpx.AsyncClient(timeout=PEER_TIMEOUT_S, verify=False)
        self._spawn(self._leader_duties())
        self._spawn(self._restore_drain_flag())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.http is not None:
            await self.http.aclose()
        await asyncio.to_thread(self.raft.destroy)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_role_change(self, role: int) -> None:
        if role == 2:
            log.info("became leader in term %d", self.raft.obj.raftCurrentTerm)
            self._spawn(self._note_leader())
        else:
            log.info("now %s", self.raft.role)

    async def _note_leader(self) -> None:
        term = self.raft.obj.raftCurrentTerm
        try:
            await self.raft.submit(
                self.state.note_leader,
                term,
                self.name,
                time.time(),
                confirmed=lambda: self.state.leader_term >= term,
            )
        except NotCommitted:
            log.warning("could not record leadership for term %d", term)

    async def _leader_duties(self) -> None:
        """While leader, mark each minute as up (the uptime metric)."""
        while True:
            await asyncio.sleep(UPTIME_MARK_EVERY_S if self.raft.is_leader else 1.0)
            if not self.raft.is_leader:
                continue
            minute = metrics.minute_of(time.time())
            if minute in self.state.up_minutes:
                continue
            with contextlib.suppress(NotCommitted):
                await self.raft.submit(
                    self.state.mark_up,
                    minute,
                    confirmed=lambda m=minute: m in self.state.up_minutes,
                )

    async def _restore_drain_flag(self) -> None:
        """A node drained before a restart stays drained until undrained."""
        while not self.raft.is_ready():
            await asyncio.sleep(0.05)
        if self.state.draining_of(self.name):
            log.info("restoring drained state from the replicated flag")
            self.executor.drain()

    # ---- directory -------------------------------------------------------
    def directory(self) -> dict[str, dict[str, str]]:
        """name -> {raftAddress, httpUrl}: config first, replicated members override."""
        entries = {
            self.name: {
                "raftAddress": self.config.raft_advertise,
                "httpUrl": self.config.advertise_http_url,
            }
        }
        for peer in self.config.peers:
            entries[peer.name] = {"raftAddress": peer.raft_address, "httpUrl": peer.http_url}
        entries.update(self.state.members_snapshot())
        return entries

    def name_of(self, address: str | None) -> str | None:
        if address is None:
            return None
        for name, entry in self.directory().items():
            if entry["raftAddress"] == address:
                return name
        return address

    def leader_name(self) -> str | None:
        return self.name_of(self.raft.leader_address())

    # ---- operations ------------------------------------------------------
    async def define_operation(self, body: Any) -> tuple[bool, dict]:
        now = iso(time.time())
        try:
            op = validate_definition(body, self.policy)
        except DefinitionError as exc:
            raise ApiError(400, str(exc)) from None
        existing = self.state.get_operation(op["id"])
        op["createdAt"] = existing["createdAt"] if existing else now
        op["updatedAt"] = now
        write_id = uuid.uuid4().hex
        await self._commit(self.state.define_operation, write_id, op, write_id=write_id)
        self.executor.invalidate_operation(op["id"])
        return existing is None, self.state.get_operation(op["id"]) or op

    async def find_operation(self, op_id: str) -> dict:
        """The operation, or 404 — but only after catching up with the leader: a
        client whose define went to another node must not see it missing here."""
        op = self.state.get_operation(op_id)
        if op is None and await self.catch_up():
            op = self.state.get_operation(op_id)
        if op is None:
            raise ApiError(404, f"operation '{op_id}' not found")
        return op

    async def catch_up(self, timeout_s: float = 2.0) -> bool:
        """Wait until this node has applied what the leader had committed when
        asked (the Raft read-index idea, over HTTP). False when there is nothing
        to wait for: this node leads, or no leader answers."""
        leader = self.leader_name()
        if leader is None or leader == self.name or self.http is None:
            return False
        try:
            url = self.url_of(leader)
            answer = await self.http.get(f"{url}/health/node", headers=self._internal_auth)
            commit_index = int(answer.json()["commitIndex"])
        except (ApiError, httpx.HTTPError, ValueError, KeyError, TypeError):
            return False
        deadline = time.monotonic() + timeout_s
        while self.raft.view.applied_index < commit_index:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def delete_operation(self, op_id: str) -> None:
        await self.find_operation(op_id)
        write_id = uuid.uuid4().hex
        await self._commit(self.state.delete_operation, write_id, op_id, write_id=write_id)
        self.executor.invalidate_operation(op_id)

    async def _commit(self, method: Any, *args: Any, write_id: str) -> None:
        self._require_quorum()
        try:
            await self.raft.submit(method, *args, confirmed=lambda: self.state.has_write(write_id))
        except NotCommitted as exc:
            raise ApiError(503, f"not committed: {exc}", writeId=write_id) from None

    def _require_quorum(self) -> None:
        if not self.raft.has_quorum:
            raise ApiError(503, "no quorum: this node cannot reach a majority of the cluster")

    async def execute(self, op_id: str, params: dict | None) -> dict:
        op = await self.find_operation(op_id)
        if self.executor.draining:
            raise ApiError(503, f"node {self.name} is draining; send work to another node")
        self._require_quorum()
        outcome = await self.executor.execute(op, params)
        record = {
            "id": uuid.uuid4().hex,
            "operationId": op_id,
            "status": outcome.status,
            "duration": round(outcome.duration_ms, 3),
            "startedAt": iso(outcome.started_at),
            "finishedAt": iso(outcome.finished_at),
            "finishedAtEpoch": outcome.finished_at,
            "node": self.name,
            "attempts": outcome.attempts,
            "cached": outcome.cached,
            "error": outcome.error,
            "result": small_result(outcome.result),
        }
        metrics.add_execution(self.local_rollup, outcome.status, outcome.duration_ms)
        return await self._record(record)

    async def _record(self, record: dict) -> dict:
        rid = record["id"]
        try:
            await self.batcher.commit(record)
        except NotCommitted:
            # The work ran; its record must not be lost. Keep trying in the
            # background (the id makes a late duplicate harmless) and say so.
            self._pending_records[rid] = record
            self._spawn(self._retry_record(record))
            raise ApiError(
                503,
                "executed, but the record is not yet committed on a majority; retrying",
                executionId=rid,
            ) from None
        return self.state.execution_by_id(rid) or record

    async def _retry_record(self, record: dict) -> None:
        rid = record["id"]
        while self.state.execution_by_id(rid) is None:
            try:
                await self.raft.submit(
                    self.state.record_execution,
                    record,
                    confirmed=lambda: self.state.execution_by_id(rid) is not None,
                    timeout_s=30,
                )
            except NotCommitted:
                await asyncio.sleep(1)
        self._pending_records.pop(rid, None)

    # ---- health ----------------------------------------------------------
    def readiness(self) -> tuple[bool, str, str]:
        if not self.raft.is_ready():
            return False, "starting", "catching up with the cluster log"
        if self.executor.draining:
            return False, "draining", "node is draining: it takes no new work"
        if not self.raft.has_quorum:
            return False, "no-quorum", "cannot reach a majority of the cluster"
        return True, "ready", ""

    def node_view(self) -> dict[str, Any]:
        view = self.raft.view
        body: dict[str, Any] = {
            "name": self.name,
            "role": self.raft.role,
            "term": view.term,
            "commitIndex": view.commit_index,
            "appliedIndex": view.applied_index,
            "lastLogIndex": view.last_log_index,
            "digest": view.digest,
            "draining": self.executor.draining,
            "version": __version__,
            "codeVersion": self.raft.obj.getCodeVersion(),
            "leader": self.leader_name(),
            "hasQuorum": self.raft.has_quorum,
            "ready": self.readiness()[0],  # what /health/ready answers
            "raftReady": self.raft.is_ready(),
            "httpUrl": self.config.advertise_http_url,
            "raftAddress": self.config.raft_advertise,
            "uptimeSeconds": round(time.time() - self.started_at, 1),
            "disk": self.raft.disk_usage(),
        }
        progress = self.raft.follower_progress()
        if progress:
            body["followers"] = {self.name_of(a): p for a, p in progress.items()}
        return body

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
            "faultTolerance": max(0, reachable - quorum_size(size)),
            "node": self.name,
            "nodes": nodes,
        }

    # ---- metrics ---------------------------------------------------------
    def metrics_summary(self, window_minutes: int | None) -> dict[str, Any]:
        now = time.time()
        rollup = self.state.rollup_window(metrics.minute_of(now), window_minutes)
        cache = self.cache.stats()
        body: dict[str, Any] = {
            **metrics.summarize(rollup),
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
        health = self.state.health_window(metrics.minute_of(now), window_minutes, now)
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

    # ---- admin -----------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        journal_before, dir_before = self.raft.journal_bytes(), self.raft.data_dir_bytes()
        compacted = await self.raft.compact()
        return {
            "status": "compacted" if compacted else "pending",
            "node": self.name,
            "journalBytesBefore": journal_before,
            "journalBytesAfter": self.raft.journal_bytes(),
            "dataDirBytesBefore": dir_before,
            "dataDirBytesAfter": self.raft.data_dir_bytes(),
        }

    async def set_draining(self, draining: bool) -> dict[str, Any]:
        if draining:
            self.executor.drain()
        else:
            self.executor.undrain()
        write_id = uuid.uuid4().hex
        with contextlib.suppress(ApiError):
            # The local flag is what protects work; the replicated one makes it
            # survive a restart and visible cluster-wide, so don't fail on it.
            await self._commit(
                self.state.set_draining, write_id, self.name, draining, write_id=write_id
            )
        return {
            "node": self.name,
            "draining": self.executor.draining,
            "active": self.executor.active_count,
            "queued": self.executor.queued_count,
        }

    def url_of(self, name: str) -> str:
        entry = self.directory().get(name)
        if entry is None:
            raise ApiError(
                404, f"unknown node '{name}'; known: {', '.join(sorted(self.directory()))}"
            )
        return entry["httpUrl"]

    async def forward(self, name: str, method: str, path: str, auth: str | None, body: Any = None):
        assert self.http is not None
        headers = {"Authorization": auth} if auth else {}
        try:
            return await self.http.request(
                method, self.url_of(name) + path, json=body, headers=headers, timeout=30
            )
        except httpx.HTTPError as exc:
            raise ApiError(502, f"node '{name}' did not answer: {exc.__class__.__name__}") from None

    async def transfer_leader(self, target: str | None) -> dict[str, Any]:
        previous = self.leader_name()
        if target is not None and target not in self.directory():
            raise ApiError(404, f"unknown node '{target}'")
        if target == previous:
            return {"leader": previous, "previous": previous, "changed": False}
        address = self.directory()[target]["raftAddress"] if target else None
        # pysyncobj refuses a target that lacks the leader's latest entry; right
        # after a write that is normal and passes within a heartbeat or two.
        retry_until = time.monotonic() + 2 * self.config.raft.election_timeout_ms / 1000
        error = await self.raft.transfer_leadership(address)
        while error != 0 and time.monotonic() < retry_until:
            await asyncio.sleep(0.05)
            error = await self.raft.transfer_leadership(address)
        if error != 0:
            raise ApiError(
                409,
                f"leadership transfer refused: target {target or '(any)'} must be connected and "
                "fully caught up with the leader's log; retry in a moment",
            )
        deadline = time.monotonic() + 3 * self.config.raft.election_timeout_ms / 1000
        while time.monotonic() < deadline:
            leader = self.leader_name()
            if leader and leader != previous:
                return {"leader": leader, "previous": previous, "changed": True}
            await asyncio.sleep(0.02)
        raise ApiError(504, "transfer sent, but no new leader was seen in time")

    async def add_member(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) - {"name", "raftAddress", "httpUrl"}:
            raise ApiError(400, "body must be {name, raftAddress, httpUrl}")
        name, address, url = body.get("name"), body.get("raftAddress"), body.get("httpUrl")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ApiError(400, "name must be a DNS-style node name such as unrdf-daemon-3")
        if not isinstance(address, str) or not RAFT_ADDRESS_RE.fullmatch(address):
            raise ApiError(400, "raftAddress must be host:port with a numeric port")
        if not 1 <= int(address.rsplit(":", 1)[1]) <= 65535:
            raise ApiError(400, "raftAddress port must be between 1 and 65535")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "httpUrl must be an http(s) URL")
        if address in self.raft.member_addresses():
            raise ApiError(409, f"{address} is already a member")
        write_id = uuid.uuid4().hex
        await self._commit(self.state.set_member, write_id, name, address, url, write_id=write_id)
        error = await self.raft.add_member(address)
        if error != 0:
            raise ApiError(
                409, "membership change refused: another change may be in progress; retry"
            )
        return {"added": name, "members": sorted(self.directory())}

    async def remove_member(self, name: str) -> dict[str, Any]:
        directory = self.directory()
        if name not in directory:
            raise ApiError(404, f"unknown node '{name}'")
        address = directory[name]["raftAddress"]
        if address not in self.raft.member_addresses():
            raise ApiError(404, f"node '{name}' is not a member of the Raft cluster")
        if name == self.leader_name():
            raise ApiError(
                409,
                f"{name} is the leader: transfer leadership away first "
                "(POST /admin/transfer-leader)",
            )
        cluster = await self.cluster_view()
        remaining = [n for n in cluster["nodes"] if n["name"] != name]
        reachable = sum(1 for n in remaining if n["reachable"])
        needed = quorum_size(len(remaining))
        if not remaining or reachable < needed:
            raise ApiError(
                409,
                f"refused: removing {name} would leave {reachable} of {len(remaining)} remaining "
                f"members reachable, and quorum needs {needed}",
            )
        error = await self.raft.remove_member(address)
        if error != 0:
            raise ApiError(409, "membership change refused by the leader; retry in a moment")
        write_id = uuid.uuid4().hex
        await self._commit(self.state.remove_member, write_id, name, write_id=write_id)
        return {"removed": name, "members": sorted(self.directory())}

    async def graceful_shutdown(self, drain_timeout_s: float = 30.0) -> None:
        """Drain, finish in-flight work, hand leadership away, then stop."""
        if self.shutting_down.is_set():
            return
        log.info("shutting down: draining")
        self.executor.drain()
        await self.executor.wait_idle(drain_timeout_s)
        while self._pending_records and drain_timeout_s > 0:
            await asyncio.sleep(0.1)
            drain_timeout_s -= 0.1
        if self.raft.is_leader and len(self.raft.member_addresses()) > 1:
            with contextlib.suppress(ApiError):
                result = await self.transfer_leader(None)
                log.info("handed leadership to %s", result["leader"])
        self.shutting_down.set()
