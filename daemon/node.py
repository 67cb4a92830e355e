"""A running node: it builds its parts, runs operations and owns its lifecycle.

The HTTP layer (api.py) only parses, authorises and maps exceptions to codes; what
a request means lives here (operations, execute, shutdown), in `node.reporting`
(its own view, the cluster view, metrics) and in `node.admin` (snapshot, drain,
leadership, membership). Those collaborators are constructed below with exactly
what each uses; the directory, peer HTTP and Raft writes they share are objects of
their own (directory.py, peers.py, writes.py), not attributes of a shared self.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import httpx

from daemon import rollups
from daemon.admin import Admin
from daemon.auth import TokenBook
from daemon.batcher import RecordBatcher
from daemon.cache import ResultCache
from daemon.config import Config
from daemon.contract import format_time
from daemon.directory import Directory
from daemon.errors import ApiError
from daemon.executor import Executor
from daemon.handlers import HandlerPolicy
from daemon.ids import new_record_id
from daemon.operations import DefinitionError, validate_definition
from daemon.peers import Peers
from daemon.raft import NotCommitted, RaftNode
from daemon.reporting import Reporting
from daemon.watch import Watch
from daemon.writes import Writes

log = logging.getLogger("daemon.node")

UPTIME_MARK_EVERY_S = 15.0
RESULT_MAX_CHARS = 1024
RECORD_RETRY_FOR_S = 600.0
RECORD_RETRY_PAUSE_MAX_S = 60.0


def small_result(result: Any) -> Any:
    """Every record is replicated and kept in a window of FEED_WINDOW entries, so a
    large handler result is cut to a preview rather than multiplied across nodes."""
    if result is None:
        return None
    text = json.dumps(result, default=str)
    if len(text) <= RESULT_MAX_CHARS:
        return result
    return {"truncated": True, "preview": text[:RESULT_MAX_CHARS]}


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
        self.local_rollup = rollups.new_rollup()  # executions this process ran
        self.raft = RaftNode(config)
        self.state = self.raft.state
        self.batcher = RecordBatcher(self.raft)
        self.watch = Watch(self.raft, lambda: self.executor.draining)
        self.directory = Directory(config, self.state, self.raft)
        self.peers = Peers(self.directory, config.raft.password, config.tls_cert)
        self.writes = Writes(self.raft, self.state)
        self.reporting = Reporting(
            config=config,
            raft=self.raft,
            executor=self.executor,
            cache=self.cache,
            directory=self.directory,
            peers=self.peers,
            local_rollup=self.local_rollup,
            started_at=self.started_at,
        )
        self.admin = Admin(
            config=config,
            raft=self.raft,
            executor=self.executor,
            directory=self.directory,
            writes=self.writes,
            reporting=self.reporting,
        )
        self.shutting_down = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._pending_records: dict[str, dict] = {}

    # ---- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        self.raft.bind_loop(asyncio.get_running_loop())
        self.raft.on_role_change(self._on_role_change)
        self.watch.start(asyncio.get_running_loop())
        self.peers.open()
        self._spawn(self._leader_duties())
        self._spawn(self._restore_drain_flag())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.peers.close()
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
        await self.writes.commit(self.state.define_operation, op)
        self.executor.invalidate_operation(op["id"])
        return existing is None, self.state.get_operation(op["id"]) or op

    async def find_operation(self, op_id: str) -> dict:
        """The operation, or 404 — but only after catching up with the leader: a
        client whose define went to another node must not see it missing here."""
        op = self.state.get_operation(op_id)
        if op is None and await self.catch_up():
            op = self.state.get_operation(op_id)
        if op is None:
            self.writes.require_started()  # not loaded yet: "starting", with Retry-After
        if op is None and not self.raft.is_leader and self.directory.leader_name() is None:
            # Just (re)started and no leader known yet: it cannot tell "absent" from "not
            # applied here yet", so a client should ask again or ask another node.
            raise ApiError(503, f"node {self.name} is catching up with the cluster; retry")
        if op is None:
            raise ApiError(404, f"operation '{op_id}' not found")
        return op

    async def catch_up(self, timeout_s: float = 2.0) -> bool:
        """Wait until this node has applied what the leader had committed when
        asked (the Raft read-index idea, over HTTP). False when there is nothing
        to wait for: this node leads, or no leader answers."""
        leader = self.directory.leader_name()
        if leader is None or leader == self.name or not self.peers.is_open:
            return False
        try:
            commit_index = await self.peers.commit_index_of(leader)
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
        await self.writes.commit(self.state.delete_operation, op_id)
        self.executor.invalidate_operation(op_id)

    async def execute(self, op_id: str, params: dict | None) -> dict:
        op = await self.find_operation(op_id)
        if self.executor.draining:
            raise ApiError(503, f"node {self.name} is draining; send work to another node")
        self.writes.require_quorum()
        outcome = await self.executor.execute(op, params)
        record = {
            "id": new_record_id(),
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
        """Bounded: each attempt resubmits (about once per election timeout) for
        a few seconds, the pause between attempts doubles, and after
        RECORD_RETRY_FOR_S it gives up loudly: a node that cannot commit must not
        write into the log forever (issue 12: nine stuck records, ~9 entries/s)."""
        rid = record["id"]
        give_up_at = time.monotonic() + RECORD_RETRY_FOR_S
        pause_s = 1.0
        while self.state.execution_by_id(rid) is None:
            if time.monotonic() > give_up_at:
                log.error(
                    "execution %s ran but its record was not committed in %.0f s; giving up",
                    rid,
                    RECORD_RETRY_FOR_S,
                )
                break
            try:
                await self.raft.submit(
                    self.state.record_execution,
                    record,
                    confirmed=lambda: self.state.execution_by_id(rid) is not None,
                )
            except NotCommitted:
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, RECORD_RETRY_PAUSE_MAX_S)
        self._pending_records.pop(rid, None)

    # ---- shutdown --------------------------------------------------------
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
                result = await self.admin.transfer_leader(None)
                log.info("handed leadership to %s", result["leader"])
        self.watch.close()  # open long-polls must not hold the HTTP shutdown
        self.shutting_down.set()


__all__ = ["ApiError", "DaemonNode"]
