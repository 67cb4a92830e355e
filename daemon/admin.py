"""Admin actions of a node: snapshot, drain, leadership transfer, membership.

Constructed by DaemonNode with exactly what it uses (daemon/node.py); graceful
shutdown is the node's own lifecycle and lives there.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

from daemon.config import NAME_RE, Config
from daemon.contract import quorum_size
from daemon.directory import Directory
from daemon.errors import ApiError
from daemon.executor import Executor
from daemon.membercheck import member_conflict, probe_new_member
from daemon.raft import RaftNode
from daemon.reporting import Reporting
from daemon.writes import Writes

RAFT_ADDRESS_RE = re.compile(r"[A-Za-z0-9.\-]{1,253}:\d{1,5}")


class Admin:
    def __init__(
        self,
        *,
        config: Config,
        raft: RaftNode,
        executor: Executor,
        directory: Directory,
        writes: Writes,
        reporting: Reporting,
    ) -> None:
        self.name = config.node_name
        self._config = config
        self._raft = raft
        self._state = raft.state
        self._executor = executor
        self._directory = directory
        self._writes = writes
        self._reporting = reporting

    async def snapshot(self) -> dict[str, Any]:
        journal_before, dir_before = self._raft.journal_bytes(), self._raft.data_dir_bytes()
        compacted = await self._raft.compact()
        return {
            "status": "compacted" if compacted else "pending",
            "node": self.name,
            "journalBytesBefore": journal_before,
            "journalBytesAfter": self._raft.journal_bytes(),
            "dataDirBytesBefore": dir_before,
            "dataDirBytesAfter": self._raft.data_dir_bytes(),
        }

    async def set_draining(self, draining: bool) -> dict[str, Any]:
        if draining:
            self._executor.drain()
        else:
            self._executor.undrain()
        with contextlib.suppress(ApiError):
            # The local flag is what protects work; the replicated one makes it
            # survive a restart and visible cluster-wide, so don't fail on it.
            await self._writes.commit(self._state.set_draining, self.name, draining)
        return {
            "node": self.name,
            "draining": self._executor.draining,
            "active": self._executor.active_count,
            "queued": self._executor.queued_count,
        }

    async def transfer_leader(self, target: str | None) -> dict[str, Any]:
        previous = self._directory.leader_name()
        if target is not None and target not in self._directory.entries():
            raise ApiError(404, f"unknown node '{target}'")
        if target == previous:
            return {"leader": previous, "previous": previous, "changed": False}
        address = self._directory.entries()[target]["raftAddress"] if target else None
        election_s = self._config.raft.election_timeout_ms / 1000
        # Under steady writes the target's forced election can lose: the outgoing leader
        # appends one more entry after the catch-up check, so the others refuse their votes
        # and, a timeout later, usually re-elect the outgoing leader. Raft's answer is to
        # try again, so each attempt waits about one election and the whole is bounded.
        # Bounded below the callers' 15 s HTTP timeout (console actions, daemonctl).
        deadline = time.monotonic() + min(8 * election_s, 12.0)
        attempts = 0
        while time.monotonic() < deadline:
            if self._raft.is_leader:
                await self._send_transfer(address, target, election_s)
                attempts += 1
            settle_until = min(deadline, time.monotonic() + 2 * election_s)
            while time.monotonic() < settle_until:
                leader = self._directory.leader_name()
                if leader and leader != previous:
                    return {"leader": leader, "previous": previous, "changed": True}
                await asyncio.sleep(0.02)
        raise ApiError(504, f"transfer sent {attempts} time(s), but no new leader was seen in time")

    async def _send_transfer(
        self, address: str | None, target: str | None, election_s: float
    ) -> None:
        # pysyncobj refuses a target that lacks the leader's latest entry; right
        # after a write that is normal and passes within a heartbeat or two.
        retry_until = time.monotonic() + 2 * election_s
        error = await self._raft.transfer_leadership(address)
        while error != 0 and time.monotonic() < retry_until and self._raft.is_leader:
            await asyncio.sleep(0.05)
            error = await self._raft.transfer_leadership(address)
        if error != 0 and self._raft.is_leader:
            raise ApiError(
                409,
                f"leadership transfer refused: target {target or '(any)'} must be connected and "
                "fully caught up with the leader's log; retry in a moment",
            )

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
        if address in self._raft.member_addresses():
            raise ApiError(409, f"{address} is already a member")
        refusal = member_conflict(self._directory.entries(), name, address, url)
        if refusal:
            raise ApiError(409, refusal)
        # Nothing is recorded for a node that is not there: peers and the console send
        # tokens to recorded URLs, so a made-up member would collect them (issue 14).
        unreachable = await probe_new_member(name, address, url)
        if unreachable:
            raise ApiError(409, unreachable)
        error = await self._raft.add_member(address)
        if error != 0:
            raise ApiError(
                409, "membership change refused: another change may be in progress; retry"
            )
        await self._writes.commit(self._state.set_member, name, address, url)
        return {"added": name, "members": sorted(self._directory.entries())}

    async def remove_member(self, name: str) -> dict[str, Any]:
        directory = self._directory.entries()
        if name not in directory:
            raise ApiError(404, f"unknown node '{name}'")
        address = directory[name]["raftAddress"]
        if address not in self._raft.member_addresses():
            raise ApiError(404, f"node '{name}' is not a member of the Raft cluster")
        if name == self._directory.leader_name():
            raise ApiError(
                409,
                f"{name} is the leader: transfer leadership away first "
                "(POST /admin/transfer-leader)",
            )
        cluster = await self._reporting.cluster_view()
        remaining = [n for n in cluster["nodes"] if n["name"] != name]
        reachable = sum(1 for n in remaining if n["reachable"])
        needed = quorum_size(len(remaining))
        if not remaining or reachable < needed:
            raise ApiError(
                409,
                f"refused: removing {name} would leave {reachable} of {len(remaining)} remaining "
                f"members reachable, and quorum needs {needed}",
            )
        error = await self._raft.remove_member(address)
        if error != 0:
            raise ApiError(409, "membership change refused by the leader; retry in a moment")
        await self._writes.commit(self._state.remove_member, name)
        return {"removed": name, "members": sorted(self._directory.entries())}
