"""A running node: Raft, executor, cache and operations, behind plain methods.

The HTTP layer (api.py) only parses, authorises and maps exceptions to codes;
what a request means lives here, in reporting.py (cluster view, metrics) and in
admin.py (snapshot, drain, leadership, membership, shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import httpx

from daemon import __version__, rollups
from daemon.admin import Admin
from daemon.auth import TokenBook, internal_token
from daemon.batcher import RecordBatcher
from daemon.cache import ResultCache
from daemon.config import Config
from daemon.contract import format_time
from daemon.errors import ApiError
from daemon.executor import Executor
from daemon.handlers import HandlerPolicy
from daemon.operations import DefinitionError, validate_definition
from daemon.raft import NotCommitted, RaftNode
from daemon.reporting import Reporting

log = logging.getLogger("daemon.node")

PEER_TIMEOUT_S = 0.5
UPTIME_MARK_EVERY_S = 15.0
RESULT_MAX_CHARS = 1024


def small_result(result: Any) -> Any:
    """Every record is replicated and kept in a window of FEED_WINDOW entries, so a
    large handler result is cut to a preview rather than multiplied across nodes."""
    if result is None:
        return None
    text = json.dumps(result, default=str)
    if len(text) <= RESULT_MAX_CHARS:
        return result
    return {"truncated": True, "preview": text[:RESULT_MAX_CHARS]}


class DaemonNode(Reporting, Admin):
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
        self.local_rollup = rollups.new_rollup()  # executions this process ran
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
            minute = rollups.minute_of(time.time())
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
        now = format_time(time.time())
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
            "startedAt": format_time(outcome.started_at),
            "finishedAt": format_time(outcome.finished_at),
            "finishedAtEpoch": outcome.finished_at,
            "node": self.name,
            "attempts": outcome.attempts,
            "cached": outcome.cached,
            "error": outcome.error,
            "result": small_result(outcome.result),
        }
        rollups.add_execution(self.local_rollup, outcome.status, outcome.duration_ms)
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


__all__ = ["ApiError", "DaemonNode"]
