"""Admin actions of a node: snapshot, drain, leadership, membership, shutdown.

A mixin of DaemonNode (daemon/node.py), split out to keep modules short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from typing import Any

import httpx

from daemon.config import NAME_RE
from daemon.contract import quorum_size
from daemon.errors import ApiError

log = logging.getLogger("daemon.node")

RAFT_ADDRESS_RE = re.compile(r"[A-Za-z0-9.\-]{1,253}:\d{1,5}")


class Admin:
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
